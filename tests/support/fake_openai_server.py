"""A tiny misbehaving OpenAI-compatible server on 127.0.0.1, for the OpenAI backend's error paths.

It speaks just enough HTTP/1.1 (asyncio streams, one request per connection) to be
fully in control of the bytes: the base URL picks a behaviour,
``http://127.0.0.1:PORT/<scenario>/v1``:

ok            streams three pieces of text, a finish reason and usage
401 403 404   refuse (the 401 body echoes the key, as a careless server might)
429           always rate-limited;   429then200: once, then ok
500           always fails
hang          accepts the request and never answers
cut           sends two pieces, then drops the connection mid-body
sse_error     sends two pieces, then an SSE error event
stall         sends two pieces, then goes quiet (the connection stays open)
no_usage      like ok but rejects ``stream_options`` with a 400 (an older server)
ignores_n     like ok but always writes one alternative, whatever ``n`` asks (as llama.cpp does)
llamacpp      llama.cpp's ways: ``GET /props`` tells n_ctx (2048), no ``GET /v1/models/{id}``, and a
              prompt longer than n_ctx is a 400 ``exceed_context_size_error``
llamacpp_old  like llamacpp, but an over-long prompt gets a 200 stream holding only an
              ``error:`` line, which SSE clients ignore (older llama.cpp servers)
lone_surrogate like ok, but the second piece holds a lone surrogate (a broken ``\\ud83d`` escape)
scripted      streams the next of ``FakeOpenAI.replies`` whole (the last one again once they run out)
logprobs      like ok, but gives each piece's logprobs when asked (each piece is one token)
ban_once      writes the banned phrase " and the" on its first text request, clean text on every later one
ban_always    writes the banned phrase " and the" on every text request
vllm          vLLM's ways: ``max_model_len`` (3072) in ``GET /v1/models``, no ``GET /v1/models/{id}``,
              and its wording for an over-long prompt (a 400)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

PIECES = ("Hello", " there", " friend")
BAN_PIECES = {"ban_once": ("Once", " upon", " and the", " rest"), "ban_always": (" and the", " rest")}
CLEAN_PIECES = ("a", " time", " quietly")
CONTEXT = {"llamacpp": 2048, "llamacpp_old": 2048, "vllm": 3072}


def approx_tokens(body: Any) -> int:
    """The prompt's size as these fakes count it (4 characters a token) plus the tokens asked for."""
    body = body if isinstance(body, dict) else {}
    prompt = body.get("prompt") or "".join(str(m.get("content", "")) for m in body.get("messages") or [])
    return len(str(prompt)) // 4 + int(body.get("max_tokens") or 16)


@dataclass
class Seen:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeOpenAI:
    """Run with ``with FakeOpenAI() as fake: fake.url("ok")``."""

    host: str = "127.0.0.1"
    port: int = 0
    requests: list[Seen] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    replies: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-openai", daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def url(self, scenario: str) -> str:
        return f"http://{self.host}:{self.port}/{scenario}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fake OpenAI server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._shutdown)
        self._thread.join(5)

    def _shutdown(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        if self._server is not None:
            self._server.close()
        self._loop.stop()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, self.host, self.port))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        pending = [task for task in asyncio.all_tasks(self._loop) if not task.done()]
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        if self._server is not None:
            self._loop.run_until_complete(self._server.wait_closed())
        self._loop.close()

    # -- HTTP ------------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0") or 0)
            raw = await reader.readexactly(length) if length else b""
            body = json.loads(raw) if raw else None
            self.requests.append(Seen(method, path, headers, body))
            scenario, _, rest = path.lstrip("/").partition("/")
            self.counts[scenario] += 1
            await self._respond(scenario, rest, method, body, headers, reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    @staticmethod
    async def _json(
        writer: asyncio.StreamWriter, status: int, payload: Any, extra: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}.get(
            status, "Error"
        )
        head = [f"HTTP/1.1 {status} {reason}", "content-type: application/json", f"content-length: {len(data)}"]
        head += [f"{k}: {v}" for k, v in (extra or {}).items()]
        head.append("connection: close")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
        await writer.drain()

    @staticmethod
    def _error(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}

    async def _respond(
        self,
        scenario: str,
        rest: str,
        method: str,
        body: Any,
        headers: dict[str, str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        fast_retry = {"retry-after-ms": "20"}
        if scenario == "hang":
            await reader.read()  # until the client gives up
            return
        if scenario == "401":
            key = headers.get("authorization", "").removeprefix("Bearer ")
            await self._json(
                writer,
                401,
                self._error(f"Incorrect API key provided: {key}.", "invalid_request_error", "invalid_api_key"),
            )
            return
        if scenario == "403":
            await self._json(
                writer,
                403,
                self._error("Project does not have access to model", "invalid_request_error", "model_not_found"),
            )
            return
        if scenario == "404":
            await self._json(
                writer, 404, self._error("The model does not exist", "invalid_request_error", "model_not_found")
            )
            return
        if scenario == "429" or (scenario == "429then200" and self.counts[scenario] == 1):
            await self._json(
                writer, 429, self._error("Rate limit reached", "requests", "rate_limit_exceeded"), fast_retry
            )
            return
        if scenario == "500":
            await self._json(writer, 500, self._error("The server had an error", "server_error"), fast_retry)
            return
        if scenario in CONTEXT and (rest == "props" or rest.startswith("v1/models")):
            await self._compatible_server_info(scenario, rest, writer)
            return
        if scenario in ("llamacpp", "vllm") and approx_tokens(body) > CONTEXT[scenario]:
            if scenario == "vllm":
                message = (
                    f"This model's maximum context length is {CONTEXT[scenario]} tokens. However, you requested "
                    f"{approx_tokens(body)} tokens. Please reduce the length of the messages or completion."
                )
                await self._json(
                    writer,
                    400,
                    {"object": "error", "message": message, "type": "BadRequestError", "param": None, "code": 400},
                )
            else:
                error = {
                    "code": 400,
                    "message": "the request exceeds the available context size, try increasing it",
                    "type": "exceed_context_size_error",
                    "n_prompt_tokens": approx_tokens(body),
                    "n_ctx": 2048,
                }
                await self._json(writer, 400, {"error": error})
            return
        if rest.startswith("v1/models"):
            model = rest.removeprefix("v1/models").strip("/") or "fake-model"
            await self._json(writer, 200, {"id": model, "object": "model", "created": 0, "owned_by": "fake"})
            return
        if scenario == "no_usage" and isinstance(body, dict) and "stream_options" in body:
            await self._json(
                writer,
                400,
                self._error("Unrecognized request argument supplied: stream_options", "invalid_request_error"),
            )
            return
        await self._stream(scenario, rest, body, writer)

    async def _compatible_server_info(self, scenario: str, rest: str, writer: asyncio.StreamWriter) -> None:
        """llama.cpp's ``/props`` and the model lists of llama.cpp and vLLM (neither has ``/v1/models/{id}``)."""
        if rest == "props" and scenario.startswith("llamacpp"):
            settings = {"n_ctx": CONTEXT[scenario], "params": {"top_k": 40, "min_p": 0.05}}
            await self._json(writer, 200, {"default_generation_settings": settings, "total_slots": 1})
        elif rest == "v1/models" and scenario.startswith("llamacpp"):
            entry = {
                "id": "model.gguf",
                "object": "model",
                "created": 0,
                "owned_by": "llamacpp",
                "meta": {"n_ctx_train": 8192},
            }
            await self._json(writer, 200, {"object": "list", "data": [entry]})
        elif rest == "v1/models":
            entry = {
                "id": "gpt-test",
                "object": "model",
                "created": 0,
                "owned_by": "vllm",
                "max_model_len": CONTEXT[scenario],
            }
            await self._json(writer, 200, {"object": "list", "data": [entry]})
        else:
            await self._json(writer, 404, {"detail": "Not Found"})

    async def _stream(self, scenario: str, rest: str, body: Any, writer: asyncio.StreamWriter) -> None:
        chat = rest.startswith("v1/chat")
        model = (body or {}).get("model", "fake-model")
        n = 1 if scenario == "ignores_n" else int((body or {}).get("n") or 1)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
            b"connection: close\r\n\r\n"
        )
        if scenario == "llamacpp_old" and approx_tokens(body) > CONTEXT[scenario]:
            line = b'error: {"code": 400, "message": "the request exceeds the available context size"}\n\n'
            writer.write(f"{len(line):x}\r\n".encode() + line + b"\r\n0\r\n\r\n")
            await writer.drain()
            return

        async def send(payload: Any) -> None:
            data = payload if isinstance(payload, str) else json.dumps(payload)
            event = f"data: {data}\n\n".encode()
            writer.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
            await writer.drain()

        def chunk(index: int, text: str | None, finish: str | None = None) -> dict[str, Any]:
            if chat:
                delta = {"content": text} if text is not None else {}
                choice = {"index": index, "delta": delta, "finish_reason": finish}
                kind = "chat.completion.chunk"
            else:
                choice = {"index": index, "text": text or "", "finish_reason": finish}
                kind = "text_completion"
            if scenario == "logprobs" and text and (body or {}).get("logprobs"):
                choice["logprobs"] = logprobs_of(text)
            return {"id": "fake-1", "object": kind, "created": int(time.time()), "model": model, "choices": [choice]}

        def logprobs_of(piece: str) -> dict[str, Any]:
            """OpenAI's logprobs for one piece as one token: the piece at -0.25, then two others."""
            top = [(piece, -0.25), (" else", -1.75), (" more", -2.5)]
            if chat:
                shown = top[: int(body.get("top_logprobs") or 0)]
                alternatives = [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in shown]
                entry = {"token": piece, "logprob": -0.25, "bytes": list(piece.encode()), "top_logprobs": alternatives}
                return {"content": [entry]}
            shown = top[: int(body.get("logprobs") or 0)]
            return {"tokens": [piece], "token_logprobs": [-0.25], "top_logprobs": [dict(shown)], "text_offset": [0]}

        pieces = PIECES
        if scenario in BAN_PIECES:
            self.counts[f"{scenario}:text"] += isinstance(body, dict)  # requests for text, not GET /props
            again = scenario == "ban_once" and self.counts[f"{scenario}:text"] > 1
            pieces = CLEAN_PIECES if again else BAN_PIECES[scenario]
        if scenario == "scripted" and self.replies:
            pieces = (self.replies.pop(0) if len(self.replies) > 1 else self.replies[0],)
        for position, piece in enumerate(pieces):
            if position == 2 and scenario in ("cut", "sse_error", "stall"):
                break
            if scenario == "lone_surrogate" and position == 1:
                piece = " fr\ud83d"
            for index in range(n):
                await send(chunk(index, piece))
            await asyncio.sleep(0.01)
        if scenario == "cut":
            writer.transport.abort()  # no terminating chunk: the body is cut short
            return
        if scenario == "sse_error":
            await send(self._error("The model crashed while writing", "server_error"))
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return
        if scenario == "stall":
            await asyncio.sleep(3600)
            return
        for index in range(n):
            await send(chunk(index, None, "stop"))
        if isinstance(body, dict) and (body.get("stream_options") or {}).get("include_usage"):
            usage = {"id": "fake-1", "object": "chat.completion.chunk", "created": 0, "model": model, "choices": []}
            usage["usage"] = {"prompt_tokens": 7, "completion_tokens": 3 * n, "total_tokens": 7 + 3 * n}
            await send(usage)
        await send("[DONE]")
        writer.write(b"0\r\n\r\n")
        await writer.drain()
