"""The writing app's first frame: the draft, ready to type in, before the rest of the app is loaded.

Run as ``quillmate write FILE`` runs it, in a fresh process (a test process has long imported
everything): what has been imported when the first frame is drawn, what the writer can do then,
and what is there a moment later.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import asyncio, json, os, sys
from pathlib import Path

from textual import events

from tui.app import make_app

HEAVY = ("tui.widgets.panels", "assistant.bible", "assistant.core", "pydantic", "backends.gpt2", "torch")
story = Path(sys.argv[1]) / "story.md"
story.write_text("# The Lighthouse\n\nMara climbed.", encoding="utf-8")
app = make_app(story)
out = {}


async def later():
    await asyncio.wait_for(app.started.wait(), 60)
    out["side_after"] = bool(app.query("#side")) and app.side.tabs.active == "results"
    out["place_after"] = bool(app.query("#side-place"))
    out["continue_after"] = app.check_action("continue", ())
    out["draft"] = app.session.document.text
    out["loading"] = any(w.group == "load" for w in app.workers)
    print(json.dumps(out), flush=True)
    app.finish()
    os._exit(0)


def first_frame():
    out["heavy"] = [name for name in HEAVY if name in sys.modules]
    out["focused"] = app.editor.has_focus
    out["side"] = bool(app.query("#side"))
    out["place"] = app.query_one("#side-place").display
    out["continue"] = app.check_action("continue", ())
    out["save"] = app.check_action("save", ())
    out["palette"] = app.check_action("command_palette", ())
    for key in "abc":
        app.post_message(events.Key(key, key))
    asyncio.get_running_loop().create_task(later())


app.on_first_frame = first_frame
app.run(headless=True, size=(100, 30))
"""


def test_the_first_frame_is_the_draft_and_the_side_panel_follows(tmp_path: Path) -> None:
    env = dict(
        os.environ,
        QUILLMATE_HOME=str(tmp_path),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PYTHONPATH=str(REPO_ROOT),
    )
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path)], capture_output=True, text=True, env=env, timeout=180
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    seen = json.loads(lines[-1])
    # The first frame: the draft has the focus; the tabs' code, the bible's model, the core and
    # the model's libraries are not loaded yet, and the panel's room is kept for it.
    assert seen["heavy"] == []
    assert seen["focused"] is True
    assert seen["side"] is False and seen["place"] is True
    assert seen["continue"] is None, "the draft's other keys wait (shown) until the side panel is up"
    assert seen["palette"] is None, "the palette's commands reach the side panel"
    assert seen["save"] is True
    # A moment later: the panel has taken its room, the keys typed meanwhile are in the draft,
    # every key works, and the model has begun to load.
    assert seen["side_after"] is True and seen["place_after"] is False
    assert seen["draft"] == "# The Lighthouse\n\nMara climbed.abc"
    assert seen["continue_after"] is True
    assert seen["loading"] is True
