"""The Chat tab: talking with the model about the draft or the selected passage."""

from __future__ import annotations

import asyncio

from textual import on, work

from assistant import ChatMessage, Delta, GenerationRequest, TextPart
from assistant.sessions import GenerationRecorder
from tui.flows.continuation import ContinuationFlow
from tui.widgets.panels import ChatBubble, ChatView

CHAT_SYSTEM = (
    "You are a thoughtful, candid writing companion. The writer is working on the text below and wants "
    "to talk about it. Answer briefly and concretely; when asked for prose, reply with only the prose.\n\n"
)


class ChatFlow(ContinuationFlow):
    """Chat about the draft; a reply can go into the draft."""

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
            reply.failed = True
            self._report(error)
            return
        recorder = self._record("chat", {"message": message.text, "about": what}, request)
        reply.event_id = recorder.event_id
        self._chat_worker(request, reply, recorder)

    @work(exclusive=True, group="generation", exit_on_error=False)
    async def _chat_worker(self, request: GenerationRequest, reply: ChatBubble, recorder: GenerationRecorder) -> None:
        chat = self.chat

        def stream(delta: Delta) -> None:
            if delta.index == 0:
                reply.append(delta.text if reply.text else delta.text.lstrip())
                chat.scroll_to_end()

        try:
            result = await self._consume(request, stream)
        except asyncio.CancelledError:
            reply.failed = not reply.text.strip()
            reply.set_text(reply.text.strip() or "(stopped)")
            recorder.cancelled([reply.text])
            raise
        except Exception as error:
            reply.set_text(f"(no reply: {getattr(error, 'message', error)})")
            reply.failed = True
            recorder.failed(error)
            self._report(error)
            return
        if result is not None:
            reply.failed = not result.text.strip()
            reply.set_text(result.text.strip() or "(The model had nothing to say.)")
            recorder.finished(result)
            if result.error:
                self.notify(f"The reply stopped early: {result.error}", severity="error", timeout=8)
        chat.scroll_to_end()

    async def _restore_chat(self) -> None:
        """Bring back the conversation kept with a resumed session (since it was last cleared)."""
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
        await self.chat.restore(bubbles)

    @on(ChatView.Cleared)
    def _chat_cleared(self) -> None:
        if self.session.read_only:
            return
        chats = [event.id for event in self.session.events_for("chat")]
        if chats:
            self.session.update_settings(chat_cleared_after=max(chats))

    @on(ChatView.InsertReply)
    def _insert_reply(self, message: ChatView.InsertReply) -> None:
        bubble = message.bubble
        self._insert_generated(bubble.text.strip(), bubble.event_id, 0)


def _missing_reply(status: str, error: str | None) -> str:
    if status == "error":
        return f"(no reply: {error or 'the model failed'})"
    if status == "pending":
        return "(no reply: quillmate closed before it came)"
    return "(stopped)" if status == "cancelled" else "(The model had nothing to say.)"
