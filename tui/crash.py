"""When a bug gets through: the traceback goes to a log file, and the writer gets one paragraph.

Textual prints the traceback of an unexpected error on its ``error_console`` as the app
closes. :class:`CrashReport` gives the app a console that writes into memory instead
(and also to the terminal with ``QUILLMATE_DEBUG=1``), so the writer sees what happened
and where their draft is, not a screenful of frames.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import time
from pathlib import Path

from rich.console import Console


class _Capture(io.StringIO):
    """Keeps what is written; with ``echo``, shows it on the terminal too."""

    def __init__(self, echo: bool) -> None:
        super().__init__()
        self._echo = echo

    def write(self, text: str) -> int:
        if self._echo:
            sys.stderr.write(text)
        return super().write(text)


class CrashReport:
    """Catches what Textual prints about an unexpected error (see the module docstring)."""

    def __init__(self) -> None:
        self._capture = _Capture(echo=debugging())
        self.console = Console(file=self._capture, markup=False, highlight=False, color_system=None)
        """The console to give the app as its ``error_console``."""
        self._message: str | None = None

    @property
    def traceback(self) -> str:
        """What was printed about the error ("" if nothing went wrong)."""
        return self._capture.getvalue()

    def message(self, session_id: str, return_code: int | None) -> str:
        """One paragraph for the writer if the app closed on an unexpected error, else ""; writes the log once."""
        if self._message is not None:
            return self._message
        text = self.traceback
        if return_code != 1 or not text.strip():
            return ""
        where = ""
        with contextlib.suppress(Exception):
            where = f" The details are in {_write_log(text)}."
        self._message = (
            f"quillmate met an unexpected problem and had to close ({_summary(text)}). "
            f"Your draft is saved: quillmate write --session {session_id}.{where}"
        )
        return self._message


def debugging() -> bool:
    """True when ``QUILLMATE_DEBUG`` asks for tracebacks."""
    return os.environ.get("QUILLMATE_DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}


def _summary(traceback: str) -> str:
    """The error's own line (``TypeError: …``): what follows the last frame's box."""
    lines = traceback.rstrip().splitlines()
    last_box = max((i for i, line in enumerate(lines) if line.lstrip().startswith("╰")), default=-1)
    tail = " ".join(line.strip() for line in lines[last_box + 1 :] if line.strip())
    return tail or "see the log"


def _write_log(text: str) -> Path:
    """Write ``text`` to a log file in quillmate's data folder; return its path."""
    from assistant import paths

    folder = paths.ensure_dir(paths.data_dir() / "logs")
    path = folder / time.strftime("crash-%Y%m%d-%H%M%S.log")
    path.write_text(text, encoding="utf-8")
    return path


__all__ = ["CrashReport", "debugging"]
