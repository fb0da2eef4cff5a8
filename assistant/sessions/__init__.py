"""Co-writing sessions: never lose a word, know who wrote what.

One implementation for the writing app, the CLI and the HTTP server.

* :class:`SessionStore`: the database. ``create(title=None, file=None)``,
  ``open(id, read_only=False)``, ``open_for_file(path)``, ``list()``,
  ``search(query)``, ``delete(id)``; ``recovered`` is set if a damaged
  database was moved aside.
* :class:`Session`: ``document`` (a :class:`Document`), ``notes``,
  ``settings``, ``title``, ``events``, ``events_at(pos)`` (the suggestions made at
  one point of the draft), ``record_generation(...)``,
  ``record_result(id, result)``, ``accept(id, alternative, pos)``,
  ``rewrite(id, start, end, alternative)``, ``mark_rejected/cancelled/error``,
  ``stats()``, ``save_to_file()``, ``file_changed_outside()``,
  ``reload_from_file()``, ``export_rescue(path)``, ``flush()``, ``close()``;
  ``save_error``/``on_error``/``on_saved`` report the background saver.
* :class:`Document`: ``text``, ``spans()``, ``spans_in(start, end)``,
  ``insert``, ``delete``, ``replace``, ``accept``, ``apply_rewrite``,
  ``set_text``, ``undo``, ``redo``.
* :class:`GenerationRecorder`: records one generation (``start``, then one of
  ``finished(result)``, ``cancelled(partial)``, ``failed(error)``), the same way
  for the app, the CLI, the server and the language server.
* :func:`export_session` (md, md-attributed, html, json) and
  :func:`record_cli_generation` (``quillmate run --session ID``).

Importing this package imports only the standard library and quillmate's core.
"""

from assistant.sessions.document import Attribution, Document, Span
from assistant.sessions.errors import (
    DatabaseDamaged,
    FileChangedOutside,
    FileSaveError,
    LockHolder,
    SessionError,
    SessionLocked,
    SessionNotFound,
    SessionReadOnly,
    StorageError,
)
from assistant.sessions.events import GenerationEvent
from assistant.sessions.export import FORMATS, export_session
from assistant.sessions.files import atomic_write
from assistant.sessions.recording import GenerationRecorder, record_cli_generation
from assistant.sessions.session import Session
from assistant.sessions.stats import ModelStats, Stats
from assistant.sessions.store import SearchHit, SessionInfo, SessionStore

__all__ = [
    "FORMATS",
    "Attribution",
    "DatabaseDamaged",
    "Document",
    "FileChangedOutside",
    "FileSaveError",
    "GenerationEvent",
    "GenerationRecorder",
    "LockHolder",
    "ModelStats",
    "SearchHit",
    "Session",
    "SessionError",
    "SessionInfo",
    "SessionLocked",
    "SessionNotFound",
    "SessionReadOnly",
    "SessionStore",
    "Span",
    "Stats",
    "StorageError",
    "atomic_write",
    "export_session",
    "record_cli_generation",
]
