"""Tuned models on disk: one folder each in ``paths.models_dir()``, with a model card.

A folder holds the model (or, for an OpenAI fine-tune, only its card), ``README.md``
for people and ``quillmate_model.json`` for quillmate. The card's ``profile`` table is what
makes the model a backend profile of the same name: :func:`tuned_profiles` is read by
``load_config``, so a tuned model needs no edit to the writer's config file, and removing
the folder removes the profile. A profile of the same name in the config file wins.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from assistant import paths
from backends.errors import UsageError

CARD_JSON = "quillmate_model.json"
CARD_MD = "README.md"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class TunedModel:
    """A tuned model's folder and card."""

    name: str
    folder: Path
    card: dict[str, Any]

    @property
    def size_bytes(self) -> int:
        """Bytes on disk, the resume state included."""
        return sum(p.stat().st_size for p in self.folder.rglob("*") if p.is_file())

    @property
    def profile(self) -> dict[str, Any] | None:
        """The backend profile's settings (``kind`` included), or None while it is not ready."""
        profile = self.card.get("profile")
        if not isinstance(profile, dict) or "kind" not in profile:
            return None
        options = dict(profile)
        if options["kind"] == "gpt2":
            options.setdefault("model", str(self.folder))
        return options


def check_name(name: str) -> str:
    """A model name that is also a good profile name and folder name.

    Raises:
        UsageError: for a name with spaces, slashes or other characters.
    """
    if not NAME_PATTERN.match(name):
        raise UsageError(
            f"'{name}' cannot name a model.",
            "Use letters, digits, '.', '_' and '-' (up to 64), starting with a letter or digit, e.g. my-voice.",
        )
    return name


def folder_for(name: str) -> Path:
    """Where the model named ``name`` lives (whether or not it exists yet)."""
    return paths.models_dir() / check_name(name)


def read_card(folder: Path) -> dict[str, Any] | None:
    """The card in ``folder``, or None when there is none or it is damaged."""
    try:
        data = json.loads((folder / CARD_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def list_models() -> list[TunedModel]:
    """Every tuned model with a readable card, by name."""
    root = paths.models_dir()
    if not root.is_dir():
        return []
    found = []
    for folder in sorted(root.iterdir()):
        card = read_card(folder) if folder.is_dir() and not folder.name.startswith(".") else None
        if card is not None:
            found.append(TunedModel(folder.name, folder, card))
    return found


def get_model(name: str) -> TunedModel:
    """The tuned model named ``name``.

    Raises:
        UsageError: when there is none, listing the ones there are.
    """
    folder = folder_for(name)
    card = read_card(folder)
    if card is None:
        known = ", ".join(m.name for m in list_models()) or "none yet"
        raise UsageError(f"There is no tuned model named '{name}'.", f"Tuned models: {known}.")
    return TunedModel(name, folder, card)


def remove_model(name: str) -> TunedModel:
    """Delete a tuned model's folder (and so its profile); returns what was removed."""
    model = get_model(name)
    shutil.rmtree(model.folder)
    return model


def tuned_profiles() -> dict[str, dict[str, Any]]:
    """Backend profiles of the tuned models that are ready, by name (``kind`` included)."""
    profiles: dict[str, dict[str, Any]] = {}
    with contextlib.suppress(OSError):  # an unreadable data folder must not break every command
        for model in list_models():
            profile = model.profile
            if profile is not None:
                profiles[model.name] = profile
    return profiles


def write_card(folder: Path, card: dict[str, Any]) -> None:
    """Write ``quillmate_model.json`` and a ``README.md`` model card for people."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CARD_JSON).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    (folder / CARD_MD).write_text(card_markdown(card), encoding="utf-8")


def now_iso() -> str:
    """The current local time, to the second, for cards."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


def card_markdown(card: dict[str, Any]) -> str:
    """The model card for people: what it was tuned from and what it learnt, never the text itself."""
    figures = card.get("figures") or {}
    lines = [
        f"# {card.get('name', 'Tuned model')}",
        "",
        "A model tuned by quillmate on a writer's own texts. The texts themselves are not in this folder;",
        "they are listed below by name and SHA-256.",
        "",
        "| | |",
        "|---|---|",
        f"| Base model | {card.get('base', '?')} |",
        f"| Method | {card.get('method', '?')} |",
        f"| Steps | {card.get('steps', '?')} |",
        f"| Created | {card.get('created', '?')} |",
        f"| Updated | {card.get('updated', card.get('created', '?'))} |",
    ]
    labels = {
        "perplexity_before": "Held-out perplexity before",
        "perplexity_after": "Held-out perplexity after",
        "train_tokens": "Training tokens",
        "heldout_tokens": "Held-out tokens",
        "tokens_seen": "Tokens trained on (this run)",
        "seconds": "Training time (s, this run)",
        "device": "Device",
        "fine_tuned_model": "Fine-tuned model",
        "job": "Fine-tuning job",
    }
    for key, label in labels.items():
        if key in figures:
            value = figures[key]
            lines.append(f"| {label} | {value:.2f} |" if isinstance(value, float) else f"| {label} | {value} |")
    for key, label in (("sample_before", "Sample before"), ("sample_after", "Sample after")):
        if figures.get(key):
            lines += ["", f"**{label}** (prompt: {json.dumps(card.get('sample_prompt', ''))}):", ""]
            lines += ["> " + line for line in str(figures[key]).strip().split("\n")]
    lines += ["", "## Sources", "", "| File | SHA-256 | Characters |", "|---|---|---|"]
    for source in card.get("sources") or []:
        lines.append(f"| {source.get('name')} | `{source.get('sha256')}` | {source.get('characters', '')} |")
    lines += ["", f"Use it with `quillmate run continue --backend {card.get('name')}`.", ""]
    return "\n".join(lines)
