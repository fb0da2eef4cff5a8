"""Keeping API keys out of logs, and turning ``openai`` SDK errors into one-line messages.

Nothing here imports ``openai`` at module level; :func:`translate` imports it when an
error is being translated (the SDK is loaded by then anyway).
"""

from __future__ import annotations

import logging
import threading
from typing import Any
from urllib.parse import urlsplit

from backends.credentials import mask
from backends.errors import (
    AuthenticationError,
    BackendError,
    BackendTimeout,
    ContextOverflow,
    ModelNotFound,
    RateLimited,
)

__all__ = ["REDACTED", "RedactSecrets", "host_of", "http_errors", "mask", "protect", "redact", "shown_url", "translate"]

REDACTED = "[redacted]"
LOGGER_PREFIXES = ("openai", "httpx", "httpx2", "httpcore", "httpcore2")

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def redact(text: str) -> str:
    """``text`` with every registered secret replaced."""
    if not text:
        return text
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


class RedactSecrets(logging.Filter):
    """A logging filter that removes registered secrets from every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to logging's own error handling
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text, record.exc_info = redact(text), None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_FILTER = RedactSecrets()


def _attach_filter() -> None:
    """Put the filter on the SDK's and HTTP libraries' loggers and on the root handlers.

    A logger's filters only see records logged to that very logger, so every existing
    logger under the prefixes gets one; the root logger's handlers (where records
    end up, e.g. with ``OPENAI_LOG=debug``) get one too.
    """
    names = [*LOGGER_PREFIXES]
    for name in list(logging.Logger.manager.loggerDict):
        if name.split(".")[0] in LOGGER_PREFIXES:
            names.append(name)
    for name in names:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
        for handler in logger.handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)
    for handler in logging.getLogger().handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)


def protect(secret: str) -> None:
    """Register ``secret`` so no log record of the SDK or HTTP libraries can show it."""
    if secret and len(secret) >= 8:
        with _secrets_lock:
            _secrets.add(secret)
    _attach_filter()


def host_of(base_url: str) -> str:
    """``https://api.openai.com/v1`` -> ``api.openai.com`` (never the credentials before an ``@``)."""
    parts = urlsplit(base_url)
    return parts.netloc.rpartition("@")[2] or base_url


def shown_url(url: str) -> str:
    """``url`` fit to show: a password in it and the values of its query become ``***``.

    Some proxies take their key in the URL (``https://user:KEY@host/v1``, ``?api-key=KEY``);
    those secrets are also registered with :func:`protect`, so logs never show them either.
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    user, at, host = netloc.rpartition("@")
    if at:
        name, colon, password = user.partition(":")
        protect(password if colon else name)
        netloc = f"{name}:***@{host}" if colon else f"***@{host}"
    query = parts.query
    if query:
        pairs = [pair.partition("=") for pair in query.split("&")]
        for _name, eq, value in pairs:
            if eq and value:
                protect(value)
        query = "&".join(f"{name}=***" if eq and value else name + eq for name, eq, value in pairs)
    return parts._replace(netloc=netloc, query=query).geturl()


def _server_message(error: Any) -> str:
    """The service's own one-line explanation, redacted and shortened."""
    body = getattr(error, "body", None)
    message = ""
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = str(inner.get("message", "")) if isinstance(inner, dict) else str(inner or "")
    if not message:
        message = str(getattr(error, "message", "") or "")
    message = " ".join(redact(message).split())
    return message[:200] + ("…" if len(message) > 200 else "")


def _code(error: Any) -> str:
    code = getattr(error, "code", None)
    if code:
        return str(code)
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("code"):
            return str(inner["code"])
    return ""


def translate(
    error: BaseException,
    *,
    model: str,
    base_url: str,
    key_source: str,
    timeout: float,
    retries: int,
    during_stream: bool = False,
) -> BackendError | ContextOverflow:
    """One clear, key-free quillmate error for an ``openai`` or HTTP-library exception.

    ``during_stream`` is for failures after text has arrived: the message says the text
    so far is kept.
    """
    import openai

    where = host_of(base_url)
    service = "The OpenAI service" if where == "api.openai.com" else f"The server at {base_url}"
    if during_stream:
        if isinstance(error, openai.APITimeoutError):
            return BackendTimeout(f"{service} stopped sending for {timeout:g} s; the text so far is kept.")
        if isinstance(error, openai.APIConnectionError) or (
            _is_http_error(error) and not isinstance(error, openai.APIError)
        ):
            return BackendError(
                f"The connection to {where} broke while the text was arriving; the text so far is kept."
            )
        if isinstance(error, openai.APIError) and not isinstance(error, openai.APIStatusError):
            detail = _server_message(error) or "the stream reported an error"
            return BackendError(f"{service} stopped with an error: {detail} (the text so far is kept).")
    if isinstance(error, openai.AuthenticationError):
        return AuthenticationError(
            f"{service} refused the API key from {key_source} (401).",
            "Check the key, or store a new one with `quillmate keys set openai`.",
        )
    if isinstance(error, openai.PermissionDeniedError):
        detail = _server_message(error)
        return ModelNotFound(
            f"{service} does not let this key use the model '{model}' (403)" + (f": {detail}" if detail else "."),
            "Pick a model your account may use (`model = ...` in the profile).",
        )
    if isinstance(error, openai.NotFoundError):
        return ModelNotFound(
            f"The model '{model}' is not available to this key at {where} (404).",
            "Check the model name in the profile, or pick one your account can use.",
        )
    if isinstance(error, openai.RateLimitError):
        if _code(error) == "insufficient_quota":
            return RateLimited(
                f"{service} says the account has run out of credit (429 insufficient_quota).",
                "Check your plan and billing, then try again.",
            )
        return RateLimited(
            f"{service} is rate-limiting requests (429) and still was after {retries} retries.",
            "Wait a minute and try again, or lower how many requests you send at once.",
        )
    if isinstance(error, openai.APITimeoutError):
        return BackendTimeout(
            f"No answer from {base_url} within {timeout:g} s.",
            "Check that the server is up, or raise `timeout` in the profile.",
        )
    if isinstance(error, openai.APIConnectionError):
        return BackendError(
            f"Cannot connect to {base_url} ({_connection_reason(error)}).",
            "Is the server running? Check base_url in the profile and your network.",
        )
    if isinstance(error, openai.BadRequestError):
        detail = _server_message(error) or "no details"
        if _is_context_overflow(error, detail):
            return ContextOverflow(
                f"The prompt is longer than the model '{model}' can take: {detail}",
                "Set context_window in the profile, shorten the text, or lower max tokens.",
            )
        return BackendError(f"{service} rejected the request (400): {detail}")
    if isinstance(error, openai.APIStatusError):
        status = error.status_code
        detail = _server_message(error)
        if status >= 500:
            return BackendError(
                f"{service} had a problem ({status}) and still did after {retries} retries"
                + (f": {detail}" if detail else "."),
                "Try again in a moment.",
            )
        return BackendError(f"{service} answered {status}" + (f": {detail}" if detail else "."))
    if isinstance(error, openai.APIError):  # an error event inside a stream
        detail = _server_message(error) or "the stream reported an error"
        return BackendError(f"{service} stopped with an error: {detail}")
    if _is_http_error(error):
        return BackendError(f"The connection to {where} broke ({_short(error)}).", "Try again.")
    return BackendError(f"The request to {where} failed ({_short(error)}).")


_CONTEXT_PHRASES = ("context length", "context size", "context window", "maximum context")


def _is_context_overflow(error: Any, detail: str) -> bool:
    """OpenAI's ``context_length_exceeded``, llama.cpp's ``exceed_context_size_error``, vLLM's wording."""
    body = getattr(error, "body", None)
    inner = body.get("error", body) if isinstance(body, dict) else None
    kind = str(inner.get("type", "")) if isinstance(inner, dict) else ""
    if _code(error) == "context_length_exceeded" or kind == "exceed_context_size_error":
        return True
    return any(phrase in detail.lower() for phrase in _CONTEXT_PHRASES)


def _connection_reason(error: BaseException) -> str:
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return "connection refused"
    lowered = " ".join(f"{type(e).__name__}: {e}" for e in chain).lower()
    if "refused" in lowered or "errno 111" in lowered:
        return "connection refused"
    if "name or service" in lowered or "getaddrinfo" in lowered or "nodename" in lowered:
        return "the host name could not be found"
    if "ssl" in lowered or "certificate" in lowered:
        return "a TLS/certificate problem"
    return "the connection failed"


def _is_http_error(error: BaseException) -> bool:
    names = {cls.__module__.split(".")[0] for cls in type(error).__mro__}
    return bool(names & {"httpx", "httpx2", "httpcore", "httpcore2", "h11", "anyio"}) or isinstance(error, OSError)


def _short(error: BaseException) -> str:
    text = redact(str(error).strip().splitlines()[0]) if str(error).strip() else type(error).__name__
    return text[:160]


def http_errors() -> tuple[type[BaseException], ...]:
    """The HTTP libraries' exception bases (httpx2 and, when loaded, httpx), plus OSError."""
    import sys

    found: list[type[BaseException]] = [OSError]
    for module_name in ("httpx2", "httpx"):
        module = sys.modules.get(module_name)
        if module is not None:
            for attr in ("HTTPError", "StreamError"):
                cls = getattr(module, attr, None)
                if isinstance(cls, type):
                    found.append(cls)
    return tuple(found)
