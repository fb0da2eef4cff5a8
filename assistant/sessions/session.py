"""One co-writing session: the document, its events, notes and settings, kept saved.

Get a :class:`Session` from :class:`~assistant.sessions.store.SessionStore`
(``create``, ``open``, ``open_for_file``). Change the text through
``session.document`` (see :mod:`assistant.sessions.document`); every change is
saved in the background within about half a second, accepted generations at
once. ``flush()`` saves now; ``close()`` saves and releases the session.

Recording a generation: front ends use
:class:`~assistant.sessions.recording.GenerationRecorder`, which calls these::

    event_id = session.record_generation(template="continue", variables=vars, params=params,
                                         backend="local", model="gpt2", prompt_tokens=412)
    ...stream...
    session.record_result(event_id, result)          # alternatives, notices, usage
    session.accept(event_id, alternative=1, pos=cursor)   # or session.mark_rejected(event_id)

If saving fails (disk full, I/O error, database damaged) the text stays in
memory: ``session.save_error`` says why (also passed to ``on_error``), saving
is retried, and ``export_rescue(path)`` writes the text to any file.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import secrets
import sys
import threading
import time
import weakref
import zlib
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from assistant.sessions import db
from assistant.sessions.autosave import Autosaver
from assistant.sessions.document import Document
from assistant.sessions.errors import (
    DatabaseDamaged,
    FileChangedOutside,
    FileSaveError,
    SessionReadOnly,
    StorageError,
)
from assistant.sessions.events import GenerationEvent, notices_to_dicts, scrub
from assistant.sessions.files import FileFingerprint, atomic_write, read_text_file
from assistant.sessions.points import anchor_at, at_point
from assistant.sessions.stats import Stats, compute_stats
from backends.errors import QuillmateError, UsageError

if TYPE_CHECKING:
    from assistant.bible import Bible

TITLE_CHARS = 60
# A prompt part longer than this (only a draft's tail, in a very long context) keeps its two ends.
PROMPT_PART_CHARS = 400_000
_OPEN_SESSIONS: weakref.WeakSet[Session] = weakref.WeakSet()


def _close_all_at_exit() -> None:
    for session in list(_OPEN_SESSIONS):
        try:
            session.close()
        except Exception as error:  # at exit there is no one else to tell
            print(f"quillmate: the last changes to session {session.id} could not be saved: {error}", file=sys.stderr)


atexit.register(_close_all_at_exit)


class SessionHome(Protocol):
    """What a session needs from the store that opened it (:class:`~assistant.sessions.store.SessionStore`).

    Sessions are made by the store and the store imports this module, never the other way round.
    """

    path: Path
    generation: int
    autosave_delay: float

    def guard(self) -> AbstractContextManager[Any]:
        """Hold the store's own database connection for some work."""
        ...

    def recover_damaged(self, seen_generation: int) -> Path:
        """Move a damaged database aside and start a fresh one; returns where it went."""
        ...

    def check_file_free(self, file_path: Path, session_id: str | None) -> None:
        """Raise when ``file_path`` already belongs to another session."""
        ...

    def load_events(self, session_id: str, ids: list[int] | None) -> dict[int, GenerationEvent]:
        """The saved events of a session (all, or those in ``ids``)."""
        ...


def first_line_title(text: str) -> str:
    """A title from the first non-empty line of ``text`` (shortened)."""
    for line in text[:2000].splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"
    return ""


class Session:
    """A co-writing session. Use :class:`SessionStore` to get one; see the module docstring."""

    def __init__(
        self,
        store: SessionHome,
        row: Mapping[str, Any],
        document: Document,
        events: list[GenerationEvent],
        layout: db.ChunkLayout,
        *,
        read_only: bool,
        lock_token: str | None,
        partial_events: bool = False,
    ) -> None:
        self.store = store
        self.id: str = row["id"]
        self.created: float = row["created"]
        self.updated: float = row["updated"]
        self.read_only = read_only
        self.document = document
        self._lock = document.lock
        self._title: str | None = row["title"]
        self._auto_title: str = row["auto_title"] or ""
        self._file: Path | None = Path(row["file_path"]) if row["file_path"] else None
        self._fingerprint: FileFingerprint | None = (
            FileFingerprint(row["file_sha256"], row["file_size"], row["file_mtime_ns"]) if row["file_sha256"] else None
        )
        self._notes: str = row["notes"] or ""
        self._bible: dict[str, Any] = _bible_data(row.get("bible"))
        try:
            self._settings: dict[str, Any] = dict(json.loads(row["settings"] or "{}"))
        except (ValueError, TypeError):
            self._settings = {}
        self._events: dict[int, GenerationEvent] = {e.id: e for e in events}
        self._partial: set[int] = set(self._events) if partial_events else set()  # only summary fields loaded
        self._next_event: int = max([row["next_event"], *(e.id + 1 for e in events)])
        self._layout = layout
        self._token = lock_token
        self._dirty_events: set[int] = set()
        self._dirty_meta: set[str] = set()
        self._full_save = False
        self._saved_version = document.version
        self._conn: Any = None
        self._conn_generation = -1
        self._closed = False
        self.save_error: QuillmateError | None = None
        self._stats_cache: tuple[Any, Stats] | None = None
        self._events_rev = 0
        self.warnings: list[QuillmateError] = []
        self.on_saved: Callable[[int], None] | None = None
        self.on_error: Callable[[QuillmateError], None] | None = None
        self._saver: Autosaver | None = None
        if not read_only:
            self._saver = Autosaver(
                self._save_now,
                delay=store.autosave_delay,
                name=f"quillmate-autosave-{self.id}",
                on_error=self._report_error,
            )
            document.on_change = self._changed
            _OPEN_SESSIONS.add(self)

    # ------------------------------------------------------------ metadata
    @property
    def title(self) -> str:
        """The title: set by the writer, else the file's name, else the first line, else ``Untitled``."""
        if self._title:
            return self._title
        if self._file is not None:
            return self._file.name
        return first_line_title(self.document.text) or self._auto_title or "Untitled"

    @title.setter
    def title(self, value: str | None) -> None:
        self._set_meta("title", "_title", (value or "").strip() or None)

    @property
    def file(self) -> Path | None:
        """The file this session is linked to, if any."""
        return self._file

    @property
    def notes(self) -> str:
        """The writer's notes (the app's Notes tab; the ``continue`` template's ``notes`` variable)."""
        return self._notes

    @notes.setter
    def notes(self, value: str) -> None:
        self._set_meta("notes", "_notes", value or "")

    @property
    def bible(self) -> Bible:
        """The story bible: memory (the notes), author's note, entries and settings.

        Assign a changed copy to change it (``session.bible = session.bible.toggled("Mara")``).
        A bible saved by a newer quillmate that this one cannot read is kept as it is in the
        database and this session's bible reads as its memory alone.
        """
        from assistant.bible import Bible, BibleError

        try:
            return Bible.of({**self._bible, "memory": self._notes})
        except BibleError:
            return Bible(memory=self._notes)

    @bible.setter
    def bible(self, value: Bible) -> None:
        data = value.to_data()
        memory = data.pop("memory", "")
        self._check_writable()
        with self._lock:
            self._notes = memory
            self._bible = data
            self._dirty_meta.update({"notes", "bible"})
        self._schedule()

    @property
    def settings(self) -> dict[str, Any]:
        """A copy of the per-session settings (backend, sampling...). Assign a dict to change them."""
        return json.loads(json.dumps(self._settings))

    @settings.setter
    def settings(self, value: Mapping[str, Any]) -> None:
        self._set_meta("settings", "_settings", scrub(dict(value)))

    def update_settings(self, **changes: Any) -> None:
        """Change some settings, keeping the others."""
        merged = {**self._settings, **changes}
        self.settings = merged

    def _set_meta(self, name: str, attr: str, value: Any) -> None:
        self._check_writable()
        with self._lock:
            setattr(self, attr, value)
            self._dirty_meta.add(name)
        self._schedule()

    # -------------------------------------------------------------- events
    @property
    def events(self) -> list[GenerationEvent]:
        """Every generation event, oldest first."""
        with self._lock:
            self._load_partial(None)
            return [self._events[k] for k in sorted(self._events)]

    def events_for(self, template: str) -> list[GenerationEvent]:
        """The events of one template (e.g. ``chat``), oldest first, reading no others in full."""
        with self._lock:
            ids = sorted(k for k, event in self._events.items() if event.template == template)
            self._load_partial(ids)
            return [self._events[k] for k in ids]

    def events_at(self, pos: int) -> list[GenerationEvent]:
        """The suggestions offered at offset ``pos`` of the draft as it is now, oldest first.

        A suggestion belongs to the point its anchor finds again (:mod:`assistant.sessions.points`),
        wherever the text before it has moved since; only those events are read in full.
        """
        with self._lock:
            text = self.document.text
            ids = sorted(
                k
                for k, event in self._events.items()
                if event.position is not None and at_point(event.anchor, text, pos)
            )
            self._load_partial(ids)
            return [self._events[k] for k in ids]

    def event(self, event_id: int) -> GenerationEvent:
        """One event by id (KeyError if there is none)."""
        with self._lock:
            return self._full_event(event_id)

    def _full_event(self, event_id: int) -> GenerationEvent:
        if event_id in self._partial:
            self._load_partial([event_id])
        return self._events[event_id]

    def _load_partial(self, ids: list[int] | None) -> None:
        """Read the full data of events opened with their summary only."""
        if not self._partial:
            return
        wanted = [i for i in ids if i in self._partial] if ids is not None else None
        if wanted == []:
            return
        loaded = self.store.load_events(self.id, wanted if wanted is None or len(wanted) < 500 else None)
        for event_id, event in loaded.items():
            if event_id in self._partial:
                self._events[event_id] = event
                self._partial.discard(event_id)
        if wanted is None:
            self._partial.clear()  # anything not found keeps its summary

    def record_generation(
        self,
        template: str,
        variables: Mapping[str, Any] | None = None,
        params: Any = None,
        backend: str = "",
        model: str = "",
        prompt_tokens: int = 0,
        notices: Any = (),
        source: str = "app",
        prompt: Any = None,
        position: int | None = None,
        anchor: str | None = None,
    ) -> int:
        """Record a generation request before (or as) it runs; returns its event id.

        ``variables`` and ``params`` are stored scrubbed (no API keys; long text shortened).
        ``prompt`` (a ``PromptReport`` or its dict) is stored whole but for anything like a key,
        so the writer can see exactly what was sent. ``position`` is where in the draft a
        suggestion at the cursor is offered; its ``anchor`` is taken from this session's text
        unless given (a front end whose text may be ahead of the session's passes its own).
        """
        report = prompt.to_dict() if hasattr(prompt, "to_dict") else dict(prompt or {})
        if position is not None and anchor is None:
            anchor = anchor_at(self.document.text, position)
        self._check_writable()
        with self._lock:
            event_id = self._next_event
            self._next_event += 1
            self._events[event_id] = GenerationEvent(
                id=event_id,
                template=template,
                variables=scrub(dict(variables or {})),
                params=scrub(params) if params is not None else {},
                backend=backend,
                model=model,
                prompt_tokens=int(prompt_tokens or 0),
                notices=notices_to_dicts(notices),
                source=source,
                prompt=scrub(report, limit=PROMPT_PART_CHARS),
                position=position,
                anchor=scrub(anchor or "") if position is not None else "",
            )
            self._dirty_events.add(event_id)
            self._events_rev += 1
        self._schedule()
        return event_id

    def record_result(self, event_id: int, result: Any) -> None:
        """Store a :class:`GenerationResult`: the alternatives, how they ended, notices and usage."""
        texts = list(getattr(result, "texts", ()) or ())
        reasons = [str(r) for r in (getattr(result, "finish_reasons", ()) or ())]
        error = getattr(result, "error", None)
        usage = getattr(result, "usage", None)

        def update(event: GenerationEvent) -> None:
            event.alternatives = [scrub(t, limit=1_000_000) for t in texts]
            event.finish_reasons = reasons
            if getattr(result, "model", ""):
                event.model = result.model
            event.notices = event.notices + [
                n for n in notices_to_dicts(getattr(result, "notices", ())) if n not in event.notices
            ]
            if usage is not None:
                event.usage = {
                    "prompt_tokens": int(usage.prompt_tokens),
                    "completion_tokens": int(usage.completion_tokens),
                }
                event.prompt_tokens = event.prompt_tokens or int(usage.prompt_tokens)
            if error or "error" in reasons:
                event.status, event.error = "error", scrub(str(error or "The generation failed."))
            elif "cancelled" in reasons:
                event.status = "cancelled"
            elif event.status == "pending":
                event.status = "done"

        self._update_event(event_id, update)

    def mark_accepted(self, event_id: int, alternative: int = 0) -> None:
        """Record that the writer accepted one alternative (``accept`` does this for you)."""

        def update(event: GenerationEvent) -> None:
            event.status, event.accepted_alternative = "accepted", alternative

        self._update_event(event_id, update, urgent=True)

    def mark_rejected(self, event_id: int) -> None:
        """Record that the writer dismissed every alternative."""

        def update(event: GenerationEvent) -> None:
            event.status = "rejected"

        self._update_event(event_id, update)

    def mark_cancelled(self, event_id: int) -> None:
        """Record that the writer stopped the generation."""

        def update(event: GenerationEvent) -> None:
            event.status = "cancelled"

        self._update_event(event_id, update)

    def mark_error(self, event_id: int, message: str) -> None:
        """Record that the generation failed, with the one-line reason."""

        def update(event: GenerationEvent) -> None:
            event.status, event.error = "error", scrub(message)

        self._update_event(event_id, update)

    def _update_event(self, event_id: int, update: Callable[[GenerationEvent], None], *, urgent: bool = False) -> None:
        self._check_writable()
        with self._lock:
            if event_id not in self._events:
                raise KeyError(f"no generation event {event_id} in session {self.id}")
            event = self._full_event(event_id)
            update(event)
            event.updated = time.time()
            self._dirty_events.add(event_id)
            self._events_rev += 1
        self._schedule(urgent=urgent)

    def accept(
        self, event_id: int, alternative: int = 0, pos: int | None = None, text: str | None = None
    ) -> tuple[int, int]:
        """Insert an alternative at ``pos`` (default: the end) as model text, mark it accepted, save at once.

        ``text`` overrides the recorded alternative (e.g. the app trimmed it). Returns the inserted range.
        """
        with self._lock:
            if text is None:
                text = self._alternative_text(event_id, alternative)
            pos = len(self.document) if pos is None else pos
            self.document.accept(pos, text, event_id, alternative)
            self.mark_accepted(event_id, alternative)
            return pos, pos + len(text)

    def rewrite(
        self, event_id: int, start: int, end: int, alternative: int = 0, text: str | None = None
    ) -> tuple[int, int]:
        """Replace ``[start, end)`` by a rewrite alternative, mark it accepted, save at once; returns the new range."""
        with self._lock:
            if text is None:
                text = self._alternative_text(event_id, alternative)
            self.document.apply_rewrite(start, end, text, event_id, alternative)
            self.mark_accepted(event_id, alternative)
            return start, start + len(text)

    def _alternative_text(self, event_id: int, alternative: int) -> str:
        event = self._full_event(event_id) if event_id in self._events else None
        if event is None or not 0 <= alternative < len(event.alternatives):
            raise KeyError(f"generation event {event_id} has no alternative {alternative}")
        return event.alternatives[alternative]

    # --------------------------------------------------------------- stats
    def stats(self) -> Stats:
        """Words by writer, model and edited model text, and per model (cached until the next change).

        Takes about 0.1 s on a 100,000-word draft: call it on demand or on a timer, not on every keystroke.
        """
        with self._lock:
            key = (self.document.version, self._events_rev)
            if self._stats_cache is None or self._stats_cache[0] != key:
                self._stats_cache = (key, compute_stats(self.document, self._events))
            return self._stats_cache[1]

    # --------------------------------------------------------------- files
    def save_to_file(self, path: Path | str | None = None, *, force: bool = False) -> Path:
        """Write the text to the linked file (or ``path``, which becomes the linked file) atomically.

        Raises:
            FileChangedOutside: the linked file was changed by another program (pass ``force=True`` to overwrite).
            FileSaveError: the write failed; the file on disk is untouched.
            SessionReadOnly: the session is open read-only.
        """
        if self.read_only:  # another quillmate may be writing this file: never touch it
            raise SessionReadOnly(
                f"Session {self.id} is open read-only, so it never writes its file.",
                "Save from the quillmate that has it open for writing.",
            )
        target = Path(path).expanduser().resolve() if path is not None else self._file
        if target is None:
            raise UsageError("This session is not linked to a file yet.", "Give a file name to save it to.")
        if not force and target == self._file and self.file_changed_outside():
            raise FileChangedOutside(
                f"{target.name} was changed by another program since quillmate last saved or read it.",
                "Reload it to see those changes, or save again to overwrite them.",
            )
        relink = target != self._file
        if relink:
            self._check_writable()
            self.store.check_file_free(target, self.id)
        with self._lock:
            text = self.document.text
        problem: FileSaveError | None = None
        try:
            fingerprint = atomic_write(target, text)
        except FileSaveError as error:
            if error.written is None:
                raise
            fingerprint, problem = error.written, error  # the text is in the file; only its durability is in doubt
        with self._lock:
            self._file, self._fingerprint = target, fingerprint
            if not self.read_only:
                self._dirty_meta.add("file")
        if not self.read_only:
            self._schedule(urgent=True)
        if problem is not None:
            raise problem
        return target

    def file_changed_outside(self) -> bool:
        """True when the linked file differs from what quillmate last saved or read (or is gone)."""
        if self._file is None or self._fingerprint is None:
            return False
        return not self._fingerprint.matches(self._file)

    def reload_from_file(self) -> None:
        """Make the text what the linked file now holds (the differences count as the writer's typing)."""
        if self._file is None:
            raise UsageError("This session is not linked to a file.")
        text, fingerprint = read_text_file(self._file)
        with self._lock:
            self.document.break_undo_group()
            self.document.set_text(text)
            self.document.break_undo_group()
            self._fingerprint = fingerprint
            self._dirty_meta.add("file")
        self._schedule(urgent=True)

    def export_rescue(self, path: Path | str) -> Path:
        """Write the text to ``path`` (atomically), e.g. when the database cannot be written."""
        target = Path(path).expanduser()
        atomic_write(target, self.document.text)
        return target

    # -------------------------------------------------------------- saving
    @property
    def saved(self) -> bool:
        """True when every change is in the database."""
        with self._lock:
            return (
                self.document.version == self._saved_version
                and not self.document.has_unsaved_region
                and not self._dirty_events
                and not self._dirty_meta
                and not self._full_save
            )

    def flush(self) -> None:
        """Save every change now (on this thread).

        Raises:
            StorageError: the database could not be written; the text is still in memory.
        """
        if self._saver is not None and not self._closed:
            self._saver.flush()

    def close(self) -> None:
        """Save, stop the autosaver and release the session (raises if the last save failed)."""
        if self._closed:
            return
        self._closed = True
        _OPEN_SESSIONS.discard(self)
        error: BaseException | None = None
        if self._saver is not None:
            try:
                self._saver.close()
            except QuillmateError as exc:
                error = exc
            self.document.on_change = None
        if self._token is not None:
            with contextlib.suppress(Exception):
                if self._conn is not None:
                    db.release_lock(self._conn, self.id, self._token)
                else:  # never saved: the lock was taken on the store's connection
                    with self.store.guard() as conn:
                        db.release_lock(conn, self.id, self._token)
        if self._token is not None:
            db.LIVE_TOKENS.discard(self._token)
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
        self.document.read_only = True
        if error is not None:
            raise error

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called: nothing more is recorded or saved."""
        return self._closed

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_writable(self) -> None:
        if self.read_only or self._closed:
            raise SessionReadOnly(
                f"Session {self.id} is open read-only; changes cannot be made or saved.",
                "Close the other quillmate that has it open, then open it again.",
            )

    def _changed(self, urgent: bool) -> None:
        if self._saver is not None:
            self._saver.notify(urgent)

    def _schedule(self, urgent: bool = False) -> None:
        if self._saver is not None and not self._closed:
            self._saver.notify(urgent)

    def _report_error(self, error: QuillmateError) -> None:
        self.save_error = error
        if self.on_error is not None:
            self.on_error(error)

    def _connection(self) -> Any:
        if self._conn is None or self._conn_generation != self.store.generation:
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    self._conn.close()
                self._conn = None
                self._full_save = True  # the database was replaced: write everything again
            self._conn = db.connect(self.store.path)
            self._conn_generation = self.store.generation
        return self._conn

    def _save_now(self) -> None:
        """Write every unsaved change in one transaction (runs on the autosaver's thread, or in flush)."""
        if self.read_only:
            return
        for attempt in range(2):
            try:
                self._save_once()
                return
            except db.sqlite3.Error as error:
                if db.error_kind(error) == "corrupt" and attempt == 0:
                    moved = self.store.recover_damaged(self._conn_generation)
                    self.warnings.append(
                        DatabaseDamaged(
                            f"The sessions database was damaged; it was moved to {moved.name} and this session "
                            "was saved into a fresh one.",
                            "Other sessions are in the moved file.",
                            moved,
                        )
                    )
                    continue
                raise db.storage_error(error, self.store.path) from None
            except OSError as error:
                raise db.storage_error(error, self.store.path) from None

    def _save_once(self) -> None:
        conn = self._connection()
        with self._lock:
            doc = self.document
            version = doc.version
            full = self._full_save
            region = doc.take_dirty()
            if full:
                with contextlib.suppress(QuillmateError):  # rewriting everything: read events not yet loaded
                    self._load_partial(None)
                layout = db.ChunkLayout()
                plan = layout.plan(doc.text, doc.spans_between, None, full=True)
                event_ids = set(self._events)
                meta = {"title", "notes", "settings", "file", "bible"}
            else:
                layout = self._layout
                plan = layout.plan(doc.text, doc.spans_between, region)
                event_ids, meta = self._dirty_events, self._dirty_meta
            self._dirty_events, self._dirty_meta = set(), set()
            if plan is None and not event_ids and not meta and version == self._saved_version:
                return
            events = [self._event_row(self._events[i]) for i in sorted(event_ids)]
            values = self._meta_values(meta, doc.text)
        try:
            with db.transaction(conn):
                if full:
                    self._write_session_row(conn, values)
                    conn.execute("DELETE FROM chunks WHERE session_id = ?", (self.id,))
                    conn.execute("DELETE FROM events WHERE session_id = ?", (self.id,))
                db.verify_lock(conn, self.id, self._token or "")
                if plan is not None:
                    layout.apply(conn, self.id, plan)
                if events:
                    conn.executemany(
                        "INSERT OR REPLACE INTO events (session_id, seq, created, template, backend, "
                        "model, status, position, anchor, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        events,
                    )
                self._update_session_row(conn, values)
        except BaseException as error:
            with self._lock:
                if region is not None:
                    doc.restore_dirty(region)
                self._dirty_events |= event_ids
                self._dirty_meta |= meta
                if full or (isinstance(error, db.sqlite3.DatabaseError) and db.error_kind(error) == "corrupt"):
                    self._full_save = True
            raise
        if plan is not None:
            layout.commit(plan)
        with self._lock:
            if full:
                self._layout = layout
                self._full_save = False
            self._saved_version = version
            self.updated = values["updated"]
        self.save_error = None
        if self.on_saved is not None:
            with contextlib.suppress(Exception):
                self.on_saved(version)

    def _event_row(self, event: GenerationEvent) -> tuple[Any, ...]:
        text = json.dumps(event.to_dict(), ensure_ascii=False)
        data: str | bytes = text
        if len(text) > 512:  # events hold prose: compressed they take a third of the space
            data = zlib.compress(text.encode("utf-8"), 6)
        return (
            self.id,
            event.id,
            event.created,
            event.template,
            event.backend,
            event.model,
            event.status,
            event.position,
            event.anchor,
            data,
        )

    def _meta_values(self, meta: set[str], text: str) -> dict[str, Any]:
        values: dict[str, Any] = {
            "updated": time.time(),
            "length": len(text),
            "auto_title": first_line_title(text),
            "next_event": self._next_event,
        }
        if "title" in meta:
            values["title"] = self._title
        if "notes" in meta:
            values["notes"] = self._notes
        if "settings" in meta:
            values["settings"] = json.dumps(self._settings, ensure_ascii=False)
        if "bible" in meta:
            values["bible"] = json.dumps(self._bible, ensure_ascii=False)
        if "file" in meta:
            fp = self._fingerprint
            values.update(
                file_path=str(self._file) if self._file else None,
                file_sha256=fp.sha256 if fp else None,
                file_size=fp.size if fp else None,
                file_mtime_ns=fp.mtime_ns if fp else None,
            )
        return values

    def _update_session_row(self, conn: Any, values: Mapping[str, Any]) -> None:
        names = list(values)
        conn.execute(
            f"UPDATE sessions SET {', '.join(f'{n} = ?' for n in names)} WHERE id = ?",
            [*(values[n] for n in names), self.id],
        )

    def _write_session_row(self, conn: Any, values: Mapping[str, Any]) -> None:
        """(Re)create this session's row, e.g. in a fresh database after the old one was damaged."""
        if conn.execute("SELECT 1 FROM sessions WHERE id = ?", (self.id,)).fetchone() is None:
            conn.execute(
                "INSERT INTO sessions (id, created, updated) VALUES (?, ?, ?)",
                (self.id, self.created, values["updated"]),
            )


def _bible_data(stored: Any) -> dict[str, Any]:
    """The bible's JSON column as a dict (an unreadable one counts as empty)."""
    try:
        data = json.loads(stored or "{}")
    except (ValueError, TypeError):
        return {}
    return data if isinstance(data, dict) else {}


def new_session_id() -> str:
    """A short, typable id: 8 hex digits."""
    return secrets.token_hex(4)


def session_lock_token() -> str:
    """A token naming one open session in one process."""
    return f"{secrets.token_hex(8)}-{threading.get_ident()}"


__all__ = ["Session", "SessionHome", "StorageError", "first_line_title"]
