"""``quillmate lsp`` sends the text after the cursor with a continuation (as a subprocess over stdio).

One server runs a model that fills in the middle (a copy of the bundled model with the FIM
tokens added), one a tiny GPT-2 that cannot; each gets its own QUILLMATE_HOME.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from assistant.core import Assistant
from assistant.cursor import AFTER_CURSOR_CHARS
from assistant.lsp.engine import Engine
from tests.support.lsp_client import LspClient
from tests.support.scripted_backend import ScriptedBackend

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

BEFORE = "The lighthouse keeper had not spoken in a year,"
AFTER = " and the gulls had stopped waiting for him."
CURSOR = {"line": 0, "character": len(BEFORE)}
CANNOT_SEE = "cannot see the text after the cursor"


async def _server(home: Path, model: Path) -> LspClient:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "QUILLMATE_"))}
    env.update(QUILLMATE_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1")
    client = await LspClient.start(env=env)
    await client.initialize({"model": str(model), "params": {"max_new_tokens": 6, "seed": 4}})
    return client


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fim_lsp(tmp_path_factory: pytest.TempPathFactory, fim_model_dir: Path) -> AsyncIterator[LspClient]:
    client = await _server(tmp_path_factory.mktemp("lsp-fim-home"), fim_model_dir)
    yield client
    stderr = await client.stop()
    assert "Traceback" not in stderr, stderr


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def plain_lsp(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> AsyncIterator[LspClient]:
    client = await _server(tmp_path_factory.mktemp("lsp-plain-home"), tiny_model_dir)
    yield client
    stderr = await client.stop()
    assert "Traceback" not in stderr, stderr


def _open(lsp: LspClient, tmp_path: Path, name: str, text: str = BEFORE + AFTER) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    lsp.open(path.as_uri(), text)
    return path.as_uri()


def _inline(uri: str, position: dict[str, int]) -> dict[str, Any]:
    return {"textDocument": {"uri": uri}, "position": position, "context": {"triggerKind": 1}}


def _said_cannot_see(lsp: LspClient) -> list[str]:
    return [n["message"] for n in lsp.notes("window/logMessage") if CANNOT_SEE in n["message"]]


async def test_ghost_text_from_a_fim_model_comes_back_at_the_cursor(fim_lsp: LspClient, tmp_path: Path) -> None:
    uri = _open(fim_lsp, tmp_path, "gulls.md")
    result = await fim_lsp.request("textDocument/inlineCompletion", _inline(uri, CURSOR))
    [item] = result["items"]
    assert item["range"] == {"start": CURSOR, "end": CURSOR}
    assert item["insertText"]
    assert _said_cannot_see(fim_lsp) == [], "the model read the text after the cursor"


async def test_the_continue_command_inserts_the_middle_at_the_cursor(fim_lsp: LspClient, tmp_path: Path) -> None:
    uri = _open(fim_lsp, tmp_path, "keeper.md")
    reply = await fim_lsp.execute("quillmate.continue", uri, CURSOR)
    edit = fim_lsp.applied_edits[-1]["edit"]["changes"][uri]
    assert edit == [{"range": {"start": CURSOR, "end": CURSOR}, "newText": reply["text"]}]
    assert reply["text"]
    assert _said_cannot_see(fim_lsp) == []


async def test_a_model_that_cannot_see_after_the_cursor_says_so_once_per_request(
    plain_lsp: LspClient, tmp_path: Path
) -> None:
    uri = _open(plain_lsp, tmp_path, "plain.md")
    end = {"line": 0, "character": len(BEFORE + AFTER)}
    await plain_lsp.request("textDocument/inlineCompletion", _inline(uri, end))
    assert _said_cannot_see(plain_lsp) == [], "nothing after the cursor: nothing to say"
    result = await plain_lsp.request("textDocument/inlineCompletion", _inline(uri, CURSOR))
    assert len(result["items"]) == 1
    said = await plain_lsp.wait_for(lambda: _said_cannot_see(plain_lsp))
    assert len(said) == 1 and "\n" not in said[0]


async def test_the_engine_passes_a_bounded_piece_of_the_text_after() -> None:
    engine = Engine(make_assistant=lambda backend, model: Assistant(ScriptedBackend("local")))
    helper = await engine.assistant()
    prepared = engine.prepare_continue(helper, BEFORE, after=AFTER)
    assert prepared.request.suffix == AFTER
    assert engine.prepare_continue(helper, BEFORE).request.suffix == ""
    long_after = " gull" * AFTER_CURSOR_CHARS
    from assistant.cursor import text_after_cursor

    bounded = text_after_cursor(BEFORE + long_after, len(BEFORE))
    assert long_after.startswith(bounded) and len(bounded) <= AFTER_CURSOR_CHARS and bounded.endswith("gull ")
