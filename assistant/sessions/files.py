"""Saving a draft to a file without ever leaving a half-written file behind.

:func:`atomic_write` writes a temporary file in the same folder, flushes and
fsyncs it, gives it the old file's permissions, renames it over the old file
(``os.replace``, atomic on POSIX) and fsyncs the folder. If anything fails
(disk full, I/O error) the temporary file is removed, the original is left
untouched, and :class:`FileSaveError` says what happened in one line.

:class:`FileFingerprint` remembers what quillmate last wrote or read (size,
mtime and SHA-256), so it can tell when another program changed the file.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from assistant.sessions.errors import FileSaveError, StorageError

NEW_FILE_MODE = 0o600


@dataclass(frozen=True)
class FileFingerprint:
    """What a file held when quillmate last read or wrote it."""

    sha256: str
    size: int
    mtime_ns: int

    @classmethod
    def of_bytes(cls, data: bytes, path: Path) -> FileFingerprint:
        """The fingerprint of ``data`` just written to (or read from) ``path``."""
        st = path.stat()
        return cls(hashlib.sha256(data).hexdigest(), st.st_size, st.st_mtime_ns)

    def matches(self, path: Path) -> bool:
        """True when ``path`` still holds what this fingerprint describes (False if it is gone)."""
        try:
            st = path.stat()
        except FileNotFoundError:
            return False
        except OSError as error:
            raise _storage_error(error, path, "check") from None
        if st.st_size != self.size:
            return False
        if st.st_mtime_ns == self.mtime_ns:
            return True
        try:
            return hashlib.sha256(path.read_bytes()).hexdigest() == self.sha256
        except OSError as error:
            raise _storage_error(error, path, "check") from None


def describe_os_error(error: OSError) -> str:
    """Plain words for the usual reasons a write fails."""
    code = error.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full"
    if code == errno.EIO:
        return "the disk reported an input/output error"
    if code in (errno.EACCES, errno.EPERM):
        return "permission was denied"
    if code == errno.EROFS:
        return "the disk is read-only"
    if code == errno.ENOENT:
        return "the folder does not exist"
    return error.strerror or str(error)


def _storage_error(error: OSError, path: Path, verb: str) -> StorageError:
    return FileSaveError(
        f"Could not {verb} {path}: {describe_os_error(error)}.",
        "Free some space or choose another place; your text is still here.",
    )


def atomic_write(path: Path | str, data: str | bytes) -> FileFingerprint:
    """Replace ``path`` with ``data`` atomically; keep the file's permissions (new files get 0600).

    Raises:
        FileSaveError: the write failed, or the file's permissions forbid writing it; the original
            file is untouched and no temporary file is left.
    """
    path = Path(path)
    if path.is_symlink():  # write through the link, keep the link
        path = Path(os.path.realpath(path))
    payload = data.encode("utf-8") if isinstance(data, str) else data
    folder = path.parent if str(path.parent) else Path(".")
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = NEW_FILE_MODE
    except OSError as error:
        raise _storage_error(error, path, "save") from None
    else:
        # The rename would replace a file its permissions protect (even for root, who may write anything).
        if not mode & 0o222 or not os.access(path, os.W_OK):
            raise FileSaveError(
                f"{path.name} is read-only (its permissions do not allow writing), so quillmate left it as it was.",
                f"Make it writable (chmod u+w {path.name}) or use Save as; your text is still here.",
            )
    tmp = folder / f".{path.name}.{secrets.token_hex(4)}.quillmate-tmp"
    fd = -1
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), NEW_FILE_MODE)
        view = memoryview(payload)
        while view:
            written = os.write(fd, view)
            if written <= 0:
                raise OSError(errno.EIO, "short write")
            view = view[written:]
        os.fsync(fd)
        if mode != NEW_FILE_MODE:
            os.fchmod(fd, mode)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except OSError as error:
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise FileSaveError(
            f"Could not save {path.name}: {describe_os_error(error)}; the file on disk was left as it was.",
            "Free some space or save somewhere else; your text is still here.",
        ) from None
    fingerprint = FileFingerprint.of_bytes(payload, path)
    try:
        fsync_dir(folder)
    except OSError as error:
        problem = FileSaveError(
            f"{path.name} was written, but the disk reported a problem while making it safe: "
            f"{describe_os_error(error)}.",
            "Check the disk, and keep a copy elsewhere (Save as); your text is still here.",
        )
        problem.written = fingerprint
        raise problem from None
    return fingerprint


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable.

    Folders that cannot be opened or synced at all (some file systems) are skipped; a disk
    that fails the sync (EIO, ENOSPC) raises OSError.
    """
    try:
        dir_fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError as error:
        if error.errno in (errno.EIO, errno.ENOSPC, errno.EDQUOT):
            raise
    finally:
        os.close(dir_fd)


def read_text_file(path: Path | str) -> tuple[str, FileFingerprint]:
    """The UTF-8 text of ``path`` and its fingerprint.

    Raises:
        StorageError: the file cannot be read or is not UTF-8.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise StorageError(f"Could not read {path}: {describe_os_error(error)}.") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise StorageError(
            f"{path.name} is not UTF-8 text (bad byte at offset {error.start}).",
            f"Convert it first, e.g. `iconv -f latin1 -t utf-8 {path.name}`.",
        ) from None
    return text, FileFingerprint.of_bytes(data, path)
