"""Keys a backend may use without knowing where they are kept.

Backends sit below quillmate's core and never import it, yet the OpenAI backend
should find the key a writer saved with ``quillmate keys set openai``. So the
application hosting the backends hands them a *key store*: a function from a
key's name to the stored key (or None). quillmate's core installs one that reads
``assistant.keys`` as soon as the ``assistant`` package is imported; a program
using ``backends`` on its own has none, and stored keys are simply not found::

    from backends.credentials import StoredSecret, use_key_store

    use_key_store(lambda name: StoredSecret(vault.get(name), f"vault entry {name}") if name in vault else None)

Also here: :func:`mask`, the one way a key is ever shown (``sk-…abcd``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field


def mask(key: str) -> str:
    """A safe form of a key: ``sk-…abcd`` (nothing at all for short keys)."""
    key = key.strip()
    if len(key) < 12:
        return "…" if key else ""
    prefix = key[:3] if key[:3].lower() == "sk-" else ""
    return f"{prefix}…{key[-4:]}"


@dataclass(frozen=True)
class StoredSecret:
    """A stored key and where it came from (``repr`` shows it masked).

    Attributes:
        value: The key itself.
        source: Where it is kept, for messages (e.g. ``key file ~/.config/quillmate/keys/openai.key``).
    """

    value: str = field(repr=False)
    source: str

    def __repr__(self) -> str:
        return f"StoredSecret({mask(self.value)!r}, source={self.source!r})"


KeyStore = Callable[[str], "StoredSecret | None"]
"""Looks a key up by name (``openai``); None when none is stored."""

_store: KeyStore | None = None
_store_lock = threading.Lock()


def use_key_store(store: KeyStore | None) -> KeyStore | None:
    """Make ``store`` the place backends look for stored keys (None: nowhere); returns the previous one."""
    global _store
    with _store_lock:
        previous, _store = _store, store
    return previous


def stored_key(name: str) -> StoredSecret | None:
    """The key stored under ``name`` in the installed key store, or None (also when there is no store)."""
    store = _store
    if store is None:
        return None
    found = store(name)
    return found if found is not None and found.value else None
