"""Every draft a session kept: each alternative of each generation, taken or not, and how two compare.

A session records every generation with all its alternatives, its settings and the
backend and model that wrote it (:class:`~assistant.sessions.events.GenerationEvent`);
this module reads them as one numbered list of drafts and compares any two, also
drafts of different models.

Drafts are numbered 1, 2, 3... in the order they were written (a generation's
alternatives in their own order); ``E.A`` names alternative ``A`` of generation ``E``
(both counted from 1), as ``quillmate sessions show`` numbers generations.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from assistant.sessions.events import GenerationEvent
from backends.errors import UsageError

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|(?<=\n)")


@dataclass(frozen=True)
class Draft:
    """One alternative of one generation.

    Attributes:
        number: Its place in the session's list of drafts (from 1).
        event_id: The generation that wrote it.
        alternative: Which of that generation's alternatives (from 0).
        text: The text.
        backend: The backend profile.
        model: The model.
        template: The template it was written with.
        status: The generation's status (``done``, ``accepted``, ``rejected``...).
        accepted: True when the writer took this alternative.
        created: When the generation was asked for (epoch seconds).
        params: The generation settings.
    """

    number: int
    event_id: int
    alternative: int
    text: str
    backend: str
    model: str
    template: str
    status: str
    accepted: bool
    created: float
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        """``E.A``: the generation and alternative, both from 1."""
        return f"{self.event_id}.{self.alternative + 1}"

    @property
    def label(self) -> str:
        """Who wrote it, for headings: ``draft 3 (#2.1, gpt2 via local)``."""
        who = self.model or self.backend or "a model"
        via = f" via {self.backend}" if self.backend and self.model and self.backend != self.model else ""
        return f"draft {self.number} (#{self.ref}, {who}{via})"

    def to_dict(self) -> dict[str, Any]:
        """As JSON."""
        return {
            "number": self.number,
            "ref": self.ref,
            "event_id": self.event_id,
            "alternative": self.alternative,
            "text": self.text,
            "backend": self.backend,
            "model": self.model,
            "template": self.template,
            "status": self.status,
            "accepted": self.accepted,
            "created": self.created,
            "params": self.params,
        }


def drafts_of(events: Sequence[GenerationEvent]) -> list[Draft]:
    """Every alternative of every generation, numbered in the order written."""
    out: list[Draft] = []
    for event in sorted(events, key=lambda e: e.id):
        for index, text in enumerate(event.alternatives):
            accepted = event.status == "accepted" and (event.accepted_alternative or 0) == index
            out.append(
                Draft(
                    len(out) + 1,
                    event.id,
                    index,
                    text,
                    event.backend,
                    event.model,
                    event.template,
                    event.status,
                    accepted,
                    event.created,
                    dict(event.params),
                )
            )
    return out


def find_draft(drafts: Sequence[Draft], ref: str) -> Draft:
    """The draft named ``ref``: its number (``3``) or generation and alternative (``2.1``).

    Raises:
        UsageError: no such draft, or a name that is neither.
    """
    wanted = ref.strip()
    hint = "`quillmate sessions drafts ID` lists them."
    if re.fullmatch(r"\d+", wanted):
        number = int(wanted)
        if 1 <= number <= len(drafts):
            return drafts[number - 1]
        raise UsageError(f"There is no draft {number}; this session has {len(drafts)}.", hint)
    if re.fullmatch(r"\d+\.\d+", wanted):
        for draft in drafts:
            if draft.ref == wanted:
                return draft
        raise UsageError(f"There is no draft #{wanted} (generation {wanted.split('.')[0]}, that alternative).", hint)
    raise UsageError(f"'{ref}' does not name a draft: use its number (3) or generation.alternative (2.1).", hint)


def sentences(text: str) -> list[str]:
    """``text`` cut after each sentence and line break, so a diff of prose shows which sentences changed.

    The spaces between sentences are left out: drafts are compared by their words, not their spacing.
    """
    pieces = [piece for piece in _SENTENCE_END.split(text) if piece]
    return [piece if piece.endswith("\n") else piece + "\n" for piece in pieces]


def compare(first: Draft, second: Draft, *, context: int = 2) -> str:
    """A unified diff from ``first`` to ``second``, sentence by sentence; "" when they are the same."""
    lines = difflib.unified_diff(
        sentences(first.text), sentences(second.text), fromfile=first.label, tofile=second.label, n=context
    )
    return "".join(lines)


def preview(text: str, width: int = 60) -> str:
    """The start of a draft on one line."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


__all__ = ["Draft", "compare", "drafts_of", "find_draft", "preview", "sentences"]
