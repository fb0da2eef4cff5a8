"""Generation events: what was asked of a model, what it offered, what the writer kept.

One :class:`GenerationEvent` per request, numbered 1, 2, 3... within its
session. Its ``status`` moves from ``pending`` (asked) to ``done`` (text
arrived), then ``accepted`` / ``rejected``; or to ``cancelled`` / ``error``.
Model spans in the document point at these ids.

Nothing secret is stored: values that look like API keys (``sk-...``) and
variables named like keys or passwords are replaced by ``[redacted]``, and
very long variables (the draft itself, for ``continue``) are kept as their
beginning and end only.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

EventStatus = Literal["pending", "done", "accepted", "rejected", "cancelled", "error"]

REDACTED = "[redacted]"
MAX_STORED_CHARS = 1500
_KEY_PATTERN = re.compile(r"\b(?:sk|rk|pk)-[A-Za-z0-9_\-]{12,}|\bBearer\s+[A-Za-z0-9_\-.=]{12,}")
_SECRET_NAMES = re.compile(r"(?:^|_|-)(?:api_?key|key|token|secret|password|passwd|authorization|auth)$", re.I)


def scrub(value: Any, *, limit: int = MAX_STORED_CHARS) -> Any:
    """A JSON-safe copy of ``value`` with anything that looks like a key redacted and long text shortened."""
    if isinstance(value, str):
        text = _KEY_PATTERN.sub(REDACTED, value)
        if len(text) > limit:
            head, tail = limit // 4, limit - limit // 4
            text = f"{text[:head]}\n[... {len(text) - head - tail:,} characters not stored ...]\n{text[-tail:]}"
        return text
    if isinstance(value, bool) or value is None or isinstance(value, (int, float)):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            name = str(key)
            out[name] = REDACTED if _SECRET_NAMES.search(name) and item not in (None, "") else scrub(item, limit=limit)
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        return [scrub(item, limit=limit) for item in value]
    return scrub(str(value), limit=limit)


@dataclass
class GenerationEvent:
    """One generation request and what became of it.

    Attributes:
        id: Number within the session (1, 2, ...); model spans reference it.
        created: When it was asked (epoch seconds).
        template: Template name (``continue``, ``rewrite``...).
        variables: The template variables (scrubbed, long values shortened).
        params: Generation parameters as a dict.
        backend: Backend name (profile) and ``model`` the model it reported.
        prompt_tokens: Tokens in the prompt after fitting.
        notices: ``{"kind": ..., "message": ...}`` for each notice (e.g. truncation).
        alternatives: The text of each alternative offered.
        finish_reasons: How each alternative ended.
        usage: ``{"prompt_tokens": ..., "completion_tokens": ...}``.
        status: pending, done, accepted, rejected, cancelled or error.
        accepted_alternative: Which alternative was accepted, if any.
        error: The one-line reason for status ``error``.
        source: Where it came from: ``app``, ``cli`` or ``server``.
        updated: When it last changed.
        prompt: What was sent, as labelled parts (``PromptReport.to_dict()``: memory, each entry
            with its key, author's note, draft, instructions; what was left out and why); empty
            when the front end did not say.
        position: For a suggestion at the cursor, where it was offered: the offset in the draft
            then. None for generations tied to no point (rewrites, chat, results) and for those
            recorded before quillmate kept points.
        anchor: The draft's last characters before ``position`` then, which find the point again
            after the text before it changed (:mod:`assistant.sessions.points`).
    """

    id: int
    created: float = field(default_factory=time.time)
    template: str = ""
    variables: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    backend: str = ""
    model: str = ""
    prompt_tokens: int = 0
    notices: list[dict[str, str]] = field(default_factory=list)
    alternatives: list[str] = field(default_factory=list)
    finish_reasons: list[str] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    status: str = "pending"
    accepted_alternative: int | None = None
    error: str | None = None
    source: str = "app"
    updated: float = field(default_factory=time.time)
    prompt: dict[str, Any] = field(default_factory=dict)
    position: int | None = None
    anchor: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (already scrubbed)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GenerationEvent:
        """Rebuild an event, ignoring unknown fields (from newer versions)."""
        if data.keys() <= _FIELD_NAMES:
            return cls(**data)
        return cls(**{k: v for k, v in data.items() if k in _FIELD_NAMES})

    def label(self) -> str:
        """Short provenance, e.g. ``gpt2 via local, template continue``."""
        who = self.model or self.backend or "a model"
        via = f" via {self.backend}" if self.backend and self.model and self.backend != self.model else ""
        tmpl = f", template {self.template}" if self.template else ""
        return f"{who}{via}{tmpl}"


_FIELD_NAMES = frozenset(f.name for f in dataclasses.fields(GenerationEvent))


def notices_to_dicts(notices: Any) -> list[dict[str, str]]:
    """Notice objects (or dicts, or strings) as plain dicts."""
    out = []
    for notice in notices or ():
        if isinstance(notice, Mapping):
            out.append({"kind": str(notice.get("kind", "info")), "message": str(notice.get("message", ""))})
        elif hasattr(notice, "message"):
            out.append({"kind": str(getattr(notice, "kind", "info")), "message": str(notice.message)})
        else:
            out.append({"kind": "info", "message": str(notice)})
    return scrub(out)
