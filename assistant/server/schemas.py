"""Reading OpenAI-style requests and writing OpenAI-style responses.

Requests are checked field by field so a client gets one precise 400 message.
Responses follow the shapes the official ``openai`` SDK parses: ``chat.completion``,
``chat.completion.chunk``, ``text_completion`` and ``[DONE]``. Notices (text left out,
settings not honoured) travel in an extra ``quillmate_notices`` field that other
clients ignore.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from assistant.cursor import text_after_cursor
from assistant.server.logprobs import choice_logprobs
from assistant.server.logprobs import requested as requested_logprobs
from backends.base import (
    NOTICES_FIELD,
    ChatMessage,
    FinishReason,
    GenerationResult,
    Notice,
    TextPart,
    TokenAlternatives,
)
from backends.errors import UsageError
from backends.settings import SETTING, ParamOverrides

Shape = Literal["chat", "completion"]
MAX_PROMPTS = 32  # prompts in one completions request

# Accepted but not used: they change nothing a writer would miss, or are about billing.
IGNORED_FIELDS = frozenset({"user", "store", "metadata", "service_tier", "parallel_tool_calls", "prompt_cache_key"})
# Accepted when off; refused when asking for something this server cannot do.
UNSUPPORTED_WHEN_SET = {
    "tools": "tools",
    "functions": "function calling",
    "tool_choice": "tools",
    "function_call": "function calling",
    "echo": "echo",
    "best_of": "best_of",
    "audio": "audio",
    "modalities": "modalities",
    "prediction": "predicted outputs",
    "web_search_options": "web search",
}
NOTICE_WHEN_SET = {"presence_penalty", "frequency_penalty", "logit_bias", "reasoning_effort", "verbosity"}
# OpenAI's names for our settings; their ranges come from the declaration in backends.settings.
WIRE_SETTINGS = {
    "max_tokens": "max_new_tokens",
    "max_completion_tokens": "max_new_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "n": "num_alternatives",
    "stop": "stop",
    "seed": "seed",
    "top_k": "top_k",
    "repetition_penalty": "repetition_penalty",
    "ban": "ban",  # quillmate's own: phrases never to write
    "bias": "bias",  # quillmate's own: {"phrase": weight}
    "real_words": "real_words",  # quillmate's own: true keeps a local model to dictionary words
}
KNOWN_FIELDS = frozenset(
    {
        "model",
        "messages",
        "prompt",
        "suffix",
        "stream",
        "stream_options",
        "response_format",
        "bible",
        "logprobs",
        "top_logprobs",
    }
    | set(WIRE_SETTINGS)
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
    overrides: ParamOverrides = field(default_factory=ParamOverrides)
    messages: tuple[ChatMessage, ...] | None = None
    prompt: str | None = None
    prompts: tuple[str, ...] = ()  # completions: every prompt of the request (``prompt`` is the first)
    suffix: str = ""  # completions: the text that comes after the completion (fill-in-the-middle)
    notices: list[Notice] = field(default_factory=list)
    bible: Any = None  # quillmate's own: a story bible (``assistant.bible.Bible``) for a template model
    logprobs: int | None = None  # alternatives to show at each token (see assistant.server.logprobs); None: off

    def last_user_text(self) -> str:
        """The text of the last user message (chat) or the prompt (completion)."""
        if self.messages is None:
            return self.prompt or ""
        for message in reversed(self.messages):
            if message.role == "user":
                return message.text
        return ""


class RequestError(UsageError):
    """A request the server cannot take; ``param`` names the field at fault (OpenAI's ``param``)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


_QUOTED = re.compile(r"'([a-z_]+)'")
_WORD = re.compile(r"[a-z_]+")


def field_at_fault(message: str) -> str | None:
    """The request field a message is about: the first one it quotes, else the first it names."""
    for name in _QUOTED.findall(message):
        if name in KNOWN_FIELDS:
            return name
    for word in _WORD.findall(message):
        if word in KNOWN_FIELDS and word not in IGNORED_FIELDS and word != "model":
            return word
    return None


def _bad(message: str, param: str | None = None) -> RequestError:
    return RequestError(message, param or field_at_fault(message))


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
                raise _bad(f"{where}: only text content is supported (got {kind!r}).", f"{where}.content")
        return "".join(pieces)
    raise _bad(f"{where}: content must be text or a list of text parts.", f"{where}.content")


def _messages(value: Any, limits: Limits) -> tuple[ChatMessage, ...]:
    if not isinstance(value, list) or not value:
        raise _bad("'messages' must be a non-empty list.")
    if len(value) > limits.max_messages:
        raise _bad(f"Too many messages ({len(value)}); at most {limits.max_messages}.", "messages")
    result = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise _bad(f"messages[{i}] must be an object with role and content.", f"messages.[{i}]")
        role = item.get("role")
        if role == "developer":
            role = "system"
        if role not in ("system", "user", "assistant"):
            raise _bad(f"messages[{i}]: role must be system, user or assistant (got {role!r}).", f"messages.[{i}].role")
        text = _content_text(item.get("content"), f"messages[{i}]")
        result.append(ChatMessage(role, (TextPart(text, elastic=role != "system"),)))
    return tuple(result)


def _prompts(value: Any) -> tuple[str, ...]:
    """A prompt, or a list of them (LangChain's ``batch`` sends several in one request)."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        if len(value) > MAX_PROMPTS:
            raise _bad(f"At most {MAX_PROMPTS} prompts in one request (got {len(value)}).", "prompt")
        return tuple(value)
    if isinstance(value, list) and not value:
        raise _bad("'prompt' is an empty list; send at least one prompt.", "prompt")
    raise _bad("'prompt' must be text or a list of texts (token arrays are not supported).", "prompt")


def _suffix(value: Any) -> str:
    """OpenAI's ``suffix``: its first characters, as many as the app sends from after the cursor."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _bad("'suffix' must be text: the words that come after the completion.", "suffix")
    return text_after_cursor(value, 0)


def _overrides(body: dict[str, Any], limits: Limits) -> ParamOverrides:
    """The generation settings a request sets, checked against their declaration and this server's limits."""
    values: dict[str, Any] = {}
    for wire, name in WIRE_SETTINGS.items():
        value: Any = body.get(wire)
        if value is None:
            continue
        if wire == "top_k" and value == -1:  # how vLLM and others say "off"
            value = 0
        if wire == "stop" and value == []:
            continue
        problem = SETTING[name].problem(value, called=f"'{wire}'")
        if problem:
            raise _bad(problem + ".", wire)
        if name == "max_new_tokens" and value > limits.max_tokens:
            raise _bad(f"'{wire}' is {value}; this server allows at most {limits.max_tokens} tokens per answer.", wire)
        if name == "num_alternatives" and value > limits.max_alternatives:
            raise _bad(f"'n' is {value}; this server writes at most {limits.max_alternatives} alternatives.", wire)
        if name == "stop" and not isinstance(value, str) and len(value) > limits.max_stop:
            raise _bad(f"At most {limits.max_stop} stop sequences (got {len(value)}).", wire)
        values[name] = value
    return ParamOverrides(values)


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
            raise _bad("Chat completions take 'messages', not 'prompt' (use /v1/completions for a prompt).", "prompt")
        parsed.messages = _messages(body.get("messages"), limits)
    else:
        if "messages" in body:
            raise _bad("Completions take 'prompt', not 'messages' (use /v1/chat/completions for messages).", "messages")
        if "prompt" not in body:
            raise _bad("'prompt' is required.")
        parsed.prompts = _prompts(body["prompt"])
        parsed.prompt = parsed.prompts[0]
    suffix = _suffix(body.get("suffix"))
    if shape == "completion":
        parsed.suffix = suffix
    elif suffix.strip():
        parsed.notices.append(
            Notice("unsupported", "Chat completions take no 'suffix'; it was not used (/v1/completions takes it).")
        )

    stream = body.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise _bad("'stream' must be true or false.")
    parsed.stream = bool(stream)
    options = body.get("stream_options")
    if options is not None:
        if not isinstance(options, dict):
            raise _bad("'stream_options' must be an object.")
        parsed.include_usage = bool(options.get("include_usage", False))

    parsed.overrides = _overrides(body, limits)
    try:
        parsed.logprobs = requested_logprobs(body, shape)
    except UsageError as error:
        raise _bad(error.message) from None
    if parsed.logprobs is not None:
        parsed.overrides = parsed.overrides | {"logprobs": max(1, parsed.logprobs)}
    if body.get("bible") is not None:
        parsed.bible = _bible(body["bible"])
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


def _bible(data: Any) -> Any:
    """The request's ``bible`` as a checked :class:`assistant.bible.Bible` (the file format's fields, as JSON)."""
    from assistant.bible import Bible

    if not isinstance(data, dict):
        raise _bad("'bible' must be an object: memory, authors_note, entries and settings.", "bible")
    return Bible.of(data, where="'bible'")


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
    logprobs: int | None = None  # alternatives to show at each token; None: no logprobs
    starts: Sequence[int] = ()  # completions: each choice's prompt length (text_offset counts from there)

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

    def _choice(
        self,
        index: int,
        text: str | None,
        finish: str | None,
        *,
        role: bool = False,
        tokens: Sequence[TokenAlternatives] | None = None,
    ) -> dict[str, Any]:
        shown = None
        if tokens is not None and self.logprobs is not None:
            start = self.starts[index] if index < len(self.starts) else 0
            shown = choice_logprobs(self.shape, tokens, self.logprobs, start)
        if self.shape == "chat":
            delta: dict[str, Any] = {}
            if role:
                delta["role"] = "assistant"
            if text is not None:
                delta["content"] = text
            return {"index": index, "delta": delta, "logprobs": shown, "finish_reason": finish}
        return {"index": index, "text": text or "", "logprobs": shown, "finish_reason": finish}

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

    def finish(
        self,
        index: int,
        reason: FinishReason,
        notices: list[Notice] | None = None,
        tokens: Sequence[TokenAlternatives] | None = None,
    ) -> dict[str, Any]:
        """A choice's end; with logprobs asked for, it carries the choice's ``tokens`` all at once."""
        text = None if self.shape == "chat" else ""
        return self._chunk([self._choice(index, text, wire_reason(reason), tokens=tokens)], notices)

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


def full_response(
    shape: Shape,
    model: str,
    result: GenerationResult,
    notices: list[Notice],
    logprobs: int | None = None,
    starts: Sequence[int] = (),
) -> dict[str, Any]:
    """The non-streamed answer; with ``logprobs`` (alternatives to show per token), each choice's logprobs."""
    choices: list[dict[str, Any]] = []
    for index, text in enumerate(result.texts):
        reason = wire_reason(result.finish_reasons[index])
        shown = None
        if logprobs is not None:
            tokens = result.logprobs[index] if index < len(result.logprobs) else ()
            shown = choice_logprobs(shape, tokens, logprobs, starts[index] if index < len(starts) else 0)
        if shape == "chat":
            choices.append(
                {
                    "index": index,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": shown,
                    "finish_reason": reason,
                }
            )
        else:
            choices.append({"index": index, "text": text, "logprobs": shown, "finish_reason": reason})
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
