"""Stop sequences applied to streamed text, however the text is split into pieces."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from backends.base import StopFilter


def expected(text: str, stops: list[str]) -> str:
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    return text[: min(found)] if found else text


@given(
    text=st.text(alphabet="ab\n ", max_size=60),
    stops=st.lists(st.text(alphabet="ab\n", min_size=1, max_size=4), max_size=3),
    cuts=st.lists(st.integers(0, 60), max_size=10),
)
def test_streamed_pieces_add_up_to_the_text_before_the_first_stop(text: str, stops: list[str], cuts: list[int]) -> None:
    points = sorted({0, len(text), *(c for c in cuts if c <= len(text))})
    pieces = [text[a:b] for a, b in itertools.pairwise(points)]
    stop_filter = StopFilter(stops)
    shown = "".join(stop_filter.feed(piece) for piece in pieces) + stop_filter.flush()
    assert shown == expected(text, stops)
    assert stop_filter.text == shown


def test_text_that_may_start_a_stop_is_held_back_until_known() -> None:
    stop_filter = StopFilter(["\n\nPoem:"])
    assert stop_filter.feed("a line\n") == "a line"
    assert stop_filter.feed("\nPo") == ""
    assert stop_filter.feed("em: next") == ""
    assert stop_filter.stopped and stop_filter.text == "a line"


def expected_lines(text: str, limit: int) -> str:
    count = 0
    for index, char in enumerate(text):
        if char == "\n":
            line_start = text.rfind("\n", 0, index) + 1
            if text[line_start:index].strip():
                count += 1
                if count == limit:
                    return text[:index]
    return text


@given(
    text=st.text(alphabet="ab\n ", max_size=60),
    limit=st.integers(1, 4),
    cuts=st.lists(st.integers(0, 60), max_size=10),
)
def test_a_line_limit_ends_at_the_break_after_the_last_allowed_line(text: str, limit: int, cuts: list[int]) -> None:
    points = sorted({0, len(text), *(c for c in cuts if c <= len(text))})
    stop_filter = StopFilter([], max_lines=limit)
    shown = "".join(stop_filter.feed(text[a:b]) for a, b in itertools.pairwise(points)) + stop_filter.flush()
    assert shown == expected_lines(text, limit)


def test_blank_lines_between_stanzas_do_not_count() -> None:
    stop_filter = StopFilter(["\nPoem:"], max_lines=3)
    shown = stop_filter.feed("\nAn old silent pond\n\nA frog jumps")
    shown += stop_filter.feed(" into the pond\nSplash! Silence again.\nAnd more")
    assert shown + stop_filter.flush() == "\nAn old silent pond\n\nA frog jumps into the pond\nSplash! Silence again."
    assert stop_filter.stopped


def test_a_stop_sequence_before_the_line_limit_wins() -> None:
    stop_filter = StopFilter(["\nPoem:"], max_lines=3)
    assert stop_filter.feed("one\nPoem: two\nthree\nfour\n") == "one"
    assert stop_filter.stopped
