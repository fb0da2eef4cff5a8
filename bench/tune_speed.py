#!/usr/bin/env python3
"""How fast `quillmate tune` trains, and how fast held-out perplexity falls.

Two runs on the same fixed text (seeded invented prose, ~1 MB by default, split by
document as `quillmate tune` splits it):

* the bundled model, full fine-tuning;
* a GPT-2-small-shaped model (12 layers, d=768, random weights, the bundled tokenizer), LoRA.

Prints tokens/s, held-out perplexity before and after, and the perplexity drop per minute.
Example::

    python bench/tune_speed.py --minutes 1 --kb 200
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assistant.tuning.documents import survey
from backends.gpt2 import BUNDLED_MODEL_DIR
from backends.tuning import TuneSpec, train


def fixed_text(kilobytes: int, seed: int = 7) -> str:
    """Seeded prose with an invented vocabulary, about ``kilobytes`` KB."""
    rng = random.Random(seed)
    names = ["Oriveth", "Blemmick", "Saunavar", "Tessaly", "Quorn"]
    nouns = ["zorblat", "quimmet", "vashtree", "plinkard", "morrowgast", "lantern", "river", "tower"]
    verbs = ["glimmered", "snarfed", "tolloped", "brastled", "wandered", "listened"]
    tails = ["softly", "at dusk", "again", "before the rain", "without a word"]
    paragraphs, size = [], 0
    while size < kilobytes * 1024:
        sentences = [
            f"{rng.choice(names)} {rng.choice(verbs)} past the {rng.choice(nouns)}, and the "
            f"{rng.choice(nouns)} {rng.choice(verbs)} {rng.choice(tails)}."
            for _ in range(rng.randint(3, 6))
        ]
        paragraphs.append(" ".join(sentences))
        size += len(paragraphs[-1]) + 2
    return "\n\n".join(paragraphs)


def gpt2_small_shaped(folder: Path) -> Path:
    """A random GPT-2-small-shaped model with the bundled tokenizer (no download)."""
    import shutil

    from transformers import GPT2Config, GPT2LMHeadModel

    folder.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"):
        shutil.copy(BUNDLED_MODEL_DIR / name, folder / name)
    config = GPT2Config(
        vocab_size=8192, n_positions=1024, n_embd=768, n_layer=12, n_head=12, bos_token_id=0, eos_token_id=0
    )
    GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


def run(label: str, base: Path, method: str, text_dir: Path, out: Path, minutes: float, eval_tokens: int) -> dict:
    manuscript = survey([text_dir])
    spec = TuneSpec(
        base=str(base),
        out=out,
        method=method,
        minutes=minutes,
        eval_tokens=eval_tokens,
        sample_prompt="",
        checkpoint_minutes=0,
    )
    started = time.perf_counter()
    result = train(spec, manuscript.train_documents(), manuscript.heldout_documents())
    wall = time.perf_counter() - started
    drop = 100 * (1 - result.perplexity_after / result.perplexity_before)
    figures = {
        "run": label,
        "method": method,
        "steps": result.steps,
        "train_seconds": result.seconds,
        "wall_seconds": round(wall, 1),
        "tokens_per_second": round(result.tokens / max(result.seconds, 1e-9), 1),
        "trainable_parameters": result.trainable_parameters,
        "perplexity_before": round(result.perplexity_before, 2),
        "perplexity_after": round(result.perplexity_after, 2),
        "drop_percent": round(drop, 1),
        "drop_percent_per_minute": round(drop / max(result.seconds / 60, 1e-9), 1),
        "device": result.device,
        "threads": result.threads,
        "train_tokens": result.train_tokens,
        "heldout_tokens": result.heldout_tokens,
    }
    print(json.dumps(figures), flush=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=1.0, help="training budget of each run")
    parser.add_argument("--kb", type=int, default=1024, help="size of the fixed text")
    parser.add_argument("--eval-tokens", type=int, default=4096)
    parser.add_argument("--skip-gpt2", action="store_true", help="only the bundled model")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="quillmate-bench-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "text").mkdir()
        (tmp / "text" / "manuscript.txt").write_text(fixed_text(args.kb), encoding="utf-8")
        run("bundled", BUNDLED_MODEL_DIR, "full", tmp / "text", tmp / "out-bundled", args.minutes, args.eval_tokens)
        if not args.skip_gpt2:
            base = gpt2_small_shaped(tmp / "gpt2-small-shaped")
            run("gpt2-small-shaped", base, "lora", tmp / "text", tmp / "out-gpt2", args.minutes, args.eval_tokens)
    return 0


if __name__ == "__main__":
    sys.exit(main())
