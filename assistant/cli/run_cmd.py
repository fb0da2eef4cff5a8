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

from assistant import interrupts
from assistant.cli.common import (
    INPUT_ECHO,
    note,
    read_stdin_text,
    stdin_has_waiting_text,
    warn,
    write_raw,
)
from assistant.cli.setting_options import overrides_from_options, setting_options
from assistant.cursor import text_after_cursor
from assistant.textjoin import ContinuationStream, StandaloneStream, tidy_output
from backends.base import Delta, FinishReason, GenerationResult, Notice
from backends.errors import BackendError, UsageError
from backends.fim import cannot_see_after
from backends.gpt2 import DTYPES


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


def _refuse_extra_arguments(extra: list[str]) -> None:
    """``quillmate run poem topic=x``: point at ``--var`` rather than click's bare complaint."""
    if not extra:
        return
    first = extra[0]
    name, sep, value = first.partition("=")
    if sep and name.strip():
        raise UsageError(
            f"'{first}' is not something quillmate run takes on its own; template variables are given with --var.",
            f'Write it as: --var {name.strip()}="{value}"',
        )
    raise UsageError(
        f"quillmate run takes one template name; '{first}' is one too many.",
        "Give template variables with --var NAME=VALUE, and quote text that has spaces.",
    )


def _check_utf8(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        offset = len(text[: text.index(next(c for c in text if "\udc80" <= c <= "\udcff"))].encode("utf-8"))
        raise UsageError(
            f"The text on standard input is not valid UTF-8 (bad byte at offset {offset}).",
            "Convert it first, e.g. `iconv -f latin1 -t utf-8 FILE | quillmate ...`.",
        ) from None


def _fill_input(template: Any, values: dict[str, str], *, include_input: bool) -> str | None:
    """Fill the template's input variable from stdin; returns the piped text, if it was used.

    Empty input is an error (when the template needs it); input that goes unused gets a note.
    """
    name = template.input_variable
    if not name or name in values:
        unused = INPUT_ECHO.capture() if include_input else None
        if (unused and unused.strip()) or (not include_input and stdin_has_waiting_text()):
            why = f"--var {name} was given" if name else f"template '{template.name}' takes no piped text"
            note(f"the text on standard input was not used ({why}).")
        return None
    piped = INPUT_ECHO.capture() if include_input else read_stdin_text()
    if piped is None:
        return None
    _check_utf8(piped)
    if not piped.strip():
        spec = template.variables.get(name)
        if spec is not None and getattr(spec, "required", False):
            raise UsageError(
                f"The text on standard input was empty, so template '{template.name}' has no {name} to work on.",
                f"Pipe some text in, or give it with --var {name}=...",
            )
        return None
    values[name] = piped.rstrip("\n")
    return piped


def _check_session_ends_with(session_id: str, text: str) -> None:
    """A continuation goes at the end of the session's draft: refuse when it would not follow ``text``."""
    from assistant.sessions import SessionStore

    wanted = text.strip()
    if not wanted:
        return
    store = SessionStore()
    try:
        session = store.open(session_id, read_only=True)
        try:
            draft = session.document.text
        finally:
            session.close()
    finally:
        store.close()
    if not draft.rstrip().endswith(wanted):
        raise UsageError(
            f"The text you gave is not the end of session {session_id}'s draft, and the continuation is "
            "added at the end of the draft, where it would follow other words.",
            f"Pipe the end of the draft (see `quillmate sessions show {session_id}`), or leave out --session.",
        )


def _divider(index: int, total: int) -> str:
    return f"\n\n──── alternative {index + 1} of {total} ────\n\n"


@click.command(context_settings={"help_option_names": ["-h", "--help"], "allow_extra_args": True})
@click.argument("template", required=False)
@click.option("--var", "-v", "variables", multiple=True, metavar="NAME=VALUE", help="Set a template variable.")
@click.option("--template-file", "-f", type=click.Path(dir_okay=False, path_type=Path), help="Use this template file.")
@click.option("--backend", "-b", help="Backend profile to use (see `quillmate backends list`).")
@click.option("--model", "-m", help="Model to use instead of the profile's.")
@click.option(
    "--dtype",
    type=click.Choice(DTYPES),
    help="Number type of a local model's weights instead of the profile's; int8 is faster on the CPU.",
)
@setting_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per alternative instead of text.")
@click.option("--include-input", is_flag=True, help="Print the piped input before the generated text.")
@click.option("--session", "session_id", help="Record this generation in a co-writing session (and use its bible).")
@click.option(
    "--bible",
    "bible_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Use this story bible file (instead of the session's).",
)
@click.option(
    "--compare",
    "compare_backends",
    metavar="BACKEND[,BACKEND…]",
    help="Run the same request on each of these backend profiles, one after the other, each draft under "
    "a line naming its backend and model; with --session each is kept among the session's drafts.",
)
@click.option(
    "--suffix",
    "suffix_text",
    metavar="TEXT",
    help="The text after the gap the template writes into (continue): a model that fills in the middle "
    "writes what goes between the piped text and this.",
)
@click.option(
    "--suffix-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read the text after the gap from this file (instead of --suffix).",
)
@click.option("--dry-run", is_flag=True, help="Show the prompt's parts (on stderr, or with --json) and send nothing.")
def run(
    template: str | None,
    variables: tuple[str, ...],
    template_file: Path | None,
    backend: str | None,
    model: str | None,
    dtype: str | None,
    as_json: bool,
    include_input: bool,
    session_id: str | None,
    bible_file: Path | None = None,
    dry_run: bool = False,
    compare_backends: str | None = None,
    suffix_text: str | None = None,
    suffix_file: Path | None = None,
    **setting_values: Any,
) -> None:
    """Run TEMPLATE and stream the text to stdout.

    When the template takes piped input and stdin is not a terminal, stdin fills it:

    \b
      echo "the first snow" | quillmate run poem --var form=haiku
      quillmate run rewrite --var instruction="more vivid" < scene.txt
      quillmate run continue --suffix-file after.txt < before.txt
    """
    from assistant.core import Assistant

    _refuse_extra_arguments(click.get_current_context().args)
    compared: list[str] | None = None
    if compare_backends is not None:
        from assistant.cli.run_compare import parse_compare, refuse_with_compare

        compared = parse_compare(compare_backends)
        refuse_with_compare(backend=backend, model=model, include_input=include_input, dry_run=dry_run)
    if include_input:
        INPUT_ECHO.enabled = True
        INPUT_ECHO.capture()  # read now, so that any failure below can put the selection back
    suffix = read_suffix(suffix_text, suffix_file, session_id=session_id)
    if session_id:
        from assistant.cli.session_recording import ensure_session

        ensure_session(session_id)
    if template is None and template_file is None:
        raise UsageError("Name a template to run, or give --template-file.", "See `quillmate templates list`.")
    values = parse_vars(variables)
    overrides = overrides_from_options(setting_values)
    assistant = Assistant(compared[0] if compared else backend, model=model, dtype=dtype)
    chosen = assistant.templates.load_file(template_file) if template_file else assistant.templates.get(template or "")
    _fill_input(chosen, values, include_input=include_input)
    from assistant.cli.bible_cmd import load_bible, show_dry_run

    if compared:
        from assistant.cli.run_compare import run_compare

        bible = load_bible(session_id, bible_file)
        run_compare(
            compared,
            assistant,
            chosen,
            values,
            overrides,
            dtype=dtype,
            bible=bible,
            as_json=as_json,
            session_id=session_id,
            suffix=suffix,
        )
        return
    try:
        prepared = assistant.prepare(
            chosen, values, overrides, bible=load_bible(session_id, bible_file), suffix=suffix or ""
        )
    except BackendError as error:  # the model could not be reached while fitting the bible: say so in the session
        if session_id:
            from assistant.cli.session_recording import record_failed_to_start

            with contextlib.suppress(Exception):
                record_failed_to_start(session_id, chosen.name, values, assistant.backend, error)
        raise
    if dry_run:
        show_dry_run(prepared, assistant.backend, as_json=as_json)
        return
    if session_id and chosen.output == "cursor" and chosen.input_variable:
        _check_session_ends_with(session_id, str(prepared.variables.get(chosen.input_variable, "")))
    shown = INPUT_ECHO.capture() if include_input else None
    out = _Out(sys.stdout, output=chosen.output, before=shown, as_json=as_json)
    out.form = _form_of(prepared)
    out.suffix = suffix
    from assistant.cli.session_recording import record

    stream_recorded(assistant, prepared, out, template=chosen.name, session_id=session_id, record_done=record)


def read_suffix(text: str | None, file: Path | None, *, session_id: str | None = None) -> str | None:
    """The text after the gap from ``--suffix`` or ``--suffix-file`` (None: neither), cut as the app cuts it.

    Raises:
        UsageError: both options, a file that cannot be read or is not UTF-8, or a session
            (whose continuation goes at the end of its draft, where no text follows).
    """
    if text is None and file is None:
        return None
    option = "--suffix" if file is None else "--suffix-file"
    if text is not None and file is not None:
        raise UsageError("Give the text after the gap once, with --suffix or --suffix-file.", "Leave one of them out.")
    if session_id:
        raise UsageError(
            f"{option} fills a gap in the text you give, but --session adds the continuation at the end "
            "of the session's draft, where no text follows.",
            f"Leave out --session, or leave out {option}.",
        )
    if file is not None:
        text = _read_suffix_file(file.expanduser())
    try:
        (text or "").encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError("The text of --suffix is not valid UTF-8.", "Check your terminal's encoding.") from None
    return text_after_cursor(text or "", 0)


def _read_suffix_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"There is no file at {path} (--suffix-file).", "Check the path.") from None
    except UnicodeDecodeError as error:
        raise UsageError(
            f"The file {path} is not valid UTF-8 text (bad byte at offset {error.start}).",
            f"Convert it first, e.g. `iconv -f latin1 -t utf-8 {path.name} > after.txt`.",
        ) from None
    except OSError as error:
        raise UsageError(f"The file {path} cannot be read: {error.strerror or error}.", "Check its path.") from None


def stream_recorded(
    assistant: Any, prepared: Any, out: _Out, *, template: str, session_id: str | None, record_done: Any
) -> GenerationResult:
    """Stream ``prepared`` to stdout; with a session, record how it ended (``record_done`` when it ends well).

    Raises:
        KeyboardInterrupt: Ctrl+C (recorded as cancelled); any failure (recorded as failed); BackendError
        when the result carries an error.
    """
    from assistant.cli.session_recording import record_cancelled, record_failed

    progress = _Progress(prepared.request.params.num_alternatives)
    try:
        with interrupts.for_asyncio():
            result = asyncio.run(_stream_to_stdout(assistant, prepared, progress, out, template=template))
    except KeyboardInterrupt:
        out.release_input()
        if session_id:
            record_cancelled(session_id, prepared, assistant.backend, progress.cancelled_result())
        raise
    except Exception as error:
        out.release_input()
        if session_id:
            with contextlib.suppress(Exception):
                record_failed(session_id, prepared, assistant.backend, error)
        raise
    if session_id:
        record_done(session_id, prepared, assistant.backend, result)
    if result.error:
        raise _generation_failed(result)
    return result


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
        cancelled: tuple[FinishReason, ...] = tuple("cancelled" for _ in texts)
        return GenerationResult(texts=texts, finish_reasons=cancelled, model=self.model)


async def _stream_to_stdout(
    assistant: Any, prepared: Any, progress: _Progress, out: _Out, *, template: str
) -> GenerationResult:
    """Write the first alternative as it arrives, then the rest (a poem in a fixed form is steered to keep it)."""
    total = prepared.request.params.num_alternatives
    result: GenerationResult | None = None
    progress.model = assistant.backend.info().model
    out.start()
    try:
        async for event in assistant.astream_prepared(prepared):
            if isinstance(event, Notice):
                _tell(event)
            elif isinstance(event, Delta):
                progress.add(event)
                if event.index == 0:
                    out.stream(event.text)
            elif isinstance(event, GenerationResult):
                result = event
    except asyncio.CancelledError:  # Ctrl+C: show what the other alternatives had so far
        out.final(progress.cancelled_result(), template=template, backend=assistant.backend.name)
        raise
    assert result is not None
    out.final(result, template=template, backend=assistant.backend.name)
    if total > 1 and len(result.texts) < total:
        warn(f"only {len(result.texts)} of {total} alternatives were written.")
    return result


def _tell(notice: Notice) -> None:
    """Notes about the run itself stay quiet in a pipe; what changed the text is a warning."""
    if notice.kind in ("info", "model"):
        note(notice.message)
    else:
        warn(notice.message)


class _Out:
    """stdout for one run: the writer's text (with --include-input), then the model's.

    Text is joined and tidied by :mod:`assistant.textjoin`, the rule the Python API and
    the server share: a continuation meets the writer's text without a doubled space or
    a stray line break; a rewrite or a poem starts at its first word.
    """

    def __init__(self, stream: Any, *, output: str, before: str | None, as_json: bool) -> None:
        self.stream_ = stream
        self.output = output
        self.before = before
        self.as_json = as_json
        self.last = ""  # the last character written, to end the output on a newline
        self._joiner = ContinuationStream(before) if before is not None and output == "cursor" else None
        self._standalone = StandaloneStream() if output != "cursor" else None
        self._released = before is None
        self.form: Any = None  # the form a poem should keep: its report goes with --json
        self.suffix: str | None = None  # the text after the gap, when one was given: --json says if it was used

    def _write(self, text: str) -> None:
        if text:
            self.stream_.write(text)
            self.stream_.flush()
            self.last = text[-1]

    def start(self) -> None:
        """Write the writer's text (--include-input) before anything else."""
        if self.before is None:
            return
        if self._joiner is not None:
            text = self._joiner.start()
        else:  # a rewrite or a poem follows the input on a line of its own
            text = self.before if self.before.endswith("\n") or not self.before else self.before + "\n"
            self._released = True
        write_raw(text)
        INPUT_ECHO.written = True
        if text:
            self.last = text[-1]

    def release_input(self) -> None:
        """After a failure: the writer's held-back trailing whitespace, so their text is unchanged."""
        if self._joiner is not None and not self._released:
            self._released = True
            self._write(self._joiner.finish())

    def stream(self, piece: str) -> None:
        """A piece of the first alternative."""
        if self.as_json:
            return
        if self._joiner is not None:
            piece = self._joiner.feed(piece)
        elif self._standalone is not None:
            piece = self._standalone.feed(piece)
        self._write(piece)

    def final(self, result: GenerationResult, *, template: str, backend: str) -> None:
        """After the first alternative: the others with dividers, or every one as JSON."""
        texts = [tidy_output(self.output, text) for text in result.texts]
        if self.as_json:
            self.release_input()
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
                        "completion_tokens": result.usage.completion_tokens_of(index, len(texts)),
                    },
                    "tokens_per_second": result.tokens_per_second,
                    "notices": [n.message for n in result.notices],
                }
                if result.logprobs:
                    from assistant.alternatives import realign, tokens_json

                    tokens = result.logprobs[index] if index < len(result.logprobs) else ()
                    record["logprobs"] = tokens_json(realign(tokens, result.texts[index], text))
                if self.form is not None:
                    record["form"] = _form_report(text, self.form)
                if self.suffix is not None:
                    record["suffix_used"] = bool(self.suffix.strip()) and cannot_see_after() not in result.notices
                self._write(json.dumps(record, ensure_ascii=False) + "\n")
            return
        self.release_input()
        if self.form is not None and texts and self.stream_.isatty():
            from assistant.forms import check_form

            note(check_form(texts[0], self.form).summary())
        for index in range(1, len(texts)):
            self._write(_divider(index, len(texts)))
            self._write(texts[index])
        if self.last != "\n" or self.stream_.isatty():
            self._write("\n")


def _form_of(prepared: Any) -> Any:
    from assistant.forms.steer import form_of

    return form_of(prepared.variables)


def _form_report(text: str, form: Any) -> dict[str, Any]:
    from assistant.forms import check_form

    return check_form(text, form).to_dict()


def _generation_failed(result: GenerationResult) -> Exception:
    from backends.errors import BackendError

    return BackendError(result.error or "Generation failed.", "The text written so far is above.")
