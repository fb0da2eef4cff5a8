"""Form-aware generation: the bundled model keeps haiku and limerick form, and chat backends
are re-asked for the lines that break it, a bounded number of times (a real HTTP server on 127.0.0.1)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from assistant import Assistant
from assistant.forms import check_form
from backends.openai_backend import OpenAIBackend
from tests.support.fake_openai_server import FakeOpenAI


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def openai_assistant(fake: FakeOpenAI, mode: str = "chat") -> Assistant:
    backend = OpenAIBackend.from_options(
        "fake", {"model": "gpt-test", "base_url": fake.url("scripted"), "timeout": 5, "mode": mode}
    )
    return Assistant(backend)


def chat_requests(fake: FakeOpenAI) -> list[dict]:
    return [seen.body for seen in fake.requests if seen.path.endswith("/chat/completions")]


def test_chat_backend_is_re_asked_for_the_line_that_breaks_a_haiku(fake: FakeOpenAI) -> None:
    fake.replies[:] = [
        "An old silent pond\nA frog jumps in\nSplash! Silence again.",
        "2: A frog jumps into the pond",
    ]
    with openai_assistant(fake) as helper:
        result = helper.run("poem", topic="a pond", form="haiku")
    assert result.text == "An old silent pond\nA frog jumps into the pond\nSplash! Silence again."
    assert check_form(result.text, "haiku").ok
    asks = chat_requests(fake)
    assert len(asks) == 2
    repair = asks[1]["messages"][-1]["content"]
    assert "Line 2 has 4 syllables; the haiku wants 7." in repair
    assert asks[1]["messages"][-2] == {
        "role": "assistant",
        "content": "An old silent pond\nA frog jumps in\nSplash! Silence again.",
    }
    assert any("asked for again (1 time(s))" in notice.message for notice in result.notices)


def test_chat_re_asks_stop_at_the_bound_and_say_so(fake: FakeOpenAI) -> None:
    fake.replies[:] = ["There once was a cat\nWho sat\nOn a mat", "4: and so on"]
    with openai_assistant(fake) as helper:
        result = helper.run("poem", topic="a cat", form="limerick")
    assert len(chat_requests(fake)) == 1 + 3  # the poem, then three re-asks at most
    assert not check_form(result.text, "limerick").ok
    missed = [n.message for n in result.notices if "does not quite keep the limerick form" in n.message]
    assert missed, result.notices


def test_chat_missing_lines_are_asked_for(fake: FakeOpenAI) -> None:
    fake.replies[:] = [
        "There was an Old Man with a beard,\nWho said, 'It is just as I feared!\nTwo Owls and a Hen,",
        "4: Four Larks and a Wren,\n5: Have all built their nests in my beard!'",
    ]
    with openai_assistant(fake) as helper:
        result = helper.run("poem", topic="a beard", form="limerick")
    assert check_form(result.text, "limerick").ok
    assert len(chat_requests(fake)) == 2
    assert "line(s) 4, 5" in chat_requests(fake)[1]["messages"][-1]["content"]


def test_free_verse_is_not_steered(fake: FakeOpenAI) -> None:
    fake.replies[:] = ["Whatever shape\nit likes"]
    with openai_assistant(fake) as helper:
        result = helper.run("poem", topic="wind", form="free verse")
    assert result.text == "Whatever shape\nit likes"
    assert len(chat_requests(fake)) == 1


def test_completion_backend_writes_line_by_line_and_cuts_at_the_syllable_count(fake: FakeOpenAI) -> None:
    fake.replies[:] = ["A frog jumps into the pond and the water sings"]
    with openai_assistant(fake, mode="completion") as helper:
        result = helper.run("poem", topic="a pond", form="haiku")
    report = check_form(result.text, "haiku")
    assert [line.syllables for line in report.lines] == [5, 7, 5]
    asks = [seen.body for seen in fake.requests if seen.path.endswith("/completions")]
    assert len(asks) >= 3
    assert all(ask["n"] == 8 for ask in asks)
    # Each line is asked for after the lines already written.
    assert asks[-1]["prompt"].endswith(result.text.split("\n")[1] + "\n")


# -- the bundled model ----------------------------------------------------------------------

HAIKU_TOPICS = ["first frost", "a broken clock", "my grandmother's kitchen", "the sea at night", "a lantern"]
LIMERICK_TOPICS = ["a cat who stole a pie", "a bicycle bell", "a lazy dragon", "a baker"]


@pytest.mark.slow
def test_bundled_model_keeps_haiku_and_limerick_form() -> None:
    """The goals are 90% (haiku) and 80% (limericks); the margin allows one miss in each sample."""
    with Assistant("local") as helper:
        haiku = [helper.run("poem", {"seed": 11 + i}, topic=t, form="haiku").text for i, t in enumerate(HAIKU_TOPICS)]
        limericks = [
            helper.run("poem", {"seed": 21 + i}, topic=t, form="limerick").text for i, t in enumerate(LIMERICK_TOPICS)
        ]
    kept_haiku = [check_form(text, "haiku").ok for text in haiku]
    kept_limericks = [check_form(text, "limerick").ok for text in limericks]
    assert sum(kept_haiku) >= len(haiku) - 1, haiku
    assert sum(kept_limericks) >= len(limericks) - 1, limericks
    assert all(len(text.splitlines()) == 5 for text in limericks)


@pytest.mark.slow
def test_cli_json_carries_the_form_report() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "assistant",
            "run",
            "poem",
            "--var",
            "topic=snow",
            "--var",
            "form=haiku",
            "--seed",
            "3",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout.splitlines()[0])
    assert record["form"]["form"] == "haiku"
    assert record["form"]["syllables"] == [5, 7, 5]
    assert record["form"]["ok"] is True


def test_a_line_that_misses_its_rhyme_gets_one_anywhere_its_syllable_range_allows() -> None:
    """The last limerick line cut six syllables in can take a rhyme of one to three syllables.

    The line "That I should hear them, the wilderness" (bundled model, seed 23001) has no cut
    one or two syllables short of its target of nine; its rhyme comes from the model's own
    scores over the rhymes of "child" that bring it into the form's range (7-11).
    """
    import asyncio

    from assistant.forms.sounds import count_syllables, rhymes
    from assistant.forms.steer import SteerSettings, _fill_rhyme, _judge, form_of, plan_lines
    from backends.gpt2 import GPT2Backend

    spec = form_of({"form": "limerick"})
    assert spec is not None
    plan = plan_lines(spec)[4]
    written = [
        "As if I have a second child,",
        "For fear and so reviled",
        "The thought: I was yet,",
        "Where's the last beget",
    ]
    candidate = _judge("That I should hear them, the wilderness,", plan, written)
    assert candidate is not None and not candidate.rhyme_ok
    filled = asyncio.run(
        _fill_rhyme(
            GPT2Backend("local", model="bundled"),
            "\n".join(written) + "\n",
            candidate,
            plan,
            "child",
            {"child", "reviled", "yet", "beget"},
            SteerSettings(),
        )
    )
    assert filled is not None and filled.startswith("That I should hear them"), filled
    last = filled.split()[-1]
    assert rhymes(last, "child") and last not in {"child", "reviled"}, filled
    assert 7 <= sum(count_syllables(w) for w in filled.replace(",", " ").split()) <= 11, filled
