#!/usr/bin/env python3
"""How quickly the writing app is ready, and how quickly typing shows while the model writes.

Usage::

    python bench/tui_latency.py [--runs 5] [--keys 40] [--model bundled|scripted|none]

1. **Start-up**: from launching a fresh Python process (as ``quillmate write FILE`` does, with
   the real config, session store and default backend) to the first frame drawn with the
   editor focused, i.e. when the writer can type. The model keeps loading in the background.
   Also the processor time the process had used by then: on a busy machine the wall time
   grows with the load, the processor time hardly (it is what an idle machine would take).
2. **Typing while the model loads**: in a fresh process (torch not yet imported), the writer
   types from the first frame until the model is ready; key event to the editor drawing it.
   The same typing once the model is loaded is the baseline, measured in the same process.
3. **Typing while streaming**: with a continuation streaming in as ghost text, the time from
   a key event reaching the app to the editor drawing a line that contains the new character.
   Measured with a fast synthetic stream (about 500 chunks/s, faster than any local model)
   and, with ``--model bundled``, the bundled GPT-2 streaming for real.

Every figure is the median of its runs (with the 90th and 95th percentiles for keystrokes), and
the load average from ``uptime`` is printed with them: the machine may be shared. The app
runs headless (Textual renders every frame; the output is discarded).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

DRAFT = (
    "# The Lighthouse\n\n"
    + "Mara climbed the iron stairs for the last time that winter. The lamp above her hummed. " * 12
    + "\n\nShe set her lantern down on the landing and listened."
)


# ------------------------------------------------------------------------------ start-up


def _child_startup(started: float, home: str) -> None:
    """Run in a fresh process: build the app the way the CLI does; print seconds to the first frame."""
    os.environ["QUILLMATE_HOME"] = home
    from tui.app import make_app

    story = Path(home) / "story.md"
    story.write_text(DRAFT, encoding="utf-8")
    app = make_app(story)

    def first_frame() -> None:
        ready = app.editor.has_focus
        cpu = sum(os.times()[:2])
        print(f"{time.time() - started:.4f} {int(ready)} {cpu:.4f}", flush=True)
        app.finish()
        os._exit(0)  # do not wait for the model still loading in the background

    app.on_first_frame = first_frame
    app.run(headless=True, size=(100, 30))


CPU_TIMES: list[float] = []
"""The processor seconds of each start-up run of :func:`measure_startup` (user and system)."""


def measure_startup(runs: int) -> list[float]:
    """Seconds from process launch to a typable first frame, one per run (processor seconds in ``CPU_TIMES``)."""
    times = []
    CPU_TIMES.clear()
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(REPO_ROOT))
        for _ in range(runs):
            started = time.time()
            out = subprocess.run(
                [sys.executable, __file__, "--child-startup", repr(started), home],
                capture_output=True,
                text=True,
                env=env,
                timeout=120,
                check=True,
            ).stdout.split()
            if out[1] != "1":
                raise SystemExit("The editor did not have focus at the first frame.")
            times.append(float(out[0]))
            CPU_TIMES.append(float(out[2]))
    return times


# ------------------------------------------------------------------ typing while the model loads


async def _type_and_time(
    app: Any, keys: int, until: Any, every: float = 0.04, burst: int = 40, rest: float = 1.5
) -> list[float]:
    """Type x's on the title line on a fixed beat, as a terminal would, until ``until()``.

    A writer types in bursts: ``burst`` keys ``every`` seconds apart, then ``rest`` seconds of thought.

    Returns, for each key, the time from its beat to the first frame drawn with it in the draft.
    The keys come from a thread (as a terminal driver's do) on a fixed schedule, so a key that
    could not even be read on time, because the process was busy, counts its whole wait.
    """
    import threading

    from textual import events

    editor = app.editor
    title = "# The Lighthouse"
    renders: list[tuple[float, int]] = []  # (when, x's in the draft's first line as it was drawn)
    original = editor.render_line

    def render_line(y: int) -> Any:
        renders.append((time.perf_counter(), len(editor.document.get_line(0)) - len(title)))
        return original(y)

    editor.move_cursor((0, len(title)))
    base = len(editor.document.get_line(0)) - len(title)
    editor.render_line = render_line  # type: ignore[method-assign]
    beats: list[float] = []
    stop = threading.Event()

    def typist() -> None:
        start = time.perf_counter() + every
        for i in range(keys):
            beat = start + i * every + (i // burst) * rest
            pause = beat - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            if stop.is_set():
                return
            beats.append(beat)
            app._driver.send_message(events.Key("x", "x"))

    thread = threading.Thread(target=typist, daemon=True)
    thread.start()
    try:
        while thread.is_alive() and not until():
            await asyncio.sleep(0.01)
        stop.set()
        thread.join()
        deadline = time.perf_counter() + 5
        while time.perf_counter() < deadline and max((n for _, n in renders), default=0) - base < len(beats):
            await asyncio.sleep(0.01)
    finally:
        editor.render_line = original  # type: ignore[method-assign]
    delays = []
    for i, beat in enumerate(beats, start=1):
        shown = next((t for t, n in renders if n - base >= i and t >= beat), None)
        delays.append((shown if shown is not None else time.perf_counter()) - beat)
    return delays


def _child_loading(started: float, home: str, keys: int, mode: str) -> None:
    """Run in a fresh process: start as ``quillmate write`` does and type until the model is ready.

    ``mode``: ``paced`` (the app as it is), ``unpaced`` (the loading not held while the writer
    types: how it was), or ``none`` (no model loaded, ``keys`` keys typed: the baseline).
    """
    import json

    os.environ["QUILLMATE_HOME"] = home
    from tui.app import make_app

    story = Path(home) / "story.md"
    story.write_text(DRAFT, encoding="utf-8")
    load = mode != "none"
    app = make_app(story, load_backend=load)
    if mode == "unpaced":
        app.backends.pacer.quiet = 0.0
    result: dict[str, Any] = {}

    async def measure() -> None:
        result["delays"] = await _type_and_time(app, 100_000 if load else keys, lambda: load and app.backend_ready)
        result["ready_after"] = time.time() - started
        print(json.dumps(result), flush=True)
        app.finish()
        os._exit(0)

    def first_frame() -> None:
        result["first_frame"] = time.time() - started
        asyncio.get_running_loop().create_task(measure())

    app.on_first_frame = first_frame
    app.run(headless=True, size=(100, 30))


def measure_loading(runs: int, keys: int, mode: str) -> list[dict[str, Any]]:
    """One dict per fresh process: first frame, key delays while loading (or without a model)."""
    import json

    out = []
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(REPO_ROOT))
        for _ in range(runs):
            started = time.time()
            done = subprocess.run(
                [sys.executable, __file__, "--child-loading", repr(started), home, str(keys), mode],
                capture_output=True,
                text=True,
                env=env,
                timeout=300,
            )
            lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
            if done.returncode != 0 or not lines:
                raise SystemExit(f"The loading run failed:\n{done.stderr[-2000:]}")
            out.append(json.loads(lines[-1]))
    return out


# ------------------------------------------------------------------- typing while streaming


async def measure_typing(keys: int, model: str) -> tuple[list[float], float]:
    """Key-to-screen delays (seconds) while a continuation streams; also the stream's chunks/s."""
    from textual import events

    from assistant.config import load_config
    from assistant.core import Assistant
    from assistant.sessions import SessionStore
    from tui.app import make_app

    if model == "scripted":
        from tests.support.scripted_backend import ScriptedBackend

        backend: Any = ScriptedBackend("local")
        backend.enqueue(*([" word"] * 20000), delay=0.002)
    else:
        from backends.gpt2 import GPT2Backend

        backend = GPT2Backend("local", model=model)
    folder = tempfile.mkdtemp()
    store = SessionStore(Path(folder) / "sessions.db")
    session = store.create(text=DRAFT)
    session.update_settings(params={"max_new_tokens": 400, "seed": 1})
    app = make_app(session=session, store=store, assistant=Assistant(backend, config=load_config()))
    drawn: dict[int, float] = {}  # number of typed x's on the first line -> when it was first drawn
    delays: list[float] = []
    async with app.run_test(size=(120, 30)) as pilot:  # the side panel open beside the draft
        editor = app.editor
        original = editor.render_line

        def render_line(y: int) -> Any:
            strip = original(y)
            text = strip.text.strip()
            if y == 0 and text.startswith("# The Lighthouse"):
                drawn.setdefault(len(text) - len("# The Lighthouse"), time.perf_counter())
            return strip

        editor.render_line = render_line  # type: ignore[method-assign]
        deadline = time.monotonic() + 180
        while not app.backend_ready and time.monotonic() < deadline:
            await pilot.pause(0.05)
        await pilot.press("f5")
        pressed = time.monotonic()
        while not (editor.ghost and len(editor.ghost.text) > 20) and time.monotonic() < deadline:
            if not app.generating and time.monotonic() - pressed > 2:
                break
            await pilot.pause(0.01)
        if not app.generating:
            raise SystemExit(f"{model}: the continuation ended before typing could be measured.")
        editor.move_cursor((0, len("# The Lighthouse")))
        driver = app._driver
        stream_start = app.generation.streamed_tokens
        t_stream = time.perf_counter()
        for i in range(1, keys + 1):
            if not app.generating:
                break
            key = events.Key("x", "x")
            key.set_sender(app)
            sent = time.perf_counter()
            driver.send_message(key)
            deadline = sent + 2.0
            while max(drawn, default=0) < i and time.perf_counter() < deadline:
                await asyncio.sleep(0.0005)
            shown = [t for count, t in drawn.items() if count >= i]
            if shown:  # the first frame showing this key (it may show the next one too)
                delays.append(min(shown) - sent)
            await asyncio.sleep(0.03)  # a brisk typist: about 30 keys a second
        rate = (app.generation.streamed_tokens - stream_start) / (time.perf_counter() - t_stream)
        app.generation.stop()
        while backend_active(app):
            await pilot.pause(0.01)
    app.finish()
    store.close()
    return delays, rate


def backend_active(app: Any) -> bool:
    """True while a generation worker is still winding down."""
    return any(w.group == "generation" and w.is_running for w in app.workers)


def _summary(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p90 = ms[min(len(ms) - 1, round(0.9 * (len(ms) - 1)))]
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return (
        f"median {statistics.median(ms):.1f} ms, p90 {p90:.1f} ms, p95 {p95:.1f} ms, max {ms[-1]:.1f} ms (n={len(ms)})"
    )


def _load_average() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "uptime unavailable"


def main() -> None:
    """Measure and print the figures."""
    if len(sys.argv) > 1 and sys.argv[1] == "--child-startup":
        _child_startup(float(sys.argv[2]), sys.argv[3])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--child-loading":
        _child_loading(float(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="start-up runs")
    parser.add_argument("--keys", type=int, default=40, help="keystrokes per streaming measurement")
    parser.add_argument("--model", default="bundled", help="also stream from this model ('none' to skip)")
    parser.add_argument("--load-runs", type=int, default=3, help="runs typing while the model loads (0 to skip)")
    parser.add_argument("--only-loading", action="store_true", help="measure only start-up and typing while loading")
    args = parser.parse_args()

    print(f"load: {_load_average()}")
    startup = measure_startup(args.runs)
    print(
        f"start-up to a typable first frame: median {statistics.median(startup) * 1000:.0f} ms "
        f"(runs: {', '.join(f'{t * 1000:.0f}' for t in startup)} ms); "
        f"processor time by then: median {statistics.median(CPU_TIMES) * 1000:.0f} ms"
    )
    if args.load_runs > 0:
        whats = {
            "none": "with no model loading (baseline)",
            "unpaced": "while the model loads, not held while typing (as before)",
            "paced": "while the model loads (quillmate as it is)",
        }
        for mode, what in whats.items():
            runs = measure_loading(args.load_runs, 150, mode)
            frames = ", ".join(f"{r['first_frame'] * 1000:.0f}" for r in runs)
            ready = ", ".join(f"{r['ready_after']:.1f}" for r in runs)
            print(f"{what}: first typable frame {frames} ms; typing ended after {ready} s")
            print(f"  keystroke to screen {what}: {_summary([d for r in runs for d in r['delays']])}")
        print(f"load: {_load_average()}")
    if args.only_loading:
        return
    delays, rate = asyncio.run(measure_typing(args.keys, "scripted"))
    print(f"keystroke to screen while a synthetic stream runs at {rate:.0f} chunks/s: {_summary(delays)}")
    if args.model not in ("none", "scripted"):
        delays, rate = asyncio.run(measure_typing(args.keys, args.model))
        print(f"keystroke to screen while {args.model} streams at {rate:.0f} tokens/s: {_summary(delays)}")


if __name__ == "__main__":
    main()
