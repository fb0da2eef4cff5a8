"""Every draft a session kept: each alternative of each generation, taken or not, and how two compare.

A session records every generation with all its alternatives, its settings and the
backend and model that wrote it (:class:`~assistant.sessions.events.GenerationEvent`);
this module reads them as one numbered list of drafts and compares any two, also
drafts of different models.

Drafts are numbered 1, 2, 3... in the order they were written (a generation's
alternatives in their own order); ``E.A`` names alternative ``A`` of generation ``E``
(both counted from 1), as ``quillmate sessions show`` numbers generations.

The suggestions made at one point of the draft (``Session.events_at``) are that point's
history: :func:`history` lists their drafts newest first, as the writing app shows them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from assistant.sessions.events import GenerationEvent
from backends.errors import UsageError
from backends.settings import SETTING

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
        position: For a suggestion at the cursor, its offset in the draft when it was offered.
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
    position: int | None = None

    @property
    def ref(self) -> str:
        """``E.A``: the generation and alternative, both from 1."""
        return f"{self.event_id}.{self.alternative + 1}"

    @property
    def who(self) -> str:
        """The model that wrote it and through which backend: ``gpt2 via local``."""
        who = self.model or self.backend or "a model"
        via = f" via {self.backend}" if self.backend and self.model and self.backend != self.model else ""
        return who + via

    @property
    def label(self) -> str:
        """Who wrote it, for headings: ``draft 3 (#2.1, gpt2 via local)``."""
        return f"draft {self.number} (#{self.ref}, {self.who})"

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
            "position": self.position,
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
                    event.position,
                )
            )
    return out


def history(events: Sequence[GenerationEvent]) -> list[Draft]:
    """The drafts of the suggestions made at one point, newest first; empty ones (failed early) left out.

    Their numbers count within that point, oldest first; ``ref`` names each in the session.
    """
    return [draft for draft in reversed(drafts_of(events)) if draft.text]


ALWAYS_SHOWN = ("temperature", "top_p", "max_new_tokens")
"""The settings a draft's line always names; the others only when changed from their defaults."""
NEVER_SHOWN = ("num_alternatives", "logprobs", "stop")
"""Settings a draft's line leaves out: they do not change its words, or are the template's plumbing."""


def settings_line(params: Mapping[str, Any]) -> str:
    """The settings a draft was written with, briefly: ``Temperature 0.8 · Top-p 0.95 · Max tokens 60``."""
    parts = []
    for name, spec in SETTING.items():
        if name not in params or name in NEVER_SHOWN:
            continue
        value = params[name]
        default = list(spec.default) if isinstance(spec.default, tuple) else spec.default
        if name not in ALWAYS_SHOWN and (value is None or value == default or value == spec.off):
            continue
        parts.append(f"{spec.label} {_shown(value)}")
    return " · ".join(parts)


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ", ".join("=".join(map(_shown, v)) if isinstance(v, list) else repr(v) for v in value)
    return str(value)


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


__all__ = ["Draft", "compare", "drafts_of", "find_draft", "history", "preview", "sentences", "settings_line"]
