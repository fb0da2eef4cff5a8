"""``quillmate run --session ID``: record a CLI generation into a co-writing session.

The session is opened only for the moment of writing, after the generation, so
the writing app can keep it open in the meantime; the recording itself is
:class:`~assistant.sessions.GenerationRecorder`'s, as everywhere else.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from assistant.sessions import GenerationRecorder, Session, SessionLocked, SessionStore, record_cli_generation


def ensure_session(session_id: str) -> None:
    """Fail before writing anything when the session does not exist or another process holds it."""
    store = SessionStore()
    try:
        holder = store.list_lock(session_id)  # also raises SessionNotFound
        if holder is not None:
            raise SessionLocked(session_id, holder)
    finally:
        store.close()


@contextlib.contextmanager
def _opened(session_id: str) -> Iterator[Session]:
    store = SessionStore()
    try:
        with store.open(session_id) as session:
            yield session
    finally:
        store.close()


def _start(session: Session, prepared: Any, backend: Any, model: str) -> GenerationRecorder:
    return GenerationRecorder.start(
        session,
        prepared.template.name,
        prepared.variables,
        prepared.request.params,
        backend=backend.name,
        model=model,
        source="cli",
        prompt=prepared.prompt_report(backend),
    )


def record(session_id: str, prepared: Any, backend: Any, result: Any) -> int:
    """Append the first alternative to the session's draft with its provenance; return the event id."""
    return record_cli_generation(
        None,
        session_id,
        prepared.template.name,
        prepared.variables,
        prepared.request.params,
        backend.name,
        result.model,
        result,
        prompt_tokens=result.usage.prompt_tokens,
        prompt=prepared.prompt_report(backend),
    )


def record_draft(session_id: str, prepared: Any, backend: Any, result: Any) -> int | None:
    """Keep a generation among the session's drafts, attributed to its model; the draft text is left as it was."""
    from assistant.compare import start_recording

    with _opened(session_id) as session:
        recorder = start_recording(session, prepared, backend, result.model, source="cli")
        recorder.finished(result)
        return recorder.event_id


def record_cancelled(session_id: str, prepared: Any, backend: Any, result: Any) -> int | None:
    """Record a generation the writer stopped with Ctrl+C; the draft is left as it was."""
    with _opened(session_id) as session:
        recorder = _start(session, prepared, backend, result.model)
        recorder.cancelled(result)
        return recorder.event_id


def record_failed(session_id: str, prepared: Any, backend: Any, error: BaseException) -> None:
    """Record a generation that failed before it wrote anything; the draft is left as it was."""
    with _opened(session_id) as session:
        _start(session, prepared, backend, getattr(backend, "model", "") or "").failed(error)


def record_failed_to_start(session_id: str, template: str, variables: Any, backend: Any, error: BaseException) -> None:
    """Record a generation whose model failed before its prompt could be built; the draft is left as it was."""
    with _opened(session_id) as session:
        GenerationRecorder.start(
            session,
            template,
            variables,
            None,
            backend=backend.name,
            model=getattr(backend, "model", "") or "",
            source="cli",
        ).failed(error)
