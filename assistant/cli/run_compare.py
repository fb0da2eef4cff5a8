"""``quillmate run … --compare A,B``: the same request on several backend profiles, one after the other.

Each profile's draft is written in turn, under a header line naming its backend and
model (or, with ``--json``, as objects that carry ``backend`` and ``model``). With
``--session`` every draft is recorded in the session as a generation of its own model,
kept among the session's drafts (``quillmate sessions drafts ID``) and not added to the
draft text: the writer compares, then takes one.

Every name is checked against the config before anything runs; after that, one
profile failing does not stop the others, and the run fails once every profile has
had its turn, naming those that wrote nothing. What a comparison is (the checks, an
Assistant per profile, the labels, the recording) is :mod:`assistant.compare`'s, shared
with the writing app's Compare panel; this module writes it to stdout.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

from backends.errors import UsageError


def parse_compare(value: str) -> list[str]:
    """``"local, cloud"`` into ``["local", "cloud"]``; an empty or repeated name is a usage error."""
    names = [name.strip() for name in value.split(",")]
    if not all(names):
        raise UsageError(
            f"--compare expects backend profile names separated by commas, got '{value}'.",
            "For example: --compare local,openai (see `quillmate backends list`).",
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise UsageError(f"--compare names {', '.join(repeated)} more than once.", "Name each backend profile once.")
    return names


def refuse_with_compare(**given: Any) -> None:
    """Options that say which one backend to use, or that shape one run's output, do not go with --compare."""
    clashing = [f"--{name.replace('_', '-')}" for name, value in given.items() if value]
    if clashing:
        raise UsageError(
            f"--compare runs each named backend profile, so it does not go with {', '.join(clashing)}.",
            "Name the profiles in --compare (a profile's model is set in the config file).",
        )


def header(index: int, total: int, backend: str, model: str) -> str:
    """The line above each draft on stdout: ``──── draft 1 of 2: local (gpt2) ────``."""
    from assistant.compare import label

    return f"──── draft {index + 1} of {total}: {label(backend, model)} ────\n"


def run_compare(
    names: list[str],
    first: Any,
    chosen: Any,
    values: dict[str, str],
    overrides: Any,
    *,
    dtype: str | None,
    bible: Any,
    as_json: bool,
    session_id: str | None,
    suffix: str | None = None,
) -> None:
    """Run ``chosen`` on each profile in ``names``, writing each draft labelled; ``first`` is the first's Assistant.

    ``suffix`` is the text after the gap (``--suffix``), None when none was given.

    Raises:
        ConfigError: a name that is not a configured profile (before anything runs).
        BackendError: naming the profiles that wrote no draft, after the others have run.
    """
    from assistant.cli.run_cmd import _form_of, _Out, stream_recorded
    from assistant.cli.session_recording import record_draft
    from assistant.compare import assistant_for, check_profiles
    from assistant.core import Assistant
    from backends.errors import BackendError

    check_profiles(first.config, names)
    failed: list[str] = []

    def make(name: str) -> Assistant:
        return Assistant(name, dtype=dtype, config=first.config, templates=first.templates)

    for index, name in enumerate(names):
        try:
            assistant = assistant_for(name, first, make)
        except BackendError as error:  # this profile cannot be made: tell, and go on with the rest
            _say_failed(name, error)
            failed.append(name)
            continue
        try:
            prepared = assistant.prepare(chosen, dict(values), overrides, bible=bible, suffix=suffix or "")
            model = assistant.backend.info().model
            if not as_json:
                if index:
                    sys.stdout.write("\n")
                sys.stdout.write(header(index, len(names), assistant.backend.name, model))
                sys.stdout.flush()
            out = _Out(sys.stdout, output=chosen.output, before=None, as_json=as_json)
            out.form = _form_of(prepared)
            out.suffix = suffix
            stream_recorded(
                assistant, prepared, out, template=chosen.name, session_id=session_id, record_done=record_draft
            )
        except BackendError as error:
            _say_failed(name, error)
            failed.append(name)
        finally:
            if assistant is not first:
                with contextlib.suppress(Exception):
                    assistant.close()
    if failed:
        raise BackendError(
            f"{len(failed)} of {len(names)} backends wrote no draft: {', '.join(failed)}.",
            "Their errors are above; the other drafts were written.",
        )


def _say_failed(name: str, error: BaseException) -> None:
    from assistant.cli.common import warn

    message = getattr(error, "message", None) or str(error)
    warn(f"backend '{name}' wrote no draft: {message}")
