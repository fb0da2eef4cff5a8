"""Comparing backends: the same request on several backend profiles, each draft labelled with its model.

``quillmate run … --compare A,B`` and the writing app's Compare panel both go through
here, so they agree on what a comparison is:

* every profile name is checked against the config before anything runs
  (:func:`check_profiles`);
* each profile writes with its own Assistant: the caller's own for the profile it already
  uses, a fresh one (sharing the config and templates) for any other
  (:func:`assistant_for`), which the caller closes after that profile's turn;
* one profile failing leaves the others to run;
* each draft is named by its backend and model (:func:`label`) and, with a session, is
  kept as a generation of that model (:func:`start_recording`): a draft the writer may
  take later, attributed to the model that wrote it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from assistant.config import Config
    from assistant.core import Assistant, Prepared
    from assistant.sessions import GenerationRecorder, Session
    from backends.base import Backend

AssistantMaker = Callable[[str], "Assistant"]
"""Makes the Assistant of a backend profile, by name."""


def check_profiles(config: Config, names: Sequence[str]) -> None:
    """Raise ConfigError (naming the known profiles) for the first name that is not a configured profile."""
    for name in names:
        config.profile(name)


def assistant_for(name: str, first: Assistant, make: AssistantMaker | None = None) -> Assistant:
    """The Assistant that writes profile ``name``'s draft: ``first`` when it is that profile, else a new one.

    ``make`` builds the new one (by default ``Assistant(name)`` with ``first``'s config and
    templates). The caller closes one that is not ``first`` once its draft is written.
    """
    if name == first.backend.name:
        return first
    if make is not None:
        return make(name)
    from assistant.core import Assistant

    return Assistant(name, config=first.config, templates=first.templates)


def label(backend: str, model: str) -> str:
    """Who wrote a draft: ``local (gpt2)``, or the profile's name alone when the model has the same name."""
    return f"{backend} ({model})" if model and model != backend else backend


def start_recording(
    session: Session,
    prepared: Prepared,
    backend: Backend,
    model: str,
    *,
    source: str,
    position: int | None = None,
) -> GenerationRecorder:
    """Record in ``session`` that ``backend`` was asked for ``prepared``; returns its recorder.

    The draft text is not touched: the generation is kept among the session's drafts,
    attributed to ``model``, until the writer takes it (``recorder.accept``). ``position`` is
    where in the draft it was asked for, for a continuation at the cursor.
    """
    from assistant.sessions import GenerationRecorder

    return GenerationRecorder.start(
        session,
        prepared.template.name,
        prepared.variables,
        prepared.request.params,
        backend=backend.name,
        model=model,
        source=source,
        prompt=_sent(prepared, backend),
        position=position,
    )


def _sent(prepared: Prepared, backend: Backend) -> Any:
    """What ``prepared`` sends, as labelled parts (None if it cannot be counted: the draft is kept anyway)."""
    try:
        return prepared.prompt_report(backend)
    except Exception:
        return None


__all__ = ["AssistantMaker", "assistant_for", "check_profiles", "label", "start_recording"]
