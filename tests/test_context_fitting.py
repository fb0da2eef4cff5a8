"""Fitting a prompt into a context window: fixed parts stay whole, the writer's oldest text goes first."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backends.base import TextPart, fit_parts, join_parts
from backends.errors import ContextOverflow


def count(text: str) -> int:
    return len(text.split())


def tail(text: str, n: int) -> str:
    words = text.split(" ")
    return " ".join(words[-n:]) if n else ""


def test_a_prompt_that_fits_is_untouched() -> None:
    parts = (TextPart("Notes: a fox. "), TextPart("one two three", elastic=True))
    fitted = fit_parts(parts, 100, count, tail)
    assert fitted.parts == parts and fitted.notice() is None


def test_oldest_elastic_text_goes_first() -> None:
    story = " ".join(f"w{i}" for i in range(100))
    fitted = fit_parts((TextPart("Notes: keep me whole. "), TextPart(story, elastic=True)), 20, count, tail)
    assert fitted.text.startswith("Notes: keep me whole. ")
    assert fitted.text.endswith("w99")
    assert count(fitted.text) <= 20
    notice = fitted.notice()
    assert notice is not None and notice.kind == "truncated" and "words" in notice.message
    assert fitted.dropped_words >= 80


async def test_text_without_spaces_is_measured_in_characters() -> None:
    from backends.base import GenerationParams, GenerationRequest, GenerationResult, Notice
    from backends.gpt2 import GPT2Backend

    backend = GPT2Backend("local", model="bundled")
    story = "夜の海は月の暗い鏡だった。" * 400  # no spaces between words
    request = GenerationRequest.completion(
        (TextPart("Story: Night\n\n"), TextPart(story, elastic=True)), GenerationParams(max_new_tokens=8)
    )
    notices = []
    async for event in backend.stream(request):
        if isinstance(event, Notice) and event.kind == "truncated":
            notices.append(event.message)
        assert not isinstance(event, GenerationResult) or event.complete
    assert len(notices) == 1 and "characters" in notices[0] and "words" not in notices[0], notices


def test_fixed_parts_too_long_is_a_clear_error() -> None:
    with pytest.raises(ContextOverflow) as caught:
        fit_parts((TextPart("a " * 50), TextPart("b", elastic=True)), 10, count, tail)
    assert "instructions and notes" in str(caught.value)


@given(
    fixed=st.integers(0, 15),
    sizes=st.lists(st.integers(0, 60), min_size=1, max_size=3),
    budget=st.integers(16, 80),
)
def test_fitted_prompts_always_fit_and_keep_fixed_text(fixed: int, sizes: list[int], budget: int) -> None:
    parts = [TextPart("f " * fixed)]
    for n, size in enumerate(sizes):
        parts.append(TextPart(" ".join(f"e{n}x{i}" for i in range(size)) + " ", elastic=True))
    fitted = fit_parts(tuple(parts), budget, count, tail)
    assert count(fitted.text) <= budget
    assert fitted.parts[0].text == parts[0].text
    original = join_parts(parts)
    assert original.endswith(fitted.parts[-1].text)
