"""The ``quillmate`` command line.

Sub-commands are imported only when they run, so ``quillmate --help`` and
``quillmate --version`` stay fast and never import torch, transformers or openai.
Other packages (the writing app) add commands through the ``quillmate.commands``
entry-point group, so this core never imports them.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from importlib import metadata
from typing import Any

import click

from assistant.cli.common import report_errors

# name -> (module:attribute, one-line help shown by `quillmate --help`)
BUILTIN_COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("assistant.cli.run_cmd:run", "Run a template and stream the text to stdout."),
    "templates": ("assistant.cli.templates_cmd:templates", "List, show, check and create prompt templates."),
    "backends": ("assistant.cli.backends_cmd:backends", "List and check the configured model backends."),
    "sessions": ("assistant.cli.sessions_cmd:sessions", "List, show, export, search and delete co-writing sessions."),
    "serve": ("assistant.cli.serve_cmd:serve", "Serve quillmate as an OpenAI-compatible HTTP endpoint."),
    "keys": ("assistant.cli.keys_cmd:keys", "Store and remove API keys."),
}
ENTRY_POINT_GROUP = "quillmate.commands"


def _version() -> str:
    try:
        return metadata.version("quillmate")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def _plugin_commands() -> dict[str, metadata.EntryPoint]:
    try:
        return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    except Exception:  # a broken plugin install must not break the CLI
        return {}


def _available_builtins() -> dict[str, tuple[str, str]]:
    """Built-in commands whose module exists in this install."""
    found = {}
    for name, (target, help_text) in BUILTIN_COMMANDS.items():
        module = target.split(":")[0]
        if importlib.util.find_spec(module) is not None:
            found[name] = (target, help_text)
    return found


class LazyGroup(click.Group):
    """A group that imports each sub-command only when it is invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(_available_builtins()) | set(_plugin_commands()))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        builtins = _available_builtins()
        if cmd_name in builtins:
            module_name, attr = builtins[cmd_name][0].split(":")
            return getattr(importlib.import_module(module_name), attr)
        plugin = _plugin_commands().get(cmd_name)
        return plugin.load() if plugin is not None else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help without importing each command's module.
        builtins = _available_builtins()
        plugin_help = {"write": "Open the writing app on a draft (a file, or a new session)."}
        rows = []
        for name in self.list_commands(ctx):
            text = builtins[name][1] if name in builtins else plugin_help.get(name, "")
            rows.append((name, text))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), "--version", "-V", prog_name="quillmate", message="%(prog)s %(version)s")
@click.option("--debug", is_flag=True, envvar="QUILLMATE_DEBUG", help="Show full tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """quillmate: write with a language model, in the terminal and in your editor.

    \b
    Quick examples:
      quillmate run poem --var topic="the sea at night"
      echo "It was late when" | quillmate run continue
      quillmate write chapter1.md
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point: run the CLI and turn errors into one-line messages."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or bool(_env_flag("QUILLMATE_DEBUG"))
    with report_errors(debug=debug):
        result = cli.main(args=args, prog_name="quillmate", standalone_mode=False)
        sys.exit(result if isinstance(result, int) else 0)


def _env_flag(name: str) -> bool:
    import os

    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}
