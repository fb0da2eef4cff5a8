"""The draft editor: a TextArea that keeps the session's document in step and shows ghost text.

The widget's own text is what the writer sees: the draft, plus the model's
suggestion (if any) spliced in at ``suggestion.start``. Every edit the writer
makes is mirrored into the session :class:`~assistant.sessions.document.Document`
at the same place with the ghost text taken out, so the draft never contains a
character the writer has not typed or accepted. The ghost text is drawn dim and
italic; with provenance on, model-written spans are tinted.

Undo and redo use the session document's history (which knows who wrote what),
not the TextArea's.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import accumulate
from typing import TYPE_CHECKING, ClassVar

from rich.style import Style
from rich.text import Text
from textual.actions import SkipAction
from textual.binding import Binding, BindingType
from textual.geometry import Offset
from textual.message import Message
from textual.timer import Timer
from textual.widgets import TextArea
from textual.widgets.text_area import Edit, EditResult, Location, Selection

from assistant.sessions.document import common_prefix, common_suffix
from tui.keys import EDITOR_KEYS
from tui.suggestion import AcceptPart, Suggestion, normalize_newlines

if TYPE_CHECKING:
    from assistant.sessions.document import Document

STREAM_FLUSH = 0.04
"""Streamed text is drawn at most this often (seconds): typing stays quick however fast the model is."""


def markdown_language_available() -> bool:
    """True when tree-sitter and its Markdown grammar are installed (Textual's ``syntax`` extra)."""
    try:
        from textual.widgets._text_area import TREE_SITTER

        if not TREE_SITTER:
            return False
        from textual._tree_sitter import get_language

        return get_language("markdown") is not None
    except Exception:
        return False


class DraftEditor(TextArea):
    """The writer's draft, with the model's suggestion shown as ghost text at the cursor."""

    COMPONENT_CLASSES: ClassVar[set[str]] = TextArea.COMPONENT_CLASSES | {
        "draft--ghost",
        "draft--model",
        "draft--edited",
    }

    DEFAULT_CSS = """
    DraftEditor {
        & .draft--ghost { color: $text-muted; text-style: italic; }
        & .draft--model { background: $accent 20%; }
        & .draft--edited { background: $warning 14%; }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(key.keys, key.action, key.description, show=key.action in ("accept('all')", "cycle(1)"))
        for key in EDITOR_KEYS
    ]

    @dataclass
    class SuggestionDropped(Message):
        """The writer's own edit ran into the ghost text, so the suggestion was taken away."""

        editor: DraftEditor
        suggestion: Suggestion
        reason: str

    @dataclass
    class SuggestionAccepted(Message):
        """The writer accepted all of the ghost text, or its next word or line."""

        editor: DraftEditor
        suggestion: Suggestion
        part: AcceptPart
        text: str

    @dataclass
    class SuggestionCycled(Message):
        """Another alternative is on show."""

        editor: DraftEditor
        suggestion: Suggestion

    @dataclass
    class DraftChanged(Message):
        """The draft (not the ghost text) changed: typing, accepting, undo."""

        editor: DraftEditor

    def __init__(self, draft: Document, *, id: str | None = None, classes: str | None = None) -> None:
        language = "markdown" if markdown_language_available() else None
        super().__init__(
            draft.text,
            language=language,
            soft_wrap=True,
            tab_behavior="focus",
            show_line_numbers=False,
            highlight_cursor_line=False,
            read_only=draft.read_only,
            id=id,
            classes=classes,
            placeholder="Start writing here. Press F5 (or Ctrl+J) when you'd like the model to carry on.",
        )
        self.draft = draft
        self.accept_text: Callable[[int, str, int, int], None] = draft.accept
        """Puts accepted text into the draft: ``(pos, text, generation_id, alternative)``."""
        self._suggestion: Suggestion | None = None
        self._pending: list[tuple[Suggestion, int, str]] = []
        self._flush_timer: Timer | None = None
        self._quiet = False
        self._internal = 0
        self._line_starts: list[int] | None = None
        self._show_provenance = False
        if self.document.text != draft.text and not draft.read_only:
            # Mixed or unusual line breaks: the editor writes one kind; keep the draft in step.
            draft.set_text(self.document.text)

    # ------------------------------------------------------------------ state
    @property
    def ghost(self) -> Suggestion | None:
        """The suggestion whose ghost text is on show, if any."""
        return self._suggestion

    @property
    def show_provenance(self) -> bool:
        """Whether model-written spans are tinted."""
        return self._show_provenance

    @show_provenance.setter
    def show_provenance(self, value: bool) -> None:
        self._show_provenance = value
        self.repaint()

    @property
    def draft_text(self) -> str:
        """The writer's draft: the editor's text without the ghost text."""
        return self.draft.text

    @property
    def cursor_offset(self) -> int:
        """The cursor as an offset into the draft (a cursor inside the ghost text counts as its start)."""
        return self.to_draft(self.offset_of(self.cursor_location))

    @property
    def selection_offsets(self) -> tuple[int, int]:
        """The selection as ``(start, end)`` offsets into the draft, start <= end."""
        start, end = sorted(self.selection)
        return self.to_draft(self.offset_of(start)), self.to_draft(self.offset_of(end))

    def to_draft(self, offset: int) -> int:
        """A position in the editor's text as a position in the draft."""
        s = self._suggestion
        if s is None or offset <= s.start:
            return offset
        ghost = len(s.text)
        return s.start if offset < s.start + ghost else offset - ghost

    def to_display(self, offset: int) -> int:
        """A position in the draft as a position in the editor's text (after the ghost text)."""
        s = self._suggestion
        if s is None or offset < s.start or (offset == s.start and not s.text):
            return offset
        return offset + len(s.text) if offset > s.start else offset

    def repaint(self) -> None:
        """Redraw every line (ghost or tint boundaries moved without a text change)."""
        self._line_cache.clear()
        self.refresh()

    # ------------------------------------------------------ offsets/locations
    def _starts(self) -> list[int]:
        if self._line_starts is None:
            step = len(self.document.newline)
            lines = self.document.lines
            self._line_starts = list(accumulate((len(line) + step for line in lines), initial=0))
        return self._line_starts

    def offset_of(self, location: Location) -> int:
        """The offset in the editor's text of a (row, column) location."""
        row, column = location
        starts = self._starts()
        row = max(0, min(row, len(starts) - 2))
        return starts[row] + column

    def location_of(self, offset: int) -> Location:
        """The (row, column) location of an offset in the editor's text."""
        starts = self._starts()
        row = max(0, min(bisect_right(starts, offset) - 1, len(starts) - 2))
        return row, offset - starts[row]

    # -------------------------------------------------------------- editing
    def edit(self, edit: Edit) -> EditResult:
        if self._internal:
            self._line_starts = None
            return super().edit(edit)
        self.flush_stream()
        try:
            return self._writer_edit(edit)
        except Exception as error:  # never lose the writer's text to a bug: resync and say so
            self.resync()
            self.notify(f"That edit could not be recorded ({error}); the draft was reloaded.", severity="error")
            return EditResult(self.cursor_location, "")

    def _writer_edit(self, edit: Edit) -> EditResult:
        start = self.offset_of(edit.top)
        end = self.offset_of(edit.bottom)
        text = normalize_newlines(edit.text, self.document.newline)
        s = self._suggestion
        if s is None:
            return self._mirror(edit, start, end, text)
        gs, ge = s.start, s.end
        if s.text and start == end == gs and text and s.text.startswith(text):
            return self._type_through(s, text)
        if end < gs:  # earlier in the draft: the ghost text moves along
            result = self._mirror(edit, start, end, text)
            s.start += len(text) - (end - start)
            self.repaint()
            return result
        if end == gs:  # typing (or deleting) right where it is: the writer went their own way
            self.drop_suggestion("edited", announce=True)
            return self._mirror(edit, start, end, text)
        if start >= ge:  # after it
            ghost = len(s.text)
            return self._mirror(edit, start - ghost, end - ghost, text)
        # The edit reaches into the ghost text: take the suggestion away first.
        draft_start, draft_end = self.to_draft(start), self.to_draft(end)
        self.drop_suggestion("edited", announce=True)
        edit = Edit(
            edit.text, self.location_of(draft_start), self.location_of(draft_end), edit.maintain_selection_offset
        )
        return self._mirror(edit, draft_start, draft_end, text)

    def _mirror(self, edit: Edit, draft_start: int, draft_end: int, text: str) -> EditResult:
        """Apply a writer's edit to the editor and, at ``draft_start..draft_end``, to the draft."""
        result = self._apply(edit)
        if draft_start == draft_end:
            self.draft.insert(draft_start, text)
        elif not text:
            self.draft.delete(draft_start, draft_end)
        else:
            self.draft.replace(draft_start, draft_end, text)
        self.post_message(self.DraftChanged(self))
        return result

    def _apply(self, edit: Edit) -> EditResult:
        self._internal += 1
        try:
            return self.edit(edit)
        finally:
            self._internal -= 1

    def _type_through(self, s: Suggestion, text: str) -> EditResult:
        """The writer typed exactly what the ghost text says next: it becomes their text."""
        self.draft.insert(s.start, text)
        s.skip(len(text))
        location = self.location_of(s.start)
        self.selection = Selection.cursor(location)
        if not s.text and not s.streaming:
            self._suggestion = None
        self.repaint()
        self.post_message(self.DraftChanged(self))
        return EditResult(location, "")

    def _replace_display(self, start: int, end: int, text: str, *, quiet: bool = False) -> None:
        """Change the editor's text without touching the draft, keeping the cursor where it was.

        ``quiet`` leaves the view where the writer put it (streamed text never scrolls).
        """
        keep = [self.offset_of(loc) for loc in self.selection]
        self._quiet = quiet
        try:
            self._apply(Edit(text, self.location_of(start), self.location_of(end), True))
            delta = len(text) - (end - start)
            moved = [
                o + delta if o > end or (o == end and o > start) else (start if start < o < end else o) for o in keep
            ]
            wanted = Selection(self.location_of(moved[0]), self.location_of(moved[1]))
            if self.selection != wanted:
                self.selection = wanted
        finally:
            self._quiet = False

    def scroll_cursor_visible(self, center: bool = False, animate: bool = False) -> Offset:
        if self._quiet:
            return Offset(0, 0)
        return super().scroll_cursor_visible(center=center, animate=animate)

    def resync(self, cursor: int | None = None) -> None:
        """Make the editor show the draft again (after undo, redo or an error); ghost text goes."""
        self.flush_stream()
        self._suggestion = None
        shown = self.document.text
        target = self.draft.text
        if shown != target:
            p = common_prefix(shown, target)
            s = common_suffix(shown, target, min(len(shown), len(target)) - p)
            self._apply(Edit(target[p : len(target) - s], self.location_of(p), self.location_of(len(shown) - s), False))
            if cursor is None:
                cursor = len(target) - s
        if cursor is not None:
            self.selection = Selection.cursor(self.location_of(min(cursor, len(target))))
        self.repaint()

    def undo(self) -> None:
        """Undo the writer's last step (typing is grouped by word; an accept is one step)."""
        self._history_step(self.draft.undo)

    def redo(self) -> None:
        """Redo the last undone step."""
        self._history_step(self.draft.redo)

    def _history_step(self, step: object) -> None:
        if self.read_only:
            return
        self.flush_stream()
        if self._suggestion is not None:
            self.drop_suggestion("undo", announce=True)
        try:
            cursor = step()  # type: ignore[operator]
        except Exception as error:
            self.notify(str(error), severity="error")
            return
        if cursor is None:
            return
        self.resync(cursor)
        self.post_message(self.DraftChanged(self))

    def break_undo_group(self) -> None:
        """Make the next typed text a new undo step."""
        self.draft.break_undo_group()

    # ------------------------------------------------------------ suggestions
    def show_suggestion(self, suggestion: Suggestion) -> None:
        """Show a new suggestion (its ghost text is spliced in at ``suggestion.start``)."""
        self.flush_stream()
        if self._suggestion is not None:
            self.drop_suggestion("replaced")
        self._suggestion = suggestion
        if suggestion.text:
            self._replace_display(suggestion.start, suggestion.start, suggestion.text)
        self.repaint()
        self.scroll_cursor_visible()

    def stream_into(self, suggestion: Suggestion, index: int, text: str) -> None:
        """Add streamed ``text`` to alternative ``index`` (the backend's numbering).

        It is drawn with the next flush (within ``STREAM_FLUSH`` seconds), in one edit however
        many pieces arrived meanwhile; every other operation flushes first.
        """
        self._pending.append((suggestion, index, text))
        if self._flush_timer is None:
            self._flush_timer = self.set_timer(STREAM_FLUSH, self.flush_stream)

    def flush_stream(self) -> None:
        """Draw the streamed text that has not been drawn yet."""
        if self._flush_timer is not None:
            self._flush_timer.stop()
            self._flush_timer = None
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        shown = self._suggestion
        end = shown.end if shown is not None else 0
        added: list[str] = []
        for suggestion, index, text in pending:
            local = suggestion.local_index(index)
            if local is None:
                continue
            suggestion.ensure(local + 1)
            text = normalize_newlines(text, self.document.newline)
            suggestion.alternatives[local] += text
            if suggestion is shown and local == suggestion.index:
                added.append(text)
        if added and shown is not None:
            self._replace_display(end, end, "".join(added), quiet=True)
            self.reveal_ghost()

    def reveal_ghost(self) -> None:
        """Scroll down so the ghost text shows, if it starts on screen and runs past the bottom.

        The start of the suggestion (where the writer is looking) never scrolls out of view,
        and a writer who scrolled elsewhere is left there.
        """
        s = self._suggestion
        height = self.scrollable_content_region.height
        if s is None or not s.text or height <= 0:
            return
        try:
            top = self.wrapped_document.location_to_offset(self.location_of(s.start)).y
            bottom = self.wrapped_document.location_to_offset(self.location_of(s.end)).y
        except Exception:
            return
        first = round(self.scroll_y)
        if not first <= top < first + height or bottom < first + height:
            return
        self.scroll_to(y=min(top, bottom - height + 1), animate=False, immediate=True)

    def set_alternatives(self, suggestion: Suggestion, texts: Iterable[str]) -> None:
        """Replace the streamed text by the backend's final text of each alternative."""
        self.flush_stream()
        finals = [normalize_newlines(t, self.document.newline) for t in texts]
        before = suggestion.text
        for source, text in enumerate(finals):
            local = suggestion.local_index(source)
            if local is None:
                continue
            suggestion.ensure(local + 1)
            if suggestion.alternatives[local] != text and text.startswith(suggestion.accepted):
                suggestion.alternatives[local] = text
        if suggestion is self._suggestion and suggestion.text != before:
            self._replace_display(suggestion.start, suggestion.start + len(before), suggestion.text)
        self.repaint()

    def cycle(self, step: int = 1) -> bool:
        """Show the next (or previous) alternative."""
        self.flush_stream()
        s = self._suggestion
        if s is None:
            return False
        before = s.text
        if not s.cycle(step):
            return False
        self._replace_display(s.start, s.start + len(before), s.text)
        self.repaint()
        return True

    def accept(self, part: AcceptPart = "all") -> str:
        """Accept all of the ghost text, or its next word or line; return what was accepted.

        The accepted text becomes part of the draft, attributed to the model.
        """
        self.flush_stream()
        s = self._suggestion
        if s is None or not s.text or s.generation_id is None:
            return ""
        piece = s.piece(part)
        if not piece:
            return ""
        self.accept_text(s.start, piece, s.generation_id, s.source_index())
        s.take(len(piece))
        self.selection = Selection.cursor(self.location_of(s.start))
        if not s.text and (not s.streaming or part == "all"):
            self._suggestion = None
        self.repaint()
        self.post_message(self.SuggestionAccepted(self, s, part, piece))
        self.post_message(self.DraftChanged(self))
        return piece

    def action_accept(self, part: AcceptPart = "all") -> None:
        """Accept ghost text; without any, the key does what it usually does."""
        self.flush_stream()
        if self._suggestion is not None and self._suggestion.text:
            self.accept(part)
        elif part == "word":
            self.action_cursor_word_right()
        elif part == "line":
            self.action_cursor_down()
        else:
            raise SkipAction()

    def action_cycle(self, step: int = 1) -> None:
        """Show the next (or previous) alternative."""
        s = self._suggestion
        if s is not None and self.cycle(step):
            self.post_message(self.SuggestionCycled(self, s))

    def action_draft_start(self, select: bool = False) -> None:
        """Go to the start of the draft (Ctrl+Home); with ``select``, select to it."""
        self.move_cursor((0, 0), select=select)

    def action_draft_end(self, select: bool = False) -> None:
        """Go to the end of the draft (Ctrl+End), before any ghost text there; with ``select``, select to it."""
        self.flush_stream()
        self.move_cursor(self.location_of(self.to_display(len(self.draft.text))), select=select)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "accept" and parameters in ((), ("all",)):
            return self._suggestion is not None and bool(self._suggestion.text)
        if action == "cycle":
            return self._suggestion is not None and self._suggestion.count > 1
        return super().check_action(action, parameters)

    def drop_suggestion(self, reason: str = "dismissed", *, announce: bool = False) -> Suggestion | None:
        """Take the ghost text away; returns the suggestion that was shown.

        With ``announce``, post :class:`SuggestionDropped` (for drops the app did not ask for).
        """
        self.flush_stream()
        s = self._suggestion
        if s is None:
            return None
        ghost = s.text
        self._suggestion = None
        if ghost:
            self._replace_display(s.start, s.start + len(ghost), "")
        self.repaint()
        if announce:
            self.post_message(self.SuggestionDropped(self, s, reason))
        return s

    # -------------------------------------------------------------- drawing
    def get_line(self, line_index: int) -> Text:
        line = super().get_line(line_index)
        s = self._suggestion
        ghost = len(s.text) if s is not None else 0
        if not ghost and not self._show_provenance:
            return line
        starts = self._starts()
        if line_index >= len(starts) - 1:
            return line
        lo = starts[line_index]
        hi = lo + len(line.plain)
        if self._show_provenance:
            self._tint(line, lo, hi, s.start if s is not None else hi, ghost)
        if ghost and s is not None:
            g0, g1 = max(lo, s.start), min(hi, s.start + ghost)
            if g0 < g1:
                line.stylize(self.get_component_rich_style("draft--ghost"), g0 - lo, g1 - lo)
        return line

    def _tint(self, line: Text, lo: int, hi: int, gs: int, ghost: int) -> None:
        styles: dict[str, Style] = {
            "model": self.get_component_rich_style("draft--model"),
            "edited": self.get_component_rich_style("draft--edited"),
        }
        pieces = [(lo, min(hi, gs), 0)]
        if hi > gs + ghost:
            pieces.append((max(lo, gs + ghost), hi, ghost))
        for a, b, shift in pieces:
            if a >= b:
                continue
            for span in self.draft.spans_in(a - shift, b - shift):
                style = styles.get(span.author)
                if style is not None:
                    line.stylize(style, span.start + shift - lo, span.end + shift - lo)
