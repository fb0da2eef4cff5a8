"""The history at a point of the draft (F9): every suggestion made there, and bringing any of them back.

A suggestion is recorded with where it was offered (``Session.events_at`` finds a point
again by the text before it), so however often the writer tried again at one place, each
draft written there can be read and brought back, like a stack of retries. Bringing one
back shows it as the suggestion (Tab keeps it, as the model's that wrote it) or puts it in
at once. Nothing is thrown away: the drafts stay in the session, and model text a chosen
draft takes the place of comes back with Ctrl+Z.
"""

from __future__ import annotations

from functools import partial

from assistant.sessions.drafts import Draft, history
from assistant.sessions.events import GenerationEvent
from assistant.sessions.points import at_point
from tui.flows.base import Flow, Services
from tui.flows.continuation import ContinuationFlow
from tui.flows.generation import GenerationFlow
from tui.screens.history import HistoryChoice, HistoryScreen
from tui.suggestion import Suggestion

NOTHING_HERE = (
    "No suggestions were made at the cursor yet. F5 asks for one; every one made here is kept, and F9 shows them."
)
SPAN_WINDOW = 20_000
"""How far back from the cursor to look for the start of model text it ends (characters)."""


class HistoryFlow(Flow):
    """F9: the drafts made at the cursor's point, newest first; the one chosen comes back (the app's ``history``)."""

    def __init__(self, services: Services, generation: GenerationFlow, continuation: ContinuationFlow) -> None:
        super().__init__(services)
        self.generation = generation
        self.continuation = continuation

    def point(self) -> tuple[int, int | None, list[GenerationEvent]]:
        """Where the history is taken: ``(point, replace_to, suggestions made there)``.

        The point is the cursor (the suggestion's start while one shows). When nothing was
        offered there but the cursor ends model text taken from a suggestion made where that
        text starts, the point is that start and ``replace_to`` the cursor: a draft chosen
        then takes the place of the text taken before.
        """
        editor = self.views.editor
        ghost = editor.ghost
        pos = ghost.start if ghost is not None else editor.cursor_offset
        made = self.session.events_at(pos)
        if made:
            return pos, None, made
        start = self._taken_run_start(pos)
        if start is None:
            return pos, None, []
        return start, pos, self.session.events_at(start)

    def _taken_run_start(self, pos: int) -> int | None:
        """The start of unedited model text ending at ``pos``, when its suggestion was made right there."""
        document = self.session.document
        spans = [s for s in document.spans_in(max(0, pos - SPAN_WINDOW), pos) if s.start < s.end]
        last = next((s for s in reversed(spans) if s.end == pos), None)
        if last is None or last.author != "model" or last.generation_id is None:
            return None
        start = last.start
        for span in reversed(spans):
            if span.end == start and span.attribution == last.attribution:
                start = span.start
        try:
            event = self.session.event(last.generation_id)
        except KeyError:
            return None
        if event.position is None or not at_point(event.anchor, document.text, start):
            return None
        return start

    def show(self) -> None:
        """Open the list of drafts made at the cursor's point (or say there are none)."""
        if self.generation.generating:
            self.notify("The model is still writing. Wait for it, or stop it (Esc), then look back.", timeout=4)
            return
        pos, replace_to, made = self.point()
        drafts = history(made)
        if not drafts:
            self.notify(NOTHING_HERE, timeout=6)
            return
        ghost = self.views.editor.ghost
        on_show = (ghost.generation_id, ghost.source_index()) if ghost is not None and ghost.generation_id else None
        screen = HistoryScreen(drafts, on_show=on_show, replacing=replace_to is not None)
        self.services.push_screen(screen, partial(self._chosen, pos, replace_to))

    def _chosen(self, pos: int, replace_to: int | None, choice: HistoryChoice | None) -> None:
        if choice is not None:
            self.bring_back(choice.draft, pos, how=choice.how, replace_to=replace_to)

    def bring_back(self, draft: Draft, pos: int, *, how: str = "suggest", replace_to: int | None = None) -> None:
        """Show ``draft`` as the suggestion at ``pos`` (``how="insert"``: put it in the text at once).

        With ``replace_to``, the model text from ``pos`` to there goes first (Ctrl+Z brings it back).
        """
        if self.session.read_only:
            self.notify("This session is open read-only, so nothing can be added to it.", severity="warning")
            return
        editor = self.views.editor
        if editor.ghost is not None:
            self.continuation.clear_ghost("replaced")
        if replace_to is not None and replace_to > pos:
            try:
                editor.break_undo_group()
                self.session.document.delete(pos, replace_to)
            except Exception as error:
                self.tell.report(error)
                return
        editor.resync(pos)
        if how == "insert":
            self.continuation.insert_generated(draft.text, draft.event_id, draft.alternative)
            return
        suggestion = Suggestion(
            start=pos, alternatives=[draft.text], generation_id=draft.event_id, streaming=False, restored=True
        )
        suggestion.template = draft.template or "continue"
        suggestion.sources = [draft.alternative]
        editor.break_undo_group()
        editor.show_suggestion(suggestion)
        editor.focus()
        self.continuation.indicators.update_suggestion_status()
        self.continuation.indicators.draft_changed()
        self.notify(f"Draft #{draft.ref} ({draft.who}) is back. Tab keeps it; Esc puts it away again.", timeout=5)


__all__ = ["HistoryFlow"]
