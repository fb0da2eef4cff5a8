"""Failures: disk full, I/O errors, damaged databases. The writer's text is never lost."""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from assistant.sessions import DatabaseDamaged, FileSaveError, SessionStore, StorageError
from assistant.sessions import files as sfiles
from assistant.sessions.files import atomic_write
from backends.errors import QuillmateError


def _is_temp_fd(fd: int) -> bool:
    try:
        return "quillmate-tmp" in os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return False


def _failing(real: Callable[..., object], code: int) -> Callable[..., object]:
    def fake(fd: int, *args: object) -> object:
        if _is_temp_fd(fd):
            raise OSError(code, os.strerror(code))
        return real(fd, *args)

    return fake


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to tell file descriptors apart")
@pytest.mark.parametrize("call", ["write", "fsync"])
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO])
def test_atomic_write_failure_leaves_the_original_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, call: str, code: int
) -> None:
    path = tmp_path / "story.md"
    path.write_text("the original\n")
    monkeypatch.setattr(sfiles.os, call, _failing(getattr(os, call), code))
    with pytest.raises(FileSaveError) as info:
        atomic_write(path, "the new text that does not fit\n")
    monkeypatch.undo()
    assert path.read_text() == "the original\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["story.md"]  # no temp file left behind
    expected = "the disk is full" if code == errno.ENOSPC else "input/output error"
    assert expected in info.value.message and "\n" not in str(info.value)
    assert "left as it was" in info.value.message


def test_a_failing_folder_sync_after_the_rename_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import stat

    path = tmp_path / "story.md"
    path.write_text("the original\n")
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_fsync(fd)

    monkeypatch.setattr(sfiles.os, "fsync", fsync)
    with pytest.raises(FileSaveError) as info:
        atomic_write(path, "the new text\n")
    monkeypatch.undo()
    assert "was written" in info.value.message and "input/output error" in info.value.message
    assert path.read_text() == "the new text\n"  # the rename had happened: nothing claims otherwise
    assert sorted(p.name for p in tmp_path.iterdir()) == ["story.md"]
    # A session saving that way knows its text is in the file: no false "changed by another program".
    session = SessionStore().open_for_file(path)
    session.document.insert(len(session.document), "More.\n")
    monkeypatch.setattr(sfiles.os, "fsync", fsync)
    with pytest.raises(FileSaveError):
        session.save_to_file()
    monkeypatch.undo()
    assert path.read_text() == "the new text\nMore.\n" and not session.file_changed_outside()
    session.close()


def test_session_save_to_file_on_full_disk_keeps_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "novel.md"
    path.write_text("Chapter one.\n")
    session = SessionStore().open_for_file(path)
    session.document.insert(len(session.document), "New words.\n")
    monkeypatch.setattr(sfiles.os, "write", _failing(os.write, errno.ENOSPC))
    with pytest.raises(FileSaveError):
        session.save_to_file()
    monkeypatch.undo()
    assert path.read_text() == "Chapter one.\n"
    assert session.document.text == "Chapter one.\nNew words.\n"
    assert not session.file_changed_outside()
    rescue = session.export_rescue(tmp_path / "rescue.md")
    assert rescue.read_text() == "Chapter one.\nNew words.\n"
    session.save_to_file()
    assert path.read_text() == "Chapter one.\nNew words.\n"
    session.close()


def test_database_disk_full_keeps_text_and_recovers_when_space_returns() -> None:
    store = SessionStore(autosave_delay=0.05)
    session = store.create()
    session.document.insert(0, "Safe already. ")
    session.flush()
    errors: list[QuillmateError] = []
    session.on_error = errors.append
    conn = session._conn
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")  # the "disk" is now full
    session.document.insert(len(session.document), "A long new passage. " * 5000)
    with pytest.raises(StorageError) as info:
        session.flush()
    assert "disk is full" in info.value.message
    assert not session.saved and session.save_error is not None
    # the background saver reports it too, and keeps trying
    session.document.insert(len(session.document), "more")
    deadline = time.monotonic() + 5
    while not errors and time.monotonic() < deadline:
        time.sleep(0.02)
    assert errors and "disk is full" in errors[0].message
    # what was saved before is intact, and the database opens and checks out
    other = SessionStore()
    assert other.open(session.id, read_only=True).document.text == "Safe already. "
    assert other.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # space comes back: everything is saved
    conn.execute("PRAGMA max_page_count = 1073741823")
    session.flush()
    assert session.saved and session.save_error is None
    assert SessionStore().open(session.id, read_only=True).document.text == session.document.text
    session.close()


def test_database_io_error_is_one_clear_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    session = SessionStore(autosave_delay=60).create()
    session.document.insert(0, "words")

    def broken(*args: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(session._layout, "apply", broken)
    with pytest.raises(StorageError) as info:
        session.flush()
    assert info.value.message == "The disk reported an input/output error while saving the sessions database."
    assert "export" in info.value.hint
    assert session.document.text == "words"
    monkeypatch.undo()
    session.flush()
    assert session.saved
    session.close()


def test_garbage_database_is_moved_aside_and_a_fresh_one_started() -> None:
    store = SessionStore()
    path = store.path
    store.close()
    garbage = b"this is not a database at all" * 100
    path.write_bytes(garbage)
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    fresh = SessionStore()
    assert isinstance(fresh.recovered, DatabaseDamaged)
    moved = fresh.recovered.moved_to
    assert moved is not None and moved.name.startswith("sessions.db.damaged-")
    assert moved.read_bytes() == garbage  # moved, not overwritten
    assert "moved to" in fresh.recovered.message and "\n" not in fresh.recovered.message
    assert fresh.list() == []
    fresh.create().close()
    assert fresh.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_truncated_database_is_detected_and_moved_aside() -> None:
    store = SessionStore()
    session = store.create()
    session.document.insert(0, "A sentence worth keeping. " * 4000)
    session.close()
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    path = store.path
    store.close()
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size // 3)
    damaged: DatabaseDamaged | None = None
    try:
        again = SessionStore()
        damaged = again.recovered
        if damaged is None:
            again.open(session.id, read_only=True)
    except DatabaseDamaged as error:
        damaged = error
    assert damaged is not None and damaged.moved_to is not None and damaged.moved_to.exists()
    assert SessionStore().conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_damage_found_while_saving_moves_it_aside_and_saves_the_session_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    store = SessionStore(autosave_delay=60)
    session = store.create(title="Keep me")
    session.document.insert(0, "Every word matters. ")
    eid = session.record_generation("continue", {"text": "Every word matters."}, {}, "local", "gpt2")
    session.accept(eid, 0, text="And so do these.")
    session.notes = "notes too"
    session.flush()
    session.document.insert(len(session.document), " Still typing.")
    calls = {"n": 0}
    real_apply = session._layout.apply

    def corrupt_once(*args: object) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise sqlite3.DatabaseError("database disk image is malformed")
        real_apply(*args)

    monkeypatch.setattr(session._layout, "apply", corrupt_once)
    session.flush()
    assert store.recovered is not None and store.recovered.moved_to.exists()
    assert any(isinstance(w, DatabaseDamaged) for w in session.warnings)
    session.close()
    fresh = SessionStore().open(session.id, read_only=True)
    assert fresh.document.text == "Every word matters. And so do these. Still typing."
    assert fresh.title == "Keep me" and fresh.notes == "notes too"
    assert [e.status for e in fresh.events] == ["accepted"]
    assert fresh.document.spans()[1].generation_id == eid


def test_unwritable_folder_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    monkeypatch.setenv("QUILLMATE_HOME", str(locked / "home"))
    with pytest.raises(QuillmateError) as info:
        SessionStore()
    assert "\n" not in str(info.value)
