"""How much a model gains from the text after the cursor (fill in the middle).

On the bundled model's held-out documents (the split the training script makes, so no
model of the project trained on them), each document is cut at two word bounds into
before / middle / after, and the middle is scored two ways:

* **after too**: ``<|fim_prefix|>before<|fim_suffix|>after<|fim_middle|>middle`` (or the
  model's own layout, see backends.fim), as the local backend lays out a request with the
  text after the cursor;
* **before only**: ``before`` then ``middle``, as a model without the tokens writes.

It prints both perplexities of the middle's tokens and their ratio (below 1: the text
after the cursor helps), and the median chance the model gives to ending the middle right
where the writer's own text resumes (its end-of-text token after the middle), and the share
of gaps the model closes by itself when it writes one (greedy, within ``GAP_TOKENS``), as the
app would ask it to.

    python scripts/measure_fim.py [MODEL_DIR] [--declare] [--docs 120] [--seed 7]

A model without the three tokens gets "before only" and a note.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
from backends.fim import FIM_SPELLINGS, find_fim_tokens, layout_of  # noqa: E402
from scripts.train_bundled_model import add_split_options, heldout_documents  # noqa: E402
from scripts.training_shapes import fim_split  # noqa: E402

GAP_TOKENS = 48
"""How much a model may write into a gap when it is asked to close it by itself."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", type=Path, default=REPO_ROOT / "backends" / "bundled_model")
    parser.add_argument("--docs", type=int, default=120, help="held-out documents to cut (at most)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--window", type=int, default=1000, help="characters of text around each gap")
    parser.add_argument("--after", type=int, default=400, help="characters after the gap the model sees")
    parser.add_argument("--max-middle", type=int, default=40, help="longest gap in words")
    parser.add_argument(
        "--declare", action="store_true", help="give the tokenizer the three tokens when the model has rows for them"
    )
    add_split_options(parser)
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    tokenizer = AutoTokenizer.from_pretrained(str(args.model))
    model = AutoModelForCausalLM.from_pretrained(str(args.model), dtype=torch.float32).eval()
    rows = model.get_input_embeddings().num_embeddings
    if args.declare and len(tokenizer) + len(FIM_SPELLINGS[0]) <= rows:
        # The shipped tokenizer leaves them out (see the model card); the model has their rows.
        tokenizer.add_special_tokens({"additional_special_tokens": list(FIM_SPELLINGS[0])})
    fim = find_fim_tokens(tokenizer.get_vocab(), rows, layout_of(model.config))
    eos = tokenizer.eos_token_id

    docs = heldout_documents(args)
    rng = random.Random(args.seed)
    rng.shuffle(docs)
    cut_docs = (fim_split(d.text, rng, args.window, args.after, args.max_middle) for d in docs)
    cuts = [cut for cut in cut_docs if cut is not None][: args.docs]

    def encode(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    def middle_logprobs(context: list[int], middle: list[int]) -> list[float]:
        ids = torch.tensor([(context + middle + [eos])[-model.config.n_positions :]])
        with torch.inference_mode():
            logprobs = torch.log_softmax(model(ids).logits[0].float(), dim=-1)
        n = len(middle) + 1
        positions = range(ids.shape[1] - n - 1, ids.shape[1] - 1)
        return [float(logprobs[p, ids[0, p + 1]]) for p in positions]

    def written_before_an_end(prompt: list[int]) -> int | None:
        ids = torch.tensor([prompt[-(model.config.n_positions - GAP_TOKENS) :]])
        with torch.inference_mode():
            out = model.generate(
                ids, attention_mask=torch.ones_like(ids), max_new_tokens=GAP_TOKENS, do_sample=False, pad_token_id=eos
            )
        written = out[0, ids.shape[1] :].tolist()
        return written.index(eos) if eos in written else None

    totals = {"after too": [0.0, 0], "before only": [0.0, 0]}
    ends: list[float] = []
    closed: list[tuple[int, int]] = []  # (tokens written, the writer's own) for each gap closed
    for head, before, middle, after in cuts:
        mid, context = encode(middle), encode(f"{head}\n\n{before}")
        plain = middle_logprobs([eos, *context], mid)
        totals["before only"][0] += sum(plain[:-1])
        totals["before only"][1] += len(mid)
        if fim is not None:
            prompt = fim.prompt_ids(context, encode(after))
            both = middle_logprobs(prompt, mid)
            totals["after too"][0] += sum(both[:-1])
            totals["after too"][1] += len(mid)
            ends.append(math.exp(both[-1]))
            written = written_before_an_end(prompt)
            if written is not None:
                closed.append((written, len(mid)))

    print(f"{args.model}: {len(cuts)} held-out gaps, {totals['before only'][1]:,} middle tokens")
    ppl = {k: math.exp(-s / n) for k, (s, n) in totals.items() if n}
    for label, value in ppl.items():
        print(f"  middle perplexity, {label:<12} {value:8.1f}")
    if fim is None:
        print("  this model has no fill-in-the-middle tokens: it writes from the text before the cursor only")
        return
    ratio = ppl["after too"] / ppl["before only"]
    print(f"  ratio after too / before only: {ratio:.3f}  (below 1: the text after helps)")
    print(f"  median chance of ending where the writer's text resumes: {statistics.median(ends):.3f}")
    share = len(closed) / len(cuts)
    print(f"  gaps it closes by itself (greedy, {GAP_TOKENS} tokens at most): {len(closed)}/{len(cuts)} ({share:.0%})")
    if closed:
        written, own = (statistics.median(c) for c in zip(*closed, strict=True))
        print(f"  median length of those gaps: {written:.0f} tokens written, {own:.0f} in the writer's text")


if __name__ == "__main__":
    main()
