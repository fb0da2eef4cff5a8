"""The story bible in the app: the Bible tab (memory, author's note, entries) and the Context tab.

Every change is a checked copy of ``session.bible`` assigned back, so the session keeps
it (and the next continuation sends it). The Context tab shows what the last generation
sent, as recorded with its event, or what the next continuation would send.
"""

from __future__ import annotations

import asyncio
import contextlib
from functools import partial
from typing import TYPE_CHECKING, Any

from textual.timer import Timer

from tui.flows.base import Flow, Services
from tui.flows.continuation import ContinuationFlow

if TYPE_CHECKING:
    from assistant.bible import Bible, Entry, PromptReport
    from assistant.core import Prepared
    from tui.widgets.panels import BibleView, ContextView

# The bible's model, its dialog and its tabs are imported where they are used: none of them is
# needed for the app's first frame, and the model's (pydantic) is slow to import.

TYPING_PAUSE = 0.3
"""Seconds of quiet before what was typed in the memory or the author's note is kept."""


class BibleFlow(Flow):
    """The Bible and Context tabs (the app's ``story``)."""

    def __init__(self, services: Services, continuation: ContinuationFlow) -> None:
        super().__init__(services)
        self.continuation = continuation
        self._pending: dict[str, str] = {}
        self._typing: Timer | None = None
        self._marks: Timer | None = None

    @property
    def view(self) -> BibleView:
        """The Bible tab."""
        from tui.widgets.panels import BibleView

        return self.views.find("#bible-view", BibleView)

    @property
    def context_view(self) -> ContextView:
        """The Context tab."""
        from tui.widgets.panels import ContextView

        return self.views.find("#context-view", ContextView)

    # The Bible tab.

    def memory_changed(self, text: str) -> None:
        """The writer typed in the memory: keep it soon (not on every key)."""
        self._typed("memory", text)

    def note_changed(self, text: str) -> None:
        """The writer typed in the author's note: keep it soon."""
        self._typed("authors_note", text)

    def _typed(self, field: str, text: str) -> None:
        if self.session.read_only:
            return
        self._pending[field] = text
        if self._typing is not None:
            self._typing.stop()
        self._typing = self.services.set_timer(TYPING_PAUSE, self.flush)

    def flush(self) -> None:
        """Keep what was typed in the memory and author's note now (also before quitting)."""
        if self._typing is not None:
            self._typing.stop()
            self._typing = None
        changes, self._pending = self._pending, {}
        if changes:
            self._change(lambda bible: bible.replaced(**changes), show=False)

    def edit(self, name: str | None) -> None:
        """Open the entry called ``name`` in a dialog (None: a new entry); keep it when the writer does."""
        from tui.screens.entry import EntryScreen

        if self.session.read_only:
            return
        bible = self.session.bible
        entry = bible.entry(name) if name is not None else None
        taken = frozenset(e.name for e in bible.entries if entry is None or e.name != entry.name)
        self.services.push_screen(EntryScreen(entry, taken=taken), partial(self._edited, name))

    def _edited(self, name: str | None, entry: Entry | None) -> None:
        if entry is None:
            return
        if self._change(lambda bible: bible.with_entry(entry, replace=name)):
            self.notify(f"Kept the entry {entry.name!r}.", timeout=3)

    def toggle(self, name: str) -> None:
        """Switch the entry called ``name`` on or off."""
        self._change(lambda bible: bible.toggled(name))

    def remove(self, name: str) -> None:
        """Take the entry called ``name`` out of the bible."""
        if self._change(lambda bible: bible.without(name)):
            self.notify(f"Removed the entry {name!r}.", timeout=3)

    def _change(self, how: Any, *, show: bool = True) -> bool:
        """Apply ``how`` to the session's bible and keep the result; False (the writer told) if it fails."""
        try:
            changed: Bible = how(self.session.bible)
            self.session.bible = changed
        except Exception as error:
            self.tell.report(error)
            return False
        if show:
            self.refresh_marks()
        return True

    def draft_changed(self) -> None:
        """The draft changed: mark the entries its text brings in again, soon."""
        if self._marks is not None:
            self._marks.stop()
        self._marks = self.services.set_timer(0.5, self.refresh_marks)

    def refresh_marks(self) -> None:
        """Show the entries, marking those whose keys are in the text before the cursor."""
        from assistant.bible import find_triggers

        self._marks = None
        with contextlib.suppress(Exception):  # the tab is not there (closing)
            bible = self.session.bible
            editor = self.views.editor
            before = self.session.document.text[: editor.cursor_offset]
            self.view.show(bible, [t.entry.name for t in find_triggers(bible, before)])

    # The Context tab.

    def show_context(self, preview: bool | None = None) -> None:
        """Show the last generation's prompt (``preview`` False), the next continuation's (True), or the
        last one if there is one, else the next (None)."""
        last = None if preview else self.last_report()
        if last is not None:
            event_id, template, report = last
            self.context_view.show(report, preview=False, title=f"(generation {event_id}, {template})")
            return
        if preview is False:
            self.context_view.show(
                None,
                preview=False,
                title="Nothing was sent yet in this session. Press n to see what the next continuation would send.",
            )
            return
        self.context_view.show(None, preview=True, title="Putting the next prompt together…")
        text = self.session.document.text[: self.views.editor.cursor_offset]
        bible = self.session.bible
        self.services.run_worker(partial(self._preview, text, bible), group="context", exclusive=True)

    def last_report(self) -> tuple[int, str, PromptReport] | None:
        """The newest generation that recorded its prompt: (its id, its template, what it sent)."""
        from assistant.bible import PromptReport

        for event in reversed(self.session.events):
            if event.prompt:
                return event.id, event.template, PromptReport.from_dict(event.prompt)
        return None

    async def _preview(self, text: str, bible: Bible) -> None:
        if not text.strip():
            self.context_view.show(
                None,
                preview=True,
                title="Write a line or two first: a continuation starts from the text before the cursor.",
            )
            return
        try:
            report = await asyncio.to_thread(self.preview_report, text, bible)
        except Exception as error:
            message = getattr(error, "message", None) or str(error)
            self.context_view.show(
                None, preview=True, title=f"The next continuation could not be put together: {message}"
            )
            return
        self.context_view.show(report, preview=True, title="(nothing sent)")

    def preview_report(self, text: str, bible: Bible) -> PromptReport:
        """What a continuation of ``text`` with ``bible`` would send (nothing is sent; safe off the UI thread)."""
        template = self.assistant.template("continue")
        values, overrides = self.continuation.request_values(template, text)
        prepared: Prepared = self.assistant.prepare(template, values, {**self.session_params, **overrides}, bible=bible)
        return prepared.prompt_report(self.assistant.backend)
