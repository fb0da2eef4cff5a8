"""The OpenAI API and OpenAI-compatible servers (vLLM, llama.cpp, LM Studio, ``quillmate serve``).

A profile looks like::

    [backends.openai]
    kind = "openai"
    model = "gpt-4o-mini"
    # base_url = "http://127.0.0.1:8000/v1"   # another server; OPENAI_BASE_URL also works
    # api_key_env = "MY_KEY_VARIABLE"         # read the key from this variable
    # api_key_file = "~/secrets/openai.key"   # or from this file
    # organization = "org-..."   project = "proj_..."
    # timeout = 30                            # seconds to wait for an answer (and between streamed pieces)
    # max_retries = 2                         # for 429, 5xx and connection failures, with backoff
    # mode = "chat"                           # or "completion" (the legacy endpoint, for base models)
    # context_window = 128000
    # presence_penalty = 0.0   frequency_penalty = 0.0
    # extra_samplers = ["top_k", "min_p", "repetition_penalty"]   # what llama.cpp and vLLM also take
    # min_p = 0.05                            # sent when extra_samplers names it
    # continue_final_message = true           # the server goes on with a final assistant message (vLLM)
    # tokenizer = "gpt2"                      # the model's tokenizer (a Hugging Face name or a folder):
    #                                         # single-token phrase bias and bans go as logit_bias
    # send_suffix = true                      # completion mode: the server's completions take suffix
    #                                         # (the text after the cursor, to fill in the middle)

Choices made here:

* **Key.** Taken, in order, from the variable named by ``api_key_env``, the file named
  by ``api_key_file`` (both must exist when named), ``OPENAI_API_KEY`` (sent only to
  api.openai.com or to the server ``OPENAI_BASE_URL`` names), then the key stored with
  ``quillmate keys set openai`` (sent only to api.openai.com). A server on this machine
  (127.0.0.1, localhost, ::1) needs no key: ``not-needed`` is sent instead.
  The key is registered with a logging filter, so no record of the ``openai``, ``httpx``,
  ``httpx2`` or ``httpcore`` loggers shows it (also with ``OPENAI_LOG=debug``), and it
  never appears in ``repr()``, ``info()`` or error messages (masked as ``sk-…abcd`` at most).
* **Mode.** ``chat`` uses chat completions; ``completion`` the legacy completions endpoint
  (for completion-only models such as ``gpt-3.5-turbo-instruct`` and servers hosting base
  models such as GPT-2). Without ``mode`` the model name decides: names of known
  completion models (``*-instruct``, ``davinci-002``, ``babbage-002``, ``gpt2``...) use
  ``completion``, all others ``chat``.
* **Context window.** ``context_window`` when set; else, for a completion model, what the
  server reports (``max_model_len`` in ``GET /models/{id}`` or ``GET /models``, as vLLM and
  ``quillmate serve`` do; llama.cpp's ``GET /props`` ``n_ctx``); else a table of known
  OpenAI models; else 128,000 tokens for chat and 1,024 (GPT-2's) for completion, and a
  Notice says it was assumed whenever that shortened anything. Prompts are fitted with an
  approximate counter (4 bytes per token); a server that still finds one too long is
  reported as such (ContextOverflow), also when it ends the stream without a word.
* **Alternatives.** ``n`` is sent as asked; from a server that writes fewer (llama.cpp
  ignores ``n``) the others are asked for again, with the next seeds, and a Notice says so.
* **Max tokens.** Sent as ``max_completion_tokens`` to api.openai.com (what current
  OpenAI models require) and as ``max_tokens`` to every other server (what
  OpenAI-compatible servers understand).
* **Timeouts.** ``timeout`` bounds connecting, waiting for the answer and every pause
  inside a stream; a timeout is not retried (a silent server rarely answers a second
  time), so a hung server is reported after ``timeout`` seconds.
* **Samplers beyond OpenAI's.** ``top_k`` and ``repetition_penalty`` (and the profile's
  ``min_p``) go to the server, beside the OpenAI fields, when ``extra_samplers`` names them;
  never to api.openai.com, which refuses them.
* **Banned phrases.** The server never sees ``ban``: the text is watched as it streams and
  stopped where a banned phrase begins (the phrase is never shown). A ``completion``
  profile then asks again, a new request whose prompt is the prompt plus the text kept so
  far, with what is left of max tokens and the next seed, at most ``MAX_BAN_REASKS`` (3)
  times per alternative; after that the text ends just before the phrase and a Notice
  says so. A ``chat`` profile does the same only with ``continue_final_message = true``
  (the kept text goes as a final assistant message, with vLLM's ``continue_final_message``
  and ``add_generation_prompt`` fields); without it the text ends before the phrase and a
  Notice says why. A model sampling greedily (temperature 0, no seed) tends to write the
  same phrase again from the same text, so there the re-asks usually end in the cut.
* **Phrase bias / logit_bias.** ``logit_bias`` needs the server's token ids, so it is sent
  only when the profile names the model's ``tokenizer`` (loaded with transformers, from the
  local cache first, on the first request with a bias or a ban). Then every bias phrase and
  banned phrase that is one token in each of its spellings goes as ``logit_bias`` (a ban as
  -100); a Notice names the bias phrases of more than one token, which are not applied, and
  multi-token bans keep the stop-and-ask-again path above (see ``backends.logit_bias``).
  Without ``tokenizer``, ``bias`` is reported as not honoured.
* **Text after the cursor.** Sent as the completion's ``suffix`` only when a ``completion``
  profile declares ``send_suffix = true`` (the legacy endpoint defines the field; many servers
  refuse or ignore it); its start is kept, within a quarter of the prompt's room. Otherwise the
  model writes from the text before the cursor and a Notice says it cannot see the rest.
* **Not honoured** (a Notice says so): num_beams, and top_k and repetition_penalty unless
  declared as above. More than four stop sequences: the first four go to the server, the
  rest are applied here as the text arrives.

``openai`` is imported on the first request, never when the profile is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, replace
from ipaddress import ip_address
from typing import Any
from urllib.parse import urlsplit

from backends.base import (
    NOTICES_FIELD,
    Backend,
    BackendInfo,
    Capabilities,
    ChatMessage,
    Delta,
    FinishReason,
    GenerationParams,
    GenerationRequest,
    GenerationResult,
    Notice,
    NoticeKind,
    StopFilter,
    StreamEvent,
    TextPart,
    TokenAlternatives,
    Usage,
    fit_parts,
    join_parts,
)
from backends.credentials import stored_key
from backends.errors import BackendError, ConfigError, ModelNotFound
from backends.fim import cannot_see_after, end_at_word, suffix_room
from backends.logit_bias import TokenBias, load_tokenizer, token_bias
from backends.openai_errors import host_of, http_errors, mask, protect, redact, shown_url, translate
from backends.steering import BannedPhraseCut
from backends.token_alternatives import fit_to_text, from_openai, no_alternatives_notice, openai_request_fields

DEFAULT_MODEL = "gpt-4o-mini"
OPENAI_BASE_URL = "https://api.openai.com/v1"
BASE_URL_ENV = "OPENAI_BASE_URL"
KEY_ENV = "OPENAI_API_KEY"
STORED_KEY_NAME = "openai"
LOCAL_PLACEHOLDER_KEY = "not-needed"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 2
CHAT_CONTEXT = 128_000
COMPLETION_CONTEXT = 1_024
MAX_STOP = 4
MAX_ALTERNATIVES = 128
MAX_TEMPERATURE = 2.0
MESSAGE_OVERHEAD = 4  # tokens each chat message costs beyond its text
MAX_BAN_REASKS = 3  # how many times one alternative is asked again after writing a banned phrase
CONTINUE_INSTRUCTION = (
    "Continue the writer's text from exactly where it stops, in the same voice. Reply with the continuation only."
)

_OPTIONS = {
    "model",
    "base_url",
    "api_key_env",
    "api_key_file",
    "organization",
    "project",
    "timeout",
    "max_retries",
    "mode",
    "context_window",
    "presence_penalty",
    "frequency_penalty",
    "extra_samplers",
    "min_p",
    "continue_final_message",
    "send_suffix",
    "tokenizer",
}
EXTRA_SAMPLERS = ("top_k", "min_p", "repetition_penalty")  # what llama.cpp and vLLM take beyond OpenAI's API
_COMPLETION_PREFIXES = ("gpt-3.5-turbo-instruct", "davinci-002", "babbage-002", "text-", "gpt2", "distilgpt2")
_KNOWN_CONTEXT = {  # longest matching prefix wins
    "gpt-4o": 128_000,
    "gpt-4.1": 1_047_576,
    "gpt-4-turbo": 128_000,
    "gpt-4": 8_192,
    "gpt-3.5-turbo": 16_385,
    "gpt-3.5-turbo-instruct": 4_096,
    "gpt-5": 400_000,
    "o1": 200_000,
    "o3": 200_000,
    "o4": 200_000,
    "davinci-002": 16_384,
    "babbage-002": 16_384,
    "gpt2": 1_024,
    "distilgpt2": 1_024,
}


class _Secret:
    """A string that never shows itself in ``repr`` or ``str``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"<secret {mask(self._value)}>"

    __str__ = __repr__


@dataclass(frozen=True)
class KeyChoice:
    """Which key is used and where it came from (the key itself is hidden)."""

    secret: _Secret
    source: str  # e.g. "OPENAI_API_KEY", "key file ~/.config/quillmate/keys/openai.key"
    placeholder: bool = False

    def describe(self) -> str:
        if self.placeholder:
            return "none needed (server on this machine)"
        return f"{mask(self.secret.reveal())} from {self.source}"


def is_local_url(url: str) -> bool:
    """True when ``url`` points at this machine (127.0.0.0/8, ::1 or localhost)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def _is_window(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 32


def _known_context(model: str) -> int | None:
    matches = [prefix for prefix in _KNOWN_CONTEXT if model.startswith(prefix)]
    return _KNOWN_CONTEXT[max(matches, key=len)] if matches else None


def default_mode(model: str) -> str:
    """``completion`` for known completion-only model names, else ``chat``."""
    name = model.rsplit("/", 1)[-1].lower()
    return "completion" if name.startswith(_COMPLETION_PREFIXES) else "chat"


def _option(name: str, value: Any, kind: str, profile: str) -> Any:
    """Check one profile value: ``kind`` is "text", "whole number" or "number"."""
    if value is None:
        return None
    if kind == "text":
        ok = isinstance(value, str)
    elif kind == "whole number":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "true or false":
        ok = isinstance(value, bool)
    else:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok:
        article = "" if kind == "text" else "a "
        raise ConfigError(f"Backend profile '{profile}': {name} must be {article}{kind} (got {value!r}).")
    return value


class OpenAIBackend(Backend):
    """Models behind the OpenAI API or any OpenAI-compatible server."""

    kind = "openai"
    check_tokens = 12  # `quillmate backends check` spends at most this many tokens

    def __init__(
        self,
        name: str = "openai",
        model: str = DEFAULT_MODEL,
        *,
        base_url: str | None = None,
        api_key_env: str | None = None,
        api_key_file: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        mode: str | None = None,
        context_window: int | None = None,
        presence_penalty: float | None = None,
        frequency_penalty: float | None = None,
        extra_samplers: Sequence[str] = (),
        min_p: float | None = None,
        continue_final_message: bool = False,
        send_suffix: bool = False,
        tokenizer: str | None = None,
    ) -> None:
        super().__init__(name)
        problems = []
        if isinstance(extra_samplers, str) or not all(isinstance(s, str) for s in extra_samplers):
            problems.append(f"extra_samplers must be a list of names, e.g. {list(EXTRA_SAMPLERS)}")
        else:
            unknown_samplers = sorted(set(extra_samplers) - set(EXTRA_SAMPLERS))
            if unknown_samplers:
                problems.append(f"extra_samplers takes {', '.join(EXTRA_SAMPLERS)} (got {', '.join(unknown_samplers)})")
        if min_p is not None:
            if not 0.0 <= min_p <= 1.0:
                problems.append(f"min_p must be between 0 and 1 (got {min_p!r})")
            elif "min_p" not in extra_samplers:
                problems.append('min_p is sent only to a server that takes it: add "min_p" to extra_samplers')
        if not isinstance(continue_final_message, bool):
            problems.append(f"continue_final_message must be true or false (got {continue_final_message!r})")
        if not isinstance(send_suffix, bool):
            problems.append(f"send_suffix must be true or false (got {send_suffix!r})")
        elif send_suffix and (mode or default_mode(model or "")) != "completion":
            problems.append('send_suffix is for mode = "completion" (chat completions take no suffix)')
        if tokenizer is not None and (not isinstance(tokenizer, str) or not tokenizer.strip()):
            problems.append(f"tokenizer must name a Hugging Face model or a folder (got {tokenizer!r})")
        if not model or not model.strip():
            problems.append("model must not be empty")
        if not (isinstance(timeout, int | float) and math.isfinite(timeout) and timeout > 0):
            problems.append(f"timeout must be a number of seconds above 0 (got {timeout!r})")
        if not isinstance(max_retries, int) or not 0 <= max_retries <= 10:
            problems.append(f"max_retries must be a whole number from 0 to 10 (got {max_retries!r})")
        if mode not in (None, "chat", "completion"):
            problems.append(f"mode must be chat or completion (got {mode!r})")
        if context_window is not None and (not isinstance(context_window, int) or context_window < 32):
            problems.append(f"context_window must be a whole number of at least 32 (got {context_window!r})")
        for label, penalty in (("presence_penalty", presence_penalty), ("frequency_penalty", frequency_penalty)):
            if penalty is not None and not -2.0 <= penalty <= 2.0:
                problems.append(f"{label} must be between -2 and 2 (got {penalty!r})")
        if base_url is not None and urlsplit(base_url).scheme not in ("http", "https"):
            problems.append(f"base_url must start with http:// or https:// (got {base_url!r})")
        if problems:
            raise ConfigError(f"Backend profile '{name}': " + "; ".join(problems) + ".")
        self.model = model.strip()
        self._configured_base_url = base_url.rstrip("/") if base_url else None
        self.api_key_env = api_key_env
        self.api_key_file = api_key_file
        self.organization = organization
        self.project = project
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.mode = mode or default_mode(self.model)
        self.context_window = context_window
        self.presence_penalty = presence_penalty
        self.frequency_penalty = frequency_penalty
        self.extra_samplers = tuple(extra_samplers) if not isinstance(extra_samplers, str) else ()
        self.min_p = min_p
        self.continue_final_message = continue_final_message
        self.send_suffix = send_suffix
        """The server's completions take ``suffix``: the text after the cursor goes with the prompt."""
        self.tokenizer = tokenizer.strip() if tokenizer else None
        """The model's tokenizer, by Hugging Face name or folder: for ``logit_bias`` (see ``backends.logit_bias``)."""
        self._tokenizer: Any = None
        self._discovered_context: int | None = None
        self._discovered = False
        self._latency_ms: float | None = None
        self._client_cache: tuple[asyncio.AbstractEventLoop, Any] | None = None
        self._old_clients: list[Any] = []
        self._usage_option = True
        self._open_streams = 0

    @classmethod
    def from_options(cls, name: str, options: Mapping[str, Any]) -> OpenAIBackend:
        """Build from a config profile; unknown or mistyped keys are a ConfigError."""
        unknown = set(options) - _OPTIONS - {"kind"}
        if unknown:
            raise ConfigError(
                f"Backend profile '{name}' has unknown setting(s): {', '.join(sorted(unknown))}.",
                f"An openai profile takes: {', '.join(sorted(_OPTIONS))}.",
            )
        text = {"model", "base_url", "api_key_env", "api_key_file", "organization", "project", "mode", "tokenizer"}
        values: dict[str, Any] = {}
        for key, value in options.items():
            if key == "kind":
                continue
            if key in text:
                values[key] = _option(key, value, "text", name)
            elif key in ("max_retries", "context_window"):
                values[key] = _option(key, value, "whole number", name)
            elif key == "extra_samplers":
                values[key] = value
            elif key in ("continue_final_message", "send_suffix"):
                values[key] = _option(key, value, "true or false", name)
            else:
                values[key] = _option(key, value, "number", name)
        values = {k: v for k, v in values.items() if v is not None}
        return cls(name, **values)

    def __repr__(self) -> str:
        return f"OpenAIBackend(name={self.name!r}, model={self.model!r}, base_url={self._shown_base_url()!r})"

    # -- where and who ------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The API root: the profile's base_url, else OPENAI_BASE_URL, else OpenAI's.

        Raises:
            BackendError: when OPENAI_BASE_URL is set but empty or not a URL.
        """
        if self._configured_base_url:
            return self._configured_base_url
        value = os.environ.get(BASE_URL_ENV)
        if value is None:
            return OPENAI_BASE_URL
        if not value.strip():
            raise BackendError(
                f"{BASE_URL_ENV} is set but empty.", f"Unset it, or set it to a server's URL such as {OPENAI_BASE_URL}."
            )
        if urlsplit(value.strip()).scheme not in ("http", "https"):
            raise BackendError(f"{BASE_URL_ENV} is not an http(s) URL.", f"For example: {OPENAI_BASE_URL}")
        return value.strip().rstrip("/")

    def _shown_base_url(self) -> str:
        try:
            return shown_url(self.base_url)
        except BackendError as error:
            return f"({error.message})"

    @property
    def is_official(self) -> bool:
        """True when talking to api.openai.com itself."""
        return (urlsplit(self._shown_base_url()).hostname or "") == "api.openai.com"

    def resolve_key(self) -> KeyChoice:
        """Find the API key (see the module docs for the order).

        Raises:
            BackendError: when no key is found, or a named variable or file is missing or empty.
        """
        if self.api_key_env:
            value = os.environ.get(self.api_key_env, "").strip()
            if not value:
                raise BackendError(
                    f"No API key: the variable {self.api_key_env} named by profile '{self.name}' is "
                    + ("empty." if self.api_key_env in os.environ else "not set."),
                    f"Set {self.api_key_env}, or remove api_key_env from the profile.",
                )
            return KeyChoice(_Secret(value), self.api_key_env)
        if self.api_key_file:
            from pathlib import Path

            path = Path(self.api_key_file).expanduser()
            from_file = _read_key_file(path)
            if not from_file:
                raise BackendError(
                    f"No API key: the key file {path} named by profile '{self.name}' is missing or empty.",
                    "Put the key in that file, or remove api_key_file from the profile.",
                )
            return KeyChoice(_Secret(from_file), f"key file {path}")
        env_value = os.environ.get(KEY_ENV)
        base_url = self.base_url
        official = (urlsplit(base_url).hostname or "") == "api.openai.com"
        # OPENAI_API_KEY goes to OpenAI, or to the server OPENAI_BASE_URL names (the two travel together);
        # never to another server a profile points at, which gets its own key by name.
        env_key_applies = official or self._configured_base_url is None
        if env_value and env_value.strip() and env_key_applies:
            return KeyChoice(_Secret(env_value.strip()), KEY_ENV)
        if official:
            stored = stored_key(STORED_KEY_NAME)  # the key store the host application installed, if any
            if stored is not None:
                return KeyChoice(_Secret(stored.value), stored.source)
        if is_local_url(base_url):
            return KeyChoice(_Secret(LOCAL_PLACEHOLDER_KEY), "placeholder", placeholder=True)
        if not env_key_applies:
            raise BackendError(
                f"No API key for {host_of(base_url)}: profile '{self.name}' names none, and quillmate sends "
                f"{KEY_ENV} only to OpenAI.",
                'Add api_key_env = "VARIABLE" (or api_key_file) to the profile, naming that server\'s key.',
            )
        if env_value is not None:
            raise BackendError(
                f"No OpenAI API key: {KEY_ENV} is set but empty.",
                f"Set {KEY_ENV} to your key, or run `quillmate keys set openai`.",
            )
        raise BackendError("No OpenAI API key: set OPENAI_API_KEY or run `quillmate keys set openai`.")

    def _key_description(self) -> str:
        try:
            return self.resolve_key().describe()
        except BackendError as error:
            return f"missing ({error.message})"

    def _client(self) -> Any:
        """The SDK client for the running event loop (made on first use)."""
        loop = asyncio.get_running_loop()
        if self._client_cache is not None and self._client_cache[0] is loop:
            return self._client_cache[1]
        base_url = self.base_url
        shown_url(base_url)  # registers any credential in the URL, so no log line shows it
        key = self.resolve_key()
        import openai

        http = _http_module(openai.DefaultAsyncHttpxClient)
        protect(key.secret.reveal())

        class _NoTimeoutRetries(openai.DefaultAsyncHttpxClient):
            """Reports a timeout as an SDK error, which the SDK passes on instead of retrying."""

            async def send(self, request: Any, **kwargs: Any) -> Any:
                try:
                    return await super().send(request, **kwargs)
                except http.TimeoutException as error:
                    raise openai.APITimeoutError(request=request) from error

        timeout = http.Timeout(self.timeout, connect=min(self.timeout, 10.0))
        client = openai.AsyncOpenAI(
            api_key=key.secret.reveal(),
            base_url=base_url,
            organization=self.organization,
            project=self.project,
            timeout=timeout,
            max_retries=self.max_retries,
            http_client=_NoTimeoutRetries(timeout=timeout),
        )
        if self._client_cache is not None:
            self._old_clients.append(self._client_cache[1])
        self._client_cache = (loop, client)
        return client

    def _translate(self, error: BaseException, *, during_stream: bool = False) -> BackendError | Any:
        try:
            source = self.resolve_key()
            described = "the profile's placeholder" if source.placeholder else source.source
        except BackendError:
            described = "your settings"
        return translate(
            error,
            model=self.model,
            base_url=self._shown_base_url(),
            key_source=described,
            timeout=self.timeout,
            retries=self.max_retries,
            during_stream=during_stream,
        )

    def _errors(self) -> tuple[type[BaseException], ...]:
        import openai

        return (openai.OpenAIError, *http_errors())

    # -- contract -----------------------------------------------------------------------

    @property
    def open_streams(self) -> int:
        """Responses currently open (0 once every stream has been closed)."""
        return self._open_streams

    @property
    def capabilities(self) -> Capabilities:
        chat = self.mode == "chat"
        context = self.context_window or self._discovered_context or _known_context(self.model)
        if context is None:
            context = CHAT_CONTEXT if chat else COMPLETION_CONTEXT
        extra = self._samplers()
        return Capabilities(
            chat=chat,
            completion=not chat,
            context_window=context,
            max_alternatives=MAX_ALTERNATIVES,
            seed=True,
            top_k="top_k" in extra,
            repetition_penalty="repetition_penalty" in extra,
            phrase_ban="cut",
            phrase_bias=self.tokenizer is not None,
            text_after=self.send_suffix and not chat,
        )

    def _samplers(self) -> tuple[str, ...]:
        """The extra samplers to send: those the profile declares, never to api.openai.com (it refuses them)."""
        return () if self.is_official else self.extra_samplers

    def _context_source(self) -> str:
        """Where the context window comes from: profile, server, known model, or assumed."""
        if self.context_window:
            return "profile"
        if self._discovered_context:
            return "server"
        return "known model" if _known_context(self.model) else "assumed"

    def info(self) -> BackendInfo:
        details = {
            "base_url": self._shown_base_url(),
            "mode": self.mode,
            "key": self._key_description(),
            "timeout": f"{self.timeout:g} s, {self.max_retries} retries",
        }
        if self._latency_ms is not None:
            details["latency"] = f"{self._latency_ms:.0f} ms (models endpoint)"
        return BackendInfo(
            self.name, self.kind, self.model, context_window=self.capabilities.context_window, details=details
        )

    async def load(self) -> None:
        """Check that the server answers and knows the model (``GET /models/{model}``).

        Raises:
            BackendError: key refused, model unknown, server unreachable or silent.
        """
        client = self._client()
        errors = self._errors()
        import openai

        started = time.perf_counter()
        try:
            found = await client.models.retrieve(self.model)
        except openai.NotFoundError as error:
            if getattr(error, "code", None) == "model_not_found":
                raise self._translate(error) from None  # the server says so itself
            found = await self._find_in_list(client)  # maybe the server has no GET /models/{id}
        except errors as error:
            raise self._translate(error) from None
        self._latency_ms = (time.perf_counter() - started) * 1000
        if not self._remember_context(found):
            await self._discover_context(client)

    async def _find_in_list(self, client: Any) -> Any:
        """Fallback for servers without ``GET /models/{id}``: look the model up in the list."""
        import openai

        try:
            page = await client.models.list()
        except (openai.NotFoundError, openai.BadRequestError):
            return None  # the server lists nothing: nothing more to check
        except self._errors() as error:
            raise self._translate(error) from None
        models = list(getattr(page, "data", []) or [])
        for item in models:
            if getattr(item, "id", None) == self.model:
                return item
        names = ", ".join(sorted(str(getattr(m, "id", "")) for m in models)[:8])
        raise ModelNotFound(
            f"The model '{self.model}' is not available at {self._shown_base_url()}.",
            f"Models there include: {names}." if names else "Check the model name in the profile.",
        )

    def _remember_context(self, model_info: Any) -> bool:
        """Keep the context window a model entry reports (``max_model_len`` from vLLM and ``quillmate serve``)."""
        extra = model_info if isinstance(model_info, dict) else (getattr(model_info, "model_extra", None) or {})
        for field_name in ("max_model_len", "context_window", "context_length"):
            if _is_window(extra.get(field_name)):
                self._discovered_context = extra[field_name]
                return True
        return False

    async def _discover_context(self, client: Any) -> None:
        """Once, for a completion model on a compatible server: ask it its context (failures are ignored).

        Also for a model name the table knows: a server may serve it with a shorter context
        (vLLM's ``--max-model-len``) or serve another model under that name.

        ``GET /models/{id}``, then ``GET /models`` (``max_model_len``: vLLM, ``quillmate serve``),
        then llama.cpp's ``GET /props`` (``default_generation_settings.n_ctx``, at the server's root).
        Chat models are assumed large; a server that finds a chat too long says so, and that is
        reported as such.
        """
        if self._discovered or self.context_window or self.mode != "completion":
            return
        self._discovered = True
        if self.is_official:
            return
        import openai

        quick = client.with_options(max_retries=0, timeout=min(self.timeout, 5.0))
        try:
            if self._remember_context(await quick.models.retrieve(self.model)):
                return
        except (openai.AuthenticationError, openai.PermissionDeniedError, openai.RateLimitError):
            return  # the request itself will say so; no use knocking three times
        except Exception:
            pass  # no such route (vLLM, llama.cpp): try the next
        with contextlib.suppress(Exception):
            listed = list(getattr(await quick.models.list(), "data", None) or [])
            mine = [m for m in listed if getattr(m, "id", None) == self.model] or (listed if len(listed) == 1 else [])
            if mine and self._remember_context(mine[0]):
                return
        with contextlib.suppress(Exception):
            root = self.base_url.removesuffix("/v1")
            props = await quick.get(f"{root}/props", cast_to=object)
            settings = props.get("default_generation_settings") or {}
            n_ctx = settings.get("n_ctx", props.get("n_ctx"))
            if _is_window(n_ctx):
                self._discovered_context = n_ctx

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        clients = self._old_clients + ([self._client_cache[1]] if self._client_cache else [])
        self._client_cache, self._old_clients = None, []
        for client in clients:
            with contextlib.suppress(Exception):
                await client.close()

    def _head_tokens(self, text: str, count: int) -> str:
        """The start of ``text`` in about ``count`` tokens at most, ending at a whole word."""
        if self.count_tokens(text) <= count:
            return text
        head = text[: max(count, 0) * 4]
        while head and self.count_tokens(head) > count:
            head = head[: len(head) - max(1, len(head) // 20)]
        return end_at_word(head)

    def _tail_tokens(self, text: str, count: int) -> str:
        if count <= 0:
            return ""
        size = min(len(text), count * 4)
        tail = text[-size:] if size else ""
        while tail and self.count_tokens(tail) > count:
            tail = tail[max(1, len(tail) // 20) :]
        return tail

    # -- generating ---------------------------------------------------------------------

    def _can_reask(self) -> bool:
        """Whether a banned phrase can be stopped at and the text asked for again from before it."""
        return self.mode == "completion" or self.continue_final_message

    async def _token_bias(self, params: GenerationParams) -> TokenBias | None:
        """The ``logit_bias`` for the request's bias and bans; None without a tokenizer or either setting.

        Raises:
            ConfigError: when the profile's tokenizer cannot be loaded.
        """
        if self.tokenizer is None or not (params.bias or params.ban):
            return None
        if self._tokenizer is None:
            self._tokenizer = await asyncio.to_thread(load_tokenizer, self.tokenizer, self.name)
        return token_bias(self._tokenizer, params.bias, params.ban)

    def _steering_notices(self, params: GenerationParams, steer: TokenBias | None) -> list[Notice]:
        """What of ``bias`` could not be sent (``steer`` None: no tokenizer)."""
        if not params.bias:
            return []
        if steer is None:
            return [
                Notice(
                    "unsupported",
                    f"{self.name} cannot honour bias without knowing the model's tokenizer; it was not applied. "
                    f"Set tokenizer = \"NAME\" (the model's Hugging Face name or folder) in profile '{self.name}' "
                    "to send one-token phrases as logit_bias.",
                )
            ]
        if not steer.unsent_bias:
            return []
        named = ", ".join(f"'{phrase}'" for phrase in steer.unsent_bias)
        several = len(steer.unsent_bias) > 1
        return [
            Notice(
                "unsupported",
                f"Phrase bias for {named} was not applied: {'they are' if several else 'it is'} more than one "
                f"token, and {self.name} takes a bias for single tokens only (logit_bias).",
            )
        ]

    def _adjust(
        self, params: GenerationParams, context: int, steer: TokenBias | None = None
    ) -> tuple[GenerationParams, list[Notice]]:
        generic = f"{self.name} cannot honour bias; it was not applied."  # said better below
        notices = [n for n in self.unsupported_notices(params) if n.message != generic]
        notices.extend(self._steering_notices(params, steer))
        if steer is not None and params.ban and not steer.unsent_bans:
            # Every ban went to the server as logit_bias; the text watch stays, silently, for other spellings.
            notices = [n for n in notices if "cannot keep banned phrases" not in n.message]
        elif params.ban:
            cut = next((n for n in notices if "cannot keep banned phrases" in n.message), None)
            if cut is not None and self._can_reask():
                notices[notices.index(cut)] = Notice(
                    "info",
                    f"{self.name} cannot keep banned phrases from being written; quillmate stops at one and asks "
                    f"again from just before it (up to {MAX_BAN_REASKS} times), then ends the text there.",
                )
            elif cut is not None:
                notices.append(
                    Notice(
                        "unsupported",
                        f"{self.name} is a chat model and quillmate does not know that the server continues a "
                        "message it began, so it cannot ask again from before a banned phrase: set "
                        f"continue_final_message = true in profile '{self.name}' if it does (vLLM).",
                    )
                )
        changes: dict[str, Any] = {}
        if params.num_alternatives > MAX_ALTERNATIVES:
            changes["num_alternatives"] = MAX_ALTERNATIVES
        if params.temperature > MAX_TEMPERATURE:
            changes["temperature"] = MAX_TEMPERATURE
            notices.append(
                Notice(
                    "adjusted",
                    f"temperature lowered from {params.temperature:g} to {MAX_TEMPERATURE:g}, "
                    f"the most {self.name} takes.",
                )
            )
        limit = max(16, context - 64)
        if params.max_new_tokens > limit:
            changes["max_new_tokens"] = limit
            notices.append(
                Notice(
                    "adjusted",
                    f"max tokens lowered from {params.max_new_tokens} to {limit} to fit the model's "
                    f"{context}-token context.",
                )
            )
        if len(params.stop) > MAX_STOP:
            notices.append(
                Notice(
                    "info",
                    f"{self.name} takes at most {MAX_STOP} stop sequences; the other {len(params.stop) - MAX_STOP} "
                    "are applied by quillmate as the text arrives.",
                )
            )
        return (params.with_overrides(**changes) if changes else params), notices

    def _nothing_written(self, prompt_tokens: int, max_tokens: int, context: int) -> str:
        """Why a stream may have ended without a word: most often a prompt the server's context cannot hold."""
        where = host_of(self._shown_base_url())
        if prompt_tokens + max_tokens > context:
            return (
                f"The prompt (about {prompt_tokens:,} tokens) and max tokens ({max_tokens:,}) are more than the "
                f"model's {context:,}-token context, and the server at {where} wrote nothing: shorten the text or "
                "lower max tokens."
            )
        known = "" if self._context_source() in ("server", "profile") else f" (quillmate assumed {context:,} tokens)"
        return (
            f"The server at {where} ended the answer without writing anything. Most often the prompt (about "
            f"{prompt_tokens:,} tokens) plus max tokens ({max_tokens:,}) is longer than its context{known}: "
            f"set context_window in profile '{self.name}', shorten the text or lower max tokens."
        )

    def _fit_chat(
        self, messages: Sequence[ChatMessage], budget: int
    ) -> tuple[list[dict[str, str]], Notice | None, int]:
        parts: list[TextPart] = []
        owners: list[int] = []
        for index, message in enumerate(messages):
            for part in message.content:
                parts.append(part)
                owners.append(index)
        fitted = fit_parts(parts, budget - MESSAGE_OVERHEAD * len(messages) - 3, self.count_tokens, self._tail_tokens)
        texts = [""] * len(messages)
        for owner, part in zip(owners, fitted.parts, strict=True):
            texts[owner] += part.text
        wire = [{"role": m.role, "content": texts[i]} for i, m in enumerate(messages)]
        tokens = sum(self.count_tokens(t) + MESSAGE_OVERHEAD for t in texts) + 3
        return wire, fitted.notice(), tokens

    def _body(
        self, request: GenerationRequest, params: GenerationParams, context: int, *, continuing: bool = False
    ) -> tuple[dict[str, Any], list[Notice], int]:
        """The SDK call's arguments, the notices about the prompt, and its approximate size."""
        notices: list[Notice] = []
        budget = context - params.max_new_tokens
        body: dict[str, Any] = {"model": self.model}
        if self.mode == "chat":
            if request.messages is not None:
                messages: Sequence[ChatMessage] = request.messages
            else:
                messages = (
                    ChatMessage.of("system", CONTINUE_INSTRUCTION),
                    ChatMessage("user", request.prompt or ()),
                )
                notices.append(
                    Notice("info", f"{self.name} is a chat model; the text was sent with a request to continue it.")
                )
            wire, fitted_notice, prompt_tokens = self._fit_chat(messages, budget)
            body["messages"] = wire
            tokens_field = "max_completion_tokens" if self.is_official else "max_tokens"
        else:
            if request.messages is not None:
                from backends.gpt2 import transcript_prompt

                parts: Sequence[TextPart] = transcript_prompt(request.messages)
                notices.append(Notice("info", f"{self.name} is a completion model; the chat was sent as a transcript."))
            else:
                parts = request.prompt or ()
            suffix_tokens = 0
            if request.has_text_after and self.send_suffix and request.messages is None:
                body["suffix"] = self._head_tokens(request.suffix, suffix_room(budget))
                suffix_tokens = self.count_tokens(body["suffix"])
            fitted = fit_parts(parts, budget - suffix_tokens, self.count_tokens, self._tail_tokens)
            fitted_notice = fitted.notice()
            body["prompt"] = join_parts(fitted.parts)
            prompt_tokens = self.count_tokens(body["prompt"]) + suffix_tokens
            tokens_field = "max_tokens"
        if request.has_text_after and "suffix" not in body:
            notices.append(cannot_see_after())
        if fitted_notice:
            notices.append(fitted_notice)
        body[tokens_field] = params.max_new_tokens
        body["temperature"] = params.temperature
        if params.top_p != 1.0:
            body["top_p"] = params.top_p
        if params.num_alternatives > 1:
            body["n"] = params.num_alternatives
        if params.stop:
            body["stop"] = list(params.stop[:MAX_STOP])
        if params.seed is not None:
            body["seed"] = params.seed
        body.update(openai_request_fields(params, chat=self.mode == "chat"))
        if self.presence_penalty is not None:
            body["presence_penalty"] = self.presence_penalty
        if self.frequency_penalty is not None:
            body["frequency_penalty"] = self.frequency_penalty
        samplers = self._samplers()
        extra_body: dict[str, Any] = {}
        if "top_k" in samplers and params.top_k:
            extra_body["top_k"] = params.top_k
        if "repetition_penalty" in samplers and params.repetition_penalty != 1.0:
            extra_body["repetition_penalty"] = params.repetition_penalty
        if "min_p" in samplers and self.min_p is not None:
            extra_body["min_p"] = self.min_p
        if continuing and self.mode == "chat":  # the last message is the assistant's text so far: go on with it
            extra_body.update(continue_final_message=True, add_generation_prompt=False)
        if extra_body:
            body["extra_body"] = extra_body  # fields beyond OpenAI's API, sent as they are
        return body, notices, prompt_tokens

    async def _open(self, client: Any, body: dict[str, Any]) -> Any:
        import openai

        endpoint = client.chat.completions if self.mode == "chat" else client.completions
        while True:
            extra = {"stream_options": {"include_usage": True}} if self._usage_option else {}
            try:
                return await endpoint.create(stream=True, **body, **extra)
            except openai.BadRequestError as error:
                if self._usage_option and "stream_options" in str(error):
                    self._usage_option = False  # an older server: count the pieces instead
                    continue
                raise self._translate(error) from None
            except self._errors() as error:
                raise self._translate(error) from None

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamEvent]:
        params = request.params.validated()
        if not params.ban or not self._can_reask():
            async with contextlib.aclosing(self._stream_once(request)) as events:  # closed with this one
                async for event in events:
                    yield event
            return
        cuts: list[bool] = []
        first: GenerationResult | None = None
        async with contextlib.aclosing(self._stream_once(request, cuts)) as events:
            async for event in events:
                if isinstance(event, GenerationResult):
                    first = event
                else:
                    yield event
        if first is None:  # pragma: no cover - _stream_once always ends with a result
            return
        rows = len(first.texts)
        texts = list(first.texts)
        reasons = list(first.finish_reasons)
        notices = list(first.notices)
        logprobs = [list(row) for row in first.logprobs]
        each = list(first.usage.completion_tokens_each or _share(first.usage.completion_tokens, [1] * rows))
        prompt_tokens = first.usage.prompt_tokens
        error = first.error
        cuts += [False] * (rows - len(cuts))
        for index in range(rows):
            asked = 0
            while cuts[index] and error is None and asked < MAX_BAN_REASKS:
                remaining = params.max_new_tokens - self.count_tokens(texts[index])
                if remaining < 1:
                    cuts[index], reasons[index] = False, "length"
                    break
                asked += 1
                seed = None if params.seed is None else params.seed + asked * rows + index  # not the same text again
                rest = params.with_overrides(num_alternatives=1, max_new_tokens=remaining, seed=seed)
                again = self._continuation(request, texts[index], rest)
                more: list[bool] = []
                fresh = texts[index][-1:].isspace()  # the kept text ends in a space: the server's own one goes
                try:
                    async with contextlib.aclosing(self._stream_once(again, more, before=texts[index])) as events:
                        async for event in events:
                            if isinstance(event, Delta):
                                piece = event.text.lstrip() if fresh else event.text
                                fresh = fresh and not piece
                                if piece:
                                    texts[index] += piece
                                    yield Delta(index, piece)
                            elif isinstance(event, Notice):
                                if event not in notices:
                                    notices.append(event)
                                    yield event
                            else:
                                reasons[index] = event.finish_reasons[0]
                                prompt_tokens += event.usage.prompt_tokens
                                each[index] += event.usage.completion_tokens
                                if params.logprobs and event.logprobs:
                                    logprobs[index].extend(event.logprobs[0])
                                error = event.error
                except BackendError as failure:
                    error = f"Asking again from before a banned phrase failed: {failure.message}"
                    break
                cuts[index] = bool(more and more[0])
            if asked:
                notice = Notice(
                    "info",
                    f"{self._which(index, rows)} came to a banned phrase; quillmate asked {self.name} again from just "
                    f"before it ({asked} time{'s' if asked > 1 else ''}).",
                )
                notices.append(notice)
                yield notice
            if cuts[index] and error is None:
                notice = Notice(
                    "unsupported",
                    f"{self._which(index, rows)} still came to a banned phrase after {asked} new "
                    f"request{'s' if asked != 1 else ''}; it ends just before it.",
                )
                notices.append(notice)
                yield notice
        yield replace(
            first,
            texts=tuple(texts),
            finish_reasons=tuple(reasons),
            usage=Usage(prompt_tokens, sum(each), tuple(each)),
            notices=tuple(notices),
            error=redact(error) if error else None,
            logprobs=tuple(fit_to_text(row, text) for row, text in zip(logprobs, texts, strict=True))
            if params.logprobs
            else first.logprobs,
        )

    @staticmethod
    def _which(index: int, rows: int) -> str:
        return "The text" if rows == 1 else f"Alternative {index + 1}"

    def _continuation(self, request: GenerationRequest, kept: str, params: GenerationParams) -> GenerationRequest:
        """The request that goes on from ``kept``, the text written so far (never cut to fit)."""
        if self.mode == "chat":
            messages: Sequence[ChatMessage] = request.messages or (
                ChatMessage.of("system", CONTINUE_INSTRUCTION),
                ChatMessage("user", request.prompt or ()),
            )
            return GenerationRequest.chat([*messages, ChatMessage.of("assistant", kept)], params)
        if request.messages is not None:
            from backends.gpt2 import transcript_prompt

            parts: Sequence[TextPart] = transcript_prompt(request.messages)
        else:
            parts = request.prompt or ()
        return GenerationRequest.completion([*parts, TextPart(kept)], params, suffix=request.suffix)

    async def _stream_once(
        self, request: GenerationRequest, cuts: list[bool] | None = None, *, before: str | None = None
    ) -> AsyncGenerator[StreamEvent, None]:
        """One request's stream; ``cuts`` is filled with whether each alternative stopped at a banned phrase.

        ``before`` is the text already shown when this request goes on from it (after a banned phrase).
        """
        continuing = before is not None
        params = request.params.validated()
        client = self._client()
        await self._discover_context(client)
        context = self.capabilities.context_window
        steer = await self._token_bias(params)
        params, notices = self._adjust(params, context, steer)
        body, prompt_notices, approx_prompt_tokens = self._body(request, params, context, continuing=continuing)
        if steer is not None and steer.logit_bias:
            body["logit_bias"] = steer.logit_bias
        notices.extend(prompt_notices)
        shortened = params.max_new_tokens < request.params.max_new_tokens
        if self._context_source() == "assumed" and (shortened or any(n.kind == "truncated" for n in prompt_notices)):
            notices.append(
                Notice(
                    "info",
                    f"The server did not say how long a context its model has, so quillmate assumed {context:,} "
                    f"tokens; if it takes more, set context_window in profile '{self.name}'.",
                )
            )
        for notice in notices:
            yield notice

        rows = params.num_alternatives
        extra_stops = params.stop[MAX_STOP:]
        limited = bool(extra_stops) or params.max_lines is not None or bool(params.ban)
        filters: list[Any] | None = None
        if limited:
            filters = [StopFilter(extra_stops, params.max_lines) for _ in range(rows)]
            if params.ban:  # the server never sees the ban: end the text before a banned phrase here
                filters = [BannedPhraseCut(params.ban, then, before or "") for then in filters]
        texts = [""] * rows
        alternatives: list[list[TokenAlternatives]] = [[] for _ in range(rows)]
        reasons: list[FinishReason | None] = [None] * rows
        pieces = 0
        pieces_each = [0] * rows
        usage: Usage | None = None
        model_name = self.model
        error_message: str | None = None
        first_at: float | None = None
        last_at: float | None = None
        started = time.perf_counter()
        errors = self._errors()
        chat = self.mode == "chat"

        sdk_stream = await self._open(client, body)
        self._open_streams += 1
        try:
            async for chunk in sdk_stream:
                model_name = getattr(chunk, "model", None) or model_name
                extra = getattr(chunk, "model_extra", None) or {}
                for item in extra.get(NOTICES_FIELD) or ():
                    sent = _notice_from(item)
                    if sent is not None:
                        notices.append(sent)
                        yield sent
                if getattr(chunk, "usage", None) is not None:
                    usage = Usage(int(chunk.usage.prompt_tokens or 0), int(chunk.usage.completion_tokens or 0))
                for choice in chunk.choices or ():
                    index = choice.index
                    if not 0 <= index < rows or reasons[index] is not None:
                        continue
                    if params.logprobs:
                        alternatives[index].extend(from_openai(getattr(choice, "logprobs", None), chat=chat))
                    piece = _scrub((choice.delta.content if chat else choice.text) or "")
                    if piece:
                        pieces += 1
                        pieces_each[index] += 1
                        if filters is not None:
                            piece = filters[index].feed(piece)
                            if filters[index].stopped:
                                reasons[index] = "stop"
                        if piece:
                            texts[index] += piece
                            now = time.perf_counter()
                            first_at = first_at or now
                            last_at = now
                            yield Delta(index, piece)
                    if choice.finish_reason and reasons[index] is None:
                        if filters is not None:
                            rest = filters[index].flush()
                            if rest:
                                texts[index] += rest
                                yield Delta(index, rest)
                        reason, ending = _finish(choice.finish_reason, index, rows)
                        reasons[index] = reason
                        if ending is not None:
                            notices.append(ending)
                            yield ending
                if filters is not None and all(r is not None for r in reasons):
                    break  # every alternative met a stop sequence or line limit applied here
        except errors as error:
            translated = self._translate(error, during_stream=first_at is not None)
            if first_at is None:
                raise translated from None
            error_message = translated.message
        finally:
            with contextlib.suppress(Exception):
                await _close_quietly(sdk_stream)
            self._open_streams -= 1

        missing = [i for i in range(rows) if reasons[i] is None and not texts[i]] if error_message is None else []
        if missing and len(missing) < rows and all(reasons[i] is not None or i in missing for i in range(rows)):
            # Every alternative the server wrote is finished, the others never came: it ignores n
            # (llama.cpp does). Ask again for those; that stream asks again in turn if it must.
            notice = Notice(
                "info",
                f"The server at {host_of(self._shown_base_url())} writes fewer alternatives per request than "
                "asked for (it ignores n), so quillmate asked it again for the others.",
            )
            notices.append(notice)
            yield notice
            usage = usage or Usage(approx_prompt_tokens, pieces)
            seed = None if params.seed is None else params.seed + rows - len(missing)  # not the same text again
            again = replace(request, params=params.with_overrides(num_alternatives=len(missing), seed=seed))
            try:
                async for event in self.stream(again):
                    if isinstance(event, Delta):
                        target = missing[event.index]
                        texts[target] += event.text
                        pieces += 1
                        pieces_each[target] += 1
                        yield Delta(target, event.text)
                    elif isinstance(event, Notice):
                        if event not in notices:
                            notices.append(event)
                            yield event
                    else:
                        for target, reason in zip(missing, event.finish_reasons, strict=False):
                            reasons[target] = reason if reason in ("stop", "length") else None
                        for target, more in zip(missing, event.logprobs, strict=False):
                            alternatives[target] = list(more)
                        usage = Usage(
                            usage.prompt_tokens + event.usage.prompt_tokens,
                            usage.completion_tokens + event.usage.completion_tokens,
                        )
                        error_message = event.error
            except BackendError as error:
                error_message = f"Asking again for the other alternatives failed: {error.message}"
        elif missing and len(missing) == rows:
            error_message = self._nothing_written(approx_prompt_tokens, params.max_new_tokens, context)
        if error_message is None and any(r is None for r in reasons):
            error_message = "The stream ended before the server said it was finished; the text may be cut short."
        final: tuple[FinishReason, ...] = tuple(r or ("error" if error_message else "stop") for r in reasons)
        if usage is None:
            usage = Usage(approx_prompt_tokens, pieces)
        usage = replace(usage, completion_tokens_each=_share(usage.completion_tokens, pieces_each))
        logprobs: tuple[tuple[TokenAlternatives, ...], ...] = ()
        if params.logprobs:
            logprobs = tuple(fit_to_text(alternatives[i], texts[i]) for i in range(rows))
            if any(texts) and not any(logprobs):
                none_given = no_alternatives_notice(f"The server at {host_of(self._shown_base_url())}")
                if none_given not in notices:
                    notices.append(none_given)
                    yield none_given
        if cuts is not None:
            cuts[:] = [isinstance(f, BannedPhraseCut) and f.cut for f in filters or ()] or [False] * rows
        elif steer is not None and params.ban and not steer.unsent_bans:  # no notice said it might be cut
            for index, cut in enumerate(filters or ()):
                if isinstance(cut, BannedPhraseCut) and cut.cut:
                    notice = Notice(
                        "unsupported",
                        f"{self._which(index, rows)} came to a banned phrase in a spelling logit_bias does not "
                        "reach; it ends just before it.",
                    )
                    notices.append(notice)
                    yield notice
        elapsed = time.perf_counter() - started
        span = (last_at - first_at) if first_at and last_at and last_at > first_at else elapsed
        yield GenerationResult(
            texts=tuple(texts),
            finish_reasons=final,
            usage=usage,
            time_to_first_token=(first_at - started) if first_at else None,
            tokens_per_second=(usage.completion_tokens / span) if span > 0 and usage.completion_tokens else None,
            notices=tuple(notices),
            model=model_name,
            error=redact(error_message) if error_message else None,
            logprobs=logprobs,
        )


def _http_module(client_class: type) -> Any:
    """The HTTP library the SDK is built on: ``httpx2`` (openai 3.x) or ``httpx`` (older SDKs)."""
    import importlib

    for base in client_class.__mro__:
        root = base.__module__.split(".")[0]
        if root in ("httpx2", "httpx"):
            return importlib.import_module(root)
    import httpx2

    return httpx2


async def _close_quietly(sdk_stream: Any) -> None:
    """Close the SDK stream (and so the HTTP response), even while being cancelled."""
    import anyio

    with anyio.move_on_after(1.0, shield=True):
        await sdk_stream.close()


def _finish(reason: str, index: int, rows: int) -> tuple[FinishReason, Notice | None]:
    if reason == "length":
        return "length", None
    if reason == "content_filter":
        which = "The text" if rows == 1 else f"Alternative {index + 1}"
        return "stop", Notice("info", f"{which} was ended early by the service's content filter.")
    return "stop", None


def _notice_from(item: Any) -> Notice | None:
    if not isinstance(item, dict) or not isinstance(item.get("message"), str):
        return None
    kind = item.get("kind")
    known: tuple[NoticeKind, ...] = ("truncated", "unsupported", "adjusted", "model", "info")
    return Notice(next((k for k in known if k == kind), "info"), item["message"][:500])


def _read_key_file(path: Any) -> str | None:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return value or None


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _scrub(text: str) -> str:
    """Text a server sent, with lone surrogates (from a broken ``\\ud83d`` escape) made U+FFFD.

    JSON allows them but no text file or terminal can hold them; writing one would crash.
    """
    return _LONE_SURROGATE.sub("\ufffd", text) if text else text


def _share(total: int, pieces_each: list[int]) -> tuple[int, ...]:
    """Each alternative's part of ``total``: the server reports only the sum, so it is shared
    out by the number of pieces each alternative streamed (about one token each)."""
    if len(pieces_each) == 1:
        return (total,)
    counted = sum(pieces_each)
    if not counted:
        return tuple(0 for _ in pieces_each)
    shares = [total * n // counted for n in pieces_each]
    for i in sorted(range(len(shares)), key=lambda i: -pieces_each[i])[: total - sum(shares)]:
        shares[i] += 1
    return tuple(shares)
