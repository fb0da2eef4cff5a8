"""The app's shared state: the session, the Assistant, the main screen's widgets, and telling the writer things."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from textual.app import App
from textual.reactive import var
from textual.widget import Widget

from assistant import Notice, QuillmateError
from tui.suggestion import Suggestion
from tui.widgets.editor import DraftEditor
from tui.widgets.panels import SAMPLING_FIELDS, ChatView, ResultsView, SettingsView, SidePanel, StatsView
from tui.widgets.status import StatusBar

if TYPE_CHECKING:
    from assistant import Backend
    from assistant.config import Config
    from assistant.core import Assistant
    from assistant.sessions import Session, SessionStore


W = TypeVar("W", bound=Widget)
BackendFactory = Callable[[str, "str | None"], "Backend"]
"""Makes a backend from a profile name and an optional model (tests inject scripted ones)."""

SAMPLING_NAMES = frozenset(spec.name for spec in SAMPLING_FIELDS)
"""The generation settings a writer can keep with a session (the Settings tab)."""


class AppBase(App[None]):
    """What every part of the writing app shares; the app itself is :class:`tui.app.QuillmateApp`."""

    generating: var[bool] = var(False)
    """True while a generation (of any kind) is streaming."""

    def __init__(
        self,
        session: Session,
        assistant: Assistant | Callable[[], Assistant],
        *,
        config: Config | None = None,
        backend_name: str = "",
        store: SessionStore | None = None,
        owns_store: bool = False,
        backend_factory: BackendFactory | None = None,
        load_backend: bool = True,
        notices: tuple[str, ...] = (),
        new_session: bool = False,
    ) -> None:
        super().__init__()
        self._new_session = new_session
        self.session = session
        if callable(assistant) and not hasattr(assistant, "prepare"):
            self._assistant: Assistant | None = None
            self._assistant_factory: Callable[[], Assistant] | None = assistant
        else:
            self._assistant = assistant  # type: ignore[assignment]
            self._assistant_factory = None
        self._assistant_lock = threading.Lock()
        if config is None:
            config = self._assistant.config if self._assistant is not None else None
        if config is None:
            from assistant.config import load_config

            config = load_config()
        self.config: Config = config
        self._backend_name = backend_name or (self._assistant.backend.name if self._assistant else "")
        self.store = store
        self._owns_store = owns_store
        self.backend_factory = backend_factory
        self._load_on_start = load_backend
        self._startup_notices = list(notices)
        self._shown_notices: set[str] = set()
        self._reported_save_errors: set[str] = set()
        self._streaming: Suggestion | None = None
        self._streamed_tokens = 0
        self._rewrite: dict[str, Any] = {}
        self._force_save_until = 0.0
        self._file_version: int | None = None  # the draft's version the linked file is known to hold
        self._counts_timer: Any = None
        self._notes_timer: Any = None
        self._finished = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.exit_message = ""
        self.backend_ready = False
        self.first_frame_at: float | None = None
        """``time.perf_counter()`` when the first screen was drawn (the writer can type from then on)."""
        self.on_first_frame: Callable[[], None] | None = None
        self._widgets: dict[str, Widget] = {}
        self.notification_log: list[tuple[str, str]] = []
        """Every notification shown, as (severity, message): the last 200."""

    @property
    def assistant(self) -> Assistant:
        """The Assistant (made on first use: importing it is the slow part of starting up)."""
        if self._assistant is None:
            with self._assistant_lock:
                if self._assistant is None and self._assistant_factory is not None:
                    self._assistant = self._assistant_factory()
        assert self._assistant is not None
        return self._assistant

    def _find(self, selector: str, kind: type[W]) -> W:
        """A widget of the main screen (queries on the app would search a dialog on top of it)."""
        found = self._widgets.get(selector)
        if found is None:
            base = self.screen_stack[0] if self.screen_stack else self.screen
            found = self._widgets[selector] = base.query_one(selector, kind)
        return found  # type: ignore[return-value]

    @property
    def editor(self) -> DraftEditor:
        """The draft editor."""
        return self._find("#editor", DraftEditor)

    @property
    def status(self) -> StatusBar:
        """The status bar."""
        return self._find("#status", StatusBar)

    @property
    def side(self) -> SidePanel:
        """The side panel."""
        return self._find("#side", SidePanel)

    @property
    def results(self) -> ResultsView:
        """The Results tab."""
        return self._find("#results-view", ResultsView)

    @property
    def chat(self) -> ChatView:
        """The Chat tab."""
        return self._find("#chat-view", ChatView)

    @property
    def settings_view(self) -> SettingsView:
        """The Settings tab."""
        return self._find("#settings-view", SettingsView)

    @property
    def stats_view(self) -> StatsView:
        """The Stats tab."""
        return self._find("#stats-view", StatsView)

    def _handle_exception(self, error: Exception) -> None:
        """A bug got through: save, explain in one paragraph, keep the traceback in a log file."""
        log = None
        with contextlib.suppress(Exception):
            log = _write_crash_log(error)
        with contextlib.suppress(Exception):
            self.session.flush()
        where = f" The details are in {log}." if log else ""
        self.exit_message = (
            f"quillmate met an unexpected problem and had to close ({type(error).__name__}: {error}). "
            f"Your draft is saved: quillmate write --session {self.session.id}.{where}"
        )
        super()._handle_exception(error)
        if not _debugging() and hasattr(self, "_exit_renderables"):
            self._exit_renderables.clear()  # the message above instead of a traceback (QUILLMATE_DEBUG=1 keeps it)

    def notify(self, message: str, *, title: str = "", severity: Any = "information", timeout: float | None = None,
               markup: bool = False) -> None:
        """Show a notification (never markup: the writer's and the model's words are shown as written)."""
        self.notification_log.append((str(severity), message))
        del self.notification_log[:-200]
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def _report(self, error: BaseException, *, prefix: str = "") -> None:
        """Tell the writer about an error, with what to do about it."""
        if isinstance(error, QuillmateError):
            text = error.message + (f"\n{error.hint}" if error.hint else "")
        else:
            text = f"Something went wrong: {type(error).__name__}: {error}"
        self.notify(prefix + text, severity="error", timeout=10)

    def _notice(self, notice: Notice) -> None:
        key = notice.kind if notice.kind in ("truncated", "model", "info") else notice.message
        if key in self._shown_notices:
            return
        self._shown_notices.add(key)
        severity = "warning" if notice.kind in ("truncated", "unsupported", "adjusted") else "information"
        self.notify(notice.message, severity=severity, timeout=8)

    @property
    def session_params(self) -> dict[str, Any]:
        """The sampling settings the writer set for this session."""
        params = self.session.settings.get("params") or {}
        return {k: v for k, v in params.items() if k in SAMPLING_NAMES}


def _debugging() -> bool:
    import os

    return os.environ.get("QUILLMATE_DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}


def _write_crash_log(error: BaseException) -> Path:
    """Write the traceback of ``error`` to a log file in quillmate's data folder; return its path."""
    import traceback

    from assistant import paths

    folder = paths.ensure_dir(paths.data_dir() / "logs")
    path = folder / time.strftime("crash-%Y%m%d-%H%M%S.log")
    path.write_text("".join(traceback.format_exception(type(error), error, error.__traceback__)), encoding="utf-8")
    return path
