"""How much does quillmate's streaming path cost over plain ``model.generate``?

Runs, in one process on the same machine, interleaved, for a GPT-2-small-shaped model
(random weights, default GPT2Config: the speed of real GPT-2) and the test-sized tiny model:

Streaming (greedy, one alternative):
  * ours:        GPT2Backend.stream() as a writer gets it (worker thread, shared batch,
                 streamer, stop-sequence checks, hand-off to the event loop)
  * ours, generate: the same through ``model.generate`` (``batching=False``: the path of
                 several alternatives and of beam search)
  * plain:       ``model.generate`` on the same model and prompt, no streamer, no settings
                 beyond greedy (goal: ours at least 0.95x plain)

Alternatives (n sampled alternatives, default 3):
  * ours: one call of n alternatives against n calls of one (goal: at most 0.6x)
  * plain: one ``generate`` with ``num_return_sequences=n`` against n ``generate`` calls

    python bench/gpt2_streaming_overhead.py [--new-tokens 128] [--repeats 5] [--threads 1]

Each figure is a median; the ratios compare runs of one process, interleaved, so drift in
the machine's load hits both sides alike. Two clocks: wall time (what a writer waits) and
CPU time of the whole process, every thread (the work done; steadier on a shared machine,
but blind to time spent waiting for a CPU). Plain ``generate`` runs in a fresh thread, as
quillmate runs each request (bench/int8_speed.py says why that matters on a busy machine).
Not a test: machines are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

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


class Run:
    """One measured run: wall seconds, process CPU seconds, tokens written, seconds to the first."""

    def __init__(self, wall: float, cpu: float, tokens: int, first: float = 0.0) -> None:
        self.wall, self.cpu, self.tokens, self.first = wall, cpu, tokens, first


def clocked(work: Callable[[], tuple[int, float]]) -> Run:
    """Time ``work`` (which returns tokens written and seconds to the first) on both clocks."""
    cpu, wall = time.process_time(), time.perf_counter()
    tokens, first = work()
    return Run(time.perf_counter() - wall, time.process_time() - cpu, tokens, first)


def ours(backend: Any, new_tokens: int, **settings: Any) -> Run:
    """One request through GPT2Backend.stream(), read on a fresh event loop."""
    from backends.base import GenerationParams, GenerationRequest, GenerationResult

    async def read() -> tuple[int, float]:
        params = GenerationParams(max_new_tokens=new_tokens, **{"temperature": 0, **settings})
        result = None
        async for event in backend.stream(GenerationRequest.completion(PROMPT, params)):
            if isinstance(event, GenerationResult):
                result = event
        assert result is not None and result.error is None, result
        return result.usage.completion_tokens, result.time_to_first_token or 0.0

    return clocked(lambda: asyncio.run(read()))


def plain(loaded: Any, new_tokens: int, seed: int | None = None, **settings: Any) -> Run:
    """One ``model.generate`` call in a fresh thread; tokens counted up to each row's end-of-text."""
    import torch

    tokenizer = loaded.tokenizer
    ids = tokenizer(PROMPT, return_tensors="pt").to(loaded.device)
    eos = tokenizer.eos_token_id
    written: list[int] = []

    def work() -> tuple[int, float]:
        def generate() -> None:
            if seed is not None:
                torch.manual_seed(seed)
            with torch.inference_mode():
                output = loaded.model.generate(
                    **ids, max_new_tokens=new_tokens, pad_token_id=eos, **{"do_sample": False, **settings}
                )
            for row in output[:, ids["input_ids"].shape[1] :].tolist():
                written.append(row.index(eos) if eos in row else len(row))

        thread = threading.Thread(target=generate)
        thread.start()
        thread.join()
        return sum(written), 0.0

    return clocked(work)


def median(runs: list[Run], value: Callable[[Run], float]) -> float:
    return statistics.median(value(run) for run in runs)


def load_average() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def measure_streaming(name: str, model_dir: Path, new_tokens: int, repeats: int) -> None:
    from backends.gpt2 import GPT2Backend

    shared = GPT2Backend("bench", model=str(model_dir))
    generate = GPT2Backend("bench-generate", model=str(model_dir), batching=False)
    loaded = shared._load_sync()
    sides: dict[str, Callable[[], Run]] = {
        "quillmate stream": lambda: ours(shared, new_tokens),
        "  through generate": lambda: ours(generate, new_tokens),
        "plain generate": lambda: plain(loaded, new_tokens),
    }
    for side in sides.values():  # warm-up
        side()
    runs: dict[str, list[Run]] = {label: [] for label in sides}
    before = load_average()
    for _ in range(repeats):  # interleaved so drift in machine load hits every side alike
        for label, side in sides.items():
            runs[label].append(side())
    base = runs["plain generate"]
    base_tps = median(base, lambda r: r.tokens / r.wall)
    base_cpu = median(base, lambda r: r.cpu / r.tokens)
    print(f"{name}: {new_tokens} new tokens, greedy; {before}")
    for label, measured in runs.items():
        tps = median(measured, lambda r: r.tokens / r.wall)
        cpu = median(measured, lambda r: r.cpu / r.tokens)
        tokens = median(measured, lambda r: r.tokens)
        first = median(measured, lambda r: r.first) * 1000
        ratio = "" if measured is base else f"   ratio to plain: wall {tps / base_tps:.3f}, cpu {base_cpu / cpu:.3f}"
        print(
            f"  {label:<20} {tps:8.1f} tok/s  {cpu * 1000:7.2f} ms CPU/token  {tokens:4.0f} tokens"
            + (f"  first {first:6.1f} ms" if first else "")
            + ratio
        )
    print(f"  (goal: ratio >= 0.95)  {load_average()}\n")


def measure_alternatives(name: str, model_dir: Path, n: int, new_tokens: int, repeats: int) -> None:
    from backends.gpt2 import GPT2Backend

    backend = GPT2Backend("bench", model=str(model_dir))
    loaded = backend._load_sync()
    sampled = {"temperature": 0.8, "top_p": 1.0, "top_k": 0}

    def ours_calls(alternatives: int, calls: int) -> Run:
        loaded.prefix_cache.clear()  # each side starts cold; later calls reuse the prompt as they would
        measured = [
            ours(backend, new_tokens, seed=call, num_alternatives=alternatives, **sampled) for call in range(calls)
        ]
        return Run(sum(r.wall for r in measured), sum(r.cpu for r in measured), sum(r.tokens for r in measured))

    def plain_calls(alternatives: int, calls: int) -> Run:
        options = {"do_sample": True, **sampled, "num_return_sequences": alternatives}
        measured = [plain(loaded, new_tokens, seed=call, **options) for call in range(calls)]
        return Run(sum(r.wall for r in measured), sum(r.cpu for r in measured), sum(r.tokens for r in measured))

    sides: dict[str, Callable[[], Run]] = {
        "quillmate one call": lambda: ours_calls(n, 1),
        f"quillmate {n} calls": lambda: ours_calls(1, n),
        "plain one call": lambda: plain_calls(n, 1),
        f"plain {n} calls": lambda: plain_calls(1, n),
    }
    ours_calls(n, 1)  # warm-up
    plain_calls(n, 1)
    runs: dict[str, list[Run]] = {label: [] for label in sides}
    before = load_average()
    for _ in range(repeats):
        for label, side in sides.items():
            runs[label].append(side())
    wall = {label: median(measured, lambda r: r.wall) for label, measured in runs.items()}
    cpu = {label: median(measured, lambda r: r.cpu) for label, measured in runs.items()}
    print(f"{name}: {n} sampled alternatives of up to {new_tokens} tokens; {before}")
    for label in runs:
        print(f"  {label:<20} {wall[label]:7.2f} s wall  {cpu[label]:7.2f} s CPU")
    for who in ("quillmate", "plain"):
        one, apart = f"{who} one call", f"{who} {n} calls"
        print(f"  {who:<9} one call / {n} calls: wall {wall[one] / wall[apart]:.2f}, cpu {cpu[one] / cpu[apart]:.2f}")
    floor = row_cost(loaded.model, n, repeats)
    print(
        f"  a bare decoding step of {n} rows costs {floor:.2f}x one row here, so one call saves at most "
        f"{1 - floor / n:.0%} of the model's own work (the rest of a saving is per-step overhead shared)"
    )
    print(f"  (goal for quillmate: <= 0.6)  {load_average()}\n")


def row_cost(model: Any, rows: int, repeats: int) -> float:
    """How much one decoding step of ``rows`` rows costs against one row (median of ``repeats`` * 5 steps).

    Batching alternatives pays only where a step of several rows costs less than that many
    steps of one, as on GPUs and CPUs whose matrix products are bound by reading the weights;
    where the products are bound by arithmetic, the cost grows with the rows and this is the floor.
    """
    import torch

    def step_seconds(batch: int) -> float:
        with torch.inference_mode():
            context = torch.randint(0, model.config.vocab_size, (batch, 64))
            cache = model(context, use_cache=True).past_key_values
            token = context[:, -1:]
            times = []
            for _ in range(repeats * 5):
                started = time.perf_counter()
                model(token, past_key_values=cache, use_cache=True)
                times.append(time.perf_counter() - started)
                cache.crop(-1)
        return statistics.median(times)

    step_seconds(1)  # warm-up
    return step_seconds(rows) / step_seconds(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "quillmate-bench")
    parser.add_argument("--skip-small", action="store_true", help="Only the test-sized model.")
    parser.add_argument("--skip-tiny", action="store_true", help="Only the GPT-2-small-shaped model.")
    parser.add_argument("--only", choices=["streaming", "alternatives"], help="Measure only one of the two.")
    parser.add_argument("--alternatives", type=int, default=3)
    parser.add_argument("--alternative-tokens", type=int, default=32)
    args = parser.parse_args()

    import torch

    from tests.support.tiny_model import build_tiny_model

    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), median of {args.repeats}\n")

    def work() -> None:
        models = []
        if not args.skip_tiny:
            models.append(("test-sized", build_tiny_model(args.cache / "tiny")))
        if not args.skip_small:
            models.append(("gpt2-small", build_gpt2_small(args.cache / "gpt2-small-random", args.corpus)))
        for name, folder in models:
            if args.only != "alternatives":
                measure_streaming(name, folder, args.new_tokens, args.repeats)
            if args.only != "streaming":
                measure_alternatives(name, folder, args.alternatives, args.alternative_tokens, args.repeats)

    from int8_speed import in_worker_thread

    in_worker_thread(work)


if __name__ == "__main__":
    main()
