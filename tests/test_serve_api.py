"""``quillmate serve`` speaks the OpenAI API: the official SDK, curl-style HTTP and LangChain all work.

The server runs the tiny random GPT-2 (``local``) on a free loopback port, shared with the
contract suite; requests use a few tokens each.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from assistant.config import Config
from assistant.server import ServerThread, create_app, free_port
from tests.support.serve_harness import EchoBackend, Served, serve_model


@pytest.fixture
def served(request: pytest.FixtureRequest) -> Served:
    return serve_model(request, request.getfixturevalue("tiny_model_dir"))


@pytest.fixture
def client(served: Served) -> openai.OpenAI:
    return openai.OpenAI(base_url=served.url, api_key="not-needed", max_retries=0, timeout=60)


def sse_events(response: httpx.Response) -> list[str]:
    return [line[len("data: ") :] for line in response.iter_lines() if line.startswith("data: ")]


def test_models_lists_profiles_and_templates(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list().data]
    assert ids[0] == "local"
    assert {"quillmate/poem", "quillmate/continue"} <= set(ids)
    local = client.models.retrieve("local")
    assert local.id == "local" and (local.model_extra or {}).get("max_model_len") == 1024
    assert client.models.retrieve("quillmate/poem").id == "quillmate/poem"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nothing-here")


def test_chat_completion_not_streamed(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="local",
        messages=[{"role": "system", "content": "You write."}, {"role": "user", "content": "Once upon a time"}],
        max_tokens=6,
        n=2,
        temperature=0.9,
        seed=3,
    )
    assert reply.object == "chat.completion" and reply.id.startswith("chatcmpl-") and reply.model == "local"
    assert [c.index for c in reply.choices] == [0, 1]
    assert all(c.message.role == "assistant" and c.finish_reason in ("stop", "length") for c in reply.choices)
    assert reply.usage is not None and 0 < reply.usage.completion_tokens <= 12 and reply.usage.prompt_tokens > 0
    again = client.chat.completions.create(
        model="local",
        messages=[{"role": "system", "content": "You write."}, {"role": "user", "content": "Once upon a time"}],
        max_tokens=6,
        n=2,
        temperature=0.9,
        seed=3,
    )
    assert [c.message.content for c in again.choices] == [c.message.content for c in reply.choices]


def test_completion_streamed_with_usage(client: openai.OpenAI) -> None:
    stream = client.completions.create(
        model="local",
        prompt="The sea at night",
        max_tokens=8,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert all(c.object == "text_completion" and c.model == "local" for c in chunks)
    text = "".join(choice.text for c in chunks for choice in c.choices)
    assert text
    assert [choice.finish_reason for c in chunks for choice in c.choices if choice.finish_reason] == ["length"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 8
    plain = client.completions.create(model="local", prompt="The sea at night", max_tokens=8, temperature=0)
    assert plain.choices[0].text == text and plain.object == "text_completion"


def test_greedy_alternatives_are_copies(client: openai.OpenAI) -> None:
    reply = client.completions.create(model="local", prompt="Snow", max_tokens=5, temperature=0, n=3)
    texts = [c.text for c in reply.choices]
    assert len(texts) == 3 and len(set(texts)) == 1


def test_stream_wire_format(served: Served) -> None:
    body = {
        "model": "local",
        "messages": [{"role": "user", "content": "Hello"}],
        "max_tokens": 4,
        "stream": True,
        "stop": ["\n\n\n"],
    }
    with httpx.stream("POST", f"{served.url}/chat/completions", json=body, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks)
    notices = [n for c in chunks for n in c.get("quillmate_notices", [])]
    assert any("transcript" in n["message"] for n in notices)  # the local model is a completion model
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")


def test_template_models_take_text_or_json(client: openai.OpenAI, served: Served) -> None:
    plain = client.chat.completions.create(
        model="quillmate/poem", messages=[{"role": "user", "content": "the sea at night"}], max_tokens=4, seed=1
    )
    assert plain.model == "quillmate/poem" and plain.choices[0].finish_reason in ("stop", "length")
    named = client.chat.completions.create(
        model="quillmate/poem",
        messages=[{"role": "user", "content": json.dumps({"topic": "snow", "form": "haiku"})}],
        max_tokens=4,
        seed=1,
    )
    assert named.choices[0].message.content is not None
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="quillmate/poem", messages=[{"role": "user", "content": '{"colour": "red"}'}], max_tokens=4
        )
    assert "colour" in str(caught.value)


def test_a_disconnect_cancels_the_generation(served: Served) -> None:
    assert served.wait_idle(10)
    cancelled = served.state.metrics.cancelled
    body = {"model": "local", "prompt": "Once", "max_tokens": 900, "temperature": 1.0, "stream": True}
    with httpx.stream("POST", f"{served.url}/completions", json=body, timeout=60) as response:
        for line in response.iter_lines():
            if line.startswith("data: ") and '"text"' in line:
                break
        assert served.state.metrics.active == 1
    started = time.monotonic()
    assert served.wait_idle(2.0), "the server should stop generating when the client goes away"
    assert time.monotonic() - started < 1.0
    assert served.state.metrics.cancelled == cancelled + 1


def test_a_client_that_gives_up_on_a_plain_request_cancels_it(served: Served) -> None:
    assert served.wait_idle(10)
    cancelled = served.state.metrics.cancelled
    # Greedy, the tiny model writes all 900 tokens (sampled, it may end early), about a second's work.
    body = {"model": "local", "prompt": "Once", "max_tokens": 900, "temperature": 0}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{served.url}/completions", json=body, timeout=httpx.Timeout(30, read=0.2))
    assert served.wait_idle(2.0)
    assert served.state.metrics.cancelled == cancelled + 1


def test_the_event_loop_stays_free_while_the_model_writes(served: Served) -> None:
    assert served.wait_idle(10)
    body = {"model": "local", "prompt": "Once", "max_tokens": 300, "temperature": 1.0}
    done = threading.Event()

    def long_request() -> None:
        httpx.post(f"{served.url}/completions", json=body, timeout=120)
        done.set()

    worker = threading.Thread(target=long_request)
    worker.start()
    deadline = time.monotonic() + 10
    while served.state.metrics.active == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.perf_counter()
    listed = httpx.get(f"{served.url}/models", timeout=10)
    quick = time.perf_counter() - started
    assert listed.status_code == 200
    assert quick < 0.5, f"/v1/models took {quick:.2f} s while the model was writing"
    worker.join(120)
    assert done.is_set()


def test_requests_queue_first_come_first_served() -> None:
    backend = EchoBackend("local", delay=0.02)
    port = free_port()
    app = create_app(Config(), backends={"local": backend}, port=port)
    state = app.state.quillmate
    finished: list[int] = []

    async def one(client: httpx.AsyncClient, number: int) -> None:
        words = " ".join(f"r{number}w{i}" for i in range(5))
        body = {"model": "local", "prompt": words, "max_tokens": 5, "stream": True}
        async with client.stream("POST", f"{server.url}/completions", json=body) as response:
            async for _ in response.aiter_lines():
                pass
        finished.append(number)

    async def main() -> int:
        async with httpx.AsyncClient(timeout=30) as client:
            tasks = []
            for number in range(4):
                tasks.append(asyncio.create_task(one(client, number)))
                await asyncio.sleep(0.03)  # arrive in order
            most_waiting = 0
            while not all(t.done() for t in tasks):
                most_waiting = max(most_waiting, state.queued)
                await asyncio.sleep(0.005)
            await asyncio.gather(*tasks)
            return most_waiting

    with ServerThread(app, port=port) as server:
        most_waiting = asyncio.run(main())
    assert finished == [0, 1, 2, 3]
    assert most_waiting >= 2, "later requests should have waited their turn"
    assert [r.prompt[0].text.split()[0] for r in backend.seen] == ["r0w0", "r1w0", "r2w0", "r3w0"]


def test_langchain_chat_openai_streams_from_serve(served: Served) -> None:
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(base_url=served.url, api_key="not-needed", model="local", max_tokens=6, max_retries=0, timeout=60)
    pieces = [chunk.content for chunk in llm.stream("Tell me about the sea.")]
    assert len(pieces) >= 2
    assert "".join(str(p) for p in pieces)


def test_startup_text_shows_how_to_connect() -> None:
    from assistant.cli.serve_cmd import usage_text

    text = usage_text("http://127.0.0.1:8000/v1", ["local", "quillmate/poem"], keyed=False)
    assert "http://127.0.0.1:8000/v1" in text
    assert 'OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="not-needed")' in text
    assert "curl http://127.0.0.1:8000/v1/chat/completions" in text
    assert 'ChatOpenAI(base_url="http://127.0.0.1:8000/v1"' in text and "quillmate/poem" in text
    keyed = usage_text("http://10.0.0.5:8000/v1", ["local"], keyed=True)
    assert "QUILLMATE_SERVE_API_KEY" in keyed and "Bearer" in keyed


def test_models_report_the_real_context_before_the_model_loads() -> None:
    from backends.gpt2 import GPT2Backend

    backend = GPT2Backend("local", model="bundled")
    port = free_port()
    app = create_app(Config(), backends={"local": backend}, port=port)
    with ServerThread(app, port=port) as server:
        before = httpx.get(f"{server.url}/models/local", timeout=10).json()
        assert backend.loaded is None, "listing models must not load the weights"
        reply = httpx.post(
            f"{server.url}/completions", json={"model": "local", "prompt": "Snow", "max_tokens": 2}, timeout=120
        )
        assert reply.status_code == 200 and backend.loaded is not None
        after = httpx.get(f"{server.url}/models/local", timeout=10).json()
    assert before["max_model_len"] == after["max_model_len"] == 512  # the bundled model's declared window


@pytest.fixture(scope="module")
def echo_server() -> Iterator[str]:
    port = free_port()
    app = create_app(Config(), backends={"local": EchoBackend("local")}, port=port)
    with ServerThread(app, port=port) as server:
        yield server.url


def test_completions_take_a_list_of_prompts(echo_server: str) -> None:
    client = openai.OpenAI(base_url=echo_server, api_key="not-needed", max_retries=0, timeout=30)
    reply = client.completions.create(
        model="local", prompt=["one two", "three four five"], n=2, max_tokens=8, temperature=0.7
    )
    assert [(c.index, c.text) for c in reply.choices] == [
        (0, "one two"),
        (1, "one two"),
        (2, "three four five"),
        (3, "three four five"),
    ]
    assert reply.usage is not None and reply.usage.completion_tokens == 2 * 2 + 3 * 2
    stream = client.completions.create(
        model="local", prompt=["a b", "c"], n=2, max_tokens=8, temperature=0.7, stream=True
    )
    texts: dict[int, str] = {}
    finished: list[int] = []
    for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + choice.text
            if choice.finish_reason:
                finished.append(choice.index)
    assert texts == {0: "a b", 1: "a b", 2: "c", 3: "c"} and sorted(finished) == [0, 1, 2, 3]


def test_langchain_openai_batch_gets_one_answer_per_prompt(echo_server: str) -> None:
    from langchain_openai import OpenAI

    llm = OpenAI(base_url=echo_server, api_key="not-needed", model="local", max_tokens=8, max_retries=0, timeout=30)
    assert llm.batch(["the sea at night", "snow on the lantern"]) == ["the sea at night", "snow on the lantern"]


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_client_that_hangs_up_during_its_upload_costs_one_log_line() -> None:
    port = free_port()
    app = create_app(Config(), backends={"local": EchoBackend("local")}, port=port)
    server = ServerThread(app, port=port)  # uvicorn sets up its loggers here; listen after that
    lines = _Lines()
    watched = [logging.getLogger(name) for name in ("uvicorn.error", "uvicorn", "quillmate.serve")]
    old_level = watched[-1].level
    for logger in watched:
        logger.addHandler(lines)
    watched[-1].setLevel(logging.INFO)
    try:
        with server:
            for _ in range(2):
                with socket.create_connection(("127.0.0.1", port)) as sock:
                    sock.sendall(
                        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                        "Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n".encode()
                        + b'{"model": "local", "messages": [{"role": "user", "content": "'
                    )
                    time.sleep(0.2)  # the server is reading the body now
            deadline = time.monotonic() + 5
            while len([r for r in lines.records if r.name == "quillmate.serve"]) < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
    finally:
        for logger in watched:
            logger.removeHandler(lines)
        watched[-1].setLevel(old_level)
    ours = [r.getMessage() for r in lines.records if r.name == "quillmate.serve"]
    assert len(ours) == 2 and all("disconnected" in line for line in ours)
    assert not [r for r in lines.records if r.exc_info or "Exception in ASGI" in r.getMessage()]


BIBLE = {
    "memory": "A ghost story, told quietly.",
    "entries": [
        {"name": "Mara", "keys": ["keeper"], "content": "Mara keeps the lamp; she has not spoken since the wreck."},
        {"name": "The Gull", "keys": ["tavern"], "content": "The Gull is the harbour tavern."},
    ],
}


def test_template_models_take_a_story_bible() -> None:
    backend = EchoBackend("local")
    port = free_port()
    app = create_app(Config(), backends={"local": backend}, port=port)
    with ServerThread(app, port=port) as server:
        client = openai.OpenAI(base_url=server.url, api_key="not-needed", max_retries=0, timeout=30)
        story = "The keeper climbed the iron stairs."
        reply = client.chat.completions.create(
            model="quillmate/continue",
            messages=[{"role": "user", "content": story}],
            max_tokens=4,
            extra_body={"bible": BIBLE},
        )
        assert reply.choices[0].message.content
        sent = "\n".join(m.text for m in backend.seen[-1].messages or ())
        assert BIBLE["memory"] in sent and BIBLE["entries"][0]["content"] in sent and story in sent
        assert "The Gull" not in sent  # its key is not in the text: not sent

        def post(body: dict[str, object]) -> httpx.Response:
            return httpx.post(f"{server.url}/chat/completions", json=body, timeout=30)

        bad = {"name": "Mara", "keys": ["/(unclosed/"], "content": "x"}
        answer = post(
            {
                "model": "quillmate/continue",
                "messages": [{"role": "user", "content": story}],
                "bible": {"entries": [bad]},
            }
        )
        error = answer.json()["error"]
        assert answer.status_code == 400 and error["param"] == "bible"
        assert "entry 'Mara'" in error["message"] and "not a valid regular expression" in error["message"]
        answer = post({"model": "local", "messages": [{"role": "user", "content": story}], "bible": BIBLE})
        assert answer.status_code == 400 and answer.json()["error"]["param"] == "bible"
        assert "quillmate/continue" in answer.json()["error"]["message"]
        answer = post(
            {
                "model": "quillmate/poem",
                "messages": [{"role": "user", "content": "snow"}],
                "max_tokens": 2,
                "bible": BIBLE,
            }
        )
        assert answer.status_code == 200
        assert any("does not use a story bible" in n["message"] for n in answer.json()["quillmate_notices"])


def test_a_story_bible_with_the_real_model(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="quillmate/continue",
        messages=[{"role": "user", "content": "The keeper climbed the stairs."}],
        max_tokens=4,
        seed=1,
        extra_body={"bible": BIBLE},
    )
    assert reply.choices[0].finish_reason in ("stop", "length") and reply.usage is not None
    assert reply.usage.prompt_tokens > 0
