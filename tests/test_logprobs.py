"""Word alternatives (the ``logprobs`` setting): the bundled model and a loopback OpenAI server."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.alternatives import choices_at, offsets, regenerate_from
from backends.base import (
    ChatMessage,
    GenerationParams,
    GenerationRequest,
    GenerationResult,
    Notice,
    StreamEvent,
    TextPart,
    TokenAlternatives,
)
from backends.errors import UsageError
from backends.gpt2 import GPT2Backend, load_model
from backends.openai_backend import OpenAIBackend
from backends.token_alternatives import fit_to_text
from tests.support.fake_openai_server import FakeOpenAI

PROMPT = "The sea at night"


async def run(backend: object, request: GenerationRequest) -> tuple[list[StreamEvent], GenerationResult]:
    events = [event async for event in backend.stream(request)]  # type: ignore[attr-defined]
    assert isinstance(events[-1], GenerationResult)
    return events, events[-1]


def local(**params: object) -> GenerationRequest:
    base = GenerationParams(max_new_tokens=14, temperature=0)
    return GenerationRequest(prompt=(TextPart(PROMPT),), params=base.with_overrides(**params))


@pytest.fixture(scope="module")
def bundled() -> GPT2Backend:
    return GPT2Backend("local", "bundled")


# -- the local model -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [{"temperature": 0}, {"temperature": 0.9, "seed": 7, "num_alternatives": 2}, {"temperature": 1.1, "seed": 3}],
    ids=["greedy", "seeded-two", "seeded-hot"],
)
async def test_asking_for_alternatives_does_not_change_the_text(bundled: GPT2Backend, params: dict) -> None:
    _, plain = await run(bundled, local(**params))
    _, asked = await run(bundled, local(logprobs=4, **params))
    assert asked.texts == plain.texts
    assert plain.logprobs == ()
    assert len(asked.logprobs) == len(asked.texts)
    for text, tokens in zip(asked.texts, asked.logprobs, strict=True):
        assert "".join(t.token for t in tokens) == text
        for token in tokens:
            assert len(token.top) == 4
            assert [lp for _, lp in token.top] == sorted((lp for _, lp in token.top), reverse=True)
            assert token.logprob <= 0 and math.isfinite(token.logprob)


async def test_greedy_alternatives_match_a_forward_pass_on_the_same_prefix(bundled: GPT2Backend) -> None:
    import torch

    _, result = await run(bundled, local(logprobs=5))
    tokens = result.logprobs[0]
    loaded = load_model("bundled")
    tokenizer = loaded.tokenizer
    ids = tokenizer(PROMPT, add_special_tokens=False)["input_ids"]
    written = tokenizer(result.text, add_special_tokens=False)["input_ids"]
    assert len(written) == len(tokens)
    with torch.inference_mode():
        for step, entry in enumerate(tokens):
            logits = loaded.model(input_ids=torch.tensor([ids + written[:step]])).logits[0, -1].float()
            if step == 0:  # at least one token is written: end-of-text is not a choice there
                logits[loaded.eos_token_id] = -math.inf
            logprobs = torch.log_softmax(logits, dim=-1)
            values, top_ids = torch.topk(logprobs, 5)
            expected = [(tokenizer.decode([i]), float(v)) for i, v in zip(top_ids.tolist(), values, strict=True)]
            assert [text for text, _ in entry.top] == [text for text, _ in expected], step
            assert [lp for _, lp in entry.top] == pytest.approx([lp for _, lp in expected], abs=1e-4)
            # Greedy: the written token is the likeliest one.
            assert entry.token == expected[0][0] and entry.logprob == pytest.approx(expected[0][1], abs=1e-4)


async def test_alternatives_end_where_a_stop_sequence_ends_the_text(bundled: GPT2Backend) -> None:
    _, full = await run(bundled, local(logprobs=2))
    stop = full.text.strip().split()[2]
    _, cut = await run(bundled, local(logprobs=2, stop=(stop,)))
    assert stop not in cut.text and cut.text
    assert "".join(t.token for t in cut.logprobs[0]) == cut.text
    assert len(cut.logprobs[0]) < len(full.logprobs[0])


async def test_banned_words_are_never_offered_as_alternatives(bundled: GPT2Backend) -> None:
    _, free = await run(bundled, local(logprobs=5))
    offered = {text.strip().lower() for entry in free.logprobs[0] for text, _ in entry.top if text.strip().isalpha()}
    word = sorted(offered)[0]
    _, banned = await run(bundled, local(logprobs=5, ban=(word,)))
    assert all(text.strip().lower() != word for entry in banned.logprobs[0] for text, _ in entry.top)


async def test_beam_search_says_it_has_no_alternatives(bundled: GPT2Backend) -> None:
    events, result = await run(bundled, local(logprobs=3, num_beams=2, max_new_tokens=6))
    assert result.text and result.logprobs == ()
    assert any(isinstance(e, Notice) and "beam search" in e.message for e in events)


def test_the_setting_is_checked_once_for_every_front_end() -> None:
    from backends.errors import InvalidParameters

    with pytest.raises(InvalidParameters, match="logprobs"):
        GenerationParams(logprobs=21).validated()
    assert GenerationParams().logprobs == 0


def test_fit_to_text_cuts_the_last_token_to_the_text() -> None:
    tokens = [TokenAlternatives(" the", -1.0), TokenAlternatives(" sea", -2.0), TokenAlternatives(" at", -3.0)]
    assert [t.token for t in fit_to_text(tokens, " the se")] == [" the", " se"]
    assert fit_to_text(tokens, "") == ()


# -- an OpenAI-compatible server ---------------------------------------------------------------


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def remote(fake: FakeOpenAI, scenario: str, mode: str = "chat") -> OpenAIBackend:
    options = {"model": "gpt-test", "base_url": fake.url(scenario), "timeout": 5, "mode": mode, "context_window": 2048}
    return OpenAIBackend.from_options("remote", options)


def remote_request(mode: str, **params: object) -> GenerationRequest:
    base = GenerationParams(max_new_tokens=8, temperature=0.7).with_overrides(**params)
    if mode == "chat":
        return GenerationRequest.chat([ChatMessage.of("user", "Say hello.")], base)
    return GenerationRequest.completion("Once upon a time", base)


@pytest.mark.parametrize("mode", ["chat", "completion"])
async def test_a_server_with_logprobs_gives_alternatives(fake: FakeOpenAI, mode: str) -> None:
    events, result = await run(remote(fake, "logprobs", mode), remote_request(mode, logprobs=2, num_alternatives=2))
    body = fake.requests[-1].body
    if mode == "chat":
        assert (body["logprobs"], body["top_logprobs"]) == (True, 2)
    else:
        assert body["logprobs"] == 2 and "top_logprobs" not in body
    assert result.texts == ("Hello there friend", "Hello there friend")
    for tokens in result.logprobs:
        assert [t.token for t in tokens] == ["Hello", " there", " friend"]
        assert tokens[1] == TokenAlternatives(" there", -0.25, ((" there", -0.25), (" else", -1.75)))
    assert not any(isinstance(e, Notice) and "logprobs" in e.message for e in events)


@pytest.mark.parametrize("mode", ["chat", "completion"])
async def test_a_server_without_logprobs_says_so(fake: FakeOpenAI, mode: str) -> None:
    events, result = await run(remote(fake, "ok", mode), remote_request(mode, logprobs=3))
    assert result.text == "Hello there friend" and result.logprobs == ((),)
    notices = [e.message for e in events if isinstance(e, Notice)]
    assert any("gave no word alternatives (logprobs)" in m for m in notices)
    assert any("gave no word alternatives" in n.message for n in result.notices)


async def test_not_asking_sends_nothing_about_logprobs(fake: FakeOpenAI) -> None:
    _, result = await run(remote(fake, "logprobs"), remote_request("chat"))
    assert "logprobs" not in fake.requests[-1].body and result.logprobs == ()


async def test_a_stop_applied_here_cuts_the_remote_alternatives(fake: FakeOpenAI) -> None:
    request = remote_request("chat", logprobs=1, stop=("x1", "x2", "x3", "x4", "ere"))
    _, result = await run(remote(fake, "logprobs"), request)
    assert result.text == "Hello th"
    assert [t.token for t in result.logprobs[0]] == ["Hello", " th"]


# -- front ends: the CLI, the Python API, the core's regenerate-from-here ------------------------


def test_run_json_adds_each_alternatives_tokens(isolated_home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "QUILLMATE_"))}
    env.update(QUILLMATE_HOME=str(isolated_home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    args = [
        "run",
        "continue",
        "--var",
        f"text={PROMPT}",
        "--model",
        "bundled",
        "--max-tokens",
        "8",
        "--seed",
        "4",
        "-n",
        "2",
        "--json",
    ]
    plain = subprocess.run([sys.executable, "-m", "assistant", *args], capture_output=True, env=env, timeout=180)
    out = subprocess.run(
        [sys.executable, "-m", "assistant", *args, "--logprobs", "3"], capture_output=True, env=env, timeout=180
    )
    assert out.returncode == 0, out.stderr.decode()
    records = [json.loads(line) for line in out.stdout.decode().splitlines()]
    assert [r["text"] for r in records] == [json.loads(line)["text"] for line in plain.stdout.decode().splitlines()]
    assert all("logprobs" not in json.loads(line) for line in plain.stdout.decode().splitlines())
    for record in records:
        assert "".join(t["token"] for t in record["logprobs"]) == record["text"]
        assert all(len(t["top_logprobs"]) == 3 and t["logprob"] <= 0 for t in record["logprobs"])
    bad = subprocess.run(
        [sys.executable, "-m", "assistant", *args, "--logprobs", "50"], capture_output=True, env=env, timeout=180
    )
    assert bad.returncode != 0 and "Traceback" not in bad.stderr.decode()
    assert "logprobs" in bad.stderr.decode() and "0 to 20" in bad.stderr.decode()


def test_the_python_api_gives_result_logprobs() -> None:
    from assistant import Assistant

    with Assistant("local", model="bundled") as helper:
        result = helper.run("continue", params={"max_new_tokens": 8, "temperature": 0, "logprobs": 2}, text=PROMPT)
    assert result.logprobs and "".join(t.token for t in result.logprobs[0]) == result.text
    assert isinstance(result.logprobs[0][0], TokenAlternatives)


def test_choices_at_names_the_token_under_an_offset() -> None:
    tokens = (TokenAlternatives(" the", -0.1, ((" the", -0.1), (" a", -2.3))), TokenAlternatives(" sea", -1.0))
    here = choices_at(tokens, 5)  # inside " sea"
    assert (here.index, here.start, here.end, here.word) == (1, 4, 8, " sea")
    first = choices_at(tokens, 0)
    assert first.options[0] == (" the", pytest.approx(math.exp(-0.1), abs=1e-6))
    assert choices_at(tokens, 8).index == 1  # the very end: the last token
    with pytest.raises(UsageError, match="outside"):
        choices_at(tokens, 9)
    with pytest.raises(UsageError, match="no word alternatives"):
        choices_at((), 0)


async def test_regenerate_from_keeps_the_text_up_to_the_chosen_word() -> None:
    from assistant import Assistant

    helper = Assistant("local", model="bundled")
    try:
        params = {"max_new_tokens": 12, "temperature": 0, "logprobs": 4}
        first = await helper.arun("continue", params=params, text=PROMPT)
        tokens = first.logprobs[0]
        starts = offsets(tokens)
        pick = next(i for i in range(2, len(tokens)) if tokens[i].token.strip())
        choice = next(text for text, _ in tokens[pick].top if text != tokens[pick].token)
        again = await regenerate_from(helper, PROMPT, first.text, tokens, starts[pick] + 1, choice, params=params)
        assert again.kept == first.text[: starts[pick]]
        assert again.text.startswith(again.kept + choice) and again.start == starts[pick]
        assert again.text != first.text
        assert "".join(t.token for t in again.tokens) == again.text
        assert again.tokens[pick].logprob == dict(tokens[pick].top)[choice]
        # The rest is what the model writes after the kept text and the chosen word.
        direct = await helper.arun("continue", params=params, text=PROMPT + again.kept + choice)
        assert again.text == again.kept + choice + direct.text
    finally:
        await helper.aclose()


# -- quillmate serve ---------------------------------------------------------------------------


def test_serve_returns_openai_shaped_logprobs(request: pytest.FixtureRequest, bundled_model_dir: Path) -> None:
    import httpx

    from tests.support.serve_harness import serve_model

    served = serve_model(request, bundled_model_dir)
    base = {"model": "local", "max_tokens": 6, "temperature": 0}
    with httpx.Client(base_url=served.url, timeout=120) as http:
        chat = http.post(
            "/chat/completions",
            json={**base, "messages": [{"role": "user", "content": PROMPT}], "logprobs": True, "top_logprobs": 3},
        ).json()
        content = chat["choices"][0]["logprobs"]["content"]
        assert "".join(t["token"] for t in content) == chat["choices"][0]["message"]["content"]
        assert all(len(t["top_logprobs"]) == 3 and t["logprob"] == t["top_logprobs"][0]["logprob"] for t in content)
        assert content[0]["bytes"] == list(content[0]["token"].encode())

        done = http.post("/completions", json={**base, "prompt": PROMPT, "logprobs": 2}).json()["choices"][0]
        shown = done["logprobs"]
        assert "".join(shown["tokens"]) == done["text"]
        assert len(shown["token_logprobs"]) == len(shown["tokens"]) == len(shown["top_logprobs"])
        assert all(len(top) == 2 for top in shown["top_logprobs"])
        assert shown["text_offset"][0] == len(PROMPT)
        assert shown["text_offset"][1] == len(PROMPT) + len(shown["tokens"][0])

        with http.stream(
            "POST", "/completions", json={**base, "prompt": PROMPT, "logprobs": 2, "stream": True}
        ) as response:
            events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: {")]
        streamed = [c["logprobs"] for e in events for c in e["choices"] if c.get("logprobs")]
        # The finishing chunk carries the choice's tokens (a reused prompt cache may move the 6th decimal).
        assert len(streamed) == 1 and streamed[0]["tokens"] == shown["tokens"]
        assert streamed[0]["text_offset"] == shown["text_offset"]
        assert streamed[0]["token_logprobs"] == pytest.approx(shown["token_logprobs"], abs=1e-4)

        plain = http.post("/completions", json={**base, "prompt": PROMPT}).json()
        assert plain["choices"][0]["logprobs"] is None and plain["choices"][0]["text"] == done["text"]
        bad = http.post(
            "/chat/completions", json={**base, "messages": [{"role": "user", "content": "x"}], "top_logprobs": 2}
        )
        assert bad.status_code == 400 and "needs 'logprobs'" in bad.json()["error"]["message"]
        assert bad.json()["error"]["param"] == "top_logprobs"


def test_tidied_text_keeps_its_tokens_in_line() -> None:
    from assistant.core import tidy_result

    tokens = (
        TokenAlternatives("\n", -0.5),
        TokenAlternatives(" Gulls", -1.0),
        TokenAlternatives(" cry", -2.0),
        TokenAlternatives("\n", -0.1),
    )
    raw = GenerationResult(texts=("\n Gulls cry\n",), finish_reasons=("stop",), logprobs=(tokens,))
    tidied = tidy_result("selection", raw)
    assert tidied.text == "Gulls cry"
    assert [t.token for t in tidied.logprobs[0]] == ["Gulls", " cry"]
    assert tidied.logprobs[0][0].logprob == -1.0
