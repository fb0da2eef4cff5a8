"""Sessions in the test's own quillmate home: one made with the writer's text, one read back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from assistant.sessions import Session, SessionStore


def writer_session(text: str, title: str) -> str:
    """Make a session holding ``text`` as the writer's, save and close it; returns its id."""
    with SessionStore() as store, store.create(title=title) as session:
        session.document.insert(0, text, author="writer")
    return session.id


@contextmanager
def reopened(session_id: str) -> Iterator[Session]:
    """The saved session, opened read-only from a fresh store (as another process would see it)."""
    with SessionStore() as store, store.open(session_id, read_only=True) as session:
        yield session
