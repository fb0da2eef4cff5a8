"""``quillmate backends``: list the configured backends and check that one works."""

from __future__ import annotations

import asyncio
import time

import click

from assistant import interrupts
from assistant.config import load_config
from backends.base import GenerationParams, GenerationRequest
from backends.registry import create_backend


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def backends() -> None:
    """List and check the configured model backends."""


@backends.command("list")
def list_backends() -> None:
    """Show every backend profile; the default is marked with *."""
    config = load_config()
    for name, profile in sorted(config.profiles.items()):
        marker = "*" if name == config.default_backend else " "
        shown = {k: v for k, v in profile.options.items() if "key" not in k.lower() or k == "api_key_env"}
        if isinstance(shown.get("base_url"), str):
            from backends.openai_errors import shown_url

            shown["base_url"] = shown_url(shown["base_url"])  # a proxy's key may be written into the URL
        settings = "  ".join(f"{k}={v}" for k, v in shown.items())
        click.echo(f"{marker} {name:<12} {profile.kind:<8} {settings}")
    click.echo(
        f"\nconfig file: {config.path}" + ("" if config.path and config.path.is_file() else " (not created yet)")
    )


@backends.command("check")
@click.argument("name", required=False)
@click.option("--model", "-m", help="Check this model instead of the profile's.")
def check(name: str | None, model: str | None) -> None:
    """Load or reach a backend and write a few words with it."""
    config = load_config()
    profile = config.profile(name)
    options = dict(profile.options)
    if model:
        options["model"] = model
    backend = create_backend(profile.name, profile.kind, options)
    with interrupts.for_asyncio():
        asyncio.run(_check(backend))


async def _check(backend: object) -> None:
    from backends.base import Backend, Delta, GenerationResult, Notice

    assert isinstance(backend, Backend)
    started = time.perf_counter()
    await backend.load()
    loaded_in = time.perf_counter() - started
    info = backend.info()
    caps = backend.capabilities
    click.echo(f"backend:  {info.name} ({info.kind})")
    click.echo(f"model:    {info.model}")
    if info.device:
        click.echo(f"device:   {info.device}   dtype: {info.dtype}")
    click.echo(
        f"context:  {caps.context_window} tokens   forms: "
        + ", ".join(f for f, ok in (("chat", caps.chat), ("completion", caps.completion)) if ok)
    )
    for key, value in info.details.items():
        click.echo(f"{key + ':':<9} {value}")
    click.echo(f"ready in: {loaded_in:.2f} s")
    params = GenerationParams(max_new_tokens=getattr(backend, "check_tokens", 24), temperature=0.8, seed=1)
    if caps.completion:
        request = GenerationRequest.completion("Poem: The Lantern\nForm: haiku\n\n", params)
    else:
        from backends.base import ChatMessage

        request = GenerationRequest.chat([ChatMessage.of("user", "Write one short line about a lantern.")], params)
    text: list[str] = []
    result = None
    async for event in backend.stream(request):
        if isinstance(event, Delta) and event.index == 0:
            text.append(event.text)
        elif isinstance(event, Notice):
            click.echo(f"note:     {event.message}", err=True)
        elif isinstance(event, GenerationResult):
            result = event
    sample = "".join(text).strip().replace("\n", " / ")
    click.echo(f"sample:   {sample[:200]}")
    if result is not None:
        speed = f"{result.tokens_per_second:.1f} tokens/s" if result.tokens_per_second else "n/a"
        first = f"{result.time_to_first_token * 1000:.0f} ms" if result.time_to_first_token else "n/a"
        click.echo(f"speed:    {speed}, first token after {first}")
        if result.error:
            raise click.ClickException(result.error)
    await backend.aclose()
