"""Fill-in-the-middle: the text after the cursor reaches a model that can read it, and only such a model.

A copy of the bundled model with the three FIM tokens added (``fim_model_dir``) is a real
transformers model, just never trained for the layout, so these tests check the exact tokens
it is given rather than the quality of what it writes. A tiny GPT-2 built here has no FIM
tokens, whatever the bundled model gains later, and stands for every model that cannot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from assistant.config import load_config
from assistant.core import Assistant
from backends import gpt2
from backends.base import ChatMessage, GenerationParams, GenerationRequest, TextPart
from backends.errors import ConfigError, UsageError
from backends.fim import FIM_SPELLINGS, SUFFIX_SHARE, find_fim_tokens, resume_stop, with_resume_stop
from backends.gpt2 import GPT2Backend
from backends.openai_backend import OpenAIBackend
from backends.token_mask import TokenMask
from tests.support.fake_openai_server import FakeOpenAI
from tests.support.fim_model import PromptSpy, copy_with_fim_tokens, tokens
from tests.support.streams import run

pytestmark = pytest.mark.slow


BEFORE = "Mara climbed the stairs to the lamp room. The wind pressed at the glass,"
AFTER = " and when the light came round again the ship was gone."
CANNOT_SEE = "cannot see the text after the cursor"


@pytest.fixture
def fim_backend(fim_model_dir: Path) -> GPT2Backend:
    backend = GPT2Backend("local", model=str(fim_model_dir), device="cpu")
    backend._load_sync().prefix_cache.clear()
    return backend


# -- finding the tokens --------------------------------------------------------------------------


def test_either_spelling_of_the_tokens_is_found_and_a_model_without_them_has_none(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    from transformers import AutoTokenizer

    plain = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert find_fim_tokens(plain.get_vocab()) is None
    for spelling in FIM_SPELLINGS:
        folder = copy_with_fim_tokens(tiny_model_dir, tmp_path / spelling[0].strip("<|>"), spelling)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        found = find_fim_tokens(tokenizer.get_vocab(), len(tokenizer))
        assert found is not None
        assert found.ids == tuple(tokenizer.convert_tokens_to_ids(list(spelling)))
        # Tokens the tokenizer has but the model's embedding does not cannot be read by the model.
        assert find_fim_tokens(tokenizer.get_vocab(), min(found.ids)) is None


# -- the local model -----------------------------------------------------------------------------


async def test_the_continue_template_reaches_the_model_as_prefix_suffix_middle(
    fim_backend: GPT2Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = fim_backend._load_sync()
    assert loaded.fim is not None
    spy = PromptSpy(monkeypatch)
    helper = Assistant(fim_backend, config=load_config())
    prepared = helper.prepare(
        "continue", {"text": BEFORE, "title": "The Lamp"}, {"max_new_tokens": 12, "seed": 3}, suffix=AFTER
    )
    assert prepared.request.suffix == AFTER
    notices, result = await run(fim_backend, prepared.request)

    tokenizer = loaded.tokenizer
    prefix, suffix, middle = (tokenizer.convert_tokens_to_ids(t) for t in FIM_SPELLINGS[0])
    header = "Story: The Lamp\n\n"
    expected = [prefix, *tokens(loaded, header + BEFORE), suffix, *tokens(loaded, AFTER), middle]
    assert spy.ids == expected
    assert result.usage.prompt_tokens == len(expected)
    assert not [n for n in notices if CANNOT_SEE in n.message]
    assert result.text and result.usage.completion_tokens > 0
    assert result.finish_reason in ("stop", "length")
    kwargs = gpt2._request_kwargs(loaded, prepared.request.params)
    assert kwargs["eos_token_id"] == tokenizer.eos_token_id, "the middle ends at end-of-text"
    masks = [p for p in kwargs["logits_processor"] if isinstance(p, TokenMask)]
    assert set(masks[0].always) == {prefix, suffix, middle}, "the layout's markers are never written"


async def test_a_model_trained_suffix_first_gets_its_own_layout(
    fim_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = copy_with_fim_tokens(fim_model_dir, tmp_path / "spm", layout="spm")
    backend = GPT2Backend("local", model=str(folder), device="cpu")
    declared = gpt2.declared_fim_tokens(str(folder))
    assert declared is not None and declared.layout == "spm", "known from the files, before loading"
    loaded = backend._load_sync()
    assert loaded.fim is not None and loaded.fim.layout == "spm"
    spy = PromptSpy(monkeypatch)
    request = GenerationRequest.completion(BEFORE, GenerationParams(max_new_tokens=4), suffix=AFTER)
    _, result = await run(backend, request)
    prefix, suffix, middle = loaded.fim.ids
    # The text before the cursor runs straight into what the model writes.
    assert spy.ids == [prefix, suffix, *tokens(loaded, AFTER), middle, *tokens(loaded, BEFORE)]
    assert result.usage.prompt_tokens == len(spy.ids)


async def test_several_alternatives_reach_the_model_in_the_same_layout(
    fim_backend: GPT2Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = fim_backend._load_sync()
    assert loaded.fim is not None
    seen: list[list[list[int]]] = []
    real = loaded.model.generate

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["input_ids"].tolist())
        return real(*args, **kwargs)

    monkeypatch.setattr(loaded.model, "generate", spy)
    params = GenerationParams(max_new_tokens=6, num_alternatives=2, seed=4)
    _, result = await run(fim_backend, GenerationRequest.completion(BEFORE, params, suffix=AFTER))
    expected = loaded.fim.prompt_ids(tokens(loaded, BEFORE), tokens(loaded, AFTER))
    assert seen and seen[-1] == [expected, expected]
    assert len(result.texts) == 2


async def test_a_long_draft_keeps_the_end_before_the_cursor_and_the_start_after_it(
    fim_backend: GPT2Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = fim_backend._load_sync()
    spy = PromptSpy(monkeypatch)
    many = loaded.context_window // 2  # each sentence is several tokens: both sides are too long to fit
    before = "The tide went out. " * many + "She lit the lamp"
    after = " and the rooks rose from the cliff. " + "The sea was grey. " * many
    params = GenerationParams(max_new_tokens=40, temperature=0)
    parts = (TextPart("Story: The Lamp\n\n"), TextPart(before, elastic=True))
    notices, _ = await run(fim_backend, GenerationRequest.completion(parts, params, suffix=after))

    ids = spy.ids
    assert loaded.fim is not None
    room = loaded.context_window - 40
    assert len(ids) <= room
    assert ids[0] == loaded.fim.prefix and ids[-1] == loaded.fim.middle
    cut = ids.index(loaded.fim.suffix)
    kept_before = loaded.tokenizer.decode(ids[1:cut])
    kept_after = loaded.tokenizer.decode(ids[cut + 1 : -1])
    assert kept_before.startswith("Story: The Lamp\n\n"), "the header is kept whole"
    assert kept_before.endswith("She lit the lamp"), "the text just before the cursor is kept"
    assert after.startswith(kept_after) and kept_after.startswith(" and the rooks rose"), "its start is kept"
    assert 0 < len(ids) - cut - 2 <= room // SUFFIX_SHARE
    assert len(ids) > room * 3 // 4, "the rest of the room goes to the text before the cursor"
    assert any(n.kind == "truncated" for n in notices)


async def test_the_prefix_cache_reuses_the_fim_prompt_and_changes_nothing(
    fim_backend: GPT2Backend, fim_model_dir: Path
) -> None:
    loaded = fim_backend._load_sync()
    plain = GPT2Backend("plain", model=str(fim_model_dir), device="cpu", prefix_cache=False)
    params = GenerationParams(max_new_tokens=8, temperature=0)
    header = TextPart("Story: The Lamp\n\n")
    reused: list[int] = []
    for addition in ("", " and below it"):
        request = GenerationRequest.completion(
            (header, TextPart(BEFORE + addition, elastic=True)), params, suffix=AFTER
        )
        _, result = await run(fim_backend, request)
        reused.append(loaded.prefix_cache.stats.last_reused)
        _, same = await run(plain, request)
        assert result.texts == same.texts
    # The second prompt starts as the first did, up to the text the writer added before the cursor.
    assert reused[1] >= 1 + len(tokens(loaded, header.text + BEFORE)) - 2, reused


def test_the_first_words_after_the_cursor_end_a_filled_gap() -> None:
    assert resume_stop(AFTER) == "and when the light"
    assert resume_stop("\n\nChapter Two\nThe tide was") == "Chapter Two\nThe tide", "inner line breaks kept"
    assert resume_stop(" the end.") is None, "too few words to tell apart from the model's own"
    params = with_resume_stop(GenerationParams(stop=("\n\n",)), AFTER)
    assert params.stop == ("\n\n", "and when the light")
    assert with_resume_stop(params, AFTER) == params


async def test_a_model_that_writes_on_into_the_text_after_stops_before_it(fim_backend: GPT2Backend) -> None:
    # A bias pushes the model to write the writer's next words itself, as a model that misses its
    # end-of-text token would: the gap must end before them, so they are not there twice.
    params = GenerationParams(max_new_tokens=24, temperature=0, bias=(("and when the light came", 30.0),))
    request = GenerationRequest.completion(BEFORE, params, suffix=AFTER)
    _, result = await run(fim_backend, request)
    assert "and when the light" not in result.text and result.finish_reason == "stop", result.text
    _, alone = await run(fim_backend, GenerationRequest.completion(BEFORE, params))
    assert "and when the light" in alone.text, "without the text after, nothing stops the phrase"


async def test_a_model_without_the_tokens_writes_from_the_prefix_and_says_so(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = GPT2Backend("local", model=str(tiny_model_dir), device="cpu")
    loaded = backend._load_sync()
    assert loaded.fim is None
    spy = PromptSpy(monkeypatch)
    params = GenerationParams(max_new_tokens=4, seed=1)
    notices, result = await run(backend, GenerationRequest.completion(BEFORE, params, suffix=AFTER))
    assert spy.ids == tokens(loaded, BEFORE)
    said = [n for n in notices if CANNOT_SEE in n.message]
    assert len(said) == 1 and "\n" not in said[0].message and said[0] in result.notices
    assert result.usage.completion_tokens > 0
    # Blank space after the cursor is nothing to see: no notice.
    notices, _ = await run(backend, GenerationRequest.completion(BEFORE, params, suffix="\n\n"))
    assert not [n for n in notices if CANNOT_SEE in n.message]


async def test_a_chat_sent_as_a_transcript_cannot_carry_the_text_after(fim_backend: GPT2Backend) -> None:
    request = GenerationRequest(
        params=GenerationParams(max_new_tokens=2, seed=1), messages=(ChatMessage.of("user", BEFORE),), suffix=AFTER
    )
    notices, _ = await run(fim_backend, request)
    assert [n for n in notices if CANNOT_SEE in n.message]


def test_only_templates_that_write_at_the_cursor_take_the_text_after(fim_backend: GPT2Backend) -> None:
    helper = Assistant(fim_backend, config=load_config())
    with pytest.raises(UsageError, match="write at the cursor"):
        helper.prepare("rewrite", {"passage": BEFORE, "instruction": "shorter"}, suffix=AFTER)
    assert helper.prepare("continue", {"text": BEFORE}).request.suffix == ""


def test_the_python_api_runs_a_continuation_with_the_text_after(
    fim_backend: GPT2Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = fim_backend._load_sync()
    spy = PromptSpy(monkeypatch)
    with Assistant(fim_backend, config=load_config()) as helper:
        result = helper.run("continue", {"max_new_tokens": 6, "seed": 2}, suffix=AFTER, text=BEFORE)
    assert result.usage.completion_tokens > 0
    assert loaded.fim is not None and loaded.fim.suffix in spy.ids


# -- OpenAI-compatible servers ---------------------------------------------------------------------


@pytest.fixture
def fake() -> Any:
    with FakeOpenAI() as server:
        yield server


async def test_a_completion_profile_that_declares_it_sends_the_suffix(fake: FakeOpenAI) -> None:
    backend = OpenAIBackend(
        "srv", "base-model", base_url=fake.url("ok"), mode="completion", context_window=400, send_suffix=True
    )
    long_after = AFTER + " The keeper wrote it in the log." * 100
    request = GenerationRequest.completion(BEFORE, GenerationParams(max_new_tokens=16), suffix=long_after)
    notices, result = await run(backend, request)
    body = fake.requests[-1].body
    assert body["prompt"] == BEFORE
    assert long_after.startswith(body["suffix"]) and body["suffix"].startswith(AFTER)
    assert backend.count_tokens(body["suffix"]) <= (400 - 16) // SUFFIX_SHARE
    assert not [n for n in notices if CANNOT_SEE in n.message]
    assert result.text == "Hello there friend"
    await backend.aclose()


async def test_other_profiles_send_the_prefix_alone_and_say_so(fake: FakeOpenAI) -> None:
    request = GenerationRequest.completion(BEFORE, GenerationParams(max_new_tokens=8), suffix=AFTER)
    for backend in (
        OpenAIBackend("srv", "base-model", base_url=fake.url("ok"), mode="completion", context_window=400),
        OpenAIBackend("chat", "gpt-4o-mini", base_url=fake.url("ok")),
    ):
        notices, _ = await run(backend, request)
        body = fake.requests[-1].body
        assert "suffix" not in body
        assert AFTER.strip() not in str(body), "the text after the cursor is not sent at all"
        assert [n for n in notices if CANNOT_SEE in n.message]
        await backend.aclose()


async def test_asking_again_after_a_banned_phrase_keeps_the_suffix(fake: FakeOpenAI) -> None:
    backend = OpenAIBackend(
        "srv", "base-model", base_url=fake.url("ban_once"), mode="completion", context_window=400, send_suffix=True
    )
    params = GenerationParams(max_new_tokens=16, ban=("and the",))
    await run(backend, GenerationRequest.completion(BEFORE, params, suffix=AFTER))
    texts = [seen.body for seen in fake.requests if isinstance(seen.body, dict) and "prompt" in seen.body]
    assert len(texts) >= 2 and all(body["suffix"] == AFTER for body in texts)
    await backend.aclose()


def test_send_suffix_is_for_completion_profiles() -> None:
    with pytest.raises(ConfigError, match="send_suffix"):
        OpenAIBackend.from_options("c", {"kind": "openai", "model": "gpt-4o-mini", "send_suffix": True})
    with pytest.raises(ConfigError, match="true or false"):
        OpenAIBackend.from_options("c", {"kind": "openai", "model": "gpt2", "mode": "completion", "send_suffix": "yes"})
    made = OpenAIBackend.from_options("c", {"kind": "openai", "model": "gpt2", "send_suffix": True})
    assert made.send_suffix and made.mode == "completion"
