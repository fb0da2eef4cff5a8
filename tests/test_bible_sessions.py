"""The bible in sessions and on the command line: migration, saving, run --dry-run, the recorded prompt."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from assistant import paths
from assistant.bible import Bible, BibleError, PromptReport
from assistant.bible.files import parse_bible
from assistant.cli.bible_cmd import bible as bible_cli
from assistant.sessions import SessionStore, db

REPO = Path(__file__).resolve().parents[1]


def quillmate(*args: str, stdin: str = "", home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "QUILLMATE_"))}
    env.update(QUILLMATE_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )


def test_a_session_from_before_the_bible_opens_with_its_notes_as_memory() -> None:
    path = paths.sessions_db()
    conn = db.connect(path)
    conn.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied REAL NOT NULL)")
    for old in (db.m001_initial, db.m002_fts):  # the database as the last release left it
        old(conn)
        conn.execute("INSERT INTO migrations VALUES (?, 0)", (old.__name__,))
    conn.execute("INSERT INTO sessions (id, created, updated, notes) VALUES ('0ld5e551', 1, 1, 'Mara has one eye.')")
    conn.close()
    with SessionStore() as store, store.open("0ld5e551") as session:
        assert session.bible.memory == "Mara has one eye." and session.bible.entries == ()
        session.bible = session.bible.replaced(authors_note="Tense.", entries=[{"name": "Mara", "keys": ["Mara"]}])
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT notes FROM sessions").fetchone() == ("Mara has one eye.",)
    raw.close()
    with SessionStore() as store:
        reopened = store.open("0ld5e551", read_only=True)
        assert (reopened.bible.memory, reopened.bible.authors_note) == ("Mara has one eye.", "Tense.")
        assert reopened.bible.entry("mara").keys == ("Mara",)
        reopened.close()


def test_bible_commands_on_a_session(tmp_path: Path) -> None:
    with SessionStore() as store, store.create(title="Salt") as session:
        sid = session.id
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(bible_cli, [*args, "--session", sid], catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr

    assert run("add", "Mara", "--keys", "Mara, the captain", "--content", "One eye.", "--priority", "5")[0] == 0
    assert run("edit", "--memory", "A tale of the salt coast.", "--set", "recursion=1")[0] == 0
    code, out, _ = run("show", "Mara")
    assert code == 0 and "Keys      Mara, the captain" in out and "Priority  5" in out
    lorebook = tmp_path / "world.json"
    lorebook.write_text(
        json.dumps(
            {
                "entries": {
                    "0": {
                        "key": ["Gull"],
                        "comment": "Gull",
                        "content": "A ship.",
                        "keysecondary": ["x"],
                        "selective": True,
                    }
                }
            }
        )
    )
    code, _, err = run("import", str(lorebook))
    assert code == 0 and "Imported 1 entry (sillytavern)" in err and "not carried over: entry 'Gull'" in err
    bad = tmp_path / "bad.json"
    bad.write_text('{"entries": {"0": {"key": ["Lis"], "content": "ok"}, "1": {"key": 7}}}')
    result = runner.invoke(bible_cli, ["import", str(bad), "--session", sid])
    assert isinstance(result.exception, BibleError) and result.exception.exit_code == 2
    assert "entry 1, key should be a list of words" in result.exception.message
    code, out, _ = run("list", "--json")
    data = json.loads(out)
    assert [e["name"] for e in data["entries"]] == ["Mara", "Gull"]  # nothing of bad.json went in
    assert data["memory"] == "A tale of the salt coast." and data["settings"] == {"recursion": 1}
    assert run("remove", "gull")[0] == 0
    code, out, _ = run("export")
    assert parse_bible(out).bible == Bible.of(
        {
            "memory": "A tale of the salt coast.",
            "entries": [{"name": "Mara", "keys": ["Mara", "the captain"], "content": "One eye.", "priority": 5}],
            "settings": {"recursion": 1},
        }
    )


def test_run_dry_run_then_a_recorded_prompt(tmp_path: Path, isolated_home: Path) -> None:
    home = isolated_home
    story = tmp_path / "story.md"
    story.write_text("Mara looked at the harbour.\n\nThen she went down to the Gull, and")
    made = quillmate("sessions", "new", "--file", str(story), "--title", "Salt", home=home)
    assert made.returncode == 0, made.stderr
    sid = made.stdout.strip()
    bible_file = tmp_path / "salt.bible.toml"
    bible_file.write_text(
        'memory = "A tale of the salt coast."\nauthors_note = "Keep it tense."\n\n'
        '[[entry]]\nname = "Mara"\nkeys = ["Mara"]\ncontent = "Mara: captain, one eye."\n\n'
        '[[entry]]\nname = "Lis"\nkeys = ["Lis"]\ncontent = "Lis: a town."\n'
    )
    text = story.read_text()
    dry = quillmate(
        "run", "continue", "--bible", str(bible_file), "--dry-run", "--json", "--max-tokens", "8", stdin=text, home=home
    )
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)["prompt"]
    parts = [(p["kind"], p["label"], p.get("key")) for p in report["parts"]]
    assert parts == [
        ("instructions", "Instructions", None),
        ("memory", "Memory", None),
        ("entry", "Entry: Mara", "Mara"),
        ("draft", "Draft", None),
        ("authors_note", "Author's note", None),
        ("draft", "Draft (after the author's note)", None),
    ]
    assert report["parts"][3]["text"] == "Mara looked at the harbour.\n\n"
    assert all(p["tokens"] > 0 for p in report["parts"]) and report["context_window"] == 512
    assert report["total_tokens"] == sum(p["tokens"] for p in report["parts"])
    text_dry = quillmate("run", "continue", "--bible", str(bible_file), "--dry-run", stdin=text, home=home)
    assert text_dry.stdout == "" and "── Entry: Mara (" in text_dry.stderr and "nothing was sent" in text_dry.stderr
    assert quillmate("bible", "import", str(bible_file), "--session", sid, home=home).returncode == 0
    ran = quillmate("run", "continue", "--session", sid, "--max-tokens", "8", "--seed", "1", stdin=text, home=home)
    assert ran.returncode == 0, ran.stderr
    shown = quillmate("sessions", "show", sid, "--prompt", "1", "--json", home=home)
    assert shown.returncode == 0, shown.stderr
    stored = PromptReport.from_dict(json.loads(shown.stdout))
    assert [p.label for p in stored.parts] == [p[1] for p in parts]
    assert stored.part("entry") is not None and stored.part("entry").reason == "key 'Mara'"
    plain = quillmate("sessions", "show", sid, "--prompt", "1", home=home)
    assert "── Author's note (" in plain.stdout and "[Author's note: Keep it tense.]" in plain.stdout
    missing = quillmate("sessions", "show", sid, "--prompt", "9", home=home)
    assert missing.returncode == 2 and "has no generation #9" in missing.stderr
