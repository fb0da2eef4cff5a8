"""How soon does a second continuation of the same draft start, with and without the prefix cache?

Co-writing asks again and again for more of the same text: the writer adds a few words
and asks for the next lines. For each model this runs, interleaved in one process:

  * cached:  GPT2Backend.stream() with the prefix cache: the first continuation of the
             draft, then the measured second one (the draft plus a few words);
  * without: the same second request on a backend with the cache off (what quillmate
             did before: the whole draft computed again);
  * plain:   ``model.generate(max_new_tokens=1)`` on the second prompt, the library's
             own time to first token, for reference;

and prints the medians of the time to first token (from the call to the first text) and
the ratio cached / without (goal: at most 0.15). Models: a GPT-2-small-shaped model with
random weights (the speed of real GPT-2; an ~840-token draft) and the bundled model (its
context is 512 tokens, so a ~400-token draft).

    python bench/prefix_cache.py [--repeats 5] [--threads 2] [--skip-small]

Not a test: machines are noisy, so read the medians and the ratio; ``uptime`` is printed
with each figure because the machine may be shared. ``generate`` runs in a fresh thread on
both sides, as quillmate runs each request (bench/int8_speed.py says why that matters here).
"""

from __future__ import annotations

import argparse
import asyncio
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

ADDED = " She set the lamp on the sill and listened."


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f}"


def draft_of(backend: Any, corpus: Path, tokens: int) -> str:
    """The opening of a corpus book, cut at a paragraph, of about ``tokens`` tokens."""
    source = sorted(corpus.glob("prose_*.txt"))[0].read_text(encoding="utf-8")
    start = source.find("\n\n", len(source) // 3)  # past the front matter
    paragraphs = source[start:].split("\n\n")
    text = ""
    for paragraph in paragraphs:
        candidate = f"{text}\n\n{paragraph.strip()}" if text else paragraph.strip()
        if backend.count_tokens(candidate) > tokens:
            break
        text = candidate
    return text


async def time_to_first_text(backend: Any, text: str, new_tokens: int) -> tuple[float, int]:
    from backends.base import Delta, GenerationParams, GenerationRequest, GenerationResult

    request = GenerationRequest.completion(text, GenerationParams(max_new_tokens=new_tokens, temperature=0))
    started = time.perf_counter()
    first: float | None = None
    prompt_tokens = 0
    async for event in backend.stream(request):
        if isinstance(event, Delta) and first is None:
            first = time.perf_counter() - started
        elif isinstance(event, GenerationResult):
            prompt_tokens = event.usage.prompt_tokens
            if first is None:  # nothing printable came out: count the end instead
                first = time.perf_counter() - started
    assert first is not None
    return first, prompt_tokens


def plain_first_token(loaded: Any, text: str) -> float:
    from int8_speed import timed_generate

    ids = loaded.tokenizer(text, return_tensors="pt")
    return timed_generate(loaded, **ids, max_new_tokens=1, do_sample=False, pad_token_id=loaded.eos_token_id)


def measure(name: str, model: str, corpus: Path, draft_tokens: int, repeats: int, new_tokens: int) -> None:
    from backends.gpt2 import GPT2Backend

    cached = GPT2Backend("cached", model=model)
    without = GPT2Backend("without", model=model, prefix_cache=False)
    loaded = cached._load_sync()
    draft = draft_of(cached, corpus, draft_tokens)
    second = draft + ADDED
    asyncio.run(time_to_first_text(without, draft, 2))  # warm-up
    runs: dict[str, list[float]] = {"cached": [], "without": [], "plain": []}
    firsts: list[float] = []
    prompt_tokens = 0
    loads = [load_average()]
    for _ in range(repeats):  # interleaved, so drift in machine load hits every column alike
        loaded.prefix_cache.clear()
        firsts.append(asyncio.run(time_to_first_text(cached, draft, new_tokens))[0])
        seconds, prompt_tokens = asyncio.run(time_to_first_text(cached, second, new_tokens))
        runs["cached"].append(seconds)
        runs["without"].append(asyncio.run(time_to_first_text(without, second, new_tokens))[0])
        runs["plain"].append(plain_first_token(loaded, second))
    loads.append(load_average())
    median = {key: statistics.median(values) for key, values in runs.items()}
    print(f"{name}: second continuation of a {prompt_tokens}-token draft, median of {repeats}")
    print(f"  first continuation (cache empty)   {statistics.median(firsts) * 1000:8.1f} ms")
    print(f"  second, prefix cache               {median['cached'] * 1000:8.1f} ms")
    print(f"  second, without the cache          {median['without'] * 1000:8.1f} ms")
    print(f"  plain model.generate, 1 token      {median['plain'] * 1000:8.1f} ms")
    print(f"  ratio cached / without             {median['cached'] / median['without']:8.3f}   (goal <= 0.15)")
    print(f"  uptime before: {loads[0]}; after: {loads[1]}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "quillmate-bench")
    parser.add_argument("--skip-small", action="store_true", help="Only the bundled model.")
    args = parser.parse_args()

    import torch
    from int8_speed import in_worker_thread

    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), greedy, {args.new_tokens} new tokens\n")

    def work() -> None:
        measure("bundled", "bundled", args.corpus, 400, args.repeats, args.new_tokens)
        if not args.skip_small:
            from gpt2_streaming_overhead import build_gpt2_small

            small = build_gpt2_small(args.cache / "gpt2-small-random", args.corpus)
            measure("gpt2-small (random weights)", str(small), args.corpus, 840, args.repeats, args.new_tokens)

    in_worker_thread(work)


if __name__ == "__main__":
    main()
