"""Filling a checked prompt in: dropping empty lines, rendering through langchain-core, the result.

Every variable is rendered as a unique marker that is then replaced by its
value here, so nothing in a value is ever interpreted or escaped. langchain-core
is imported only when something is rendered.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from assistant.templates.common import Form, TemplateFormat
from assistant.templates.scanners import FieldSpan
from assistant.templates.schema import VariableSpec
from backends.base import ChatMessage, GenerationParams, GenerationRequest, TextPart, join_parts


@dataclass(frozen=True)
class RenderedPrompt:
    """A filled-in template, ready to become a :class:`GenerationRequest`.

    Attributes:
        template: The template's name.
        form: ``chat`` or ``completion``.
        prompt: The completion prompt's parts (completion form), else None.
        messages: The chat messages (chat form), else None.
        params: The template's default generation settings (``stop`` as a tuple).
    """

    template: str
    form: Form
    prompt: tuple[TextPart, ...] | None
    messages: tuple[ChatMessage, ...] | None
    params: dict[str, Any]

    def merged_params(self, base: GenerationParams | None = None, **overrides: Any) -> GenerationParams:
        """``base`` (or the defaults), then the template's settings, then non-None ``overrides``."""
        return (base or GenerationParams()).with_overrides(**self.params).with_overrides(**overrides)

    def request(self, params: GenerationParams | None = None) -> GenerationRequest:
        """The request to send. ``params`` are used as given; None means :meth:`merged_params`."""
        final = self.merged_params() if params is None else params
        if self.form == "chat":
            return GenerationRequest.chat(self.messages or (), final)
        return GenerationRequest.completion(self.prompt or (), final)

    @property
    def text(self) -> str:
        """The whole prompt as plain text, for showing to the writer."""
        if self.prompt is not None:
            return join_parts(self.prompt)
        return "\n\n".join(f"[{m.role}]\n{m.text}" for m in self.messages or ())


def render_parts(
    source: str,
    fmt: TemplateFormat,
    fields: list[FieldSpan],
    variables: Mapping[str, VariableSpec],
    resolved: Mapping[str, str],
) -> tuple[TextPart, ...]:
    """``source`` (already checked safe) filled in with ``resolved``, as prompt parts.

    Elastic variables become ``TextPart(value, elastic=True)``; everything else is fixed text.
    """
    source = drop_empty_lines(source, fields, resolved)
    nonce = secrets.token_hex(8)
    names = list(variables)
    used = {f.name for f in fields}
    marks = {name: f"\ue000{nonce}{i}\ue001" for i, name in enumerate(names) if name in used}
    text = _format_with_langchain(source, fmt, marks)
    parts: list[TextPart] = []
    fixed: list[str] = []
    filled: list[tuple[str, str]] = []  # so a prompt too long for the model can name the culprit

    def flush() -> None:
        joined = "".join(fixed)
        if joined:
            parts.append(TextPart(joined, values=tuple(filled)))
        fixed.clear()
        filled.clear()

    pos = 0
    for match in re.finditer("\ue000" + nonce + r"(\d+)\ue001", text):
        fixed.append(text[pos : match.start()])
        name = names[int(match.group(1))]
        value = resolved[name]
        if variables[name].elastic:
            if value:
                flush()
                parts.append(TextPart(value, elastic=True))
        else:
            fixed.append(value)
            filled.append((name, value))
        pos = match.end()
    fixed.append(text[pos:])
    flush()
    return tuple(parts)


def drop_empty_lines(source: str, fields: list[FieldSpan], resolved: Mapping[str, str]) -> str:
    """Leave out each line whose variables are all empty.

    If that would put two blank lines together, or a blank line at the very
    start or end, the extra blank line goes too.
    """
    if not fields:
        return source
    lines = source.splitlines(keepends=True)
    starts: list[int] = []
    pos = 0
    for line in lines:
        starts.append(pos)
        pos += len(line)
    on_line: dict[int, list[str]] = {}
    row = 0
    for f in sorted(fields, key=lambda f: f.start):
        while row + 1 < len(starts) and starts[row + 1] <= f.start:
            row += 1
        on_line.setdefault(row, []).append(f.name)
    drop = {row for row, names in on_line.items() if all(resolved.get(n, "") == "" for n in names)}
    if not drop:
        return source
    kept: list[str] = []
    previous_blank = True  # the start of the text counts as a blank line
    skip_blank = False
    for row, line in enumerate(lines):
        if row in drop:
            skip_blank = skip_blank or previous_blank
            continue
        blank = line.strip() == ""
        if skip_blank and blank:
            skip_blank = False
            continue
        skip_blank = False
        kept.append(line)
        previous_blank = blank
    last = len(lines) - 1
    if last in drop:
        # The text ended on left-out lines: the end counts as a blank line too.
        while kept and kept[-1].strip() == "":
            kept.pop()
        if kept and not lines[last].endswith(("\n", "\r")):
            kept[-1] = kept[-1].rstrip("\r\n")
    return "".join(kept)


def _format_with_langchain(source: str, fmt: TemplateFormat, marks: dict[str, str]) -> str:
    """Render ``source`` (already checked safe) through a langchain-core PromptTemplate."""
    from langchain_core.prompts import PromptTemplate

    prompt = PromptTemplate.from_template(source, template_format=fmt)
    return prompt.format(**{name: marks[name] for name in prompt.input_variables})
