"""The checks a template passes whether it comes from a file or is built directly.

Each problem keeps where it is (a key path, and for prompt text an offset) so a
file's problems can be given a line number; see ``files.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from assistant.templates.common import NAME_PATTERN, NAME_RULE, did_you_mean
from assistant.templates.derivations import DERIVATIONS
from assistant.templates.finish import parse_finish
from assistant.templates.scanners import scan
from assistant.templates.schema import ChatForm, VariableSpec, prompt_sources
from backends.settings import SETTING_NAMES, combination_problems, validate_setting


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a template.

    Attributes:
        loc: The key path it is about, e.g. ``("variables", "tone", "default")``.
        message: What is wrong, in a writer's words.
        offset: For prompt text: where in ``value`` the problem starts.
        snippet: For prompt text: the bit to look for on the line.
        value: For prompt text: the whole text at ``loc``.
    """

    loc: tuple[str | int, ...]
    message: str
    offset: int | None = None
    snippet: str | None = None
    value: str | None = None


def check_template(
    name: str,
    fmt: str,
    input_variable: str | None,
    variables: Mapping[str, VariableSpec],
    params: Mapping[str, Any],
    chat: ChatForm | None,
    completion: str | None,
) -> list[Problem]:
    """Every problem of a template's parts; empty when it is safe and sound."""
    problems: list[Problem] = []
    add = problems.append
    known = list(variables)
    if not NAME_PATTERN.fullmatch(name):
        add(Problem(("name",), f"'{name}' is not a usable template name. {NAME_RULE}"))
    if chat is None and completion is None:
        add(Problem((), "the template has no prompt; add a [chat] section, a [completion] section, or both"))
    if input_variable is not None and input_variable not in variables:
        suggestion = did_you_mean(input_variable, known)
        add(Problem(("input",), f"input = '{input_variable}' is not a declared variable.{suggestion}"))
    for vname, spec in variables.items():
        problems.extend(_check_variable(vname, spec, variables))
        problems.extend(_check_finish(vname, spec, fmt, known))
    problems.extend(check_params(params))
    for loc, source in prompt_sources(chat, completion).items():
        where = ".".join(loc)
        if not source.strip():
            add(Problem(loc, f"{where} is empty"))
            continue
        fields, unsafe = scan(source, fmt)
        for offset, snippet, message in unsafe:
            add(Problem(loc, f"in {where}: {message}", offset, snippet, source))
        for f in fields:
            if f.name not in variables:
                field_text = source[f.start : f.end]
                add(
                    Problem(
                        loc,
                        f"in {where}: '{field_text}' is not a declared variable.{did_you_mean(f.name, known)} "
                        f"Declare it with a [variables.{f.name}] table"
                        + (f" (declared: {', '.join(known)})" if known else ""),
                        f.start,
                        field_text,
                        source,
                    )
                )
    return problems


def _check_variable(vname: str, spec: VariableSpec, variables: Mapping[str, VariableSpec]) -> list[Problem]:
    problems: list[Problem] = []
    known = list(variables)

    def add(key: str, message: str) -> None:
        problems.append(Problem(("variables", vname, key) if key else ("variables", vname), message))

    table = f"[variables.{vname}]"
    if not vname.isidentifier():
        add("", f"'{vname}' is not a usable variable name (letters, digits and _, not starting with a digit)")
    if spec.required and spec.default is not None:
        add("default", f"{table} is required, so it cannot also have a default; drop one of the two")
    if spec.kind == "choice":
        if not spec.options:
            add("kind", f'{table} is a choice but has no options; add options = ["...", "..."]')
        elif len(set(spec.options)) != len(spec.options):
            add("options", f"{table} lists an option twice")
        if spec.default is not None and spec.default not in spec.options:
            add("default", f"the default of {table} ({spec.default!r}) is not one of its options")
    elif spec.options:
        add("options", f'options only apply to kind = "choice" ({table} is {spec.kind})')
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
                add(key, f'{key} only applies to kind = "integer" ({table} is {spec.kind})')
        if spec.default is not None and not isinstance(spec.default, str):
            add("default", f'the default of {table} must be text in quotes, like default = "..."')
    if spec.params:
        if spec.kind != "choice":
            add("params", f'settings by option only apply to kind = "choice" ({table} is {spec.kind})')
        for option, settings in spec.params.items():
            at = ("variables", vname, "params", option)
            if option not in spec.options:
                problems.append(
                    Problem(at, f"'{option}' in [variables.{vname}.params] is not one of the options of {table}")
                )
            elif not isinstance(settings, Mapping):
                problems.append(
                    Problem(at, f"'{option}' in [variables.{vname}.params] must be a table, like {{ max_lines = 3 }}")
                )
            else:
                for problem in check_params(settings):
                    where = f"[variables.{vname}.params] for '{option}'"
                    problems.append(Problem(at, problem.message.replace("[params]", where)))
    if spec.elastic and spec.kind != "text":
        add("elastic", f"only text variables can be elastic ({table} is {spec.kind})")
    if spec.fallback is not None and (spec.fallback == vname or spec.fallback not in known):
        add("fallback", f"fallback = '{spec.fallback}' in {table} must name another declared variable")
    problems.extend(_check_derive(vname, spec, variables))
    return problems


def _check_derive(vname: str, spec: VariableSpec, variables: Mapping[str, VariableSpec]) -> list[Problem]:
    problems: list[Problem] = []

    def add(key: str, message: str) -> None:
        problems.append(Problem(("variables", vname, key), message))

    table = f"[variables.{vname}]"
    source = spec.from_
    if spec.derive is None:
        if source is not None:
            add("from", f"from = '{source}' in {table} only goes with derive, e.g. derive = \"keywords\"")
        return problems
    if spec.derive not in DERIVATIONS:
        add(
            "derive",
            f"derive = '{spec.derive}' in {table} is not something quillmate can work out."
            f"{did_you_mean(spec.derive, DERIVATIONS)} Known: {', '.join(DERIVATIONS)}",
        )
    if source is None:
        add("derive", f'{table} says what to derive but not from which variable; add from = "NAME"')
    elif source == vname or source not in variables:
        add(
            "from",
            f"from = '{source}' in {table} must name another declared variable.{did_you_mean(source, variables)}",
        )
    elif variables[source].derive is not None:
        add("from", f"from = '{source}' in {table} names a derived variable; derive from the one it comes from")
    if spec.kind != "text":
        add("derive", f"only text variables can be derived ({table} is {spec.kind})")
    if spec.required:
        add("required", f"{table} is derived, so it cannot be required; drop required = true")
    if spec.fallback is not None:
        add("fallback", f"{table} cannot have both a fallback and derive; keep one")
    if spec.default not in (None, ""):
        add("default", f"{table} is derived, so a default would keep it from ever being worked out; drop it")
    return problems


def _check_finish(vname: str, spec: VariableSpec, fmt: str, known: list[str]) -> list[Problem]:
    """A ``[variables.NAME.finish]`` table: options of a choice, each a sound, safe finish."""
    problems: list[Problem] = []
    table = f"[variables.{vname}.finish]"
    if spec.finish and spec.kind != "choice":
        problems.append(
            Problem(
                ("variables", vname, "finish"),
                f'a finish by option only applies to kind = "choice" ({vname} is {spec.kind})',
            )
        )
        return problems
    for option, source in spec.finish.items():
        at = ("variables", vname, "finish", option)
        if option not in spec.options:
            problems.append(Problem(at, f"'{option}' in {table} is not one of the options of [variables.{vname}]"))
            continue
        messages = parse_finish(source)[1]
        fields, unsafe = scan(source, fmt)
        messages += [message for _, _, message in unsafe]
        messages += [
            f"'{source[f.start : f.end]}' is not a declared variable.{did_you_mean(f.name, known)}"
            for f in fields
            if f.name not in known
        ]
        problems.extend(Problem(at, f"in {table} for '{option}': {message}") for message in messages)
    return problems


def check_params(params: Mapping[str, Any]) -> list[Problem]:
    """Every problem of a ``[params]`` table of generation settings.

    The one place templates judge generation settings, by the declaration in
    ``backends.settings``: each key must be a known setting with a valid value,
    and the settings must make sense together. Messages speak of ``[params]``;
    callers checking another table reword that.
    """
    problems: list[Problem] = []
    for key, value in params.items():
        if key not in SETTING_NAMES:
            problems.append(
                Problem(
                    ("params", key),
                    f"unknown setting '{key}' in [params].{did_you_mean(key, SETTING_NAMES)} "
                    f"Known settings: {', '.join(SETTING_NAMES)}",
                )
            )
        elif (problem := validate_setting(key, value)) is not None:
            problems.append(Problem(("params", key), f"in [params], {problem}"))
    if not problems and params:
        problems += [Problem(("params",), f"in [params], {p}") for p in combination_problems(params)]
    return problems
