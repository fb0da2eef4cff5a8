"""The Chat tab: a conversation with the model about the draft."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Input, Static


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

        reply: ChatBubble

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
