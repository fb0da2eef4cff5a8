"""The side panel: Results, Chat, Notes, Settings and Stats tabs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import (
    Button,
    Input,
    Label,
    ListItem,
    ListView,
    Select,
    Static,
    Switch,
    TabbedContent,
    TabPane,
    TextArea,
)

TABS: tuple[tuple[str, str], ...] = (
    ("results", "Results"),
    ("chat", "Chat"),
    ("notes", "Notes"),
    ("settings", "Settings"),
    ("stats", "Stats"),
)


# ---------------------------------------------------------------------------- Results


class ResultItem(ListItem):
    """One result of a list template (a poem, a slogan list, an image prompt)."""

    def __init__(self, heading: str, text: str = "", *, event_id: int | None = None, alternative: int = 0) -> None:
        super().__init__(classes="result")
        self.heading = heading
        self.text = text
        self.event_id = event_id
        self.alternative = alternative
        self.finished = False

    def compose(self) -> ComposeResult:
        yield Static(self.heading, classes="result-heading")
        yield Static(Text(self.text or "…"), classes="result-text")

    def set_text(self, text: str, *, finished: bool = False) -> None:
        """Show ``text`` (streamed so far, or final)."""
        self.text = text
        self.finished = finished
        if self.is_mounted:
            self.query_one(".result-text", Static).update(Text(text or ("(nothing)" if finished else "…")))


class ResultsView(Vertical):
    """Results of ``list`` templates; each can be inserted at the cursor or copied."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("i", "insert", "Insert at cursor"),
        Binding("c", "copy", "Copy"),
        Binding("x,delete", "remove", "Remove", show=False),
    ]

    @dataclass
    class InsertRequested(Message):
        """The writer wants this result in the draft at the cursor."""

        item: ResultItem

    def compose(self) -> ComposeResult:
        yield Static(
            "Poems, slogans and image prompts appear here.\n"
            "Ctrl+P, then type a template's name to run it.\n"
            "On a result: Enter or i inserts it at the cursor, c copies it.",
            classes="empty-hint",
            id="results-hint",
        )
        yield ListView(id="results-list")

    @property
    def list_view(self) -> ListView:
        return self.query_one("#results-list", ListView)

    @property
    def items(self) -> list[ResultItem]:
        """Every result, newest first."""
        return list(self.list_view.query(ResultItem))

    async def add(self, heading: str, count: int, *, event_id: int | None) -> list[ResultItem]:
        """Add ``count`` empty results (filled as they stream) at the top; return them."""
        items = [
            ResultItem(f"{heading} {i + 1}/{count}" if count > 1 else heading, event_id=event_id, alternative=i)
            for i in range(count)
        ]
        for item in reversed(items):
            await self.list_view.insert(0, [item])
        self.list_view.index = 0
        self.query_one("#results-hint").display = False
        return items

    def _current(self) -> ResultItem | None:
        item = self.list_view.highlighted_child
        return item if isinstance(item, ResultItem) else None

    @on(ListView.Selected, "#results-list")
    def _selected(self, event: ListView.Selected) -> None:
        event.stop()
        if isinstance(event.item, ResultItem):
            self.post_message(self.InsertRequested(event.item))

    def action_insert(self) -> None:
        item = self._current()
        if item is not None:
            self.post_message(self.InsertRequested(item))

    def action_copy(self) -> None:
        item = self._current()
        if item is not None and item.text:
            self.app.copy_to_clipboard(item.text)
            self.notify("Copied to the clipboard.", timeout=2)

    def action_remove(self) -> None:
        item = self._current()
        if item is not None:
            item.remove()
            if len(self.items) <= 1:
                self.query_one("#results-hint").display = len(self.items) == 0


# ------------------------------------------------------------------------------- Chat


class ChatBubble(Static, can_focus=True):
    """One message of the chat (the writer's, or the companion's reply)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("i,enter", "insert", "Insert into draft")]

    def __init__(self, role: str, text: str = "") -> None:
        super().__init__(classes=f"bubble {role}")
        self.role = role
        self.text = text
        self.event_id: int | None = None
        self.failed = False
        """True for a reply that never came (an error, or stopped before any text): not part of the history."""
        self.border_title = "You" if role == "user" else "Companion"
        self._show()

    def _show(self) -> None:
        self.update(Text(self.text or ("…" if self.role == "assistant" else "")))

    def append(self, text: str) -> None:
        """Add streamed text to the reply."""
        self.text += text
        self._show()

    def set_text(self, text: str) -> None:
        """Replace the text (the final reply)."""
        self.text = text
        self._show()

    def action_insert(self) -> None:
        if self.role == "assistant" and self.text.strip():
            self.post_message(ChatView.InsertReply(self))


class ChatView(Vertical):
    """Talk about the draft (or the selection) with the current model."""

    @dataclass
    class Send(Message):
        """The writer sent a chat message."""

        text: str

    @dataclass
    class InsertReply(Message):
        """Insert a reply into the draft at the cursor."""

        bubble: ChatBubble

    class Cleared(Message):
        """The writer cleared the conversation."""

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="chat-log"):
            yield Static(
                "Ask about your draft: what's working, a name for a character, three ways the scene could go. "
                "The model sees your draft (or the selected passage) and your notes.",
                classes="empty-hint",
                id="chat-hint",
            )
        yield Static("", id="chat-about")
        yield Input(placeholder="Ask about your draft… (Enter sends)", id="chat-input")
        with Horizontal(id="chat-buttons"):
            yield Button("Insert reply", id="chat-insert", compact=True)
            yield Button("Clear chat", id="chat-clear", compact=True)

    @property
    def bubbles(self) -> list[ChatBubble]:
        return list(self.query(ChatBubble))

    @property
    def history(self) -> list[tuple[str, str]]:
        """(role, text) of every message so far."""
        return [(b.role, b.text) for b in self.bubbles if b.text.strip() and not b.failed]

    def set_about(self, text: str) -> None:
        self.query_one("#chat-about", Static).update(text)

    async def add(self, role: str, text: str = "") -> ChatBubble:
        """Add a message to the log and scroll to it."""
        bubble = ChatBubble(role, text)
        self.query_one("#chat-hint").display = False
        log = self.query_one("#chat-log", VerticalScroll)
        await log.mount(bubble)
        log.scroll_end(animate=False)
        return bubble

    async def restore(self, bubbles: list[ChatBubble]) -> None:
        """Show an earlier conversation (a resumed session) in one go."""
        if not bubbles:
            return
        self.query_one("#chat-hint").display = False
        log = self.query_one("#chat-log", VerticalScroll)
        await log.mount_all(bubbles)
        log.scroll_end(animate=False)

    def scroll_to_end(self) -> None:
        self.query_one("#chat-log", VerticalScroll).scroll_end(animate=False)

    @on(Input.Submitted, "#chat-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if text:
            event.input.value = ""
            self.post_message(self.Send(text))

    @on(Button.Pressed, "#chat-insert")
    def _insert_last(self, event: Button.Pressed) -> None:
        event.stop()
        replies = [b for b in self.bubbles if b.role == "assistant" and b.text.strip()]
        if replies:
            self.post_message(self.InsertReply(replies[-1]))
        else:
            self.notify("There is no reply to insert yet.", timeout=3)

    @on(Button.Pressed, "#chat-clear")
    async def _clear(self, event: Button.Pressed) -> None:
        event.stop()
        await self.query(ChatBubble).remove()
        self.query_one("#chat-hint").display = True
        self.post_message(self.Cleared())


# ------------------------------------------------------------------------------ Notes


class NotesView(Vertical):
    """The session's notes: characters, setting, style. The model reads them every time it continues."""

    @dataclass
    class Changed(Message):
        """The notes were edited."""

        text: str

    def __init__(self, notes: str, *, read_only: bool = False, id: str | None = None) -> None:
        super().__init__(id=id)
        self._initial = notes
        self._read_only = read_only

    def compose(self) -> ComposeResult:
        yield Static("Characters, setting, style. The model reads these every time it continues your story.",
                     classes="hint")
        area = TextArea(self._initial, soft_wrap=True, id="notes-text", read_only=self._read_only,
                        highlight_cursor_line=False, placeholder="e.g. Mara: lighthouse keeper, 60, dry humour.")
        yield area

    @property
    def text(self) -> str:
        return self.query_one("#notes-text", TextArea).text

    @on(TextArea.Changed, "#notes-text")
    def _changed(self, event: TextArea.Changed) -> None:
        event.stop()
        self.post_message(self.Changed(event.text_area.text))


# --------------------------------------------------------------------------- Settings


@dataclass(frozen=True)
class Field:
    """One sampling setting in the Settings tab."""

    name: str
    label: str
    kind: type
    help: str


SAMPLING_FIELDS: tuple[Field, ...] = (
    Field("temperature", "Temperature", float, "0 = most likely words; 1+ = more surprising"),
    Field("top_p", "Top-p", float, "sample from the likeliest words adding up to this share (0–1]"),
    Field("top_k", "Top-k", int, "sample from the k likeliest words; 0 = off"),
    Field("num_alternatives", "Alternatives (n)", int, "how many versions to offer"),
    Field("max_new_tokens", "Max tokens", int, "the longest a continuation may be"),
    Field("num_beams", "Beams", int, "beam search width; 1 = off"),
    Field("repetition_penalty", "Repetition penalty", float, "above 1 discourages repeating words"),
    Field("seed", "Seed", int, "empty = different every time"),
    Field("max_lines", "Max lines", int, "end after this many lines; empty = no limit"),
)


class SettingsView(VerticalScroll):
    """Sampling settings (kept with the session) and the backend to use."""

    @dataclass
    class ParamsChanged(Message):
        """Valid settings were entered: only the ones the writer set, by name."""

        params: dict[str, Any]

    @dataclass
    class SwitchBackend(Message):
        """Switch to another backend profile (and optionally model)."""

        backend: str
        model: str | None

    def __init__(self, profiles: list[tuple[str, str]], current: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._profiles = profiles
        self._current = current

    def compose(self) -> ComposeResult:
        yield Static("Leave a box empty for the template's default (greyed). Kept with this session.",
                     classes="hint")
        for spec in SAMPLING_FIELDS:
            with Horizontal(classes="setting-row"):
                yield Label(spec.label, classes="setting-label")
                yield Input(
                    id=f"set-{spec.name}",
                    type="integer" if spec.kind is int else "number",
                    classes="setting-input",
                    tooltip=spec.help,
                    compact=True,
                )
            yield Static("", classes="setting-error", id=f"err-{spec.name}")
        yield Static("Model", classes="section")
        yield Select[str](
            [(f"{name} ({what})", name) for name, what in self._profiles],
            value=self._current,
            id="set-backend",
            allow_blank=False,
            compact=True,
        )
        yield Input(placeholder="model (empty = the profile's)", id="set-model", compact=True)
        yield Button("Switch model", id="set-switch", compact=True)

    def load(self, values: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
        """Show the writer's values (``values``) and, greyed, the defaults."""
        for spec in SAMPLING_FIELDS:
            box = self.query_one(f"#set-{spec.name}", Input)
            value = values.get(spec.name)
            with box.prevent(Input.Changed):
                box.value = "" if value is None else str(value)
            default = defaults.get(spec.name)
            unset = {"seed": "random", "max_lines": "no limit"}
            box.placeholder = unset.get(spec.name, "") if default is None else str(default)
            self.show_error(spec.name, "")

    def set_backends(self, profiles: list[tuple[str, str]], current: str, model: str | None) -> None:
        """Offer the configured backend profiles: (name, description)."""
        self._profiles = profiles
        select = self.query_one("#set-backend", Select)
        with select.prevent(Select.Changed):
            select.set_options([(f"{name} ({what})", name) for name, what in profiles])
            if any(name == current for name, _ in profiles):
                select.value = current
        self.query_one("#set-model", Input).value = model or ""

    def values(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The values entered (parsed) and a problem per field that does not parse."""
        out: dict[str, Any] = {}
        problems: dict[str, str] = {}
        for spec in SAMPLING_FIELDS:
            raw = self.query_one(f"#set-{spec.name}", Input).value.strip()
            if not raw:
                continue
            try:
                out[spec.name] = spec.kind(raw)
            except ValueError:
                problems[spec.name] = "a whole number" if spec.kind is int else "a number"
        return out, problems

    def show_error(self, name: str, message: str) -> None:
        """Show ``message`` under a field (empty clears it)."""
        error = self.query_one(f"#err-{name}", Static)
        error.update(message)
        error.display = bool(message)

    @on(Input.Changed, ".setting-input")
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        values, problems = self.values()
        for spec in SAMPLING_FIELDS:
            self.show_error(spec.name, f"Must be {problems[spec.name]}." if spec.name in problems else "")
        if not problems:
            self.post_message(self.ParamsChanged(values))

    @on(Button.Pressed, "#set-switch")
    def _switch(self, event: Button.Pressed) -> None:
        event.stop()
        backend = self.query_one("#set-backend", Select).value
        if not isinstance(backend, str):
            return
        model = self.query_one("#set-model", Input).value.strip() or None
        self.post_message(self.SwitchBackend(backend, model))


# ------------------------------------------------------------------------------ Stats


class StatsView(VerticalScroll):
    """Who wrote what: the share of model-written words, and the provenance tint switch."""

    @dataclass
    class TintToggled(Message):
        """The writer flipped the provenance tint switch."""

        on: bool

    def compose(self) -> ComposeResult:
        with Horizontal(classes="setting-row"):
            yield Label("Tint model text (F3)", classes="setting-label")
            yield Switch(False, id="tint-switch")
        yield Static("", id="stats-text")

    def show(self, lines: list[str]) -> None:
        self.query_one("#stats-text", Static).update("\n".join(lines))

    def set_tint(self, on: bool) -> None:
        switch = self.query_one("#tint-switch", Switch)
        with switch.prevent(Switch.Changed):
            switch.value = on

    @on(Switch.Changed, "#tint-switch")
    def _toggled(self, event: Switch.Changed) -> None:
        event.stop()
        self.post_message(self.TintToggled(event.value))


# -------------------------------------------------------------------------- The panel


class SidePanel(Vertical):
    """The tabs beside the editor; F2 hides and shows it."""

    def __init__(
        self,
        notes: str,
        profiles: list[tuple[str, str]],
        backend: str,
        *,
        read_only: bool = False,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self._notes = notes
        self._profiles = profiles
        self._backend = backend
        self._read_only = read_only

    def compose(self) -> ComposeResult:
        with TabbedContent(id="tabs", initial="results"):
            with TabPane("Results", id="results"):
                yield ResultsView(id="results-view")
            with TabPane("Chat", id="chat"):
                yield ChatView(id="chat-view")
            with TabPane("Notes", id="notes"):
                yield NotesView(self._notes, read_only=self._read_only, id="notes-view")
            with TabPane("Settings", id="settings"):
                yield SettingsView(self._profiles, self._backend, id="settings-view")
            with TabPane("Stats", id="stats"):
                yield StatsView(id="stats-view")

    @property
    def tabs(self) -> TabbedContent:
        return self.query_one("#tabs", TabbedContent)

    def show_tab(self, tab: str) -> None:
        """Switch to a tab by id."""
        self.tabs.active = tab
