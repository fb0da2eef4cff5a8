"""The sessions database: saving, reopening, chunked autosave, locks, files, search, permissions."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant import paths
from assistant.sessions import (
    FileChangedOutside,
    SessionLocked,
    SessionNotFound,
    SessionReadOnly,
    SessionStore,
    record_cli_generation,
)
from assistant.sessions import db as sdb
from assistant.sessions.document import check_invariants
from backends.base import GenerationParams, GenerationResult, Notice, Usage
from backends.errors import UsageError

REPO = Path(__file__).resolve().parents[1]


def result(*texts: str, reasons: tuple[str, ...] | None = None, error: str | None = None) -> GenerationResult:
    return GenerationResult(
        texts=texts,
        finish_reasons=reasons or ("stop",) * len(texts),
        usage=Usage(10, 5),
        notices=(Notice("truncated", "The oldest 3 words were left out."),),
        model="gpt2",
        error=error,
    )


def chunk_rows(store: SessionStore, session_id: str) -> list[tuple[int, str]]:
    return store.conn.execute("SELECT id, text FROM chunks WHERE session_id = ? ORDER BY ord", (session_id,)).fetchall()


def test_create_edit_reopen_round_trip() -> None:
    store = SessionStore()
    session = store.create(title="Lighthouse")
    doc = session.document
    for ch in "The keeper climbed. ":
        doc.insert(len(doc), ch)
    eid = session.record_generation(
        "continue",
        {"text": doc.text, "notes": "", "api_key": "sk-" + "x" * 30},
        GenerationParams(temperature=0.7),
        "local",
        "gpt2",
        prompt_tokens=9,
    )
    session.record_result(eid, result("The lamp was cold.", "Rain fell."))
    session.accept(eid, alternative=1)
    session.notes = "The keeper is afraid of the dark."
    session.update_settings(temperature=0.7, backend="local")
    sid = session.id
    session.close()

    again = store.open(sid)
    assert again.document.text == "The keeper climbed. Rain fell."
    assert [(s.author, s.generation_id, s.alternative) for s in again.document.spans()] == [
        ("writer", None, None),
        ("model", 1, 1),
    ]
    assert again.title == "Lighthouse"
    assert again.notes == "The keeper is afraid of the dark."
    assert again.settings == {"temperature": 0.7, "backend": "local"}
    (event,) = again.events
    assert event.status == "accepted" and event.accepted_alternative == 1
    assert event.alternatives == ["The lamp was cold.", "Rain fell."]
    assert event.params["temperature"] == 0.7 and event.backend == "local" and event.model == "gpt2"
    assert event.prompt_tokens == 9 and event.notices[0]["kind"] == "truncated"
    assert event.variables["api_key"] == "[redacted]"
    raw = b"".join(p.read_bytes() for p in store.path.parent.iterdir() if p.is_file())
    assert b"sk-xxxxxxxx" not in raw  # never on disk, in the database or its WAL
    # a new event continues the numbering
    assert again.record_generation("continue") == 2
    again.close()


def test_event_ids_scrub_and_statuses() -> None:
    store = SessionStore()
    s = store.create()
    a = s.record_generation("poem", {"topic": "sea", "token": "abc", "note": "Bearer abcdefghijklmnopqrstu"})
    s.mark_cancelled(a)
    b = s.record_generation("poem")
    s.record_result(b, result("partial", reasons=("error",), error="Server went away."))
    c = s.record_generation("poem")
    s.record_result(c, result("x"))
    s.mark_rejected(c)
    statuses = {e.id: e.status for e in s.events}
    assert statuses == {a: "cancelled", b: "error", c: "rejected"}
    assert s.event(a).variables == {"topic": "sea", "token": "[redacted]", "note": "[redacted]"}
    assert s.event(b).error == "Server went away."
    s.close()


def test_long_variables_are_shortened() -> None:
    s = SessionStore().create()
    eid = s.record_generation("continue", {"text": "word " * 10_000})
    assert len(s.event(eid).variables["text"]) < 5000
    s.close()


def test_autosave_happens_in_the_background_within_a_second() -> None:
    store = SessionStore(autosave_delay=0.2)
    session = store.create()
    saved: list[int] = []
    session.on_saved = saved.append
    session.document.insert(0, "saved by itself")
    deadline = time.monotonic() + 3
    while not saved and time.monotonic() < deadline:
        time.sleep(0.02)
    assert saved, "the autosaver did not save"
    assert session.saved
    other = SessionStore()
    assert other.open(session.id, read_only=True).document.text == "saved by itself"
    session.close()


def test_one_character_edit_rewrites_one_chunk() -> None:
    store = SessionStore(autosave_delay=60)
    session = store.create()
    session.document.insert(0, "word " * 20_000)  # 100,000 characters
    session.flush()
    before = dict(chunk_rows(store, session.id))
    assert len(before) > 10
    session.document.insert(50_000, "x")
    session.flush()
    after = dict(chunk_rows(store, session.id))
    assert len(set(after) - set(before)) == 1  # one new row ...
    assert len(set(before) - set(after)) == 1  # ... replacing one old row
    session.close()
    assert (
        store.open(session.id, read_only=True).document.text
        == ("word " * 20_000)[:50_000] + "x" + ("word " * 20_000)[50_000:]
    )


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), st.integers(0, 10**6), st.text("ab \n", min_size=1, max_size=40)),
        st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(0, 60)),
        st.tuples(st.just("accept"), st.integers(0, 10**6), st.text("xy \n", min_size=1, max_size=30)),
        st.tuples(st.just("undo")),
        st.tuples(st.just("flush")),
    ),
    max_size=30,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(initial=st.text("ab \n", max_size=200), ops=OPS)
def test_saved_chunks_always_reload_to_the_same_document(
    monkeypatch: pytest.MonkeyPatch, initial: str, ops: list[tuple]
) -> None:
    # Tiny chunks and order-key gaps exercise splitting, merging and renumbering.
    monkeypatch.setattr(sdb, "CHUNK_TARGET", 16)
    monkeypatch.setattr(sdb, "CHUNK_MAX", 32)
    monkeypatch.setattr(sdb, "CHUNK_MIN", 6)
    monkeypatch.setattr(sdb, "ORD_GAP", 1)
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        store = SessionStore(Path(tmp) / "s.db", autosave_delay=60)
        session = store.create(text=initial)
        doc = session.document
        gen = 0
        for op in ops:
            n = len(doc)
            if op[0] == "insert":
                doc.insert(op[1] % (n + 1), op[2])
            elif op[0] == "delete":
                a = op[1] % (n + 1)
                doc.delete(a, min(n, a + op[2]))
            elif op[0] == "accept":
                gen += 1
                doc.accept(op[1] % (n + 1), op[2], gen)
            elif op[0] == "undo":
                doc.undo()
            else:
                session.flush()
                assert _reload(store, session.id) == (doc.text, doc.spans())
        session.close()
        assert _reload(store, session.id) == (doc.text, doc.spans())
        lengths = [len(t) for _, t in chunk_rows(store, session.id)]
        assert all(0 < n <= 32 for n in lengths)
        assert sum(lengths) == len(doc.text)

        store.close()


def _reload(store: SessionStore, sid: str) -> tuple[str, list]:
    s = store.open(sid, read_only=True)
    check_invariants(s.document)
    return s.document.text, s.document.spans()


def test_read_only_sessions_cannot_change() -> None:
    store = SessionStore()
    s = store.create()
    s.document.insert(0, "mine")
    s.close()
    ro = store.open(s.id, read_only=True)
    with pytest.raises(SessionReadOnly):
        ro.document.insert(0, "x")
    with pytest.raises(SessionReadOnly):
        ro.notes = "x"
    with pytest.raises(SessionReadOnly):
        ro.record_generation("continue")


def test_ids_can_be_abbreviated_and_unknown_ids_are_reported() -> None:
    store = SessionStore()
    s = store.create()
    s.close()
    assert store.open(s.id[:3], read_only=True).id == s.id
    with pytest.raises(SessionNotFound, match="no session"):
        store.open("zzzz")


def test_second_open_in_the_same_process_is_locked_and_release_works() -> None:
    store = SessionStore()
    s = store.create()
    with pytest.raises(SessionLocked) as info:
        store.open(s.id)
    assert info.value.holder.pid == os.getpid()
    assert "open in another quillmate" in info.value.message
    with pytest.raises(SessionLocked):
        store.delete(s.id)
    s.close()
    store.open(s.id).close()
    store.delete(s.id)
    assert store.list() == []


HOLDER = textwrap.dedent("""
    import sys, time
    from assistant.sessions import SessionStore
    s = SessionStore(sys.argv[1]).open(sys.argv[2])
    s.document.insert(len(s.document), " from the other process")
    s.flush()
    print("holding", flush=True)
    time.sleep(float(sys.argv[3]))
""")


def test_a_second_process_is_told_who_holds_the_session(tmp_path: Path) -> None:
    store = SessionStore()
    s = store.create()
    s.document.insert(0, "Start.")
    s.close()
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(store.path), s.id, "30"], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
        with pytest.raises(SessionLocked) as info:
            store.open(s.id)
        assert info.value.holder.pid == proc.pid
        assert f"pid {proc.pid}" in str(info.value)
        ro = store.open(s.id, read_only=True)  # reading is fine
        assert ro.document.text == "Start. from the other process"
        assert store.list()[0].locked_by is not None
    finally:
        proc.kill()
        proc.wait()
    # The holder died without closing: its lock is stale and taken over; nothing was lost.
    again = store.open(s.id)
    assert again.document.text == "Start. from the other process"
    again.close()


def test_a_lock_stolen_while_open_stops_saving_without_clobbering() -> None:
    store = SessionStore(autosave_delay=60)
    s = store.create()
    s.document.insert(0, "first")
    s.flush()
    # Simulate another live process taking the lock (e.g. after a clock or pid mix-up).
    store.conn.execute(
        "UPDATE locks SET pid = ?, proc_start = ?, token = 'other' WHERE session_id = ?",
        (os.getppid(), sdb.proc_start(os.getppid()), s.id),
    )
    s.document.insert(5, " second")
    with pytest.raises(SessionLocked):
        s.flush()
    assert SessionStore().open(s.id, read_only=True).document.text == "first"
    assert s.document.text == "first second"  # still in memory, can be rescued
    from assistant.sessions.session import _OPEN_SESSIONS

    _OPEN_SESSIONS.discard(s)  # the test is done with it; do not report it at exit


def test_permissions_of_everything_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "fresh" / "home"
    monkeypatch.setenv("QUILLMATE_HOME", str(home))
    old = os.umask(0o022)
    try:
        store = SessionStore()
        s = store.create()
        s.document.insert(0, "private")
        s.flush()
        target = s.save_to_file(tmp_path / "draft.md")
        s.close()
    finally:
        os.umask(old)
    assert store.path == paths.sessions_db()
    created = [home, home / "data", *(home / "data").iterdir()]
    assert {p.name for p in created} >= {"sessions.db", "sessions.db-wal", "sessions.db-shm"}
    for p in created:
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode == (0o700 if p.is_dir() else 0o600), (p, oct(mode))
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_save_to_file_keeps_permissions_and_detects_outside_changes(tmp_path: Path) -> None:
    path = tmp_path / "chapter.md"
    path.write_text("Chapter one.\n")
    path.chmod(0o640)
    store = SessionStore()
    s = store.open_for_file(path)
    assert s.document.text == "Chapter one.\n" and s.title == "chapter.md"
    assert not s.file_changed_outside()
    s.document.insert(len(s.document), "More.\n")
    s.save_to_file()
    assert path.read_text() == "Chapter one.\nMore.\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert not list(tmp_path.glob(".*quillmate-tmp"))
    # another program edits the file
    time.sleep(0.01)
    path.write_text("Chapter one.\nMore.\nTheirs.\n")
    assert s.file_changed_outside()
    s.document.insert(0, "# ")
    with pytest.raises(FileChangedOutside):
        s.save_to_file()
    assert path.read_text() == "Chapter one.\nMore.\nTheirs.\n"  # not clobbered
    s.reload_from_file()
    assert s.document.text == "Chapter one.\nMore.\nTheirs.\n"
    assert not s.file_changed_outside()
    s.save_to_file(force=True)
    s.close()
    # reopening the file finds the same session
    again = store.open_for_file(path)
    assert again.id == s.id and again.document.text == "Chapter one.\nMore.\nTheirs.\n"
    again.close()
    # changed while quillmate was not running
    path.write_text("Rewritten elsewhere.\n")
    third = store.open_for_file(path)
    assert third.file_changed_outside()
    third.close()


def test_search_drafts_and_notes() -> None:
    store = SessionStore()
    a = store.create()
    a.document.insert(0, "The lighthouse keeper counted ships. " * 3)
    a.notes = "Remember the storm in chapter three."
    a.close()
    b = store.create()
    b.document.insert(0, "A story about bread.")
    b.close()
    hits = store.search("lighthouse keeper")
    assert [(h.session_id, h.where) for h in hits] == [(a.id, "draft")]
    assert "[lighthouse]" in hits[0].snippet
    assert [(h.session_id, h.where) for h in store.search("storm")] == [(a.id, "notes")]
    assert store.search("bre*")[0].session_id == b.id
    assert store.search('"; DROP TABLE sessions; --') == []
    assert store.search("nothing-like-this") == []
    b2 = store.open(b.id)
    b2.document.set_text("A story about cheese.")
    b2.close()
    assert store.search("bread") == [] and store.search("cheese")[0].session_id == b.id
    assert store.search_notice is None


def test_search_finds_words_far_apart_in_a_long_draft() -> None:
    store = SessionStore()
    long = store.create()
    filler = "The tide came in and went out again. " * 400  # about 15,000 characters: several stored pieces
    long.document.insert(0, "A lighthouse stood on the point. " + filler + "Its keeper was called Mara.")
    long.notes = "Winter, a storm coming."
    long.close()
    other = store.create()
    other.document.insert(0, "A lighthouse, but nobody keeps it.")
    other.close()
    assert [h.session_id for h in store.search("lighthouse keeper")] == [long.id]
    assert [h.session_id for h in store.search("keeper storm")] == [long.id]  # one in the draft, one in the notes
    assert "[" in store.search("lighthouse keeper")[0].snippet
    assert store.search("lighthouse zeppelin") == []


def test_search_falls_back_to_like_without_fts5() -> None:
    store = SessionStore()
    s = store.create()
    s.document.insert(0, "Salt and 100% rye.")
    s.close()
    store.fts = False
    hits = store.search("100% rye")
    assert hits[0].session_id == s.id and store.search_notice and "FTS5" in store.search_notice
    assert store.search("50%") == []


def test_migrations_are_recorded_and_idempotent() -> None:
    store = SessionStore()
    names = [r[0] for r in store.conn.execute("SELECT name FROM migrations ORDER BY name")]
    assert names == ["m001_initial", "m002_fts", "m003_bible", "m004_points"]
    store.close()
    again = SessionStore()
    assert [r[0] for r in again.conn.execute("SELECT name FROM migrations ORDER BY name")] == names
    mode = again.conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_record_cli_generation_appends_model_text() -> None:
    store = SessionStore()
    s = store.create()
    s.document.insert(0, "It was late when")
    s.close()
    eid = record_cli_generation(
        store,
        s.id,
        "continue",
        {"text": "It was late when"},
        GenerationParams(),
        "local",
        "gpt2",
        result(" the bell rang."),
        prompt_tokens=5,
    )
    again = store.open(s.id, read_only=True)
    assert again.document.text == "It was late when the bell rang."
    assert again.document.spans()[-1].generation_id == eid
    assert again.event(eid).source == "cli" and again.event(eid).status == "accepted"
    failed = record_cli_generation(
        store, s.id, "continue", {}, {}, "openai", "gpt-4o-mini", result("", reasons=("error",), error="Key refused.")
    )
    again = store.open(s.id, read_only=True)
    assert again.document.text == "It was late when the bell rang."
    assert again.event(failed).status == "error"


def test_list_reports_words_and_titles(tmp_path: Path) -> None:
    store = SessionStore()
    s = store.create()
    s.document.insert(0, "# My Novel\n\nIt begins here.")
    s.close()
    (info,) = store.list()
    assert info.title == "My Novel" and info.words == 6 and info.chars == len("# My Novel\n\nIt begins here.")


def test_database_json_never_contains_keys_in_settings() -> None:
    s = SessionStore().create()
    s.settings = {"backend": "openai", "openai_api_key": "sk-proj-abcdefghijklmnop1234"}
    s.flush()
    row = s.store.conn.execute("SELECT settings FROM sessions WHERE id = ?", (s.id,)).fetchone()[0]
    assert json.loads(row) == {"backend": "openai", "openai_api_key": "[redacted]"}
    s.close()


def test_integrity_after_many_sessions() -> None:
    store = SessionStore(autosave_delay=60)
    for i in range(5):
        s = store.create()
        s.document.insert(0, f"session {i} " * 500)
        s.close()
    assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert sqlite3.connect(store.path).execute("SELECT count(*) FROM sessions").fetchone()[0] == 5


def test_events_are_read_lazily_after_reopening() -> None:
    store = SessionStore(autosave_delay=60)
    s = store.create()
    ids = []
    for i in range(3):
        eid = s.record_generation("continue", {"text": "x" * 3000}, GenerationParams(), "local", "gpt2")
        s.record_result(eid, result(f"alt {i}", f"other {i}"))
        ids.append(eid)
    s.accept(ids[1], 1)
    s.close()
    again = store.open(s.id)
    assert again._partial == set(ids)
    assert again.stats().by_model[0].model == "gpt2"  # summaries are enough for statistics
    assert again._partial == set(ids)
    again.mark_rejected(ids[0])  # loads just that one
    assert again._partial == {ids[1], ids[2]}
    assert again.accept(ids[2], 0) == (len("other 1"), len("other 1alt 2"))
    assert [e.status for e in again.events] == ["rejected", "accepted", "accepted"]
    assert again.event(ids[1]).alternatives == ["alt 1", "other 1"]
    again.close()
    third = store.open(s.id, read_only=True)
    assert [e.status for e in third.events] == ["rejected", "accepted", "accepted"]
    assert third.event(ids[0]).variables["text"].startswith("xxx")


def test_default_autosave_reaches_disk_within_a_second() -> None:
    store = SessionStore()  # the default delay
    s = store.create()
    s.document.insert(0, "typed")
    typed = time.monotonic()
    while not s.saved and time.monotonic() - typed < 5:
        time.sleep(0.01)
    assert s.saved and time.monotonic() - typed < 1.0
    s.close()


def test_undo_of_an_accept_is_saved() -> None:
    store = SessionStore(autosave_delay=60)
    s = store.create()
    s.document.insert(0, "Begin. ")
    eid = s.record_generation("continue")
    s.record_result(eid, result("Model words."))
    s.accept(eid)
    s.flush()
    assert s.document.undo() == len("Begin. ")
    s.close()
    again = store.open(s.id, read_only=True)
    assert again.document.text == "Begin. " and len(again.document.spans()) == 1
    assert again.event(eid).status == "accepted"  # history keeps what happened


def test_open_for_file_twice_and_relinking(tmp_path: Path) -> None:
    store = SessionStore()
    a = store.open_for_file(tmp_path / "new.md")  # a file that does not exist yet
    assert a.document.text == "" and a.file == (tmp_path / "new.md").resolve()
    a.document.insert(0, "draft")
    a.save_to_file()
    assert (tmp_path / "new.md").read_text() == "draft"
    b = store.create()
    with pytest.raises(UsageError, match="already belongs"):
        b.save_to_file(tmp_path / "new.md")
    b.save_to_file(tmp_path / "other.md")
    assert b.file == (tmp_path / "other.md").resolve()
    a.close()
    b.close()
    assert store.open_for_file(tmp_path / "other.md").id == b.id


def test_closing_an_unchanged_session_releases_its_lock() -> None:
    store = SessionStore()
    s = store.create()
    s.close()
    again = store.open(s.id)
    assert store.conn.execute("SELECT count(*) FROM locks").fetchone()[0] == 1
    again.close()
    assert store.conn.execute("SELECT count(*) FROM locks").fetchone()[0] == 0


def test_events_of_one_template_are_read_without_the_rest() -> None:
    store = SessionStore()
    session = store.create()
    for i in range(30):
        session.record_generation("chat" if i % 10 == 0 else "continue", {"message": f"question {i}"})
    session.close()
    again = store.open(session.id)
    try:
        chats = again.events_for("chat")
        assert [e.variables["message"] for e in chats] == ["question 0", "question 10", "question 20"]
        assert len(again._partial) == 27  # the other events were not read in full
    finally:
        again.close()
