"""What every command shares: one-line errors, exit codes, reading stdin."""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Iterator

import click

from backends.errors import QuillmateError, UsageError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def echo_err(message: str) -> None:
    """Print a line to stderr (notices, progress, errors): stdout carries only text."""
    click.echo(message, err=True)


def _print_error(error: QuillmateError) -> None:
    echo_err(f"quillmate: {error}")


@contextlib.contextmanager
def report_errors(*, debug: bool) -> Iterator[None]:
    """Turn every failure into a one-line message and the right exit code.

    ``--debug`` adds the traceback. Ctrl+C exits 130; a closed pipe (``| head``)
    exits quietly.
    """
    try:
        yield
    except SystemExit:
        raise
    except QuillmateError as error:
        if debug:
            traceback.print_exc()
        _print_error(error)
        sys.exit(error.exit_code)
    except click.exceptions.Exit as exit_:
        sys.exit(exit_.exit_code)
    except click.ClickException as error:
        if debug:
            traceback.print_exc()
        error.show()
        sys.exit(error.exit_code)
    except (KeyboardInterrupt, click.Abort):
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        echo_err("quillmate: interrupted.")
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        # The reader went away (e.g. `| head`); silence the flush at exit.
        with contextlib.suppress(Exception):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        sys.exit(EXIT_OK)
    except Exception as error:
        if debug:
            traceback.print_exc()
        else:
            echo_err(
                f"quillmate: unexpected error: {type(error).__name__}: {error} "
                "(run again with --debug to see the details, and please report it)"
            )
        sys.exit(EXIT_FAILURE)


def read_stdin_text() -> str | None:
    """Text piped on stdin, or None when stdin is a terminal or absent.

    Raises:
        UsageError: when the input is not valid UTF-8 (names the byte offset).
    """
    stream = sys.stdin
    if stream is None or stream.closed:
        return None
    try:
        if stream.isatty():
            return None
    except (ValueError, OSError):
        return None
    data = stream.buffer.read() if hasattr(stream, "buffer") else stream.read().encode()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UsageError(
            f"The text on standard input is not valid UTF-8 (bad byte at offset {error.start}).",
            "Convert it first, e.g. `iconv -f latin1 -t utf-8 FILE | quillmate ...`.",
        ) from None
