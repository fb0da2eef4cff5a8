"""``quillmate run``: run a template and stream the text to stdout.

stdout carries only generated text, so editors can pipe a selection through it;
notices and errors go to stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import click

from assistant.cli.common import echo_err, read_stdin_text
from backends.base import Delta, GenerationResult, Notice
from backends.errors import UsageError


def parse_vars(pairs: tuple[str, ...]) -> dict[str, str]:
    """``name=value`` pairs into a dict; a pair without ``=`` is a usage error."""
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--var expects name=value, got '{pair}'.", 'For example: --var topic="the sea"')
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise UsageError(
                f"The value of --var {name.strip()} is not valid UTF-8 text.", "Check your terminal's encoding."
            ) from None
        values[name.strip()] = value
    return values


def _divider(index: int, total: int) -> str:
    return f"\n\n──── alternative {index + 1} of {total} ────\n\n"


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("template", required=False)
@click.option("--var", "-v", "variables", multiple=True, metavar="NAME=VALUE", help="Set a template variable.")
@click.option("--template-file", "-f", type=click.Path(dir_okay=False, path_type=Path), help="Use this template file.")
@click.option("--backend", "-b", help="Backend profile to use (see `quillmate backends list`).")
@click.option("--model", "-m", help="Model to use instead of the profile's.")
@click.option("-n", "--alternatives", "num_alternatives", type=int, help="How many alternatives to write.")
@click.option("--temperature", "-t", type=float, help="0 = always the most likely words; higher = more surprising.")
@click.option("--top-p", type=float, help="Nucleus sampling threshold, above 0 and at most 1.")
@click.option("--top-k", type=int, help="Sample only from the k most likely tokens (0 = off).")
@click.option("--repetition-penalty", type=float, help="Above 1 discourages repeating words.")
@click.option("--max-tokens", "max_new_tokens", type=int, help="Most tokens to write per alternative.")
@click.option("--num-beams", type=int, help="Beam search: keep this many most likely drafts at each step.")
@click.option("--seed", type=int, help="Make sampling reproducible.")
@click.option("--max-lines", type=int, help="End each alternative after this many lines (blank lines don't count).")
@click.option("--stop", multiple=True, help="Stop writing where this text would appear (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per alternative instead of text.")
@click.option("--include-input", is_flag=True, help="Print the piped input before the generated text.")
@click.option("--session", "session_id", help="Record this generation in a co-writing session.")
def run(
    template: str | None,
    variables: tuple[str, ...],
    template_file: Path | None,
    backend: str | None,
    model: str | None,
    as_json: bool,
    include_input: bool,
    session_id: str | None,
    **param_options: Any,
) -> None:
    """Run TEMPLATE and stream the text to stdout.

    When the template takes piped input and stdin is not a terminal, stdin fills it:

    \b
      echo "the first snow" | quillmate run poem --var form=haiku
      quillmate run rewrite --var instruction="more vivid" < scene.txt
    """
    from assistant.core import Assistant

    if session_id:
        from assistant.cli.session_recording import ensure_session

        ensure_session(session_id)
    if template is None and template_file is None:
        raise UsageError("Name a template to run, or give --template-file.", "See `quillmate templates list`.")
    values = parse_vars(variables)
    assistant = Assistant(backend, model=model)
    chosen = assistant.templates.load_file(template_file) if template_file else assistant.templates.get(template or "")
    piped: str | None = None
    if chosen.input_variable and chosen.input_variable not in values:
        piped = read_stdin_text()
        if piped is not None:
            values[chosen.input_variable] = piped.rstrip("\n") if piped.strip() else ""
    params = {k: v for k, v in param_options.items() if v not in (None, ())}
    if param_options.get("stop"):
        params["stop"] = tuple(param_options["stop"])
    prepared = assistant.prepare(chosen, values, params)
    if include_input and piped is not None:
        sys.stdout.write(piped)
        sys.stdout.flush()
    progress = _Progress(prepared.request.params.num_alternatives)
    try:
        result = asyncio.run(
            _stream_to_stdout(assistant, prepared.request, progress, as_json=as_json, template=chosen.name,
                              trim_start=chosen.output == "list")
        )
    except KeyboardInterrupt:
        if session_id:
            from assistant.cli.session_recording import record_cancelled

            record_cancelled(session_id, prepared, assistant.backend, progress.cancelled_result())
        raise
    except Exception as error:
        if session_id:
            from assistant.cli.session_recording import record_failed

            with contextlib.suppress(Exception):
                record_failed(session_id, prepared, assistant.backend, error)
        raise
    if session_id:
        from assistant.cli.session_recording import record

        record(session_id, prepared, assistant.backend, result)
    if result.error:
        raise _generation_failed(result)


class _Progress:
    """The text received so far, so an interrupted run can still show and record it."""

    def __init__(self, total: int) -> None:
        self.texts: list[list[str]] = [[] for _ in range(total)]
        self.model = ""

    def add(self, delta: Delta) -> None:
        while delta.index >= len(self.texts):
            self.texts.append([])
        self.texts[delta.index].append(delta.text)

    def cancelled_result(self) -> GenerationResult:
        texts = tuple("".join(parts) for parts in self.texts)
        return GenerationResult(texts=texts, finish_reasons=("cancelled",) * len(texts), model=self.model)


async def _stream_to_stdout(
    assistant: Any, request: Any, progress: _Progress, *, as_json: bool, template: str, trim_start: bool = False
) -> GenerationResult:
    """Write the first alternative as it arrives, then the rest.

    With ``trim_start`` (poems, slogans: pieces of their own, not continuations) the
    space a model puts before its first word is left out.
    """
    out = sys.stdout
    started = not trim_start
    total = request.params.num_alternatives
    result: GenerationResult | None = None
    progress.model = assistant.backend.info().model
    try:
        async for event in assistant.astream_request(request):
            if isinstance(event, Notice):
                echo_err(f"quillmate: note: {event.message}")
            elif isinstance(event, Delta):
                progress.add(event)
                if event.index == 0 and not as_json:
                    text = event.text if started else event.text.lstrip()
                    started = started or bool(text)
                    out.write(text)
                    out.flush()
            elif isinstance(event, GenerationResult):
                result = event
    except asyncio.CancelledError:  # Ctrl+C: show what the other alternatives had so far
        partial = progress.cancelled_result()
        _write_final(out, partial, as_json=as_json, template=template, backend=assistant.backend.name,
                     trim_start=trim_start)
        raise
    assert result is not None
    _write_final(out, result, as_json=as_json, template=template, backend=assistant.backend.name,
                 trim_start=trim_start)
    if total > 1 and len(result.texts) < total:
        echo_err(f"quillmate: note: only {len(result.texts)} of {total} alternatives were written.")
    return result


def _write_final(
    out: Any, result: GenerationResult, *, as_json: bool, template: str, backend: str, trim_start: bool = False
) -> None:
    """After streaming the first alternative: the others with dividers, or every one as JSON."""
    texts = [text.lstrip() for text in result.texts] if trim_start else list(result.texts)
    if as_json:
        for index, text in enumerate(texts):
            record = {
                "index": index,
                "text": text,
                "finish_reason": result.finish_reasons[index],
                "template": template,
                "backend": backend,
                "model": result.model,
                "usage": {
                    "prompt_tokens": result.usage.prompt_tokens,
                    "completion_tokens": result.usage.completion_tokens,
                },
                "tokens_per_second": result.tokens_per_second,
                "notices": [n.message for n in result.notices],
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    else:
        for index in range(1, len(texts)):
            out.write(_divider(index, len(texts)))
            out.write(texts[index])
        if out.isatty() or not any(t.endswith("\n") for t in texts[-1:]):
            out.write("\n")
    out.flush()


def _generation_failed(result: GenerationResult) -> Exception:
    from backends.errors import BackendError

    return BackendError(result.error or "Generation failed.", "The text written so far is above.")
