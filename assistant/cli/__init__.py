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

from assistant.cli.common import INPUT_ECHO, ReaderGone, defer_interrupts, report_errors, set_output_flag

# name -> (module:attribute, one-line help shown by `quillmate --help`)
BUILTIN_COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("assistant.cli.run_cmd:run", "Run a template and stream the text to stdout."),
    "templates": ("assistant.cli.templates_cmd:templates", "List, show, check and create prompt templates."),
    "backends": ("assistant.cli.backends_cmd:backends", "List and check the configured model backends."),
    "sessions": ("assistant.cli.sessions_cmd:sessions", "List, show, export, search and delete co-writing sessions."),
    "bible": ("assistant.cli.bible_cmd:bible", "A session's story bible: memory, author's note, keyed entries."),
    "serve": ("assistant.cli.serve_cmd:serve", "Serve quillmate as an OpenAI-compatible HTTP endpoint."),
    "keys": ("assistant.cli.keys_cmd:keys", "Store and remove API keys."),
    "lsp": ("assistant.cli.lsp_cmd:lsp", "Serve the Language Server Protocol on stdio, for editors."),
    "tune": ("assistant.cli.tune_cmd:tune", "Tune a model on your own writing, locally or through OpenAI."),
    "models": ("assistant.cli.models_cmd:models", "List, show and remove the models you tuned."),
    "form": ("assistant.cli.form_cmd:form", "Check a poem's syllables, rhymes and form."),
    "eval": ("assistant.cli.eval_cmd:eval_cmd", "Measure how well a backend writes: topic, form, fluency."),
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
            return _with_global_options(getattr(importlib.import_module(module_name), attr))
        plugin = _plugin_commands().get(cmd_name)
        return _with_global_options(plugin.load()) if plugin is not None else None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise ReaderGone() from None  # click would exit 1; a closed pipe is not a failure

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
@click.option(
    "--quiet",
    "-q",
    is_flag=True,
    callback=lambda c, p, v: set_output_flag("quiet", v),
    expose_value=False,
    help="No notes or warnings on stderr, only errors.",
)
@click.option(
    "--verbose",
    is_flag=True,
    callback=lambda c, p, v: set_output_flag("verbose", v),
    expose_value=False,
    help="Show notes on stderr even when stdout is not a terminal.",
)
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


# Flags every command takes, before or after its name (`quillmate run poem --debug`).
_GLOBAL_FLAGS: tuple[tuple[str, str], ...] = (
    ("--debug", "Show full tracebacks for errors."),
    ("--quiet", "No notes or warnings on stderr, only errors."),
    ("--verbose", "Show notes on stderr even when stdout is not a terminal."),
)


def _with_global_options(command: click.Command) -> click.Command:
    """Let ``command`` (and its sub-commands) take --debug, --quiet and --verbose too."""
    taken = {opt for param in command.params for opt in getattr(param, "opts", ())}
    for flag, help_text in _GLOBAL_FLAGS:
        if flag in taken:
            continue
        name = flag.lstrip("-")
        command.params.append(
            click.Option(
                [flag],
                is_flag=True,
                expose_value=False,
                help=help_text,
                # --debug is read from the arguments by main(), before any command runs.
                callback=None if name == "debug" else (lambda c, p, v, name=name: set_output_flag(name, v)),
            )
        )
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _with_global_options(sub)
    return command


def _before_separator(args: list[str]) -> list[str]:
    return args[: args.index("--")] if "--" in args else args


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point: run the CLI and turn errors into one-line messages."""
    defer_interrupts()  # until report_errors can answer Ctrl+C by restoring the selection
    args = sys.argv[1:] if argv is None else argv
    flags = _before_separator(args)
    debug = "--debug" in flags or bool(_env_flag("QUILLMATE_DEBUG"))
    INPUT_ECHO.enabled = "--include-input" in flags
    for stream in (sys.stdout, sys.stderr):
        # Never crash on text a server sent (a lone surrogate): write a replacement character.
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="replace")
    with report_errors(debug=debug):
        result = cli.main(args=args, prog_name="quillmate", standalone_mode=False)
        sys.exit(result if isinstance(result, int) else 0)


def _env_flag(name: str) -> bool:
    import os

    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}
