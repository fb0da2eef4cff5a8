"""The text of a co-writing session and who wrote each character of it.

A :class:`Document` holds the text and a list of provenance spans that tile it
exactly (no gap, no overlap, no empty span). Each span has an author:

* ``writer``: typed (or pasted) by the writer;
* ``model``: generated, accepted unchanged; ``generation_id`` names the
  generation event (backend, model, template, parameters, time) and
  ``alternative`` which of its alternatives;
* ``edited``: model text the writer has since changed.

The rules, applied by every operation:

1. Inserted text carries the attribution it is inserted with: ``insert`` and
   ``set_text`` default to ``writer``; ``accept`` and ``apply_rewrite`` insert
   ``model`` text.
2. Inserting inside a model span splits it; the two halves stay ``model`` (the
   model's words are all still there) and the new characters are the writer's.
3. A model span that loses any character (a deletion, or the deleted part of a
   replace or rewrite) becomes ``edited`` as a whole: the characters that remain
   are still the model's words, but no longer as the model wrote them.
4. Adjacent spans with the same attribution (author, generation, alternative)
   are merged, so the list is canonical.

Every change is one undo step, except that consecutive typing is grouped by
word (a new group starts when a word starts after whitespace) and consecutive
deleting is grouped; ``accept`` and ``apply_rewrite`` are always a step of
their own. ``break_undo_group()`` starts a new group (e.g. when the cursor moves).

Typing at the end of, or inside, writer text takes a fast path that touches only
one span. Every operation is thread-safe (one lock per document), so the
autosaver can take a consistent snapshot from its own thread.

Positions are indexes into the Python string (code points), as Textual's
TextArea reports them after converting its (row, column) locations.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import accumulate
from typing import Literal

from assistant.sessions.errors import SessionReadOnly

Author = Literal["writer", "model", "edited"]
AUTHORS: tuple[str, ...] = ("writer", "model", "edited")
UNDO_LIMIT = 2000


@dataclass(frozen=True, slots=True)
class Attribution:
    """Who wrote a stretch of text; model and edited text name their generation."""

    author: str
    generation_id: int | None = None
    alternative: int | None = None

    def edited(self) -> Attribution:
        """The attribution of this text once the writer has changed it."""
        if self.author == "model":
            return Attribution("edited", self.generation_id, self.alternative)
        return self


WRITER = Attribution("writer")


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch ``[start, end)`` of the text and who wrote it."""

    start: int
    end: int
    author: str
    generation_id: int | None = None
    alternative: int | None = None

    @property
    def length(self) -> int:
        return self.end - self.start

    @property
    def attribution(self) -> Attribution:
        return Attribution(self.author, self.generation_id, self.alternative)


SpanList = list[tuple[int, Attribution]]


@dataclass(slots=True)
class _Change:
    """One primitive change, enough to undo and redo it exactly."""

    pos: int
    old_text: str
    new_text: str
    win: int  # index of the first span of the window
    old_spans: SpanList
    new_spans: SpanList
    dirty_start: int  # characters whose text or attribution changed
    dirty_old: int
    dirty_new: int


def merge_spans(spans: Iterable[tuple[int, Attribution]]) -> SpanList:
    """Drop empty spans and merge neighbours with the same attribution."""
    out: SpanList = []
    for length, attr in spans:
        if length <= 0:
            continue
        if out and (out[-1][1] is attr or out[-1][1] == attr):
            out[-1] = (out[-1][0] + length, attr)
        else:
            out.append((length, attr))
    return out


def common_prefix(a: str, b: str) -> int:
    """Length of the common prefix of two strings (fast for long, mostly equal texts)."""
    n = min(len(a), len(b))
    lo, step = 0, 256
    while lo < n:
        hi = min(n, lo + step)
        if a[lo:hi] == b[lo:hi]:
            lo, step = hi, step * 2
            continue
        while hi - lo > 1:  # a[:lo] == b[:lo] and they differ before hi
            mid = (lo + hi) // 2
            if a[lo:mid] == b[lo:mid]:
                lo = mid
            else:
                hi = mid
        return lo
    return n


def common_suffix(a: str, b: str, limit: int) -> int:
    """Length of the common suffix of two strings, at most ``limit``."""
    la, lb = len(a), len(b)
    lo, step = 0, 256
    while lo < limit:
        hi = min(limit, lo + step)
        if a[la - hi : la - lo] == b[lb - hi : lb - lo]:
            lo, step = hi, step * 2
            continue
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if a[la - mid : la - lo] == b[lb - mid : lb - lo]:
                lo = mid
            else:
                hi = mid
        return lo
    return limit


class Document:
    """Text plus provenance spans, with undo/redo. See the module docstring for the rules.

    Attributes:
        lock: The document's re-entrant lock. Every operation holds it; hold it yourself to read
            ``text`` and ``spans()`` together while another thread may change them (the autosaver does).
        on_change: Called after every change with ``urgent`` (True for accepted model text, which
            should be saved at once); the session that owns the document sets it.
        read_only: When True, every change raises :class:`SessionReadOnly`.
        version: Goes up by one with every change.
    """

    def __init__(
        self, text: str = "", spans: Iterable[tuple[int, Attribution]] | None = None, *, read_only: bool = False
    ) -> None:
        if spans is None:
            spans = [(len(text), WRITER)]
        merged = merge_spans(spans)
        if sum(length for length, _ in merged) != len(text):
            raise ValueError("spans do not cover the text exactly")
        self._text = text
        self._lens = [length for length, _ in merged]
        self._attrs = [attr for _, attr in merged]
        self._starts = list(accumulate(self._lens, initial=0))
        self._valid = len(self._starts)  # _starts[:_valid] are correct; later entries may be stale
        self._undo: list[list[_Change]] = []
        self._redo: list[list[_Change]] = []
        self._group: str | None = None  # "type" or "delete" while a group may grow
        self._group_pos = 0
        self._group_last = ""
        self.lock = threading.RLock()
        self.read_only = read_only
        self.version = 0
        self._dirty_lo: int | None = None
        self._dirty_tail = 0
        self.on_change: Callable[[bool], None] | None = None

    # ----------------------------------------------------------------- reading
    @property
    def text(self) -> str:
        """The whole text."""
        return self._text

    def __len__(self) -> int:
        return len(self._text)

    def spans(self) -> list[Span]:
        """All spans, in order; they tile the text exactly."""
        with self.lock:
            self._ensure_starts()
            return [
                Span(s, s + n, a.author, a.generation_id, a.alternative)
                for s, n, a in zip(self._starts, self._lens, self._attrs, strict=False)
            ]

    def spans_in(self, start: int, end: int) -> list[Span]:
        """The spans overlapping ``[start, end)``, clipped to it (for highlighting a viewport)."""
        with self.lock:
            out = []
            for length, attr in self.spans_between(start, end):
                out.append(Span(start, start + length, attr.author, attr.generation_id, attr.alternative))
                start += length
            return out

    def attribution_at(self, pos: int) -> Attribution | None:
        """Who wrote the character at ``pos`` (None past the end)."""
        with self.lock:
            if not 0 <= pos < len(self._text):
                return None
            return self._attrs[self._span_index(pos)]

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    # ------------------------------------------------------------- operations
    def insert(
        self,
        pos: int,
        text: str,
        author: str = "writer",
        generation_id: int | None = None,
        alternative: int | None = None,
    ) -> None:
        """Insert ``text`` at ``pos``; typed text is the writer's."""
        attr = _attribution(author, generation_id, alternative)
        with self.lock:
            self._check_writable()
            self._check_range(pos, pos)
            if not text:
                return
            if attr == WRITER and self._fast_insert(pos, text):
                return
            self._push(self._splice(pos, pos, text, attr), "type" if attr == WRITER else None, pos, text)

    def delete(self, start: int, end: int) -> None:
        """Delete ``[start, end)``; a model span losing characters becomes edited."""
        with self.lock:
            self._check_writable()
            self._check_range(start, end)
            if start == end or self._fast_delete(start, end):
                return
            self._push(self._splice(start, end, "", WRITER), "delete", start, "")

    def replace(
        self,
        start: int,
        end: int,
        text: str,
        author: str = "writer",
        generation_id: int | None = None,
        alternative: int | None = None,
        *,
        urgent: bool = False,
    ) -> None:
        """Replace ``[start, end)`` by ``text`` as one undo step."""
        attr = _attribution(author, generation_id, alternative)
        with self.lock:
            self._check_writable()
            self._check_range(start, end)
            if start == end and not text:
                return
            if text == self._text[start:end] and all(a == attr for _, a in self.spans_between(start, end)):
                return  # nothing would change: no save, no undo step
            self._push(self._splice(start, end, text, attr), None, start, text, urgent=urgent)

    def accept(self, pos: int, text: str, generation_id: int, alternative: int = 0) -> None:
        """Insert accepted model text at ``pos`` (the cursor) as one undo step."""
        self.replace(pos, pos, text, "model", generation_id, alternative, urgent=True)

    def apply_rewrite(self, start: int, end: int, text: str, generation_id: int, alternative: int = 0) -> None:
        """Replace ``[start, end)`` by a model's rewrite of it, as one undo step."""
        self.replace(start, end, text, "model", generation_id, alternative, urgent=True)

    def set_text(self, new_text: str, author: str = "writer") -> tuple[int, int, int] | None:
        """Make the text ``new_text`` by the smallest edit (common prefix and suffix kept).

        Returns ``(start, old_end, new_end)`` of the edit, or None when nothing changed.
        """
        with self.lock:
            old = self._text
            if old == new_text:
                return None
            self._check_writable()
            p = common_prefix(old, new_text)
            s = common_suffix(old, new_text, min(len(old), len(new_text)) - p)
            old_end, new_end = len(old) - s, len(new_text) - s
            inserted = new_text[p:new_end]
            if p == old_end:
                self.insert(p, inserted, author)
            elif not inserted:
                self.delete(p, old_end)
            else:
                self.replace(p, old_end, inserted, author)
            return p, old_end, new_end

    def undo(self) -> int | None:
        """Undo the last step; returns a cursor position for it, or None if there was nothing to undo."""
        with self.lock:
            self._check_writable()
            if not self._undo:
                return None
            group = self._undo.pop()
            for change in reversed(group):
                self._apply(change, reverse=True)
            self._redo.append(group)
            self._group = None
            self._changed(urgent=False)
            return group[0].pos + len(group[0].old_text)

    def redo(self) -> int | None:
        """Redo the last undone step; returns a cursor position, or None if there was nothing to redo."""
        with self.lock:
            self._check_writable()
            if not self._redo:
                return None
            group = self._redo.pop()
            for change in group:
                self._apply(change, reverse=False)
            self._undo.append(group)
            self._group = None
            self._changed(urgent=False)
            return group[-1].pos + len(group[-1].new_text)

    def break_undo_group(self) -> None:
        """Make the next typed change a new undo step."""
        self._group = None

    # -------------------------------------------------------------- internals
    def _check_writable(self) -> None:
        if self.read_only:
            raise SessionReadOnly(
                "This session is open read-only; changes cannot be made or saved.",
                "Close the other quillmate that has it open, then open it again.",
            )

    def _check_range(self, start: int, end: int) -> None:
        if not 0 <= start <= end <= len(self._text):
            raise IndexError(f"range {start}..{end} is outside the text (length {len(self._text)})")

    def _ensure_starts(self) -> None:
        """Bring every span start up to date (they are recomputed lazily after edits)."""
        v = self._valid
        if v < len(self._starts):
            self._starts[v - 1 :] = accumulate(self._lens[v - 1 :], initial=self._starts[v - 1])
            self._valid = len(self._starts)

    def _span_index(self, pos: int) -> int:
        """Index of the span holding the character at ``pos`` (``0 <= pos < len``)."""
        j = bisect_right(self._starts, pos, 0, self._valid) - 1
        if j >= len(self._lens) or pos >= self._starts[j] + self._lens[j]:
            self._ensure_starts()
            j = bisect_right(self._starts, pos) - 1
        return j

    def _fast_insert(self, pos: int, text: str) -> bool:
        """Typing inside or at the end of writer text: grow one span."""
        if pos == 0:
            return False
        j = self._span_index(pos - 1)
        if self._attrs[j] != WRITER:
            return False
        k = len(text)
        length = self._lens[j]
        change = _Change(pos, "", text, j, [(length, WRITER)], [(length + k, WRITER)], pos, 0, k)
        if pos == len(self._text):
            self._text += text
        else:
            self._text = self._text[:pos] + text + self._text[pos:]
        self._lens[j] = length + k
        self._valid = min(self._valid, j + 1)
        self.mark_dirty(pos, 0, k)
        self._push(change, "type", pos, text)
        return True

    def _fast_delete(self, start: int, end: int) -> bool:
        """Deleting inside writer text (the span keeps at least one character): shrink one span."""
        j = self._span_index(start)
        length, k = self._lens[j], end - start
        if self._attrs[j] != WRITER or end > self._starts[j] + length or k >= length:
            return False
        change = _Change(start, self._text[start:end], "", j, [(length, WRITER)], [(length - k, WRITER)], start, k, 0)
        self._text = self._text[:start] + self._text[end:]
        self._lens[j] = length - k
        self._valid = min(self._valid, j + 1)
        self.mark_dirty(start, k, 0)
        self._push(change, "delete", start, "")
        return True

    def _splice(self, start: int, end: int, text: str, attr: Attribution) -> _Change:
        """Replace ``[start, end)`` by ``text`` with ``attr``; returns the applied change."""
        n = len(self._attrs)
        self._ensure_starts()
        starts = self._starts
        if n == 0:
            a, old = 0, []
        else:
            i0 = min(bisect_right(starts, start) - 1, n - 1)
            i1 = min(bisect_right(starts, end - 1) - 1, n - 1) if end > start else i0
            a, b = max(0, i0 - 1), min(n, i1 + 2)
            old = list(zip(self._lens[a:b], self._attrs[a:b], strict=True))
        lefts: SpanList = []
        rights: SpanList = []
        dirty_lo, dirty_hi = start, end
        pos = starts[a] if n else 0
        for length, span_attr in old:
            s, e = pos, pos + length
            pos = e
            new_attr = span_attr
            if span_attr.author == "model" and min(e, end) > max(s, start):
                new_attr = span_attr.edited()
                dirty_lo, dirty_hi = min(dirty_lo, s), max(dirty_hi, e)
            if s < start:
                lefts.append((min(e, start) - s, new_attr))
            if e > end:
                rights.append((e - max(s, end), new_attr))
        middle = [(len(text), attr)] if text else []
        new = merge_spans(lefts + middle + rights)
        delta = len(text) - (end - start)
        change = _Change(
            start, self._text[start:end], text, a, old, new, dirty_lo, dirty_hi - dirty_lo, dirty_hi - dirty_lo + delta
        )
        self._apply(change, reverse=False)
        return change

    def _apply(self, change: _Change, *, reverse: bool) -> None:
        """Apply a change (or its inverse) to the text and the spans."""
        if reverse:
            removed, added = change.new_text, change.old_text
            out_spans, in_spans = change.new_spans, change.old_spans
            dirty_old, dirty_new = change.dirty_new, change.dirty_old
        else:
            removed, added = change.old_text, change.new_text
            out_spans, in_spans = change.old_spans, change.new_spans
            dirty_old, dirty_new = change.dirty_old, change.dirty_new
        pos = change.pos
        self._text = self._text[:pos] + added + self._text[pos + len(removed) :]
        win, count = change.win, len(out_spans)
        self._lens[win : win + count] = [length for length, _ in in_spans]
        self._attrs[win : win + count] = [attr for _, attr in in_spans]
        self._starts[win + 1 : win + 1 + count] = [0] * len(in_spans)  # stale until _ensure_starts
        self._valid = min(self._valid, win + 1)
        self.mark_dirty(change.dirty_start, dirty_old, dirty_new)

    def _push(self, change: _Change, kind: str | None, pos: int, text: str, *, urgent: bool = False) -> None:
        """Record an applied change for undo, grouping typing by word and deleting by run."""
        self._redo.clear()
        grow = False
        if kind == "type" and self._group == "type" and pos == self._group_pos and len(text) == 1:
            starts_word = not text.isspace() and self._group_last.isspace()
            grow = not starts_word and text != "\n"
        elif kind == "delete" and self._group == "delete":
            grow = change.pos + len(change.old_text) == self._group_pos or change.pos == self._group_pos
        if grow and self._undo:
            self._undo[-1].append(change)
        else:
            self._undo.append([change])
            if len(self._undo) > UNDO_LIMIT:
                del self._undo[0]
        if kind == "type" and len(text) == 1:
            self._group, self._group_pos, self._group_last = "type", pos + 1, text
        elif kind == "delete":
            self._group, self._group_pos = "delete", change.pos
        else:
            self._group = None
        self._changed(urgent=urgent)

    def _changed(self, *, urgent: bool) -> None:
        self.version += 1
        if self.on_change is not None:
            self.on_change(urgent)

    # ---------------------------------------------------- persistence helpers
    # The session saves only what changed: the region between the first changed character and the
    # unchanged tail. These are for the saver; hold ``lock`` while using them.
    @property
    def has_unsaved_region(self) -> bool:
        """True when some text changed since the saver last took the changed region."""
        return self._dirty_lo is not None

    def mark_dirty(self, start: int, old_len: int, new_len: int) -> None:
        """Remember that ``[start, start+old_len)`` became ``[start, start+new_len)`` since the last save."""
        tail = len(self._text) - (start + new_len)
        if self._dirty_lo is None:
            self._dirty_lo, self._dirty_tail = start, tail
        else:
            self._dirty_lo = min(self._dirty_lo, start)
            self._dirty_tail = min(self._dirty_tail, tail)

    def take_dirty(self) -> tuple[int, int] | None:
        """The changed region since the last take, as (start, unchanged tail length); resets it."""
        if self._dirty_lo is None:
            return None
        region = (self._dirty_lo, self._dirty_tail)
        self._dirty_lo = None
        return region

    def restore_dirty(self, region: tuple[int, int]) -> None:
        """Put back a region whose save failed (combines with changes made since)."""
        lo, tail = region
        if self._dirty_lo is None:
            self._dirty_lo, self._dirty_tail = lo, tail
        else:
            self._dirty_lo = min(self._dirty_lo, lo)
            self._dirty_tail = min(self._dirty_tail, tail)

    def spans_between(self, start: int, end: int) -> SpanList:
        """The spans overlapping ``[start, end)``, clipped to it."""
        if start >= end:
            return []
        self._ensure_starts()
        i = bisect_right(self._starts, start) - 1
        out: SpanList = []
        while i < len(self._lens) and self._starts[i] < end:
            s, e = self._starts[i], self._starts[i + 1]
            out.append((min(e, end) - max(s, start), self._attrs[i]))
            i += 1
        return out


def _attribution(author: str, generation_id: int | None, alternative: int | None) -> Attribution:
    if author not in AUTHORS:
        raise ValueError(f"author must be one of {', '.join(AUTHORS)} (got {author!r})")
    if author == "writer":
        return WRITER
    if not isinstance(generation_id, int):
        raise ValueError(f"{author} text needs the generation_id it came from")
    return Attribution(author, generation_id, 0 if alternative is None else alternative)


def check_invariants(doc: Document) -> None:
    """Raise AssertionError unless the spans tile the text canonically (for tests and debugging)."""
    doc._ensure_starts()
    lens, attrs, starts = doc._lens, doc._attrs, doc._starts
    assert len(lens) == len(attrs) == len(starts) - 1, "span lists out of step"
    assert starts[0] == 0 and starts[-1] == len(doc.text), "spans do not cover the text"
    for i, length in enumerate(lens):
        assert length > 0, "empty span"
        assert starts[i + 1] - starts[i] == length, "span starts out of step"
        if i:
            assert attrs[i] != attrs[i - 1], "adjacent spans with the same attribution"
