"""``quillmate models``: the models tuned on the writer's texts (``quillmate tune``)."""

from __future__ import annotations

import click

from assistant.tuning.models import TunedModel, get_model, list_models, remove_model


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def models() -> None:
    """List, show and remove the models you tuned with `quillmate tune`."""


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"


def _figures(model: TunedModel) -> str:
    figures = model.card.get("figures") or {}
    before, after = figures.get("perplexity_before"), figures.get("perplexity_after")
    if isinstance(before, (int, float)) and isinstance(after, (int, float)):
        return f"perplexity {before:.1f} -> {after:.1f}"
    status = model.card.get("status")
    return str(status) if status else ""


@models.command("list")
def list_cmd() -> None:
    """Every tuned model: name, base, method, size, date and what it learnt."""
    found = list_models()
    if not found:
        click.echo("No tuned models yet. Make one with: quillmate tune FILES --name my-voice")
        return
    for model in found:
        card = model.card
        date = str(card.get("updated") or card.get("created") or "")[:10]
        base = f"{card.get('base', '?')} ({card.get('method', card.get('backend', '?'))})"
        click.echo(f"{model.name:<16} {base:<30} {_size(model.size_bytes):>9}  {date}  {_figures(model)}")


@models.command("show")
@click.argument("name")
def show(name: str) -> None:
    """A tuned model's card: base, method, steps, figures and the files it learnt from."""
    model = get_model(name)
    card = model.card
    click.echo(f"name:     {model.name}")
    click.echo(f"folder:   {model.folder}")
    click.echo(f"size:     {_size(model.size_bytes)}")
    for key in ("backend", "base", "method", "steps", "created", "updated", "status"):
        if key in card:
            click.echo(f"{key + ':':<9} {card[key]}")
    if card.get("merged"):
        click.echo("merged:   yes (LoRA weights merged into the model)")
    elif card.get("method") == "lora" and card.get("backend") == "local":
        click.echo(f"adapter:  LoRA adapter on {card.get('base_target', card.get('base'))} (needed to load it)")
    for key, value in (card.get("figures") or {}).items():
        if key.startswith("sample_") or value in (None, ""):
            continue
        click.echo(f"{key + ':':<9} {value:.2f}" if isinstance(value, float) else f"{key + ':':<9} {value}")
    sources = card.get("sources") or []
    click.echo(f"sources:  {len(sources)} file(s)")
    for source in sources:
        click.echo(f"  {source.get('name')}  sha256 {source.get('sha256')}")
    if model.profile is not None:
        click.echo(f"use:      quillmate run continue --backend {model.name}")


@models.command("remove")
@click.argument("name")
def remove(name: str) -> None:
    """Delete a tuned model and its backend profile."""
    model = remove_model(name)
    click.echo(f"Removed '{model.name}' ({model.folder}).")
