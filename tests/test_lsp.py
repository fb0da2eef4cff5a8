"""``quillmate lsp`` driven as a subprocess over stdio, with the bundled model, as an editor would.

One server is shared by the tests of this module (loading the model is the slow part); it
gets its own QUILLMATE_HOME, and each test works on its own file.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.support.lsp_client import LspClient, RpcError

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

MAX_TOKENS = 8
STORY = "The lighthouse keeper had not spoken in a year, until"


def _clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "QUILLMATE_"))}
    env.update(QUILLMATE_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1")
    return env


@pytest.fixture(scope="module")
def server_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lsp-home")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def lsp(server_home: Path) -> AsyncIterator[LspClient]:
    client = await LspClient.start(env=_clean_env(server_home))
    started = time.perf_counter()
    client.initialize_result = await client.initialize({"params": {"max_new_tokens": MAX_TOKENS}})
    client.initialize_seconds = time.perf_counter() - started
    yield client
    stderr = await client.stop()
    assert client.stray_output == [], f"something other than JSON-RPC reached stdout: {client.stray_output!r}"
    assert "Traceback" not in stderr, stderr


@pytest.fixture
def use_server_home(server_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point this test process at the server's sessions database."""
    monkeypatch.setenv("QUILLMATE_HOME", str(server_home))
    return server_home


def _open_file(lsp: LspClient, tmp_path: Path, text: str = STORY, name: str = "chapter.md") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    uri = path.as_uri()
    lsp.open(uri, text)
    return uri


def _end_of(text: str) -> dict[str, int]:
    lines = text.split("\n")
    return {"line": len(lines) - 1, "character": len(lines[-1])}


def _inline_params(uri: str, position: dict[str, int], **extension: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"textDocument": {"uri": uri}, "position": position, "context": {"triggerKind": 1}}
    if extension:
        params["quillmate"] = extension
    return params


async def test_initialize_answers_with_the_capabilities(lsp: LspClient) -> None:
    capabilities = lsp.initialize_result["capabilities"]
    assert capabilities["inlineCompletionProvider"] is not None
    assert capabilities["codeActionProvider"]
    assert set(capabilities["executeCommandProvider"]["commands"]) >= {
        "quillmate.continue",
        "quillmate.rewrite",
        "quillmate.runTemplate",
        "quillmate.switchBackend",
        "quillmate.accept",
    }
    assert capabilities["textDocumentSync"]["openClose"] is True
    assert lsp.initialize_result["serverInfo"]["name"] == "quillmate"
    # The model loads after `initialize` answers: the handshake never waits for it.
    assert lsp.initialize_seconds < 30


async def test_inline_completion_streams_growing_text_then_done(lsp: LspClient, tmp_path: Path) -> None:
    uri = _open_file(lsp, tmp_path)
    result = await lsp.request(
        "textDocument/inlineCompletion", _inline_params(uri, _end_of(STORY), n=2, streamId="ghost-1")
    )
    items = result["items"]
    assert len(items) == 2
    for item in items:
        assert item["range"] == {"start": _end_of(STORY), "end": _end_of(STORY)}
        assert isinstance(item["insertText"], str)
    assert any(item["insertText"].strip() for item in items)
    progress = [p for p in lsp.notes("quillmate/progress") if p["streamId"] == "ghost-1"]
    for index, item in enumerate(items):
        mine = [p for p in progress if p["index"] == index]
        assert mine[-1] == {"streamId": "ghost-1", "index": index, "text": item["insertText"], "done": True}
        growing = [p["text"] for p in mine if not p["done"]]
        if item["insertText"]:
            assert len(growing) >= 2, "the text should arrive in several steps"
            for before, after in itertools.pairwise(growing):
                assert after.startswith(before) and len(after) > len(before)


async def test_inline_completion_without_stream_id_sends_no_progress(lsp: LspClient, tmp_path: Path) -> None:
    uri = _open_file(lsp, tmp_path)
    seen = len(lsp.notes("quillmate/progress"))
    result = await lsp.request("textDocument/inlineCompletion", _inline_params(uri, _end_of(STORY)))
    assert len(result["items"]) == 1
    assert len(lsp.notes("quillmate/progress")) == seen


async def test_cancel_request_stops_the_model_within_250_ms(lsp: LspClient, tmp_path: Path) -> None:
    uri = _open_file(lsp, tmp_path)
    msg_id, answer = lsp.send_request(
        "textDocument/inlineCompletion", _inline_params(uri, _end_of(STORY), streamId="doomed", maxNewTokens=400)
    )
    await lsp.wait_for(lambda: [p for p in lsp.notes("quillmate/progress") if p["streamId"] == "doomed"], 120)
    cancelled_at = time.perf_counter()
    lsp.notify("$/cancelRequest", {"id": msg_id})
    with pytest.raises(RpcError) as caught:
        await answer
    elapsed = time.perf_counter() - cancelled_at
    assert caught.value.code == -32800
    assert elapsed < 0.25, f"cancellation took {elapsed * 1000:.0f} ms"
    # The model stopped: no more text for that stream, and the next request is served at once.
    sent = len([p for p in lsp.notes("quillmate/progress") if p["streamId"] == "doomed"])
    result = await lsp.request("textDocument/inlineCompletion", _inline_params(uri, _end_of(STORY)), timeout=60)
    assert len(result["items"]) == 1
    assert len([p for p in lsp.notes("quillmate/progress") if p["streamId"] == "doomed"]) == sent
    assert not any(p["done"] for p in lsp.notes("quillmate/progress") if p["streamId"] == "doomed")


async def test_code_actions_offer_continue_rewrites_and_templates(lsp: LspClient, tmp_path: Path) -> None:
    uri = _open_file(lsp, tmp_path)
    selection = {"start": {"line": 0, "character": 4}, "end": {"line": 0, "character": 21}}
    found = await lsp.request(
        "textDocument/codeAction", {"textDocument": {"uri": uri}, "range": selection, "context": {"diagnostics": []}}
    )
    titles = [a["title"] for a in found]
    assert "quillmate: continue here" in titles
    assert "quillmate: rewrite more vivid" in titles
    assert "quillmate: rewrite in the present tense" in titles
    assert any(t.startswith("quillmate: add poem") for t in titles)
    vivid = next(a for a in found if a["title"] == "quillmate: rewrite more vivid")
    assert vivid["command"] == {
        "title": vivid["title"],
        "command": "quillmate.rewrite",
        "arguments": [uri, selection, "vivid"],
    }
    at_cursor = await lsp.request(
        "textDocument/codeAction",
        {
            "textDocument": {"uri": uri},
            "range": {"start": _end_of(STORY), "end": _end_of(STORY)},
            "context": {"diagnostics": []},
        },
    )
    assert [a["command"]["command"] for a in at_cursor] == ["quillmate.continue"]


async def test_rewrite_command_applies_its_edit_through_the_editor(
    lsp: LspClient, tmp_path: Path, use_server_home: Path
) -> None:
    uri = _open_file(lsp, tmp_path)
    selection = {"start": {"line": 0, "character": 0}, "end": _end_of(STORY)}
    before = len(lsp.applied_edits)
    reply = await lsp.execute("quillmate.rewrite", uri, selection, "vivid")
    assert len(lsp.applied_edits) == before + 1
    edit = lsp.applied_edits[-1]["edit"]["changes"][uri]
    assert edit == [{"range": selection, "newText": reply["newText"]}]
    assert reply["newText"].strip()
    # The editor applies it and reports the change; the session records the rewrite as the model's.
    lsp.change(uri, reply["newText"], 2)
    provenance = await lsp.request("quillmate/provenance", {"textDocument": {"uri": uri}})
    assert provenance["sessionId"]
    assert "".join(s["text"] for s in provenance["spans"] if s["author"] == "model") == reply["newText"]


async def test_rewrite_request_previews_without_editing(lsp: LspClient, tmp_path: Path) -> None:
    uri = _open_file(lsp, tmp_path)
    selection = {"start": {"line": 0, "character": 0}, "end": _end_of(STORY)}
    before = len(lsp.applied_edits)
    reply = await lsp.request(
        "quillmate/rewrite",
        {"textDocument": {"uri": uri}, "range": selection, "instruction": "as if told by the sea", "streamId": "rw"},
    )
    assert reply["newText"].strip()
    assert reply["edit"] == {"changes": {uri: [{"range": selection, "newText": reply["newText"]}]}}
    assert len(lsp.applied_edits) == before
    assert [p for p in lsp.notes("quillmate/progress") if p["streamId"] == "rw"][-1]["done"] is True


async def test_accept_records_model_text_in_the_files_session(
    lsp: LspClient, tmp_path: Path, use_server_home: Path
) -> None:
    from assistant.sessions import SessionStore

    uri = _open_file(lsp, tmp_path)
    result = await lsp.request("textDocument/inlineCompletion", _inline_params(uri, _end_of(STORY), n=2))
    chosen = next(item["insertText"] for item in reversed(result["items"]) if item["insertText"].strip())
    words = chosen.split(" ")
    part = " ".join(words[:2]) if chosen.startswith(" ") else words[0]  # accept just a word, as a plugin may
    lsp.change(uri, STORY + part + " and then I wrote this", 2)
    reply = await lsp.execute("quillmate.accept", {"uri": uri, "text": part, "position": _end_of(STORY)})
    assert reply["recorded"] is True
    with SessionStore() as store:
        session = store.open_for_file(tmp_path / "chapter.md", read_only=True)
        try:
            assert session.id == reply["sessionId"]
            assert session.document.text == STORY + part + " and then I wrote this"
            model = [s for s in session.document.spans() if s.author == "model"]
            assert [session.document.text[s.start : s.end] for s in model] == [part]
            event = session.event(model[0].generation_id)
            assert event.template == "continue" and event.status == "accepted"
            assert chosen in event.alternatives
            assert event.position == len(STORY)  # offered at the end of the story: its point's history
            assert event.id in [e.id for e in session.events_at(len(STORY))]
        finally:
            session.close()
    provenance = await lsp.request("quillmate/provenance", {"textDocument": {"uri": uri}})
    assert provenance == {
        "sessionId": reply["sessionId"],
        "spans": [
            {"author": "writer", "text": STORY},
            {"author": "model", "text": part},
            {"author": "writer", "text": " and then I wrote this"},
        ],
    }
    info = await lsp.request("quillmate/contextInfo", {"textDocument": {"uri": uri}})
    assert info["sessionId"] == reply["sessionId"] and info["backend"] == "local" and info["contextWindow"] > 0


async def test_ghost_text_sends_the_sessions_bible_and_records_what_was_sent(
    lsp: LspClient, tmp_path: Path, use_server_home: Path
) -> None:
    import subprocess
    import sys

    from assistant.bible import Bible, Entry
    from assistant.sessions import SessionStore

    keeper = "Mara keeps the lamp; she has not spoken since the wreck."
    path = tmp_path / "bible.md"
    path.write_text(STORY, encoding="utf-8")
    with SessionStore() as store:
        session = store.open_for_file(path)  # as `quillmate write bible.md` would, then the Bible tab
        session.bible = Bible(
            memory="A quiet ghost story.",
            entries=(
                Entry(name="Mara", keys=("keeper",), content=keeper),
                Entry(name="The Gull", keys=("tavern",), content="The Gull is the harbour tavern."),
            ),
        )
        session.close()
    uri = path.as_uri()
    lsp.open(uri, STORY)
    result = await lsp.request("textDocument/inlineCompletion", _inline_params(uri, _end_of(STORY)))
    chosen = result["items"][0]["insertText"]
    assert chosen.strip(), "the bundled model should write something"
    lsp.change(uri, STORY + chosen, 2)
    reply = await lsp.execute("quillmate.accept", {"uri": uri, "text": chosen, "position": _end_of(STORY)})
    assert reply["recorded"] is True
    with SessionStore() as store:
        session = store.open_for_file(path, read_only=True)
        try:
            event = next(e for e in reversed(session.events) if e.status == "accepted")
        finally:
            session.close()
    shown = subprocess.run(
        [sys.executable, "-m", "assistant", "sessions", "show", reply["sessionId"], "--prompt", str(event.id)],
        capture_output=True,
        text=True,
        timeout=60,
        env=_clean_env(use_server_home),
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert "Entry: Mara (" in shown.stdout and keeper in shown.stdout  # the keeper's key is in the draft
    assert "A quiet ghost story." in shown.stdout
    assert "The Gull" not in shown.stdout  # no key of it near the cursor: not sent


async def test_accept_while_the_writing_app_holds_the_session_warns(
    lsp: LspClient, tmp_path: Path, use_server_home: Path
) -> None:
    from assistant.sessions import SessionStore

    with SessionStore() as store:
        path = tmp_path / "held.md"
        path.write_text(STORY, encoding="utf-8")
        held = store.open_for_file(path)  # as `quillmate write held.md` would
        try:
            uri = path.as_uri()
            lsp.open(uri, STORY)
            lsp.change(uri, STORY + " the bell rang", 2)
            shown = len(lsp.notes("window/showMessage"))
            reply = await lsp.execute(
                "quillmate.accept", {"uri": uri, "text": " the bell rang", "position": _end_of(STORY)}
            )
            assert reply == {"recorded": False, "sessionId": held.id}
            warning = lsp.notes("window/showMessage")[shown]
            assert warning["type"] == 2 and "open in another quillmate" in warning["message"]
            assert held.document.text == STORY  # the app's session was left alone
        finally:
            held.close()


async def test_run_template_inserts_after_the_selection(lsp: LspClient, tmp_path: Path) -> None:
    uri = _open_file(lsp, tmp_path, "the first snow")
    selection = {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 14}}
    reply = await lsp.request(
        "quillmate/runTemplate",
        {"template": "poem", "variables": {"form": "haiku"}, "textDocument": {"uri": uri}, "range": selection},
    )
    assert reply["output"] == "insert" and reply["text"].strip()
    change = reply["edit"]["changes"][uri][0]
    assert change["range"] == {"start": selection["end"], "end": selection["end"]}
    assert change["newText"] == f"\n\n{reply['text']}\n"
    templates = await lsp.request("quillmate/templates", {})
    by_name = {t["name"]: t for t in templates}
    assert by_name["rewrite"] == {
        "name": "rewrite",
        "description": by_name["rewrite"]["description"],
        "takesSelection": True,
        "output": "edit",
    }
    assert by_name["poem"]["output"] == "insert"


async def test_unknown_template_comes_back_as_show_message_and_error(lsp: LspClient) -> None:
    shown = len(lsp.notes("window/showMessage"))
    with pytest.raises(RpcError) as caught:
        await lsp.request("quillmate/runTemplate", {"template": "sonnett", "variables": {}})
    assert caught.value.message.startswith("quillmate: Unknown template 'sonnett'.")
    assert "\n" not in caught.value.message
    message = lsp.notes("window/showMessage")[shown]
    assert message == {"type": 1, "message": caught.value.message}


async def test_unknown_backend_is_reported_and_the_old_one_kept(lsp: LspClient) -> None:
    with pytest.raises(RpcError) as caught:
        await lsp.execute("quillmate.switchBackend", "nowhere")
    assert caught.value.message.startswith("quillmate: Unknown backend 'nowhere'.")
    info = await lsp.request("quillmate/contextInfo", {})
    assert info["backend"] == "local" and info["sessionId"] is None


async def test_word_alternatives_and_regenerating_from_a_chosen_word(lsp: LspClient, tmp_path: Path) -> None:
    uri = _open_file(lsp, tmp_path, name="alternatives.md")
    items = (await lsp.request("textDocument/inlineCompletion", _inline_params(uri, _end_of(STORY), n=1)))["items"]
    ghost = items[0]["insertText"]
    assert ghost.strip()
    offset = len(ghost) - len(ghost.lstrip()) + 1  # inside the first word
    where = {"textDocument": {"uri": uri}, "position": _end_of(STORY), "text": ghost, "offset": offset}
    here = await lsp.request("quillmate/alternatives", where)
    assert here["text"] == ghost and here["start"] <= offset < here["end"]
    assert ghost[here["start"] : here["end"]] == here["word"]
    options = here["alternatives"]
    assert len(options) == 5 and all(0 <= o["probability"] <= 1 for o in options)
    assert [o["probability"] for o in options] == sorted((o["probability"] for o in options), reverse=True)
    choice = next(o["text"] for o in options if o["text"] != here["word"] and o["text"].strip())
    again = await lsp.request("quillmate/regenerateFrom", {**where, "choice": choice})
    assert again["text"].startswith(ghost[: here["start"]] + choice) and again["start"] == here["start"]
    assert "edit" not in again  # ghost text: the plugin shows the new suggestion itself

    # The writer accepts the new suggestion: its words are found in the document by position.
    lsp.change(uri, STORY + again["text"], 2)
    await lsp.execute("quillmate.accept", {"uri": uri, "text": again["text"], "position": _end_of(STORY)})
    end = _end_of(STORY)
    inside = {"line": end["line"], "character": end["character"] + here["start"] + 1}
    at = await lsp.request("quillmate/alternatives", {"textDocument": {"uri": uri}, "position": inside})
    assert at["word"] == choice and at["range"]["start"]["character"] == end["character"] + here["start"]
    redo = await lsp.request(
        "quillmate/regenerateFrom", {"textDocument": {"uri": uri}, "position": inside, "choice": options[0]["text"]}
    )
    change = redo["edit"]["changes"][uri][0]
    assert change["range"]["start"] == at["range"]["start"]
    assert change["newText"] == redo["text"][redo["start"] :] and change["newText"].startswith(options[0]["text"])
    with pytest.raises(RpcError) as caught:
        await lsp.request(
            "quillmate/alternatives", {"textDocument": {"uri": uri}, "position": {"line": 0, "character": 1}}
        )
    assert "no text from a suggestion" in str(caught.value)
