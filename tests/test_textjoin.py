"""The one rule for joining a continuation to the writer's text, and tidying standalone text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assistant.textjoin import (
    ContinuationStream,
    StandaloneStream,
    join_continuation,
    strip_standalone,
    tidy_output,
)


@pytest.mark.parametrize(
    ("before", "continuation", "joined"),
    [
        ("until\n", " the night came.", "until the night came."),  # an editor's line ending is no break
        ("It was late. ", " The lantern spoke.", "It was late. The lantern spoke."),  # no doubled space
        ("It was late.", " The lantern spoke.", "It was late. The lantern spoke."),
        ("The end.\n\n", " Chapter two", "The end.\n\nChapter two"),  # the writer's paragraph break stays
        ("The end.", "\n\nChapter two", "The end.\n\nChapter two"),  # the model's paragraph break is used
        ("The end.\n", "\n\nChapter two", "The end.\n\nChapter two"),
        ("It was late. \n", "Then", "It was late. Then"),  # the writer's own space is kept
        ("unt", "il dawn", "until dawn"),  # mid-word, as the model meant it
        ("Keep me\n", "", "Keep me\n"),  # nothing written: the writer's text is unchanged
        ("Keep me\n", "  \n", "Keep me\n"),
        ("", " Once", "Once"),
    ],
)
def test_join_continuation(before: str, continuation: str, joined: str) -> None:
    assert join_continuation(before, continuation) == joined


def test_standalone_text_is_stripped_and_continuations_are_not() -> None:
    assert strip_standalone("\n  The sea at night.\n\n") == "The sea at night."
    assert tidy_output("selection", " Rewritten.") == "Rewritten."
    assert tidy_output("list", "\nA poem\n") == "A poem"
    assert tidy_output("cursor", " the night came") == " the night came"


pieces = st.lists(st.text(alphabet=" \nab.", max_size=6), max_size=8)


@given(before=st.text(alphabet=" \nab.", max_size=10), chunks=pieces)
def test_streams_write_what_the_whole_text_gives(before: str, chunks: list[str]) -> None:
    joiner = ContinuationStream(before)
    streamed = joiner.start() + "".join(joiner.feed(c) for c in chunks) + joiner.finish()
    assert streamed == join_continuation(before, "".join(chunks))
    standalone = StandaloneStream()
    written = "".join(standalone.feed(c) for c in chunks) + standalone.finish()
    assert written == strip_standalone("".join(chunks))
