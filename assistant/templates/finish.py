"""A template's finish: what an output must end with, declared per option of a choice.

    [variables.target.finish]
    midjourney = " --ar {aspect} --v 6"
    stable-diffusion = "\\nNegative prompt: blurry, low quality, distorted, watermark, text"

A finish is made of two kinds of piece, and the output is mended, not padded:

* **Parameters** (``--name value``) are the last word: any the model wrote with the same
  name are taken out, and the declared ones end the output's last line. So a chat model's
  ``--ar 16:9 --v 6`` stays as it is, a wrong ``--ar`` gives way to the chosen aspect, and
  nothing is doubled.
* A **labelled line** (``Label: text``) is added on a line of its own only when the output
  has no such label with something after its colon.

An output with no words in it is left alone. While the text streams in, whatever a finish
might still change (from the first parameter or label onwards, and trailing space) is held
back, so what the writer sees is always the start of the finished text.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Literal

from backends.base import Delta, GenerationResult, StreamEvent

PieceKind = Literal["parameter", "line"]

_PARAMETER = re.compile(r"--[A-Za-z][A-Za-z0-9_-]*")
_LABELLED = re.compile(r"([^:{}\n]*[A-Za-z][^:{}\n]*):(.*)")
_SHAPES = "parameters like --ar {aspect} --v 6, or a labelled line like Negative prompt: blurry"


@dataclass(frozen=True)
class FinishPiece:
    """One piece of a declared finish, before its variables are filled in.

    Attributes:
        kind: ``parameter`` (``--name value``) or ``line`` (``Label: text``).
        key: The parameter's name with its dashes, or the line's label.
        value: The parameter's value (empty for a bare flag) or the line's text, as declared.
    """

    kind: PieceKind
    key: str
    value: str


def parse_finish(source: str) -> tuple[list[FinishPiece], list[str]]:
    """The pieces of a declared finish, and what is wrong with it (empty when it is sound)."""
    pieces: list[FinishPiece] = []
    problems: list[str] = []
    for raw in source.split("\n"):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("-"):
            found, wrong = _parameters(line)
            pieces += found
            problems += wrong
            continue
        match = _LABELLED.fullmatch(line)
        if match is None:
            problems.append(f"'{line}' is neither of the shapes a finish takes: {_SHAPES}")
        elif not match.group(2).strip():
            problems.append(f"'{line}' has nothing after its colon")
        else:
            pieces.append(FinishPiece("line", " ".join(match.group(1).split()), match.group(2).strip()))
    if not pieces and not problems:
        problems.append(f"the finish is empty; write {_SHAPES}")
    keys = [p.key.casefold() for p in pieces]
    for piece in pieces:
        if keys.count(piece.key.casefold()) > 1 and f"'{piece.key}' appears twice" not in problems:
            problems.append(f"'{piece.key}' appears twice")
    return pieces, problems


def _parameters(line: str) -> tuple[list[FinishPiece], list[str]]:
    found: list[FinishPiece] = []
    for token in line.split():
        if token.startswith("-"):
            if not _PARAMETER.fullmatch(token):
                return [], [f"'{token}' is not a parameter name (two dashes, then letters, like --ar)"]
            found.append(FinishPiece("parameter", token, ""))
        else:
            last = found[-1]
            found[-1] = replace(last, value=f"{last.value} {token}".strip())
    return found, []


@dataclass(frozen=True)
class Finish:
    """A finish with its variables filled in, ready to mend outputs.

    Attributes:
        parameters: ``(name, value)`` pairs, e.g. ``("--ar", "16:9")``; value empty for a flag.
        lines: ``(label, text)`` pairs, e.g. ``("Negative prompt", "blurry, watermark")``.
    """

    parameters: tuple[tuple[str, str], ...] = ()
    lines: tuple[tuple[str, str], ...] = ()

    def __add__(self, other: Finish) -> Finish:
        return Finish(self.parameters + other.parameters, self.lines + other.lines)

    def __bool__(self) -> bool:
        return bool(self.parameters or self.lines)

    def apply(self, text: str) -> str:
        """``text`` ending as the finish says (unchanged when it already does, or has no words)."""
        if not any(ch.isalnum() for ch in text):
            return text
        out = text
        for name, value in self.parameters:
            out = _parameter_pattern(name, len(value.split())).sub("", out)
        missing: list[tuple[str, str]] = []
        for label, body in self.lines:
            if not _label_pattern(label, r"[ \t]*\S").search(out):
                out = _label_pattern(label, r"[ \t]*(?=\n|$)", lead=r"[ \t]*").sub("", out)
                missing.append((label, body))
        out = out.rstrip()
        if self.parameters:
            rows = out.split("\n")
            labelled = [any(_label_pattern(label, "").search(row) for label, _ in self.lines) for row in rows]
            at = next((i for i in range(len(rows) - 1, -1, -1) if rows[i].strip() and not labelled[i]), len(rows) - 1)
            added = " ".join(f"{name} {value}".strip() for name, value in self.parameters)
            rows[at] = f"{rows[at].rstrip()} {added}" if rows[at].strip() else added
            out = "\n".join(rows)
        out += "".join(f"\n{label}: {body}" for label, body in missing)
        return text if out == text.rstrip() else out

    def held_from(self, text: str) -> int:
        """Where :meth:`apply` might start changing ``text`` as more of it arrives.

        Everything before this point is final and can be shown.
        """
        point = len(text.rstrip())
        keys = [name for name, _ in self.parameters] + [f"{label}:" for label, _ in self.lines]
        for key in (k.lower() for k in keys):
            for start in range(point):
                if start and not _boundary(text[start - 1], key):
                    continue
                piece = text[start : start + len(key)].lower()
                if not key.startswith(piece):
                    continue
                after = text[start + len(key) : start + len(key) + 1]
                if key.startswith("-") and piece == key and after and re.match(r"[\w-]", after):
                    continue  # a longer parameter, e.g. --art for --ar
                point = start
                break
        while point and text[point - 1].isspace():
            point -= 1
        return point


def _boundary(before: str, key: str) -> bool:
    """Whether ``key`` may start after ``before``, as the patterns below would find it."""
    if key.startswith("-"):
        return before.isspace()
    return not (before.isascii() and before.isalpha())


def _parameter_pattern(name: str, values: int) -> re.Pattern[str]:
    """A parameter the model wrote: its name and as many words after it as the finish's value has."""
    return re.compile(rf"[ \t]*(?<!\S){re.escape(name)}(?![\w-])(?:[ \t]+(?!--)\S+){{0,{values}}}", re.IGNORECASE)


def _label_pattern(label: str, then: str, lead: str = "") -> re.Pattern[str]:
    return re.compile(rf"{lead}(?<![A-Za-z]){re.escape(label)}:{then}", re.IGNORECASE)


class _Held:
    """One alternative's text as it streams in, and how much of it has been shown."""

    def __init__(self, finish: Finish) -> None:
        self.finish = finish
        self.text = ""
        self.sent = 0

    def feed(self, piece: str) -> str:
        self.text += piece
        point = max(self.sent, self.finish.held_from(self.text))
        shown, self.sent = self.text[self.sent : point], point
        return shown


async def finish_stream(events: AsyncIterator[StreamEvent], finish: Finish) -> AsyncIterator[StreamEvent]:
    """``events`` with each alternative's text finished (see the module's docstring).

    Text that the finish might still change is held back and sent, finished, just
    before the result. An alternative that failed or was cancelled is passed on as
    it was written.
    """
    held: dict[int, _Held] = {}
    try:
        async for event in events:
            if isinstance(event, Delta):
                shown = held.setdefault(event.index, _Held(finish)).feed(event.text)
                if shown:
                    yield Delta(event.index, shown)
            elif isinstance(event, GenerationResult):
                texts: list[str] = []
                for index, text in enumerate(event.texts):
                    state = held.get(index) or _Held(finish)
                    reason = event.finish_reasons[index] if index < len(event.finish_reasons) else "stop"
                    whole = text if reason in ("error", "cancelled") else finish.apply(text)
                    sent = state.text[: state.sent]
                    if not whole.startswith(sent):  # cannot happen while apply keeps to held_from
                        whole = text
                    if whole.startswith(sent) and len(whole) > len(sent):
                        yield Delta(index, whole[len(sent) :])
                    texts.append(whole)
                yield replace(event, texts=tuple(texts))
            else:
                yield event
    finally:
        await events.aclose()  # type: ignore[attr-defined]
