"""``quillmate run --session ID``: record a CLI generation into a co-writing session."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from assistant.sessions import SessionLocked, SessionStore, record_cli_generation


def ensure_session(session_id: str) -> None:
    """Fail before writing anything when the session does not exist or another process holds it."""
    store = SessionStore()
    try:
        holder = store.list_lock(session_id)  # also raises SessionNotFound
        if holder is not None:
            raise SessionLocked(session_id, holder)
    finally:
        store.close()


def _params(prepared: Any) -> dict[str, Any]:
    params = asdict(prepared.request.params)
    params["stop"] = list(params["stop"])
    return params


def record(session_id: str, prepared: Any, backend: Any, result: Any) -> int:
    """Append the first alternative to the session's draft with its provenance; return the event id."""
    return record_cli_generation(
        None,
        session_id,
        prepared.template.name,
        prepared.variables,
        _params(prepared),
        backend.name,
        result.model,
        result,
        prompt_tokens=result.usage.prompt_tokens,
    )


def record_cancelled(session_id: str, prepared: Any, backend: Any, result: Any) -> int:
    """Record a generation the writer stopped with Ctrl+C; the draft is left as it was."""
    store = SessionStore()
    try:
        session = store.open(session_id)
        try:
            event_id = session.record_generation(
                prepared.template.name, prepared.variables, _params(prepared), backend.name, result.model, source="cli"
            )
            session.record_result(event_id, result)
            session.mark_cancelled(event_id)
            return event_id
        finally:
            session.close()
    finally:
        store.close()


def record_failed(session_id: str, prepared: Any, backend: Any, error: BaseException) -> None:
    """Record a generation that failed before it wrote anything; the draft is left as it was.

    A failure to record is not reported over the original error, which is what the writer needs.
    """
    store = SessionStore()
    try:
        session = store.open(session_id)
        try:
            event_id = session.record_generation(
                prepared.template.name, prepared.variables, _params(prepared), backend.name,
                getattr(backend, "model", "") or "", source="cli",
            )
            session.mark_error(event_id, getattr(error, "message", None) or str(error))
        finally:
            session.close()
    finally:
        store.close()
