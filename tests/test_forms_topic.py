"""Topic-aware line choice: among candidate lines that keep the form equally well, the one that
brings in a topic word the poem has not used yet is kept; the form is never traded for it.

The candidate lines come from a scripted backend, so which line wins is known exactly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from assistant import Assistant
from assistant.forms import get_form
from assistant.forms.steer import SteerSettings, steer_completion, topic_of
from backends.base import Delta, GenerationParams, GenerationRequest, GenerationResult
from tests.support.scripted_backend import ScriptedBackend

# Each line's candidates, in the order the backend gives them; every pair keeps 5-7-5 equally well.
HAIKU_CANDIDATES = [
    [" an old silent pond", " the kitchen is warm"],
    [" the kitchen clock ticks slowly", " my grandmother hums a tune"],
    [" snow falls on the roof", " her kitchen smells sweet"],
]


def scripted(candidates: Sequence[Sequence[str]]) -> ScriptedBackend:
    backend = ScriptedBackend(chat=False, completion=True, max_alternatives=len(candidates[0]))
    for line in candidates:
        backend.enqueue_alternatives([[text] for text in line])
    return backend


def write(candidates: Sequence[Sequence[str]], topic: Sequence[str], form: str = "haiku") -> str:
    async def run() -> str:
        request = GenerationRequest.completion("Poem: x\nForm: haiku\n\n", GenerationParams())
        settings = SteerSettings(candidates=len(candidates[0]), rounds=1)
        text = ""
        async for event in steer_completion(scripted(candidates), request, get_form(form), settings, topic):
            if isinstance(event, GenerationResult):
                text = event.text
        return text

    return asyncio.run(run())


def test_without_a_topic_the_first_of_equal_lines_is_kept() -> None:
    assert write(HAIKU_CANDIDATES, ()) == "an old silent pond\nthe kitchen clock ticks slowly\nsnow falls on the roof"


def test_a_line_with_a_topic_word_not_used_yet_is_preferred() -> None:
    poem = write(HAIKU_CANDIDATES, ("grandmother", "kitchen"))
    # Line 2: both use a topic word, but "kitchen" is already in the poem. Line 3: nothing new either way.
    assert poem == "the kitchen is warm\nmy grandmother hums a tune\nsnow falls on the roof"


def test_the_form_is_never_traded_for_the_topic() -> None:
    candidates = [
        [" my grandmother", " an old silent pond"],  # four syllables, with the topic
        [" the kitchen of my grandmother", " a frog jumps into the pond"],  # eight syllables, no cut at seven
        [" grandmother's kitchen sink is full", " splash silence again"],  # five only by a cut mid-phrase
    ]
    poem = write(candidates, ("grandmother", "kitchen"))
    assert poem == "an old silent pond\na frog jumps into the pond\nsplash silence again"


def test_the_poem_template_steers_by_its_keywords_through_the_core() -> None:
    backend = scripted(HAIKU_CANDIDATES)
    with Assistant(backend) as helper:
        prepared = helper.prepare("poem", {"topic": "my grandmother's kitchen", "form": "haiku"})
        assert topic_of(prepared.variables) == ("grandmother", "kitchen")
        events = list(helper.stream("poem", topic="my grandmother's kitchen", form="haiku"))
    text = next(e for e in events if isinstance(e, GenerationResult)).text
    assert text == "the kitchen is warm\nmy grandmother hums a tune\nsnow falls on the roof"
    assert "".join(e.text for e in events if isinstance(e, Delta)) == text
    assert "Keywords: grandmother, kitchen\n" in str(backend.requests[0].prompt[0].text)


def test_the_topic_comes_from_keywords_then_topic() -> None:
    assert topic_of({"topic": "the sea at night", "keywords": "salt, gulls"}) == ("salt", "gulls")
    assert topic_of({"topic": "the sea at night", "keywords": ""}) == ("sea", "night")
    assert topic_of({"form": "haiku"}) == ()
