"""The bundled offline model folder, checked with ``transformers`` alone (no quillmate backend code).

These tests catch a missing or oversized folder, corrupt weights, a tokenizer that does not
match the model, and non-reproducible sampling.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from backends.fim import MARKER_TOKENS, find_fim_tokens, layout_of

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

MAX_BYTES = 20 * 1024 * 1024
REQUIRED_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "merges.txt",
    "heldout_passage.txt",
    "metrics.json",
    "README.md",
)
EOS = "<|endoftext|>"


def _bundled_dir() -> Path:
    """``backends/bundled_model``, via the installed package when importable."""
    try:
        import backends

        return Path(backends.__file__).resolve().parent / "bundled_model"
    except ImportError:
        return Path(__file__).resolve().parents[1] / "backends" / "bundled_model"


MODEL_DIR = _bundled_dir()


@pytest.fixture(scope="module")
def folder() -> Path:
    if not (MODEL_DIR / "config.json").is_file():
        pytest.fail(f"bundled model missing: {MODEL_DIR}")
    return MODEL_DIR


@pytest.fixture(scope="module")
def tokenizer(folder: Path):
    return transformers.AutoTokenizer.from_pretrained(folder)


@pytest.fixture(scope="module")
def model(folder: Path):
    torch.set_num_threads(1)
    m = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    m.eval()
    return m


@pytest.fixture(scope="module")
def metrics(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text(encoding="utf-8"))


def test_required_files_present(folder: Path) -> None:
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    assert not missing, f"missing from {folder}: {missing}"


def test_total_size_within_budget(folder: Path) -> None:
    total = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    assert total <= MAX_BYTES, f"{folder} is {total / 2**20:.1f} MiB > 20 MiB"


def test_loads_as_gpt2_in_float32(model, tokenizer) -> None:
    assert model.config.model_type == "gpt2"
    assert model.config.n_positions == 1024
    assert tokenizer.model_max_length == 1024
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert model.get_output_embeddings().weight.shape[0] == model.config.vocab_size
    # The model has rows for the three fill-in-the-middle tokens it was trained with; the
    # tokenizer declares them only when the model has learnt to use them (see the model card).
    fim = find_fim_tokens(tokenizer.get_vocab(), model.config.vocab_size, layout_of(model.config))
    undeclared = 0 if fim else MARKER_TOKENS
    assert model.config.vocab_size == len(tokenizer) + undeclared
    if fim:
        assert max(fim.ids) < model.config.vocab_size


def test_special_tokens_agree(model, tokenizer) -> None:
    eos_id = tokenizer.convert_tokens_to_ids(EOS)
    assert tokenizer.eos_token == tokenizer.bos_token == tokenizer.unk_token == EOS
    assert model.config.eos_token_id == eos_id
    gen = model.generation_config
    assert gen.eos_token_id == eos_id
    assert gen.pad_token_id == eos_id
    assert gen.bos_token_id == eos_id


def test_metrics_recorded(metrics: dict, model, tokenizer) -> None:
    for key in (
        "heldout_passage_perplexity",
        "heldout_perplexity",
        "params",
        "train_tokens",
        "train_seconds",
        "vocab_size",
    ):
        assert key in metrics, key
    assert metrics["params"] == sum(p.numel() for p in model.parameters())
    assert metrics["vocab_size"] == model.config.vocab_size


@pytest.mark.parametrize(
    "text",
    [
        "Poem: The Lantern\nForm: haiku\n\nsnow on the lantern\n",
        "Story: {title}\n\n{text} and {{doubled}} braces }{",
        "Café, naïve, “curly quotes” — em dash… ümlaut ß 日本語 🙂 Ελληνικά",
        "  leading spaces\n\n\ttabs\r\nand CRLF  ",
        f"one{EOS}two",
    ],
)
def test_tokenizer_round_trips(tokenizer, text: str) -> None:
    ids = tokenizer.encode(text)
    assert tokenizer.decode(ids) == text


def test_eos_is_single_token(tokenizer) -> None:
    ids = tokenizer.encode(f"a{EOS}b")
    assert ids.count(tokenizer.eos_token_id) == 1


def _passage_perplexity(model, tokenizer, text: str) -> float:
    """Same measure as the training script: EOS-prefixed text, mean next-token loss."""
    ids = [tokenizer.eos_token_id, *tokenizer.encode(text)][:1024]
    x = torch.tensor([ids])
    with torch.no_grad():
        loss = model(input_ids=x, labels=x).loss.item()
    return math.exp(loss)


def test_heldout_passage_perplexity(folder: Path, model, tokenizer, metrics: dict) -> None:
    text = (folder / "heldout_passage.txt").read_text(encoding="utf-8")
    assert 800 <= len(text) <= 2500
    ppl = _passage_perplexity(model, tokenizer, text)
    recorded = metrics["heldout_passage_perplexity"]
    assert ppl <= recorded * 1.05 + 1.0, f"passage perplexity {ppl:.2f} vs recorded {recorded:.2f}"
    # a broken model (random weights, wrong tokenizer) sits near the vocabulary size
    assert ppl < len(tokenizer) / 10


def test_seeded_sampling_is_reproducible(model, tokenizer) -> None:
    prompt = "Poem: The Lantern\nForm: sonnet\n\n"
    x = tokenizer(prompt, return_tensors="pt")

    def sample(seed: int) -> list[int]:
        torch.manual_seed(seed)
        out = model.generate(
            **x, do_sample=True, max_new_tokens=24, top_k=50, temperature=0.9, pad_token_id=tokenizer.eos_token_id
        )
        return out[0, x["input_ids"].shape[1] :].tolist()

    first, second = sample(7), sample(7)
    assert first == second
    assert len(first) > 0
    assert tokenizer.decode(first).strip() or first == [tokenizer.eos_token_id]
