"""What the app lends its flows: the session, the backend, the main screen's widgets, notifications, scheduling."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from textual.widget import Widget

from assistant import Notice, QuillmateError
from tui.widgets.editor import DraftEditor
from tui.widgets.status import StatusBar

if TYPE_CHECKING:
    from textual.app import App
    from textual.timer import Timer
    from textual.worker import Worker

    from assistant import Backend
    from assistant.config import Config
    from assistant.core import Assistant
    from assistant.sessions import Session
    from tui.widgets.panels import ChatView, ResultsView, SettingsView, SidePanel, StatsView


W = TypeVar("W", bound=Widget)
BackendFactory = Callable[[str, "str | None"], "Backend"]
"""Makes a backend from a profile name and an optional model (tests inject scripted ones)."""


@cache
def sampling_names() -> frozenset[str]:
    """The generation settings a writer can keep with a session (the Settings tab's)."""
    from tui.widgets.panels import SAMPLING_FIELDS

    return frozenset(spec.name for spec in SAMPLING_FIELDS)


class BackendHolder:
    """The Assistant, made on first use (importing it is the slow part of starting up), and its backend's state.

    Attributes:
        config: The settings (profiles, default backend).
        name: The backend profile in use.
        factory: Makes backends by profile name (tests inject scripted backends), or None.
        ready: True once the model is loaded and answering.
    """

    def __init__(
        self,
        assistant: Assistant | Callable[[], Assistant],
        *,
        config: Config | None = None,
        name: str = "",
        factory: BackendFactory | None = None,
    ) -> None:
        if callable(assistant) and not hasattr(assistant, "prepare"):
            self.made: Assistant | None = None
            self._make: Callable[[], Assistant] | None = assistant
        else:
            self.made = assistant  # type: ignore[assignment]
            self._make = None
        self._lock = threading.Lock()
        if config is None and self.made is not None:
            config = self.made.config
        if config is None:
            from assistant.config import load_config

            config = load_config()
        self.config: Config = config
        self.name = name or (self.made.backend.name if self.made is not None else "")
        self.factory = factory
        self.ready = False

    @property
    def assistant(self) -> Assistant:
        """The Assistant (made now if it was not yet; safe from any thread)."""
        if self.made is None:
            with self._lock:
                if self.made is None and self._make is not None:
                    self.made = self._make()
        assert self.made is not None
        return self.made


class Views:
    """The main screen's widgets, found once (queries on the app would search a dialog on top of it)."""

    def __init__(self, app: App[Any]) -> None:
        self._app = app
        self._found: dict[str, Widget] = {}
        self.side_ready = False
        """True once the side panel and its tabs are up: the app puts them up just after the first frame."""

    def find(self, selector: str, kind: type[W]) -> W:
        """The widget of the main screen matching ``selector``."""
        found = self._found.get(selector)
        if found is None:
            app = self._app
            base = app.screen_stack[0] if app.screen_stack else app.screen
            found = self._found[selector] = base.query_one(selector, kind)
        return found  # type: ignore[return-value]

    @property
    def editor(self) -> DraftEditor:
        """The draft editor."""
        return self.find("#editor", DraftEditor)

    @property
    def status(self) -> StatusBar:
        """The status bar."""
        return self.find("#status", StatusBar)

    @property
    def side(self) -> SidePanel:
        """The side panel."""
        from tui.widgets.panels import SidePanel

        return self.find("#side", SidePanel)

    @property
    def results(self) -> ResultsView:
        """The Results tab."""
        from tui.widgets.panels import ResultsView

        return self.find("#results-view", ResultsView)

    @property
    def chat(self) -> ChatView:
        """The Chat tab."""
        from tui.widgets.panels import ChatView

        return self.find("#chat-view", ChatView)

    @property
    def settings(self) -> SettingsView:
        """The Settings tab."""
        from tui.widgets.panels import SettingsView

        return self.find("#settings-view", SettingsView)

    @property
    def stats(self) -> StatsView:
        """The Stats tab."""
        from tui.widgets.panels import StatsView

        return self.find("#stats-view", StatsView)


class Notify(Protocol):
    """The app's ``notify`` (markup is never used: words are shown as written)."""

    def __call__(self, message: str, *, severity: Any = ..., timeout: float | None = ...) -> None: ...


class Messenger:
    """Telling the writer things: errors with what to do about them, and the model's notices (each once)."""

    def __init__(self, notify: Notify) -> None:
        self.notify = notify
        self._shown: set[str] = set()

    def report(self, error: BaseException, *, prefix: str = "") -> None:
        """Tell the writer about an error, with what to do about it."""
        if isinstance(error, QuillmateError):
            text = error.message + (f"\n{error.hint}" if error.hint else "")
        else:
            text = f"Something went wrong: {type(error).__name__}: {error}"
        self.notify(prefix + text, severity="error", timeout=10)

    def notice(self, notice: Notice) -> None:
        """Show a notice from the model or the core (the same one only once)."""
        key = notice.kind if notice.kind in ("truncated", "model", "info") else notice.message
        if key in self._shown:
            return
        self._shown.add(key)
        severity = "warning" if notice.kind in ("truncated", "unsupported", "adjusted") else "information"
        self.notify(notice.message, severity=severity, timeout=8)


@dataclass(frozen=True)
class Services:
    """Everything a flow may use of the app; the app builds one and hands it to each flow.

    Attributes:
        session: The open session (the draft, its notes and settings).
        backend: The Assistant and the backend's state.
        views: The main screen's widgets.
        tell: Notifications.
        run_worker: The app's ``run_worker``: workers belong to the app, so an exclusive group is app-wide.
        push_screen: Open a dialog (with a callback for its result).
        call_after_refresh: Run something once the screen has been drawn.
        set_timer: Run something once, later.
        refresh_bindings: Make the footer and ``check_action`` look again (after a state change).
    """

    session: Session
    backend: BackendHolder
    views: Views
    tell: Messenger
    run_worker: Callable[..., Worker[Any]]
    push_screen: Callable[..., Any]
    call_after_refresh: Callable[..., Any]
    set_timer: Callable[..., Timer]
    refresh_bindings: Callable[[], None]


class Flow:
    """A part of the app's behaviour: a plain object the app owns, working through :class:`Services`."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.session = services.session
        self.backend = services.backend
        self.views = services.views
        self.tell = services.tell

    @property
    def assistant(self) -> Assistant:
        """The Assistant."""
        return self.backend.assistant

    @property
    def session_params(self) -> dict[str, Any]:
        """The sampling settings the writer set for this session."""
        params = self.session.settings.get("params") or {}
        return {k: v for k, v in params.items() if k in sampling_names()}

    def notify(self, message: str, *, severity: Any = "information", timeout: float | None = None) -> None:
        """Show a notification."""
        self.tell.notify(message, severity=severity, timeout=timeout)
