"""The model's offer at the cursor: ghost text the writer can take whole, in part, or not at all.

A :class:`Suggestion` is pure state, independent of any widget: where it sits in
the draft, the text of each alternative streamed so far, which one is shown, and
how much of it the writer has already accepted. The editor shows
``suggestion.text`` as ghost text at ``suggestion.start``; nothing of it is in
the writer's draft until it is accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

AcceptPart = Literal["all", "word", "line"]

_WORD = re.compile(r"\s*\S+")
_LINE = re.compile(r"\n*[^\n]*\n?")
_LINE_BREAKS = re.compile(r"\r\n|[\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


SUGGESTION_TOKENS = 60
"""How many tokens a continuation asks for unless the writer sets max tokens (Settings): about a paragraph."""

# A sentence ends at . ! ? or … (closing quotes and brackets go with it), before a space or the end.
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’»)\]]*(?=\s|$)")


def end_at_sentence(text: str) -> str:
    """``text`` up to its last sentence end (all of it when it has none, or ends at one already)."""
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    if not ends or not text[ends[-1] :].strip():
        return text
    return text[: ends[-1]]


def normalize_newlines(text: str, newline: str = "\n") -> str:
    """``text`` with every kind of line break written as ``newline``."""
    if not text:
        return text
    return _LINE_BREAKS.sub(newline, text)


@dataclass
class Suggestion:
    """Ghost text offered at ``start``.

    Attributes:
        start: Where the ghost text begins, as an offset into the writer's draft.
        alternatives: Everything streamed so far for each alternative.
        index: The alternative shown.
        consumed: Characters of the shown alternative already accepted into the draft.
        generation_id: The session's generation event this came from.
        streaming: True while the model is still writing it.
        template: The template that produced it (``continue``...).
        sources: The backend's index of each alternative (they renumber once some are dropped).
        narrowed: True once alternatives that disagree with what was accepted were dropped.
        kept: Characters accepted as the model's (typing through the ghost text is the writer's).
        restored: Brought back from the history at its point (F9): dismissing it again leaves its
            generation's record as it was; taking it records it as taken.
    """

    start: int
    alternatives: list[str] = field(default_factory=lambda: [""])
    index: int = 0
    consumed: int = 0
    generation_id: int | None = None
    streaming: bool = True
    template: str = "continue"
    sources: list[int] = field(default_factory=list)
    narrowed: bool = False
    kept: int = 0
    restored: bool = False

    def __post_init__(self) -> None:
        self.sources = list(range(len(self.alternatives)))

    @property
    def count(self) -> int:
        """How many alternatives there are."""
        return len(self.alternatives)

    @property
    def text(self) -> str:
        """The ghost text shown: the part of the shown alternative not yet accepted."""
        return self.alternatives[self.index][self.consumed :]

    @property
    def end(self) -> int:
        """Where the ghost text ends (in the editor, where the draft's text resumes)."""
        return self.start + len(self.text)

    @property
    def accepted(self) -> str:
        """What the writer has accepted of the shown alternative so far."""
        return self.alternatives[self.index][: self.consumed]

    @property
    def label(self) -> str:
        """E.g. ``2/3`` (empty when there is only one alternative)."""
        return f"{self.index + 1}/{self.count}" if self.count > 1 else ""

    def ensure(self, count: int) -> None:
        """Make room for ``count`` alternatives."""
        while not self.narrowed and len(self.sources) < count:
            self.sources.append(len(self.sources))
            self.alternatives.append("")

    def piece(self, part: AcceptPart) -> str:
        """The next piece of ghost text the writer would take with ``part``.

        ``word`` is the whitespace before the next word and the word (with its
        punctuation); ``line`` runs to the end of the line, newline included.
        """
        text = self.text
        if part == "all" or not text:
            return text
        pattern = _WORD if part == "word" else _LINE
        match = pattern.match(text)
        return match.group(0) if match and match.group(0) else text

    def take(self, count: int) -> str:
        """Mark the next ``count`` characters accepted; return them.

        Alternatives that no longer agree with what was accepted are dropped.
        """
        piece = self._advance(count)
        self.kept += len(piece)
        return piece

    def _advance(self, count: int) -> str:
        piece = self.text[:count]
        self.consumed += len(piece)
        self.start += len(piece)
        self._drop_disagreeing()
        return piece

    def skip(self, count: int) -> None:
        """The writer typed the next ``count`` characters themselves: they leave the ghost text."""
        self._advance(count)

    def cycle(self, step: int = 1) -> bool:
        """Show the next (or previous) alternative; False when there is no other one."""
        if self.count < 2:
            return False
        self.index = (self.index + step) % self.count
        return True

    def _drop_disagreeing(self) -> None:
        if self.count < 2 or not self.consumed:
            return
        prefix = self.accepted
        kept = [i for i, alt in enumerate(self.alternatives) if alt.startswith(prefix) or prefix.startswith(alt)]
        if len(kept) == self.count:
            return
        shown = self.alternatives[self.index]
        self.alternatives = [self.alternatives[i] for i in kept]
        self.sources = [self.sources[i] for i in kept]
        self.narrowed = True
        self.index = self.alternatives.index(shown)

    def source_index(self, index: int | None = None) -> int:
        """The backend's index of an alternative (they renumber once some are dropped)."""
        return self.sources[self.index if index is None else index]

    def local_index(self, source: int) -> int | None:
        """Our index of the backend's alternative ``source`` (None once it was dropped)."""
        return self.sources.index(source) if source in self.sources else None
