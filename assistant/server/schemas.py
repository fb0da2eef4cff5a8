"""Reading OpenAI-style requests and writing OpenAI-style responses.

Requests are checked field by field so a client gets one precise 400 message.
Responses follow the shapes the official ``openai`` SDK parses: ``chat.completion``,
``chat.completion.chunk``, ``text_completion`` and ``[DONE]``. Notices (text left out,
settings not honoured) travel in an extra ``quillmate_notices`` field that other
clients ignore.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from backends.base import ChatMessage, FinishReason, GenerationResult, Notice, TextPart
from backends.errors import UsageError
from backends.openai_backend import NOTICES_FIELD

Shape = Literal["chat", "completion"]

# Accepted but not used: they change nothing a writer would miss, or are about billing.
IGNORED_FIELDS = frozenset({"user", "store", "metadata", "service_tier", "parallel_tool_calls", "prompt_cache_key"})
# Accepted when off; refused when asking for something this server cannot do.
UNSUPPORTED_WHEN_SET = {
    "tools": "tools",
    "functions": "function calling",
    "tool_choice": "tools",
    "function_call": "function calling",
    "logprobs": "log probabilities",
    "top_logprobs": "log probabilities",
    "echo": "echo",
    "best_of": "best_of",
    "suffix": "suffix (fill-in-the-middle)",
    "audio": "audio",
    "modalities": "modalities",
    "prediction": "predicted outputs",
    "web_search_options": "web search",
}
NOTICE_WHEN_SET = {"presence_penalty", "frequency_penalty", "logit_bias", "reasoning_effort", "verbosity"}
KNOWN_FIELDS = frozenset(
    {
        "model",
        "messages",
        "prompt",
        "stream",
        "stream_options",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "n",
        "stop",
        "seed",
        "top_k",
        "repetition_penalty",
        "response_format",
    }
    | IGNORED_FIELDS
    | set(UNSUPPORTED_WHEN_SET)
    | NOTICE_WHEN_SET
)


@dataclass(frozen=True)
class Limits:
    """What one request may ask for."""

    max_body_bytes: int = 1024 * 1024
    max_tokens: int = 4096
    max_alternatives: int = 16
    max_stop: int = 16
    max_messages: int = 500


@dataclass
class ParsedRequest:
    """A validated request, in quillmate's terms."""

    shape: Shape
    model: str
    stream: bool = False
    include_usage: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)
    messages: tuple[ChatMessage, ...] | None = None
    prompt: str | None = None
    notices: list[Notice] = field(default_factory=list)

    def last_user_text(self) -> str:
        """The text of the last user message (chat) or the prompt (completion)."""
        if self.messages is None:
            return self.prompt or ""
        for message in reversed(self.messages):
            if message.role == "user":
                return message.text
        return ""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _bad(message: str) -> UsageError:
    return UsageError(message)


def _content_text(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        pieces = []
        for part in content:
            if isinstance(part, str):
                pieces.append(part)
            elif isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                pieces.append(part["text"])
            else:
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise _bad(f"{where}: only text content is supported (got {kind!r}).")
        return "".join(pieces)
    raise _bad(f"{where}: content must be text or a list of text parts.")


def _messages(value: Any, limits: Limits) -> tuple[ChatMessage, ...]:
    if not isinstance(value, list) or not value:
        raise _bad("'messages' must be a non-empty list.")
    if len(value) > limits.max_messages:
        raise _bad(f"Too many messages ({len(value)}); at most {limits.max_messages}.")
    result = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise _bad(f"messages[{i}] must be an object with role and content.")
        role = item.get("role")
        if role == "developer":
            role = "system"
        if role not in ("system", "user", "assistant"):
            raise _bad(f"messages[{i}]: role must be system, user or assistant (got {role!r}).")
        text = _content_text(item.get("content"), f"messages[{i}]")
        result.append(ChatMessage(role, (TextPart(text, elastic=role != "system"),)))
    return tuple(result)


def _prompt(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        return value[0]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        raise _bad("Send one prompt per request ('prompt' held a list of several).")
    raise _bad("'prompt' must be text (token arrays are not supported).")


def parse_request(body: Any, shape: Shape, limits: Limits) -> ParsedRequest:
    """Check a request body and turn it into a :class:`ParsedRequest`.

    Raises:
        UsageError: with a one-line message naming the field at fault.
    """
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object.")
    parsed = ParsedRequest(shape=shape, model=str(body.get("model", "")))
    if shape == "chat":
        if "prompt" in body:
            raise _bad("Chat completions take 'messages', not 'prompt' (use /v1/completions for a prompt).")
        parsed.messages = _messages(body.get("messages"), limits)
    else:
        if "messages" in body:
            raise _bad("Completions take 'prompt', not 'messages' (use /v1/chat/completions for messages).")
        if "prompt" not in body:
            raise _bad("'prompt' is required.")
        parsed.prompt = _prompt(body["prompt"])

    stream = body.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise _bad("'stream' must be true or false.")
    parsed.stream = bool(stream)
    options = body.get("stream_options")
    if options is not None:
        if not isinstance(options, dict):
            raise _bad("'stream_options' must be an object.")
        parsed.include_usage = bool(options.get("include_usage", False))

    overrides = parsed.overrides
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if not _is_int(value) or value < 1:
            raise _bad(f"'{name}' must be a whole number of at least 1 (got {value!r}).")
        if value > limits.max_tokens:
            raise _bad(f"'{name}' is {value}; this server allows at most {limits.max_tokens} tokens per answer.")
        overrides["max_new_tokens"] = value
    temperature = body.get("temperature")
    if temperature is not None:
        if not _is_number(temperature) or not 0 <= temperature <= 2:
            raise _bad(f"'temperature' must be between 0 and 2 (got {temperature!r}).")
        overrides["temperature"] = float(temperature)
    top_p = body.get("top_p")
    if top_p is not None:
        if not _is_number(top_p) or not 0 < top_p <= 1:
            raise _bad(f"'top_p' must be above 0 and at most 1 (got {top_p!r}).")
        overrides["top_p"] = float(top_p)
    n = body.get("n")
    if n is not None:
        if not _is_int(n) or not 1 <= n <= limits.max_alternatives:
            raise _bad(f"'n' must be a whole number from 1 to {limits.max_alternatives} (got {n!r}).")
        overrides["num_alternatives"] = n
    stop = body.get("stop")
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else stop
        if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
            raise _bad("'stop' must be a non-empty string or a list of them.")
        if len(stops) > limits.max_stop:
            raise _bad(f"At most {limits.max_stop} stop sequences (got {len(stops)}).")
        if stops:
            overrides["stop"] = tuple(stops)
    seed = body.get("seed")
    if seed is not None:
        if not _is_int(seed) or seed < 0:
            raise _bad(f"'seed' must be a whole number of 0 or more (got {seed!r}).")
        overrides["seed"] = seed
    top_k = body.get("top_k")
    if top_k is not None:
        if not _is_int(top_k) or top_k < -1:
            raise _bad(f"'top_k' must be a whole number (0 or -1 turn it off; got {top_k!r}).")
        overrides["top_k"] = max(top_k, 0)
    penalty = body.get("repetition_penalty")
    if penalty is not None:
        if not _is_number(penalty) or penalty <= 0:
            raise _bad(f"'repetition_penalty' must be above 0 (got {penalty!r}).")
        overrides["repetition_penalty"] = float(penalty)

    for name, what in UNSUPPORTED_WHEN_SET.items():
        value = body.get(name)
        if value not in (None, False, [], {}, "none", 0) and not (name == "tool_choice" and value == "none"):
            raise _bad(f"This server does not support {what} ('{name}').")
    response_format = body.get("response_format")
    if response_format is not None and not (
        isinstance(response_format, dict) and response_format.get("type") == "text"
    ):
        raise _bad('This server only writes plain text (\'response_format\' must be {"type": "text"}).')
    for name in sorted(NOTICE_WHEN_SET):
        value = body.get(name)
        if value not in (None, 0, 0.0, {}, ""):
            parsed.notices.append(Notice("unsupported", f"This server cannot honour {name}; it was not applied."))
    unknown = sorted(set(body) - KNOWN_FIELDS)
    if unknown:
        parsed.notices.append(Notice("info", f"Ignored unknown field(s): {', '.join(unknown)[:200]}."))
    return parsed


# -- responses ----------------------------------------------------------------------------


def new_id(shape: Shape) -> str:
    """An id in OpenAI's style: ``chatcmpl-…`` or ``cmpl-…``."""
    return ("chatcmpl-" if shape == "chat" else "cmpl-") + uuid.uuid4().hex


def wire_reason(reason: FinishReason) -> str:
    """quillmate's finish reason as OpenAI's (``cancelled``/``error`` never reach a client as such)."""
    return "length" if reason == "length" else "stop"


def notices_payload(notices: list[Notice]) -> list[dict[str, str]]:
    return [{"kind": n.kind, "message": n.message} for n in notices]


@dataclass
class ChunkWriter:
    """Builds the streamed chunks of one response."""

    shape: Shape
    model: str
    include_usage: bool
    id: str = ""
    created: int = 0

    def __post_init__(self) -> None:
        self.id = self.id or new_id(self.shape)
        self.created = self.created or int(time.time())

    def _chunk(self, choices: list[dict[str, Any]], notices: list[Notice] | None = None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk" if self.shape == "chat" else "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if self.shape == "chat":
            chunk["system_fingerprint"] = None
        if self.include_usage:
            chunk["usage"] = None
        if notices:
            chunk[NOTICES_FIELD] = notices_payload(notices)
        return chunk

    def _choice(self, index: int, text: str | None, finish: str | None, *, role: bool = False) -> dict[str, Any]:
        if self.shape == "chat":
            delta: dict[str, Any] = {}
            if role:
                delta["role"] = "assistant"
            if text is not None:
                delta["content"] = text
            return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {"index": index, "text": text or "", "logprobs": None, "finish_reason": finish}

    def opening(self, count: int) -> dict[str, Any] | None:
        """Chat streams start with each choice's role; completion streams need no opening."""
        if self.shape != "chat":
            return None
        return self._chunk([self._choice(i, "", None, role=True) for i in range(count)])

    def text(self, indices: Sequence[int], text: str, notices: list[Notice] | None = None) -> dict[str, Any]:
        """New text for the choices ``indices`` (usually one)."""
        return self._chunk([self._choice(index, text, None) for index in indices], notices)

    def notices(self, notices: list[Notice]) -> dict[str, Any]:
        """A chunk that only carries notices (no text)."""
        return self._chunk([], notices)

    def finish(self, index: int, reason: FinishReason, notices: list[Notice] | None = None) -> dict[str, Any]:
        return self._chunk([self._choice(index, None if self.shape == "chat" else "", wire_reason(reason))], notices)

    def usage(self, result: GenerationResult) -> dict[str, Any]:
        chunk = self._chunk([])
        chunk["usage"] = usage_payload(result)
        return chunk


def usage_payload(result: GenerationResult) -> dict[str, int]:
    return {
        "prompt_tokens": result.usage.prompt_tokens,
        "completion_tokens": result.usage.completion_tokens,
        "total_tokens": result.usage.total_tokens,
    }


def full_response(shape: Shape, model: str, result: GenerationResult, notices: list[Notice]) -> dict[str, Any]:
    """The non-streamed answer."""
    choices: list[dict[str, Any]] = []
    for index, text in enumerate(result.texts):
        reason = wire_reason(result.finish_reasons[index])
        if shape == "chat":
            choices.append(
                {
                    "index": index,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": reason,
                }
            )
        else:
            choices.append({"index": index, "text": text, "logprobs": None, "finish_reason": reason})
    body: dict[str, Any] = {
        "id": new_id(shape),
        "object": "chat.completion" if shape == "chat" else "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": usage_payload(result),
    }
    if shape == "chat":
        body["system_fingerprint"] = None
    if notices:
        body[NOTICES_FIELD] = notices_payload(notices)
    return body
