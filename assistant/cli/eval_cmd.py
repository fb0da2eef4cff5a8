"""``quillmate eval``: measure how well a backend writes (topic, form, fluency, image prompts)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from assistant.cli.common import echo_err
from backends.errors import UsageError


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--backend", "-b", help="Backend profile to measure (see `quillmate backends list`).")
@click.option("--model", "-m", help="Model to use instead of the profile's.")
@click.option("--subset", type=click.IntRange(min=1), help="Only the first N prompts of each template.")
@click.option("--seed", type=click.IntRange(min=0), default=1, show_default=True, help="Base seed of the prompt set.")
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the full report (figures and every sample) to this file.",
)
def eval_cmd(backend: str | None, model: str | None, subset: int | None, seed: int, json_path: Path | None) -> None:
    """Run a fixed, seeded set of prompts and print a table of figures per template.

    \b
      quillmate eval --subset 2
      quillmate eval --backend openai --json eval.json
    """
    from assistant.core import Assistant
    from assistant.evaluation import format_table, run_eval

    if json_path is not None and not json_path.parent.is_dir():
        raise UsageError(f"There is no folder '{json_path.parent}' to write the report in.")

    def progress(number: int, total: int, case: object) -> None:
        echo_err(f"quillmate: {number + 1}/{total} {case.template}: {case.label}")  # type: ignore[attr-defined]

    with Assistant(backend, model=model) as helper:
        report = run_eval(helper, subset=subset, seed=seed, progress=progress)
    click.echo(
        f"quillmate eval: backend {report['backend']} ({report['model']}), seed {seed}"
        + (f", subset {subset}" if subset else "")
    )
    click.echo(format_table(report))
    if json_path is not None:
        json_path.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        echo_err(f"quillmate: wrote {json_path}")
