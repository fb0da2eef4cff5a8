"""Tuning a local model on the writer's texts, from files to a ready backend profile.

:func:`tune_local` surveys the files, hands the documents to ``backends.tuning.train``,
writes the model card and so registers the profile. Display is the caller's: it passes
callbacks for skipped files, status lines and steps.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.config import DEFAULT_PROFILES, load_config
from assistant.tuning.documents import Manuscript, survey
from assistant.tuning.models import TunedModel, check_name, folder_for, now_iso, read_card, write_card
from assistant.tuning.sources import Skipped
from backends.errors import UsageError

BUNDLED = "bundled"
DEFAULT_MINUTES = 10.0


@dataclass(frozen=True)
class LocalPlan:
    """What will be tuned, decided before any model is loaded."""

    name: str
    base: str
    """As the writer gave it: bundled, gpt2, or a folder."""
    base_target: str
    """What the loader is given: a folder path or a Hugging Face id."""
    method: str
    folder: Path
    resume: bool


def resolve_base(base: str) -> str:
    """``bundled`` is the model shipped with quillmate; a path is a folder; anything else a hub id."""
    from backends.gpt2 import BUNDLED_MODEL_DIR  # torch-free at import

    if base == BUNDLED:
        return str(BUNDLED_MODEL_DIR)
    path = Path(base).expanduser()
    if path.exists() or base.startswith(("./", "../", "/", "~")):
        if not path.is_dir():
            raise UsageError(f"There is no model folder at {base}.", "Use bundled, gpt2, or a model folder.")
        return str(path.resolve())
    return base


def plan(name: str, base: str | None, method: str | None, resume: bool) -> LocalPlan:
    """Check the name, base and method, and where the model goes.

    Raises:
        UsageError: a name taken by another profile, a model that exists (without --resume),
            nothing to resume, an unknown method.
    """
    check_name(name)
    folder = folder_for(name)
    existing = read_card(folder)
    if resume:
        if existing is None or existing.get("backend") != "local":
            raise UsageError(f"There is no locally tuned model named '{name}' to resume.", "Run without --resume.")
        if base and base != existing.get("base"):
            raise UsageError(f"'{name}' was tuned from {existing.get('base')}, not {base}.", "Leave out --base.")
        if method and method != existing.get("method"):
            raise UsageError(f"'{name}' was tuned with {existing.get('method')}.", "Leave out --method.")
        base, method = str(existing["base"]), str(existing["method"])
    else:
        if existing is None and folder.is_dir():
            shutil.rmtree(folder)  # left by a run that failed before its card was written
        if existing is not None:
            raise UsageError(
                f"A tuned model named '{name}' already exists.",
                f"Add --resume to keep training it, or remove it first: quillmate models remove {name}",
            )
        profiles = load_config().profiles
        if name in DEFAULT_PROFILES or name in profiles:
            raise UsageError(f"'{name}' already names a backend profile.", "Choose another --name.")
    base = base or BUNDLED
    method = method or ("full" if base == BUNDLED else "lora")
    if method not in ("full", "lora"):
        raise UsageError(f"Unknown tuning method '{method}'.", "Use lora or full.")
    return LocalPlan(name, base, resolve_base(base), method, folder, resume)


@dataclass
class LocalOutcome:
    """The tuned model and the run's figures."""

    model: TunedModel
    result: Any  # backends.tuning.TuneResult
    manuscript: Manuscript


def tune_local(
    the_plan: LocalPlan,
    files: list[Path],
    *,
    steps: int | None = None,
    minutes: float | None = None,
    merge: bool = False,
    on_skip: Callable[[Skipped], None] | None = None,
    on_status: Callable[[str], None] | None = None,
    on_step: Callable[[Any], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    **tuning: Any,
) -> LocalOutcome:
    """Tune, save, write the card, register the profile.

    Args:
        the_plan: From :func:`plan`.
        files: The writer's files and folders.
        steps, minutes: The budget (without either: ten minutes).
        merge: LoRA only: save merged weights rather than the adapter.
        on_skip, on_status, on_step: Progress for the display.
        should_stop: Asked before every step: True stops early, as Ctrl+C does, keeping a usable model.
        **tuning: More ``TuneSpec`` fields (batch_size, seq_len, lr, eval_tokens, ...).
    """
    from backends.tuning import TuneSpec, train

    if merge and the_plan.method != "lora":
        raise UsageError("--merge applies to LoRA tuning only.", "Leave out --merge, or add --method lora.")
    if steps is None and minutes is None:
        minutes = DEFAULT_MINUTES
    manuscript = survey(files, on_skip)
    spec = TuneSpec(
        base=the_plan.base_target,
        out=the_plan.folder,
        method=the_plan.method,
        steps=steps,
        minutes=minutes,
        resume=the_plan.resume,
        merge=merge,
        sample_prompt=manuscript.sample_prompt,
        **tuning,
    )
    previous = read_card(the_plan.folder) if the_plan.resume else None
    result = train(spec, manuscript.train_documents(), manuscript.heldout_documents(), on_step, on_status, should_stop)
    created = previous.get("created") if previous else None
    sources = [
        {"name": s.path.name, "sha256": s.sha256, "characters": s.characters, "documents": s.documents}
        for s in manuscript.sources
    ]
    figures = {
        "perplexity_before": round(result.perplexity_before, 2),
        "perplexity_after": round(result.perplexity_after, 2),
        "train_tokens": result.train_tokens,
        "heldout_tokens": result.heldout_tokens,
        "tokens_seen": result.tokens,
        "seconds": result.seconds,
        "device": result.device,
        "trainable_parameters": result.trainable_parameters,
        "interrupted": result.interrupted,
        "sample_before": result.sample_before,
        "sample_after": result.sample_after,
    }
    card = {
        "name": the_plan.name,
        "backend": "local",
        "base": the_plan.base,
        "base_target": the_plan.base_target,
        "method": the_plan.method,
        "merged": merge,
        "steps": result.total_steps,
        "created": created or now_iso(),
        "updated": now_iso(),
        "sources": sources,
        "heldout_documents": len(manuscript.heldout),
        "documents": manuscript.documents,
        "sample_prompt": manuscript.sample_prompt,
        "figures": figures,
        "runs": [*(previous.get("runs", []) if previous else []), {"steps": result.steps, **figures}],
        "log": result.log,
        "profile": {"kind": "gpt2"},
    }
    write_card(the_plan.folder, card)
    return LocalOutcome(TunedModel(the_plan.name, the_plan.folder, card), result, manuscript)
