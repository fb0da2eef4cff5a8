"""Held-out perplexity of one or more models on the same texts, measured the same way.

The texts are the bundled model's held-out documents (the training script's split); each
model reads them in windows of the same length, so editions trained with different
window lengths are compared fairly (a model scored in short windows sees less context
and looks worse than it is).

    python scripts/measure_heldout.py backends/bundled_model /work/train/bundled2 [--seq-len 256]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
from backends.tuning import evaluate  # noqa: E402
from scripts.train_bundled_model import add_split_options, encode_stream, heldout_documents  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--seq-len", type=int, default=256, help="tokens in each scoring window")
    parser.add_argument("--tokens", type=int, default=200_000, help="held-out tokens to score (at most)")
    add_split_options(parser)
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    texts = [d.text for d in heldout_documents(args)]
    print(f"{len(texts)} held-out documents, windows of {args.seq_len} tokens")
    for folder in args.models:
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
        ids, _ = encode_stream(tokenizer, texts)
        loss = evaluate(model, ids, args.seq_len, args.tokens)
        print(f"  {folder}: perplexity {math.exp(loss):.1f} over {min(ids.numel(), args.tokens):,} tokens")


if __name__ == "__main__":
    main()
