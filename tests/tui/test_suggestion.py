"""The suggestion model: pieces to accept, alternatives, and what typing through it means."""

from __future__ import annotations

from tui.suggestion import Suggestion, normalize_newlines


def test_pieces_by_word_and_line() -> None:
    s = Suggestion(start=10, alternatives=[" One two,\nthree four\n\nfive"])
    assert s.piece("word") == " One"
    assert s.piece("line") == " One two,\n"
    assert s.piece("all") == s.text
    assert s.take(len(" One")) == " One"
    assert (s.start, s.text, s.kept) == (14, " two,\nthree four\n\nfive", 4)
    s.take(len(s.piece("line")))
    assert s.piece("line") == "three four\n"
    s.take(len(s.piece("line")))
    assert s.piece("line") == "\nfive"
    assert s.piece("word") == "\nfive"


def test_accepting_part_drops_alternatives_that_disagree() -> None:
    s = Suggestion(start=0, alternatives=[" The sea", " The wind", " A door"])
    s.cycle(1)
    assert s.text == " The wind" and s.label == "2/3"
    s.take(len(" The"))
    assert s.alternatives == [" The sea", " The wind"] and s.sources == [0, 1]
    assert s.text == " wind" and s.label == "2/2"
    assert s.source_index() == 1 and s.local_index(2) is None
    s.ensure(3)
    assert s.count == 2  # a dropped alternative never comes back


def test_typing_through_is_not_accepting() -> None:
    s = Suggestion(start=5, alternatives=[" Then"])
    s.skip(2)
    assert (s.start, s.text, s.kept, s.consumed) == (7, "hen", 0, 2)


def test_cycling_wraps_and_needs_two() -> None:
    single = Suggestion(start=0, alternatives=["a"])
    assert not single.cycle(1) and single.label == ""
    s = Suggestion(start=0, alternatives=["a", "b", "c"])
    s.cycle(-1)
    assert s.text == "c"


def test_every_line_break_becomes_the_documents() -> None:
    assert normalize_newlines("a\r\nb\rc\nd\u2028e", "\r\n") == "a\r\nb\r\nc\r\nd\r\ne"
    assert normalize_newlines("", "\n") == ""
