"""Running the app on uvicorn: in the foreground (the CLI) or in a background thread (tests, benchmarks, apps)."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    """True when ``host:port`` can be bound now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def uvicorn_config(app: Any, host: str, port: int, *, log_level: str = "info", access_log: bool = True) -> Any:
    """uvicorn settings quillmate uses: no proxy headers trusted, a short graceful shutdown."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=access_log,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=3,
        lifespan="on",
    )


class ServerThread:
    """The app on uvicorn in a daemon thread; ``with ServerThread(app, port=p) as s: ...``."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int | None = None, log_level: str = "warning") -> None:
        import uvicorn

        self.host = host
        self.port = port or free_port(host)
        self.server = uvicorn.Server(uvicorn_config(app, host, self.port, log_level=log_level, access_log=False))
        self._thread = threading.Thread(target=self.server.run, name="quillmate-serve", daemon=True)

    @property
    def url(self) -> str:
        """The API root, e.g. ``http://127.0.0.1:8000/v1``."""
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{shown}:{self.port}/v1"

    def start(self, timeout: float = 30.0) -> ServerThread:
        """Start and wait until the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"The server on {self.host}:{self.port} did not start.")
            if time.monotonic() > deadline:
                raise TimeoutError(f"The server on {self.host}:{self.port} did not start within {timeout:g} s.")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to finish and wait for its thread."""
        self.server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
