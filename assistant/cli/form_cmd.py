"""``quillmate form check``: syllables, rhymes and line count of a poem, and what breaks its form."""

from __future__ import annotations

import json
from pathlib import Path

import click

from assistant.cli.common import read_stdin_text
from backends.errors import UsageError

FORM_CHOICES = (
    "auto",
    "haiku",
    "tanka",
    "cinquain",
    "limerick",
    "sonnet",
    "shakespearean sonnet",
    "petrarchan sonnet",
    "couplets",
    "ballad stanza",
    "villanelle",
    "none",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def form() -> None:
    """Check poems against their form (haiku, limerick, sonnet, ...)."""


def _read(source: str) -> str:
    if source == "-":
        text = read_stdin_text()
        if text is None:
            raise UsageError("No poem on standard input.", "Pipe one in: `cat poem.txt | quillmate form check -`.")
        return text
    path = Path(source)
    if not path.is_file():
        raise UsageError(f"There is no file '{source}'.", "Give the path of a poem, or - to read standard input.")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"'{source}' is not UTF-8 text.", "Convert it first, e.g. with iconv.") from None
    except OSError as error:
        raise UsageError(f"Could not read '{source}': {error.strerror or error}.") from None


@form.command("check")
@click.argument("source", metavar="FILE|-")
@click.option(
    "--form",
    "form_name",
    default="auto",
    show_default=True,
    metavar="FORM",
    help="The form to check against: " + ", ".join(FORM_CHOICES) + ".",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def check(source: str, form_name: str, as_json: bool) -> int:
    """Show each line's syllables and rhyme, and what breaks the form.

    Exits 0 when the poem keeps its form, 1 when it does not.

    \b
      quillmate form check poem.txt --form haiku
      quillmate run poem --var form=limerick --var topic=cats | quillmate form check -
    """
    from assistant.forms import check_form

    text = _read(source)
    if not any(ch.isalpha() for ch in text):
        raise UsageError("The poem has no words to check.")
    report = check_form(text, None if form_name.strip().lower() == "none" else form_name)
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False))
        return 0 if report.ok else 1
    width = max(len(line.text) for line in report.lines)
    for line in report.lines:
        mark = "  ✗" if line.number in report.broken_lines else ""
        click.echo(f"{line.number:>3}  {line.text.ljust(width)}  {line.syllables:>2} syl  {line.rhyme}{mark}")
    click.echo("")
    if report.form is None:
        click.echo(f"{report.line_count} lines, rhyme scheme {report.rhyme_scheme}; no form was found to check.")
        return 0
    share = f", {report.rhymed_pairs} of {report.rhyme_pairs} rhyme pairs rhyme" if report.rhyme_pairs else ""
    click.echo(f"Form: {report.form} ({report.line_count} lines, rhyme scheme {report.rhyme_scheme}{share}).")
    if report.ok:
        click.echo("It keeps the form.")
        return 0
    click.echo("What breaks the form:")
    for problem in report.problems:
        click.echo(f"  - {problem[0].upper()}{problem[1:]}")
    return 1
