"""What every command shares: one-line errors, exit codes, notes, reading stdin.

stdout carries only text, so quillmate can sit in a shell pipe or an editor filter:

* informational notes go to stderr only when stdout is a terminal (or with ``--verbose``);
  warnings that change the text (it was shortened to fit the model) always do, unless
  ``--quiet``; errors always do;
* with ``--include-input``, every failure puts the piped selection back on stdout, so an
  editor that replaces the selection with the output never loses it.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NoReturn

import click

from assistant import interrupts
from backends.errors import QuillmateError, UsageError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


@dataclass
class Output:
    """How chatty this run is, set by ``--quiet`` / ``--verbose`` wherever they are given."""

    quiet: bool = False
    verbose: bool = False


OUTPUT = Output()


def _exit_now(code: int) -> NoReturn:
    """Exit at once with ``code``, output flushed: after a Ctrl+C, nothing in the interpreter's
    shutdown (a model thread's last step, a second interrupt) may turn it into another exit."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def set_output_flag(name: str, value: bool) -> None:
    """Record ``--quiet`` or ``--verbose`` (they may come before or after the command)."""
    if value:
        setattr(OUTPUT, name, True)


def echo_err(message: str) -> None:
    """Print a line to stderr (notices, progress, errors): stdout carries only text."""
    click.echo(message, err=True)


def _stdout_is_terminal() -> bool:
    try:
        return sys.stdout is not None and sys.stdout.isatty()
    except (ValueError, OSError):
        return False


def note(message: str) -> None:
    """An informational note: shown in a terminal or with --verbose, never with --quiet.

    When stdout is a pipe or an editor filter, stderr may end up in the writer's buffer
    (Helix shows it instead of the text), so notes stay off it there.
    """
    if OUTPUT.quiet:
        return
    if OUTPUT.verbose or _stdout_is_terminal():
        echo_err(f"quillmate: note: {message}")


def warn(message: str) -> None:
    """Something that changed the text (e.g. it was shortened to fit): shown unless --quiet."""
    if not OUTPUT.quiet:
        echo_err(f"quillmate: warning: {message}")


class InputEcho:
    """With ``--include-input``: the piped selection, and whether it is back on stdout yet."""

    def __init__(self) -> None:
        self.enabled = False
        self.text: str | None = None
        self.written = False
        self._read = False

    def capture(self) -> str | None:
        """Read stdin once (None for a terminal); later calls return the same text."""
        if not self._read:
            self._read = True
            self.text = read_stdin_text(strict=False)
        return self.text

    def restore(self) -> None:
        """After a failure: put the selection back on stdout unless it is already there."""
        if not self.enabled or self.written:
            return
        with contextlib.suppress(Exception):
            text = self.capture()
            self.written = True
            if text:
                write_raw(text)


def write_raw(text: str) -> None:
    """Write the writer's own text to stdout byte for byte (undecodable bytes included)."""
    data = text.encode("utf-8", "surrogateescape")
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:
        sys.stdout.write(data.decode("utf-8", "replace"))
    else:
        buffer.write(data)
        buffer.flush()


INPUT_ECHO = InputEcho()


class ReaderGone(Exception):
    """stdout was closed by its reader (``| head``); raised instead of BrokenPipeError,
    which click would turn into exit status 1."""


def defer_interrupts() -> None:
    """Hold Ctrl+C until :func:`report_errors` can answer it (by restoring the selection)."""
    interrupts.defer()


def _resume_interrupts() -> None:
    interrupts.resume()


def _print_error(error: QuillmateError) -> None:
    INPUT_ECHO.restore()
    echo_err(f"quillmate: {error}")


def _reader_gone() -> None:
    # The reader went away (e.g. `| head`); silence the flush at exit.
    with contextlib.suppress(Exception):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    sys.exit(EXIT_OK)


@contextlib.contextmanager
def report_errors(*, debug: bool) -> Iterator[None]:
    """Turn every failure into a one-line message and the right exit code.

    ``--debug`` adds the traceback. Ctrl+C exits 130; a closed pipe (``| head``)
    exits quietly. With ``--include-input`` every failure first puts the selection back.
    """
    try:
        try:
            _resume_interrupts()
            yield
        except SystemExit as exit_:
            if exit_.code not in (None, 0):
                INPUT_ECHO.restore()
            raise
        except (BrokenPipeError, ReaderGone):
            _reader_gone()
        except (KeyboardInterrupt, click.Abort):
            INPUT_ECHO.restore()
            raise
        except click.exceptions.Exit as exit_:
            if exit_.exit_code:
                INPUT_ECHO.restore()
            raise
        except BaseException:
            INPUT_ECHO.restore()
            raise
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
        _exit_now(EXIT_INTERRUPTED)
    except Exception as error:
        if debug:
            traceback.print_exc()
        else:
            echo_err(
                f"quillmate: unexpected error: {type(error).__name__}: {error} "
                "(run again with --debug to see the details, and please report it)"
            )
        sys.exit(EXIT_FAILURE)


def stdin_has_waiting_text() -> bool:
    """True when text is waiting on a piped or redirected stdin, without reading it.

    Used to tell the writer that stdin was not used; stdin is left unread, so a loop
    such as ``while read line; do quillmate run ...; done < file`` keeps its input.
    """
    try:
        fd = sys.stdin.fileno()
        mode = os.fstat(fd).st_mode
        if stat.S_ISREG(mode):
            return os.fstat(fd).st_size > os.lseek(fd, 0, os.SEEK_CUR)
        if stat.S_ISFIFO(mode):
            import fcntl
            import struct
            import termios

            waiting = fcntl.ioctl(fd, termios.FIONREAD, struct.pack("i", 0))
            return struct.unpack("i", waiting)[0] > 0
    except (AttributeError, ValueError, OSError, ImportError):
        return False
    return False


def read_stdin_text(*, strict: bool = True) -> str | None:
    """Text piped on stdin, or None when stdin is a terminal or absent.

    Args:
        strict: False reads bytes that are not UTF-8 without complaint (they are kept
            as surrogate escapes and written back byte for byte).

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
    if INPUT_ECHO._read and INPUT_ECHO.text is not None:  # already read for --include-input
        data = INPUT_ECHO.text.encode("utf-8", "surrogateescape")
    else:
        data = stream.buffer.read() if hasattr(stream, "buffer") else stream.read().encode()
    if not strict:
        return data.decode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UsageError(
            f"The text on standard input is not valid UTF-8 (bad byte at offset {error.start}).",
            "Convert it first, e.g. `iconv -f latin1 -t utf-8 FILE | quillmate ...`.",
        ) from None
