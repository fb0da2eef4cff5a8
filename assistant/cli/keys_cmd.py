"""``quillmate keys``: store, list and remove API keys (files readable only by you)."""

from __future__ import annotations

import json
import os

import click

from assistant.cli.common import echo_err, read_stdin_text
from assistant.server.security import KEY_ENV as SERVE_KEY_ENV
from backends.errors import UsageError

ENV_KEYS = ("OPENAI_API_KEY", SERVE_KEY_ENV)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def keys() -> None:
    """Store and remove API keys (e.g. `quillmate keys set openai`)."""


@keys.command("set")
@click.argument("name")
def set_key(name: str) -> None:
    """Store the key NAME: typed at a hidden prompt, or piped on stdin.

    \b
      quillmate keys set openai
      pass show openai | quillmate keys set openai
    """
    from assistant.keys import check_name, mask, save_key

    check_name(name)
    piped = read_stdin_text()  # None at a terminal
    if piped is not None:
        value = piped.strip()
    else:
        value = click.prompt(
            f"Paste the {name} key (it will not be shown)", hide_input=True, default="", show_default=False
        )
    if not value.strip():
        raise UsageError("No key was given; nothing was saved.")
    path = save_key(name, value)
    echo_err(f"quillmate: saved {name} key {mask(value)} to {path} (readable only by you).")


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (keys are masked there too).")
def list_keys_cmd(as_json: bool) -> None:
    """Show stored keys and key variables, masked."""
    from assistant.keys import list_keys, mask

    stored = list_keys()
    env = [(name, mask(os.environ[name])) for name in ENV_KEYS if os.environ.get(name, "").strip()]
    if as_json:
        record = {
            "stored": [{"name": k.name, "key": k.masked, "path": str(k.path)} for k in stored],
            "environment": [{"name": n, "key": m} for n, m in env],
        }
        click.echo(json.dumps(record, ensure_ascii=False))
        return
    if not stored and not env:
        click.echo("No keys stored. Add one with `quillmate keys set openai`.")
        return
    for key in stored:
        click.echo(f"{key.name:<16} {key.masked:<12} {key.path}")
    for name, masked in env:
        click.echo(f"{name:<16} {masked:<12} (environment variable)")


@keys.command("remove")
@click.argument("name")
def remove(name: str) -> None:
    """Delete the stored key NAME."""
    from assistant.keys import remove_key

    if not remove_key(name):
        raise UsageError(f"No stored key called '{name}'.", "See `quillmate keys list`.")
    echo_err(f"quillmate: removed the {name} key.")
