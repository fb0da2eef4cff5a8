"""int8 against float32 on the CPU: decoding speed and held-out perplexity.

Speed, on a GPT-2-small-shaped model (random weights: the speed of real GPT-2), interleaved
in one process:

  * quillmate int8:    GPT2Backend(dtype="int8").stream()
  * quillmate float32: GPT2Backend(dtype="float32").stream()
  * plain int8 / float32: ``model.generate`` on the same two models (the library path)

decode tokens per second (after the first token), medians and the ratio int8 / float32
(goal: at least 2.5).

Quality: held-out perplexity in float32 and int8 (goal: within 2 %) of
  * the bundled model, on backends/bundled_model/heldout_passage.txt;
  * a GPT-2-small-shaped model trained for a few steps on the corpus (cached under
    --cache), on a corpus book it was not trained on.

    python bench/int8_speed.py [--new-tokens 64] [--repeats 5] [--threads 2] [--train-steps 30]

Not a test: machines are noisy, so read the medians and the ratio; ``uptime`` is printed
with each figure because the machine may be shared. Each ``generate`` runs in a fresh
thread, as quillmate runs each request: on this busy machine, torch in a thread that had
already run many ops (the main thread, or a long-lived worker) was measured up to ten times
slower than in a fresh thread, which would make any comparison across the two meaningless.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

PROMPT = "Story: The Lantern\n\nOnce upon a time, in a village by the sea, there lived an old woman who"


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f}"


async def ours(backend: Any, new_tokens: int) -> float:
    """Decode tokens per second through quillmate's stream (tokens after the first)."""
    from backends.base import Delta, GenerationParams, GenerationRequest, GenerationResult

    request = GenerationRequest.completion(PROMPT, GenerationParams(max_new_tokens=new_tokens, temperature=0))
    started = time.perf_counter()
    first: float | None = None
    tokens = 0
    async for event in backend.stream(request):
        if isinstance(event, Delta) and first is None:
            first = time.perf_counter()
        elif isinstance(event, GenerationResult):
            tokens = event.usage.completion_tokens
    ended = time.perf_counter()
    return (tokens - 1) / (ended - (first or started))


def timed_generate(loaded: Any, **kwargs: Any) -> float:
    """Seconds of one ``model.generate`` call, run in a fresh thread as quillmate runs each request."""
    import torch

    took: list[float] = []

    def run() -> None:
        with torch.inference_mode():
            started = time.perf_counter()
            loaded.model.generate(**kwargs)
            took.append(time.perf_counter() - started)

    in_worker_thread(run)
    return took[0]


def plain(loaded: Any, new_tokens: int) -> float:
    """Decode tokens per second of ``model.generate`` (the first token's time taken off)."""
    ids = loaded.tokenizer(PROMPT, return_tensors="pt")
    common = {"do_sample": False, "pad_token_id": loaded.eos_token_id, **ids}
    first = timed_generate(loaded, max_new_tokens=1, min_new_tokens=1, **common)
    total = timed_generate(loaded, max_new_tokens=new_tokens, min_new_tokens=new_tokens, **common)
    return (new_tokens - 1) / max(total - first, 1e-9)


def speed(model_dir: Path, new_tokens: int, repeats: int) -> None:
    from backends.gpt2 import GPT2Backend

    backends = {
        dtype: GPT2Backend(dtype, model=str(model_dir), device="cpu", dtype=dtype) for dtype in ("int8", "float32")
    }
    loaded = {dtype: backend._load_sync() for dtype, backend in backends.items()}
    for dtype in backends:  # warm-up
        asyncio.run(ours(backends[dtype], 4))
        plain(loaded[dtype], 4)
    runs: dict[str, list[float]] = {}
    before = load_average()
    for _ in range(repeats):  # interleaved, so drift in machine load hits every column alike
        for dtype in backends:
            runs.setdefault(f"quillmate {dtype}", []).append(asyncio.run(ours(backends[dtype], new_tokens)))
            runs.setdefault(f"plain {dtype}", []).append(plain(loaded[dtype], new_tokens))
    median = {key: statistics.median(values) for key, values in runs.items()}
    print(f"decode speed, gpt2-small shape (random weights), {new_tokens} new tokens, median of {repeats}")
    for key, value in median.items():
        print(f"  {key:<20} {value:8.1f} tok/s")
    print(
        f"  ratio int8 / float32: quillmate {median['quillmate int8'] / median['quillmate float32']:.2f}, "
        f"plain {median['plain int8'] / median['plain float32']:.2f}   (goal >= 2.5)"
    )
    print(f"  uptime before: {before}; after: {load_average()}\n")


def perplexity(loaded: Any, text: str, window: int) -> float:
    import torch

    ids = loaded.tokenizer(text, return_tensors="pt")["input_ids"][:, : window * 4]
    losses, counted = 0.0, 0
    with torch.inference_mode():
        for start in range(0, ids.shape[1] - 1, window):
            chunk = ids[:, start : start + window]
            if chunk.shape[1] < 2:
                break
            loss = loaded.model(input_ids=chunk, labels=chunk).loss.item()
            losses += loss * (chunk.shape[1] - 1)
            counted += chunk.shape[1] - 1
    return math.exp(losses / counted)


def quality(name: str, model: str, text: str, window: int) -> None:
    from backends.gpt2 import load_model

    before = load_average()
    full = perplexity(load_model(model, "cpu", "float32"), text, window)
    int8 = perplexity(load_model(model, "cpu", "int8"), text, window)
    print(f"held-out perplexity, {name}")
    change = (int8 / full - 1) * 100
    print(f"  float32 {full:10.2f}   int8 {int8:10.2f}   difference {change:+.2f} %   (goal within 2 %)")
    print(f"  uptime before: {before}; after: {load_average()}\n")


def trained_small(random_dir: Path, folder: Path, corpus: list[Path], steps: int) -> Path:
    """The random GPT-2 small after ``steps`` AdamW steps on the corpus (batch 4 x 64 tokens)."""
    import torch
    from transformers import AutoTokenizer, GPT2LMHeadModel

    if (folder / "config.json").is_file():
        return folder
    tokenizer = AutoTokenizer.from_pretrained(random_dir)
    model = GPT2LMHeadModel.from_pretrained(random_dir)
    text = "\n\n".join(path.read_text(encoding="utf-8")[:200_000] for path in corpus)
    ids = torch.tensor(tokenizer(text)["input_ids"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for step in range(steps):
        starts = torch.randint(0, len(ids) - 65, (4,), generator=generator)
        batch = torch.stack([ids[s : s + 64] for s in starts.tolist()])
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step % 10 == 0 or step == steps - 1:
            print(f"  training step {step + 1}/{steps}: loss {loss.item():.2f}", flush=True)
    model.eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def in_worker_thread(work: Any) -> None:
    """Run ``work`` in a worker thread, like quillmate's generation, and wait for it."""
    import threading

    failure: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as error:  # re-raised in the main thread
            failure.append(error)

    thread = threading.Thread(target=run, name="bench")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-steps", type=int, default=30)
    parser.add_argument("--only", choices=["speed", "quality"], help="Measure only speed or only perplexity.")
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "quillmate-bench")
    args = parser.parse_args()

    import torch
    from gpt2_streaming_overhead import build_gpt2_small

    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), quantized engine {torch.backends.quantized.engine}\n")

    def work() -> None:
        small = build_gpt2_small(args.cache / "gpt2-small-random", args.corpus)
        if args.only != "quality":
            speed(small, args.new_tokens, args.repeats)
        if args.only == "speed":
            return
        heldout = (ROOT / "backends" / "bundled_model" / "heldout_passage.txt").read_text(encoding="utf-8")
        quality("bundled model, heldout_passage.txt", "bundled", heldout, 512)
        books = sorted(args.corpus.glob("prose_*.txt"))
        folder = args.cache / f"gpt2-small-trained-{args.train_steps}"
        trained = trained_small(small, folder, books[:6], args.train_steps)
        unseen = books[-1].read_text(encoding="utf-8")[50_000:70_000]
        name = f"gpt2-small shape trained {args.train_steps} steps, unseen {books[-1].name}"
        quality(name, str(trained), unseen, 256)

    in_worker_thread(work)


if __name__ == "__main__":
    main()
