"""How fast does ghost text appear through a warm ``quillmate lsp``, against a cold ``quillmate run continue``?

For each model, measures (medians over ``--repeats`` runs):
  * warm LSP: from sending ``textDocument/inlineCompletion`` to the first ``quillmate/progress``
    with text (the first ghost characters), and to the response (the whole suggestion);
  * cold filter: ``echo TEXT | quillmate run continue`` from starting the process to its first
    byte on stdout, and to its exit (what an editor pays per request without a server).

    python bench/lsp_ghost_latency.py [--new-tokens 24] [--repeats 5] [--small]

``--small`` adds a GPT-2-small-shaped random-weight model (built as in
bench/gpt2_streaming_overhead.py; needs the shared corpus). Goal: first ghost text within
150 ms on the bundled model with a warm server. Not a test: read the medians and ratios.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.lsp_client import LspClient  # noqa: E402

TEXT = "The lighthouse keeper had not spoken in a year, until the night the lamp went out and"


async def warm_lsp(model: str, new_tokens: int, repeats: int) -> tuple[list[float], list[float], float]:
    """(first-ghost seconds, whole-suggestion seconds, initialize seconds) through one warm server."""
    client = await LspClient.start("--model", model)
    started = time.perf_counter()
    await client.initialize({"params": {"max_new_tokens": new_tokens, "seed": 1}})
    init = time.perf_counter() - started
    uri = Path(tempfile.gettempdir(), "quillmate-bench-ghost.md").as_uri()
    client.open(uri, TEXT)
    position = {"line": 0, "character": len(TEXT)}
    firsts: list[float] = []
    wholes: list[float] = []
    try:
        for run in range(repeats + 1):  # the first run waits for the model to load: not counted
            stream = f"bench-{run}"
            started = time.perf_counter()
            _, answer = client.send_request(
                "textDocument/inlineCompletion",
                {
                    "textDocument": {"uri": uri},
                    "position": position,
                    "context": {"triggerKind": 2},
                    "quillmate": {"streamId": stream},
                },
            )
            await client.wait_for(
                lambda s=stream: [p for p in client.notes("quillmate/progress") if p["streamId"] == s and p["text"]],
                600,
            )
            first = time.perf_counter() - started
            await answer
            whole = time.perf_counter() - started
            if run:
                firsts.append(first)
                wholes.append(whole)
    finally:
        await client.stop()
    return firsts, wholes, init


def cold_run(model: str, new_tokens: int, repeats: int) -> tuple[list[float], list[float]]:
    """(first-byte seconds, total seconds) of ``quillmate run continue`` started afresh each time."""
    firsts: list[float] = []
    totals: list[float] = []
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for _ in range(repeats):
        started = time.perf_counter()
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "assistant",
                "run",
                "continue",
                "--model",
                model,
                "--max-tokens",
                str(new_tokens),
                "--seed",
                "1",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=ROOT,
            env=env,
        )
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(TEXT.encode())
        process.stdin.close()
        process.stdout.read(1)
        firsts.append(time.perf_counter() - started)
        process.stdout.read()
        process.wait()
        totals.append(time.perf_counter() - started)
    return firsts, totals


def report(name: str, model: str, new_tokens: int, repeats: int) -> None:
    ghost, whole, init = asyncio.run(warm_lsp(model, new_tokens, repeats))
    cold_first, cold_total = cold_run(model, new_tokens, repeats)
    med = statistics.median
    print(f"{name}: {new_tokens} new tokens, median of {repeats}")
    print(
        f"  warm lsp      first ghost {med(ghost) * 1000:8.1f} ms   whole suggestion {med(whole) * 1000:8.1f} ms"
        f"   (initialize answered in {init * 1000:.0f} ms)"
    )
    print(
        f"  cold `run`    first byte  {med(cold_first) * 1000:8.1f} ms   whole run        "
        f"{med(cold_total) * 1000:8.1f} ms"
    )
    print(
        f"  cold / warm   first text  {med(cold_first) / med(ghost):8.1f}x     whole            "
        f"{med(cold_total) / med(whole):8.1f}x"
    )
    verdict = "met" if med(ghost) <= 0.150 else "missed"
    print(f"  goal: first ghost text within 150 ms: {verdict}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--new-tokens", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--small", action="store_true", help="Also a GPT-2-small-shaped random-weight model.")
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "quillmate-bench")
    args = parser.parse_args()
    os.environ.setdefault("QUILLMATE_HOME", tempfile.mkdtemp(prefix="quillmate-bench-home-"))
    os.environ["HF_HUB_OFFLINE"] = "1"
    report("bundled model", "bundled", args.new_tokens, args.repeats)
    if args.small:
        from bench.gpt2_streaming_overhead import build_gpt2_small

        small = build_gpt2_small(args.cache / "gpt2-small-random", args.corpus)
        report("gpt2-small (random weights)", str(small), args.new_tokens, args.repeats)


if __name__ == "__main__":
    main()
