"""``quillmate write``: open the writing app (found by the CLI through the ``quillmate.commands`` entry point)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from pathlib import Path
from typing import Any

import click

from assistant import UsageError


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--session", "session_id", metavar="ID", help="Resume a session (see `quillmate sessions list`).")
@click.option("--backend", "-b", help="Backend profile to write with (see `quillmate backends list`).")
@click.option("--model", "-m", help="Model to use instead of the profile's (a name or a folder).")
@click.option("--read-only", is_flag=True, help="Only look: nothing in the session is changed.")
def write(file: Path | None, session_id: str | None, backend: str | None, model: str | None, read_only: bool) -> None:
    """Open the writing app on FILE (created if it does not exist), or on a new session.

    \b
    Your draft is saved continuously; Ctrl+S also writes FILE, Ctrl+Q quits,
    F5 asks the model to carry on from the cursor, F1 lists every key.

    \b
      quillmate write chapter1.md
      quillmate write --session 3f2a9c10
      quillmate write notes.md --backend openai --model gpt-4o-mini
    """
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("quillmate write needs a terminal.", "Run it in a terminal window, not through a pipe.")
    from tui.app import make_app

    app = make_app(file, session_id=session_id, backend=backend, model=model, read_only=read_only)
    try:
        run_app(app)
    finally:
        app.finish()
    if app.exit_message:
        click.echo(app.exit_message, err=True)
    exit_promptly(app.return_code or 0)


def run_app(app: Any) -> None:
    """Run the app on a loop of its own that does not wait, at the end, for a model still loading."""
    loop = asyncio.new_event_loop()
    try:
        app.run(loop=loop)
    finally:
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()  # its worker threads are told to stop, but not waited for


def exit_promptly(code: int) -> None:
    """Exit now, even if a worker thread is still loading a model (everything is saved by now)."""
    busy = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    if not busy:
        if code:
            sys.exit(code)
        return
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)
