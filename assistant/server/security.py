"""What keeps ``quillmate serve`` safe by default.

* It binds 127.0.0.1; any other address needs an API key (``--api-key``), and then
  every request must carry ``Authorization: Bearer <key>`` (compared in constant time).
* The ``Host`` header must name the bound address (localhost aliases allowed), which
  defeats DNS rebinding: a web page cannot reach the server through a name of its own.
* No CORS headers at all, so browsers keep other sites' pages from reading answers.
* Requests may not name upstream URLs, model files or code-loading flags.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Iterable
from ipaddress import ip_address
from typing import Any

from backends.errors import QuillmateError, UsageError

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})
MIN_KEY_LENGTH = 16
KEY_ENV = "QUILLMATE_SERVE_API_KEY"

# Fields some servers accept that would let a client choose where or what code runs.
FORBIDDEN_FIELDS = frozenset(
    {
        "base_url",
        "api_base",
        "api_key",
        "api_type",
        "api_version",
        "organization",
        "model_path",
        "model_dir",
        "model_file",
        "checkpoint",
        "tokenizer",
        "tokenizer_path",
        "revision",
        "download_dir",
        "cache_dir",
        "trust_remote_code",
        "load_format",
        "device",
        "dtype",
        "backend",
        "kind",
        "plugin",
    }
)
_PLAIN_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_TEMPLATE_MODEL = re.compile(r"^quillmate/([A-Za-z0-9][A-Za-z0-9_-]{0,63})$")
TEMPLATE_PREFIX = "quillmate/"


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ip_address(name).is_loopback
    except ValueError:
        return False


def check_bind(host: str, api_key: str | None) -> None:
    """Refuse to serve beyond this machine without a good API key.

    Raises:
        UsageError: for a non-loopback address without a key, or a key that is too short.
    """
    if api_key is not None and len(api_key) < MIN_KEY_LENGTH:
        raise UsageError(
            f"The serve API key is too short ({len(api_key)} characters); use at least {MIN_KEY_LENGTH}.",
            'Make one with: python -c "import secrets; print(secrets.token_urlsafe(32))"',
        )
    if not is_loopback(host) and not api_key:
        raise UsageError(
            f"Refusing to serve on {host or 'all addresses'} without an API key: anyone who can reach it could use it.",
            f"Add --api-key (or --api-key-file, or set {KEY_ENV}), or keep the default --host 127.0.0.1.",
        )


def allowed_hosts(host: str, port: int, extra: Iterable[str] = ()) -> frozenset[str] | None:
    """The ``Host`` header values to accept, or None for any (a wildcard bind with no list).

    A server bound to 127.0.0.1 accepts ``127.0.0.1:PORT``, ``localhost:PORT`` and
    ``[::1]:PORT``; one bound to a specific address also accepts that address.
    """
    extra = [e.strip().lower() for e in extra if e.strip()]
    bound = host.strip().strip("[]").lower()
    if bound in WILDCARD_HOSTS and not extra:
        return None
    names = set(LOOPBACK_NAMES)
    if bound not in WILDCARD_HOSTS:
        names.add(bound)
    names.update(extra)
    values: set[str] = set()
    for name in names:
        shown = f"[{name}]" if ":" in name and not name.startswith("[") else name
        values.add(f"{shown}:{port}")
        if port == 80:
            values.add(shown)
    return frozenset(values)


def host_allowed(value: str | None, allowed: frozenset[str] | None) -> bool:
    """Whether a request's Host header is one of ``allowed`` (None allows any present value)."""
    if not value:
        return False
    if allowed is None:
        return True
    return value.strip().lower() in allowed


def tokens_match(given: str, expected: str) -> bool:
    """Constant-time comparison of two tokens."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def error_body(
    message: str, kind: str = "invalid_request_error", code: str | None = None, param: str | None = None
) -> bytes:
    """An OpenAI-style error object."""
    return json.dumps({"error": {"message": message, "type": kind, "param": param, "code": code}}).encode("utf-8")


_CLI_VARIABLE = re.compile(r"\s*\(--var ([A-Za-z_][\w-]*)=\.\.\.\)")
# A key file's path ends where our messages go on (it may hold spaces); else at the next space.
_KEY_FILE_PATH = re.compile(r"\bkey file (?:.+?(?= named by | \(\d{3}\)|\.?$)|\S*[^\s.,;:)])")


def public_text(text: str) -> str:
    """``text`` fit for an HTTP client: no command-line flags, no key-file paths of this machine.

    The core's messages are written for the command line (``--var topic=...``); a client of
    the server sends variables as JSON instead. Where the server keeps its keys is nobody's
    business but its owner's.
    """
    variables = _CLI_VARIABLE.findall(text)
    text = _CLI_VARIABLE.sub("", text)
    text = _KEY_FILE_PATH.sub("key file", text)
    if variables:
        example = ", ".join(f'"{name}": "..."' for name in dict.fromkeys(variables))
        text = f"{text.rstrip()} Send it in the last user message as a JSON object, e.g. {{{example}}}."
    return text


def public_message(error: BaseException) -> str:
    """An error's one line for an HTTP client: the message without its command-line hint."""
    return public_text(error.message if isinstance(error, QuillmateError) else str(error))


def forbidden_fields(body: dict[str, Any]) -> list[str]:
    """The fields of a request body that try to pick an upstream, a model file or remote code."""
    return sorted(name for name in body if name.lower() in FORBIDDEN_FIELDS)


def check_model_name(model: Any) -> str:
    """Return the model id if it names a profile or ``quillmate/<template>``.

    Raises:
        UsageError: for paths, URLs and anything else that is not a plain name.
    """
    if not isinstance(model, str) or not model:
        raise UsageError("'model' must be a model id from GET /v1/models.")
    if _PLAIN_MODEL.match(model) and ".." not in model:
        return model
    if _TEMPLATE_MODEL.match(model):
        return model
    raise UsageError(
        f"'{model[:80]}' is not a model id this server takes: paths, URLs and other servers' names are refused.",
        "Use a model id from GET /v1/models, e.g. 'local' or 'quillmate/poem'.",
    )


def template_name(model: str) -> str | None:
    """``quillmate/poem`` -> ``poem``; None for a backend profile's id."""
    found = _TEMPLATE_MODEL.match(model)
    return found.group(1) if found else None


class Guard:
    """ASGI middleware: Host header check, then bearer-token check when a key is set."""

    def __init__(self, app: Any, *, allowed: frozenset[str] | None, api_key: str | None) -> None:
        self.app = app
        self.allowed = allowed
        self.api_key = api_key

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if not host_allowed(headers.get("host"), self.allowed):
            await _reject(
                send,
                421,
                "This server only answers requests addressed to it (the Host header does not match).",
                "misdirected_request",
            )
            return
        if self.api_key is not None:
            token = bearer_token(headers.get("authorization"))
            if token is None or not tokens_match(token, self.api_key):
                await _reject(
                    send,
                    401,
                    "Missing or wrong API key: send 'Authorization: Bearer <key>' with the server's key.",
                    "invalid_api_key",
                    extra=[(b"www-authenticate", b"Bearer")],
                )
                return
        await self.app(scope, receive, send)


async def _reject(
    send: Any, status: int, message: str, code: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = error_body(message, "invalid_request_error", code)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-should-retry", b"false"),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
