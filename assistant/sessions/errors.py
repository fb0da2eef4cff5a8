"""Errors of co-writing sessions: each one line a writer can act on."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.errors import QuillmateError, UsageError


@dataclass(frozen=True)
class LockHolder:
    """Who holds a session open for writing."""

    pid: int
    host: str
    since: float

    def describe(self) -> str:
        """E.g. ``pid 4242 on lighthouse since 14:02``."""
        when = time.strftime(
            "%H:%M" if time.time() - self.since < 86400 else "%Y-%m-%d %H:%M", time.localtime(self.since)
        )
        return f"pid {self.pid} on {self.host} since {when}"


class SessionError(QuillmateError):
    """Base of every session error."""


class SessionNotFound(UsageError):
    """No session has that id (or the prefix matches several)."""


class SessionLocked(SessionError):
    """Another quillmate holds the session open for writing.

    Attributes:
        holder: Who holds it (pid, host, since when).
    """

    def __init__(self, session_id: str, holder: LockHolder) -> None:
        super().__init__(
            f"Session {session_id} is open in another quillmate ({holder.describe()}).",
            "Close it there first, or open this one read-only.",
        )
        self.session_id = session_id
        self.holder = holder


class SessionReadOnly(SessionError):
    """The session was opened read-only and cannot be changed."""


class StorageError(SessionError):
    """The sessions database or a file could not be written or read (disk full, I/O error)."""


class DatabaseDamaged(StorageError):
    """The sessions database was damaged; it was moved aside and a fresh one started.

    Attributes:
        moved_to: Where the damaged database now lives.
    """

    def __init__(self, message: str, hint: str = "", moved_to: Path | None = None) -> None:
        super().__init__(message, hint)
        self.moved_to = moved_to


class FileSaveError(StorageError):
    """Saving to a file failed; the file on disk was left as it was.

    The exception is ``written``: the new text did reach the file (its fingerprint is given),
    but the disk failed while making the change durable.
    """

    written: Any = None


class FileChangedOutside(SessionError):
    """The linked file was changed by another program since quillmate last read or saved it."""


__all__ = [
    "DatabaseDamaged",
    "FileChangedOutside",
    "FileSaveError",
    "LockHolder",
    "SessionError",
    "SessionLocked",
    "SessionNotFound",
    "SessionReadOnly",
    "StorageError",
]
