"""``quillmate write``: the co-writing app.

The writer types in the editor; the model offers continuations as ghost text at
the cursor, rewrites selections (with a preview), runs templates, and chats
about the draft. Everything goes through :class:`assistant.Assistant`; the draft,
its provenance, notes and settings live in a :class:`assistant.sessions.Session`
that saves itself continuously.

:class:`QuillmateApp` lays out the screen and hands keys and messages to the flows of
:mod:`tui.flows`: plain objects it owns, one concern each (see that package for where a
new feature goes). Build the app with
:func:`make_app` (tests pass a scripted backend and a temporary session store).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import events, on
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Footer

from assistant import UsageError
from tui.commands import AppCommands, TemplateCommands
from tui.crash import CrashReport
from tui.flows.alternatives import AlternativesFlow
from tui.flows.backend import BackendFlow
from tui.flows.base import BackendFactory, BackendHolder, Messenger, Services, Views
from tui.flows.bible import BibleFlow
from tui.flows.chat import ChatFlow
from tui.flows.compare import CompareFlow
from tui.flows.continuation import ContinuationFlow
from tui.flows.generation import GenerationFlow
from tui.flows.history import HistoryFlow
from tui.flows.panels import PanelFlow
from tui.flows.rewrite import RewriteFlow
from tui.flows.saving import SavingFlow
from tui.flows.status import StatusFlow
from tui.flows.templates import TemplateFlow
from tui.flows.tuning import TuningFlow
from tui.keys import APP_KEYS, report_alt_digits_as_keys
from tui.widgets.editor import DraftEditor
from tui.widgets.status import StatusBar
from tui.widgets.tuning import TuningProgress

if TYPE_CHECKING:
    from textual.pilot import Pilot
    from textual.widgets import TabbedContent

    from assistant.config import Config
    from assistant.core import Assistant
    from assistant.sessions import Session, SessionStore
    from tui.screens.compare import CompareScreen
    from tui.screens.rewrite import RewriteScreen
    from tui.widgets.panels import BibleView, ChatView, ContextView, ResultsView, SettingsView, SidePanel, StatsView

__all__ = ["BackendFactory", "QuillmateApp", "make_app"]

ALWAYS_AVAILABLE = {"quit", "help", "command_palette"}
# The app's own keys for the draft: they wait while a dialog is open. Textual's (Tab to the next
# field, copying) must keep working inside dialogs.
DRAFT_ACTIONS = {key.action.split("(")[0] for key in APP_KEYS} | {"stop", "dismiss", "back"}
FOOTER_ACTIONS = {"continue", "rewrite", "help", "quit"}
EARLY_ACTIONS = {"quit", "help", "save"}
"""The keys that work from the first frame; the others (the palette's commands too) wait the moment
until the side panel is up."""
STARTED_WAIT = 30.0
"""Seconds a test's pilot waits for the side panel before it goes ahead anyway."""
_FROZEN: set[str] = set()


def _freeze_once(stage: str) -> None:
    """Keep the objects start-up made out of the garbage collector's full passes, once a process.

    Each full pass visits every object (the app's widgets, the libraries' modules) holding the
    interpreter lock: 60-130 ms of keys not shown, every few seconds while start-up still grows
    the heap (bench/tui_latency.py). Frozen, they are freed as usual when nothing refers to them,
    and only new objects are visited. Once a process, as a test process runs many apps.
    """
    if stage not in _FROZEN:
        _FROZEN.add(stage)
        gc.freeze()


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


class QuillmateApp(App[None]):
    """The writing app. Build it with :func:`make_app`.

    The app lays out the screen, owns the session and the flows, and turns keys and
    widgets' messages into calls on the flow that handles them (one line each).
    """

    CSS_PATH = "styles.tcss"
    TITLE = "quillmate"
    COMMANDS: ClassVar = App.COMMANDS | {TemplateCommands, AppCommands}
    BINDINGS: ClassVar[list[BindingType]] = _app_bindings()

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
        self.session = session
        self.store = store
        self.exit_message = ""
        """What to tell the writer after the app has closed (set by :meth:`finish`)."""
        self.notification_log: list[tuple[str, str]] = []
        """Every notification shown, as (severity, message): the last 200."""
        self.first_frame_at: float | None = None
        """``time.perf_counter()`` when the first screen was drawn (the writer can type from then on)."""
        self.on_first_frame: Callable[[], None] | None = None
        self.started = asyncio.Event()
        """Set once the side panel is up and the model has begun to load, just after the first frame."""
        self._load_on_start = load_backend
        self._startup_notices = list(notices)
        self._crash = CrashReport()
        self.error_console = self._crash.console
        holder = BackendHolder(assistant, config=config, name=backend_name, factory=backend_factory)
        self.services = Services(
            session=session,
            backend=holder,
            views=Views(self),
            tell=Messenger(self.notify),
            run_worker=self.run_worker,
            push_screen=self.push_screen,
            call_after_refresh=self.call_after_refresh,
            set_timer=self.set_timer,
            refresh_bindings=self.refresh_bindings,
        )
        services = self.services
        self.indicators = StatusFlow(services)
        self.generation = GenerationFlow(services, self.indicators)
        self.continuation = ContinuationFlow(services, self.generation, self.indicators)
        self.alternatives = AlternativesFlow(services, self.generation, self.continuation)
        self.rewriting = RewriteFlow(services, self.generation, self.continuation, self.indicators)
        self.conversation = ChatFlow(services, self.generation, self.continuation)
        self.templates = TemplateFlow(services, self.generation, self.continuation, self.rewriting)
        self.story = BibleFlow(services, self.continuation)
        self.panels = PanelFlow(services, self.indicators, self.conversation, self.story)
        self.backends = BackendFlow(services, self.generation, self.indicators)
        self.history = HistoryFlow(services, self.generation, self.continuation)
        self.comparing = CompareFlow(services, self.continuation, self.backends)
        self.tuning = TuningFlow(services, self.backends)
        self.saving = SavingFlow(
            services,
            self.generation,
            self.continuation,
            self.indicators,
            self.panels,
            store=store,
            owns_store=owns_store,
            new_session=new_session,
        )

    # The main screen's widgets and the state tests and tools read.

    @property
    def editor(self) -> DraftEditor:
        """The draft editor."""
        return self.services.views.editor

    @property
    def status(self) -> StatusBar:
        """The status bar."""
        return self.services.views.status

    @property
    def side(self) -> SidePanel:
        """The side panel."""
        return self.services.views.side

    @property
    def results(self) -> ResultsView:
        """The Results tab."""
        return self.services.views.results

    @property
    def chat(self) -> ChatView:
        """The Chat tab."""
        return self.services.views.chat

    @property
    def settings_view(self) -> SettingsView:
        """The Settings tab."""
        return self.services.views.settings

    @property
    def stats_view(self) -> StatsView:
        """The Stats tab."""
        return self.services.views.stats

    @property
    def assistant(self) -> Assistant:
        """The Assistant (made on first use: importing it is the slow part of starting up)."""
        return self.services.backend.assistant

    @property
    def config(self) -> Config:
        """The settings: backend profiles and defaults."""
        return self.services.backend.config

    @property
    def backend_ready(self) -> bool:
        """True once the model is loaded and answering."""
        return self.services.backend.ready

    @property
    def generating(self) -> bool:
        """True while a generation (of any kind) is streaming."""
        return self.generation.generating

    # Layout and start-up.

    def compose(self) -> ComposeResult:
        # The first frame is the draft, ready to type in. The side panel (its tabs are most of the
        # screen's widgets, and their code most of the app's) takes its place just after it.
        with Horizontal(id="main"):
            yield DraftEditor(self.session.document, id="editor")
            yield Widget(id="side-place")
        yield TuningProgress(id="tuning-progress")
        yield StatusBar(id="status")
        yield Footer(compact=True)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, (events.Key, events.Paste, events.MouseDown)):
            self.backends.pacer.touch()  # the model loads while the writer rests
        await super().on_event(event)

    def on_mount(self) -> None:
        report_alt_digits_as_keys()
        editor, status = self.editor, self.status  # found now: a dialog may open soon
        editor.accept_text = self.continuation.accept_into_session
        editor.move_cursor(editor.document.end)  # carry on where the draft stops
        editor.focus()
        self.query_one("#side-place").display = self.size.width >= 100
        status.update_state(
            title=self.session.title,
            backend=self.services.backend.name,
            activity="loading" if self._load_on_start else "ready",
            read_only=self.session.read_only,
        )
        self.indicators.update_counts()
        self.indicators.check_file(read=True)
        self.indicators.start(asyncio.get_running_loop())
        self.set_interval(0.5, self.indicators.poll_saved)
        self._tell_what_happened_before()
        if not self._load_on_start:
            self.services.backend.ready = True
        self.call_after_refresh(self._first_frame)

    def _tell_what_happened_before(self) -> None:
        """Start-up news: a recovered database, session warnings, read-only, a file changed elsewhere."""
        report = self.services.tell.report
        if self.store is not None and self.store.recovered is not None:
            report(self.store.recovered)
        for warning in getattr(self.session, "warnings", []):
            report(warning)
        if self.session.read_only:
            self.notify(
                "This session is open read-only: you can read, chat and run templates, but not change the draft.",
                severity="warning",
                timeout=8,
            )
        with contextlib.suppress(Exception):
            if self.session.file is not None and self.session.file_changed_outside():
                self.notify(
                    f"{self.session.file.name} was changed by another program since quillmate last "
                    "saved it. You see the session's version; Ctrl+P → 'Reload the file from disk' "
                    "takes the file's.",
                    severity="warning",
                    timeout=12,
                )
        for text in self._startup_notices:
            self.notify(text, severity="warning", timeout=8)

    def _first_frame(self) -> None:
        self.first_frame_at = time.perf_counter()
        if self.on_first_frame is not None:
            self.on_first_frame()
        _freeze_once("first frame")
        self.run_worker(self._finish_starting(), group="start")

    async def _finish_starting(self) -> None:
        """Put up the side panel, then start loading the model: the writer can type all the while."""
        pacer = self.backends.pacer
        try:
            # The panel comes while the writer rests, as the model loads (tui.flows.backend.LoadPacer);
            # its code (with the story bible's) is imported off the event loop, in case they type on.
            await pacer.rest()
            await asyncio.to_thread(importlib.import_module, "tui.widgets.panels")
            from tui.widgets.panels import SidePanel

            await pacer.rest()
            place = self.query_one("#side-place")
            side = SidePanel(
                self.session.bible,
                self.backends.profiles(),
                self.services.backend.name,
                read_only=self.session.read_only,
                id="side",
            )
            side.display, place.display = place.display, False
            with self.batch_update():  # no frame in between: the draft keeps its width
                await self.query_one("#main", Horizontal).mount(side, after=place)
                await place.remove()
            self.services.views.find("#side", SidePanel)  # found now, as the draft is: a dialog may open soon
            self.services.views.side_ready = True
            _freeze_once("side panel")
            if self.services.backend.made is not None:
                self.backends.load_settings_view()
            if self._load_on_start:
                self.backends.load()
            else:
                await asyncio.to_thread(lambda: self.assistant)  # importing the core, off the event loop
                self.indicators.show_backend_info()
            await self.conversation.restore()
        finally:
            self.started.set()
            self.refresh_bindings()

    @contextlib.asynccontextmanager
    async def run_test(self, *args: Any, **kwargs: Any) -> AsyncGenerator[Pilot[None], None]:
        """Textual's ``run_test``, once the whole screen is up (the side panel comes just after the first frame)."""
        async with super().run_test(*args, **kwargs) as pilot:
            with contextlib.suppress(asyncio.TimeoutError):  # an app that could not start fails the test itself
                await asyncio.wait_for(self.started.wait(), STARTED_WAIT)
            await pilot.pause()
            yield pilot

    async def run_async(self, *args: Any, auto_pilot: Any = None, **kwargs: Any) -> None:
        """Textual's ``run_async``; an auto-pilot (screenshots) starts once the whole screen is up."""
        if auto_pilot is not None:
            steer = auto_pilot

            async def auto_pilot(pilot: Pilot[None]) -> None:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.started.wait(), STARTED_WAIT)
                await pilot.pause()
                await steer(pilot)

        return await super().run_async(*args, auto_pilot=auto_pilot, **kwargs)

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: Any = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Show a notification (never markup: the writer's and the model's words are shown as written)."""
        self.notification_log.append((str(severity), message))
        del self.notification_log[:-200]
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def finish(self) -> None:
        """Save everything and close the session (safe to call twice). Sets ``exit_message``."""
        self.tuning.stop()  # a tuning in flight saves what it has learnt
        self.saving.finish()
        crash = self._crash.message(self.session.id, self.return_code)
        self.exit_message = "\n".join(part for part in (crash, self.saving.farewell) if part)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if len(self.screen_stack) > 1 and action in DRAFT_ACTIONS and action not in ALWAYS_AVAILABLE:
            return False  # a dialog is open: its own keys apply, the draft's wait
        if action == "interrupt":
            selected = self.editor.has_focus and not self.editor.selection.is_empty
            return self.generating and not selected
        if action in ("stop", "dismiss", "back"):
            running = self.generating
            if action == "stop":
                return running
            if action == "dismiss":
                return not running and self.editor.ghost is not None and self.editor.has_focus
            return not running and not self.editor.has_focus
        if not self.started.is_set() and action not in EARLY_ACTIONS and action in DRAFT_ACTIONS:
            return None  # shown; usable a moment after the first frame, once the side panel is up
        return True

    # Keys (tui/keys.py): each action hands over to the flow that does it.

    def action_continue(self, template: Any = "continue", variables: Mapping[str, Any] | None = None) -> None:
        """Continue the draft from the cursor; the continuation streams in as ghost text."""
        self.continuation.start(template, variables)

    def action_escape(self) -> None:
        """Stop the model; else dismiss the suggestion; else go back to the draft."""
        self.continuation.escape()

    def action_stop(self) -> None:
        """Stop the model; what it wrote so far stays as a suggestion."""
        self.generation.stop()

    def action_interrupt(self) -> None:
        """Ctrl+C while the model writes: stop it, as Escape does."""
        self.generation.stop()

    def action_dismiss(self) -> None:
        """Take the suggestion away."""
        self.continuation.clear_ghost("dismissed")

    async def action_back(self) -> None:
        """Go back to the draft from the side panel (instead of Textual's: the draft has no screen to pop)."""
        self.editor.focus()

    def action_regenerate(self) -> None:
        """Throw the suggestion away and ask for another at the same place."""
        self.continuation.regenerate()

    def action_alternatives(self) -> None:
        """Show the words the model almost wrote at the cursor; the one picked is written on from."""
        self.alternatives.show()

    def action_history(self) -> None:
        """Show every suggestion made at the cursor; the one chosen comes back."""
        self.history.show()

    def action_compare(self) -> None:
        """Write the continuation at the cursor with several backends, side by side; keep one."""
        self.comparing.open()

    def action_rewrite(self, template: Any = "rewrite", variables: Mapping[str, Any] | None = None) -> None:
        """Rewrite the selected passage, with a preview beside the original."""
        self.rewriting.start(template, variables)

    def action_chat(self) -> None:
        """Open the Chat tab, ready to type."""
        self.conversation.open()

    def action_toggle_panel(self) -> None:
        """Show or hide the side panel."""
        self.panels.toggle()

    def action_tab(self, tab: str) -> None:
        """Show one of the side panel's tabs, with the focus in it."""
        self.panels.show_tab(tab)

    def action_toggle_provenance(self) -> None:
        """Tint (or stop tinting) the text the model wrote."""
        self.panels.toggle_provenance()

    def action_help(self) -> None:
        """Show every key."""
        self.panels.help()

    def action_switch_backend(self) -> None:
        """Choose another backend or model."""
        self.backends.choose()

    def action_save(self) -> None:
        """Write the draft to its file (atomically)."""
        self.saving.save()

    def action_save_as(self) -> None:
        """Write the draft to a file of the writer's choosing, and keep saving there."""
        self.saving.save_as()

    def action_reload_file(self) -> None:
        """Take the linked file's text as it is on disk now."""
        self.saving.reload_file()

    async def action_quit(self) -> None:
        """Quit. The draft is already saved; a linked file is brought up to date too."""
        await self.saving.quit(self.finish)
        self.exit()

    def open_template(self, name: str) -> None:
        """Show the form of template ``name`` and run it."""
        self.templates.open(name)

    # Messages from the widgets and dialogs: each goes to the flow that handles it.

    @on(DraftEditor.DraftChanged)
    def _draft_changed(self) -> None:
        self.indicators.draft_changed()
        self.story.draft_changed()

    @on(DraftEditor.SuggestionAccepted)
    def _suggestion_accepted(self, message: DraftEditor.SuggestionAccepted) -> None:
        self.continuation.accepted(message.suggestion, message.part)

    @on(DraftEditor.SuggestionDropped)
    def _suggestion_dropped(self, message: DraftEditor.SuggestionDropped) -> None:
        self.continuation.dropped(message.suggestion)

    @on(DraftEditor.SuggestionCycled)
    def _suggestion_cycled(self) -> None:
        self.indicators.update_suggestion_status()

    # The dialogs' and the side panel's messages come to handlers named for them (on_<widget>_<message>):
    # naming them needs none of those modules, which are imported after the first frame.

    def on_rewrite_screen_generate(self, message: RewriteScreen.Generate) -> None:
        message.stop()
        self.rewriting.generate(message.screen, message.instruction)

    def on_compare_screen_run(self, message: CompareScreen.Run) -> None:
        message.stop()
        self.comparing.run(message.screen, message.names)

    def on_rewrite_screen_stop(self, message: RewriteScreen.Stop) -> None:
        message.stop()
        self.generation.stop()

    async def on_chat_view_send(self, message: ChatView.Send) -> None:
        message.stop()
        await self.conversation.send(message.text)

    def on_chat_view_cleared(self) -> None:
        self.conversation.cleared()

    def on_chat_view_insert_reply(self, message: ChatView.InsertReply) -> None:
        self.conversation.insert_reply(message.reply)

    def on_results_view_insert_requested(self, message: ResultsView.InsertRequested) -> None:
        self.templates.insert_result(message.item)

    def on_bible_view_memory_changed(self, message: BibleView.MemoryChanged) -> None:
        self.story.memory_changed(message.text)

    def on_bible_view_note_changed(self, message: BibleView.NoteChanged) -> None:
        self.story.note_changed(message.text)

    def on_bible_view_edit_requested(self, message: BibleView.EditRequested) -> None:
        self.story.edit(message.name)

    def on_bible_view_toggled(self, message: BibleView.Toggled) -> None:
        self.story.toggle(message.name)

    def on_bible_view_remove_requested(self, message: BibleView.RemoveRequested) -> None:
        self.story.remove(message.name)

    def on_context_view_wanted(self, message: ContextView.Wanted) -> None:
        self.story.show_context(message.preview)

    def on_stats_view_tint_toggled(self, message: StatsView.TintToggled) -> None:
        self.panels.set_tint(message.on)

    def on_tabbed_content_tab_activated(self, message: TabbedContent.TabActivated) -> None:
        self.panels.tab_shown(getattr(message.pane, "id", "") or "")

    def on_settings_view_params_changed(self, message: SettingsView.ParamsChanged) -> None:
        self.backends.params_changed(message.params)

    def on_settings_view_switch_backend(self, message: SettingsView.SwitchBackend) -> None:
        self.backends.switch(message.backend, message.model, message.dtype)


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
            cfg, name, wanted_model, dtype = _choose_backend(session, config, backend, model, backend_factory, notices)
            made: Assistant | Callable[[], Assistant] = partial(
                _make_assistant, cfg, name, wanted_model, backend_factory, dtype
            )
        else:
            cfg, name, made = assistant.config, assistant.backend.name, assistant
    except BaseException:
        with contextlib.suppress(Exception):
            session.close()
        raise
    return QuillmateApp(
        session,
        made,
        config=cfg,
        backend_name=name,
        store=store,
        owns_store=owns_store,
        backend_factory=backend_factory,
        load_backend=load_backend,
        notices=tuple(notices),
        new_session=new_session,
    )


def _choose_backend(
    session: Session,
    config: Config | None,
    backend: str | None,
    model: str | None,
    factory: BackendFactory | None,
    notices: list[str],
) -> tuple[Config, str, str | None, str | None]:
    """The config, backend profile, model and number type to start with (an unknown ``--backend`` is an
    error now). The session's last choices hold unless ``backend`` or ``model`` is given."""
    from assistant.config import load_config

    cfg = config or load_config()
    remembered = session.settings
    name = backend or remembered.get("backend") or cfg.default_backend
    wanted_model = model if (backend or model) else remembered.get("model")
    dtype = None if (backend or model) else remembered.get("dtype")
    if name not in cfg.profiles and factory is None:
        if backend:
            cfg.profile(backend)  # raises ConfigError naming the known profiles
        notices.append(
            f"This session last used the backend '{name}', which is no longer configured; "
            f"using '{cfg.default_backend}'."
        )
        name, wanted_model, dtype = cfg.default_backend, model, None
    if name not in cfg.profiles or not cfg.profiles[name].takes_dtype:
        dtype = None
    return cfg, name, wanted_model, dtype


def _make_assistant(
    cfg: Config, name: str, model: str | None, factory: BackendFactory | None, dtype: str | None = None
) -> Assistant:
    from assistant.core import Assistant

    if factory is not None:
        return Assistant(factory(name, model), config=cfg)
    return Assistant(name, model=model, dtype=dtype, config=cfg)
