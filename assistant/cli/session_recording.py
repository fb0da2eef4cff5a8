"""``quillmate run --session ID``: record a CLI generation into a co-writing session."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from assistant.sessions import SessionStore, record_cli_generation


def ensure_session(session_id: str) -> None:
    """Fail before writing anything when the session does not exist or is held elsewhere."""
    store = SessionStore()
    try:
        store.open(session_id, read_only=True).close()
    finally:
        store.close()


def record(session_id: str, prepared: Any, backend: Any, result: Any) -> int:
    """Append the first alternative to the session's draft with its provenance; return the event id."""
    params = asdict(prepared.request.params)
    params["stop"] = list(params["stop"])
    return record_cli_generation(
        None,
        session_id,
        prepared.template.name,
        prepared.variables,
        params,
        backend.name,
        result.model,
        result,
        prompt_tokens=result.usage.prompt_tokens,
    )
