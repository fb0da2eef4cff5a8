"""API keys stored on this machine: one file per key, readable only by you.

``quillmate keys set openai`` writes ``keys_dir()/openai.key``. The folder is
created 0700 and each file is created 0600 before the key is written into it (a
temporary file renamed into place), so no other user can read a key at any
moment. Keys are only ever shown masked (``sk-…abcd``).

Backends never import this module: :func:`stored_secret` is handed to them as
their key store (``backends.credentials.use_key_store``) when the ``assistant``
package is imported.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from assistant import paths
from backends.credentials import StoredSecret, mask
from backends.errors import UsageError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SUFFIX = ".key"


@dataclass(frozen=True)
class StoredKey:
    """A key file, described without its secret."""

    name: str
    masked: str
    path: Path


def check_name(name: str) -> str:
    """Return ``name`` if it can name a key file; raise UsageError otherwise."""
    if not _NAME.match(name or "") or ".." in name:
        raise UsageError(
            f"'{name}' cannot name a key.", "Use letters, digits, '-', '_' or '.', e.g. `quillmate keys set openai`."
        )
    return name


def key_path(name: str) -> Path:
    """Where the key called ``name`` is stored."""
    return paths.keys_dir() / f"{check_name(name)}{SUFFIX}"


def _private_dir() -> Path:
    folder = paths.ensure_dir(paths.keys_dir())
    with contextlib.suppress(OSError):
        if stat.S_IMODE(folder.stat().st_mode) & 0o077:
            folder.chmod(0o700)
    return folder


def save_key(name: str, value: str) -> Path:
    """Store ``value`` as the key ``name`` (0600 file in a 0700 folder); return its path.

    Raises:
        UsageError: for an empty key, a key with spaces or line breaks, or a bad name.
    """
    value = value.strip()
    if not value:
        raise UsageError("The key is empty; nothing was saved.")
    if any(ch.isspace() for ch in value):
        raise UsageError("The key contains spaces or line breaks; paste it on one line.")
    target = key_path(name)
    folder = _private_dir()
    temporary = folder / f".{target.name}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(value + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)  # in case a umask or filesystem widened it
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    return target


def read_key_file(path: Path) -> str | None:
    """The key in ``path``, or None when the file is missing or empty."""
    try:
        value = path.expanduser().read_text(encoding="utf-8").strip()
    except (FileNotFoundError, IsADirectoryError):
        return None
    return value or None


def load_key(name: str) -> str | None:
    """The stored key ``name``, or None."""
    return read_key_file(key_path(name))


def stored_secret(name: str) -> StoredSecret | None:
    """The stored key ``name`` and the file it is in, or None: the key store backends are given."""
    path = key_path(name)
    try:
        value = read_key_file(path)
    except (OSError, UnicodeDecodeError):  # unreadable counts as not stored: the backend then says what to do
        return None
    return StoredSecret(value, f"key file {path}") if value else None


def remove_key(name: str) -> bool:
    """Delete the stored key ``name``; False when there was none."""
    try:
        key_path(name).unlink()
    except FileNotFoundError:
        return False
    return True


def list_keys() -> list[StoredKey]:
    """Every stored key, masked, sorted by name."""
    folder = paths.keys_dir()
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        value = read_key_file(path) or ""
        found.append(StoredKey(path.name[: -len(SUFFIX)], mask(value), path))
    return found
