"""Checking the values a writer gives a template's variables, and filling in defaults."""

from __future__ import annotations

import re
from collections.abc import Mapping

from assistant.errors import TemplateError
from assistant.templates.common import did_you_mean, quoted
from assistant.templates.derivations import derive
from assistant.templates.schema import VariableSpec


def resolve_values(
    template: str,
    variables: Mapping[str, VariableSpec],
    input_variable: str | None,
    values: Mapping[str, object],
) -> dict[str, str]:
    """Check ``values`` for the template called ``template``; return every variable's text.

    ``None`` counts as not given. Defaults fill what is not given, then each
    empty variable with a ``fallback`` takes that variable's text, and each empty
    variable with ``derive`` is worked out from its ``from`` variable.

    Raises:
        TemplateError: an unknown variable, a missing required value, or a value
            that is not allowed.
    """
    known = list(variables)
    for key, value in values.items():
        if key not in variables and value is not None:
            raise TemplateError(
                f"Template '{template}' has no variable '{key}'.{did_you_mean(key, known)}",
                f"Its variables are: {', '.join(known)}." if known else "It takes no variables.",
            )
    resolved: dict[str, str] = {}
    for name, spec in variables.items():
        resolved[name] = _resolve_one(template, spec, spec.name == input_variable, values.get(name))
    for name, spec in variables.items():
        if spec.fallback and resolved[name] == "":
            resolved[name] = resolved.get(spec.fallback, "")
    for name, spec in variables.items():
        if spec.derive and spec.from_ and resolved[name] == "":
            resolved[name] = derive(spec.derive, resolved.get(spec.from_, ""))
    return resolved


def _resolve_one(template: str, spec: VariableSpec, is_input: bool, value: object) -> str:
    given = value is not None and not (isinstance(value, str) and value.strip() == "")
    if not given:
        if spec.required:
            hint = f"{spec.description}." if spec.description else ""
            if is_input:
                hint = (hint + " You can also pipe it in on standard input.").strip()
            raise TemplateError(f"Template '{template}' needs a value for '{spec.name}' (--var {spec.name}=...).", hint)
        return "" if spec.default is None else str(spec.default)
    if spec.kind == "integer":
        return str(_check_integer(template, spec, value))
    if spec.kind == "choice":
        text = str(value).strip()
        for option in spec.options:
            if option.casefold() == text.casefold():
                return option
        suggestion = did_you_mean(text, spec.options)
        raise _must(template, spec, f"be one of {quoted(spec.options)} (got {text!r}).{suggestion}")
    return value if isinstance(value, str) else str(value)


def _check_integer(template: str, spec: VariableSpec, value: object) -> int:
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        number = int(value)
    if number is None:
        raise _must(template, spec, f"be a whole number (got {value!r}).")
    if spec.min is not None and number < spec.min:
        raise _must(template, spec, f"be at least {spec.min} (got {number}).")
    if spec.max is not None and number > spec.max:
        raise _must(template, spec, f"be at most {spec.max} (got {number}).")
    return number


def _must(template: str, spec: VariableSpec, rule: str) -> TemplateError:
    return TemplateError(f"Template '{template}': '{spec.name}' must {rule}")
