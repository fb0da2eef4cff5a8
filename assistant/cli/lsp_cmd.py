"""``quillmate lsp``: serve the Language Server Protocol on stdin/stdout for editors.

stdout carries only JSON-RPC: before the server starts, file descriptor 1 is pointed at
stderr, so a stray print (ours, a library's, even C code's) can never corrupt the stream.
"""

from __future__ import annotations

import logging
import os
import sys

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--backend", "-b", help="Backend profile to use (see `quillmate backends list`).")
@click.option("--model", "-m", help="Model to use instead of the profile's.")
@click.option("--debug", is_flag=True, help="Log every message to stderr.")
def lsp(backend: str | None, model: str | None, debug: bool) -> None:
    """Run quillmate's language server over stdio (for Neovim, Vim, Emacs, Helix...).

    The model stays loaded between requests. Editor settings (initializationOptions)
    override --backend and --model. See editors/PROTOCOL.md.
    """
    rpc_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if debug else logging.WARNING,
        format="quillmate lsp: %(levelname)s: %(message)s",
    )
    if not debug:
        logging.getLogger("pygls").setLevel(logging.ERROR)
        for handler in logging.getLogger().handlers:
            handler.addFilter(_answered_errors_only_once)

    from assistant.lsp.engine import Settings
    from assistant.lsp.server import server

    server.engine.settings = Settings(backend=backend, model=model)
    server.start_io(sys.stdin.buffer, rpc_out)


def _answered_errors_only_once(record: logging.LogRecord) -> bool:
    """Drop pygls's traceback for an error the client was already sent as a one-line message."""
    from pygls.exceptions import JsonRpcException

    error = record.exc_info[1] if record.exc_info else None
    return not isinstance(error, JsonRpcException)
