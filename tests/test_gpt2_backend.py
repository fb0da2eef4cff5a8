"""The local GPT-2 backend's own behaviour: which model it picks, loading, caching, errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from backends.base import GenerationParams, GenerationRequest, GenerationResult, TextPart
from backends.errors import ConfigError, ModelNotFound
from backends.gpt2 import BUNDLED_MODEL_DIR, GPT2Backend, load_model, resolve_model, unload_all
from backends.registry import create_backend
from tests.support.streams import run


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache / "hub"))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache / "hub"))
    return cache / "hub"


def put_in_hub_cache(hub: Path, repo: str, model_dir: Path) -> None:
    """Lay a model folder out the way huggingface_hub caches a download."""
    repo_dir = hub / f"models--{repo}"
    snapshot = repo_dir / "snapshots" / "0123456789abcdef"
    shutil.copytree(model_dir, snapshot)
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text("0123456789abcdef")


def test_auto_uses_the_bundled_model_when_gpt2_is_not_cached(hub_cache: Path) -> None:
    target, notice = resolve_model("auto")
    assert Path(target) == BUNDLED_MODEL_DIR
    assert notice is not None and "bundled offline model" in notice.message


async def test_auto_prefers_gpt2_from_the_hub_cache(hub_cache: Path, tiny_model_dir: Path) -> None:
    put_in_hub_cache(hub_cache, "gpt2", tiny_model_dir)
    target, notice = resolve_model("auto")
    assert target == "gpt2"
    assert notice is not None and "Hugging Face cache" in notice.message
    backend = GPT2Backend("local", model="auto")
    notices, result = await run(backend, GenerationRequest.completion("The sea", GenerationParams(max_new_tokens=4)))
    assert backend.info().model == "gpt2"
    assert any("Hugging Face cache" in n.message for n in notices)
    assert result.usage.completion_tokens > 0
    unload_all()


def test_a_model_named_explicitly_is_never_replaced(hub_cache: Path) -> None:
    with pytest.raises(ModelNotFound) as caught:
        load_model("gpt2-medium")
    message = str(caught.value)
    assert "gpt2-medium" in message and "hf download gpt2-medium" in message and "--model bundled" in message


def test_a_folder_that_is_not_a_model_says_so(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(ModelNotFound) as caught:
        load_model(str(tmp_path))
    assert str(tmp_path) in str(caught.value)


def test_models_are_loaded_once_and_shared(tiny_model_dir: Path) -> None:
    first = load_model(str(tiny_model_dir))
    second = load_model(str(tiny_model_dir))
    assert first is second
    assert first.device == "cpu" and first.dtype == "float32" and first.context_window == 1024


def test_dtype_and_device_can_be_set(tiny_model_dir: Path) -> None:
    loaded = load_model(str(tiny_model_dir), device="cpu", dtype="bfloat16")
    assert loaded.dtype == "bfloat16"
    with pytest.raises(ConfigError):
        load_model(str(tiny_model_dir), device="cpu", dtype="float8")


def test_profiles_reject_unknown_settings() -> None:
    with pytest.raises(ConfigError) as caught:
        create_backend("local", "gpt2", {"modle": "gpt2"})
    assert "modle" in str(caught.value)


async def test_bundled_model_writes_a_poem_reproducibly() -> None:
    backend = GPT2Backend("local", model="bundled")
    request = GenerationRequest.completion(
        "Poem: The Lantern\nForm: haiku\n\n", GenerationParams(max_new_tokens=30, seed=11)
    )
    _, first = await run(backend, request)
    _, second = await run(backend, request)
    assert first.text == second.text
    assert len(first.text.split()) >= 3, first.text
    assert backend.info().model == "bundled"
    assert backend.capabilities.context_window == 512, "the bundled model was trained on windows of 512 tokens"


async def test_a_continuation_never_comes_back_empty() -> None:
    # After "The end." the bundled model puts end-of-text first about one time in four.
    backend = GPT2Backend("local", model="bundled")
    request = GenerationRequest.completion(
        "The end.", GenerationParams(max_new_tokens=4, temperature=1.0, num_alternatives=12, seed=3)
    )
    _, result = await run(backend, request)
    assert len(result.texts) == 12
    assert all(text.strip() for text in result.texts), result.texts


async def test_context_keeps_fixed_parts_and_the_latest_text(tiny_model_dir: Path) -> None:
    backend = GPT2Backend("local", model=str(tiny_model_dir))
    notes = "Notes: the lantern can speak.\n\n"
    story = "once " * 5000 + "THE END"
    prompt = (TextPart(notes), TextPart(story, elastic=True))
    seen: list[str] = []
    original = backend._generate

    def spy(loaded, text, *args):  # type: ignore[no-untyped-def]
        seen.append(text)
        return original(loaded, text, *args)

    backend._generate = spy  # type: ignore[method-assign]
    notices, result = await run(backend, GenerationRequest.completion(prompt, GenerationParams(max_new_tokens=50)))
    assert seen[0].startswith(notes), "instructions and notes are kept whole"
    assert seen[0].endswith("THE END"), "the most recent text is kept"
    assert any(n.kind == "truncated" for n in notices)
    assert result.usage.prompt_tokens <= 1024 - 50


async def test_max_tokens_beyond_the_context_is_lowered_with_a_notice(tiny_model_dir: Path) -> None:
    backend = GPT2Backend("local", model=str(tiny_model_dir))
    notices, result = await run(backend, GenerationRequest.completion("x", GenerationParams(max_new_tokens=5000)))
    assert any(n.kind == "adjusted" and "5000" in n.message for n in notices)
    assert result.usage.completion_tokens <= 1024


def test_readme_first_command_writes_a_poem_offline(isolated_home: Path, hub_cache: Path) -> None:
    """The Quickstart's poem, on a machine with no network and no GPT-2 download."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "QUILLMATE_"))}
    env.update(QUILLMATE_HOME=str(isolated_home), HF_HUB_OFFLINE="1", HF_HOME=str(hub_cache.parent))
    out = subprocess.run(
        # --verbose: notes reach stderr only in a terminal otherwise (stdout is a pipe here).
        [
            sys.executable,
            "-m",
            "assistant",
            "run",
            "poem",
            "--var",
            "topic=the sea at night",
            "--var",
            "form=haiku",
            "--verbose",
        ],
        capture_output=True,
        env=env,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 0, out.stderr.decode()
    assert len(out.stdout.decode().split()) >= 3
    assert "bundled offline model" in out.stderr.decode()


async def test_greedy_alternatives_are_identical_with_a_notice(tiny_model_dir: Path) -> None:
    backend = GPT2Backend("local", model=str(tiny_model_dir))
    request = GenerationRequest.completion(
        "The sea", GenerationParams(max_new_tokens=6, temperature=0, num_alternatives=3)
    )
    notices, result = await run(backend, request)
    assert len(result.texts) == 3 and len(set(result.texts)) == 1 and result.texts[0]
    assert any("temperature 0" in n.message for n in notices)


def test_an_unreachable_hub_gives_a_clear_message(hub_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants as constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(ModelNotFound) as caught:
        load_model("distilgpt2")
    message = str(caught.value)
    assert "distilgpt2" in message and "could not be downloaded" in message and "hf download distilgpt2" in message


async def test_streamed_text_is_exactly_what_the_model_wrote() -> None:
    # The pieces are decoded a few tokens at a time; together they must equal the whole decode,
    # curly quotes and accents included. A bias towards the curly apostrophe makes sure the model
    # writes some, whatever an edition's habits; plain transformers gets the same bias.
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from backends.steering import sequence_bias

    prompt = "“Où est-il?” she asked the old ferryman. “He’s"
    bias = (("’", 4.0),)
    backend = GPT2Backend("local", model="bundled")
    deltas: list[str] = []
    result = None
    async for event in backend.stream(
        GenerationRequest.completion(prompt, GenerationParams(max_new_tokens=150, temperature=0, bias=bias))
    ):
        if isinstance(event, GenerationResult):
            result = event
        elif hasattr(event, "index"):
            deltas.append(event.text)
    assert result is not None
    tokenizer = AutoTokenizer.from_pretrained(BUNDLED_MODEL_DIR)
    model = AutoModelForCausalLM.from_pretrained(BUNDLED_MODEL_DIR, dtype=torch.float32)  # as the backend on a CPU
    ids = tokenizer(prompt, return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(
            **ids,
            do_sample=False,
            max_new_tokens=150,
            min_new_tokens=1,
            repetition_penalty=1.0,
            pad_token_id=tokenizer.eos_token_id,
            sequence_bias=[[list(key), weight] for key, weight in sequence_bias(tokenizer, bias).items()],
        )
    expected = tokenizer.decode(
        out[0][ids["input_ids"].shape[1] :], skip_special_tokens=True, clean_up_tokenization_spaces=False
    )
    assert "".join(deltas) == result.text == expected
    assert any(ord(c) > 127 for c in expected), expected


def test_auto_device_prefers_cuda_then_mps_then_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from backends.gpt2 import pick_device

    class Available:
        def __init__(self, answer: bool) -> None:
            self.answer = answer

        def is_available(self) -> bool:
            return self.answer

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.backends, "mps", Available(True), raising=False)
    assert pick_device("auto") == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("auto") == "mps"
    monkeypatch.setattr(torch.backends, "mps", Available(False), raising=False)
    assert pick_device("auto") == "cpu"
    assert pick_device("cpu") == "cpu" and pick_device("cuda:1") == "cuda:1"  # as set


async def test_a_chat_becomes_a_transcript_that_ends_at_the_next_turn() -> None:
    from backends.base import ChatMessage, join_parts
    from backends.gpt2 import TRANSCRIPT_STOPS, transcript_prompt, with_transcript_stops

    messages = [
        ChatMessage.of("system", "You help a writer."),
        ChatMessage.of("user", "A name for a fox?"),
        ChatMessage.of("assistant", "Rufus."),
        ChatMessage.of("user", "Another?", elastic=True),
    ]
    parts = transcript_prompt(messages)
    assert join_parts(parts) == (
        "You help a writer.\n\nWriter: A name for a fox?\n\nCompanion: Rufus.\n\nWriter: Another?\n\nCompanion:"
    )
    assert any(part.elastic and part.text == "Another?" for part in parts)  # the writer's text can still be cut
    params = with_transcript_stops(GenerationParams(stop=("\n\n\n",)))
    assert params.stop == ("\n\n\n", *TRANSCRIPT_STOPS)
    assert with_transcript_stops(params) is params


def test_a_chat_request_stops_at_the_next_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from backends import gpt2
    from backends.base import ChatMessage

    seen: list[tuple[str, ...]] = []

    class Recording(gpt2._AlternativeStreamer):
        def __init__(self, tokenizer: object, rows: int, stops: tuple[str, ...], *args: object) -> None:
            seen.append(tuple(stops))
            super().__init__(tokenizer, rows, stops, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(gpt2, "_AlternativeStreamer", Recording)
    backend = GPT2Backend("local", model="bundled")
    request = GenerationRequest.chat([ChatMessage.of("user", "A name for a fox?")], GenerationParams(max_new_tokens=8))
    _, result = asyncio.run(run(backend, request))
    assert seen == [gpt2.TRANSCRIPT_STOPS] and "Writer:" not in result.text
