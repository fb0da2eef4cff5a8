"""Reading TOML text and finding the line of each key, so a template's problems can say where they are."""

from __future__ import annotations

import re
import sys
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

_HEADER = re.compile(r"^\s*\[(?!\[)\s*([^\]]+?)\s*\]\s*(?:#.*)?$")
_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""")
_KEY_PART = re.compile(r""""([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+)""")


class TomlSyntaxError(Exception):
    """The text is not valid TOML; ``line`` and ``message`` say where and why, for a writer."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def read_toml(text: str) -> dict[str, Any]:
    """Parse ``text``.

    Raises:
        TomlSyntaxError: the text is not valid TOML.
    """
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise TomlSyntaxError(*_parse_error(error, text)) from None


def _parse_error(error: tomllib.TOMLDecodeError, text: str) -> tuple[int, str]:
    message = str(error)
    line = getattr(error, "lineno", None)
    match = re.search(r"\s*\(at line (\d+), column (\d+)\)\s*$", message)
    if match:
        line = line or int(match.group(1))
        message = f"{message[: match.start()]} (column {match.group(2)})"
    elif "end of document" in message:
        line = line or max(1, len(text.splitlines()))
        message = re.sub(r"\s*\(at end of document\)\s*$", " (at the end of the file)", message)
    return int(line or 1), f"this is not valid TOML: {message}"


def _key_parts(text: str) -> tuple[str, ...]:
    return tuple(next(g for g in m.groups() if g is not None) for m in _KEY_PART.finditer(text))


class SourceMap:
    """Where each key of a TOML file is, by line (good enough for error messages)."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.keys: dict[tuple[str, ...], int] = {}
        self.next_line_start: set[tuple[str, ...]] = set()
        table: tuple[str, ...] = ()
        open_delim: str | None = None
        for number, line in enumerate(self.lines, 1):
            if open_delim is not None:
                if line.count(open_delim) % 2 == 1:
                    open_delim = None
                continue
            header = _HEADER.match(line)
            if header:
                table = _key_parts(header.group(1))
                self.keys.setdefault(table, number)
                continue
            key = _KEY.match(line)
            if not key:
                continue
            path = table + _key_parts(key.group(1))
            self.keys.setdefault(path, number)
            rest = line[key.end() :].lstrip()
            for delim in ('"""', "'''"):
                if rest.startswith(delim):
                    after = rest[3:]
                    if after.count(delim) == 0:
                        open_delim = delim
                        if after.strip() == "":
                            self.next_line_start.add(path)
                    break

    def line_of(self, loc: tuple[str | int, ...]) -> int:
        """The line of ``loc`` or of its nearest enclosing table; 1 if unknown."""
        parts = tuple(str(p) for p in loc)
        for size in range(len(parts), 0, -1):
            if parts[:size] in self.keys:
                return self.keys[parts[:size]]
        return 1

    def line_in_value(self, loc: tuple[str | int, ...], value: str, offset: int, snippet: str | None) -> int:
        """The line of the text at ``offset`` inside the string value at ``loc``."""
        parts = tuple(str(p) for p in loc)
        start = self.keys.get(parts)
        if start is None:
            return self.line_of(loc)
        guess = start + (1 if parts in self.next_line_start else 0) + value.count("\n", 0, offset)
        if not snippet or (guess <= len(self.lines) and snippet in self.lines[guess - 1]):
            return min(guess, max(len(self.lines), 1))
        for number in range(start, len(self.lines) + 1):
            if snippet in self.lines[number - 1]:
                return number
        return start
