"""``quillmate write``: the co-writing app.

The writer types in the editor; the model offers continuations as ghost text at
the cursor, rewrites selections (with a preview), runs templates, and chats
about the draft. Everything goes through :class:`assistant.Assistant`; the draft,
its provenance, notes and settings live in a :class:`assistant.sessions.Session`
that saves itself continuously.

:class:`QuillmateApp` puts together the layout and key handling; what it does lives
in the mixins of :mod:`tui.flows`, one concern each. Build the app with
:func:`make_app` (tests pass a scripted backend and a temporary session store).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Footer

from assistant import UsageError
from tui.commands import AppCommands, TemplateCommands
from tui.flows.backend import BackendFlow
from tui.flows.base import BackendFactory
from tui.flows.saving import SavingFlow
from tui.flows.templates import TemplateFlow
from tui.keys import APP_KEYS, report_alt_digits_as_keys
from tui.widgets.editor import DraftEditor
from tui.widgets.panels import SidePanel
from tui.widgets.status import StatusBar

if TYPE_CHECKING:
    from assistant.config import Config
    from assistant.core import Assistant
    from assistant.sessions import Session, SessionStore

__all__ = ["BackendFactory", "QuillmateApp", "make_app"]

ALWAYS_AVAILABLE = {"quit", "help", "command_palette"}
# The app's own keys for the draft: they wait while a dialog is open. Textual's (Tab to the next
# field, copying) must keep working inside dialogs.
DRAFT_ACTIONS = {key.action.split("(")[0] for key in APP_KEYS} | {"stop", "dismiss", "back"}
FOOTER_ACTIONS = {"continue", "rewrite", "help", "quit"}


def _app_bindings() -> list[BindingType]:
    bindings: list[BindingType] = []
    for key in APP_KEYS:
        if key.action in ("quit", "command_palette"):
            continue
        if key.action == "escape":  # one key, three meanings: the footer names the one that applies
            bindings += [
                Binding(key.keys, "stop", "Stop"),
                Binding(key.keys, "dismiss", "Dismiss"),
                Binding(key.keys, "back", "Back to the draft", show=False),
            ]
            continue
        if key.action == "interrupt":  # before the editor's own Ctrl+C (copy), but only while writing
            bindings.append(Binding(key.keys, key.action, key.description, show=False, priority=True))
            continue
        bindings.append(Binding(key.keys, key.action, key.description, show=key.action in FOOTER_ACTIONS))
    bindings.append(Binding("ctrl+q", "quit", "Quit"))
    return bindings


class QuillmateApp(SavingFlow, TemplateFlow, BackendFlow):
    """The writing app. Build it with :func:`make_app`."""

    CSS_PATH = "styles.tcss"
    TITLE = "quillmate"
    COMMANDS: ClassVar = App.COMMANDS | {TemplateCommands, AppCommands}
    BINDINGS: ClassVar[list[BindingType]] = _app_bindings()

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            yield DraftEditor(self.session.document, id="editor")
            yield SidePanel(self.session.notes, self._profiles(), self._backend_name,
                            read_only=self.session.read_only, id="side")
        yield StatusBar(id="status")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._loop = asyncio.get_running_loop()
        report_alt_digits_as_keys()
        for selector, kind in (("#editor", DraftEditor), ("#status", StatusBar), ("#side", SidePanel)):
            self._find(selector, kind)
        editor = self.editor
        editor.accept_text = self._accept_into_session
        editor.move_cursor(editor.document.end)  # carry on where the draft stops
        editor.focus()
        self.side.display = self.size.width >= 100
        self.status.update_state(
            title=self.session.title,
            backend=self._backend_name,
            activity="loading" if self._load_on_start else "ready",
            read_only=self.session.read_only,
        )
        self._update_counts()
        self._check_file(read=True)
        if self._assistant is not None:
            self._load_settings_view()
        self.session.on_error = self._save_error_from_thread
        self.set_interval(0.5, self._poll_saved)
        if self.store is not None and self.store.recovered is not None:
            self._report(self.store.recovered)
        for warning in getattr(self.session, "warnings", []):
            self._report(warning)
        if self.session.read_only:
            self.notify("This session is open read-only: you can read, chat and run templates, "
                        "but not change the draft.", severity="warning", timeout=8)
        with contextlib.suppress(Exception):
            if self.session.file is not None and self.session.file_changed_outside():
                self.notify(f"{self.session.file.name} was changed by another program since quillmate last "
                            "saved it. You see the session's version; Ctrl+P → 'Reload the file from disk' "
                            "takes the file's.", severity="warning", timeout=12)
        for text in self._startup_notices:
            self.notify(text, severity="warning", timeout=8)
        if self._load_on_start:
            self.call_after_refresh(self._load_worker)
        else:
            self.backend_ready = True
            self._show_backend_info()
        self.call_after_refresh(self._first_frame)
        self.call_after_refresh(self._restore_chat)

    def _first_frame(self) -> None:
        self.first_frame_at = time.perf_counter()
        if self.on_first_frame is not None:
            self.on_first_frame()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if len(self.screen_stack) > 1 and action in DRAFT_ACTIONS and action not in ALWAYS_AVAILABLE:
            return False  # a dialog is open: its own keys apply, the draft's wait
        if action == "interrupt":
            selected = self.editor.has_focus and not self.editor.selection.is_empty
            return self.generating and not selected
        if action in ("stop", "dismiss", "back"):
            if not self.is_mounted:
                return False
            running = self.generating
            if action == "stop":
                return running
            if action == "dismiss":
                return not running and self.editor.ghost is not None and self.editor.has_focus
            return not running and not self.editor.has_focus
        return True


def make_app(
    file: str | Path | None = None,
    *,
    session_id: str | None = None,
    session: Session | None = None,
    store: SessionStore | None = None,
    config: Config | None = None,
    assistant: Assistant | None = None,
    backend: str | None = None,
    model: str | None = None,
    backend_factory: BackendFactory | None = None,
    read_only: bool = False,
    load_backend: bool = True,
) -> QuillmateApp:
    """Build the writing app.

    Args:
        file: Open the session linked to this file (created, with the file's text, if there is none).
        session_id: Resume this session instead.
        session: Use this open session (tests).
        store: The session store (default: the writer's database).
        config: Settings (default: the config file).
        assistant: A ready Assistant (tests); otherwise one is made for ``backend``/``model``.
        backend: Backend profile to use (default: the session's last one, else the configured default).
        model: Model to use instead of the profile's.
        backend_factory: Makes backends by profile name (tests inject scripted backends).
        read_only: Open the session read-only.
        load_backend: Load the model in the background at start-up.

    Raises:
        QuillmateError: the session cannot be opened (locked, not found) or the backend is unknown.
    """
    from assistant.sessions import SessionStore

    if file is not None and session_id is not None:
        raise UsageError("Give a file or --session, not both.")
    owns_store = False
    new_session = False
    if session is None:
        if store is None:
            store = SessionStore()
            owns_store = True
        if session_id:
            session = store.open(session_id, read_only=read_only)
        elif file is not None:
            path = Path(file).expanduser()
            if path.is_dir():
                raise UsageError(f"{path} is a folder.", "Give the name of a file to write in.")
            if not path.parent.exists():
                raise UsageError(f"The folder {path.parent} does not exist.", "Create it first, or pick another.")
            session = store.open_for_file(path, read_only=read_only)
        else:
            session = store.create()
            new_session = True
    notices: list[str] = []
    try:
        if assistant is None:
            cfg, name, wanted_model = _choose_backend(session, config, backend, model, backend_factory, notices)
            made: Assistant | Callable[[], Assistant] = partial(_make_assistant, cfg, name, wanted_model,
                                                                backend_factory)
        else:
            cfg, name, made = assistant.config, assistant.backend.name, assistant
    except BaseException:
        with contextlib.suppress(Exception):
            session.close()
        raise
    return QuillmateApp(session, made, config=cfg, backend_name=name, store=store, owns_store=owns_store,
                        backend_factory=backend_factory, load_backend=load_backend, notices=tuple(notices),
                        new_session=new_session)


def _choose_backend(session: Session, config: Config | None, backend: str | None, model: str | None,
                    factory: BackendFactory | None, notices: list[str]) -> tuple[Config, str, str | None]:
    """The config, backend profile and model to start with (an unknown ``--backend`` is an error now)."""
    from assistant.config import load_config

    cfg = config or load_config()
    remembered = session.settings
    name = backend or remembered.get("backend") or cfg.default_backend
    wanted_model = model if (backend or model) else remembered.get("model")
    if name not in cfg.profiles and factory is None:
        if backend:
            cfg.profile(backend)  # raises ConfigError naming the known profiles
        notices.append(f"This session last used the backend '{name}', which is no longer configured; "
                       f"using '{cfg.default_backend}'.")
        name, wanted_model = cfg.default_backend, model
    return cfg, name, wanted_model


def _make_assistant(cfg: Config, name: str, model: str | None, factory: BackendFactory | None) -> Assistant:
    from assistant.core import Assistant

    if factory is not None:
        return Assistant(factory(name, model), config=cfg)
    return Assistant(name, model=model, config=cfg)
