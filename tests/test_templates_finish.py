"""A template's finish: the built-in image-prompt ends as Midjourney and Stable Diffusion need,
whatever the model wrote, through a real OpenAI-compatible server on 127.0.0.1, the real CLI
and the bundled model."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant import Assistant
from assistant.evaluation import midjourney_ok, negative_prompt_ok
from assistant.templates import Template, TemplateLibrary
from assistant.templates.finish import Finish, finish_stream
from backends.base import Delta, GenerationResult, StreamEvent
from backends.openai_backend import OpenAIBackend
from tests.support.fake_openai_server import FakeOpenAI
from tests.test_cli import quillmate
from tests.test_cli_defects import use_fake_server

NEGATIVE = "Negative prompt: blurry, low quality, distorted, watermark, text"
MJ = Finish(parameters=(("--ar", "16:9"), ("--v", "6")))
SD = Finish(lines=(("Negative prompt", "blurry, low quality"),))


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def openai_assistant(fake: FakeOpenAI, mode: str) -> Assistant:
    backend = OpenAIBackend.from_options(
        "fake", {"model": "gpt-test", "base_url": fake.url("scripted"), "timeout": 5, "mode": mode}
    )
    return Assistant(backend)


def run_streamed(helper: Assistant, **variables: str) -> tuple[str, GenerationResult]:
    """The first alternative as the deltas spell it, and the result."""
    streamed, result = "", None
    for event in helper.stream("image-prompt", **variables):
        if isinstance(event, Delta) and event.index == 0:
            streamed += event.text
        elif isinstance(event, GenerationResult):
            result = event
    assert result is not None
    return streamed, result


# -- the built-in template declares it ----------------------------------------------------


def test_image_prompt_declares_a_finish_per_target() -> None:
    template = TemplateLibrary().get("image-prompt")
    mj = template.finish_for(template.resolve({"scene": "x", "target": "midjourney", "aspect": "9:16"}))
    assert mj == Finish(parameters=(("--ar", "9:16"), ("--v", "6")))
    sd = template.finish_for(template.resolve({"scene": "x"}))  # stable-diffusion is the default
    assert sd == Finish(lines=(("Negative prompt", "blurry, low quality, distorted, watermark, text"),))
    assert not template.finish_for(template.resolve({"scene": "x", "target": "dall-e"}))


# -- chat models that already wrote them, base models that did not ---------------------------


def test_a_chat_midjourney_prompt_with_its_parameters_is_left_as_written(fake: FakeOpenAI) -> None:
    written = "a lighthouse in fog at dawn, ukiyo-e woodblock print, muted indigo --ar 16:9 --v 6"
    fake.replies[:] = [written]
    with openai_assistant(fake, "chat") as helper:
        streamed, result = run_streamed(helper, scene="a lighthouse in fog", target="midjourney", aspect="16:9")
    assert result.text == written and streamed == written
    assert result.text.count("--ar") == 1 and result.text.count("--v") == 1


def test_a_chat_midjourney_prompt_with_the_wrong_aspect_gets_the_chosen_one(fake: FakeOpenAI) -> None:
    fake.replies[:] = ["a lighthouse in fog, ukiyo-e --ar 0:9 --v 6"]
    with openai_assistant(fake, "chat") as helper:
        result = helper.run("image-prompt", scene="a lighthouse in fog", target="midjourney", aspect="3:2")
    assert result.text == "a lighthouse in fog, ukiyo-e --ar 3:2 --v 6"
    assert midjourney_ok(result.text)


def test_a_base_model_midjourney_prompt_gets_its_parameters(fake: FakeOpenAI) -> None:
    fake.replies[:] = [" a lighthouse in fog, ukiyo-e woodblock print, muted indigo"]
    with openai_assistant(fake, "completion") as helper:
        streamed, result = run_streamed(helper, scene="a lighthouse in fog", target="midjourney", aspect="21:9")
    assert result.text == "a lighthouse in fog, ukiyo-e woodblock print, muted indigo --ar 21:9 --v 6"
    assert streamed.lstrip() == result.text  # the writer sees the finished text as it streams
    assert midjourney_ok(result.text)


def test_a_chat_stable_diffusion_prompt_keeps_its_own_negative_prompt(fake: FakeOpenAI) -> None:
    written = "a lighthouse in fog, soft light, highly detailed\nNegative prompt: people, boats, text"
    fake.replies[:] = [written]
    with openai_assistant(fake, "chat") as helper:
        streamed, result = run_streamed(helper, scene="a lighthouse in fog", target="stable-diffusion")
    assert result.text == written and streamed == written
    assert result.text.lower().count("negative prompt:") == 1


def test_a_base_model_stable_diffusion_prompt_gets_a_negative_prompt(fake: FakeOpenAI) -> None:
    fake.replies[:] = [" a lighthouse in fog, soft light, highly detailed\n"]
    with openai_assistant(fake, "completion") as helper:
        result = helper.run("image-prompt", scene="a lighthouse in fog", target="stable-diffusion")
    assert result.text == f"a lighthouse in fog, soft light, highly detailed\n{NEGATIVE}"
    assert negative_prompt_ok(result.text)


def test_dall_e_prompts_are_not_touched(fake: FakeOpenAI) -> None:
    fake.replies[:] = ["A lighthouse stands in morning fog. --ar is not a DALL-E thing"]
    with openai_assistant(fake, "chat") as helper:
        result = helper.run("image-prompt", scene="a lighthouse", target="dall-e")
    assert result.text == "A lighthouse stands in morning fog. --ar is not a DALL-E thing"


def test_the_cli_prints_the_finished_prompt(isolated_home: Path, fake: FakeOpenAI) -> None:
    use_fake_server(isolated_home, fake.url("scripted"))
    fake.replies[:] = ["a lighthouse in fog, ukiyo-e woodblock print"]
    out = quillmate(
        "run", "image-prompt", "--var", "scene=a lighthouse", "--var", "target=midjourney", home=isolated_home
    )
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout.decode() == "a lighthouse in fog, ukiyo-e woodblock print --ar 1:1 --v 6\n"


@pytest.mark.slow
def test_the_bundled_model_always_ends_as_the_target_needs() -> None:
    with Assistant("local") as helper:
        mj = helper.run("image-prompt", {"seed": 3}, scene="a bakery window at night", target="midjourney")
        sd = helper.run("image-prompt", {"seed": 4}, scene="a fox in the snow", target="stable-diffusion")
    assert midjourney_ok(mj.text) and "--ar 1:1" in mj.text, mj.text
    assert negative_prompt_ok(sd.text), sd.text


# -- how a finish mends text ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("finish", "text", "expected"),
    [
        (MJ, "a fox --ar 16:9 --v 6", "a fox --ar 16:9 --v 6"),
        (MJ, "a fox", "a fox --ar 16:9 --v 6"),
        (MJ, "a fox, --AR 4:3  ", "a fox, --ar 16:9 --v 6"),
        (MJ, "a fox --v 5.2 --style raw", "a fox --style raw --ar 16:9 --v 6"),
        (MJ, "a fox --art deco", "a fox --art deco --ar 16:9 --v 6"),
        (MJ, "   \n", "   \n"),
        (SD, "a fox\nNegative prompt: ugly", "a fox\nNegative prompt: ugly"),
        (SD, "a fox\nnegative prompt:  ", "a fox\nNegative prompt: blurry, low quality"),
        (SD, "a fox\n\n", "a fox\nNegative prompt: blurry, low quality"),
        (MJ + SD, "a fox\nNegative prompt: x --ar 1:1", "a fox --ar 16:9 --v 6\nNegative prompt: x"),
    ],
)
def test_apply(finish: Finish, text: str, expected: str) -> None:
    assert finish.apply(text) == expected
    assert finish.apply(expected) == expected  # finishing twice changes nothing


SAMPLES = [
    "a fox, watercolour --ar 16:9 --v 6",
    "a fox - a hare --a --ar 0:0 -- --v 9 --art",
    "a fox \n--ar 4:3 --v\n",
    "a fox\nNegative prompt: \nNegative prompt: ugly, dull",
    "a fox, negative space, neg\nnegative prompt:",
    "Negative prompt: a fox --v",
    "a fox   ",
    " a fox, watercolour",
    " \n a fox\n",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_what_streams_is_always_the_start_of_the_finished_text(text: str) -> None:
    shuffle = random.Random(7)
    for finish in (MJ, SD, MJ + SD):
        for _ in range(30):
            cuts = sorted(shuffle.sample(range(1, len(text)), k=min(len(text) - 1, shuffle.randint(1, 6))))
            pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
            streamed, result = asyncio.run(_finished(pieces, finish))
            assert result.texts[0] == finish.apply(text)
            assert streamed == result.texts[0], (pieces, streamed)


async def _finished(pieces: list[str], finish: Finish) -> tuple[str, GenerationResult]:
    async def events() -> Iterator[StreamEvent]:  # type: ignore[misc]
        for piece in pieces:
            yield Delta(0, piece)
        yield GenerationResult(texts=("".join(pieces),), finish_reasons=("stop",))

    streamed, result = "", None
    async for event in finish_stream(events(), finish):  # type: ignore[arg-type]
        if isinstance(event, Delta):
            streamed += event.text
        elif isinstance(event, GenerationResult):
            result = event
    assert result is not None
    return streamed, result


def test_a_failed_alternative_is_passed_on_as_written() -> None:
    async def events():  # type: ignore[no-untyped-def]
        yield Delta(0, "a fox --ar")
        yield GenerationResult(texts=("a fox --ar",), finish_reasons=("error",), error="The connection dropped.")

    async def run() -> list[StreamEvent]:
        return [event async for event in finish_stream(events(), MJ)]

    got = asyncio.run(run())
    assert "".join(e.text for e in got if isinstance(e, Delta)) == "a fox --ar"
    assert got[-1].texts == ("a fox --ar",)  # type: ignore[union-attr]


# -- in a writer's own template -------------------------------------------------------------


def test_a_writers_template_can_declare_a_finish_with_a_variable() -> None:
    template = Template(
        name="caption",
        variables={
            "scene": {"required": True},
            "site": {
                "kind": "choice",
                "options": ["blog", "shop"],
                "default": "blog",
                "finish": {"shop": "\nAlt: {scene}"},
            },
        },
        completion="Caption for {scene}:",
    )
    assert template.finish_for(template.resolve({"scene": "a red kettle", "site": "shop"})) == Finish(
        lines=(("Alt", "a red kettle"),)
    )
    assert not template.finish_for(template.resolve({"scene": "a red kettle"}))
