"""``quillmate serve`` is safe by default: loopback only, keys, Host checks, limits, no client-chosen code."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from assistant.config import Config
from assistant.server import Limits, ServerThread, create_app, free_port
from assistant.server.security import allowed_hosts, check_model_name, host_allowed
from backends.errors import UsageError
from tests.support.serve_harness import EchoBackend

API_KEY = "serve-test-key-0123456789abcdef"


@dataclass
class Running:
    url: str
    port: int


@pytest.fixture(scope="module")
def keyed() -> Iterator[Running]:
    port = free_port()
    app = create_app(
        Config(),
        backends={"local": EchoBackend("local")},
        api_key=API_KEY,
        port=port,
        limits=Limits(max_body_bytes=4096, max_tokens=64),
    )
    with ServerThread(app, port=port) as server:
        yield Running(server.url, port)


def post(running: Running, body: object, *, key: str | None = API_KEY, **kwargs: object) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    headers.update(kwargs.pop("headers", {}))  # type: ignore[arg-type]
    return httpx.post(f"{running.url}/chat/completions", json=body, headers=headers, timeout=10, **kwargs)


def chat(**extra: object) -> dict[str, object]:
    return {"model": "local", "messages": [{"role": "user", "content": "one two three"}], "max_tokens": 8, **extra}


def error_of(response: httpx.Response) -> str:
    body = response.json()
    assert set(body["error"]) >= {"message", "type", "code", "param"}
    assert "\n" not in body["error"]["message"]
    return body["error"]["message"]


def test_the_default_bind_address_is_loopback() -> None:
    from assistant.cli.serve_cmd import serve

    options = {p.name: p for p in serve.params}
    assert options["host"].default == "127.0.0.1"
    assert options["port"].default == 8000


def test_non_loopback_bind_needs_a_key() -> None:
    with pytest.raises(UsageError) as caught:
        create_app(Config(), backends={"local": EchoBackend()}, host="0.0.0.0")
    assert "without an API key" in caught.value.message
    with pytest.raises(UsageError):
        create_app(Config(), backends={"local": EchoBackend()}, host="192.168.1.20")
    with pytest.raises(UsageError) as short:
        create_app(Config(), backends={"local": EchoBackend()}, host="0.0.0.0", api_key="short")
    assert "too short" in short.value.message
    create_app(Config(), backends={"local": EchoBackend()}, host="0.0.0.0", api_key=API_KEY)  # allowed with a key
    create_app(Config(), backends={"local": EchoBackend()}, host="::1")  # loopback needs none


def test_serve_command_refuses_a_public_bind_without_key() -> None:
    from assistant.cli.serve_cmd import serve

    result = CliRunner().invoke(serve, ["--host", "0.0.0.0", "--port", str(free_port())])
    assert isinstance(result.exception, UsageError)
    assert "Refusing to serve on 0.0.0.0" in result.exception.message


def test_missing_or_wrong_bearer_token_is_401(keyed: Running) -> None:
    for key in (None, "wrong-key-0123456789abcdef", API_KEY + "x"):
        response = post(keyed, chat(), key=key)
        assert response.status_code == 401, key
        assert "API key" in error_of(response)
        assert response.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{keyed.url}/models", timeout=10).status_code == 401
    assert post(keyed, chat(), headers={"authorization": f"Basic {API_KEY}"}, key=None).status_code == 401
    ok = post(keyed, chat())
    assert ok.status_code == 200, ok.text
    assert ok.json()["choices"][0]["message"]["content"] == "one two three"


def test_a_foreign_host_header_is_rejected(keyed: Running) -> None:
    for host in ("evil.example.com", f"evil.example.com:{keyed.port}", f"127.0.0.1:{keyed.port + 1}", "127.0.0.1"):
        response = post(keyed, chat(), headers={"host": host})
        assert response.status_code == 421, host
        assert "Host" in error_of(response)
    for host in (f"localhost:{keyed.port}", f"127.0.0.1:{keyed.port}", f"[::1]:{keyed.port}"):
        assert post(keyed, chat(), headers={"host": host}).status_code == 200, host


def test_host_check_rules() -> None:
    allowed = allowed_hosts("127.0.0.1", 8000)
    assert allowed is not None and host_allowed("localhost:8000", allowed) and not host_allowed("a.b:8000", allowed)
    assert not host_allowed(None, allowed) and not host_allowed("", allowed)
    assert allowed_hosts("0.0.0.0", 8000) is None  # any name, but a key is required for such binds
    only = allowed_hosts("0.0.0.0", 8000, ["writer.example"])
    assert only is not None and host_allowed("writer.example:8000", only) and not host_allowed("x:8000", only)


def test_oversized_bodies_are_413(keyed: Running) -> None:
    big = chat(messages=[{"role": "user", "content": "x" * 8000}])
    response = post(keyed, big)
    assert response.status_code == 413 and "limit" in error_of(response)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the server counts as it reads
        yield b'{"model": "local", "messages": [{"role": "user", "content": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}]}'

    headers = {"authorization": f"Bearer {API_KEY}", "content-type": "application/json"}
    streamed = httpx.post(f"{keyed.url}/chat/completions", content=chunks(), headers=headers, timeout=10)
    assert streamed.status_code == 413


def test_max_tokens_over_the_limit_is_400(keyed: Running) -> None:
    response = post(keyed, chat(max_tokens=65))
    assert response.status_code == 400 and "at most 64" in error_of(response)
    assert post(keyed, chat(max_completion_tokens=1000)).status_code == 400
    assert post(keyed, chat(max_tokens=64)).status_code == 200


@pytest.mark.parametrize(
    "extra",
    [
        {"base_url": "http://attacker.example/v1"},
        {"api_base": "http://attacker.example/v1"},
        {"model_path": "/tmp/evil"},
        {"trust_remote_code": True},
        {"model": "../../etc/passwd"},
        {"model": "/home/writer/models/gpt2"},
        {"model": "openai/gpt-4o"},
        {"model": "http://attacker.example/model"},
        {"model": "quillmate/../poem"},
        {"model": "C:\\models\\gpt2"},
    ],
)
def test_client_chosen_upstreams_paths_and_code_are_refused(keyed: Running, extra: dict[str, object]) -> None:
    response = post(keyed, chat(**extra))
    assert response.status_code == 400, response.text
    error_of(response)


def test_unknown_model_is_404_and_bad_requests_are_400(keyed: Running) -> None:
    assert post(keyed, chat(model="nope")).status_code == 404
    assert post(keyed, chat(model="quillmate/no-such-template")).status_code == 404
    assert post(keyed, chat(temperature=3)).status_code == 400
    assert post(keyed, chat(n=0)).status_code == 400
    assert post(keyed, chat(tools=[{"type": "function", "function": {"name": "f"}}])).status_code == 400
    assert post(keyed, {"model": "local", "messages": "hi"}).status_code == 400
    bad_json = httpx.post(
        f"{keyed.url}/chat/completions",
        content=b"{not json",
        headers={"authorization": f"Bearer {API_KEY}", "content-type": "application/json"},
        timeout=10,
    )
    assert bad_json.status_code == 400


def test_no_cors_headers(keyed: Running) -> None:
    origin = {"origin": "https://some-site.example", "authorization": f"Bearer {API_KEY}"}
    preflight = httpx.options(
        f"{keyed.url}/chat/completions",
        headers={**origin, "access-control-request-method": "POST"},
        timeout=10,
    )
    assert "access-control-allow-origin" not in preflight.headers
    answer = post(keyed, chat(), headers={"origin": "https://some-site.example"})
    assert answer.status_code == 200 and "access-control-allow-origin" not in answer.headers


def test_model_names() -> None:
    assert check_model_name("local") == "local"
    assert check_model_name("quillmate/poem") == "quillmate/poem"
    for bad in ("", "a/b", "quillmate/a/b", "..", "~/.cache", "x" * 200):
        with pytest.raises(UsageError):
            check_model_name(bad)


@pytest.fixture(scope="module")
def open_loopback() -> Iterator[Running]:
    port = free_port()
    app = create_app(Config(), backends={"local": EchoBackend("local")}, port=port)
    with ServerThread(app, port=port) as server:
        yield Running(server.url, port)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_web_pages_cannot_use_a_keyless_server(open_loopback: Running, content_type: str) -> None:
    # A page can POST these types to 127.0.0.1 without the browser asking first; JSON it cannot.
    body = '{"model": "local", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}'
    headers = {"content-type": content_type, "origin": "https://elsewhere.example"}
    response = httpx.post(f"{open_loopback.url}/chat/completions", content=body, headers=headers, timeout=10)
    assert response.status_code == 415 and "application/json" in error_of(response)
    completions = httpx.post(f"{open_loopback.url}/completions", content=body, headers=headers, timeout=10)
    assert completions.status_code == 415
    assert post(open_loopback, chat(), key=None).status_code == 200  # a real client sends JSON


def test_errors_name_the_parameter_at_fault(keyed: Running) -> None:
    cases = [
        (chat(temperature=3), "temperature"),
        (chat(n=0), "n"),
        (chat(max_tokens=10_000), "max_tokens"),
        (chat(stop=[""]), "stop"),
        (chat(model="nope"), "model"),
        (chat(model="../etc/passwd"), "model"),
        (chat(base_url="http://elsewhere.example/v1"), "base_url"),
        (chat(tools=[{"type": "function", "function": {"name": "f"}}]), "tools"),
        ({"model": "local", "messages": "hi"}, "messages"),
        ({"model": "local", "messages": [{"role": "robot", "content": "hi"}]}, "messages.[0].role"),
        ({"model": "local", "prompt": "hi"}, "prompt"),
    ]
    for body, param in cases:
        response = post(keyed, body)
        assert response.status_code in (400, 404), body
        error_of(response)
        assert response.json()["error"]["param"] == param, body


def test_http_errors_carry_no_command_line_hints(open_loopback: Running) -> None:
    body = {"model": "quillmate/poem", "messages": [{"role": "user", "content": "{}"}], "max_tokens": 4}
    response = post(open_loopback, body, key=None)
    message = error_of(response)
    assert response.status_code == 400 and response.json()["error"]["param"] == "messages"
    assert "--var" not in message and "topic" in message and '{"topic": "..."}' in message


def test_http_errors_never_show_the_servers_key_file(tmp_path: Path) -> None:
    from assistant.config import Profile
    from tests.support.fake_openai_server import FakeOpenAI

    secrets = tmp_path / "very-private folder"
    secrets.mkdir()
    (secrets / "upstream.key").write_text("sk-upstream-Secret0123456789abcdefWXYZ\n", encoding="utf-8")
    with FakeOpenAI() as fake:
        profiles = {
            "refused": Profile(
                "refused",
                "openai",
                {"model": "gpt-test", "base_url": fake.url("401"), "api_key_file": str(secrets / "upstream.key")},
            ),
            "missing": Profile(
                "missing",
                "openai",
                {"model": "gpt-test", "base_url": fake.url("ok"), "api_key_file": str(secrets / "gone.key")},
            ),
        }
        port = free_port()
        app = create_app(Config(profiles=profiles), serve=["refused", "missing"], port=port)
        with ServerThread(app, port=port) as server:
            running = Running(server.url, port)
            for model in ("refused", "missing"):
                for stream in (False, True):
                    response = post(running, chat(model=model, stream=stream), key=None)
                    text = response.text
                    assert "key" in text.lower(), text  # it still says what went wrong
                    assert str(tmp_path) not in text and "private folder" not in text and ".key" not in text, text
                    assert "Secret0123456789" not in text
