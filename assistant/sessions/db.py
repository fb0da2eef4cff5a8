"""The sessions database: connection, migrations, errors, chunked text, locks.

Storage design
--------------
One SQLite file (``paths.sessions_db()``), WAL journal, ``synchronous=FULL``
(a commit is on disk when it returns), busy timeout 5 s. The file is created
0600 inside a 0700 folder before SQLite opens it; SQLite gives its ``-wal`` and
``-shm`` files the same mode.

Tables (created by append-only migrations, recorded in ``migrations``):

* ``sessions``: one row per session: title, linked file and its fingerprint,
  notes (the story bible's memory), the rest of the bible (JSON), settings (JSON),
  text length, next event number.
* ``chunks``: the text in pieces of about 4,000 characters, ordered by ``ord``
  (integers with wide gaps, so a piece can be replaced or split without
  renumbering its neighbours). Each row also holds the provenance spans of
  its characters (JSON, clipped to the piece) and its word count. An autosave
  rewrites only the pieces overlapping the region changed since the last save,
  so a one-character edit in a 100,000-word draft writes one ~4 KB row.
* ``events``: one row per generation event, keyed by (session, number): the
  full event as JSON (zlib-compressed when over 512 bytes) plus a few columns
  (template, backend, model, status, and for a suggestion at the cursor its
  position and anchor in the draft) so that opening a session reads only
  those; the JSON is read when first needed.
* ``locks``: who holds each session open for writing (pid, host, since).
* ``chunks_fts``/``notes_fts``: FTS5 indexes kept by triggers (when FTS5 exists).
* ``meta``: key/value facts about the database (e.g. whether FTS5 is on).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import sqlite3
import time
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import accumulate, pairwise
from pathlib import Path

from assistant.paths import ensure_dir
from assistant.sessions.document import WRITER, Attribution, SpanList, merge_spans
from assistant.sessions.errors import DatabaseDamaged, LockHolder, SessionLocked, StorageError
from assistant.sessions.stats import words_starting_in

CHUNK_TARGET = 4096
CHUNK_MAX = 8192
CHUNK_MIN = 1024
ORD_GAP = 1 << 32
BUSY_TIMEOUT = 5.0

# ------------------------------------------------------------------ migrations


def m001_initial(conn: sqlite3.Connection) -> None:
    """Sessions, chunked text, events, locks."""
    for statement in (
        """CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
        """CREATE TABLE sessions (
            num INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            title TEXT,
            auto_title TEXT NOT NULL DEFAULT '',
            file_path TEXT UNIQUE,
            file_sha256 TEXT,
            file_size INTEGER,
            file_mtime_ns INTEGER,
            created REAL NOT NULL,
            updated REAL NOT NULL,
            settings TEXT NOT NULL DEFAULT '{}',
            notes TEXT NOT NULL DEFAULT '',
            length INTEGER NOT NULL DEFAULT 0,
            next_event INTEGER NOT NULL DEFAULT 1
        )""",
        """CREATE TABLE chunks (
            id INTEGER PRIMARY KEY,
            session_id TEXT NOT NULL,
            ord INTEGER NOT NULL,
            text TEXT NOT NULL,
            spans TEXT NOT NULL,
            words INTEGER NOT NULL DEFAULT 0
        )""",
        """CREATE INDEX chunks_order ON chunks (session_id, ord)""",
        """CREATE TABLE events (
            session_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            created REAL NOT NULL,
            template TEXT NOT NULL DEFAULT '',
            backend TEXT NOT NULL DEFAULT '',
            model TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL DEFAULT '',
            data TEXT NOT NULL,
            PRIMARY KEY (session_id, seq)
        )""",
        """CREATE TABLE locks (
            session_id TEXT PRIMARY KEY,
            pid INTEGER NOT NULL,
            host TEXT NOT NULL,
            since REAL NOT NULL,
            token TEXT NOT NULL,
            proc_start TEXT
        )""",
    ):
        conn.execute(statement)


def m002_fts(conn: sqlite3.Connection) -> None:
    """Full-text search over drafts and notes (skipped when this SQLite lacks FTS5)."""
    if not fts5_available(conn):
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('fts', '0')")
        return
    for statement in (
        """CREATE VIRTUAL TABLE chunks_fts USING fts5(
            text, content='chunks', content_rowid='id', tokenize='unicode61 remove_diacritics 2')""",
        """CREATE TRIGGER chunks_fts_ai AFTER INSERT ON chunks BEGIN
            INSERT INTO chunks_fts (rowid, text) VALUES (new.id, new.text); END""",
        """CREATE TRIGGER chunks_fts_ad AFTER DELETE ON chunks BEGIN
            INSERT INTO chunks_fts (chunks_fts, rowid, text) VALUES ('delete', old.id, old.text); END""",
        """CREATE TRIGGER chunks_fts_au AFTER UPDATE OF text ON chunks BEGIN
            INSERT INTO chunks_fts (chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
            INSERT INTO chunks_fts (rowid, text) VALUES (new.id, new.text); END""",
        """CREATE VIRTUAL TABLE notes_fts USING fts5(
            notes, content='sessions', content_rowid='num', tokenize='unicode61 remove_diacritics 2')""",
        """CREATE TRIGGER notes_fts_ai AFTER INSERT ON sessions BEGIN
            INSERT INTO notes_fts (rowid, notes) VALUES (new.num, new.notes); END""",
        """CREATE TRIGGER notes_fts_ad AFTER DELETE ON sessions BEGIN
            INSERT INTO notes_fts (notes_fts, rowid, notes) VALUES ('delete', old.num, old.notes); END""",
        """CREATE TRIGGER notes_fts_au AFTER UPDATE OF notes ON sessions BEGIN
            INSERT INTO notes_fts (notes_fts, rowid, notes) VALUES ('delete', old.num, old.notes);
            INSERT INTO notes_fts (rowid, notes) VALUES (new.num, new.notes); END""",
        """INSERT OR REPLACE INTO meta (key, value) VALUES ('fts', '1')""",
    ):
        conn.execute(statement)


def m003_bible(conn: sqlite3.Connection) -> None:
    """The story bible: author's note, entries and their settings, as JSON.

    The memory stays in ``notes``: a session's notes from before the bible are its memory,
    and the notes search keeps finding it.
    """
    conn.execute("ALTER TABLE sessions ADD COLUMN bible TEXT NOT NULL DEFAULT '{}'")


def m004_points(conn: sqlite3.Connection) -> None:
    """Where each suggestion was offered: its offset in the draft then, and the text just before it.

    Opening a session reads them with the other summary columns, so the suggestions made at
    one point are found without reading every event. Events from before have no point
    (``position`` NULL, ``anchor`` empty) and read as before.
    """
    conn.execute("ALTER TABLE events ADD COLUMN position INTEGER")
    conn.execute("ALTER TABLE events ADD COLUMN anchor TEXT NOT NULL DEFAULT ''")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [m001_initial, m002_fts, m003_bible, m004_points]


def fts5_available(conn: sqlite3.Connection) -> bool:
    """True when this SQLite was built with FTS5."""
    try:
        conn.execute("CREATE VIRTUAL TABLE temp.quillmate_fts_probe USING fts5(x)")
        conn.execute("DROP TABLE temp.quillmate_fts_probe")
        return True
    except sqlite3.OperationalError:
        return False


def migrate(conn: sqlite3.Connection) -> None:
    """Apply every migration not yet recorded, each in its own transaction."""
    conn.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied REAL NOT NULL)")
    done = {row[0] for row in conn.execute("SELECT name FROM migrations")}
    for migration in MIGRATIONS:
        if migration.__name__ in done:
            continue
        with transaction(conn):
            # Another process may have applied it while we waited for the write lock.
            if conn.execute("SELECT 1 FROM migrations WHERE name = ?", (migration.__name__,)).fetchone():
                continue
            migration(conn)
            conn.execute("INSERT INTO migrations (name, applied) VALUES (?, ?)", (migration.__name__, time.time()))


# ------------------------------------------------------------------ connection


def make_private_dirs(folder: Path) -> None:
    """Create ``folder`` and every missing parent with mode 0700."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)


def create_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 (and missing folders 0700) unless it exists."""
    make_private_dirs(path.parent)
    ensure_dir(path.parent)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def connect(path: Path) -> sqlite3.Connection:
    """Open the database (creating it privately), in WAL mode with full sync."""
    create_private_file(path)
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
    except BaseException:
        conn.close()
        raise
    return conn


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise
    try:
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise


# ---------------------------------------------------------------------- errors


def error_kind(error: BaseException) -> str:
    """``corrupt``, ``full``, ``io``, ``busy``, ``denied`` or ``other`` for an sqlite3/OS error."""
    if isinstance(error, OSError):
        import errno

        return {
            errno.ENOSPC: "full",
            errno.EDQUOT: "full",
            errno.EIO: "io",
            errno.EACCES: "denied",
            errno.EPERM: "denied",
            errno.EROFS: "denied",
        }.get(error.errno or 0, "other")
    name = getattr(error, "sqlite_errorname", "") or ""
    text = str(error).lower()
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in text or "not a database" in text:
        return "corrupt"
    if name.startswith("SQLITE_FULL") or "disk is full" in text:
        return "full"
    if name.startswith("SQLITE_IOERR") or "disk i/o error" in text:
        return "io"
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in text:
        return "busy"
    if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")) or (
        "readonly" in text or "unable to open" in text
    ):
        return "denied"
    return "other"


KEEP_HINT = "Your text is kept in memory; export it to a file to be safe."


def storage_error(error: BaseException, path: Path) -> StorageError:
    """A one-line StorageError for a database failure (never for corruption: see ``move_aside``)."""
    kind = error_kind(error)
    if kind == "full":
        return StorageError(
            "The disk is full, so quillmate could not save to its sessions database.",
            "Free some space; " + KEEP_HINT[0].lower() + KEEP_HINT[1:],
        )
    if kind == "io":
        return StorageError("The disk reported an input/output error while saving the sessions database.", KEEP_HINT)
    if kind == "busy":
        return StorageError(
            "The sessions database is busy (another quillmate is saving to it).", "Try again in a moment."
        )
    if kind == "denied":
        return StorageError(
            f"quillmate cannot write its sessions database at {path}.",
            "Check the folder's permissions, or set QUILLMATE_HOME to another folder.",
        )
    if kind == "corrupt":
        return DatabaseDamaged(f"The sessions database at {path} is damaged.", KEEP_HINT)
    return StorageError(f"The sessions database failed: {error}.", KEEP_HINT)


def move_aside(path: Path) -> Path:
    """Rename a damaged database (and its WAL) to ``<name>.damaged-<timestamp>``; return the new name."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    os.replace(path, target)
    for suffix in ("-wal", "-journal"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            os.replace(companion, target.with_name(target.name + suffix))
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path.with_name(path.name + "-shm"))
    return target


# ----------------------------------------------------------------------- spans

_AUTHOR_CODES = {"writer": "w", "model": "m", "edited": "e"}
_CODE_AUTHORS = {v: k for k, v in _AUTHOR_CODES.items()}


def encode_spans(spans: SpanList) -> str:
    """Compact JSON for a chunk's spans: ``[[len, "w"], [len, "m", gen, alt], ...]``."""
    out: list[list[object]] = []
    for length, attr in spans:
        if attr.author == "writer":
            out.append([length, "w"])
        else:
            out.append([length, _AUTHOR_CODES[attr.author], attr.generation_id, attr.alternative])
    return json.dumps(out, separators=(",", ":"))


def decode_spans(data: str, length: int, cache: dict[tuple, Attribution] | None = None) -> SpanList:
    """Spans from :func:`encode_spans`; anything unreadable counts as the writer's.

    ``cache`` shares one Attribution object per distinct attribution across chunks.
    """
    cache = {} if cache is None else cache
    try:
        raw = json.loads(data)
        spans: SpanList = []
        for item in raw:
            if item[1] == "w":
                spans.append((int(item[0]), WRITER))
                continue
            key = (item[1], item[2], item[3])
            attr = cache.get(key)
            if attr is None:
                attr = cache[key] = Attribution(_CODE_AUTHORS[item[1]], int(item[2]), int(item[3]))
            spans.append((int(item[0]), attr))
        if sum(n for n, _ in spans) == length and all(n > 0 for n, _ in spans):
            return spans
    except (ValueError, KeyError, IndexError, TypeError):
        pass
    return [(length, WRITER)] if length else []


# ---------------------------------------------------------------------- chunks


def split_points(text: str) -> list[int]:
    """Where to cut ``text`` into pieces of about CHUNK_TARGET characters (after whitespace when possible)."""
    if len(text) <= CHUNK_MAX:
        return [0, len(text)] if text else [0]
    cuts = [0]
    pos = 0
    while len(text) - pos > CHUNK_MAX:
        limit = pos + CHUNK_TARGET
        floor = pos + CHUNK_TARGET // 2
        cut = max(text.rfind(" ", floor, limit), text.rfind("\n", floor, limit))
        cut = cut + 1 if cut >= 0 else limit
        cuts.append(cut)
        pos = cut
    cuts.append(len(text))
    return cuts


@dataclass
class ChunkRow:
    """A piece of text ready to store."""

    text: str
    spans: str
    words: int


@dataclass
class ChunkPlan:
    """Replace saved chunks ``[first, last)`` by ``rows``; the document is then ``new_total`` long."""

    first: int
    last: int
    rows: list[ChunkRow]
    new_total: int
    ids: list[int] = field(default_factory=list)  # filled in by ChunkLayout.apply
    ords: list[int] = field(default_factory=list)
    renumbered: list[int] | None = None


@dataclass
class ChunkLayout:
    """The chunks of one session as last saved: ids, order keys and lengths."""

    ids: list[int] = field(default_factory=list)
    ords: list[int] = field(default_factory=list)
    starts: list[int] = field(default_factory=lambda: [0])

    @property
    def total(self) -> int:
        return self.starts[-1]

    def __len__(self) -> int:
        return len(self.ids)

    def plan(
        self,
        text: str,
        spans_between: Callable[[int, int], SpanList],
        region: tuple[int, int] | None,
        *,
        full: bool = False,
    ) -> ChunkPlan | None:
        """The rows to rewrite for a change to ``region`` (start, unchanged tail) since the last save."""
        n = len(self.ids)
        if full or n == 0:
            first, last = 0, n
        elif region is None:
            return None
        else:
            lo, tail = region
            hi_old = max(lo, self.total - tail)
            starts = self.starts
            first = min(bisect_right(starts, lo) - 1, n - 1)
            last = min(bisect_right(starts, hi_old - 1) - 1, n - 1) + 1 if hi_old > lo else first + 1
            last = max(last, first + 1)
            # Keep pieces from getting tiny: take a neighbour along.
            delta = len(text) - self.total
            if starts[last] - starts[first] + delta < CHUNK_MIN:
                if last < n:
                    last += 1
                elif first > 0:
                    first -= 1
        old_start = self.starts[first] if n else 0
        old_end = self.starts[last] if n else 0
        new_end = old_end + len(text) - self.total
        region_text = text[old_start:new_end]
        cuts = split_points(region_text)
        rows = []
        for a, b in pairwise(cuts):
            s, e = old_start + a, old_start + b
            rows.append(ChunkRow(text[s:e], encode_spans(spans_between(s, e)), words_starting_in(text, s, e)))
        return ChunkPlan(first, last, rows, len(text))

    def apply(self, conn: sqlite3.Connection, session_id: str, plan: ChunkPlan) -> None:
        """Write ``plan`` inside the caller's transaction; the layout changes only in :meth:`commit`."""
        first, last, count = plan.first, plan.last, len(plan.rows)
        ords = self.ords
        plan.renumbered = None
        left = ords[first - 1] if first > 0 else None
        right = ords[last] if last < len(ords) else None
        if left is not None and right is not None and right - left - 1 < count:
            # The gap is used up (rare): spread every order key evenly again, leaving room for the new rows.
            ords = [ORD_GAP * (i + 1 + (count if i >= last else 0)) for i in range(len(self.ids))]
            keep = [(o, i) for k, (o, i) in enumerate(zip(ords, self.ids, strict=True)) if not first <= k < last]
            conn.executemany("UPDATE chunks SET ord = ? WHERE id = ?", keep)
            plan.renumbered = ords
            left, right = ords[first - 1], ords[last]
        if left is None and right is None:
            left, right = 0, ORD_GAP * (count + 1)
        elif left is None:
            assert right is not None
            left = right - ORD_GAP * (count + 1)
        elif right is None:
            right = left + ORD_GAP * (count + 1)
        assert left is not None and right is not None
        step = (right - left) // (count + 1)
        old_ids = self.ids[first:last]
        if old_ids:
            conn.executemany("DELETE FROM chunks WHERE id = ?", [(i,) for i in old_ids])
        plan.ids, plan.ords = [], []
        for i, row in enumerate(plan.rows):
            ord_ = left + step * (i + 1)
            cur = conn.execute(
                "INSERT INTO chunks (session_id, ord, text, spans, words) VALUES (?, ?, ?, ?, ?)",
                (session_id, ord_, row.text, row.spans, row.words),
            )
            plan.ids.append(int(cur.lastrowid or 0))
            plan.ords.append(ord_)

    def commit(self, plan: ChunkPlan) -> None:
        """Record that ``plan`` (applied with :meth:`apply`) was committed."""
        first, last = plan.first, plan.last
        if plan.renumbered is not None:
            self.ords = list(plan.renumbered)
        self.ids[first:last] = plan.ids
        self.ords[first:last] = plan.ords
        lengths = [b - a for a, b in pairwise(self.starts)]
        lengths[first:last] = [len(row.text) for row in plan.rows]
        self.starts = list(accumulate(lengths, initial=0))


def load_chunks(conn: sqlite3.Connection, session_id: str) -> tuple[str, SpanList, ChunkLayout]:
    """The saved text, spans and layout of a session."""
    layout = ChunkLayout()
    texts: list[str] = []
    spans: SpanList = []
    cache: dict[tuple, Attribution] = {}
    for chunk_id, ord_, text, span_data in conn.execute(
        "SELECT id, ord, text, spans FROM chunks WHERE session_id = ? ORDER BY ord", (session_id,)
    ):
        layout.ids.append(chunk_id)
        layout.ords.append(ord_)
        layout.starts.append(layout.starts[-1] + len(text))
        texts.append(text)
        spans.extend(decode_spans(span_data, len(text), cache))
    return "".join(texts), merge_spans(spans), layout


# ----------------------------------------------------------------------- locks

_HOST = socket.gethostname()
LIVE_TOKENS: set[str] = set()  # locks held by sessions open in this process


def proc_start(pid: int) -> str | None:
    """A process's start time (Linux ``/proc``), to tell a reused pid from the original; None if unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = data[data.rfind(")") + 2 :].split()
    if fields and fields[0] in ("Z", "X"):
        return "dead"
    return fields[19] if len(fields) > 19 else None


def holder_alive(pid: int, host: str, token: str, started: str | None) -> bool:
    """Whether the process holding a lock is still running (assume yes when it cannot be told)."""
    if host != _HOST:
        return True
    if pid == os.getpid():
        return token in LIVE_TOKENS
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    except OSError:
        return True
    now = proc_start(pid)
    if now == "dead":
        return False
    return not (started and now and now != started)


def read_lock(conn: sqlite3.Connection, session_id: str) -> tuple[LockHolder, str] | None:
    """The live holder of a session's lock and its token, or None (stale locks count as free)."""
    row = conn.execute(
        "SELECT pid, host, since, token, proc_start FROM locks WHERE session_id = ?", (session_id,)
    ).fetchone()
    if row is None:
        return None
    pid, host, since, token, started = row
    if not holder_alive(pid, host, token, started):
        return None
    return LockHolder(pid, host, since), token


def acquire_lock(conn: sqlite3.Connection, session_id: str, token: str) -> None:
    """Take the session's lock inside the caller's transaction; raise SessionLocked if someone live holds it."""
    held = read_lock(conn, session_id)
    if held is not None and held[1] != token:
        raise SessionLocked(session_id, held[0])
    conn.execute(
        "INSERT OR REPLACE INTO locks (session_id, pid, host, since, token, proc_start) VALUES (?, ?, ?, ?, ?, ?)",
        (session_id, os.getpid(), _HOST, time.time(), token, proc_start(os.getpid())),
    )
    LIVE_TOKENS.add(token)


def verify_lock(conn: sqlite3.Connection, session_id: str, token: str) -> None:
    """Inside a save's transaction: make sure we still hold the lock (retake it if it vanished)."""
    row = conn.execute(
        "SELECT pid, host, since, token, proc_start FROM locks WHERE session_id = ?", (session_id,)
    ).fetchone()
    if row is None:
        acquire_lock(conn, session_id, token)
        return
    pid, host, since, held_token, started = row
    if held_token != token:
        if holder_alive(pid, host, held_token, started):
            raise SessionLocked(session_id, LockHolder(pid, host, since))
        acquire_lock(conn, session_id, token)


def release_lock(conn: sqlite3.Connection, session_id: str, token: str) -> None:
    """Give the lock back (only if we still hold it)."""
    LIVE_TOKENS.discard(token)
    conn.execute("DELETE FROM locks WHERE session_id = ? AND token = ?", (session_id, token))


_FTS_WORD = re.compile(r"\w+", re.UNICODE)


def fts_terms(query: str) -> list[str]:
    """Each word of ``query`` as a safe FTS5 term (quoted); the last may be a prefix (``dra*``)."""
    words = _FTS_WORD.findall(query)
    quoted = ['"' + w.replace('"', '""') + '"' for w in words]
    if quoted and query.rstrip().endswith("*"):
        quoted[-1] += "*"
    return quoted


def fts_query(query: str) -> str | None:
    """A safe FTS5 query: every word quoted, all required in the same piece of text."""
    return " ".join(fts_terms(query)) or None
