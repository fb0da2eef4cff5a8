"""A small JSON-RPC client that drives ``quillmate lsp`` as a subprocess over stdio.

It speaks the wire format exactly as an editor plugin sees it (plain JSON objects), records
every notification, and answers the server's ``workspace/applyEdit`` requests (recording
them) the way an editor would.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


class RpcError(Exception):
    """The server answered a request with a JSON-RPC error."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message", ""))
        self.code: int = error.get("code", 0)
        self.message: str = error.get("message", "")


class LspClient:
    """One running ``quillmate lsp`` and the messages it sent."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.notifications: list[dict[str, Any]] = []
        self.applied_edits: list[dict[str, Any]] = []
        self.stray_output: list[bytes] = []
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._changed = asyncio.Event()
        self._reader = asyncio.ensure_future(self._read())
        self.stderr = bytearray()
        self._stderr_reader = asyncio.ensure_future(self._drain_stderr())
        self.apply_edit_reply: dict[str, Any] = {"applied": True}

    @classmethod
    async def start(cls, *args: str, env: dict[str, str] | None = None) -> LspClient:
        """Start ``python -m assistant lsp ARGS`` with the current environment (plus ``env``)."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "assistant",
            "lsp",
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=REPO_ROOT,
            env={**os.environ, **(env or {})},
            limit=2**24,
        )
        return cls(process)

    # -- sending ---------------------------------------------------------------------------

    def _write(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self.process.stdin is not None
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def send_request(self, method: str, params: Any = None) -> tuple[int, asyncio.Future[Any]]:
        """Send a request; returns its id and a future for the result (raises RpcError on error)."""
        msg_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        self._write({"id": msg_id, "method": method, "params": params})
        return msg_id, future

    async def request(self, method: str, params: Any = None, timeout: float = 120) -> Any:
        """Send a request and wait for its result."""
        _, future = self.send_request(method, params)
        return await asyncio.wait_for(future, timeout)

    def notify(self, method: str, params: Any = None) -> None:
        """Send a notification."""
        self._write({"method": method, "params": params})

    async def initialize(self, options: dict[str, Any] | None = None) -> dict[str, Any]:
        """The LSP handshake; returns the initialize result."""
        result = await self.request(
            "initialize",
            {"processId": os.getpid(), "rootUri": None, "capabilities": {}, "initializationOptions": options or {}},
        )
        self.notify("initialized", {})
        return result

    def open(self, uri: str, text: str, language: str = "markdown") -> None:
        """``textDocument/didOpen``."""
        self.notify(
            "textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": language, "version": 1, "text": text}}
        )

    def change(self, uri: str, text: str, version: int) -> None:
        """``textDocument/didChange`` with the whole new text."""
        self.notify(
            "textDocument/didChange",
            {"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": text}]},
        )

    async def execute(self, command: str, *arguments: Any, timeout: float = 120) -> Any:
        """``workspace/executeCommand``."""
        return await self.request(
            "workspace/executeCommand", {"command": command, "arguments": list(arguments)}, timeout=timeout
        )

    # -- receiving -------------------------------------------------------------------------

    async def _read(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        while True:
            header = await stream.readuntil(b"\r\n\r\n")
            if not header.startswith(b"Content-Length:") and b"Content-Length:" not in header:
                self.stray_output.append(header)
                continue
            length = 0
            for line in header.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
                elif line.strip() and not line.lower().startswith(b"content-type"):
                    self.stray_output.append(line)  # output that is not JSON-RPC broke into the stream
            message = json.loads(await stream.readexactly(length))
            self._dispatch(message)

    async def _drain_stderr(self) -> None:
        assert self.process.stderr is not None
        while chunk := await self.process.stderr.read(65536):
            self.stderr.extend(chunk)

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "id" in message and "method" in message:  # a request from the server
            if message["method"] == "workspace/applyEdit":
                self.applied_edits.append(message["params"])
                self._write({"id": message["id"], "result": self.apply_edit_reply})
            else:
                self._write({"id": message["id"], "result": None})
        elif "id" in message:
            future = self._pending.pop(message["id"], None)
            if future is not None and not future.done():
                if "error" in message:
                    future.set_exception(RpcError(message["error"]))
                else:
                    future.set_result(message.get("result"))
        else:
            self.notifications.append(message)
        self._changed.set()

    def notes(self, method: str) -> list[dict[str, Any]]:
        """The params of every notification of ``method`` so far."""
        return [n["params"] for n in self.notifications if n.get("method") == method]

    async def wait_for(self, condition: Callable[[], Any], timeout: float = 30) -> Any:
        """Wait (bounded) until ``condition()`` is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("condition not met in time")
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def stop(self) -> str:
        """Shut down politely; returns what the server wrote to stderr."""
        with contextlib.suppress(Exception):
            await self.request("shutdown", None, timeout=10)
            self.notify("exit")
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except asyncio.TimeoutError:
            self.process.kill()
            await self.process.wait()
        self._reader.cancel()
        with contextlib.suppress(BaseException):
            await self._reader
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(self._stderr_reader, 5)
        return self.stderr.decode(errors="replace")
