"""``quillmate write``: the co-writing app.

The writer types in the editor; the model offers continuations as ghost text at
the cursor, rewrites selections (with a preview), runs templates, and chats
about the draft. Everything goes through :class:`assistant.Assistant`; the draft,
its provenance, notes and settings live in a :class:`assistant.sessions.Session`
that saves itself continuously.

Build the app with :func:`make_app` (tests pass a scripted backend and a
temporary session store).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.reactive import var
from textual.widget import Widget
from textual.widgets import Footer
from textual.widgets.text_area import Selection

from assistant import (
    ChatMessage,
    Delta,
    GenerationRequest,
    GenerationResult,
    Notice,
    QuillmateError,
    TextPart,
    UsageError,
)
from tui.commands import AppCommands, TemplateCommands
from tui.keys import APP_KEYS
from tui.screens.help import HelpScreen
from tui.screens.pickers import BackendScreen, SaveAsScreen
from tui.screens.rewrite import RewriteChoice, RewriteScreen
from tui.screens.template_form import TemplateFormScreen
from tui.suggestion import Suggestion
from tui.widgets.editor import DraftEditor
from tui.widgets.panels import (
    SAMPLING_FIELDS,
    ChatBubble,
    ChatView,
    NotesView,
    ResultsView,
    SettingsView,
    SidePanel,
    StatsView,
)
from tui.widgets.status import StatusBar

if TYPE_CHECKING:
    from assistant import Backend
    from assistant.config import Config
    from assistant.core import Assistant, Prepared
    from assistant.sessions import Session, SessionStore

W = TypeVar("W", bound=Widget)
BackendFactory = Callable[[str, "str | None"], "Backend"]
"""Makes a backend from a profile name and an optional model (tests inject scripted ones)."""

ALWAYS_AVAILABLE = {"quit", "help", "command_palette"}
FOOTER_ACTIONS = {"continue", "rewrite", "help", "quit"}
SAVE_FORCE_WINDOW = 10.0
CHAT_SYSTEM = (
    "You are a thoughtful, candid writing companion. The writer is working on the text below and wants "
    "to talk about it. Answer briefly and concretely; when asked for prose, reply with only the prose.\n\n"
)
SAMPLING_NAMES = frozenset(spec.name for spec in SAMPLING_FIELDS)
"""The generation settings a writer can keep with a session (the Settings tab)."""


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
        bindings.append(Binding(key.keys, key.action, key.description, show=key.action in FOOTER_ACTIONS))
    bindings.append(Binding("ctrl+q", "quit", "Quit"))
    return bindings


class QuillmateApp(App[None]):
    """The writing app. Build it with :func:`make_app`."""

    CSS_PATH = "styles.tcss"
    TITLE = "quillmate"
    COMMANDS: ClassVar = App.COMMANDS | {TemplateCommands, AppCommands}
    BINDINGS: ClassVar[list[BindingType]] = _app_bindings()

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
        self._counts_timer: Any = None
        self._notes_timer: Any = None
        self._closed = False
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

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            yield DraftEditor(self.session.document, id="editor")
            yield SidePanel(self.session.notes, self._profiles(), self._backend_name,
                            read_only=self.session.read_only, id="side")
        yield StatusBar(id="status")
        yield Footer(compact=True)

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

    def on_mount(self) -> None:
        self._loop = asyncio.get_running_loop()
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

    def _first_frame(self) -> None:
        self.first_frame_at = time.perf_counter()
        if self.on_first_frame is not None:
            self.on_first_frame()

    # ------------------------------------------------------------- reporting
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

    def _save_error_from_thread(self, error: QuillmateError) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._save_failed, error)

    def _save_failed(self, error: QuillmateError) -> None:
        self.status.update_state(saved="error")
        if error.message in self._reported_save_errors:
            return
        self._reported_save_errors.add(error.message)
        self.notify(f"Could not save to the sessions database: {error.message}\nYour text is safe in memory and "
                    "quillmate keeps trying. Ctrl+P → 'Save as…' writes it to a file.",
                    severity="error", timeout=15)

    def _poll_saved(self) -> None:
        session = self.session
        if session.read_only or self._closed:
            return
        state = "saved" if session.saved else ("error" if session.save_error else "saving")
        if state == "saved":
            self._reported_save_errors.clear()
        with contextlib.suppress(NoMatches):
            self.status.update_state(saved=state, title=session.title)

    # ----------------------------------------------------------------- backend
    async def _ensure_assistant(self) -> bool:
        """Make the Assistant off the event loop; on failure fall back to the default profile."""
        if self._assistant is not None:
            return True
        try:
            await asyncio.to_thread(lambda: self.assistant)
        except Exception as error:
            self._report(error, prefix=f"The backend '{self._backend_name}' could not be set up: ")
            default = self.config.default_backend
            if default == self._backend_name:
                self.status.update_state(activity="unavailable")
                return False
            from assistant.core import Assistant

            try:
                self._assistant = await asyncio.to_thread(Assistant, default, config=self.config)
            except Exception as second:
                self._report(second)
                self.status.update_state(activity="unavailable")
                return False
            self.notify(f"Using the '{default}' backend instead.", severity="warning")
        self._backend_name = self.assistant.backend.name
        self._load_settings_view()
        return True

    @work(exclusive=True, group="load", exit_on_error=False)
    async def _load_worker(self, old: Backend | None = None) -> None:
        if not await self._ensure_assistant():
            return
        backend = self.assistant.backend
        self.backend_ready = False
        if old is not None and old is not backend:
            with contextlib.suppress(Exception):
                await old.aclose()
        if not self.generating:
            self.status.update_state(activity="loading")
        try:
            self._show_backend_info(await asyncio.to_thread(backend.info))
            await backend.load()
            self._show_backend_info(await asyncio.to_thread(backend.info))
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if backend is self.assistant.backend:
                self.status.update_state(activity="unavailable")
                self._report(error, prefix="The model could not be loaded: ")
            return
        if backend is self.assistant.backend:
            self.backend_ready = True
            if not self.generating:
                self.status.update_state(activity="ready")

    def _show_backend_info(self, info: Any = None) -> None:
        backend = self.assistant.backend
        if info is None:
            try:
                info = backend.info()
            except Exception:
                return
        self.status.update_state(
            backend=backend.name,
            model=info.model,
            device=info.device,
            context_window=info.context_window,
        )

    def switch_backend(self, name: str, model: str | None = None) -> None:
        """Use another backend profile (and optionally model); stops a generation in flight first."""
        self.stop_generation()
        old = self.assistant.backend
        try:
            if self.backend_factory is not None:
                new = self.backend_factory(name, model)
                self.assistant.switch_backend(new)
            else:
                self.assistant.switch_backend(name, model=model)
        except Exception as error:
            self._report(error, prefix="Could not switch the model: ")
            return
        self._backend_name = name
        with contextlib.suppress(QuillmateError):
            self.session.update_settings(backend=name, model=model)
        self.status.update_state(backend=name, model=model or "", device="", tokens_per_second=None,
                                 context_used=None, activity="loading")
        self.notify(f"Switched to {name}" + (f" ({model})" if model else "") + ".", timeout=3)
        self._load_settings_view()
        self._load_worker(old)

    def _profiles(self) -> list[tuple[str, str]]:
        out = []
        for name, profile in self.config.profiles.items():
            model = profile.options.get("model", "")
            out.append((name, f"{profile.kind}" + (f", {model}" if model else "")))
        current = self._backend_name
        if current and not any(name == current for name, _ in out):
            kind = self._assistant.backend.kind if self._assistant is not None else ""
            out.insert(0, (current, kind or "custom"))
        return out

    # ------------------------------------------------------------- generation
    @property
    def session_params(self) -> dict[str, Any]:
        """The sampling settings the writer set for this session."""
        params = self.session.settings.get("params") or {}
        return {k: v for k, v in params.items() if k in SAMPLING_NAMES}

    def _prepare(self, template: Any, variables: Mapping[str, Any], **overrides: Any) -> Prepared | None:
        try:
            return self.assistant.prepare(template, variables, {**self.session_params, **overrides})
        except Exception as error:
            self._report(error)
            return None

    def _record(self, template: str, variables: Mapping[str, Any], request: GenerationRequest) -> int | None:
        if self.session.read_only:
            return None
        try:
            info_model = self.status.state.model
            return self.session.record_generation(
                template, variables, params=asdict(request.params), backend=self.assistant.backend.name,
                model=info_model,
            )
        except Exception as error:
            self._report(error)
            return None

    def _record_result(self, event_id: int | None, result: GenerationResult) -> None:
        if event_id is None:
            return
        with contextlib.suppress(Exception):
            event = self.session.event(event_id)
            status, accepted = event.status, event.accepted_alternative
            self.session.record_result(event_id, result)
            if status == "accepted":
                self.session.mark_accepted(event_id, accepted or 0)
            elif status == "rejected":
                self.session.mark_rejected(event_id)

    def _record_partial(self, event_id: int | None, texts: list[str], reason: str = "cancelled") -> None:
        if event_id is not None:
            result = GenerationResult(texts=tuple(texts), finish_reasons=tuple(reason for _ in texts))  # type: ignore[misc]
            self._record_result(event_id, result)

    async def _consume(self, request: GenerationRequest, on_delta: Callable[[Delta], None]) -> GenerationResult | None:
        """Stream ``request``, handing each delta to ``on_delta``; returns the result."""
        self.generating = True
        self._streamed_tokens = 0
        self.status.update_state(activity="writing", streamed_tokens=0)
        result: GenerationResult | None = None
        ended = "ready"
        try:
            async for event in self.assistant.astream_request(request):
                if isinstance(event, Delta):
                    self._streamed_tokens += 1
                    on_delta(event)
                    self.status.update_state(streamed_tokens=self._streamed_tokens)
                    if self._streamed_tokens == 1:
                        self.refresh_bindings()  # e.g. "Tab Accept" now applies
                elif isinstance(event, Notice):
                    self._notice(event)
                elif isinstance(event, GenerationResult):
                    result = event
        except asyncio.CancelledError:
            ended = "stopped"
            raise
        except Exception:
            ended = "ready" if self.backend_ready else "unavailable"
            raise
        finally:
            self.generating = False
            self.status.update_state(activity=ended)
            self.refresh_bindings()
        if result is not None:
            self.backend_ready = True
            self._show_result_stats(result)
        return result

    def _show_result_stats(self, result: GenerationResult) -> None:
        window = None
        with contextlib.suppress(Exception):
            window = self.assistant.backend.capabilities.context_window
        per_alternative = result.usage.completion_tokens // max(1, len(result.texts))
        self.status.update_state(
            activity="ready",
            tokens_per_second=result.tokens_per_second,
            context_used=result.usage.prompt_tokens + per_alternative if result.usage.prompt_tokens else None,
            context_window=window,
            model=result.model or self.status.state.model,
        )

    def stop_generation(self) -> bool:
        """Stop whatever the model is writing (what it wrote stays); True if something was stopped."""
        running = [w for w in self.workers if w.group == "generation" and w.is_running]
        for worker in running:
            worker.cancel()
        if running:
            if self._streaming is not None:
                self._streaming.streaming = False
            self.generating = False
            self.status.update_state(activity="stopped")
            self.refresh_bindings()
        return bool(running)

    # -- continue -------------------------------------------------------------------------
    def action_continue(self, template: Any = "continue", variables: Mapping[str, Any] | None = None) -> None:
        """Continue the draft from the cursor; the continuation streams in as ghost text."""
        if self.session.read_only:
            self.notify("This session is open read-only, so nothing can be added to it.", severity="warning")
            return
        editor = self.editor
        if editor.ghost is not None:
            self._clear_ghost("replaced")
        pos = editor.cursor_offset
        text = self.session.document.text[:pos]
        if not text.strip():
            self.notify("Write a line or two first; the model carries on from your cursor.", timeout=4)
            return
        try:
            chosen = self.assistant.template(template)
        except Exception as error:
            self._report(error)
            return
        values = self._continue_variables(chosen, text)
        values.update({k: v for k, v in (variables or {}).items() if v is not None})
        prepared = self._prepare(chosen, values)
        if prepared is None:
            return
        event_id = self._record(chosen.name, prepared.variables, prepared.request)
        if event_id is None:
            return
        count = prepared.request.params.num_alternatives
        suggestion = Suggestion(start=pos, alternatives=[""] * count, generation_id=event_id, template=chosen.name)
        editor.break_undo_group()
        editor.show_suggestion(suggestion)
        self._streaming = suggestion
        self._update_suggestion_status()
        self._continue_worker(prepared.request, suggestion)

    def _continue_variables(self, template: Any, text: str) -> dict[str, Any]:
        values: dict[str, Any] = {}
        names = set(template.variables)
        target = template.input_variable or ("text" if "text" in names else None)
        if target:
            values[target] = text
        if "notes" in names and self.session.notes.strip():
            values["notes"] = self.session.notes
        title = self._story_title()
        if "title" in names and title:
            values["title"] = title
        return values

    def _story_title(self) -> str:
        """The story's title: a Markdown heading on the first line, else a title the writer set, else the file's."""
        text = self.session.document.text
        first = text.lstrip().split("\n", 1)[0].strip() if text.strip() else ""
        if first.startswith("#"):
            return first.lstrip("#").strip()
        title = self.session.title
        file = self.session.file
        if file is not None and title == file.name:
            return file.stem.replace("_", " ").replace("-", " ").strip()
        from assistant.sessions.session import first_line_title

        return "" if title in ("Untitled", first_line_title(text)) else title

    @work(exclusive=True, group="generation", exit_on_error=False)
    async def _continue_worker(self, request: GenerationRequest, suggestion: Suggestion) -> None:
        editor = self.editor
        try:
            result = await self._consume(request, lambda d: editor.stream_into(suggestion, d.index, d.text))
        except asyncio.CancelledError:
            self._settle(suggestion, None, cancelled=True)
            raise
        except Exception as error:
            self._suggestion_failed(suggestion, error)
            return
        self._settle(suggestion, result)

    def _settle(self, suggestion: Suggestion, result: GenerationResult | None, *, cancelled: bool = False) -> None:
        self.editor.flush_stream()
        suggestion.streaming = False
        if self._streaming is suggestion:
            self._streaming = None
        editor = self.editor
        if result is not None:
            editor.set_alternatives(suggestion, result.texts)
            self._record_result(suggestion.generation_id, result)
            if result.error:
                self.notify(f"The model stopped early: {result.error}\nWhat it wrote is shown; Tab keeps it.",
                            severity="error", timeout=10)
        elif cancelled:
            self._record_partial(suggestion.generation_id, list(suggestion.alternatives))
        if editor.ghost is suggestion and not suggestion.text:
            editor.drop_suggestion("empty")
            if not cancelled and suggestion.consumed == 0 and not (result and result.error):
                self.notify("The model had nothing to add here. Try again (Ctrl+G), or raise the temperature "
                            "in Settings.", timeout=6)
        self._update_suggestion_status()

    def _suggestion_failed(self, suggestion: Suggestion, error: BaseException) -> None:
        self.editor.flush_stream()
        suggestion.streaming = False
        if self._streaming is suggestion:
            self._streaming = None
        editor = self.editor
        if editor.ghost is suggestion and not suggestion.text:
            editor.drop_suggestion("failed")
        if suggestion.generation_id is not None:
            with contextlib.suppress(Exception):
                self.session.mark_error(suggestion.generation_id, getattr(error, "message", str(error)))
        self.status.update_state(activity="ready" if self.backend_ready else "unavailable")
        self._report(error)
        self._update_suggestion_status()

    def _update_suggestion_status(self) -> None:
        ghost = self.editor.ghost
        self.status.update_state(alternatives=ghost.label if ghost is not None else "")
        self.refresh_bindings()

    def _clear_ghost(self, reason: str = "dismissed") -> None:
        """Take the suggestion away (stopping its generation) and record that it was not kept."""
        editor = self.editor
        ghost = editor.ghost
        if ghost is None:
            return
        if ghost.streaming:
            self.stop_generation()
        editor.drop_suggestion(reason)
        self._mark_not_kept(ghost)
        self._update_suggestion_status()

    def _mark_not_kept(self, suggestion: Suggestion) -> None:
        if suggestion.generation_id is not None and suggestion.kept == 0:
            with contextlib.suppress(Exception):
                self.session.mark_rejected(suggestion.generation_id)

    def _accept_into_session(self, pos: int, text: str, generation_id: int, alternative: int) -> None:
        self.session.accept(generation_id, alternative, pos=pos, text=text)

    @on(DraftEditor.SuggestionAccepted)
    def _accepted(self, message: DraftEditor.SuggestionAccepted) -> None:
        if message.part == "all" and message.suggestion.streaming:
            self.stop_generation()
        self._update_suggestion_status()

    @on(DraftEditor.SuggestionDropped)
    def _dropped(self, message: DraftEditor.SuggestionDropped) -> None:
        if message.suggestion.streaming:
            self.stop_generation()
        self._mark_not_kept(message.suggestion)
        self._update_suggestion_status()

    @on(DraftEditor.DraftChanged)
    def _draft_changed(self, message: DraftEditor.DraftChanged) -> None:
        if self._counts_timer is not None:
            self._counts_timer.stop()
        self._counts_timer = self.set_timer(0.2, self._update_counts)
        if self.editor.ghost is None and self.status.state.alternatives:
            self._update_suggestion_status()

    def _update_counts(self) -> None:
        self._counts_timer = None
        words = len(self.session.document.text.split())
        self.status.update_state(words=words, title=self.session.title)
        if self.side.display and self.side.tabs.active == "stats":
            self._refresh_stats()

    def action_escape(self) -> None:
        """Stop the model; else dismiss the suggestion; else go back to the draft."""
        if not self.stop_generation():
            if not self.editor.has_focus:
                self.editor.focus()
            elif self.editor.ghost is not None:
                self._clear_ghost("dismissed")

    def action_stop(self) -> None:
        """Stop the model; what it wrote so far stays as a suggestion."""
        self.stop_generation()

    def action_dismiss(self) -> None:
        """Take the suggestion away."""
        self._clear_ghost("dismissed")

    def action_back(self) -> None:
        """Go back to the draft from the side panel."""
        self.editor.focus()

    def action_regenerate(self) -> None:
        """Throw the suggestion away and ask for another at the same place."""
        editor = self.editor
        ghost = editor.ghost
        template = ghost.template if ghost is not None else "continue"
        if ghost is not None:
            start = ghost.start
            self._clear_ghost("regenerated")
            editor.selection = Selection.cursor(editor.location_of(editor.to_display(start)))
        self.action_continue(template)

    @on(DraftEditor.SuggestionCycled)
    def _cycled(self, message: DraftEditor.SuggestionCycled) -> None:
        self._update_suggestion_status()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if len(self.screen_stack) > 1 and action not in ALWAYS_AVAILABLE:
            return False  # a dialog is open: its own keys apply, the draft's wait
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

    def watch_generating(self, generating: bool) -> None:
        self.refresh_bindings()

    # -- rewrite --------------------------------------------------------------------------
    def action_rewrite(self, template: Any = "rewrite", variables: Mapping[str, Any] | None = None) -> None:
        """Rewrite the selected passage, with a preview beside the original."""
        if self.session.read_only:
            self.notify("This session is open read-only, so nothing can be rewritten.", severity="warning")
            return
        editor = self.editor
        start, end = editor.selection_offsets
        if start == end:
            self.notify("Select the passage to rewrite first (Shift+arrows), then Ctrl+R.", timeout=5)
            return
        if editor.ghost is not None:
            self._clear_ghost("rewrite")
            start, end = editor.selection_offsets
        original = self.session.document.text[start:end]
        if not original.strip():
            self.notify("The selection is only spaces; select some words to rewrite.", timeout=4)
            return
        fixed = template != "rewrite"
        self._rewrite = {"start": start, "end": end, "original": original, "template": template,
                         "variables": dict(variables or {}), "event": None}
        name = getattr(template, "name", template)
        screen = RewriteScreen(original, fixed_template=name if fixed else None)
        self.push_screen(screen, callback=self._rewrite_done)
        if fixed:
            self.call_after_refresh(self._generate_rewrite, screen, "")

    @on(RewriteScreen.Generate)
    def _rewrite_generate(self, message: RewriteScreen.Generate) -> None:
        message.stop()
        self._generate_rewrite(message.screen, message.instruction)

    @on(RewriteScreen.Stop)
    def _rewrite_stop(self, message: RewriteScreen.Stop) -> None:
        message.stop()
        self.stop_generation()

    def _generate_rewrite(self, screen: RewriteScreen, instruction: str) -> None:
        state = self._rewrite
        if not state:
            return
        if state.get("event") is not None:
            self._mark_event_rejected(state["event"])
        template = state["template"]
        try:
            chosen = self.assistant.template(template)
        except Exception as error:
            self._report(error)
            return
        values = dict(state["variables"])
        target = chosen.input_variable or "passage"
        values[target] = state["original"]
        if template == "rewrite":
            values["instruction"] = instruction
        prepared = self._prepare(chosen, values)
        if prepared is None:
            screen.finish(error="The rewrite could not start; see the message.")
            return
        event_id = self._record(chosen.name, prepared.variables, prepared.request)
        state["event"] = event_id
        screen.begin(prepared.request.params.num_alternatives)
        self._rewrite_worker(prepared.request, screen, event_id)

    @work(exclusive=True, group="generation", exit_on_error=False)
    async def _rewrite_worker(self, request: GenerationRequest, screen: RewriteScreen, event_id: int | None) -> None:
        try:
            result = await self._consume(request, lambda d: screen.stream(d.index, d.text))
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                screen.finish()
            self._record_partial(event_id, list(screen.alternatives))
            raise
        except Exception as error:
            message = getattr(error, "message", str(error))
            hint = getattr(error, "hint", "")
            with contextlib.suppress(Exception):
                screen.finish(error=f"{message} {hint}".strip())
            if event_id is not None:
                with contextlib.suppress(Exception):
                    self.session.mark_error(event_id, message)
            return
        if result is None:
            screen.finish()
            return
        self._record_result(event_id, result)
        screen.finish(result.texts, error=result.error)

    def _mark_event_rejected(self, event_id: int | None) -> None:
        if event_id is not None:
            with contextlib.suppress(Exception):
                if self.session.event(event_id).status not in ("accepted",):
                    self.session.mark_rejected(event_id)

    def _rewrite_done(self, choice: RewriteChoice | None) -> None:
        state, self._rewrite = self._rewrite, {}
        self.stop_generation()
        if not state:
            return
        event_id = state.get("event")
        if choice is None or event_id is None:
            self._mark_event_rejected(event_id)
            return
        start, end, original = state["start"], state["end"], state["original"]
        doc = self.session.document
        if doc.text[start:end] != original:
            self.notify("The passage changed while the rewrite was open, so it was left as it is.",
                        severity="warning")
            return
        core = choice.text.strip()
        lead = original[: len(original) - len(original.lstrip())]
        trail = original[len(original.rstrip()) :]
        new_text = lead + core + trail
        try:
            self.session.rewrite(event_id, start, end, choice.alternative, text=new_text)
        except Exception as error:
            self._report(error)
            return
        editor = self.editor
        editor.resync()
        editor.selection = Selection(editor.location_of(start), editor.location_of(start + len(new_text)))
        editor.focus()
        self._draft_changed(DraftEditor.DraftChanged(editor))
        self.notify("Rewritten. Ctrl+Z brings the original back.", timeout=4)

    # -- templates ------------------------------------------------------------------------
    def open_template(self, name: str) -> None:
        """Show the form of template ``name`` and run it."""
        try:
            template = self.assistant.templates.get(name)
        except Exception as error:
            self._report(error)
            return
        editor = self.editor
        start, end = editor.selection_offsets
        selection = self.session.document.text[start:end]
        values: dict[str, str] = {}
        hidden: tuple[str, ...] = ()
        target = template.input_variable
        if template.output == "cursor":
            if self.session.read_only:
                self.notify("This session is open read-only, so nothing can be added to it.", severity="warning")
                return
            hidden = (target,) if target else ()
            if target:
                values[target] = "(your draft up to the cursor)"
            note = "It carries on from your cursor; the result appears there as a suggestion."
            if "notes" in template.variables and self.session.notes.strip():
                values["notes"] = self.session.notes
            if "title" in template.variables and self._story_title():
                values["title"] = self._story_title()
        elif template.output == "selection":
            if self.session.read_only:
                self.notify("This session is open read-only, so nothing can be rewritten.", severity="warning")
                return
            if not selection.strip():
                self.notify(f"Select the passage for '{template.name}' first, then run it again.", timeout=5)
                return
            hidden = (target,) if target else ()
            if target:
                values[target] = selection
            note = "It works on the selected passage; you will see a preview before anything changes."
        else:
            if target and selection.strip():
                values[target] = selection
            note = "The results go to the Results tab."
        screen = TemplateFormScreen(template, values, hidden=hidden, note=note)
        self.push_screen(screen, callback=partial(self._run_template, template))

    def _run_template(self, template: Any, values: dict[str, str] | None) -> None:
        if values is None:
            return
        target = template.input_variable
        if template.output == "cursor":
            values = {k: v for k, v in values.items() if k != target}
            self.action_continue(template, values)
        elif template.output == "selection":
            values = {k: v for k, v in values.items() if k != target}
            self.action_rewrite(template, values)
        else:
            self.run_list_template(template, values)

    def run_list_template(self, template: Any, values: Mapping[str, Any]) -> None:
        """Run a template whose results go to the Results tab."""
        prepared = self._prepare(template, values)
        if prepared is None:
            return
        event_id = self._record(template.name, prepared.variables, prepared.request)
        self.side.display = True
        self.side.show_tab("results")
        self._list_worker(prepared.request, template.name, event_id)

    @work(exclusive=True, group="generation", exit_on_error=False)
    async def _list_worker(self, request: GenerationRequest, name: str, event_id: int | None) -> None:
        items = await self.results.add(name, request.params.num_alternatives, event_id=event_id)

        def stream(delta: Delta) -> None:
            if delta.index < len(items):
                item = items[delta.index]
                item.set_text((item.text + delta.text).lstrip("\n") if not item.text else item.text + delta.text)

        try:
            result = await self._consume(request, stream)
        except asyncio.CancelledError:
            for item in items:
                item.set_text(item.text.strip(), finished=True)
            self._record_partial(event_id, [item.text for item in items])
            raise
        except Exception as error:
            for item in items:
                item.set_text(item.text or "(failed)", finished=True)
            if event_id is not None:
                with contextlib.suppress(Exception):
                    self.session.mark_error(event_id, getattr(error, "message", str(error)))
            self._report(error)
            return
        if result is not None:
            for item, text in zip(items, result.texts, strict=False):
                item.set_text(text.strip(), finished=True)
            self._record_result(event_id, result)
            if result.error:
                self.notify(f"The model stopped early: {result.error}", severity="error", timeout=8)

    @on(ResultsView.InsertRequested)
    def _insert_result(self, message: ResultsView.InsertRequested) -> None:
        item = message.item
        if not item.text.strip():
            return
        self._insert_generated(item.text, item.event_id, item.alternative)

    def _insert_generated(self, text: str, event_id: int | None, alternative: int = 0) -> None:
        """Put generated text into the draft at the cursor, as the model's."""
        if self.session.read_only:
            self.notify("This session is open read-only, so nothing can be added to it.", severity="warning")
            return
        editor = self.editor
        if editor.ghost is not None:
            self._clear_ghost("insert")
        pos = editor.cursor_offset
        try:
            if event_id is not None:
                self.session.accept(event_id, alternative, pos=pos, text=text)
            else:
                self.session.document.insert(pos, text)
        except Exception as error:
            self._report(error)
            return
        editor.resync(pos + len(text))
        editor.focus()
        self._draft_changed(DraftEditor.DraftChanged(editor))
        self.notify("Inserted at the cursor. Ctrl+Z takes it out again.", timeout=3)

    # -- chat -------------------------------------------------------------------------------
    def action_chat(self) -> None:
        """Open the Chat tab, ready to type."""
        self.side.display = True
        self.side.show_tab("chat")
        self._update_chat_about()
        self.call_after_refresh(lambda: self.query_one("#chat-input").focus())

    def _chat_about(self) -> tuple[str, str]:
        start, end = self.editor.selection_offsets
        text = self.session.document.text
        if end > start and text[start:end].strip():
            return "selection", text[start:end]
        return "draft", text

    def _update_chat_about(self) -> None:
        what, text = self._chat_about()
        words = len(text.split())
        label = "the selected passage" if what == "selection" else "your draft"
        notes = " and your notes" if self.session.notes.strip() else ""
        self.chat.set_about(f"About {label} ({words:,} words){notes}. Select a passage to ask about it alone.")

    @on(ChatView.Send)
    async def _chat_send(self, message: ChatView.Send) -> None:
        message.stop()
        chat = self.chat
        history = chat.history
        await chat.add("user", message.text)
        reply = await chat.add("assistant")
        what, about = self._chat_about()
        self._update_chat_about()
        parts: list[TextPart] = [TextPart(CHAT_SYSTEM)]
        if self.session.notes.strip():
            parts.append(TextPart(f"The writer's notes:\n{self.session.notes.strip()}\n\n"))
        parts.append(TextPart("The passage they selected:\n" if what == "selection" else "Their draft:\n"))
        if about.strip():
            parts.append(TextPart(about, elastic=True))
        else:
            parts.append(TextPart("(The draft is still empty.)"))
        messages = [ChatMessage("system", tuple(parts))]
        messages += [ChatMessage.of("user" if role == "user" else "assistant", text) for role, text in history]
        messages.append(ChatMessage.of("user", message.text))
        try:
            params = self.assistant.params_for(None, {**self.session_params, "num_alternatives": 1, "num_beams": 1,
                                                      "stop": ("\nWriter:", "\nCompanion:")})
            request = GenerationRequest.chat(messages, params)
        except Exception as error:
            reply.set_text("(could not ask)")
            self._report(error)
            return
        event_id = self._record("chat", {"message": message.text, "about": what}, request)
        reply.event_id = event_id
        self._chat_worker(request, reply, event_id)

    @work(exclusive=True, group="generation", exit_on_error=False)
    async def _chat_worker(self, request: GenerationRequest, reply: ChatBubble, event_id: int | None) -> None:
        chat = self.chat

        def stream(delta: Delta) -> None:
            if delta.index == 0:
                reply.append(delta.text if reply.text else delta.text.lstrip())
                chat.scroll_to_end()

        try:
            result = await self._consume(request, stream)
        except asyncio.CancelledError:
            reply.set_text(reply.text.strip() or "(stopped)")
            self._record_partial(event_id, [reply.text])
            raise
        except Exception as error:
            reply.set_text(f"(no reply: {getattr(error, 'message', error)})")
            if event_id is not None:
                with contextlib.suppress(Exception):
                    self.session.mark_error(event_id, getattr(error, "message", str(error)))
            self._report(error)
            return
        if result is not None:
            reply.set_text(result.text.strip() or "(The model had nothing to say.)")
            self._record_result(event_id, result)
            if result.error:
                self.notify(f"The reply stopped early: {result.error}", severity="error", timeout=8)
        chat.scroll_to_end()

    @on(ChatView.InsertReply)
    def _insert_reply(self, message: ChatView.InsertReply) -> None:
        bubble = message.bubble
        self._insert_generated(bubble.text.strip(), bubble.event_id, 0)

    # -- notes, settings, stats ----------------------------------------------------------------
    @on(NotesView.Changed)
    def _notes_changed(self, message: NotesView.Changed) -> None:
        if self.session.read_only:
            return
        if self._notes_timer is not None:
            self._notes_timer.stop()
        self._notes_timer = self.set_timer(0.3, partial(self._save_notes, message.text))

    def _save_notes(self, text: str) -> None:
        self._notes_timer = None
        try:
            self.session.notes = text
        except Exception as error:
            self._report(error)

    def _load_settings_view(self) -> None:
        defaults: dict[str, Any] = {}
        with contextlib.suppress(Exception):
            defaults = asdict(self.assistant.params_for(self.assistant.template("continue")))
        view = self.settings_view
        view.load(self.session_params, defaults)
        view.set_backends(self._profiles(), self._backend_name, self.session.settings.get("model"))

    @on(SettingsView.ParamsChanged)
    def _params_changed(self, message: SettingsView.ParamsChanged) -> None:
        view = self.settings_view
        try:
            self.assistant.params_for(None, message.params)
        except QuillmateError as error:
            placed = False
            for spec in SAMPLING_FIELDS:
                wrong = spec.name in error.message or (spec.name == "num_alternatives" and "n (" in error.message)
                if spec.name in message.params and wrong:
                    view.show_error(spec.name, _problem_for(error.message, spec.name))
                    placed = True
            if not placed:
                self.notify(error.message, severity="error")
            return
        for spec in SAMPLING_FIELDS:
            view.show_error(spec.name, "")
        if self.session.read_only:
            return
        try:
            self.session.update_settings(params=dict(message.params))
        except Exception as error:
            self._report(error)

    @on(SettingsView.SwitchBackend)
    def _settings_switch(self, message: SettingsView.SwitchBackend) -> None:
        self.switch_backend(message.backend, message.model)

    @on(StatsView.TintToggled)
    def _tint_toggled(self, message: StatsView.TintToggled) -> None:
        self.editor.show_provenance = message.on

    def _refresh_stats(self) -> None:
        try:
            stats = self.session.stats()
        except Exception:
            return
        lines = [
            f"{stats.words:,} words",
            f"  {stats.writer_words:,} yours",
            f"  {stats.model_words:,} by the model ({stats.model_share:.0%})",
            f"  {stats.edited_words:,} by the model, then edited",
            "",
            f"Generated in all: {stats.generated_share:.0%}",
        ]
        for model in stats.by_model:
            lines.append(f"  {model.model}: {model.words:,} kept, {model.edited_words:,} edited")
        lines += ["", f"Session {self.session.id}", f"Resume: quillmate write --session {self.session.id}"]
        if self.session.file is not None:
            lines.append(f"File: {self.session.file}")
        self.stats_view.show(lines)
        self.stats_view.set_tint(self.editor.show_provenance)

    def on_tabbed_content_tab_activated(self, event: Any) -> None:
        pane = getattr(event.pane, "id", "")
        if pane == "stats":
            self._refresh_stats()
        elif pane == "chat":
            self._update_chat_about()

    # -- panels, help ----------------------------------------------------------------------
    def action_toggle_panel(self) -> None:
        """Show or hide the side panel."""
        side = self.side
        side.display = not side.display
        if not side.display:
            self.editor.focus()

    def action_tab(self, tab: str) -> None:
        """Show one of the side panel's tabs."""
        self.side.display = True
        self.side.show_tab(tab)
        if tab == "stats":
            self._refresh_stats()
        elif tab == "chat":
            self._update_chat_about()

    def action_toggle_provenance(self) -> None:
        """Tint (or stop tinting) the text the model wrote."""
        editor = self.editor
        editor.show_provenance = not editor.show_provenance
        with contextlib.suppress(NoMatches):
            self.stats_view.set_tint(editor.show_provenance)
        if editor.show_provenance:
            self._refresh_stats()
            share = self.session.stats().model_share
            self.notify(f"Model-written text is tinted ({share:.0%} of the words). F3 turns it off.", timeout=4)

    def action_help(self) -> None:
        """Show every key."""
        self.push_screen(HelpScreen())

    def action_switch_backend(self) -> None:
        """Choose another backend or model."""
        def chosen(choice: tuple[str, str | None] | None) -> None:
            if choice is not None:
                self.switch_backend(*choice)

        self.push_screen(BackendScreen(self._profiles(), self._backend_name), callback=chosen)

    # -- saving and quitting -----------------------------------------------------------------
    def action_save(self) -> None:
        """Write the draft to its file (atomically)."""
        if self.session.file is None:
            self.action_save_as()
            return
        force = time.monotonic() < self._force_save_until
        self._save_worker(None, force)

    def action_save_as(self) -> None:
        """Write the draft to a file of the writer's choosing, and keep saving there."""
        suggestion = self.session.file.name if self.session.file else _file_name_for(self.session.title)

        def chosen(path: Path | None) -> None:
            if path is not None:
                self._save_worker(path, False)

        self.push_screen(SaveAsScreen(suggestion), callback=chosen)

    @work(exclusive=True, group="save", exit_on_error=False)
    async def _save_worker(self, path: Path | None, force: bool) -> None:
        from assistant.sessions import FileChangedOutside

        try:
            target = await asyncio.to_thread(self.session.save_to_file, path, force=force)
        except FileChangedOutside as error:
            self._force_save_until = time.monotonic() + SAVE_FORCE_WINDOW
            self.notify(f"{error.message}\nPress Ctrl+S again to overwrite it, or Ctrl+P → 'Reload the file "
                        "from disk' to take its version.", severity="warning", timeout=SAVE_FORCE_WINDOW)
            return
        except Exception as error:
            self._report(error, prefix="Not saved: ")
            return
        self._force_save_until = 0.0
        self.status.update_state(title=self.session.title)
        self.notify(f"Saved {target.name}.", timeout=2)

    def action_reload_file(self) -> None:
        """Take the linked file's text as it is on disk now (the difference counts as your typing)."""
        if self.session.file is None:
            self.notify("This draft has no file yet.", timeout=3)
            return
        self._clear_ghost("reload")
        try:
            self.session.reload_from_file()
        except Exception as error:
            self._report(error)
            return
        self.editor.resync()
        self._draft_changed(DraftEditor.DraftChanged(self.editor))
        self.notify(f"Reloaded {self.session.file.name}. Ctrl+Z undoes it.", timeout=4)

    async def action_quit(self) -> None:
        """Quit. The draft is already saved; a linked file is brought up to date too."""
        self.stop_generation()
        if self._notes_timer is not None:  # notes typed in the last moment
            self._notes_timer.stop()
            self._notes_timer = None
            with contextlib.suppress(Exception):
                self._save_notes(self._find("#notes-view", NotesView).text)
        await asyncio.to_thread(self.finish)
        self.exit()

    def finish(self) -> None:
        """Save everything and close the session (safe to call twice). Sets ``exit_message``."""
        if self._closed:
            return
        self._closed = True
        session = self.session
        lines: list[str] = []
        if not session.read_only and session.file is not None:
            try:
                on_disk = session.file.read_text(encoding="utf-8") if session.file.exists() else None
                if on_disk != session.document.text:
                    if session.file_changed_outside():
                        lines.append(f"{session.file.name} was changed by another program, so quillmate left it "
                                     f"alone; your draft is in session {session.id}.")
                    else:
                        session.save_to_file()
            except Exception as error:
                lines.append(f"Could not write {session.file.name}: {error}")
        try:
            session.close()
        except Exception as error:
            rescue = Path.home() / f"quillmate-rescue-{session.id}.md"
            try:
                session.export_rescue(rescue)
                lines.append(f"The sessions database could not be written ({error}); your text was saved to {rescue}.")
            except Exception:
                lines.append(f"The sessions database could not be written ({error}).")
        untouched = self._new_session and session.file is None and not session.document.text and not session.events
        if untouched and self.store is not None:
            with contextlib.suppress(Exception):
                self.store.delete(session.id)  # an empty draft that was never written in is not kept
        if self._owns_store and self.store is not None:
            with contextlib.suppress(Exception):
                self.store.close()
        if not lines and session.file is None and session.document.text.strip():
            lines.append(f"Your draft is kept in session {session.id}: quillmate write --session {session.id}")
        self.exit_message = "\n".join(lines)


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


def _problem_for(message: str, name: str) -> str:
    """The part of an InvalidParameters message about ``name``."""
    body = message.removeprefix("Invalid generation settings: ").rstrip(".")
    for part in body.split("; "):
        if name in part or (name == "num_alternatives" and part.startswith("n ")):
            return part[0].upper() + part[1:] + "."
    return message


def _file_name_for(title: str) -> str:
    keep = "".join(c if c.isalnum() or c in " -_" else " " for c in title).strip()
    stem = "-".join(keep.lower().split())[:40] or "draft"
    return f"{stem}.md"


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
