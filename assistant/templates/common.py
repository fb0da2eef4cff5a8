"""Small pieces every part of the templates package shares: kinds, the name rule, suggestions."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Literal

Form = Literal["chat", "completion"]
Origin = Literal["builtin", "user", "file"]
Output = Literal["cursor", "selection", "list"]
TemplateFormat = Literal["f-string", "mustache"]

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
NAME_RULE = "Template names use letters, digits, '-' and '_', and start with a letter or digit."


def did_you_mean(word: str, choices: Iterable[object]) -> str:
    """`` Did you mean 'X'?`` for the closest of ``choices`` (case-insensitive), or ``""``."""
    options = [str(c) for c in choices]
    lowered = {c.casefold(): c for c in options}
    match = difflib.get_close_matches(word.casefold(), list(lowered), n=1, cutoff=0.6)
    return f" Did you mean '{lowered[match[0]]}'?" if match else ""


def quoted(options: list[str]) -> str:
    """``'a', 'b', 'c'``."""
    return ", ".join(f"'{o}'" for o in options)
