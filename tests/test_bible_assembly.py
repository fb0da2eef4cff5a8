"""Fitting memory, entries, the author's note and the draft's tail into the context; the record of it."""

from __future__ import annotations

import pytest

from assistant.bible import Bible, assemble
from assistant.bible.assembly import SEAM_MARGIN
from backends.errors import ContextOverflow


def words(text: str) -> int:
    return len(text.split())


def entry(name: str, size: int, priority: int = 0, order: int = 100, key: str | None = None) -> dict:
    return {
        "name": name,
        "keys": [key or name.lower()],
        "content": " ".join([name] * size),
        "priority": priority,
        "order": order,
    }


def test_lower_priority_entries_are_dropped_first_and_order_stays_stable() -> None:
    bible = Bible.of(
        {
            "memory": "m " * 10,
            "entries": [
                entry("Low", 30, priority=1, order=1),
                entry("High", 30, priority=9, order=3),
                entry("Mid", 30, priority=5, order=2),
                entry("Tiny", 2, priority=0, order=0),
            ],
            "settings": {"budget_fraction": 0.2, "min_tail_tokens": 10},
        }
    )
    text = "low high mid tiny " * 5
    # 400-token context: the bible may take 80 tokens: memory 10, High 30, Mid 30; Low does not fit.
    fitted = assemble(bible, text, context_window=400, count=words)
    kept = [p.entry for p in fitted.parts if p.kind == "entry"]
    assert kept == ["Mid", "High"]  # prompt order (order), not priority
    dropped = {d.entry: d.reason for d in fitted.dropped if d.kind == "entry"}
    assert set(dropped) == {"Low", "Tiny"}
    assert dropped["Low"].startswith("budget: 30 tokens, only 10 left")
    assert "higher-priority entry already did not fit" in dropped["Tiny"]  # even though it would fit
    again = assemble(bible, "tiny mid high low " * 5, context_window=400, count=words)
    assert [p.text for p in again.parts if p.kind != "draft"] == [p.text for p in fitted.parts if p.kind != "draft"]


def test_authors_note_goes_the_set_number_of_paragraphs_above_the_end() -> None:
    text = "One.\n\nTwo.\n\nThree, and"
    bible = Bible.of({"authors_note": "Rain.", "settings": {"authors_note_depth": 2}})
    fitted = assemble(bible, text, context_window=1000, count=words)
    assert fitted.draft == "One.\n\n[Author's note: Rain.]\n\nTwo.\n\nThree, and"
    assert [p.kind for p in fitted.parts] == ["draft", "authors_note", "draft"]
    assert fitted.draft.endswith("Three, and")  # the continuation still follows the writer's words


def test_authors_note_by_lines_and_in_a_short_draft() -> None:
    lines = Bible.of({"authors_note": "Rain.", "settings": {"authors_note_unit": "lines"}})
    assert assemble(lines, "a\nb\nc", context_window=1000, count=words).draft == "a\nb\n[Author's note: Rain.]\nc"
    deep = Bible.of({"authors_note": "Rain.", "settings": {"authors_note_depth": 9}})
    assert assemble(deep, "Only one.", context_window=1000, count=words).draft == "[Author's note: Rain.]\n\nOnly one."


def test_a_long_draft_and_the_entries_compete_for_space() -> None:
    draft = " ".join(f"w{i}" for i in range(5000)) + " Mara Gull Lis"
    bible = Bible.of(
        {
            "memory": "premise " * 20,
            "entries": [entry("Mara", 60, 3), entry("Gull", 60, 2), entry("Lis", 60, 1)],
            "settings": {"budget_fraction": 0.3, "min_tail_tokens": 200},
        }
    )
    fitted = assemble(bible, draft, context_window=512, reserved=100, count=words)
    tail = "".join(p.text for p in fitted.parts if p.kind == "draft")
    used = sum(p.tokens for p in fitted.parts)
    assert used <= 512 - 100 - SEAM_MARGIN + 3  # separators between blocks are a token or so each
    assert words(tail) >= 200 and tail.endswith("Mara Gull Lis")
    assert fitted.bible_budget == 153  # 30% of 512; the tail's minimum leaves more
    assert [p.entry for p in fitted.parts if p.kind == "entry"] == ["Gull", "Mara"]
    assert {d.kind for d in fitted.dropped} == {"entry", "draft"}
    older = next(d for d in fitted.dropped if d.kind == "draft")
    assert older.reason.startswith("window:")
    # A tighter window: the tail's minimum wins over the entries.
    small = assemble(bible, draft, context_window=400, reserved=100, count=words)
    assert [p.entry for p in small.parts if p.kind == "entry"] == ["Mara"]
    assert words("".join(p.text for p in small.parts if p.kind == "draft")) >= 200


def test_memory_too_long_for_the_model_is_a_clear_error() -> None:
    with pytest.raises(ContextOverflow, match="memory and author's note take about"):
        assemble(Bible(memory="x " * 600), "text", context_window=512, count=words)
