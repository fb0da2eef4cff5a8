"""Prompt templates: small TOML files a writer can read and edit.

A template names its variables, says where its results go, carries default
generation settings, and holds a prompt in up to two forms: ``[chat]`` for
instruction models (OpenAI) and ``[completion]`` for base models such as the
bundled GPT-2. Built-ins live in the ``prompts`` package; a file of the same
name in the writer's templates folder overrides one.

Templates can never run code: at load time every ``{field}`` (f-string) or
``{{tag}}`` (mustache) must be a plain name of a declared variable, and
variable values are inserted verbatim, never interpreted or HTML-escaped.

Importing this module is cheap: langchain-core is imported only to render.
"""

from __future__ import annotations

import difflib
import re
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from assistant import paths
from assistant.errors import TemplateError
from backends.base import ChatMessage, GenerationParams, GenerationRequest, TextPart, join_parts
from backends.errors import InvalidParameters

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "ChatForm",
    "RenderedPrompt",
    "Template",
    "TemplateFileError",
    "TemplateLibrary",
    "VariableSpec",
    "check_template_file",
    "load_template_file",
    "starter_template",
]

Form = Literal["chat", "completion"]
Origin = Literal["builtin", "user", "file"]
Output = Literal["cursor", "selection", "list"]
TemplateFormat = Literal["f-string", "mustache"]

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_NAME_RULE = "Template names use letters, digits, '-' and '_', and start with a letter or digit."


class TemplateFileError(TemplateError):
    """A template file is malformed or unsafe; ``problems`` lists every "FILE:LINE: ..." line."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        more = len(problems) - 1
        hint = ""
        if more:
            hint = (
                f"({more} more problem{'s' if more > 1 else ''} in this file; "
                f"`quillmate templates validate {path}` lists them all.)"
            )
        super().__init__(problems[0], hint)
        self.path = path
        self.problems = problems


# --------------------------------------------------------------------------------------
# The data model
# --------------------------------------------------------------------------------------


class VariableSpec(BaseModel):
    """One variable of a template, as declared in ``[variables.NAME]``.

    Attributes:
        name: The variable's name (the table's name in the file).
        description: What to fill in; shown in forms and ``templates show``.
        kind: ``text`` (anything), ``choice`` (one of ``options``) or ``integer``.
        required: The template cannot run without a value.
        default: The value used when none is given (optional variables only).
        options: The allowed values of a ``choice``.
        min: The smallest allowed ``integer``.
        max: The largest allowed ``integer``.
        multiline: A hint for forms: offer a multi-line box.
        elastic: The writer's own, possibly long, text: when a prompt does not fit
            the model's context, the oldest part of elastic text is left out first.
        fallback: Another variable whose value is used when this one is left empty.
        params: For a ``choice``: generation settings that go with an option, e.g.
            ``haiku = { max_lines = 3 }``. The writer's own settings still win.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    description: str = ""
    kind: Literal["text", "choice", "integer"] = "text"
    required: bool = False
    default: Any = None
    options: list[str] = Field(default_factory=list)
    min: int | None = None
    max: int | None = None
    multiline: bool = False
    elastic: bool = False
    fallback: str | None = None
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)


class ChatForm(BaseModel):
    """The ``[chat]`` form: an optional system message and a user message."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    system: str | None = None
    user: str


class _CompletionFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str


class _TemplateFile(BaseModel):
    """The shape of a template file, checked key by key."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    description: str = ""
    input: str | None = None
    output: Output = "list"
    format: TemplateFormat = "f-string"
    variables: dict[str, VariableSpec] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    chat: ChatForm | None = None
    completion: _CompletionFile | None = None


_KNOWN_KEYS: dict[str, tuple[str, ...]] = {
    "top": tuple(_TemplateFile.model_fields),
    "variable": tuple(k for k in VariableSpec.model_fields if k != "name"),
    "chat": tuple(ChatForm.model_fields),
    "completion": tuple(_CompletionFile.model_fields),
}


class Template(BaseModel):
    """A loaded, checked template.

    Build one with :func:`load_template_file` or :class:`TemplateLibrary`; direct
    construction runs the same safety checks (without line numbers).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    input_variable: str | None = None
    output: Output = "list"
    format: TemplateFormat = "f-string"
    variables: dict[str, VariableSpec] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    chat: ChatForm | None = None
    completion: str | None = None
    path: Path | None = None
    origin: Origin = "file"
    overrides_builtin: bool = False

    _fields: dict[str, list[_Field]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _name_variables(cls, data: Any) -> Any:
        """Give each variable the name it is filed under."""
        if isinstance(data, dict) and isinstance(data.get("variables"), Mapping):
            named: dict[str, Any] = {}
            for key, spec in data["variables"].items():
                if isinstance(spec, VariableSpec):
                    named[key] = spec if spec.name == key else spec.model_copy(update={"name": key})
                elif isinstance(spec, Mapping):
                    named[key] = {**spec, "name": key}
                else:
                    named[key] = spec
            data = {**data, "variables": named}
        return data

    @field_validator("params", mode="after")
    @classmethod
    def _normalise_stop(cls, params: dict[str, Any]) -> dict[str, Any]:
        return _stop_as_tuple(params)

    @model_validator(mode="after")
    def _check_safe(self) -> Template:
        problems = _check(
            self.name, self.format, self.input_variable, self.variables, self.params, self.chat, self.completion
        )
        if problems:
            raise ValueError(problems[0].message)
        return self

    def model_post_init(self, context: Any, /) -> None:
        """Remember where the fields of each prompt are (used when rendering)."""
        for key, source in self._sources().items():
            self._fields[key] = _scan(source, self.format)[0]

    def _sources(self) -> dict[str, str]:
        sources: dict[str, str] = {}
        if self.chat is not None:
            if self.chat.system is not None:
                sources["system"] = self.chat.system
            sources["user"] = self.chat.user
        if self.completion is not None:
            sources["completion"] = self.completion
        return sources

    @property
    def forms(self) -> tuple[Form, ...]:
        """The prompt forms this template has: ``chat``, ``completion`` or both."""
        found: list[Form] = []
        if self.chat is not None:
            found.append("chat")
        if self.completion is not None:
            found.append("completion")
        return tuple(found)

    @property
    def required_variables(self) -> tuple[str, ...]:
        """Names of the variables that need a value."""
        return tuple(name for name, spec in self.variables.items() if spec.required)

    def resolve(self, values: Mapping[str, object]) -> dict[str, str]:
        """Check ``values`` and fill in defaults; return every variable's text.

        ``None`` counts as not given. Raises TemplateError for an unknown
        variable, a missing required value, or a value that is not allowed.
        """
        known = list(self.variables)
        for key, value in values.items():
            if key not in self.variables and value is not None:
                raise TemplateError(
                    f"Template '{self.name}' has no variable '{key}'.{_did_you_mean(key, known)}",
                    f"Its variables are: {', '.join(known)}." if known else "It takes no variables.",
                )
        resolved: dict[str, str] = {}
        for name, spec in self.variables.items():
            resolved[name] = self._resolve_one(spec, values.get(name))
        for name, spec in self.variables.items():
            if spec.fallback and resolved[name] == "":
                resolved[name] = resolved.get(spec.fallback, "")
        return resolved

    def _resolve_one(self, spec: VariableSpec, value: object) -> str:
        given = value is not None and not (isinstance(value, str) and value.strip() == "")
        if not given:
            if spec.required:
                hint = f"{spec.description}." if spec.description else ""
                if spec.name == self.input_variable:
                    hint = (hint + " You can also pipe it in on standard input.").strip()
                raise TemplateError(
                    f"Template '{self.name}' needs a value for '{spec.name}' (--var {spec.name}=...).", hint
                )
            return "" if spec.default is None else str(spec.default)
        if spec.kind == "integer":
            return str(self._check_integer(spec, value))
        if spec.kind == "choice":
            text = str(value).strip()
            for option in spec.options:
                if option.casefold() == text.casefold():
                    return option
            raise TemplateError(
                f"Template '{self.name}': '{spec.name}' must be one of {_quoted(spec.options)} "
                f"(got {text!r}).{_did_you_mean(text, spec.options)}"
            )
        return value if isinstance(value, str) else str(value)

    def _check_integer(self, spec: VariableSpec, value: object) -> int:
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
            number = int(value)
        if number is None:
            raise TemplateError(f"Template '{self.name}': '{spec.name}' must be a whole number (got {value!r}).")
        if spec.min is not None and number < spec.min:
            raise TemplateError(f"Template '{self.name}': '{spec.name}' must be at least {spec.min} (got {number}).")
        if spec.max is not None and number > spec.max:
            raise TemplateError(f"Template '{self.name}': '{spec.name}' must be at most {spec.max} (got {number}).")
        return number

    def settings_for(self, resolved: Mapping[str, object]) -> dict[str, Any]:
        """The template's generation settings, with those that go with the chosen options.

        ``resolved`` holds the variables as :meth:`resolve` returns them.
        """
        params = dict(self.params)
        for name, spec in self.variables.items():
            chosen = spec.params.get(str(resolved.get(name, "")))
            if chosen:
                params.update(_stop_as_tuple(chosen))
        return params

    def render(self, values: Mapping[str, object], form: Form) -> RenderedPrompt:
        """Fill the template in with ``values`` and return the prompt in ``form``.

        Values are inserted verbatim. Elastic variables become
        ``TextPart(value, elastic=True)``; everything else is fixed text.
        """
        if form not in ("chat", "completion"):
            raise TemplateError(f"Unknown prompt form {form!r}; use 'chat' or 'completion'.")
        if form not in self.forms:
            other = self.forms[0]
            raise TemplateError(f"Template '{self.name}' has no {form} form (it has only a {other} form).")
        resolved = self.resolve(values)
        params = self.settings_for(resolved)
        if form == "completion":
            parts = self._render_source("completion", resolved)
            return RenderedPrompt(self.name, "completion", parts, None, params)
        messages: list[ChatMessage] = []
        if "system" in self._fields:
            system = self._render_source("system", resolved)
            if join_parts(system).strip():
                messages.append(ChatMessage("system", system))
        messages.append(ChatMessage("user", self._render_source("user", resolved)))
        return RenderedPrompt(self.name, "chat", None, tuple(messages), params)

    def _render_source(self, key: str, resolved: dict[str, str]) -> tuple[TextPart, ...]:
        source = self._sources()[key]
        fields = self._fields[key]
        source = _drop_empty_lines(source, fields, resolved)
        # Every variable is rendered as a unique marker; the markers are then replaced
        # by the values here, so nothing in a value is ever interpreted or escaped.
        nonce = secrets.token_hex(8)
        names = list(self.variables)
        used = {f.name for f in fields}
        marks = {name: f"\ue000{nonce}{i}\ue001" for i, name in enumerate(names) if name in used}
        text = _format_with_langchain(source, self.format, marks)
        parts: list[TextPart] = []
        fixed: list[str] = []

        def flush() -> None:
            joined = "".join(fixed)
            if joined:
                parts.append(TextPart(joined))
            fixed.clear()

        pos = 0
        for match in re.finditer("\ue000" + nonce + r"(\d+)\ue001", text):
            fixed.append(text[pos : match.start()])
            name = names[int(match.group(1))]
            value = resolved[name]
            if self.variables[name].elastic:
                if value:
                    flush()
                    parts.append(TextPart(value, elastic=True))
            else:
                fixed.append(value)
            pos = match.end()
        fixed.append(text[pos:])
        flush()
        return tuple(parts)

    def pick_form(self, chat: bool, completion: bool) -> Form:
        """The form to use with a backend that takes chat and/or completion prompts.

        Chat is preferred when both sides have it; otherwise completion.
        """
        if chat and self.chat is not None:
            return "chat"
        if completion and self.completion is not None:
            return "completion"
        if not chat and not completion:
            raise TemplateError("This backend takes neither chat messages nor completion prompts.")
        if chat:
            raise TemplateError(
                f"Template '{self.name}' has only a completion form (for base models such as GPT-2), "
                "but this backend only takes chat messages.",
                "Add a [chat] section to the template, or use a backend that takes completion prompts.",
            )
        raise TemplateError(
            f"Template '{self.name}' has only a chat form, but this backend only takes completion prompts "
            "(a base model such as GPT-2).",
            "Add a [completion] section to the template, or use a chat backend such as OpenAI.",
        )


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


# --------------------------------------------------------------------------------------
# Fields: scanning, safety, line dropping, rendering
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Field:
    name: str
    start: int
    end: int


@dataclass(frozen=True)
class _Problem:
    loc: tuple[str | int, ...]
    message: str
    offset: int | None = None
    snippet: str | None = None
    value: str | None = None


_LITERAL_BRACE = "to write a literal brace in an f-string template, double it: {{ or }}"


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _scan(source: str, fmt: str) -> tuple[list[_Field], list[tuple[int, str, str]]]:
    """The variable fields of a prompt, and its unsafe or malformed bits as (offset, snippet, message)."""
    return _scan_mustache(source) if fmt == "mustache" else _scan_fstring(source)


def _scan_fstring(source: str) -> tuple[list[_Field], list[tuple[int, str, str]]]:
    fields: list[_Field] = []
    problems: list[tuple[int, str, str]] = []
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch == "}":
            if source.startswith("}}", i):
                i += 2
                continue
            problems.append((i, "}", f"a lone '}}' ({_LITERAL_BRACE})"))
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
            problems.append((i, _short(source[i:j]), f"a '{{' that is never closed on its line ({_LITERAL_BRACE})"))
            i = j
            continue
        whole = source[i:j]
        inner = whole[1:-1]
        if inner.isidentifier():
            fields.append(_Field(inner, i, j))
        else:
            problems.append((i, _short(whole), _fstring_field_problem(whole, inner)))
        i = j
    return fields, problems


def _fstring_field_problem(whole: str, inner: str) -> str:
    shown = f"'{_short(whole)}'"
    if inner.strip() == "":
        return f"{shown} is empty; name a variable, like {{topic}} ({_LITERAL_BRACE})"
    if inner.startswith("%") or inner.endswith("%"):
        return f"{shown} looks like jinja2, which templates do not run ({_LITERAL_BRACE})"
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
    return f"{shown} is not a variable name (letters, digits and _ only; {_LITERAL_BRACE})"


def _scan_mustache(source: str) -> tuple[list[_Field], list[tuple[int, str, str]]]:
    fields: list[_Field] = []
    problems: list[tuple[int, str, str]] = []
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
            problems.append((i, _short(source[i:stop]), f"'{_short(source[i:stop])}' is never closed on its line"))
            i += 2
            continue
        j = end + len(closer)
        whole = source[i:j]
        inner = source[i + len(closer) : end]
        shown = f"'{_short(whole)}'"
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
            fields.append(_Field(name, i, j))
        elif name == "":
            problems.append((i, whole, f"{shown} is empty; name a variable, like {{{{topic}}}}"))
        elif "." in name or "[" in name:
            problems.append((i, whole, f"{shown} reaches into a value; a tag can only name a variable, like {{{{x}}}}"))
        else:
            problems.append((i, whole, f"{shown} is not a variable name (letters, digits and _ only)"))
        i = j
    return fields, problems


def _drop_empty_lines(source: str, fields: list[_Field], resolved: Mapping[str, str]) -> str:
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


def _format_with_langchain(source: str, fmt: str, marks: dict[str, str]) -> str:
    """Render ``source`` (already checked safe) through a langchain-core PromptTemplate."""
    from langchain_core.prompts import PromptTemplate

    prompt = PromptTemplate.from_template(source, template_format=fmt)
    return prompt.format(**{name: marks[name] for name in prompt.input_variables})


def _stop_as_tuple(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with ``stop`` as a tuple (TOML gives a string or a list)."""
    stop = params.get("stop")
    if isinstance(stop, str):
        return {**params, "stop": (stop,)}
    if isinstance(stop, list):
        return {**params, "stop": tuple(stop)}
    return dict(params)


# --------------------------------------------------------------------------------------
# Checks shared by files and direct construction
# --------------------------------------------------------------------------------------


def _check(
    name: str,
    fmt: str,
    input_variable: str | None,
    variables: Mapping[str, VariableSpec],
    params: Mapping[str, Any],
    chat: ChatForm | None,
    completion: str | None,
) -> list[_Problem]:
    problems: list[_Problem] = []
    add = problems.append
    known = list(variables)
    if not NAME_PATTERN.fullmatch(name):
        add(_Problem(("name",), f"'{name}' is not a usable template name. {_NAME_RULE}"))
    if chat is None and completion is None:
        add(_Problem((), "the template has no prompt; add a [chat] section, a [completion] section, or both"))
    if input_variable is not None and input_variable not in variables:
        suggestion = _did_you_mean(input_variable, known)
        add(_Problem(("input",), f"input = '{input_variable}' is not a declared variable.{suggestion}"))
    for vname, spec in variables.items():
        problems.extend(_check_variable(vname, spec, known))
    problems.extend(_check_params(params))
    sources: list[tuple[tuple[str, ...], str]] = []
    if chat is not None:
        if chat.system is not None:
            sources.append((("chat", "system"), chat.system))
        sources.append((("chat", "user"), chat.user))
    if completion is not None:
        sources.append((("completion", "prompt"), completion))
    for loc, source in sources:
        where = ".".join(loc)
        if not source.strip():
            add(_Problem(loc, f"{where} is empty"))
            continue
        fields, unsafe = _scan(source, fmt)
        for offset, snippet, message in unsafe:
            add(_Problem(loc, f"in {where}: {message}", offset, snippet, source))
        for f in fields:
            if f.name not in variables:
                field_text = source[f.start : f.end]
                add(
                    _Problem(
                        loc,
                        f"in {where}: '{field_text}' is not a declared variable.{_did_you_mean(f.name, known)} "
                        f"Declare it with a [variables.{f.name}] table"
                        + (f" (declared: {', '.join(known)})" if known else ""),
                        f.start,
                        field_text,
                        source,
                    )
                )
    return problems


def _check_variable(vname: str, spec: VariableSpec, known: list[str]) -> list[_Problem]:
    problems: list[_Problem] = []

    def add(key: str, message: str) -> None:
        problems.append(_Problem(("variables", vname, key) if key else ("variables", vname), message))

    table = f"[variables.{vname}]"
    if not vname.isidentifier():
        add("", f"'{vname}' is not a usable variable name (letters, digits and _, not starting with a digit)")
    if spec.required and spec.default is not None:
        add("default", f"{table} is required, so it cannot also have a default; drop one of the two")
    if spec.kind == "choice":
        if not spec.options:
            add("kind", f"{table} is a choice but has no options; add options = [\"...\", \"...\"]")
        elif len(set(spec.options)) != len(spec.options):
            add("options", f"{table} lists an option twice")
        if spec.default is not None and spec.default not in spec.options:
            add("default", f"the default of {table} ({spec.default!r}) is not one of its options")
    elif spec.options:
        add("options", f"options only apply to kind = \"choice\" ({table} is {spec.kind})")
    if spec.kind == "integer":
        if spec.min is not None and spec.max is not None and spec.min > spec.max:
            add("min", f"in {table}, min ({spec.min}) is larger than max ({spec.max})")
        if spec.default is not None:
            if not isinstance(spec.default, int) or isinstance(spec.default, bool):
                add("default", f"the default of {table} must be a whole number without quotes, like default = 5")
            elif (spec.min is not None and spec.default < spec.min) or (
                spec.max is not None and spec.default > spec.max
            ):
                add("default", f"the default of {table} ({spec.default}) is outside its min/max")
    else:
        for key in ("min", "max"):
            if getattr(spec, key) is not None:
                add(key, f"{key} only applies to kind = \"integer\" ({table} is {spec.kind})")
        if spec.default is not None and not isinstance(spec.default, str):
            add("default", f"the default of {table} must be text in quotes, like default = \"...\"")
    if spec.params:
        if spec.kind != "choice":
            add("params", f"settings by option only apply to kind = \"choice\" ({table} is {spec.kind})")
        for option, settings in spec.params.items():
            at = ("variables", vname, "params", option)
            if option not in spec.options:
                problems.append(_Problem(at, f"'{option}' in [variables.{vname}.params] is not one of the options "
                                             f"of {table}"))
            elif not isinstance(settings, Mapping):
                problems.append(_Problem(at, f"'{option}' in [variables.{vname}.params] must be a table, "
                                             "like { max_lines = 3 }"))
            else:
                for problem in _check_params(settings):
                    where = f"[variables.{vname}.params] for '{option}'"
                    problems.append(_Problem(at, problem.message.replace("[params]", where)))
    if spec.elastic and spec.kind != "text":
        add("elastic", f"only text variables can be elastic ({table} is {spec.kind})")
    if spec.fallback is not None and (spec.fallback == vname or spec.fallback not in known):
        add("fallback", f"fallback = '{spec.fallback}' in {table} must name another declared variable")
    return problems


def _check_params(params: Mapping[str, Any]) -> list[_Problem]:
    problems: list[_Problem] = []
    known = GenerationParams.names()
    for key, value in params.items():
        if key not in known:
            problems.append(
                _Problem(
                    ("params", key),
                    f"unknown setting '{key}' in [params].{_did_you_mean(key, known)} "
                    f"Known settings: {', '.join(known)}",
                )
            )
            continue
        try:
            GenerationParams(**{key: value}).validated()
        except InvalidParameters as error:
            problems.append(_Problem(("params", key), _param_message(error)))
        except (TypeError, ValueError):
            problems.append(_Problem(("params", key), f"{key} in [params] has the wrong kind of value ({value!r})"))
    if not problems and params:
        try:
            GenerationParams(**params).validated()
        except InvalidParameters as error:
            problems.append(_Problem(("params",), _param_message(error)))
    return problems


def _param_message(error: InvalidParameters) -> str:
    text = error.message.removeprefix("Invalid generation settings: ").rstrip(".")
    return f"in [params], {text}"


# --------------------------------------------------------------------------------------
# Loading files, with line numbers
# --------------------------------------------------------------------------------------

_HEADER = re.compile(r"^\s*\[(?!\[)\s*([^\]]+?)\s*\]\s*(?:#.*)?$")
_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""")
_KEY_PART = re.compile(r""""([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+)""")


def _key_parts(text: str) -> tuple[str, ...]:
    return tuple(next(g for g in m.groups() if g is not None) for m in _KEY_PART.finditer(text))


class _SourceMap:
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


def _describe_validation_error(error: dict[str, Any]) -> str:
    loc = tuple(error["loc"])
    kind = error["type"]
    key = str(loc[-1]) if loc else ""
    parent = loc[:-1]
    if parent == ():
        table, known = "", _KNOWN_KEYS["top"]
    elif parent[0] == "variables" and len(parent) == 2:
        table, known = f" in [variables.{parent[1]}]", _KNOWN_KEYS["variable"]
    elif parent[0] in ("chat", "completion") and len(parent) == 1:
        table, known = f" in [{parent[0]}]", _KNOWN_KEYS[str(parent[0])]
    else:
        table, known = f" in [{'.'.join(str(p) for p in parent)}]", ()
    got = error.get("input")
    if kind == "extra_forbidden":
        return f"unknown key '{key}'{table}.{_did_you_mean(key, known)} Known keys: {', '.join(known)}"
    if kind == "missing":
        return f"'{key}' is missing{table}"
    if key == "format" and got == "jinja2":
        return (
            'format = "jinja2" is not offered: jinja2 templates can run code. '
            'Use format = "f-string" ({name}) or "mustache" ({{name}})'
        )
    if kind == "literal_error":
        return f"{key}{table} must be {error['ctx']['expected']} (got {got!r})"
    if kind == "string_type":
        return f"{key}{table} must be text in quotes (got {got!r})"
    if kind == "bool_type":
        return f"{key}{table} must be true or false (got {got!r})"
    if kind in ("int_type", "int_from_float", "int_parsing"):
        return f"{key}{table} must be a whole number (got {got!r})"
    if kind in ("dict_type", "model_type", "model_attributes_type") and loc in (("chat",), ("completion",)):
        first = "user" if key == "chat" else "prompt"
        return f'{key} must be a section: a line [{key}], then {first} = """..."""'
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"{key}{table} must be a table (a [section] or {{ ... }})"
    if kind == "list_type":
        return f"{key}{table} must be a list, like [\"a\", \"b\"]"
    return f"{key}{table}: {error['msg']}"


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


def _load(path: Path, origin: Origin) -> tuple[Template | None, list[str]]:
    """Load and check one file; return the template (None on problems) and its problems."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise TemplateError(f"No template file at {path}.") from None
    except IsADirectoryError:
        raise TemplateError(f"{path} is a folder, not a template file.") from None
    except OSError as error:
        raise TemplateError(f"Cannot read template file {path}: {error.strerror or error}.") from None

    def problem(line: int, message: str) -> str:
        return f"{path}:{line}: {message}"

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        return None, [problem(line, "the file is not valid UTF-8 text; save it as UTF-8")]
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        line, message = _parse_error(error, text)
        return None, [problem(line, message)]

    where = _SourceMap(text)
    problems: list[str] = []
    variables = raw.get("variables")
    if isinstance(variables, dict):
        for vname, spec in variables.items():
            if isinstance(spec, dict) and "name" in spec:
                loc = ("variables", vname, "name")
                problems.append(
                    problem(where.line_of(loc), f"a variable's name is its table name ([variables.{vname}]); "
                            "remove the name key")
                )
                variables[vname] = {k: v for k, v in spec.items() if k != "name"}
    try:
        parsed = _TemplateFile.model_validate(raw, strict=True)
    except ValidationError as error:
        seen: set[str] = set()
        for item in error.errors():
            line = problem(where.line_of(tuple(item["loc"])), _describe_validation_error(dict(item)))
            if line not in seen:
                seen.add(line)
                problems.append(line)
        return None, _by_line(problems)

    stem = path.stem
    name = parsed.name if parsed.name is not None else stem
    if parsed.name is not None and parsed.name != stem:
        problems.append(
            problem(where.line_of(("name",)), f"name = \"{parsed.name}\" does not match the file name {path.name}; "
                    "rename one of them, or remove the name line")
        )
    if not NAME_PATTERN.fullmatch(stem):
        problems.append(problem(1, f"the file name '{path.name}' is not a usable template name. {_NAME_RULE}"))
    completion = parsed.completion.prompt if parsed.completion is not None else None
    for item in _check(name, parsed.format, parsed.input, parsed.variables, parsed.params, parsed.chat, completion):
        if item.offset is not None and item.value is not None:
            line = where.line_in_value(item.loc, item.value, item.offset, item.snippet)
        else:
            line = where.line_of(item.loc)
        entry = problem(line, item.message)
        if entry not in problems and not (item.loc == ("name",) and not NAME_PATTERN.fullmatch(stem)):
            problems.append(entry)
    if problems:
        return None, _by_line(problems)
    template = Template(
        name=name,
        description=parsed.description,
        input_variable=parsed.input,
        output=parsed.output,
        format=parsed.format,
        variables=parsed.variables,
        params=parsed.params,
        chat=parsed.chat,
        completion=completion,
        path=path,
        origin=origin,
    )
    return template, []


def _by_line(problems: list[str]) -> list[str]:
    """Problems in file order (stable for problems on the same line)."""

    def line(entry: str) -> int:
        match = re.search(r":(\d+): ", entry)
        return int(match.group(1)) if match else 0

    return sorted(problems, key=line)


def check_template_file(path: Path) -> list[str]:
    """Every problem of a template file as "FILE:LINE: what is wrong"; empty when it is fine."""
    try:
        return _load(Path(path), "file")[1]
    except TemplateError as error:
        return [str(error)]


def load_template_file(path: Path, origin: Origin = "file") -> Template:
    """Load and check a template file.

    Raises:
        TemplateFileError: the file is malformed or unsafe; the message reads
            "FILE:LINE: what is wrong" (``problems`` has them all).
        TemplateError: the file cannot be read.
    """
    template, problems = _load(Path(path), origin)
    if problems or template is None:
        raise TemplateFileError(Path(path), problems)
    return template


# --------------------------------------------------------------------------------------
# The library: built-ins plus the writer's own folder
# --------------------------------------------------------------------------------------


def builtin_templates_dir() -> Path:
    """The folder of the built-in templates (the installed ``prompts`` package)."""
    import prompts

    return Path(prompts.__file__).resolve().parent


class TemplateLibrary:
    """The templates a writer can use by name: built-ins, overridden by their own files.

    Attributes:
        user_dir: The writer's templates folder (``paths.templates_dir()`` by default).
        builtin_dir: The built-in templates folder.
        errors: The problems of files that :meth:`list` had to skip.
    """

    def __init__(self, user_dir: Path | None = None, builtin_dir: Path | None = None) -> None:
        self.user_dir = Path(user_dir) if user_dir is not None else paths.templates_dir()
        self.builtin_dir = Path(builtin_dir) if builtin_dir is not None else builtin_templates_dir()
        self.errors: list[TemplateError] = []

    @staticmethod
    def _files(folder: Path) -> dict[str, Path]:
        if not folder.is_dir():
            return {}
        return {
            p.stem: p for p in sorted(folder.glob("*.toml")) if p.is_file() and not p.name.startswith(".")
        }

    def names(self) -> list[str]:
        """Every template name (without loading the files), sorted."""
        return sorted(set(self._files(self.builtin_dir)) | set(self._files(self.user_dir)))

    def list(self) -> list[Template]:
        """Every usable template, sorted by name; broken files go to :attr:`errors`."""
        self.errors = []
        builtins = self._files(self.builtin_dir)
        found: dict[str, Template] = {}
        for name, path in builtins.items():
            try:
                found[name] = load_template_file(path, "builtin")
            except TemplateError as error:
                self.errors.append(error)
        for name, path in self._files(self.user_dir).items():
            try:
                template = load_template_file(path, "user")
            except TemplateError as error:
                self.errors.append(error)
                found.pop(name, None)  # `run NAME` would fail too: don't pretend the built-in is used
                continue
            found[name] = template.model_copy(update={"overrides_builtin": name in builtins})
        return [found[name] for name in sorted(found)]

    def get(self, name: str) -> Template:
        """The template called ``name``: the writer's own file first, then the built-in."""
        if NAME_PATTERN.fullmatch(name):
            user = self.user_dir / f"{name}.toml"
            builtin = self.builtin_dir / f"{name}.toml"
            if user.is_file():
                template = load_template_file(user, "user")
                return template.model_copy(update={"overrides_builtin": builtin.is_file()})
            if builtin.is_file():
                return load_template_file(builtin, "builtin")
        if name.endswith(".toml") or "/" in name or "\\" in name:
            raise TemplateError(
                f"Unknown template '{name}'.", "To use a template file by its path, pass --template-file PATH."
            )
        raise TemplateError(
            f"Unknown template '{name}'.{_did_you_mean(name, self.names())}", "See `quillmate templates list`."
        )

    def load_file(self, path: Path) -> Template:
        """A template from any file (``--template-file PATH``)."""
        return load_template_file(Path(path).expanduser(), "file")


# --------------------------------------------------------------------------------------
# The starter file for `quillmate templates new NAME`
# --------------------------------------------------------------------------------------

_STARTER = '''\
# A quillmate prompt template. Check it with `quillmate templates validate FILE`
# and run it with `quillmate run NAME --var subject="..."` (or pipe the subject in).
#
# In the prompts below, {subject} is replaced by the value of the variable
# `subject`. To write a literal brace, double it: {{ or }}.
# A line whose variables are all empty is left out, so "Tone: {tone}"
# disappears when no tone is given.

name = "NAME"                # must match the file name: NAME.toml
description = "One line saying what this template writes."
input = "subject"            # the variable that takes piped text or the editor's selection
output = "list"              # "cursor" (continue the text), "selection" (replace it) or "list"
format = "f-string"          # or "mustache", written {{subject}}

# One table per variable. kind is "text" (the default), "choice" or "integer".
[variables.subject]
description = "What to write about"
required = true
multiline = true

[variables.tone]
description = "How it should sound, e.g. wry, tender, urgent"
default = ""                 # optional: empty unless given

[variables.form]
kind = "choice"
options = ["paragraph", "list of lines", "dialogue"]
default = "paragraph"

[variables.words]
kind = "integer"
default = 100
min = 10
max = 1000

# Default generation settings; options such as --temperature still override them.
[params]
temperature = 0.8
max_new_tokens = 200

# For chat models (OpenAI and other instruction models).
[chat]
system = "You are a thoughtful writing partner. Reply with only the text asked for."
user = """Write a {form} of about {words} words about {subject}.
Tone: {tone}"""

# For base models such as the bundled GPT-2: write the start of a document
# and let the model carry on. Delete this section if you only use chat models.
[completion]
prompt = """Story: {subject}

"""
'''


def starter_template(name: str) -> str:
    """The text of a commented starter file for a new template called ``name``."""
    if not NAME_PATTERN.fullmatch(name):
        raise TemplateError(f"'{name}' cannot be a template name.", _NAME_RULE)
    return _STARTER.replace("NAME", name)


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------


def _did_you_mean(word: str, choices: Any) -> str:
    options = [str(c) for c in choices]
    lowered = {c.casefold(): c for c in options}
    match = difflib.get_close_matches(word.casefold(), list(lowered), n=1, cutoff=0.6)
    return f" Did you mean '{lowered[match[0]]}'?" if match else ""


def _quoted(options: list[str]) -> str:
    return ", ".join(f"'{o}'" for o in options)
