"""The words the model almost wrote: show them at the word under the cursor, and write on from a chosen one.

The word can be in the suggestion on show, or in model text the writer accepted in this run
of the app. Word alternatives come with each continuation (``ContinuationFlow.finished``);
the session's events keep a generation's texts but not its alternatives, so text accepted
in an earlier run of the app has none to show.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial

from assistant import QuillmateError, TokenAlternatives, UsageError
from assistant.alternatives import WordChoices, choices_at
from tui.flows.base import Flow, Services
from tui.flows.continuation import ContinuationFlow
from tui.flows.generation import GenerationFlow
from tui.screens.alternatives import AlternativesScreen

NOT_HERE = "Put the cursor on a word of a suggestion, or of text you accepted from one since the app started."
SPAN_WINDOW = 20_000
"""How far around the cursor to look for the rest of an accepted piece of model text (characters)."""


@dataclass(frozen=True)
class Located:
    """A word the model wrote, found at the cursor.

    Attributes:
        generation_id: The session's generation event it came from.
        written: The whole text of that alternative, as it was shown.
        tokens: Its tokens with their alternatives.
        offset: The cursor's offset in ``written``.
        base: Where ``written`` starts (or would start) in the draft.
        model_end: Where the model's text of it ends in the draft (the ghost text starts there).
        consumed: How much of ``written`` the suggestion on show has had accepted; None for accepted text.
    """

    generation_id: int
    written: str
    tokens: tuple[TokenAlternatives, ...]
    offset: int
    base: int
    model_end: int
    consumed: int | None


class AlternativesFlow(Flow):
    """Alt+A: the other words at the cursor, and writing on from the one picked (the app's ``alternatives``)."""

    def __init__(self, services: Services, generation: GenerationFlow, continuation: ContinuationFlow) -> None:
        super().__init__(services)
        self.generation = generation
        self.continuation = continuation

    def show(self) -> None:
        """Open the picker for the word under the cursor (or tell the writer why there is none)."""
        try:
            located = self.locate()
            here = choices_at(located.tokens, located.offset)
        except QuillmateError as error:
            self.tell.report(error)
            return
        if not here.options:
            self.notify("The model saw no other word there.", timeout=4)
            return
        self.services.push_screen(AlternativesScreen(here), partial(self._chosen, located, here))

    def locate(self) -> Located:
        """The model-written word at the cursor.

        Raises:
            UsageError: the cursor is on no model text of this run, the model is still writing
                it, or it has no word alternatives.
        """
        editor = self.views.editor
        ghost = editor.ghost
        shown = editor.offset_of(editor.cursor_location)
        if ghost is not None and ghost.text and ghost.start <= shown <= ghost.end:
            if ghost.streaming:
                raise UsageError("The model is still writing this suggestion.", "Wait for it, or stop it (Esc).")
            written = ghost.alternatives[ghost.index]
            tokens = self._tokens(ghost.generation_id, ghost.source_index())
            base = ghost.start - ghost.consumed
            return Located(
                ghost.generation_id or 0, written, tokens, ghost.consumed + shown - ghost.start, base,
                ghost.start, ghost.consumed,
            )  # fmt: skip
        return self._in_draft(editor.cursor_offset)

    def _in_draft(self, pos: int) -> Located:
        """Accepted model text around draft offset ``pos`` (the character after the cursor, else before it)."""
        document = self.session.document
        lo, hi = max(0, pos - SPAN_WINDOW), min(len(document), pos + SPAN_WINDOW)
        spans = [s for s in document.spans_in(lo, hi) if s.start < s.end]
        at = next((s for s in spans if s.start <= pos < s.end and s.author == "model"), None)
        at = at or next((s for s in spans if s.start < pos == s.end and s.author == "model"), None)
        if at is None or at.generation_id is None:
            raise UsageError("There is no model-written text at the cursor.", NOT_HERE)
        alternative = at.alternative or 0
        same = [s for s in spans if s.attribution == at.attribution]
        start, end = at.start, at.end
        for span in sorted(same, key=lambda s: -s.start):  # runs of one generation's text, however split
            if span.end == start:
                start = span.start
        for span in sorted(same, key=lambda s: s.start):
            if span.start == end:
                end = span.end
        result = self.continuation.finished.get(at.generation_id)
        if result is None or alternative >= len(result.texts):
            raise UsageError(
                "The words the model weighed here are not kept.",
                "They last only while the app runs, for continuations written in it.",
            )
        written = result.texts[alternative]
        run = document.text[start:end]
        shift = written.find(run)
        if shift < 0:
            raise UsageError("This text was changed since the model wrote it.", NOT_HERE)
        tokens = self._tokens(at.generation_id, alternative)
        return Located(at.generation_id, written, tokens, shift + pos - start, start - shift, end, None)

    def _tokens(self, generation_id: int | None, alternative: int) -> tuple[TokenAlternatives, ...]:
        result = self.continuation.finished.get(generation_id) if generation_id is not None else None
        if result is None or alternative >= len(result.logprobs) or not result.logprobs[alternative]:
            raise UsageError(
                "This text has no word alternatives.",
                "Continue again (F5): continuations keep them unless this session sets 'logprobs' to 0.",
            )
        return result.logprobs[alternative]

    def _chosen(self, located: Located, here: WordChoices, choice: str | None) -> None:
        if choice is None:
            return
        self.write_from(located, here, choice)

    def write_from(self, located: Located, here: WordChoices, choice: str) -> None:
        """Keep the text up to the word, put ``choice`` there, and let the model write the rest again as a suggestion.

        Accepted model text after the word goes (Ctrl+Z brings it back); the writer's own text stays.
        """
        if self.session.read_only:
            self.notify("This session is open read-only, so nothing can be added to it.", severity="warning")
            return
        editor = self.views.editor
        cut = located.base + here.start
        token = located.tokens[here.index]
        picked = TokenAlternatives(choice, dict(token.top).get(choice, float("-inf")), token.top)
        if located.consumed is not None and here.start >= located.consumed:
            # The word is in the ghost text: the ghost text before it stays a suggestion.
            start = located.model_end
            kept = located.written[located.consumed : here.start]
            lead = (*_from(located.tokens[: here.index], located.consumed), picked)
            self.continuation.resume(start, kept + choice, lead)
            return
        if self.generation.generating:
            self.generation.stop()
        if editor.ghost is not None:
            self.continuation.clear_ghost("replaced")
        try:
            editor.break_undo_group()
            if cut < located.model_end:
                self.session.document.delete(cut, located.model_end)
        except Exception as error:
            self.tell.report(error)
            return
        editor.resync(cut)
        self.continuation.indicators.draft_changed()
        self.continuation.resume(cut, choice, (picked,))
        self.notify("Writing on from your word. Tab keeps it; Ctrl+Z brings back what was there.", timeout=5)


def _from(tokens: tuple[TokenAlternatives, ...], skip: int) -> tuple[TokenAlternatives, ...]:
    """``tokens`` without their first ``skip`` characters (a token cut in two keeps its end)."""
    out: list[TokenAlternatives] = []
    at = 0
    for token in tokens:
        end = at + len(token.token)
        if end > skip:
            out.append(token if at >= skip else replace(token, token=token.token[skip - at :]))
        at = end
    return tuple(out)


__all__ = ["AlternativesFlow", "Located"]
