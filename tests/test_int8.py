"""int8 on the CPU: every linear layer quantized, the same model quality, refused on a GPU."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from backends.base import GenerationParams, GenerationRequest, GenerationResult
from backends.errors import ConfigError, UsageError
from backends.gpt2 import GPT2Backend, load_model

HELDOUT = Path(__file__).resolve().parents[1] / "backends" / "bundled_model" / "heldout_passage.txt"


def perplexity(loaded: object) -> float:
    import torch

    ids = loaded.tokenizer(HELDOUT.read_text(encoding="utf-8"), return_tensors="pt")["input_ids"]  # type: ignore[attr-defined]
    with torch.inference_mode():
        return math.exp(loaded.model(input_ids=ids, labels=ids).loss.item())  # type: ignore[attr-defined]


def test_every_linear_layer_is_int8_and_the_model_is_cached() -> None:
    from torch import nn
    from torch.ao.nn.quantized.dynamic import Linear as QuantizedLinear
    from transformers.pytorch_utils import Conv1D

    loaded = load_model("bundled", "cpu", "int8")
    assert loaded.dtype == "int8" and loaded.device == "cpu"
    modules = list(loaded.model.modules())
    assert not any(isinstance(m, Conv1D) for m in modules)
    assert not any(type(m) is nn.Linear for m in modules), "every linear layer is quantized"
    assert isinstance(loaded.model.lm_head, QuantizedLinear), "the output head too"
    assert sum(isinstance(m, QuantizedLinear) for m in modules) == 4 * 4 + 1  # 4 per block, 4 blocks, the head
    assert load_model("bundled", "cpu", "int8") is loaded
    assert load_model("bundled", "cpu", "float32") is not loaded


def test_heldout_perplexity_is_within_two_percent_of_float32() -> None:
    full = perplexity(load_model("bundled", "cpu", "float32"))
    int8 = perplexity(load_model("bundled", "cpu", "int8"))
    assert abs(int8 / full - 1) < 0.02, (full, int8)


def test_conv1d_becomes_an_equal_linear_layer() -> None:
    import torch
    from transformers.pytorch_utils import Conv1D

    from backends.int8 import conv1d_to_linear

    torch.manual_seed(0)
    holder = torch.nn.Sequential(Conv1D(12, 8))
    x = torch.randn(3, 5, 8)
    before = holder(x)
    assert conv1d_to_linear(holder) == 1
    assert isinstance(holder[0], torch.nn.Linear)
    assert torch.allclose(holder(x), before, atol=1e-6)


async def test_an_int8_profile_writes() -> None:
    backend = GPT2Backend.from_options("local", {"kind": "gpt2", "model": "bundled", "device": "cpu", "dtype": "int8"})
    result = None
    request = GenerationRequest.completion("Once upon a time", GenerationParams(max_new_tokens=12, temperature=0))
    async for event in backend.stream(request):
        if isinstance(event, GenerationResult):
            result = event
    assert result is not None and result.error is None and result.text.strip()
    assert backend.info().dtype == "int8"


@pytest.mark.parametrize("device", ["cuda", "mps"])
async def test_int8_on_a_gpu_is_refused_with_a_clear_message(device: str) -> None:
    backend = GPT2Backend("local", model="bundled", device=device, dtype="int8")
    with pytest.raises(ConfigError) as caught:
        async for _ in backend.stream(GenerationRequest.completion("x", GenerationParams(max_new_tokens=2))):
            pass
    assert "CPU only" in caught.value.message and "float16" in caught.value.hint


def test_auto_device_with_a_gpu_refuses_int8(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(ConfigError, match="CPU only"):
        load_model("bundled", "auto", "int8")


def test_dtype_on_the_command_line(isolated_home: Path) -> None:
    from click.testing import CliRunner

    from assistant.cli import cli

    args = ["run", "poem", "--var", "topic=rain", "--max-tokens", "12", "--dtype", "int8"]
    result = CliRunner().invoke(cli, [*args, "--model", "bundled"])
    assert result.exit_code == 0, result.output
    assert result.output.strip()
    assert load_model("bundled", "auto", "int8").dtype == "int8"

    refused = CliRunner().invoke(cli, [*args, "--backend", "openai"])
    assert isinstance(refused.exception, UsageError)
    assert "--dtype is for local models" in str(refused.exception)

    wrong = CliRunner().invoke(cli, ["run", "poem", "--dtype", "int4"])
    assert wrong.exit_code == 2 and "int8" in wrong.output


def test_a_dtype_for_a_remote_profile_is_a_usage_error() -> None:
    from assistant.core import Assistant

    with pytest.raises(UsageError, match="for local models"):
        Assistant("openai", dtype="int8")
