"""``quillmate serve``: quillmate as an OpenAI-compatible HTTP endpoint on this machine."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import click

from assistant import interrupts
from assistant.cli.common import echo_err
from assistant.server.security import KEY_ENV
from backends.errors import UsageError


def _api_key(api_key: str | None, api_key_file: Path | None) -> str | None:
    if api_key and api_key_file:
        raise UsageError("Give --api-key or --api-key-file, not both.")
    if api_key_file is not None:
        try:
            value = api_key_file.expanduser().read_text(encoding="utf-8").strip()
        except OSError as error:
            raise UsageError(f"Cannot read the API key file {api_key_file}: {error.strerror or error}.") from None
        if not value:
            raise UsageError(f"The API key file {api_key_file} is empty.")
        return value
    if api_key is not None:
        if not api_key.strip():
            raise UsageError("--api-key is empty.")
        return api_key.strip()
    value = os.environ.get(KEY_ENV, "").strip()
    return value or None


def usage_text(url: str, models: list[str], *, keyed: bool) -> str:
    """What the server prints at start: its URL and how to call it from three clients."""
    templates = [m for m in models if m.startswith("quillmate/")]
    model = "quillmate/poem" if "quillmate/poem" in models else (templates or models or ["local"])[0]
    key_py = f'os.environ["{KEY_ENV}"]' if keyed else '"not-needed"'
    auth = f' -H "Authorization: Bearer ${KEY_ENV}"' if keyed else ""
    shown_models = ", ".join(models[:12]) + (" …" if len(models) > 12 else "")
    return "\n".join(
        [
            f"quillmate is serving an OpenAI-compatible API at {url}",
            f"models: {shown_models}",
            "",
            "openai SDK (Python):",
            "  from openai import OpenAI",
            f'  client = OpenAI(base_url="{url}", api_key={key_py})',
            f'  reply = client.chat.completions.create(model="{model}", '
            'messages=[{"role": "user", "content": "the sea at night"}])',
            "",
            "curl:",
            f"  curl {url}/chat/completions -H 'Content-Type: application/json'{auth} \\",
            f'    -d \'{{"model": "{model}", "messages": [{{"role": "user", "content": "the sea at night"}}], '
            '"stream": true}\'',
            "",
            "LangChain:",
            "  from langchain_openai import ChatOpenAI",
            f'  llm = ChatOpenAI(base_url="{url}", api_key={key_py}, model="{model}")',
            "",
            (
                "Requests need the API key (Authorization: Bearer ...)."
                if keyed
                else "Only programs on this machine can reach it. Press Ctrl+C to stop."
            ),
        ]
    )


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (others need --api-key).")
@click.option("--port", "-p", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option(
    "--backend",
    "-b",
    "backend_names",
    multiple=True,
    help="Backend profile to serve (repeatable; the first also runs templates). Default: your default backend.",
)
@click.option("--model", "-m", help="Model for the first backend instead of its profile's.")
@click.option(
    "--api-key",
    help=f"Require this key as a bearer token. Other users can see it in the process list: "
    f"prefer --api-key-file or {KEY_ENV}.",
)
@click.option(
    "--api-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read the required key from this file.",
)
@click.option(
    "--max-tokens-limit",
    default=4096,
    show_default=True,
    type=click.IntRange(1),
    help="Largest max_tokens a request may ask for.",
)
@click.option(
    "--max-body",
    default=1024 * 1024,
    show_default=True,
    type=click.IntRange(1024),
    help="Largest request body in bytes.",
)
@click.option("--allow-host", multiple=True, help="Another host name clients may use in the Host header (repeatable).")
@click.option("--no-preload", is_flag=True, help="Load the model on the first request instead of at start.")
def serve(
    host: str,
    port: int,
    backend_names: tuple[str, ...],
    model: str | None,
    api_key: str | None,
    api_key_file: Path | None,
    max_tokens_limit: int,
    max_body: int,
    allow_host: tuple[str, ...],
    no_preload: bool,
) -> None:
    """Serve quillmate as an OpenAI-compatible HTTP endpoint (127.0.0.1 only, by default).

    \b
    Every backend profile served is a model id (e.g. `local`), and so is every
    template (`quillmate/poem`): the last user message fills the template, as plain
    text or as a JSON object of variables.

    \b
      quillmate serve
      quillmate serve --backend local --port 8080
      quillmate serve --host 0.0.0.0 --api-key-file ~/.serve-key
    """
    from assistant.config import load_config
    from assistant.server.app import create_app
    from assistant.server.runner import port_is_free, uvicorn_config
    from assistant.server.schemas import Limits
    from assistant.server.security import check_bind

    key = _api_key(api_key, api_key_file)
    check_bind(host, key)
    config = load_config()
    names = list(backend_names) or [config.default_backend]
    ready = {}
    if model:
        from backends.registry import create_backend

        profile = config.profile(names[0])
        ready[profile.name] = create_backend(profile.name, profile.kind, {**profile.options, "model": model})
    limits = Limits(max_body_bytes=max_body, max_tokens=max_tokens_limit)
    app = create_app(
        config, backends=ready, serve=names, api_key=key, host=host, port=port, limits=limits, allow_hosts=allow_host
    )
    state = app.state.quillmate
    if not port_is_free(host, port):
        raise UsageError(f"Port {port} on {host} is already in use.", "Pick another with --port.")
    if not no_preload:
        echo_err(f"quillmate: loading {state.primary}…")
        with interrupts.for_asyncio():
            asyncio.run(_preload(state))
    shown = f"[{host}]" if ":" in host else host
    display_host = "127.0.0.1" if host in ("0.0.0.0", "::") else shown
    url = f"http://{display_host}:{port}/v1"
    click.echo(usage_text(url, [m["id"] for m in state.models()], keyed=key is not None))
    import uvicorn

    uvicorn.Server(uvicorn_config(app, host, port, log_level="info")).run()


async def _preload(state: object) -> None:
    from assistant.server.app import ServeState

    assert isinstance(state, ServeState)
    await state.preload()  # the model stays loaded; HTTP clients are made again on the server's loop
