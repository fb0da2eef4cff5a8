"""The OpenAI half of ``quillmate tune``: prepare, confirm the cost, upload, start and watch a job."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from assistant.cli.common import echo_err
from assistant.config import DEFAULT_PROFILES, load_config
from backends.errors import UsageError


def _client(profile_name: str) -> tuple[Any, dict[str, Any]]:
    """A fine-tuning client for an OpenAI profile, and that profile's settings."""
    from backends.openai_backend import OpenAIBackend
    from backends.openai_tuning import FineTuning

    profile = load_config().profile(profile_name)
    if profile.kind != "openai":
        raise UsageError(
            f"Profile '{profile_name}' is not an OpenAI one (kind {profile.kind}).", "Use --profile openai."
        )
    return FineTuning(OpenAIBackend.from_options(profile.name, profile.options)), dict(profile.options)


def _event(line: str) -> None:
    echo_err(f"quillmate: {line}")


def start_openai(
    files: list[Path],
    name: str,
    base: str | None,
    *,
    yes: bool,
    profile: str,
    wait: bool,
    bad: list[str],
    poll_seconds: float = 10.0,
) -> None:
    """Fine-tune ``base`` on the writer's files through the OpenAI API and register ``name``."""
    from assistant.tuning.documents import survey
    from assistant.tuning.models import check_name, folder_for
    from assistant.tuning.openai_path import ESTIMATED_EPOCHS, prepare, record_job

    if bad:
        raise UsageError(f"{', '.join(bad)} apply to local tuning only.", "Leave them out with --backend openai.")
    if not base:
        raise UsageError(
            "Name the OpenAI model to fine-tune with --base.", "For example --base gpt-4o-mini-2024-07-18."
        )
    check_name(name)
    if folder_for(name).exists() or name in DEFAULT_PROFILES or name in load_config().profiles:
        raise UsageError(f"'{name}' already names a model or backend profile.", "Choose another --name.")
    client, options = _client(profile)  # no key: stop here, before reading or uploading anything
    manuscript = survey(files, lambda item: echo_err(f"quillmate: skipped {item.path}: {item.reason}."))
    prepared = prepare(manuscript, base)
    cost = (
        "an unknown price (this model is not in quillmate's price list)"
        if prepared.cost is None
        else f"about ${prepared.cost:.2f}"
    )
    click.echo(
        f"{prepared.examples} training and {prepared.validation_examples} validation examples, "
        f"about {prepared.tokens:,} tokens; {ESTIMATED_EPOCHS} epochs of fine-tuning {base} cost {cost}."
    )
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("Fine-tuning costs money; confirm with --yes when not at a terminal.")
        if not click.confirm("Upload the text and start the fine-tuning job?", default=False):
            click.echo("Nothing was uploaded.")
            return
    training_id = client.upload(f"{name}-train.jsonl", prepared.training)
    validation_id = (
        client.upload(f"{name}-validation.jsonl", prepared.validation) if prepared.validation_examples else None
    )
    job = client.start(base, training_id, suffix=name[:18], validation_file=validation_id)
    model = record_job(name, base, job, manuscript, prepared, profile)
    click.echo(f"Started fine-tuning job {job.get('id')}.")
    if not wait:
        click.echo("Watch it with: quillmate tune status")
        return
    _watch(model, client, options, poll_seconds)


def _watch(model: Any, client: Any, options: dict[str, Any], poll_seconds: float) -> None:
    from assistant.tuning.openai_path import watch

    try:
        done = watch(model, client, options, poll_seconds=poll_seconds, on_event=_event)
    except KeyboardInterrupt:
        echo_err(
            f"quillmate: the job goes on at OpenAI; watch it again with: quillmate tune status {model.card['job']}"
        )
        raise
    click.echo(f"Fine-tuned model {done.card['profile']['model']} is ready as backend '{done.name}'.")
    click.echo(f"Write with it: quillmate run continue --backend {done.name}")


def status(job: str | None, poll_seconds: float) -> None:
    """Watch a job quillmate started, until it ends."""
    from assistant.tuning.openai_path import find_job

    model = find_job(job)
    client, options = _client(str(model.card.get("openai_profile") or "openai"))
    _watch(model, client, options, poll_seconds)
