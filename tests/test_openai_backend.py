"""The OpenAI backend against a small misbehaving server on 127.0.0.1 (no internet)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.base import (
    ChatMessage,
    Delta,
    GenerationParams,
    GenerationRequest,
    GenerationResult,
    Notice,
    StreamEvent,
)
from backends.errors import (
    AuthenticationError,
    BackendError,
    BackendTimeout,
    ConfigError,
    ModelNotFound,
    RateLimited,
)
from backends.openai_backend import OpenAIBackend
from tests.support.fake_openai_server import FakeOpenAI

KEY = "sk-test-VerySecretKey0123456789abcdefWXYZ"
KEY_ENV = "QM_TEST_OPENAI_KEY"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def make(fake: FakeOpenAI, scenario: str, *, keyed: bool = False, **options: object) -> OpenAIBackend:
    values: dict[str, object] = {"model": "gpt-test", "base_url": fake.url(scenario), "timeout": 5, **options}
    if keyed:
        values["api_key_env"] = KEY_ENV
    return OpenAIBackend.from_options("test", values)


def chat(text: str = "Say hello.", **params: object) -> GenerationRequest:
    base = GenerationParams(max_new_tokens=8, temperature=0.7)
    return GenerationRequest.chat([ChatMessage.of("user", text, elastic=True)], base.with_overrides(**params))


async def gather(backend: OpenAIBackend, request: GenerationRequest) -> tuple[list[StreamEvent], GenerationResult]:
    events = [event async for event in backend.stream(request)]
    assert isinstance(events[-1], GenerationResult)
    return events, events[-1]


def one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text and "Traceback" not in text
    return text


# -- streaming and parameters ---------------------------------------------------------------


async def test_chat_stream_text_usage_and_finish(fake: FakeOpenAI) -> None:
    backend = make(fake, "ok")
    events, result = await gather(backend, chat())
    assert "".join(e.text for e in events if isinstance(e, Delta)) == "Hello there friend" == result.text
    assert result.finish_reasons == ("stop",)
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (7, 3)
    assert result.model == "gpt-test"
    assert result.time_to_first_token is not None and result.tokens_per_second
    assert backend.open_streams == 0
    sent = fake.requests[-1]
    assert sent.path == "/ok/v1/chat/completions"
    assert sent.body["stream"] is True and sent.body["stream_options"] == {"include_usage": True}
    assert sent.body["messages"] == [{"role": "user", "content": "Say hello."}]
    await backend.aclose()


async def test_parameters_are_mapped_and_the_rest_noticed(fake: FakeOpenAI) -> None:
    backend = make(fake, "ok", presence_penalty=0.5)
    request = chat(
        temperature=0.3, top_p=0.9, num_alternatives=2, seed=11, stop=("a", "b", "c", "d"), max_new_tokens=20
    )
    request = GenerationRequest.chat(
        request.messages or (), request.params.with_overrides(top_k=5, repetition_penalty=1.2)
    )
    events, result = await gather(backend, request)
    body = fake.requests[-1].body
    assert body["max_tokens"] == 20 and "max_completion_tokens" not in body  # portable for compatible servers
    assert (body["temperature"], body["top_p"], body["n"], body["seed"]) == (0.3, 0.9, 2, 11)
    assert body["stop"] == ["a", "b", "c", "d"] and body["presence_penalty"] == 0.5
    assert "top_k" not in body and "repetition_penalty" not in body
    messages = [e.message for e in events if isinstance(e, Notice)]
    assert any("top_k" in m for m in messages) and any("repetition_penalty" in m for m in messages)
    assert result.texts == ("Hello there friend", "Hello there friend")


def test_official_api_gets_max_completion_tokens() -> None:
    backend = OpenAIBackend("o", "gpt-4o-mini", base_url="https://api.openai.com/v1")
    body, _, _ = backend._body(chat(max_new_tokens=33), GenerationParams(max_new_tokens=33), 128_000)
    assert body["max_completion_tokens"] == 33 and "max_tokens" not in body


async def test_more_than_four_stops_are_applied_here(fake: FakeOpenAI) -> None:
    backend = make(fake, "ok")
    events, result = await gather(backend, chat(stop=("x1", "x2", "x3", "x4", "ere")))
    assert fake.requests[-1].body["stop"] == ["x1", "x2", "x3", "x4"]
    assert result.text == "Hello th" and result.finish_reason == "stop"
    assert "".join(e.text for e in events if isinstance(e, Delta)) == "Hello th"
    assert any(isinstance(e, Notice) and "at most 4 stop" in e.message for e in events)


async def test_completion_mode_uses_the_legacy_endpoint(fake: FakeOpenAI) -> None:
    backend = make(fake, "ok", mode="completion", context_window=2048)
    request = GenerationRequest.completion("Once upon a time", GenerationParams(max_new_tokens=5))
    _, result = await gather(backend, request)
    sent = fake.requests[-1]
    assert sent.path == "/ok/v1/completions"
    assert sent.body["prompt"] == "Once upon a time" and sent.body["max_tokens"] == 5
    assert result.text == "Hello there friend"
    assert backend.capabilities.completion and not backend.capabilities.chat


def test_mode_follows_the_model_name() -> None:
    assert OpenAIBackend("a", "gpt-3.5-turbo-instruct").mode == "completion"
    assert OpenAIBackend("b", "gpt-4o-mini").mode == "chat"
    assert OpenAIBackend("c", "gpt2", base_url="http://127.0.0.1:9/v1").capabilities.context_window == 1024


async def test_long_chat_is_fitted_with_a_notice(fake: FakeOpenAI) -> None:
    backend = make(fake, "ok", context_window=300)
    story = " ".join(f"word{i}" for i in range(3000)) + " the end"
    messages = [ChatMessage.of("system", "Be brief."), ChatMessage.of("user", story, elastic=True)]
    events, _ = await gather(backend, GenerationRequest.chat(messages, GenerationParams(max_new_tokens=50)))
    sent = fake.requests[-1].body["messages"]
    assert sent[0] == {"role": "system", "content": "Be brief."}
    assert sent[1]["content"].endswith("the end") and len(sent[1]["content"]) < len(story)
    assert any(isinstance(e, Notice) and e.kind == "truncated" for e in events)


async def test_server_without_stream_options_falls_back_to_counting(fake: FakeOpenAI) -> None:
    backend = make(fake, "no_usage")
    _, result = await gather(backend, chat())
    assert result.text == "Hello there friend"
    assert result.usage.completion_tokens == 3 and result.usage.prompt_tokens > 0
    assert "stream_options" not in fake.requests[-1].body


# -- failures ---------------------------------------------------------------------------------


async def test_401_is_not_retried_and_the_key_is_not_echoed(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    before = fake.counts["401"]
    with pytest.raises(AuthenticationError) as caught:
        await gather(make(fake, "401", keyed=True), chat())
    assert fake.counts["401"] - before == 1
    message = one_line(caught.value)
    assert "401" in message and KEY_ENV in message and KEY not in message


@pytest.mark.parametrize("scenario", ["403", "404"])
async def test_model_not_available_names_the_model(fake: FakeOpenAI, scenario: str) -> None:
    with pytest.raises(ModelNotFound) as caught:
        await gather(make(fake, scenario), chat())
    assert "'gpt-test'" in one_line(caught.value) and scenario in str(caught.value)


async def test_429_then_200_is_retried(fake: FakeOpenAI) -> None:
    before = fake.counts["429then200"]
    _, result = await gather(make(fake, "429then200"), chat())
    assert result.text == "Hello there friend"
    assert fake.counts["429then200"] - before == 2


async def test_429_after_retries_is_rate_limited(fake: FakeOpenAI) -> None:
    before = fake.counts["429"]
    with pytest.raises(RateLimited) as caught:
        await gather(make(fake, "429", max_retries=2), chat())
    assert fake.counts["429"] - before == 3
    assert "429" in one_line(caught.value) and "2 retries" in str(caught.value)


async def test_500_after_retries(fake: FakeOpenAI) -> None:
    before = fake.counts["500"]
    with pytest.raises(BackendError) as caught:
        await gather(make(fake, "500", max_retries=1), chat())
    assert fake.counts["500"] - before == 2
    assert "500" in one_line(caught.value)


async def test_connection_refused_names_the_base_url() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    backend = OpenAIBackend("test", "gpt-test", base_url=url, max_retries=0, timeout=5)
    with pytest.raises(BackendError) as caught:
        await gather(backend, chat())
    assert url in one_line(caught.value) and "refused" in str(caught.value)


async def test_silent_server_times_out_at_the_profile_timeout(fake: FakeOpenAI) -> None:
    backend = make(fake, "hang", timeout=0.5)
    before = fake.counts["hang"]
    started = time.perf_counter()
    with pytest.raises(BackendTimeout) as caught:
        await gather(backend, chat())
    elapsed = time.perf_counter() - started
    assert 0.4 < elapsed < 2.0, f"took {elapsed:.2f} s"
    assert fake.counts["hang"] - before == 1, "a timeout is not retried"
    assert "0.5 s" in one_line(caught.value)


@pytest.mark.parametrize(
    ("scenario", "words"),
    [("cut", "connection"), ("sse_error", "model crashed"), ("stall", "stopped sending")],
)
async def test_broken_stream_keeps_the_partial_text(fake: FakeOpenAI, scenario: str, words: str) -> None:
    backend = make(fake, scenario, timeout=0.5)
    events, result = await gather(backend, chat())
    assert result.text == "Hello there"
    assert "".join(e.text for e in events if isinstance(e, Delta)) == "Hello there"
    assert result.finish_reasons == ("error",) and not result.complete
    assert result.error and words in result.error and "\n" not in result.error
    assert backend.open_streams == 0


async def test_closing_the_stream_closes_the_response_quickly(fake: FakeOpenAI) -> None:
    backend = make(fake, "stall", timeout=10)
    events = backend.stream(chat())
    async for event in events:
        if isinstance(event, Delta):
            break
    assert backend.open_streams == 1
    started = time.perf_counter()
    await events.aclose()  # type: ignore[attr-defined]
    assert time.perf_counter() - started < 0.25
    assert backend.open_streams == 0


async def test_cancelling_the_consumer_closes_the_response(fake: FakeOpenAI) -> None:
    backend = make(fake, "stall", timeout=10)
    got = asyncio.Event()

    async def consume() -> None:
        async for event in backend.stream(chat()):
            if isinstance(event, Delta):
                got.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(got.wait(), 5)
    started = time.perf_counter()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.perf_counter() - started < 0.25
    assert backend.open_streams == 0


# -- keys, settings and the check -------------------------------------------------------------


async def test_missing_key_message() -> None:
    backend = OpenAIBackend("openai", "gpt-4o-mini")
    with pytest.raises(BackendError) as caught:
        await gather(backend, chat())
    assert one_line(caught.value) == "No OpenAI API key: set OPENAI_API_KEY or run `quillmate keys set openai`."


async def test_empty_key_variable_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "")
    with pytest.raises(BackendError) as caught:
        await gather(OpenAIBackend("openai", "gpt-4o-mini"), chat())
    assert "OPENAI_API_KEY is set but empty" in one_line(caught.value)


async def test_named_key_variable_must_exist() -> None:
    backend = OpenAIBackend("p", "m", base_url="https://api.example.com/v1", api_key_env="NOT_SET_ANYWHERE")
    with pytest.raises(BackendError) as caught:
        await gather(backend, chat())
    assert "NOT_SET_ANYWHERE" in one_line(caught.value)


async def test_empty_base_url_variable_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", "  ")
    with pytest.raises(BackendError) as caught:
        await gather(OpenAIBackend("openai", "gpt-4o-mini"), chat())
    assert "OPENAI_BASE_URL is set but empty" in one_line(caught.value)


async def test_local_server_needs_no_key(fake: FakeOpenAI) -> None:
    backend = make(fake, "ok")
    await gather(backend, chat())
    assert fake.requests[-1].headers["authorization"] == "Bearer not-needed"
    assert "none needed" in backend.info().details["key"]


def test_stored_key_goes_only_to_openai() -> None:
    from assistant.keys import save_key

    save_key("openai", KEY)
    official = OpenAIBackend("openai", "gpt-4o-mini").resolve_key()
    assert official.secret.reveal() == KEY and "openai.key" in official.source
    with pytest.raises(BackendError):
        OpenAIBackend("other", "m", base_url="https://api.example.com/v1").resolve_key()


async def test_openai_api_key_goes_only_to_openai_or_the_base_url_beside_it(
    fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    official = OpenAIBackend("openai", "gpt-4o-mini").resolve_key()
    assert official.secret.reveal() == KEY
    # A profile pointing at another server does not get the OpenAI key...
    with pytest.raises(BackendError) as caught:
        OpenAIBackend("cluster", "gpt2", base_url="http://gpu-cluster.lan:8000/v1").resolve_key()
    assert "gpu-cluster.lan:8000" in one_line(caught.value) and "api_key_env" in (caught.value.hint or "")
    await gather(make(fake, "ok"), chat())  # ...nor does one on this machine: it sends the placeholder
    assert fake.requests[-1].headers["authorization"] == "Bearer not-needed"
    # OPENAI_BASE_URL and OPENAI_API_KEY travel together, as with the SDK itself.
    monkeypatch.setenv("OPENAI_BASE_URL", fake.url("ok"))
    await gather(OpenAIBackend("env", "gpt-test"), chat())
    assert fake.requests[-1].headers["authorization"] == f"Bearer {KEY}"


def test_unknown_or_mistyped_profile_settings() -> None:
    with pytest.raises(ConfigError) as caught:
        OpenAIBackend.from_options("x", {"model": "m", "temprature": 1})
    assert "temprature" in str(caught.value)
    with pytest.raises(ConfigError):
        OpenAIBackend.from_options("x", {"timeout": "soon"})
    with pytest.raises(ConfigError):
        OpenAIBackend.from_options("x", {"mode": "poetry"})
    with pytest.raises(ConfigError):
        OpenAIBackend.from_options("x", {"base_url": "ftp://example.com"})


async def test_load_checks_the_model_and_describes_the_connection(
    fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    backend = make(fake, "ok", keyed=True)
    await backend.load()
    assert fake.requests[-1].path == "/ok/v1/models/gpt-test"
    details = backend.info().details
    assert details["base_url"] == fake.url("ok") and "ms" in details["latency"]
    assert details["key"] == f"sk-…WXYZ from {KEY_ENV}"
    assert KEY not in repr(backend) and KEY not in str(backend.info())
    with pytest.raises(ModelNotFound):
        await make(fake, "404").load()


async def test_the_key_never_reaches_logs_or_output(
    fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setenv("OPENAI_LOG", "debug")
    caplog.set_level(logging.DEBUG)
    for name in ("openai", "httpx", "httpx2", "httpcore"):
        monkeypatch.setattr(logging.getLogger(name), "level", logging.DEBUG)
    backend = make(fake, "ok", keyed=True)
    await backend.load()
    await gather(backend, chat())
    assert fake.requests[-1].headers["authorization"] == f"Bearer {KEY}"  # it was really sent
    logging.getLogger("openai._base_client").debug("headers %s", {"Authorization": f"Bearer {KEY}"})
    logging.getLogger("httpx2").info("sent %s", KEY)
    with pytest.raises(AuthenticationError) as caught:
        await gather(make(fake, "401", keyed=True), chat())
    out, err = capsys.readouterr()
    assert caplog.records, "debug logging should have produced records"
    for text in (caplog.text, out, err, str(caught.value), repr(backend), str(backend.info())):
        assert KEY not in text


def test_check_command_never_prints_the_key(fake: FakeOpenAI, tmp_path: Path, isolated_home: Path) -> None:
    config = isolated_home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f'[backends.good]\nkind = "openai"\nmodel = "gpt-test"\nbase_url = "{fake.url("ok")}"\n'
        f'api_key_env = "{KEY_ENV}"\n\n'
        f'[backends.refused]\nkind = "openai"\nmodel = "gpt-test"\nbase_url = "{fake.url("401")}"\n'
        f'api_key_env = "{KEY_ENV}"\n'
    )
    env = {**os.environ, KEY_ENV: KEY, "OPENAI_LOG": "debug", "QUILLMATE_HOME": str(isolated_home)}
    command = [sys.executable, "-c", "from assistant.cli import main; main()", "backends", "check"]
    good = subprocess.run([*command, "good"], env=env, capture_output=True, text=True, timeout=120)
    assert good.returncode == 0, good.stderr
    assert "sample:   Hello there friend" in good.stdout and "sk-…WXYZ" in good.stdout
    refused = subprocess.run([*command, "refused"], env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1
    assert "refused the API key" in refused.stderr and "Traceback" not in refused.stderr
    for text in (good.stdout, good.stderr, refused.stdout, refused.stderr):
        assert KEY not in text


def test_cli_start_does_not_import_openai() -> None:
    code = (
        "import sys\n"
        "from assistant.cli import cli\n"
        "from backends.registry import create_backend\n"
        "try:\n    cli.main(['--help'], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        "create_backend('openai', 'openai', {'model': 'gpt-4o-mini'})\n"
        "bad = [m for m in ('openai', 'httpx2', 'starlette', 'uvicorn') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


async def test_completion_model_context_comes_from_the_server(request: pytest.FixtureRequest) -> None:
    from tests.support.serve_harness import serve_model

    served = serve_model(request, request.getfixturevalue("tiny_model_dir"))
    backend = OpenAIBackend("v", "local", base_url=served.url, mode="completion")
    request_ = GenerationRequest.completion("Snow", GenerationParams(max_new_tokens=2))
    _, result = await gather(backend, request_)
    assert backend._discovered_context == 1024 and result.usage.completion_tokens > 0
    await backend.aclose()


async def test_credentials_in_the_url_are_never_shown(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Some proxies take their key in the URL; it must not show in messages, details or logs.
    password, query_key = "pr0xy-PASSWORD-123", "QUERY-key-456789"
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://writer:{password}@127.0.0.1:{port}/v1?api-key={query_key}"
    caplog.set_level(logging.DEBUG)
    for name in ("openai", "httpx", "httpcore"):
        monkeypatch.setattr(logging.getLogger(name), "level", logging.DEBUG)
    backend = OpenAIBackend.from_options(
        "proxy", {"model": "gpt-test", "base_url": url, "timeout": 2, "max_retries": 0}
    )
    with pytest.raises(BackendError) as caught:
        await gather(backend, chat())
    message = one_line(caught.value)
    assert f"127.0.0.1:{port}" in message and "writer" in message
    logging.getLogger("httpx").debug("request to %s", url)
    for text in (message, caught.value.hint or "", repr(backend), str(backend.info()), caplog.text):
        assert password not in text and query_key not in text
