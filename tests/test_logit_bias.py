"""Phrase bias and bans reach an OpenAI-compatible server as ``logit_bias`` when the profile names a tokenizer.

The server is the fake on 127.0.0.1 (real HTTP, the real ``openai`` SDK); the tokenizer is
the bundled model's, loaded through transformers. The expected token ids are found here
with that tokenizer, spelling by spelling, so the test does not lean on the code it checks.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backends.base import ChatMessage, GenerationParams, GenerationRequest, GenerationResult
from backends.errors import ConfigError
from backends.gpt2 import BUNDLED_MODEL_DIR
from backends.openai_backend import OpenAIBackend
from tests.support.fake_openai_server import FakeOpenAI


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(scope="module")
def ids() -> Any:
    """The bundled tokenizer's single token for a spelling (fails when it takes more than one)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(BUNDLED_MODEL_DIR), local_files_only=True)

    def one(*spellings: str) -> set[str]:
        found = set()
        for spelling in spellings:
            tokens = tokenizer(spelling, add_special_tokens=False)["input_ids"]
            assert len(tokens) == 1, f"{spelling!r} is {tokens} in the bundled tokenizer"
            found.add(str(tokens[0]))
        return found

    return one


def make(fake: FakeOpenAI, **options: Any) -> OpenAIBackend:
    values = {"model": "gpt-test", "mode": "completion", "base_url": fake.url("ok"), "timeout": 5} | options
    return OpenAIBackend.from_options("tuned", values)


def run(backend: OpenAIBackend, request: GenerationRequest) -> GenerationResult:
    async def collect() -> list[Any]:
        try:
            return [event async for event in backend.stream(request)]
        finally:
            await backend.aclose()

    events = asyncio.run(collect())
    assert isinstance(events[-1], GenerationResult)
    return events[-1]


def completion(**params: Any) -> GenerationRequest:
    return GenerationRequest.completion("Once upon a time", GenerationParams(max_new_tokens=8, **params))


def last_body(fake: FakeOpenAI) -> dict[str, Any]:
    return next(seen.body for seen in reversed(fake.requests) if seen.method == "POST")


def test_single_token_bias_and_bans_are_sent_as_logit_bias(fake: FakeOpenAI, ids: Any) -> None:
    backend = make(fake, tokenizer=str(BUNDLED_MODEL_DIR))
    request = completion(
        bias=(("time", 60), ("Time", 60), ("old", -3.5), ("moonlight", 2), ("and the", 4)),
        ban=("she", "and the"),
    )
    result = run(backend, request)
    body = last_body(fake)
    time_ids = ids("time", " time", "Time", " Time")
    old_ids = ids("old", " old", "Old", " Old")
    she_ids = ids("she", " she", "She", " She")
    expected = {token: 100 for token in time_ids} | {token: -3.5 for token in old_ids}
    expected |= {token: -100 for token in she_ids}  # 60 + 60 kept at 100; a ban is -100
    assert body["logit_bias"] == expected
    assert "bias" not in body and "ban" not in body
    assert result.text == "Hello there friend"
    messages = [n.message for n in result.notices]
    assert "Phrase bias for 'moonlight', 'and the' was not applied: they are more than one token, and tuned " in (
        " ".join(messages)
    )
    assert any("cannot keep banned phrases" in m for m in messages), "'and the' is still watched for"
    assert not any("without knowing the model's tokenizer" in m for m in messages)


def test_bans_alone_go_as_minus_100_in_chat_too_with_no_word_about_cutting(fake: FakeOpenAI, ids: Any) -> None:
    backend = make(fake, mode="chat", tokenizer=str(BUNDLED_MODEL_DIR))
    request = GenerationRequest.chat([ChatMessage.of("user", "Say hello.")], GenerationParams(ban=("there", "he")))
    result = run(backend, request)
    body = last_body(fake)
    assert body["logit_bias"] == {t: -100 for t in ids("there", " there", "There", " There", "he", " he", "He", " He")}
    assert result.text == "Hello ", "the text is still watched for every ban (the fake ignores logit_bias)"
    assert [n.message for n in result.notices if "banned phrase" in n.message] == [
        "The text came to a banned phrase in a spelling logit_bias does not reach; it ends just before it."
    ], "no warning before, since logit_bias keeps them out; a word when one slips through"


def test_without_a_tokenizer_nothing_is_sent_and_a_notice_says_how_to_send_it(fake: FakeOpenAI) -> None:
    backend = make(fake)
    result = run(backend, completion(bias=(("time", 5),)))
    assert "logit_bias" not in last_body(fake)
    unsupported = [n.message for n in result.notices if n.kind == "unsupported"]
    assert unsupported == [
        "tuned cannot honour bias without knowing the model's tokenizer; it was not applied. Set tokenizer = "
        "\"NAME\" (the model's Hugging Face name or folder) in profile 'tuned' to send one-token phrases as logit_bias."
    ]


def test_the_tokenizer_is_loaded_only_for_a_request_with_bias_or_ban(fake: FakeOpenAI) -> None:
    backend = make(fake, tokenizer=str(BUNDLED_MODEL_DIR))
    run(backend, completion())
    assert backend._tokenizer is None and "logit_bias" not in last_body(fake)
    run(backend, completion(bias=(("moonlight", 3),)))
    assert backend._tokenizer is not None
    assert "logit_bias" not in last_body(fake), "nothing of one token: no empty map"


def test_a_tokenizer_that_cannot_be_loaded_is_one_clear_line(fake: FakeOpenAI, tmp_path: Path) -> None:
    empty = tmp_path / "no-tokenizer"
    empty.mkdir()
    for name, why in (
        (str(empty), f"the tokenizer '{empty}' could not be loaded ("),
        (str(tmp_path / "missing"), "could not be loaded (no such folder)"),
        ("nobody/no-such-tokenizer", "not in your Hugging Face cache, and downloads are off"),
    ):
        with pytest.raises(ConfigError) as caught:
            run(make(fake, tokenizer=name), completion(bias=(("time", 5),)))
        assert why in caught.value.message and "\n" not in caught.value.message
        assert caught.value.message.startswith("Profile 'tuned': the tokenizer")
    with pytest.raises(ConfigError, match="tokenizer must be text"):
        make(fake, tokenizer=5)
    with pytest.raises(ConfigError, match="tokenizer must name a Hugging Face model or a folder"):
        make(fake, tokenizer=" ")


def test_quillmate_run_reports_a_bad_tokenizer_without_a_traceback(fake: FakeOpenAI, isolated_home: Path) -> None:
    config = isolated_home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f'[backends.remote]\nkind = "openai"\nmodel = "gpt-test"\nmode = "completion"\n'
        f'base_url = "{fake.url("ok")}"\ntokenizer = "nobody/no-such-tokenizer"\n'
    )
    env = {**os.environ, "QUILLMATE_HOME": str(isolated_home), "NO_COLOR": "1"}
    command = [sys.executable, "-m", "assistant", "run", "continue", "--var", "text=Once", "--backend", "remote"]
    plain = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert plain.returncode == 0 and "Hello there friend" in plain.stdout, plain.stderr
    biased = subprocess.run([*command, "--bias", "time=5"], env=env, capture_output=True, text=True, timeout=120)
    assert biased.returncode != 0 and "Traceback" not in biased.stderr
    assert "the tokenizer 'nobody/no-such-tokenizer' could not be loaded" in biased.stderr
