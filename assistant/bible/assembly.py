"""Putting the bible and the draft together within the model's context window.

The prompt, top to bottom: the template's own words, the memory, the included
entries (in ``order``, then name), the draft's tail with the author's note set
``authors_note_depth`` paragraphs (or lines) above its end.

The budget. Of the tokens the model has for the prompt (its context less the
tokens it will write and the template's own words), memory, author's note and
entries may take ``budget_fraction`` of the context, and never so much that the
draft's tail gets fewer than ``min_tail_tokens``. Memory and author's note are
always sent. Entries fill what is left from the highest priority down; an entry
that does not fit is left out, and so is every entry of lower priority (so a
writer can rely on priority alone). The draft's tail takes everything left over.

Every decision is recorded as labelled :class:`PromptPart` and :class:`DroppedPart`
objects, so the writer can see exactly what the model was given and what it was not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from assistant.bible.model import Bible
from assistant.bible.triggers import TokenCounter, Trigger, approx_tokens, find_triggers, text_tail
from backends.errors import ContextOverflow

PartKind = Literal["instructions", "memory", "entry", "authors_note", "draft", "after"]
SEPARATOR = "\n\n"
# Tokenisers join text at the seams a little differently: keep a few tokens spare, so the
# backend never has to cut what the assembly chose (and the record stays exact).
SEAM_MARGIN = 8


def authors_note_text(note: str) -> str:
    """How the author's note reads in the prompt (as KoboldAI and NovelAI set it)."""
    return f"[Author's note: {note.strip()}]"


@dataclass(frozen=True)
class PromptPart:
    """One labelled piece of a prompt.

    Attributes:
        kind: ``instructions``, ``memory``, ``entry``, ``authors_note``, ``draft`` or ``after``
            (the text after the cursor, for a model that fills in the middle).
        label: What to call it: ``Memory``, ``Entry: Mara``, ``Draft``...
        text: Its exact text.
        tokens: Its size in the model's tokens.
        entry: The entry's name (entries only).
        key: The key that brought the entry in (None for always-on entries).
        reason: Why it is there, in words (``key 'Mara'``, ``always on``).
    """

    kind: PartKind
    label: str
    text: str
    tokens: int
    entry: str | None = None
    key: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class DroppedPart:
    """Something that would have gone into the prompt but did not.

    Attributes:
        kind: ``entry`` (left out for the budget), ``draft`` (older text outside the window) or
            ``after`` (the text after the cursor, which the model cannot see).
        label: What it was.
        tokens: About how many tokens it would have taken.
        reason: Why it was left out, in words.
        entry: The entry's name (entries only).
    """

    kind: PartKind
    label: str
    tokens: int
    reason: str
    entry: str | None = None


@dataclass(frozen=True)
class Assembly:
    """The bible and the draft, fitted together.

    Attributes:
        context: The text of memory and entries, as one block (a template's ``notes``).
        draft: The draft's tail with the author's note in it (a template's input text).
        parts: The labelled parts, in prompt order (without the template's own words).
        dropped: What was left out and why.
        triggers: Every entry the text brought in (kept or not).
        bible_budget: Tokens memory, author's note and entries could take.
        tail_budget: Tokens the draft's tail could take.
    """

    context: str
    draft: str
    parts: tuple[PromptPart, ...]
    dropped: tuple[DroppedPart, ...] = ()
    triggers: tuple[Trigger, ...] = ()
    bible_budget: int = 0
    tail_budget: int = 0
    warnings: tuple[str, ...] = field(default=())


def assemble(
    bible: Bible,
    before_cursor: str,
    *,
    context_window: int,
    reserved: int = 0,
    count: TokenCounter = approx_tokens,
) -> Assembly:
    """Choose what of the bible and the draft goes into a continuation prompt.

    Args:
        bible: The story bible.
        before_cursor: The writer's text before the point of continuation.
        context_window: Tokens the model sees at once.
        reserved: Tokens already spoken for: the text to be written and the template's own words.
        count: The model's token counter.

    Returns:
        The assembly: the block of memory and entries, the draft with the author's note, the record.

    Raises:
        ContextOverflow: the memory and author's note alone do not fit the model.
    """
    settings = bible.settings
    available = max(context_window - reserved - SEAM_MARGIN, 0)
    cap = min(int(context_window * settings.budget_fraction), max(available - settings.min_tail_tokens, 0))
    memory = bible.memory.strip()
    note = authors_note_text(bible.authors_note) if bible.authors_note.strip() else ""
    memory_tokens = count(memory) if memory else 0
    note_tokens = count(note + SEPARATOR) if note else 0
    fixed = memory_tokens + note_tokens
    warnings: list[str] = []
    if fixed >= available:
        raise ContextOverflow(
            f"The memory and author's note take about {fixed:,} tokens, and the model has room for "
            f"{available:,} for the whole prompt.",
            "Shorten the memory or the author's note, lower max tokens, or use a model with a longer context.",
        )
    if fixed > cap:
        warnings.append(
            f"The memory and author's note take about {fixed:,} tokens, more than the bible's share "
            f"of {cap:,}; no entries fit and the draft's tail is shorter than it should be."
        )
    triggers = find_triggers(bible, before_cursor, count)
    kept, dropped = _fit_entries(triggers, max(cap - fixed, 0), count)
    entry_parts = [
        PromptPart("entry", f"Entry: {t.entry.name}", t.entry.content.strip(), n, t.entry.name, t.key, t.reason)
        for t, n in kept
    ]
    blocks = ([memory] if memory else []) + [p.text for p in entry_parts if p.text]
    context = SEPARATOR.join(blocks)
    used = (count(context + SEPARATOR) if context else 0) + note_tokens
    tail_budget = max(available - used, 0)
    tail = text_tail(before_cursor, tail_budget, count)
    older = before_cursor[: len(before_cursor) - len(tail)]
    if older.strip():
        dropped.append(
            DroppedPart(
                "draft",
                "Older draft",
                approx_tokens(older),
                f"window: {len(older.split()):,} words before these did not fit the context",
            )
        )
    before_note, after_note = (
        split_for_note(tail, settings.authors_note_depth, settings.authors_note_unit) if note else (tail, "")
    )
    glue = "\n\n" if settings.authors_note_unit == "paragraphs" else "\n"
    draft = f"{before_note}{note}{glue}{after_note}" if note else tail
    parts: list[PromptPart] = []
    if memory:
        parts.append(PromptPart("memory", "Memory", memory, memory_tokens))
    parts.extend(entry_parts)
    if note:
        if before_note:
            parts.append(PromptPart("draft", "Draft", before_note, count(before_note)))
        parts.append(PromptPart("authors_note", "Author's note", note + glue, count(note + glue)))
        if after_note:
            parts.append(PromptPart("draft", "Draft (after the author's note)", after_note, count(after_note)))
    elif tail:
        parts.append(PromptPart("draft", "Draft", tail, count(tail)))
    return Assembly(context, draft, tuple(parts), tuple(dropped), tuple(triggers), cap, tail_budget, tuple(warnings))


def _fit_entries(
    triggers: Sequence[Trigger], room: int, count: TokenCounter
) -> tuple[list[tuple[Trigger, int]], list[DroppedPart]]:
    """The triggered entries that fit ``room`` (highest priority first) in prompt order, and those left out."""
    sizes = {t.entry.name: count(t.entry.content.strip() + SEPARATOR) for t in triggers}
    ranked = sorted(triggers, key=lambda t: (-t.entry.priority, t.depth, t.entry.order, t.entry.name.casefold()))
    chosen: set[str] = set()
    dropped: list[DroppedPart] = []
    cutoff: int | None = None  # once an entry of this priority is left out, every lower one is too
    for trigger in ranked:
        entry, size = trigger.entry, sizes[trigger.entry.name]
        if cutoff is not None and entry.priority < cutoff:
            reason = f"budget: a higher-priority entry already did not fit (priority {entry.priority})"
        elif size <= room:
            room -= size
            chosen.add(entry.name)
            continue
        else:
            cutoff = entry.priority
            reason = f"budget: {size:,} tokens, only {room:,} left of the bible's share (priority {entry.priority})"
        dropped.append(
            DroppedPart("entry", f"Entry: {entry.name}", size, f"{reason}; brought in by {trigger.reason}", entry.name)
        )
    kept = [(t, sizes[t.entry.name]) for t in triggers if t.entry.name in chosen]
    return kept, dropped


def split_for_note(text: str, depth: int, unit: str) -> tuple[str, str]:
    """``text`` cut where the author's note goes: ``depth`` paragraphs (or lines) above its end."""
    mark = "\n\n" if unit == "paragraphs" else "\n"
    body = text.rstrip()
    pos = len(body)
    for _ in range(depth):
        found = body.rfind(mark, 0, pos)
        if found < 0:
            return "", text
        pos = found
        while pos > 0 and body[pos - 1] == "\n":  # a run of blank lines counts as one break
            pos -= 1
    start = pos
    while start < len(text) and text[start] == "\n":
        start += 1
    return text[:start], text[start:]


@dataclass(frozen=True)
class PromptReport:
    """What one generation sent: labelled parts with token counts, and what was left out.

    Stored with the session's generation event, shown by ``quillmate run --dry-run``
    and ``quillmate sessions show ID --prompt N``.

    Attributes:
        form: ``completion`` or ``chat``.
        parts: The parts in prompt order; ``instructions`` is the template's own words.
        dropped: What was left out, and why.
        context_window: The model's context, in tokens.
        max_new_tokens: Tokens kept free for the answer.
        bible_budget: Tokens memory, author's note and entries could take (0 without a bible).
        warnings: Anything the writer should know about the fit.
    """

    form: str
    parts: tuple[PromptPart, ...]
    dropped: tuple[DroppedPart, ...] = ()
    context_window: int = 0
    max_new_tokens: int = 0
    bible_budget: int = 0
    warnings: tuple[str, ...] = ()

    @property
    def total_tokens(self) -> int:
        """Tokens in the whole prompt."""
        return sum(p.tokens for p in self.parts)

    def part(self, kind: str) -> PromptPart | None:
        """The first part of ``kind``, or None."""
        return next((p for p in self.parts if p.kind == kind), None)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON (the event stores it)."""
        data = asdict(self)
        data["total_tokens"] = self.total_tokens
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PromptReport:
        """Rebuild a report stored with :meth:`to_dict` (unknown fields are ignored)."""
        part_names = PromptPart.__dataclass_fields__.keys()
        dropped_names = DroppedPart.__dataclass_fields__.keys()
        return cls(
            form=str(data.get("form", "")),
            parts=tuple(PromptPart(**{k: v for k, v in p.items() if k in part_names}) for p in data.get("parts", ())),
            dropped=tuple(
                DroppedPart(**{k: v for k, v in d.items() if k in dropped_names}) for d in data.get("dropped", ())
            ),
            context_window=int(data.get("context_window", 0)),
            max_new_tokens=int(data.get("max_new_tokens", 0)),
            bible_budget=int(data.get("bible_budget", 0)),
            warnings=tuple(data.get("warnings", ())),
        )

    def render(self, *, show_text: bool = True) -> str:
        """The report as text for a terminal: one heading per part with its tokens, then its text."""
        lines = [
            f"Prompt: {self.total_tokens:,} tokens of a {self.context_window:,}-token context "
            f"({self.max_new_tokens:,} kept for the answer)"
        ]
        for part in self.parts:
            why = f", {part.reason}" if part.reason else ""
            lines.append(f"── {part.label} ({part.tokens:,} tokens{why}) ──")
            if show_text:
                lines.append(part.text.rstrip("\n"))
        for gone in self.dropped:
            lines.append(f"── left out: {gone.label} (about {gone.tokens:,} tokens): {gone.reason}")
        lines.extend(f"note: {w}" for w in self.warnings)
        return "\n".join(lines)


__all__ = [
    "Assembly",
    "DroppedPart",
    "PartKind",
    "PromptPart",
    "PromptReport",
    "assemble",
    "authors_note_text",
    "split_for_note",
]
