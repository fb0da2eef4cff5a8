"""``quillmate sessions``: list, show, export, delete, search."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.cli.sessions_cmd import sessions
from assistant.sessions import SessionStore
from backends.base import GenerationResult

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def sid() -> str:
    store = SessionStore()
    s = store.create(title="The Lighthouse")
    s.document.insert(0, "The keeper climbed the stairs. ")
    eid = s.record_generation("continue", {"text": s.document.text}, {"temperature": 0.8}, "local", "gpt2")
    s.record_result(eid, GenerationResult(texts=("The lamp was cold.",), finish_reasons=("stop",), model="gpt2"))
    s.accept(eid, 0)
    s.notes = "Storm arrives in chapter three."
    s.close()
    return s.id


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(sessions, list(args), input=input, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_list(sid: str) -> None:
    code, out, _ = run("list")
    assert code == 0
    assert sid in out and "The Lighthouse" in out and "ID" in out.splitlines()[0]
    code, out, _ = run("list", "--json")
    data = json.loads(out)
    assert data[0]["id"] == sid and data[0]["words"] == 9 and data[0]["events"] == 1


def test_list_empty_says_so_on_stderr() -> None:
    code, out, err = run("list")
    assert code == 0 and out == "" and "No sessions yet" in err


def test_show(sid: str) -> None:
    code, out, _ = run("show", sid[:4])
    assert code == 0
    assert "The Lighthouse" in out and "9 words: 5 yours, 4 model (44%)" in out
    assert "#1" in out and "gpt2 via local, template continue: accepted" in out
    assert "Storm arrives" in out


def test_export_formats(sid: str, tmp_path: Path) -> None:
    code, out, _ = run("export", sid)
    assert code == 0 and out == "The keeper climbed the stairs. The lamp was cold."
    code, out, _ = run("export", sid, "--format", "md-attributed")
    assert "cold.[^1]" in out and "## Statistics" in out
    code, out, _ = run("export", sid, "--format", "html")
    assert '<span class="model"' in out
    code, out, _ = run("export", sid, "--format", "json")
    assert json.loads(out)["stats"]["model_words"] == 4
    target = tmp_path / "out.md"
    code, out, err = run("export", sid, "-o", str(target))
    assert code == 0 and out == "" and target.read_text() == "The keeper climbed the stairs. The lamp was cold."
    assert "Exported" in err


def test_search(sid: str) -> None:
    code, out, _ = run("search", "lamp")
    assert code == 0 and sid in out and "(draft)" in out and "[lamp]" in out
    code, out, _ = run("search", "storm")
    assert "(notes)" in out
    code, out, err = run("search", "zeppelin")
    assert code == 0 and out == "" and "No session mentions" in err


def test_delete_asks_first(sid: str) -> None:
    code, _, err = run("delete", sid, input="n\n")
    assert code == 0 and "Nothing deleted" in err
    assert SessionStore().list()
    code, _, err = run("delete", sid, "--yes")
    assert code == 0 and f"Deleted session {sid}" in err
    assert SessionStore().list() == []


def test_unknown_id_is_a_usage_error(sid: str) -> None:
    from backends.errors import UsageError

    with pytest.raises(UsageError, match="There is no session nope"):
        CliRunner().invoke(sessions, ["show", "nope"], catch_exceptions=False)


def test_real_subprocess_list_and_errors(sid: str) -> None:
    env = dict(os.environ)
    script = Path(sys.executable).parent / "quillmate"
    quillmate = [str(script)] if script.exists() else [sys.executable, "-c", "from assistant.cli import main; main()"]
    proc = subprocess.run(
        [*quillmate, "sessions", "list"], capture_output=True, text=True, env=env, cwd=REPO, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert sid in proc.stdout and "The Lighthouse" in proc.stdout
    proc = subprocess.run(
        [*quillmate, "sessions", "show", "zz"], capture_output=True, text=True, env=env, cwd=REPO, timeout=60
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("quillmate: There is no session zz.")
    assert "Traceback" not in proc.stderr


def test_unlock_frees_a_session_held_on_another_machine() -> None:
    from assistant.sessions import SessionLocked
    from assistant.sessions.session import _OPEN_SESSIONS

    store = SessionStore()
    held = store.create(title="Held elsewhere")
    session_id = held.id
    store.conn.execute("UPDATE locks SET host = 'another-laptop', token = 'theirs' WHERE session_id = ?", (session_id,))
    _OPEN_SESSIONS.discard(held)  # this "process" is the one on the other machine
    with pytest.raises(SessionLocked):
        SessionStore().open(session_id)
    runner = CliRunner()
    kept = runner.invoke(sessions, ["unlock", session_id], input="n\n")
    assert kept.exit_code == 0 and "another-laptop" in kept.output
    with pytest.raises(SessionLocked):
        SessionStore().open(session_id)
    freed = runner.invoke(sessions, ["unlock", session_id, "--yes"])
    assert freed.exit_code == 0, freed.output
    reopened = SessionStore().open(session_id)
    assert reopened.title == "Held elsewhere"
    reopened.close()
