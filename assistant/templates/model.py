"""The loaded, checked template: its variables, settings and prompt forms, and how it renders."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from assistant.errors import TemplateError
from assistant.keywords import keywords
from assistant.templates.common import Form, Origin, Output, TemplateFormat
from assistant.templates.finish import Finish, parse_finish
from assistant.templates.render import RenderedPrompt, render_parts
from assistant.templates.scanners import FieldSpan, scan
from assistant.templates.schema import ChatForm, VariableSpec, prompt_sources
from assistant.templates.validation import check_template
from assistant.templates.values import resolve_values
from backends.base import ChatMessage, TextPart, join_parts


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

    _fields: dict[tuple[str, str], list[FieldSpan]] = PrivateAttr(default_factory=dict)

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
        return stop_as_tuple(params)

    @model_validator(mode="after")
    def _check_safe(self) -> Template:
        problems = check_template(
            self.name, self.format, self.input_variable, self.variables, self.params, self.chat, self.completion
        )
        if problems:
            raise ValueError(problems[0].message)
        return self

    def model_post_init(self, context: Any, /) -> None:
        """Remember where the fields of each prompt are (used when rendering)."""
        for key, source in prompt_sources(self.chat, self.completion).items():
            self._fields[key] = scan(source, self.format)[0]

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
        return resolve_values(self.name, self.variables, self.input_variable, values)

    def settings_for(self, resolved: Mapping[str, object]) -> dict[str, Any]:
        """The template's generation settings, with those that go with the chosen options.

        ``resolved`` holds the variables as :meth:`resolve` returns them.
        """
        params = dict(self.params)
        for name, spec in self.variables.items():
            chosen = spec.params.get(str(resolved.get(name, "")))
            if chosen:
                params.update(stop_as_tuple(chosen))
        used = [keywords(str(resolved.get(name) or "")) for name, spec in self.variables.items() if spec.use_words]
        if any(used):
            params["use_words"] = tuple(dict.fromkeys(w for words in used for w in words))
        return params

    def finish_for(self, resolved: Mapping[str, object]) -> Finish:
        """What the output must end with for the chosen options (empty when nothing).

        ``resolved`` holds the variables as :meth:`resolve` returns them. A piece whose
        variables are all empty is left out, as an empty line of a prompt is.
        """
        finish = Finish()
        texts = {name: str(value) for name, value in resolved.items()}
        for name, spec in self.variables.items():
            source = spec.finish.get(texts.get(name, ""))
            if not source:
                continue
            for piece in parse_finish(source)[0]:
                fields = scan(piece.value, self.format)[0]
                value = " ".join(
                    join_parts(render_parts(piece.value, self.format, fields, self.variables, texts)).split()
                )
                if fields and not value:
                    continue
                if piece.kind == "parameter":
                    finish += Finish(parameters=((piece.key, value),))
                else:
                    finish += Finish(lines=((piece.key, value),))
        return finish

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
            parts = self._render_source(("completion", "prompt"), resolved)
            return RenderedPrompt(self.name, "completion", parts, None, params)
        messages: list[ChatMessage] = []
        if ("chat", "system") in self._fields:
            system = self._render_source(("chat", "system"), resolved)
            if join_parts(system).strip():
                messages.append(ChatMessage("system", system))
        messages.append(ChatMessage("user", self._render_source(("chat", "user"), resolved)))
        return RenderedPrompt(self.name, "chat", None, tuple(messages), params)

    def _render_source(self, key: tuple[str, str], resolved: dict[str, str]) -> tuple[TextPart, ...]:
        source = prompt_sources(self.chat, self.completion)[key]
        return render_parts(source, self.format, self._fields[key], self.variables, resolved)

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


def stop_as_tuple(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with ``stop`` as a tuple (TOML gives a string or a list)."""
    stop = params.get("stop")
    if isinstance(stop, str):
        return {**params, "stop": (stop,)}
    if isinstance(stop, list):
        return {**params, "stop": tuple(stop)}
    return dict(params)
