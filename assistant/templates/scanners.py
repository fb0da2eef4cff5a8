"""Finding the ``{field}`` (f-string) and ``{{tag}}`` (mustache) slots of a prompt, and the unsafe ones.

Only a plain variable name is a slot; anything that could reach an attribute,
call code, or use a mustache section, partial or delimiter change is reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LITERAL_BRACE = "to write a literal brace in an f-string template, double it: {{ or }}"

# (offset in the source, the text to show, what is wrong with it)
ScanProblem = tuple[int, str, str]


@dataclass(frozen=True)
class FieldSpan:
    """A variable's slot in a prompt: its name and where it sits (``source[start:end]``)."""

    name: str
    start: int
    end: int


def short(text: str, limit: int = 40) -> str:
    """``text``, cut to ``limit`` characters with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def scan(source: str, fmt: str) -> tuple[list[FieldSpan], list[ScanProblem]]:
    """The variable fields of a prompt, and its unsafe or malformed bits as (offset, snippet, message)."""
    return scan_mustache(source) if fmt == "mustache" else scan_fstring(source)


def scan_fstring(source: str) -> tuple[list[FieldSpan], list[ScanProblem]]:
    """:func:`scan` for ``format = "f-string"``."""
    fields: list[FieldSpan] = []
    problems: list[ScanProblem] = []
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch == "}":
            if source.startswith("}}", i):
                i += 2
                continue
            problems.append((i, "}", f"a lone '}}' ({LITERAL_BRACE})"))
            i += 1
            continue
        if ch != "{":
            i += 1
            continue
        if source.startswith("{{", i):
            i += 2
            continue
        depth, j = 1, i + 1
        while j < n and depth and source[j] != "\n":
            if source[j] == "{":
                depth += 1
            elif source[j] == "}":
                depth -= 1
            j += 1
        if depth:
            problems.append((i, short(source[i:j]), f"a '{{' that is never closed on its line ({LITERAL_BRACE})"))
            i = j
            continue
        whole = source[i:j]
        inner = whole[1:-1]
        if inner.isidentifier():
            fields.append(FieldSpan(inner, i, j))
        else:
            problems.append((i, short(whole), _fstring_field_problem(whole, inner)))
        i = j
    return fields, problems


def _fstring_field_problem(whole: str, inner: str) -> str:
    shown = f"'{short(whole)}'"
    if inner.strip() == "":
        return f"{shown} is empty; name a variable, like {{topic}} ({LITERAL_BRACE})"
    if inner.startswith("%") or inner.endswith("%"):
        return f"{shown} looks like jinja2, which templates do not run ({LITERAL_BRACE})"
    name = re.split(r"[.\[!:{]", inner, maxsplit=1)[0].strip()
    plain = f"{{{name}}}" if name.isidentifier() else "{name}"
    if "{" in inner:
        return f"{shown} has a field inside a field; write just {plain}"
    if "." in inner or "[" in inner:
        return f"{shown} reaches into a value; a field can only name a variable, like {plain}"
    if "!" in inner:
        return f"{shown} uses a conversion (!r, !s, !a); write just {plain}"
    if ":" in inner:
        return f"{shown} has a format spec; write just {plain}"
    if inner.strip().isidentifier():
        return f"{shown} has spaces inside the braces; write {{{inner.strip()}}}"
    if inner.isdigit():
        return f"{shown} is a number, not a variable name"
    return f"{shown} is not a variable name (letters, digits and _ only; {LITERAL_BRACE})"


def scan_mustache(source: str) -> tuple[list[FieldSpan], list[ScanProblem]]:
    """:func:`scan` for ``format = "mustache"``."""
    fields: list[FieldSpan] = []
    problems: list[ScanProblem] = []
    i = 0
    while True:
        i = source.find("{{", i)
        if i < 0:
            break
        triple = source.startswith("{{{", i)
        closer = "}}}" if triple else "}}"
        end = source.find(closer, i + len(closer))
        newline = source.find("\n", i)
        if end < 0 or (0 <= newline < end):
            stop = newline if newline >= 0 else len(source)
            problems.append((i, short(source[i:stop]), f"'{short(source[i:stop])}' is never closed on its line"))
            i += 2
            continue
        j = end + len(closer)
        whole = source[i:j]
        inner = source[i + len(closer) : end]
        shown = f"'{short(whole)}'"
        sigil = "" if triple else inner[:1]
        name = inner.strip()
        if sigil == "!":
            i = j
            continue  # a comment
        if sigil == "&":
            name = inner[1:].strip()
        if sigil in ("#", "^", "/"):
            problems.append((i, whole, f"{shown} is a mustache section; only plain {{{{variable}}}} tags are allowed"))
        elif sigil == ">":
            problems.append((i, whole, f"{shown} is a mustache partial; only plain {{{{variable}}}} tags are allowed"))
        elif sigil == "=":
            problems.append((i, whole, f"{shown} changes the mustache delimiters, which templates do not allow"))
        elif name.isidentifier():
            fields.append(FieldSpan(name, i, j))
        elif name == "":
            problems.append((i, whole, f"{shown} is empty; name a variable, like {{{{topic}}}}"))
        elif "." in name or "[" in name:
            problems.append((i, whole, f"{shown} reaches into a value; a tag can only name a variable, like {{{{x}}}}"))
        else:
            problems.append((i, whole, f"{shown} is not a variable name (letters, digits and _ only)"))
        i = j
    return fields, problems
