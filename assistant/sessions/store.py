"""The sessions database as writers see it: create, open, list, search, delete.

Usage::

    store = SessionStore()                       # paths.sessions_db(), honours QUILLMATE_HOME
    if store.recovered:                          # the database was damaged and moved aside
        warn(store.recovered.message)
    session = store.open_for_file("chapter1.md") # or store.create(), store.open("3f2a9c10")
    session.document.set_text(new_text)          # saved in the background
    session.close()

A session open for writing is locked to one process: a second ``open`` raises
:class:`SessionLocked` naming the holder (pid, host, since when); pass
``read_only=True`` to look at it anyway. Locks of processes that died are
taken over. See :mod:`assistant.sessions.db` for the storage design.
"""

from __future__ import annotations

import builtins  # `list` is also a method here
import contextlib
import json
import os
import sqlite3
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant import paths
from assistant.sessions import db
from assistant.sessions.document import Document
from assistant.sessions.errors import (
    DatabaseDamaged,
    LockHolder,
    SessionLocked,
    SessionNotFound,
    StorageError,
)
from assistant.sessions.events import GenerationEvent
from assistant.sessions.files import read_text_file
from assistant.sessions.session import Session, first_line_title, new_session_id, session_lock_token
from backends.errors import UsageError

_SESSION_COLUMNS = (
    "id",
    "title",
    "auto_title",
    "file_path",
    "file_sha256",
    "file_size",
    "file_mtime_ns",
    "created",
    "updated",
    "settings",
    "notes",
    "length",
    "next_event",
    "bible",
)


@dataclass(frozen=True)
class SessionInfo:
    """A line of ``quillmate sessions list``."""

    id: str
    title: str
    file: Path | None
    created: float
    updated: float
    words: int
    chars: int
    events: int
    locked_by: LockHolder | None = None


@dataclass(frozen=True)
class SearchHit:
    """A session whose draft or notes match a search; ``snippet`` marks matches with [brackets]."""

    session_id: str
    title: str
    where: str  # "draft" or "notes"
    snippet: str


class SessionStore:
    """All sessions in one SQLite database; see the module docstring.

    Attributes:
        path: The database file.
        recovered: Set when the database was found damaged and moved aside (a fresh one was started).
        fts: True when full-text search (FTS5) is available; otherwise search falls back to LIKE.
        search_notice: Set by ``search`` when it had to fall back.
        autosave_delay: Seconds between a change and its background save.
        generation: Goes up by one each time a damaged database is replaced, so open sessions
            know to reconnect and write everything again.
    """

    def __init__(self, path: Path | str | None = None, *, autosave_delay: float = 0.5) -> None:
        self.path = Path(path) if path is not None else paths.sessions_db()
        self.autosave_delay = autosave_delay
        self.recovered: DatabaseDamaged | None = None
        self.search_notice: str | None = None
        self.generation = 0
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._open_checked()

    # ------------------------------------------------------------ database
    def _open_checked(self) -> None:
        try:
            self._conn = self._open_and_migrate()
        except sqlite3.DatabaseError as error:
            if db.error_kind(error) != "corrupt":
                raise db.storage_error(error, self.path) from None
            self.recover_damaged(self.generation)
        except OSError as error:
            raise db.storage_error(error, self.path) from None

    def _open_and_migrate(self) -> sqlite3.Connection:
        conn = db.connect(self.path)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            db.migrate(conn)
            self.fts = conn.execute("SELECT value FROM meta WHERE key = 'fts'").fetchone() == ("1",)
        except BaseException:
            conn.close()
            raise
        return conn

    def recover_damaged(self, seen_generation: int) -> Path:
        """Move the damaged database aside and start a fresh one; returns where the damaged one went.

        ``seen_generation`` is the ``generation`` the caller saw fail: when several sessions meet the
        same damage, only the first moves the file and the others get the same answer.
        """
        with self._lock:
            if seen_generation != self.generation and self.recovered and self.recovered.moved_to:
                return self.recovered.moved_to
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    self._conn.close()
                self._conn = None
            moved = db.move_aside(self.path)
            self.generation += 1
            self.recovered = DatabaseDamaged(
                f"The sessions database was damaged; it was moved to {moved.name} and a fresh one started.",
                "Sessions saved before are in the moved file; your open text is kept and saved again.",
                moved,
            )
            try:
                self._conn = self._open_and_migrate()
            except (sqlite3.Error, OSError) as error:
                raise db.storage_error(error, self.path) from None
            return moved

    @property
    def conn(self) -> sqlite3.Connection:
        """The store's own connection (reopened if the store was closed)."""
        if self._conn is None:
            self._open_checked()
        if self._conn is None:
            raise StorageError("The sessions database could not be opened.")
        return self._conn

    @contextlib.contextmanager
    def guard(self) -> Iterator[sqlite3.Connection]:
        """Hold the store's connection for some database work (``with store.guard() as conn:``).

        Raises:
            DatabaseDamaged: the database was damaged; it has been moved aside and a fresh one started.
            StorageError: any other database or disk failure, in one line.
        """
        with self._lock:
            generation = self.generation
            try:
                yield self.conn
            except sqlite3.Error as error:
                if db.error_kind(error) == "corrupt":
                    self.recover_damaged(generation)
                    raise self.recovered or DatabaseDamaged("The sessions database was damaged.") from None
                raise db.storage_error(error, self.path) from None
            except OSError as error:
                raise db.storage_error(error, self.path) from None

    def close(self) -> None:
        """Close the store's own connection (open sessions keep theirs; it reopens if used again)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ sessions
    def create(self, title: str | None = None, file: Path | str | None = None, text: str = "") -> Session:
        """A new session (open for writing). With ``file``, it is linked to it and starts with its text."""
        fingerprint = None
        file_path: Path | None = None
        if file is not None:
            file_path = Path(file).expanduser().resolve()
            self.check_file_free(file_path, None)
            if file_path.exists():
                text, fingerprint = read_text_file(file_path)
        token = session_lock_token()
        with self.guard() as conn:
            now = time.time()
            with db.transaction(conn):
                if file_path is not None:  # checked again under the write lock: two processes may race
                    self.check_file_free(file_path, None)
                for _ in range(20):
                    session_id = new_session_id()
                    if conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone() is None:
                        break
                conn.execute(
                    "INSERT INTO sessions (id, title, auto_title, file_path, file_sha256, file_size, file_mtime_ns,"
                    " created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        session_id,
                        title,
                        first_line_title(text),
                        str(file_path) if file_path else None,
                        fingerprint.sha256 if fingerprint else None,
                        fingerprint.size if fingerprint else None,
                        fingerprint.mtime_ns if fingerprint else None,
                        now,
                        now,
                    ),
                )
                db.acquire_lock(conn, session_id, token)
            row = self._row(conn, session_id)
        document = Document(text)
        if text:
            document.mark_dirty(0, 0, len(text))
        session = Session(self, row, document, [], db.ChunkLayout(), read_only=False, lock_token=token)
        if text:
            with contextlib.suppress(StorageError):  # kept in memory; the autosaver retries and reports it
                session.flush()
        return session

    def open(self, session_id: str, read_only: bool = False) -> Session:
        """Open a session by id (or a unique prefix of it).

        Raises:
            SessionNotFound: no such session.
            SessionLocked: another process has it open for writing (use ``read_only=True``).
        """
        token = None if read_only else session_lock_token()
        with self.guard() as conn:
            session_id = self._resolve(conn, session_id)
            if token is not None:
                with db.transaction(conn):
                    db.acquire_lock(conn, session_id, token)
            try:
                row = self._row(conn, session_id)
                text, spans, layout = db.load_chunks(conn, session_id)
                # Only the summary columns: the full events are read when first needed.
                events = [
                    GenerationEvent(
                        id=seq,
                        created=created,
                        template=template,
                        backend=backend,
                        model=model,
                        status=status,
                        position=position,
                        anchor=anchor or "",
                    )
                    for seq, created, template, backend, model, status, position, anchor in conn.execute(
                        "SELECT seq, created, template, backend, model, status, position, anchor FROM events "
                        "WHERE session_id = ? ORDER BY seq",
                        (session_id,),
                    )
                ]
            except BaseException:
                if token is not None:
                    with contextlib.suppress(Exception):
                        db.release_lock(conn, session_id, token)
                raise
        document = Document(text, spans, read_only=read_only)
        return Session(self, row, document, events, layout, read_only=read_only, lock_token=token, partial_events=True)

    def open_for_file(self, path: Path | str, read_only: bool = False) -> Session:
        """The session linked to ``path``: opened if there is one, else created from the file's text.

        When the file was changed by another program since quillmate last saved it,
        ``session.file_changed_outside()`` is True: ask the writer, then ``reload_from_file()`` or keep the session.
        """
        file_path = Path(path).expanduser().resolve()
        with self.guard() as conn:
            row = _linked_session(conn, file_path)
        if row is not None:
            return self.open(row[0], read_only=read_only)
        if read_only:
            raise SessionNotFound(f"No session is linked to {file_path.name}.")
        try:
            return self.create(file=file_path)
        except UsageError:  # another process created it a moment ago
            with self.guard() as conn:
                row = _linked_session(conn, file_path)
            if row is None:
                raise
            return self.open(row[0], read_only=read_only)

    def list(self) -> list[SessionInfo]:
        """Every session, most recently updated first."""
        with self.guard() as conn:
            rows = conn.execute(
                """SELECT s.id, s.title, s.auto_title, s.file_path, s.created, s.updated, s.length,
                          (SELECT coalesce(sum(words), 0) FROM chunks c WHERE c.session_id = s.id),
                          (SELECT count(*) FROM events e WHERE e.session_id = s.id)
                   FROM sessions s ORDER BY s.updated DESC"""
            ).fetchall()
            infos = []
            for sid, title, auto_title, file_path, created, updated, length, words, n_events in rows:
                held = db.read_lock(conn, sid)
                file = Path(file_path) if file_path else None
                shown = title or (file.name if file else "") or auto_title or "Untitled"
                infos.append(
                    SessionInfo(sid, shown, file, created, updated, words, length, n_events, held[0] if held else None)
                )
            return infos

    def search(self, query: str, limit: int = 50) -> builtins.list[SearchHit]:
        """Sessions whose draft or notes contain every word of ``query`` (FTS5; LIKE when FTS5 is missing)."""
        self.search_notice = None
        with self.guard() as conn:
            titles = {
                sid: (t or (Path(f).name if f else "") or a or "Untitled")
                for sid, t, f, a in conn.execute("SELECT id, title, file_path, auto_title FROM sessions")
            }
            match = db.fts_query(query)
            if self.fts and match:
                draft = conn.execute(
                    """SELECT c.session_id, snippet(chunks_fts, 0, '[', ']', '…', 12)
                       FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid
                       WHERE chunks_fts MATCH ? ORDER BY rank LIMIT ?""",
                    (match, limit * 4),
                ).fetchall()
                notes = conn.execute(
                    """SELECT s.id, snippet(notes_fts, 0, '[', ']', '…', 12)
                       FROM notes_fts JOIN sessions s ON s.num = notes_fts.rowid
                       WHERE notes_fts MATCH ? ORDER BY rank LIMIT ?""",
                    (match, limit),
                ).fetchall()
                draft += _spread_matches(conn, db.fts_terms(query), {sid for sid, _ in draft + notes})
            else:
                if not self.fts:
                    self.search_notice = "Full-text search (FTS5) is not available here; matching plain text instead."
                pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
                draft = [
                    (sid, _snippet(text, query))
                    for sid, text in conn.execute(
                        "SELECT session_id, text FROM chunks WHERE text LIKE ? ESCAPE '\\' LIMIT ?",
                        (pattern, limit * 4),
                    )
                ]
                notes = [
                    (sid, _snippet(text, query))
                    for sid, text in conn.execute(
                        "SELECT id, notes FROM sessions WHERE notes LIKE ? ESCAPE '\\' LIMIT ?", (pattern, limit)
                    )
                ]
        hits: list[SearchHit] = []
        seen: set[tuple[str, str]] = set()
        for where, rows in (("draft", draft), ("notes", notes)):
            for sid, snippet in rows:
                if (sid, where) in seen or sid not in titles:
                    continue
                seen.add((sid, where))
                hits.append(SearchHit(sid, titles[sid], where, " ".join(snippet.split())))
        return hits[:limit]

    def delete(self, session_id: str) -> str:
        """Delete a session for good; returns its full id.

        Raises:
            SessionLocked: it is open for writing in another process.
        """
        with self.guard() as conn:
            session_id = self._resolve(conn, session_id)
            with db.transaction(conn):
                held = db.read_lock(conn, session_id)
                if held is not None:
                    raise SessionLocked(session_id, held[0])
                for table in ("chunks", "events", "locks"):
                    conn.execute(f"DELETE FROM {table} WHERE session_id = ?", (session_id,))
                conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
        return session_id

    def list_lock(self, session_id: str) -> LockHolder | None:
        """Who holds a session open for writing, or None."""
        with self.guard() as conn:
            held = db.read_lock(conn, self._resolve(conn, session_id))
        return held[0] if held else None

    def break_lock(self, session_id: str) -> LockHolder | None:
        """Take the lock away from whoever holds it (e.g. a crashed quillmate on another host).

        Returns who held it, or None when it was free. The holder, if still alive, stops saving
        rather than overwrite the session (see ``Session.flush``).
        """
        with self.guard() as conn:
            full_id = self._resolve(conn, session_id)
            row = conn.execute("SELECT pid, host, since FROM locks WHERE session_id = ?", (full_id,)).fetchone()
            with db.transaction(conn):
                conn.execute("DELETE FROM locks WHERE session_id = ?", (full_id,))
        return LockHolder(pid=row[0], host=row[1], since=row[2]) if row else None

    def resolve(self, session_id: str) -> str:
        """The full id for an id or a unique prefix of one."""
        with self.guard() as conn:
            return self._resolve(conn, session_id)

    # ------------------------------------------------------------- helpers
    def _resolve(self, conn: sqlite3.Connection, session_id: str) -> str:
        wanted = session_id.strip().lower()
        if not wanted:
            raise SessionNotFound("No session id given.", "`quillmate sessions list` shows them.")
        if conn.execute("SELECT 1 FROM sessions WHERE id = ?", (wanted,)).fetchone():
            return wanted
        escaped = wanted.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        found = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM sessions WHERE id LIKE ? ESCAPE '\\' ORDER BY id LIMIT 6", (escaped + "%",)
            )
        ]
        if len(found) == 1:
            return found[0]
        if not found:
            raise SessionNotFound(f"There is no session {session_id}.", "`quillmate sessions list` shows them.")
        raise SessionNotFound(
            f"{session_id} matches several sessions ({', '.join(found[:5])}).", "Type more of the id."
        )

    def _row(self, conn: sqlite3.Connection, session_id: str) -> dict[str, Any]:
        row = conn.execute(f"SELECT {', '.join(_SESSION_COLUMNS)} FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is None:
            raise SessionNotFound(f"There is no session {session_id}.", "`quillmate sessions list` shows them.")
        return dict(zip(_SESSION_COLUMNS, row, strict=True))

    def load_events(self, session_id: str, ids: builtins.list[int] | None) -> dict[int, GenerationEvent]:
        """The full events of a session as saved (all of them, or those in ``ids``), by id."""
        with self.guard() as conn:
            if ids is None:
                rows = conn.execute("SELECT data FROM events WHERE session_id = ?", (session_id,)).fetchall()
            else:
                rows = []
                for start in range(0, len(ids), 500):
                    batch = ids[start : start + 500]
                    rows += conn.execute(
                        f"SELECT data FROM events WHERE session_id = ? AND seq IN ({', '.join('?' * len(batch))})",
                        (session_id, *batch),
                    ).fetchall()
        events = (
            GenerationEvent.from_dict(json.loads(zlib.decompress(data) if isinstance(data, bytes) else data))
            for (data,) in rows
        )
        return {e.id: e for e in events}

    def check_file_free(self, file_path: Path, session_id: str | None) -> None:
        """Raise UsageError when ``file_path`` is linked to a session other than ``session_id``."""
        with self.guard() as conn:
            row = _linked_session(conn, file_path)
        if row is not None and row[0] != session_id:
            raise UsageError(
                f"{file_path.name} already belongs to session {row[0]}.",
                f"Open it with `quillmate write {file_path.name}`, or save under another name.",
            )


def _linked_session(conn: Any, file_path: Path) -> tuple[str] | None:
    """The session linked to ``file_path``: by its path, else by device and inode (a hard link to it)."""
    row = conn.execute("SELECT id FROM sessions WHERE file_path = ?", (str(file_path),)).fetchone()
    if row is not None:
        return (row[0],)
    try:
        wanted = file_path.stat()
    except OSError:
        return None
    for sid, linked in conn.execute("SELECT id, file_path FROM sessions WHERE file_path IS NOT NULL"):
        try:
            st = os.stat(linked)
        except (OSError, ValueError):
            continue
        if (st.st_dev, st.st_ino) == (wanted.st_dev, wanted.st_ino):
            return (sid,)
    return None


def _snippet(text: str, query: str, width: int = 60) -> str:
    at = text.lower().find(query.lower())
    if at < 0:
        return text[:width]
    start = max(0, at - width // 2)
    end = at + len(query)
    return ("…" if start else "") + text[start:at] + "[" + text[at:end] + "]" + text[end : end + width // 2] + "…"


def _spread_matches(conn: sqlite3.Connection, terms: list[str], found: set[str]) -> list[tuple[str, str]]:
    """Sessions with every word somewhere in the draft or notes, though in no one stored piece together.

    Drafts are stored in pieces of a few thousand characters, and a piece is what FTS5 matches.
    """
    if len(terms) < 2:
        return []
    having: set[str] | None = None
    for term in terms:
        ids = {
            sid
            for (sid,) in conn.execute(
                "SELECT c.session_id FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid WHERE chunks_fts MATCH ?",
                (term,),
            )
        }
        ids |= {
            sid
            for (sid,) in conn.execute(
                "SELECT s.id FROM notes_fts JOIN sessions s ON s.num = notes_fts.rowid WHERE notes_fts MATCH ?", (term,)
            )
        }
        having = ids if having is None else having & ids
        if not having:
            return []
    hits: list[tuple[str, str]] = []
    for sid in sorted((having or set()) - found):
        row = conn.execute(
            """SELECT snippet(chunks_fts, 0, '[', ']', '…', 12) FROM chunks_fts JOIN chunks c
               ON c.id = chunks_fts.rowid WHERE chunks_fts MATCH ? AND c.session_id = ? LIMIT 1""",
            (" OR ".join(terms), sid),
        ).fetchone()
        hits.append((sid, row[0] if row else ""))
    return hits
