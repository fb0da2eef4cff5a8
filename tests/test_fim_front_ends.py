"""Fill-in-the-middle through ``quillmate serve`` and ``quillmate run``: the text after the gap reaches the model.

The server runs for real on 127.0.0.1 (shared with the other serve tests), once with the copy
of the bundled model that has the three FIM tokens and once with the tiny GPT-2, which has none
(the bundled model may gain the tokens; the tiny one stands for every model that cannot). The
server runs in this process, so :class:`PromptSpy` sees the exact tokens each request builds.
``quillmate run`` runs as a subprocess, as a script would call it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from assistant.config import load_config
from assistant.core import Assistant
from assistant.cursor import AFTER_CURSOR_CHARS
from assistant.server.schemas import Limits, parse_request
from backends.base import GenerationParams, GenerationRequest, join_parts
from backends.gpt2 import GPT2Backend, LoadedModel
from backends.openai_backend import OpenAIBackend
from tests.support.fim_model import PromptSpy, tokens
from tests.support.serve_harness import Served, serve_model
from tests.support.streams import run
from tests.test_cli import quillmate

pytestmark = pytest.mark.slow

BEFORE = "Mara climbed the stairs to the lamp room. The wind pressed at the glass,"
AFTER = " and when the light came round again the ship was gone."
CANNOT_SEE = "cannot see the text after the cursor"


@pytest.fixture
def fim_served(request: pytest.FixtureRequest, fim_model_dir: Path) -> Served:
    return serve_model(request, fim_model_dir)


@pytest.fixture
def plain_served(request: pytest.FixtureRequest, tiny_model_dir: Path) -> Served:
    return serve_model(request, tiny_model_dir)


def loaded_on(served: Served) -> LoadedModel:
    backend = served.state.backend("local")
    assert isinstance(backend, GPT2Backend)
    return backend._load_sync()


def psm(loaded: LoadedModel, before: str, after: str) -> list[int]:
    """The prefix-suffix-middle prompt the model should be given."""
    assert loaded.fim is not None, "the FIM copy of the bundled model declares the tokens"
    return loaded.fim.prompt_ids(tokens(loaded, before), tokens(loaded, after))


def notices_in(body: dict[str, Any]) -> list[str]:
    return [n["message"] for n in body.get("quillmate_notices", [])]


def post(served: Served, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{served.url}/{path}", json=body, timeout=120)


# -- quillmate serve ---------------------------------------------------------------------------------


def test_a_completion_suffix_reaches_a_fim_model_as_prefix_suffix_middle(
    fim_served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = loaded_on(fim_served)
    spy = PromptSpy(monkeypatch)
    response = post(
        fim_served, "completions", {"model": "local", "prompt": BEFORE, "suffix": AFTER, "max_tokens": 4, "seed": 3}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    expected = psm(loaded, BEFORE, AFTER)
    assert spy.ids == expected
    assert body["usage"]["prompt_tokens"] == len(expected)
    assert body["choices"][0]["finish_reason"] in ("stop", "length")
    assert not [m for m in notices_in(body) if CANNOT_SEE in m]

    # The official SDK sends it too, streamed, and each prompt of a list gets the same suffix.
    client = openai.OpenAI(base_url=fim_served.url, api_key="not-needed", max_retries=0, timeout=120)
    spy.calls.clear()
    chunks = list(
        client.completions.create(
            model="local", prompt=[BEFORE, "The gulls"], suffix=AFTER, max_tokens=3, seed=1, stream=True
        )
    )
    assert spy.calls == [expected, psm(loaded, "The gulls", AFTER)]
    said = [n["message"] for c in chunks for n in (c.model_extra or {}).get("quillmate_notices", [])]
    assert not [m for m in said if CANNOT_SEE in m]


def test_a_template_that_writes_at_the_cursor_takes_the_suffix_and_others_refuse_it(
    fim_served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = loaded_on(fim_served)
    spy = PromptSpy(monkeypatch)
    response = post(
        fim_served,
        "completions",
        {"model": "quillmate/continue", "prompt": BEFORE, "suffix": AFTER, "max_tokens": 4, "seed": 2},
    )
    assert response.status_code == 200, response.text
    assert loaded.fim is not None
    ids = spy.ids
    assert ids[0] == loaded.fim.prefix and ids[-1] == loaded.fim.middle
    assert ids[ids.index(loaded.fim.suffix) + 1 : -1] == tokens(loaded, AFTER)

    refused = post(fim_served, "completions", {"model": "quillmate/poem", "prompt": "the sea", "suffix": AFTER})
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["param"] == "suffix" and error["type"] == "invalid_request_error"
    assert "quillmate/continue" in error["message"] and "\n" not in error["message"]


def test_a_suffix_that_is_not_text_is_refused_and_a_long_one_is_cut(fim_served: Served) -> None:
    for value in (42, ["after"], {"text": "after"}):
        response = post(fim_served, "completions", {"model": "local", "prompt": BEFORE, "suffix": value})
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["param"] == "suffix" and "'suffix' must be text" in error["message"]
    absent = {"model": "local", "prompt": BEFORE, "suffix": None, "max_tokens": 1}
    assert post(fim_served, "completions", absent).is_success

    long = "The sea was grey and the rooks rose. " * 200
    parsed = parse_request({"model": "local", "prompt": BEFORE, "suffix": long}, "completion", Limits())
    assert len(parsed.suffix) <= AFTER_CURSOR_CHARS and long.startswith(parsed.suffix)
    assert parsed.suffix.endswith(" "), "it ends at a whole word, as the app's cut does"


def test_chat_completions_take_no_suffix_and_say_so(fim_served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = loaded_on(fim_served)
    spy = PromptSpy(monkeypatch)
    body = {"model": "local", "messages": [{"role": "user", "content": BEFORE}], "suffix": AFTER, "max_tokens": 2}
    response = post(fim_served, "chat/completions", body)
    assert response.status_code == 200, response.text
    assert any("Chat completions take no 'suffix'" in m for m in notices_in(response.json()))
    assert loaded.fim is not None and loaded.fim.suffix not in spy.ids


def test_a_model_without_the_tokens_writes_from_the_prompt_and_the_client_is_told(
    plain_served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = loaded_on(plain_served)
    assert loaded.fim is None
    spy = PromptSpy(monkeypatch)
    request = {"model": "local", "prompt": BEFORE, "suffix": AFTER, "max_tokens": 3, "seed": 1}
    response = post(plain_served, "completions", request)
    assert response.status_code == 200, response.text
    assert spy.ids == tokens(loaded, BEFORE)
    assert len([m for m in notices_in(response.json()) if CANNOT_SEE in m]) == 1

    with httpx.stream("POST", f"{plain_served.url}/completions", json={**request, "stream": True}, timeout=120) as sse:
        chunks = [json.loads(line[6:]) for line in sse.iter_lines() if line.startswith("data: {")]
    assert len([m for c in chunks for m in notices_in(c) if CANNOT_SEE in m]) == 1


# -- quillmate's OpenAI backend against quillmate serve ----------------------------------------------


async def test_the_openai_backend_round_trips_the_suffix_through_serve(
    fim_served: Served, plain_served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = loaded_on(fim_served)
    spy = PromptSpy(monkeypatch)
    params = GenerationParams(max_new_tokens=4, seed=5)
    request = GenerationRequest.completion(BEFORE, params, suffix=AFTER)
    backend = OpenAIBackend("srv", "local", base_url=fim_served.url, mode="completion", send_suffix=True, timeout=120)
    try:
        notices, result = await run(backend, request)
    finally:
        await backend.aclose()
    assert spy.ids == psm(loaded, BEFORE, AFTER)
    assert result.usage.completion_tokens > 0 and result.finish_reason in ("stop", "length")
    assert not [n for n in notices if CANNOT_SEE in n.message]

    # A served model that cannot use it says so once, through the server's notices.
    backend = OpenAIBackend("srv", "local", base_url=plain_served.url, mode="completion", send_suffix=True, timeout=120)
    try:
        notices, result = await run(backend, request)
    finally:
        await backend.aclose()
    assert len([n for n in notices if CANNOT_SEE in n.message]) == 1


# -- quillmate run -------------------------------------------------------------------------------------


def test_run_fills_the_gap_with_a_suffix_file_and_json_says_it_was_used(
    isolated_home: Path, fim_model_dir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    after_file = tmp_path / "after.txt"
    after_file.write_text(AFTER, encoding="utf-8")
    args = ("run", "continue", "--json", "--max-tokens", "4", "--seed", "1")
    fim_args = ("--model", str(fim_model_dir), "--suffix-file", str(after_file))
    out = quillmate(*args, *fim_args, stdin=BEFORE.encode(), home=isolated_home)
    assert out.returncode == 0, out.stderr.decode()
    record = json.loads(out.stdout.decode().splitlines()[0])
    assert record["suffix_used"] is True
    assert not [m for m in record["notices"] if CANNOT_SEE in m]
    # The model was given the continue prompt and the suffix in the fill-in-the-middle layout.
    backend = GPT2Backend("local", model=str(fim_model_dir), device="cpu")
    prepared = Assistant(backend, config=load_config()).prepare("continue", {"text": BEFORE}, suffix=AFTER)
    prompt = join_parts(prepared.request.prompt or ())
    assert record["usage"]["prompt_tokens"] == len(psm(backend._load_sync(), prompt, AFTER))

    out = quillmate(*args, "--model", str(tiny_model_dir), "--suffix", AFTER, stdin=BEFORE.encode(), home=isolated_home)
    assert out.returncode == 0, out.stderr.decode()
    record = json.loads(out.stdout.decode().splitlines()[0])
    assert record["suffix_used"] is False
    assert [m for m in record["notices"] if CANNOT_SEE in m]

    out = quillmate(*args, "--model", str(tiny_model_dir), stdin=BEFORE.encode(), home=isolated_home)
    assert out.returncode == 0 and "suffix_used" not in json.loads(out.stdout.decode().splitlines()[0])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--suffix-file", "no-such-file.txt"), "There is no file at no-such-file.txt (--suffix-file)"),
        (("--suffix", "x", "--suffix-file", "a.txt"), "with --suffix or --suffix-file"),
        (("--suffix", "x", "--session", "3f2a"), "--session adds the continuation at the end"),
    ],
)
def test_run_suffix_mistakes_are_one_line(isolated_home: Path, extra: tuple[str, ...], message: str) -> None:
    out = quillmate("run", "continue", *extra, stdin=BEFORE.encode(), home=isolated_home)
    err = out.stderr.decode()
    assert out.returncode == 2, err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert out.stdout == b""


def test_run_refuses_a_suffix_for_a_template_that_does_not_write_at_the_cursor(
    isolated_home: Path, tiny_model_dir: Path
) -> None:
    out = quillmate(
        "run", "poem", "--var", "topic=the sea", "--model", str(tiny_model_dir), "--suffix", AFTER, home=isolated_home
    )
    err = out.stderr.decode()
    assert out.returncode == 2, err
    assert "write at the cursor" in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_dry_run_shows_the_text_after_the_cursor_as_sent_or_left_out(
    isolated_home: Path, fim_model_dir: Path, tiny_model_dir: Path
) -> None:
    args = ("run", "continue", "--dry-run", "--suffix", AFTER)
    out = quillmate(*args, "--model", str(fim_model_dir), stdin=BEFORE.encode(), home=isolated_home)
    err = out.stderr.decode()
    assert out.returncode == 0 and out.stdout == b"", err
    assert "── Text after the cursor (" in err and "the model fills in the middle" in err
    assert AFTER.strip() in err

    out = quillmate(*args, "--model", str(tiny_model_dir), "--json", stdin=BEFORE.encode(), home=isolated_home)
    prompt = json.loads(out.stdout.decode())["prompt"]
    assert [p["kind"] for p in prompt["parts"]] == ["instructions", "draft"]
    assert prompt["dropped"][0]["kind"] == "after"
    assert "before the cursor only" in prompt["dropped"][0]["reason"]


def test_whether_a_model_sees_the_text_after_is_known_before_it_loads(
    fim_model_dir: Path, tiny_model_dir: Path
) -> None:
    fim = GPT2Backend("local", model=str(fim_model_dir), device="cpu")
    assert fim.capabilities.text_after and fim.loaded is None
    assert fim._load_sync().fim is not None and fim.capabilities.text_after
    plain = GPT2Backend("local", model=str(tiny_model_dir), device="cpu")
    assert not plain.capabilities.text_after
    assert OpenAIBackend(
        "srv", "m", base_url="http://127.0.0.1:9/v1", mode="completion", send_suffix=True
    ).capabilities.text_after
    assert not OpenAIBackend("srv", "m", base_url="http://127.0.0.1:9/v1", mode="completion").capabilities.text_after
