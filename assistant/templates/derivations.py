"""The named ways a variable can be worked out from another (``derive = "..."``, ``from = "..."``).

The set is closed: a template names one of these; it can never supply code of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Derivation:
    """One way of working a value out.

    Attributes:
        about: What it makes, in a writer's words (for ``templates show``).
        make: The value, from the source variable's text.
    """

    about: str
    make: Callable[[str], str]


def _keywords(text: str) -> str:
    from assistant.keywords import keywords  # imported on use: it loads the forms package

    return ", ".join(keywords(text))


DERIVATIONS: dict[str, Derivation] = {
    "keywords": Derivation("up to four different content words, joined with ', '", _keywords),
}
"""Every derivation a template may name."""


def derive(name: str, text: str) -> str:
    """The derivation ``name`` (one of :data:`DERIVATIONS`) applied to ``text``."""
    return DERIVATIONS[name].make(text)
