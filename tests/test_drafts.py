"""Every draft kept: a session's drafts across generations and models, listed and compared (real SQLite)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.cli.sessions_cmd import sessions
from assistant.lsp.documents import Ledger, Offer
from assistant.sessions import SessionStore
from assistant.sessions.drafts import compare, drafts_of, find_draft, sentences
from backends.base import GenerationParams, GenerationResult
from backends.errors import UsageError

LOCAL = ("The lamp was cold. The sea was loud.", "The lamp was warm. The sea was loud.")
REMOTE = "The lamp was cold. Gulls cried over the rocks."


def result(*texts: str, model: str) -> GenerationResult:
    return GenerationResult(texts=texts, finish_reasons=("stop",) * len(texts), model=model)


@pytest.fixture
def sid() -> str:
    """A session with two generations from two models; the second alternative of the first was taken."""
    with SessionStore() as store:
        session = store.create(title="The Lighthouse")
        session.document.insert(0, "The keeper climbed the stairs. ")
        first = session.record_generation("continue", {"text": "x"}, {"temperature": 0.8}, "local", "gpt2")
        session.record_result(first, result(*LOCAL, model="gpt2"))
        session.accept(first, 1)
        second = session.record_generation("continue", {"text": "x"}, {"temperature": 0.7}, "cloud", "gpt-4o-mini")
        session.record_result(second, result(REMOTE, model="gpt-4o-mini"))
        session.mark_rejected(second)
        session.close()
        return session.id


def run(*args: str) -> tuple[int, str, str]:
    outcome = CliRunner().invoke(sessions, list(args), catch_exceptions=False)
    return outcome.exit_code, outcome.stdout, outcome.stderr


def test_every_alternative_of_every_generation_is_a_draft(sid: str) -> None:
    with SessionStore() as store:
        session = store.open(sid, read_only=True)
        drafts = drafts_of(session.events)
        session.close()
    assert [(d.number, d.ref, d.model, d.backend) for d in drafts] == [
        (1, "1.1", "gpt2", "local"),
        (2, "1.2", "gpt2", "local"),
        (3, "2.1", "gpt-4o-mini", "cloud"),
    ]
    assert [d.accepted for d in drafts] == [False, True, False]
    assert [d.status for d in drafts] == ["accepted", "accepted", "rejected"]
    assert drafts[2].params == {"temperature": 0.7}
    assert find_draft(drafts, "2.1") is drafts[2] and find_draft(drafts, "2") is drafts[1]
    for bad, message in (("4", "no draft 4"), ("3.1", "no draft #3.1"), ("two", "does not name a draft")):
        with pytest.raises(UsageError, match=message):
            find_draft(drafts, bad)


def test_compare_is_a_unified_diff_sentence_by_sentence_labelled_by_model(sid: str) -> None:
    with SessionStore() as store:
        session = store.open(sid, read_only=True)
        drafts = drafts_of(session.events)
        session.close()
    diff = compare(drafts[0], drafts[2])
    lines = diff.splitlines()
    assert lines[0] == "--- draft 1 (#1.1, gpt2 via local)"
    assert lines[1] == "+++ draft 3 (#2.1, gpt-4o-mini via cloud)"
    assert " The lamp was cold." in lines and "-The sea was loud." in lines
    assert "+Gulls cried over the rocks." in lines
    assert compare(drafts[0], drafts[0]) == ""
    assert sentences("One. Two!\nThree") == ["One.\n", "Two!\n", "Three\n"]


def test_sessions_drafts_lists_and_compares(sid: str) -> None:
    code, out, _ = run("drafts", sid[:5])
    assert code == 0
    rows = out.splitlines()
    assert rows[0].split()[:3] == ["N", "GEN", "WRITTEN"]
    assert len(rows) == 4 and "gpt2 via local" in rows[1] and "gpt-4o-mini via cloud" in rows[3]
    assert "taken" in rows[2] and "rejected" in rows[3] and "The lamp was warm." in rows[2]
    code, out, _ = run("drafts", sid, "--compare", "1.2", "3")
    assert code == 0
    assert out.startswith("--- draft 2 (#1.2, gpt2 via local)\n+++ draft 3 (#2.1, gpt-4o-mini via cloud)\n")
    assert "-The lamp was warm.\n" in out and "+The lamp was cold.\n" in out
    code, out, _ = run("drafts", sid, "--json")
    assert [d["text"] for d in json.loads(out)] == [*LOCAL, REMOTE]
    code, out, _ = run("drafts", sid, "--compare", "1", "3", "--json")
    data = json.loads(out)
    assert data["from"]["model"] == "gpt2" and data["to"]["model"] == "gpt-4o-mini" and data["diff"].startswith("---")
    code, _, err = run("drafts", sid, "--compare", "1", "1")
    assert code == 0 and "are the same text" in err


def test_a_draft_that_does_not_exist_is_one_line(sid: str, isolated_home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "QUILLMATE_"))}
    env["QUILLMATE_HOME"] = str(isolated_home)
    proc = subprocess.run(
        [sys.executable, "-m", "assistant", "sessions", "drafts", sid, "--compare", "1", "9"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "There is no draft 9; this session has 3." in proc.stderr


def offer(*texts: str, backend: str = "local", model: str = "bundled") -> Offer:
    return Offer(
        "continue", {"text": "x"}, GenerationParams(temperature=0.5), backend, model, result(*texts, model=model)
    )


def test_the_language_server_keeps_every_suggestion_not_only_the_accepted_one(tmp_path: Path) -> None:
    path = tmp_path / "chapter.md"
    path.write_text("Start. ", encoding="utf-8")
    with SessionStore() as store:
        ledger = Ledger(path, store, "Start. ")
        ledger.remember(offer("Never taken.", "Not this one either."))  # no session yet: kept for the first accept
        ledger.remember(offer("The tide came in."))
        assert ledger.accept("Start. The tide came in.", 7, "The tide came in.").recorded
        ledger.remember(offer("A later idea.", backend="cloud", model="gpt-4o-mini"))  # the session exists now
        session = store.open_for_file(path, read_only=True)
        drafts = drafts_of(session.events)
        session.close()
    assert [d.text for d in drafts] == ["Never taken.", "Not this one either.", "The tide came in.", "A later idea."]
    assert [d.accepted for d in drafts] == [False, False, True, False]
    assert drafts[3].model == "gpt-4o-mini" and drafts[3].backend == "cloud"
    assert drafts[0].params["temperature"] == 0.5


def test_export_leaves_the_drafts_not_taken_out_unless_asked(sid: str) -> None:
    code, plain, _ = run("export", sid)
    assert code == 0 and "Drafts not taken" not in plain and "Gulls" not in plain
    code, out, _ = run("export", sid, "--with-drafts")
    assert code == 0 and out.startswith(plain.rstrip("\n"))
    section = out[out.index("## Drafts not taken") :]
    assert "### Draft 1 (#1.1, gpt2 via local)" in section and LOCAL[0] in section
    assert "### Draft 3 (#2.1, gpt-4o-mini via cloud)" in section and REMOTE in section
    assert LOCAL[1] not in section  # the taken one is the text above, not a draft left over
    code, attributed, _ = run("export", sid, "--format", "md-attributed", "--with-drafts")
    assert code == 0 and attributed.index("## Statistics") < attributed.index("## Drafts not taken")
    code, page, _ = run("export", sid, "--format", "html", "--with-drafts")
    assert code == 0 and page.count('class="draft-not-taken"') == 2 and "gpt-4o-mini via cloud" in page
    code, out, _ = run("export", sid, "--format", "json")
    assert "drafts_not_taken" not in json.loads(out)
    code, out, _ = run("export", sid, "--format", "json", "--with-drafts")
    drafts = json.loads(out)["drafts_not_taken"]
    assert [(d["ref"], d["model"], d["backend"], d["text"]) for d in drafts] == [
        ("1.1", "gpt2", "local", LOCAL[0]),
        ("2.1", "gpt-4o-mini", "cloud", REMOTE),
    ]
