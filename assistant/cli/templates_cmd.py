"""``quillmate templates``: list, show, check and create prompt templates."""

from __future__ import annotations

import re
from pathlib import Path

import click

from assistant import paths
from assistant.cli.common import EXIT_USAGE, echo_err
from assistant.errors import TemplateError, UsageError
from assistant.templates import (
    NAME_PATTERN,
    Template,
    TemplateLibrary,
    VariableSpec,
    check_template_file,
    starter_template,
)

_ORIGIN_LABELS = {"builtin": "built-in", "user": "user", "file": "file"}


def _origin_label(template: Template) -> str:
    label = _ORIGIN_LABELS[template.origin]
    return f"{label}, overrides built-in" if template.overrides_builtin else label


def _looks_like_path(value: str) -> bool:
    return value.endswith(".toml") or "/" in value or "\\" in value


def _find(library: TemplateLibrary, name_or_path: str) -> Template:
    """A template by name, or by path when the argument is a .toml file."""
    if _looks_like_path(name_or_path):
        return library.load_file(Path(name_or_path))
    return library.get(name_or_path)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def templates() -> None:
    """List, show, check and create prompt templates.

    \b
    Built-in templates can be overridden: a file with the same name in your
    templates folder is used instead (`quillmate templates new poem --from poem`).
    """


@templates.command("list")
def list_templates() -> None:
    """List every template: name, where it comes from, what it writes."""
    library = TemplateLibrary()
    found = library.list()
    if found:
        name_width = max(len(t.name) for t in found)
        origin_width = max(len(_origin_label(t)) for t in found)
        for template in found:
            origin = _origin_label(template)
            click.echo(f"{template.name:<{name_width}}  {origin:<{origin_width}}  {template.description}".rstrip())
    else:
        echo_err("No templates found.")
    for error in library.errors:
        echo_err(f"quillmate: skipped a broken template: {error.message}")
        if error.hint:
            echo_err(f"  {error.hint}")
    echo_err(f"Your templates folder: {library.user_dir}")


def _variable_rows(template: Template) -> list[tuple[str, str, str, str]]:
    rows = []
    for name, spec in template.variables.items():
        rows.append((name + ("*" if spec.required else ""), _kind_text(spec), _default_text(spec), _about(spec)))
    return rows


def _kind_text(spec: VariableSpec) -> str:
    if spec.kind == "integer" and (spec.min is not None or spec.max is not None):
        low = "" if spec.min is None else str(spec.min)
        high = "" if spec.max is None else str(spec.max)
        return f"integer {low}..{high}"
    return spec.kind


def _default_text(spec: VariableSpec) -> str:
    if spec.required:
        return "(required)"
    if spec.fallback and spec.default in (None, ""):
        return f"(= {spec.fallback})"
    if spec.derive and spec.from_:
        return f"({spec.derive} of {spec.from_})"
    if spec.default is None or spec.default == "":
        return "(empty)"
    return str(spec.default)


def _about(spec: VariableSpec) -> str:
    notes = [spec.description] if spec.description else []
    if spec.options:
        notes.append("one of: " + ", ".join(spec.options))
    if spec.elastic:
        notes.append("elastic: oldest part left out when too long")
    if spec.multiline:
        notes.append("multi-line")
    if spec.finish:
        notes.append("finish for " + ", ".join(spec.finish))
    return "; ".join(notes)


@templates.command("show")
@click.argument("name")
def show(name: str) -> None:
    """Show a template: its file, its variables and the file itself.

    NAME is a template name, or the path of a .toml file.
    """
    template = _find(TemplateLibrary(), name)
    click.echo(f"{template.name} ({_origin_label(template)})")
    if template.description:
        click.echo(template.description)
    click.echo(f"File:    {template.path}")
    click.echo(f"Input:   {template.input_variable or '(none)'}")
    click.echo(f"Output:  {template.output}")
    click.echo(f"Forms:   {', '.join(template.forms)}")
    click.echo(f"Format:  {template.format}")
    if template.params:
        settings = ", ".join(f"{k}={v!r}" for k, v in template.params.items())
        click.echo(f"Settings: {settings}")
    rows = _variable_rows(template)
    click.echo("")
    if rows:
        header = ("variable", "kind", "default", "about")
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
        click.echo("Variables (* = required):")
        for row in [header, *rows]:
            click.echo(("  " + "  ".join(f"{row[i]:<{widths[i]}}" for i in range(3)) + "  " + row[3]).rstrip())
    else:
        click.echo("Variables: none")
    if template.path is not None:
        click.echo("")
        click.echo(f"--- {template.path.name} ---")
        click.echo(template.path.read_text(encoding="utf-8").rstrip("\n"))


@templates.command("validate")
@click.argument("files", nargs=-1, required=True)
@click.pass_context
def validate(ctx: click.Context, files: tuple[str, ...]) -> None:
    """Check template files; print "ok" for each good one.

    Problems are printed as FILE:LINE: what is wrong, and the exit status is 2.
    A template name (instead of a path) checks the file that name uses.
    """
    library = TemplateLibrary()
    failed = 0
    for item in files:
        path = Path(item).expanduser()
        if not path.exists() and not _looks_like_path(item) and NAME_PATTERN.fullmatch(item):
            for candidate in (library.user_dir / f"{item}.toml", library.builtin_dir / f"{item}.toml"):
                if candidate.is_file():
                    path = candidate
                    break
        problems = check_template_file(path)
        if not problems:
            problems = _trial_render(path)
        if problems:
            failed += 1
            for problem in problems:
                echo_err(problem)
        else:
            click.echo(f"{path}: ok")
    if failed:
        total = len(files)
        echo_err(f"quillmate: {failed} of {total} template file{'s' if total > 1 else ''} had problems.")
        ctx.exit(EXIT_USAGE)


def _trial_render(path: Path) -> list[str]:
    """Render every form once with sample values, to be sure the template really works."""
    try:
        template = TemplateLibrary().load_file(path)
        values = {name: _sample(spec) for name, spec in template.variables.items() if spec.required}
        for form in template.forms:
            template.render(values, form)
    except TemplateError as error:
        return [f"{path}:1: {error}"]
    except Exception as error:  # report, don't crash, on a template we could not render
        return [f"{path}:1: the template could not be rendered: {type(error).__name__}: {error}"]
    return []


def _sample(spec: VariableSpec) -> object:
    if spec.kind == "choice":
        return spec.options[0]
    if spec.kind == "integer":
        return spec.min if spec.min is not None else min(1, spec.max) if spec.max is not None else 1
    return "sample"


@templates.command("new")
@click.argument("name")
@click.option("--from", "source", metavar="TEMPLATE", help="Start from a copy of this template instead of a blank one.")
@click.option("--edit", is_flag=True, help="Open the new file in your editor ($EDITOR).")
def new(name: str, source: str | None, edit: bool) -> None:
    """Create a template file NAME.toml in your templates folder and print its path."""
    if not NAME_PATTERN.fullmatch(name):
        raise UsageError(
            f"'{name}' cannot be a template name.",
            "Use letters, digits, '-' and '_', starting with a letter or digit, e.g. my-poem.",
        )
    library = TemplateLibrary()
    if source is not None:
        original = _find(library, source)
        if original.path is None:
            raise TemplateError(f"Template '{source}' has no file to copy.")
        text = _renamed(original.path.read_text(encoding="utf-8"), name)
    else:
        text = starter_template(name)
    folder = paths.ensure_dir(library.user_dir)
    target = folder / f"{name}.toml"
    try:
        with target.open("x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        raise TemplateError(
            f"A template file already exists at {target}.", "Edit that file, or choose another name."
        ) from None
    click.echo(str(target))
    if (library.builtin_dir / f"{name}.toml").is_file():
        echo_err(f"Note: this file overrides the built-in '{name}' template until you delete it.")
    if edit:
        click.edit(filename=str(target))
        for problem in check_template_file(target):
            echo_err(problem)


def _renamed(text: str, name: str) -> str:
    """A copy of a template file's text with its name line changed to ``name``."""
    pattern = re.compile(r"^name\s*=\s*(\"[^\"\n]*\"|'[^'\n]*')", re.MULTILINE)
    if pattern.search(text):
        return pattern.sub(f'name = "{name}"', text, count=1)
    return f'name = "{name}"\n' + text
