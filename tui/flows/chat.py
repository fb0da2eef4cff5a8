"""The Chat tab: talking with the model about the draft or the selected passage."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import TYPE_CHECKING

from assistant import ChatMessage, Delta, GenerationRequest, TextPart
from assistant.sessions import GenerationRecorder
from tui.flows.base import Flow, Services
from tui.flows.continuation import ContinuationFlow
from tui.flows.generation import GenerationFlow

if TYPE_CHECKING:
    from tui.widgets.panels import ChatBubble

CHAT_SYSTEM = (
    "You are a thoughtful, candid writing companion. The writer is working on the text below and wants "
    "to talk about it. Answer briefly and concretely; when asked for prose, reply with only the prose.\n\n"
)


class ChatFlow(Flow):
    """Chat about the draft; a reply can go into the draft (the app's ``conversation``)."""

    def __init__(self, services: Services, generation: GenerationFlow, continuation: ContinuationFlow) -> None:
        super().__init__(services)
        self.generation = generation
        self.continuation = continuation

    def open(self) -> None:
        """Open the Chat tab, ready to type."""
        side = self.views.side
        side.display = True
        side.show_tab("chat")
        self.update_about()
        self.services.call_after_refresh(lambda: self.views.chat.query_one("#chat-input").focus())

    def _chat_about(self) -> tuple[str, str]:
        start, end = self.views.editor.selection_offsets
        text = self.session.document.text
        if end > start and text[start:end].strip():
            return "selection", text[start:end]
        return "draft", text

    def update_about(self) -> None:
        """Say in the Chat tab what the model will read: the selection or the draft, and the notes."""
        what, text = self._chat_about()
        words = len(text.split())
        label = "the selected passage" if what == "selection" else "your draft"
        notes = " and your notes" if self.session.notes.strip() else ""
        self.views.chat.set_about(f"About {label} ({words:,} words){notes}. Select a passage to ask about it alone.")

    async def send(self, text: str) -> None:
        """Send the writer's ``text`` to the model, with the draft (or selection) and notes; stream the reply."""
        chat = self.views.chat
        history = chat.history
        await chat.add("user", text)
        reply = await chat.add("assistant")
        what, about = self._chat_about()
        self.update_about()
        parts: list[TextPart] = [TextPart(CHAT_SYSTEM)]
        if self.session.notes.strip():
            parts.append(TextPart(f"The writer's notes:\n{self.session.notes.strip()}\n\n"))
        parts.append(TextPart("The passage they selected:\n" if what == "selection" else "Their draft:\n"))
        if about.strip():
            parts.append(TextPart(about, elastic=True))
        else:
            parts.append(TextPart("(The draft is still empty.)"))
        messages = [ChatMessage("system", tuple(parts))]
        messages += [ChatMessage.of("user" if role == "user" else "assistant", said) for role, said in history]
        messages.append(ChatMessage.of("user", text))
        try:
            params = self.assistant.params_for(
                None,
                {**self.session_params, "num_alternatives": 1, "num_beams": 1, "stop": ("\nWriter:", "\nCompanion:")},
            )
            request = GenerationRequest.chat(messages, params)
        except Exception as error:
            reply.set_text("(could not ask)")
            reply.failed = True
            self.tell.report(error)
            return
        recorder = self.generation.record("chat", {"message": text, "about": what}, request)
        reply.event_id = recorder.event_id
        self.generation.run(partial(self._chat_worker, request, reply, recorder))

    async def _chat_worker(self, request: GenerationRequest, reply: ChatBubble, recorder: GenerationRecorder) -> None:
        chat = self.views.chat

        def stream(delta: Delta) -> None:
            if delta.index == 0:
                reply.append(delta.text if reply.text else delta.text.lstrip())
                chat.scroll_to_end()

        try:
            result = await self.generation.consume(request, stream)
        except asyncio.CancelledError:
            reply.failed = not reply.text.strip()
            reply.set_text(reply.text.strip() or "(stopped)")
            recorder.cancelled([reply.text])
            raise
        except Exception as error:
            reply.set_text(f"(no reply: {getattr(error, 'message', error)})")
            reply.failed = True
            recorder.failed(error)
            self.tell.report(error)
            return
        if result is not None:
            reply.failed = not result.text.strip()
            reply.set_text(result.text.strip() or "(The model had nothing to say.)")
            recorder.finished(result)
            if result.error:
                self.notify(f"The reply stopped early: {result.error}", severity="error", timeout=8)
        chat.scroll_to_end()

    async def restore(self) -> None:
        """Bring back the conversation kept with a resumed session (since it was last cleared)."""
        from tui.widgets.panels import ChatBubble

        cleared = int(self.session.settings.get("chat_cleared_after") or 0)
        bubbles: list[ChatBubble] = []
        for event in self.session.events_for("chat"):
            if event.id <= cleared:
                continue
            bubbles.append(ChatBubble("user", str(event.variables.get("message", ""))))
            text = event.alternatives[0].strip() if event.alternatives else ""
            reply = ChatBubble("assistant", text or _missing_reply(event.status, event.error))
            reply.event_id = event.id
            reply.failed = not text
            bubbles.append(reply)
        await self.views.chat.restore(bubbles)

    def cleared(self) -> None:
        """The writer cleared the chat: a resumed session starts it afresh too."""
        if self.session.read_only:
            return
        chats = [event.id for event in self.session.events_for("chat")]
        if chats:
            self.session.update_settings(chat_cleared_after=max(chats))

    def insert_reply(self, bubble: ChatBubble) -> None:
        """Put a reply into the draft at the cursor."""
        self.continuation.insert_generated(bubble.text.strip(), bubble.event_id, 0)


def _missing_reply(status: str, error: str | None) -> str:
    if status == "error":
        return f"(no reply: {error or 'the model failed'})"
    if status == "pending":
        return "(no reply: quillmate closed before it came)"
    return "(stopped)" if status == "cancelled" else "(The model had nothing to say.)"
