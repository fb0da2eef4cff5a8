#!/usr/bin/env python3
"""Load time and single-thread generation speed of the bundled offline model.

Usage::

    python bench/bundled_model_speed.py [--model backends/bundled_model] [--runs 5] [--tokens 200]

Each figure is the median of ``--runs`` runs on ONE CPU thread (``torch.set_num_threads(1)``).
Load time is the median of in-process loads after a first load; the torch/transformers import
and the first load (cold caches) are reported separately.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = REPO_ROOT / "backends" / "bundled_model"
PROMPT = "Story: The Lantern\n\nOnce upon a time, in a village by the sea, there lived"


def main() -> None:
    """Measure and print load time and tokens/s."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--tokens", type=int, default=200, help="new tokens per generation run")
    args = p.parse_args()

    t0 = time.perf_counter()
    import torch

    for lazy in ("transformers.models.gpt2.modeling_gpt2", "transformers.models.gpt2.tokenization_gpt2"):
        importlib.import_module(lazy)  # transformers imports these lazily: count them as import time
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import_s = time.perf_counter() - t0
    torch.set_num_threads(1)

    def load() -> tuple:
        tok = AutoTokenizer.from_pretrained(args.model)
        model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
        model.eval()
        return tok, model

    t0 = time.perf_counter()
    tok, model = load()
    first_load_s = time.perf_counter() - t0
    loads = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        tok, model = load()
        loads.append(time.perf_counter() - t0)

    x = tok(PROMPT, return_tensors="pt")
    n_prompt = x["input_ids"].shape[1]
    rates, firsts = [], []
    with torch.inference_mode():
        model.generate(**x, max_new_tokens=8, do_sample=False, pad_token_id=tok.eos_token_id)  # warm-up
        for seed in range(args.runs):
            torch.manual_seed(seed)
            t0 = time.perf_counter()
            out = model.generate(
                **x,
                max_new_tokens=args.tokens,
                min_new_tokens=args.tokens,
                do_sample=True,
                top_k=50,
                temperature=0.8,
                pad_token_id=tok.eos_token_id,
            )
            dt = time.perf_counter() - t0
            rates.append((out.shape[1] - n_prompt) / dt)
            t0 = time.perf_counter()
            model.generate(**x, max_new_tokens=1, do_sample=False, pad_token_id=tok.eos_token_id)
            firsts.append(time.perf_counter() - t0)

    size = sum(f.stat().st_size for f in args.model.iterdir() if f.is_file())
    params = sum(p.numel() for p in model.parameters())
    print(f"model folder        : {args.model} ({size / 2**20:.1f} MiB on disk, {params / 1e6:.2f} M params)")
    print(f"threads             : {torch.get_num_threads()}")
    print(f"import torch+hf     : {import_s:.2f} s (once per process)")
    print(f"first load          : {first_load_s:.3f} s")
    print(
        f"load (median of {args.runs}) : {statistics.median(loads):.3f} s  (min {min(loads):.3f}, max {max(loads):.3f})"
    )
    print(f"first token latency : {statistics.median(firsts) * 1000:.1f} ms (prompt of {n_prompt} tokens)")
    print(
        f"generation          : {statistics.median(rates):.0f} tokens/s median of {args.runs} "
        f"x {args.tokens} tokens (min {min(rates):.0f}, max {max(rates):.0f})"
    )


if __name__ == "__main__":
    main()
