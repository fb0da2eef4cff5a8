"""Phrase bias and bans sent to an OpenAI-compatible server as ``logit_bias``.

``logit_bias`` maps the server's token ids to a number from -100 to 100 added to each
token's score, so it can only reach phrases that are one token. A profile that names its
model's tokenizer (``tokenizer = "gpt2"``, a Hugging Face name or a folder) lets quillmate
find them: a phrase goes as ``logit_bias`` when every spelling of it (as written, lower
case, capitalised, each with and without a leading space: ``steering.spellings``) is one
token. A bias adds its weight to each of those tokens (weights of phrases sharing a token
add up; the sum is kept within -100..100); a ban gives them -100. Bias phrases of more than
one token cannot be sent, and are named in a notice; banned phrases of more than one token
are left to the stop-and-ask-again path (the text is watched for every ban either way, so a
spelling of a banned word outside those tokens is still stopped at).

transformers is imported only when a tokenizer is loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.errors import ConfigError
from backends.steering import normalise_phrase, spellings

LIMIT = 100.0
"""The largest ``logit_bias`` value a server takes, either way."""


@dataclass(frozen=True)
class TokenBias:
    """What goes to the server as ``logit_bias`` and what cannot.

    Attributes:
        logit_bias: Token id (as text, as JSON keys are) to the number added to its score.
        unsent_bias: Bias phrases of more than one token, as the writer gave them.
        unsent_bans: Banned phrases of more than one token (left to the text watch).
    """

    logit_bias: dict[str, float]
    unsent_bias: tuple[str, ...]
    unsent_bans: tuple[str, ...]


def single_tokens(tokenizer: Any, phrase: str) -> set[int] | None:
    """The token of each spelling of ``phrase``, or None when any spelling takes more than one token."""
    ids: set[int] = set()
    for spelling in spellings(phrase):
        tokens = tokenizer(spelling, add_special_tokens=False)["input_ids"]
        if len(tokens) != 1:
            return None
        ids.add(int(tokens[0]))
    return ids


def token_bias(tokenizer: Any, bias: Sequence[tuple[str, float]], ban: Sequence[str]) -> TokenBias:
    """The ``logit_bias`` for ``bias`` and ``ban`` with ``tokenizer`` (see the module docs)."""
    totals: dict[int, float] = {}
    unsent_bias: list[str] = []
    for phrase, weight in bias:
        ids = single_tokens(tokenizer, phrase)
        if ids is None:
            unsent_bias.append(phrase)
            continue
        for token in ids:
            totals[token] = totals.get(token, 0.0) + float(weight)
    unsent_bans: list[str] = []
    for phrase in dict.fromkeys(p for p in ban if normalise_phrase(p)):
        ids = single_tokens(tokenizer, phrase)
        if ids is None:
            unsent_bans.append(phrase)
            continue
        for token in ids:
            totals[token] = -LIMIT
    sent = {str(token): _number(max(-LIMIT, min(LIMIT, value))) for token, value in sorted(totals.items()) if value}
    return TokenBias(sent, tuple(dict.fromkeys(unsent_bias)), tuple(unsent_bans))


def _number(value: float) -> float:
    """Whole weights as ints (``5``, not ``5.0``), as every server takes them."""
    return int(value) if value == int(value) else value


def load_tokenizer(name: str, profile: str) -> Any:
    """The tokenizer a profile names: a folder, or a Hugging Face name (the local cache first).

    Raises:
        ConfigError: one line saying why it could not be loaded.
    """
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    from backends.gpt2 import _hub_offline, _hub_unreachable, _short

    hf_logging.set_verbosity_error()
    path = Path(name).expanduser()
    is_folder = path.is_dir()
    target = str(path) if is_folder else name

    def failed(why: str) -> ConfigError:
        return ConfigError(
            f"Profile '{profile}': the tokenizer '{name}' could not be loaded ({why}).",
            "Set tokenizer to a folder holding the model's tokenizer files, or to a Hugging Face model name "
            "in your cache (`hf download NAME` on a connected machine).",
        )

    try:
        return AutoTokenizer.from_pretrained(target, local_files_only=True)
    except Exception as error:
        if is_folder or name.startswith(("./", "../", "~", "/")):
            raise failed(_short(error) if is_folder else "no such folder") from None
        if _hub_offline():
            raise failed("not in your Hugging Face cache, and downloads are off") from None
    unreachable = _hub_unreachable(name)
    if unreachable:
        raise failed(f"not in your Hugging Face cache; {unreachable}")
    try:
        return AutoTokenizer.from_pretrained(target)
    except Exception as error:
        raise failed(_short(error)) from None


__all__ = ["LIMIT", "TokenBias", "load_tokenizer", "single_tokens", "token_bias"]
