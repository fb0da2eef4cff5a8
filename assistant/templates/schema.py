"""The shape of a template file, checked key by key, and how a shape error reads to a writer."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from assistant.templates.common import Output, TemplateFormat, did_you_mean


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
        derive: When left empty, the value is worked out from ``from_`` this way, one of
            :data:`~assistant.templates.derivations.DERIVATIONS` (e.g. ``keywords``).
        from_: The variable ``derive`` works from (``from`` in the file).
        params: For a ``choice``: generation settings that go with an option, e.g.
            ``haiku = { max_lines = 3 }``. The writer's own settings still win.
        finish: For a ``choice``: what the output must end with when an option is chosen,
            e.g. ``midjourney = " --ar {aspect} --v 6"``; see :mod:`assistant.templates.finish`.
        use_words: The words of this variable's value that carry meaning become the
            ``use_words`` setting: a local model is nudged to work each one in.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

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
    derive: str | None = None
    from_: str | None = Field(default=None, alias="from")
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    finish: dict[str, str] = Field(default_factory=dict)
    use_words: bool = False


class ChatForm(BaseModel):
    """The ``[chat]`` form: an optional system message and a user message."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    system: str | None = None
    user: str


class CompletionFile(BaseModel):
    """The ``[completion]`` table of a file."""

    model_config = ConfigDict(extra="forbid")

    prompt: str


class TemplateFile(BaseModel):
    """The shape of a template file, checked key by key.

    :class:`~assistant.templates.model.Template` is what a checked file becomes;
    the two differ in ``input``/``input_variable`` and in how ``completion`` is held.
    """

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    description: str = ""
    input: str | None = None
    output: Output = "list"
    format: TemplateFormat = "f-string"
    variables: dict[str, VariableSpec] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    chat: ChatForm | None = None
    completion: CompletionFile | None = None


KNOWN_KEYS: dict[str, tuple[str, ...]] = {
    "top": tuple(TemplateFile.model_fields),
    "variable": tuple(f.alias or k for k, f in VariableSpec.model_fields.items() if k != "name"),
    "chat": tuple(ChatForm.model_fields),
    "completion": tuple(CompletionFile.model_fields),
}


def prompt_sources(chat: ChatForm | None, completion: str | None) -> dict[tuple[str, str], str]:
    """A template's prompt texts, keyed by where they sit in the file, e.g. ``("chat", "user")``."""
    sources: dict[tuple[str, str], str] = {}
    if chat is not None:
        if chat.system is not None:
            sources["chat", "system"] = chat.system
        sources["chat", "user"] = chat.user
    if completion is not None:
        sources["completion", "prompt"] = completion
    return sources


# What a value must be, by the kind of pydantic error it raised.
_MUST_BE = {
    "string_type": "text in quotes",
    "bool_type": "true or false",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "int_parsing": "a whole number",
}


def describe_validation_error(error: dict[str, Any]) -> str:
    """One pydantic error about a file's shape, in a writer's words (without the line)."""
    loc = tuple(error["loc"])
    kind = error["type"]
    key = str(loc[-1]) if loc else ""
    parent = loc[:-1]
    if parent == ():
        table, known = "", KNOWN_KEYS["top"]
    elif parent[0] == "variables" and len(parent) == 2:
        table, known = f" in [variables.{parent[1]}]", KNOWN_KEYS["variable"]
    elif parent[0] in ("chat", "completion") and len(parent) == 1:
        table, known = f" in [{parent[0]}]", KNOWN_KEYS[str(parent[0])]
    else:
        table, known = f" in [{'.'.join(str(p) for p in parent)}]", ()
    got = error.get("input")
    if kind == "extra_forbidden":
        return f"unknown key '{key}'{table}.{did_you_mean(key, known)} Known keys: {', '.join(known)}"
    if kind == "missing":
        return f"'{key}' is missing{table}"
    if key == "format" and got == "jinja2":
        return (
            'format = "jinja2" is not offered: jinja2 templates can run code. '
            'Use format = "f-string" ({name}) or "mustache" ({{name}})'
        )
    if kind == "literal_error":
        return f"{key}{table} must be {error['ctx']['expected']} (got {got!r})"
    if kind in _MUST_BE:
        return f"{key}{table} must be {_MUST_BE[kind]} (got {got!r})"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        if loc in (("chat",), ("completion",)):
            first = "user" if key == "chat" else "prompt"
            return f'{key} must be a section: a line [{key}], then {first} = """..."""'
        return f"{key}{table} must be a table (a [section] or {{ ... }})"
    if kind == "list_type":
        return f'{key}{table} must be a list, like ["a", "b"]'
    return f"{key}{table}: {error['msg']}"
