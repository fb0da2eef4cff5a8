"""Loading one template file: every problem reported as "FILE:LINE: what is wrong"."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import ValidationError

from assistant.errors import TemplateError
from assistant.templates.common import NAME_PATTERN, NAME_RULE, Origin
from assistant.templates.model import Template
from assistant.templates.schema import TemplateFile, describe_validation_error
from assistant.templates.toml_lines import SourceMap, TomlSyntaxError, read_toml
from assistant.templates.validation import check_template


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
        raw = read_toml(text)
    except TomlSyntaxError as error:
        return None, [problem(error.line, error.message)]

    where = SourceMap(text)
    problems: list[str] = []
    variables = raw.get("variables")
    if isinstance(variables, dict):
        for vname, spec in variables.items():
            if isinstance(spec, dict) and "name" in spec:
                loc = ("variables", vname, "name")
                problems.append(
                    problem(
                        where.line_of(loc),
                        f"a variable's name is its table name ([variables.{vname}]); remove the name key",
                    )
                )
                variables[vname] = {k: v for k, v in spec.items() if k != "name"}
    try:
        parsed = TemplateFile.model_validate(raw, strict=True)
    except ValidationError as error:
        seen: set[str] = set()
        for item in error.errors():
            entry = problem(where.line_of(tuple(item["loc"])), describe_validation_error(dict(item)))
            if entry not in seen:
                seen.add(entry)
                problems.append(entry)
        return None, _by_line(problems)

    stem = path.stem
    name = parsed.name if parsed.name is not None else stem
    if parsed.name is not None and parsed.name != stem:
        problems.append(
            problem(
                where.line_of(("name",)),
                f'name = "{parsed.name}" does not match the file name {path.name}; '
                "rename one of them, or remove the name line",
            )
        )
    if not NAME_PATTERN.fullmatch(stem):
        problems.append(problem(1, f"the file name '{path.name}' is not a usable template name. {NAME_RULE}"))
    completion = parsed.completion.prompt if parsed.completion is not None else None
    checked = check_template(
        name, parsed.format, parsed.input, parsed.variables, parsed.params, parsed.chat, completion
    )
    for found in checked:
        if found.offset is not None and found.value is not None:
            line = where.line_in_value(found.loc, found.value, found.offset, found.snippet)
        else:
            line = where.line_of(found.loc)
        entry = problem(line, found.message)
        if entry not in problems and not (found.loc == ("name",) and not NAME_PATTERN.fullmatch(stem)):
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
