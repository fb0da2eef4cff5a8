"""Build a tiny GPT-2 (random weights, a freshly trained byte-level BPE tokenizer).

It is saved to a folder and loaded through the same ``from_pretrained`` path as
real GPT-2, so tests of loading arbitrary model folders need no download.
"""

from __future__ import annotations

from pathlib import Path

TRAINING_TEXT = (
    "The sea at night is a dark mirror for the moon. "
    "Once upon a time a fox found a lantern in the snow, and the lantern spoke. "
    "A stitch in time saves nine. Curly braces {like these} and {{these}} are fine. "
    "Poem: The Lantern\nForm: haiku\n\nsnow on the lantern\n"
) * 20


def build_tiny_model(folder: Path, *, n_positions: int = 1024) -> Path:
    """Save a tiny random GPT-2 and its tokenizer into ``folder``; return it."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([TRAINING_TEXT], vocab_size=400, min_frequency=1, special_tokens=["<|endoftext|>"])
    tokenizer = GPT2TokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        model_max_length=n_positions,
    )
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=n_positions,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    GPT2LMHeadModel(config).save_pretrained(folder)
    return folder
