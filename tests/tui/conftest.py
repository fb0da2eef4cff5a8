"""Fixtures for the writing app's tests: a scripted backend, a temporary session store, an app factory."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.config import load_config
from assistant.core import Assistant
from assistant.sessions import SessionStore
from tests.support.scripted_backend import ScriptedBackend
from tui.app import QuillmateApp, make_app

SIZE = (100, 30)


@pytest.fixture
def backend() -> ScriptedBackend:
    """The backend the app starts with (named like the default profile)."""
    return ScriptedBackend("local")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SessionStore]:
    """A session store in a temporary folder, saving quickly."""
    s = SessionStore(tmp_path / "sessions.db", autosave_delay=0.05)
    yield s
    s.close()


@pytest.fixture
def backends() -> dict[str, ScriptedBackend]:
    """Backends made by the app's backend factory, by profile name."""
    return {}


@pytest.fixture
def build(
    store: SessionStore, backend: ScriptedBackend, backends: dict[str, ScriptedBackend]
) -> Iterator[Callable[..., QuillmateApp]]:
    """Make an app on a new session (``text``) or on a file (``file``), with the scripted backend."""
    apps: list[QuillmateApp] = []

    def factory(name: str, model: str | None) -> ScriptedBackend:
        made = ScriptedBackend(name, model=model or f"{name}-model")
        backends[name] = made
        return made

    def make(text: str = "", *, file: Path | None = None, read_only: bool = False, **kwargs: Any) -> QuillmateApp:
        if file is not None:
            session = store.open_for_file(file, read_only=read_only)
        else:
            session = store.create(text=text)
            if read_only:
                session_id = session.id
                session.close()
                session = store.open(session_id, read_only=True)
        assistant = Assistant(backend, config=load_config())
        app = make_app(session=session, store=store, assistant=assistant, backend_factory=factory, **kwargs)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.finish()


async def until(
    pilot: Any, condition: Callable[[], object], timeout: float = 5.0, what: str | Callable[[], str] = ""
) -> None:
    """Let the app run until ``condition()`` is true (bounded; fails the test otherwise).

    ``what`` names what is awaited; a callable is asked only on failure, to say how things stand then.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            said = what() if callable(what) else what
            raise AssertionError(f"timed out waiting for {said or condition}")
        await pilot.pause(0.01)


async def settle(app: QuillmateApp, pilot: Any) -> None:
    """Wait for every worker to finish, then for pending messages."""
    await app.workers.wait_for_complete()
    await pilot.pause()


def to_end(app: QuillmateApp) -> None:
    """Put the cursor at the end of the draft."""
    editor = app.editor
    editor.move_cursor(editor.document.end)


def notifications(app: QuillmateApp, severity: str | None = None) -> list[str]:
    """The text of every notification shown so far (optionally of one severity)."""
    return [message for kind, message in app.notification_log if severity is None or kind == severity]
