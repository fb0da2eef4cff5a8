"""How much does quillmate's streaming path cost over plain ``model.generate``?

Runs, in one process on the same machine, interleaved:
  * ours:     GPT2Backend.stream() (worker thread, streamer, stop-sequence checks, asyncio queue)
  * baseline: model.generate() on the same model, same prompt, same settings
for a GPT-2-small-shaped model (random weights, default GPT2Config: the speed of real
GPT-2) and for the test-sized tiny model, and prints medians and ratios.

    python bench/gpt2_streaming_overhead.py [--new-tokens 128] [--repeats 5] [--threads 1]

It then measures alternatives: n (default 3) sampled alternatives in one call against n
separate calls, both through GPT2Backend.stream(), with HF's own batched generation
(``num_return_sequences=n``) for reference (goal: one call at most 0.6x the n calls).

Not a test: machines are noisy, so read the medians and the ratio. The baseline's
``generate`` runs in a fresh thread, as quillmate runs each request (bench/int8_speed.py
says why that matters on a busy machine).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPT = "Story: The Lantern\n\nOnce upon a time, in a village by the sea, there lived an old woman who"


def build_gpt2_small(folder: Path, corpus: Path) -> Path:
    """A random-weight GPT-2 small (124M shape) with a 50,257-token BPE tokenizer trained on the corpus."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

    if (folder / "config.json").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    files = sorted(str(p) for p in corpus.glob("*.txt"))[:12]
    bpe = ByteLevelBPETokenizer()
    bpe.train(files, vocab_size=50257, min_frequency=1, special_tokens=["<|endoftext|>"])
    tokenizer = GPT2TokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        model_max_length=1024,
    )
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tokenizer), eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.eos_token_id
    )
    GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


async def ours(backend: object, new_tokens: int) -> tuple[float, float, int]:
    from backends.base import GenerationParams, GenerationRequest, GenerationResult

    request = GenerationRequest.completion(PROMPT, GenerationParams(max_new_tokens=new_tokens, temperature=0))
    started = time.perf_counter()
    result = None
    async for event in backend.stream(request):  # type: ignore[attr-defined]
        if isinstance(event, GenerationResult):
            result = event
    total = time.perf_counter() - started
    assert result is not None
    return total, result.time_to_first_token or 0.0, result.usage.completion_tokens


def baseline(loaded: object, new_tokens: int) -> tuple[float, float, int]:
    from int8_speed import timed_generate

    tokenizer = loaded.tokenizer  # type: ignore[attr-defined]
    ids = tokenizer(PROMPT, return_tensors="pt")
    eos = tokenizer.eos_token_id
    first = timed_generate(loaded, **ids, max_new_tokens=1, do_sample=False, pad_token_id=eos)
    # As many tokens as quillmate's stream writes (it may stop at an end-of-text first).
    total = timed_generate(
        loaded, **ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, pad_token_id=eos
    )
    return total, first, new_tokens


def measure(name: str, model_dir: Path, new_tokens: int, repeats: int) -> None:
    from backends.gpt2 import GPT2Backend

    backend = GPT2Backend("bench", model=str(model_dir))
    loaded = backend._load_sync()
    asyncio.run(ours(backend, 8))  # warm-up both paths
    baseline(loaded, 8)
    ours_runs, base_runs = [], []
    for _ in range(repeats):  # interleaved so drift in machine load hits both alike
        ours_runs.append(asyncio.run(ours(backend, new_tokens)))
        base_runs.append(baseline(loaded, new_tokens))

    def summary(runs: list[tuple[float, float, int]]) -> tuple[float, float]:
        return statistics.median(r[2] / r[0] for r in runs), statistics.median(r[1] for r in runs)

    ours_tps, ours_ttft = summary(ours_runs)
    base_tps, base_ttft = summary(base_runs)
    overhead = (base_tps / ours_tps - 1) * 100
    print(f"{name:<12} {'quillmate stream':<18} {ours_tps:8.1f} tok/s   first token {ours_ttft * 1000:7.1f} ms")
    print(f"{'':<12} {'model.generate':<18} {base_tps:8.1f} tok/s   first token {base_ttft * 1000:7.1f} ms")
    print(f"{'':<12} {'ratio ours/plain':<18} {ours_tps / base_tps:8.3f}         streaming overhead {overhead:+.1f} %")


async def alternatives_call(backend: object, n: int, new_tokens: int, calls: int) -> float:
    """Seconds for ``calls`` requests of ``n`` sampled alternatives each, one after another."""
    from backends.base import GenerationParams, GenerationRequest

    started = time.perf_counter()
    for call in range(calls):
        params = GenerationParams(max_new_tokens=new_tokens, temperature=0.8, seed=call, num_alternatives=n)
        async for _ in backend.stream(GenerationRequest.completion(PROMPT, params)):  # type: ignore[attr-defined]
            pass
    return time.perf_counter() - started


def hf_alternatives(loaded: object, n: int, new_tokens: int) -> float:
    from int8_speed import timed_generate

    tokenizer = loaded.tokenizer  # type: ignore[attr-defined]
    ids = tokenizer(PROMPT, return_tensors="pt")
    return timed_generate(
        loaded,
        **ids,
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        do_sample=True,
        temperature=0.8,
        num_return_sequences=n,
        pad_token_id=tokenizer.eos_token_id,
    )


def measure_alternatives(name: str, model_dir: Path, n: int, new_tokens: int, repeats: int) -> None:
    import os

    from backends.gpt2 import GPT2Backend

    backend = GPT2Backend("bench", model=str(model_dir))
    loaded = backend._load_sync()
    asyncio.run(alternatives_call(backend, n, 4, 1))  # warm-up
    together, separate, hf = [], [], []
    before = os.getloadavg()
    for _ in range(repeats):  # interleaved
        loaded.prefix_cache.clear()
        together.append(asyncio.run(alternatives_call(backend, n, new_tokens, 1)))
        loaded.prefix_cache.clear()
        separate.append(asyncio.run(alternatives_call(backend, 1, new_tokens, n)))
        hf.append(hf_alternatives(loaded, n, new_tokens))
    one, apart, lib = (statistics.median(v) for v in (together, separate, hf))
    print(
        f"{name:<12} {n} alternatives of {new_tokens} tokens: one call {one:.2f} s, {n} calls {apart:.2f} s, "
        f"ratio {one / apart:.2f} (goal <= 0.6); HF batched generate {lib:.2f} s, ratio {lib / apart:.2f}"
    )
    print(f"{'':<12} load average before {before[0]:.2f}, after {os.getloadavg()[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "quillmate-bench")
    parser.add_argument("--skip-small", action="store_true", help="Only the test-sized model.")
    parser.add_argument("--alternatives", type=int, default=3)
    parser.add_argument("--alternative-tokens", type=int, default=32)
    args = parser.parse_args()

    import torch

    from tests.support.tiny_model import build_tiny_model

    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), {args.new_tokens} new tokens, "
        f"median of {args.repeats}, greedy\n"
    )

    def work() -> None:
        tiny = build_tiny_model(args.cache / "tiny")
        measure("test-sized", tiny, args.new_tokens, args.repeats)
        if not args.skip_small:
            small = build_gpt2_small(args.cache / "gpt2-small-random", args.corpus)
            measure("gpt2-small", small, args.new_tokens, args.repeats)
        print()
        measure_alternatives("test-sized", tiny, args.alternatives, args.alternative_tokens, args.repeats)
        if not args.skip_small:
            measure_alternatives("gpt2-small", small, args.alternatives, args.alternative_tokens, args.repeats)

    from int8_speed import in_worker_thread

    in_worker_thread(work)


if __name__ == "__main__":
    main()
