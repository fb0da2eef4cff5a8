"""``quillmate tune``: tune a model on the writer's own texts, locally or through OpenAI.

``quillmate tune FILES... --name NAME`` tunes; ``quillmate tune status [JOB]`` watches an
OpenAI fine-tuning job again. Files come first, so the group sends anything that is not
``status`` to the tuning command itself.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click

from assistant.cli.common import EXIT_INTERRUPTED, OUTPUT, echo_err
from assistant.tuning.sources import Skipped


class _TuneGroup(click.Group):
    """``tune FILES...`` runs ``start``; ``tune status`` is a sub-command."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["start", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_TuneGroup, context_settings={"help_option_names": ["-h", "--help"]})
def tune() -> None:
    """Tune a model on your own writing, so it continues in your voice.

    \b
      quillmate tune ~/novels --name my-voice            # the bundled model, 10 minutes
      quillmate tune draft.md --name my-voice --base gpt2 --minutes 30
      quillmate tune ~/novels --name my-voice --resume   # keep training it
      quillmate tune ~/novels --name my-voice --backend openai --base gpt-4o-mini-2024-07-18
      quillmate tune status                              # watch an OpenAI job again

    Then write with it: quillmate run continue --backend my-voice
    """


def _skip_line(item: Skipped) -> None:
    echo_err(f"quillmate: skipped {item.path}: {item.reason}.")


def _status_line(line: str) -> None:
    if not OUTPUT.quiet:
        echo_err(f"quillmate: {line}")


@tune.command("start")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--name", required=True, help="Name of the tuned model and of its backend profile.")
@click.option(
    "--base",
    help="Model to start from: bundled (default), gpt2, or a model folder; with --backend openai, "
    "the OpenAI model to fine-tune.",
)
@click.option(
    "--method",
    type=click.Choice(["lora", "full"]),
    help="full (default for the bundled model) or lora (default for gpt2 and larger).",
)
@click.option("--minutes", type=click.FloatRange(min=0, min_open=True), help="Train for this long (default 10).")
@click.option("--steps", type=click.IntRange(min=1), help="Train for this many steps.")
@click.option("--resume", is_flag=True, help="Keep training the model named by --name.")
@click.option("--merge", is_flag=True, help="LoRA: save merged weights, faster to load and write with.")
@click.option(
    "--backend",
    "where",
    type=click.Choice(["local", "openai"]),
    default="local",
    show_default=True,
    help="Tune here, or fine-tune a hosted model through the OpenAI API.",
)
@click.option("--yes", "-y", is_flag=True, help="OpenAI: start the job without asking to confirm the cost.")
@click.option(
    "--profile",
    "openai_profile",
    default="openai",
    show_default=True,
    help="OpenAI: the profile whose key and server to use.",
)
@click.option(
    "--no-wait", is_flag=True, help="OpenAI: start the job and return; watch it with `quillmate tune status`."
)
@click.option("--poll-seconds", type=click.FloatRange(min=0), default=10.0, hidden=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=8, hidden=True)
@click.option("--seq-len", type=click.IntRange(min=8), default=256, hidden=True)
@click.pass_context
def start(
    ctx: click.Context,
    files: tuple[Path, ...],
    name: str,
    base: str | None,
    method: str | None,
    minutes: float | None,
    steps: int | None,
    resume: bool,
    merge: bool,
    where: str,
    yes: bool,
    openai_profile: str,
    no_wait: bool,
    poll_seconds: float,
    batch_size: int,
    seq_len: int,
) -> None:
    """Tune a model on FILES (.txt, .md; .docx, .odt, .epub with the tune-docs extra) or the folders holding them."""
    from backends.errors import UsageError

    if minutes is not None and steps is not None:
        raise UsageError("Give --minutes or --steps, not both.")
    if where == "openai":
        from assistant.cli.tune_openai import start_openai

        start_openai(
            list(files),
            name,
            base,
            yes=yes,
            profile=openai_profile,
            wait=not no_wait,
            bad=[
                flag
                for flag, given in (
                    ("--method", method),
                    ("--minutes", minutes),
                    ("--steps", steps),
                    ("--resume", resume),
                    ("--merge", merge),
                )
                if given
            ],
            poll_seconds=poll_seconds,
        )
        return
    from assistant.tuning.local import plan, tune_local

    the_plan = plan(name, base, method, resume)
    with _Progress() as progress:
        outcome = tune_local(
            the_plan,
            list(files),
            steps=steps,
            minutes=minutes,
            merge=merge,
            on_skip=_skip_line,
            on_status=progress.status,
            on_step=progress.step,
            batch_size=batch_size,
            seq_len=seq_len,
        )
    result = outcome.result
    ppl_drop = 100 * (1 - result.perplexity_after / result.perplexity_before)
    click.echo(
        f"Tuned '{name}' from {the_plan.base} ({the_plan.method}): {result.steps} steps, "
        f"{result.tokens:,} tokens in {_duration(result.seconds)} on {result.device}."
    )
    click.echo(
        f"Held-out perplexity: {result.perplexity_before:.1f} before, {result.perplexity_after:.1f} after "
        f"({abs(ppl_drop):.0f}% {'lower' if ppl_drop >= 0 else 'higher'}; lower means it predicts your text "
        "better)."
    )
    if result.sample_before or result.sample_after:
        prompt = outcome.manuscript.sample_prompt.replace("\n", " / ")
        click.echo(f"Sample prompt: {prompt}")
        click.echo(f"  before: {_one_line(result.sample_before)}")
        click.echo(f"  after:  {_one_line(result.sample_after)}")
    click.echo(f"Saved in {outcome.model.folder}")
    click.echo(f"Write with it: quillmate run continue --backend {name}")
    if result.interrupted:
        echo_err(
            f"quillmate: stopped early at step {result.total_steps}; the model is saved and usable. "
            f"Continue with: quillmate tune FILES --name {name} --resume"
        )
        ctx.exit(EXIT_INTERRUPTED)


@tune.command("status")
@click.argument("job", required=False)
@click.option("--poll-seconds", type=click.FloatRange(min=0), default=10.0, hidden=True)
def status(job: str | None, poll_seconds: float) -> None:
    """Watch an OpenAI fine-tuning job again (JOB: its id or model name; default: the latest under way)."""
    from assistant.cli.tune_openai import status as watch_status

    watch_status(job, poll_seconds)


def _one_line(text: str, limit: int = 160) -> str:
    flat = " / ".join(line.strip() for line in text.strip().split("\n") if line.strip())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _duration(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "?"
    whole = round(seconds)
    return f"{whole // 60}m{whole % 60:02d}s" if whole >= 60 else f"{whole}s"


class _Progress:
    """A rich progress bar on stderr: step, loss, tokens/s and time left."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn

        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("step {task.fields[step]}"),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[rate]} tok/s"),
            TextColumn("{task.fields[left]} left"),
            console=self.console,
            disable=OUTPUT.quiet,
        )
        self.task: Any = None

    def __enter__(self) -> _Progress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def status(self, line: str) -> None:
        """A phase line above the bar."""
        if not OUTPUT.quiet:
            self.progress.console.print(f"quillmate: {line}", highlight=False)

    def step(self, report: Any) -> None:
        """Move the bar to ``report`` (a ``backends.tuning.StepReport``)."""
        fields: dict[str, Any] = {
            "step": f"{report.step}" + (f"/{report.total_steps}" if report.total_steps else ""),
            "loss": f"{report.loss:.3f}",
            "rate": f"{report.tokens_per_second:,.0f}",
            "left": _duration(report.seconds_left),
        }
        if self.task is None:
            self.task = self.progress.add_task("tuning", total=1000, **fields)
        self.progress.update(self.task, completed=int(report.fraction * 1000), **fields)
