#!/usr/bin/env python3
"""How ``quillmate serve`` holds up with several streaming clients: batched, taking turns, and one at a time.

The local GPT-2 backend lets concurrent requests share each step (backends/batching.py);
with ``batching=False`` they take turns token by token instead (``TurnLock`` in
backends/gpt2.py). For each client count N (default 1, 4 and 16) this starts N streaming
requests at once over HTTP against ``quillmate serve`` on 127.0.0.1, once per mode, the
modes interleaved so drift in machine load hits both alike, and reports the median and
95th-percentile time to first token and the aggregate tokens per second (median over
``--repeats``). Plain ``model.generate`` on one request, with no server, is the library's
own figure for one client. Everything is bounded: a fixed number of requests, a small
max_tokens and an overall time limit; traffic goes to 127.0.0.1 only.

    python bench/serve_concurrency.py                       # bundled model, N = 1, 4, 16
    python bench/serve_concurrency.py --model gpt2 --max-tokens 32 --clients 1,4

The first part measures a 3-token request sent while a 400-token one streams (goal: done
within 2 s), batched, taking turns, and on a server that lets one request in at a time
(what quillmate did before turns). Goals for the table: batched aggregate tokens/s with
4 clients at least 1.5 x one client's. ``uptime`` and the CPU time per token are printed
with the figures: on a busy machine wall-clock figures drift, CPU time much less.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PROMPT = "Story: The Lantern\n\nOnce upon a time, in a village by the sea, there lived"


@dataclass
class Run:
    """One batch of N concurrent requests."""

    ttft: list[float]
    tokens: int
    seconds: float

    @property
    def p50(self) -> float:
        return statistics.median(self.ttft) if self.ttft else float("nan")

    @property
    def p95(self) -> float:
        if not self.ttft:
            return float("nan")
        ordered = sorted(self.ttft)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]

    @property
    def rate(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else float("nan")


async def serve_batch(url: str, clients: int, max_tokens: int) -> Run:
    import httpx

    async def one(client: httpx.AsyncClient, number: int) -> tuple[float | None, int]:
        body = {
            "model": "local",
            "prompt": PROMPT,
            "max_tokens": max_tokens,
            "temperature": 0.8,
            "seed": number,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        started = time.perf_counter()
        first: float | None = None
        tokens = 0
        async with client.stream("POST", f"{url}/completions", json=body) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if first is None and any(c.get("text") for c in chunk.get("choices", [])):
                    first = time.perf_counter() - started
                if chunk.get("usage"):
                    tokens = chunk["usage"]["completion_tokens"]
        return first, tokens

    limits = httpx.Limits(max_connections=clients + 2)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        started = time.perf_counter()
        results = await asyncio.gather(*(one(client, i) for i in range(clients)))
        seconds = time.perf_counter() - started
    return Run([t for t, _ in results if t is not None], sum(n for _, n in results), seconds)


async def short_behind_long(url: str, long_tokens: int = 400) -> float:
    """Seconds a 3-token request takes while a ``long_tokens`` one streams on the same model."""
    import httpx

    async with httpx.AsyncClient(timeout=300) as client:
        writing = asyncio.Event()

        async def long() -> None:
            body = {
                "model": "local",
                "prompt": PROMPT,
                "max_tokens": long_tokens,
                "temperature": 0.8,
                "seed": 1,
                "stream": True,
            }
            async with client.stream("POST", f"{url}/completions", json=body) as response:
                count = 0
                async for line in response.aiter_lines():
                    count += line.startswith("data: ")
                    if count >= 3:
                        writing.set()
            writing.set()

        task = asyncio.create_task(long())
        await writing.wait()
        started = time.perf_counter()
        body = {"model": "local", "prompt": "The sea at night", "max_tokens": 3, "temperature": 0, "stream": True}
        async with client.stream("POST", f"{url}/completions", json=body) as response:
            async for _ in response.aiter_lines():
                pass
        took = time.perf_counter() - started
        await task
    return took


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f}"


def pick_model(name: str) -> str:
    from backends.gpt2 import BUNDLED_MODEL_DIR

    if name != "bundled" or (BUNDLED_MODEL_DIR / "config.json").is_file():
        return name
    from tests.support.tiny_model import build_tiny_model

    folder = Path(tempfile.mkdtemp(prefix="quillmate-bench-"))
    print("bundled model not found; using a tiny random GPT-2 (HTTP overhead will look large)", file=sys.stderr)
    return str(build_tiny_model(folder))


def library_run(model: object, tokenizer: object, max_tokens: int) -> Run:
    """One request through plain ``model.generate`` (no backend, no server), sampling as the clients do."""
    import torch

    class FirstToken:
        def __init__(self) -> None:
            self.calls = 0
            self.at: float | None = None

        def put(self, value: object) -> None:
            self.calls += 1
            if self.calls == 2 and self.at is None:  # the first call hands over the prompt
                self.at = time.perf_counter()

        def end(self) -> None:
            pass

    ids = tokenizer(PROMPT, return_tensors="pt")  # type: ignore[operator]
    streamer = FirstToken()
    torch.manual_seed(0)
    started = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(  # type: ignore[attr-defined]
            **ids,
            max_new_tokens=max_tokens,
            do_sample=True,
            temperature=0.8,
            top_k=0,
            top_p=1.0,
            repetition_penalty=1.0,
            min_new_tokens=1,
            pad_token_id=0,
            streamer=streamer,
        )
    seconds = time.perf_counter() - started
    tokens = int(out.shape[1] - ids["input_ids"].shape[1])
    return Run([streamer.at - started] if streamer.at else [], tokens, seconds)


def median_run(runs: list[Run]) -> Run:
    """The run with the median aggregate rate."""
    return sorted(runs, key=lambda r: r.rate)[len(runs) // 2]


async def main(args: argparse.Namespace) -> int:
    from assistant.config import Config
    from assistant.server import ServerThread, create_app, free_port
    from backends.gpt2 import GPT2Backend

    counts = [int(c) for c in args.clients.split(",") if c.strip()]
    model = pick_model(args.model)
    batched = GPT2Backend("local", model=model, device="cpu")
    started = time.perf_counter()
    await batched.load()
    info = batched.info()
    print(f"model {info.model} on {info.device}, loaded in {time.perf_counter() - started:.1f} s")
    print(
        f"max_tokens={args.max_tokens}, clients={counts}, repeats={args.repeats}, "
        f"torch threads={os.environ.get('OMP_NUM_THREADS', 'default')}"
    )
    turns = GPT2Backend("local", model=model, device="cpu", batching=False)  # the same model object
    serial = GPT2Backend("local", model=model, device="cpu", batching=False)
    serial.max_concurrency = 1  # quillmate before turns: one request in at a time
    backends = {"batched": batched, "turns": turns, "one at a time": serial}
    apps = {}
    for mode, backend in backends.items():
        port = free_port()
        apps[mode] = (create_app(Config(), backends={"local": backend}, port=port), port)
    servers = {mode: ServerThread(app, port=port) for mode, (app, port) in apps.items()}
    for server in servers.values():
        server.start()
    try:
        urls = {mode: server.url for mode, server in servers.items()}
        for url in urls.values():
            await serve_batch(url, 1, 4)  # warm up
        before = load_average()
        waits: dict[str, list[float]] = {mode: [] for mode in urls}
        for _ in range(args.repeats):
            for mode, url in urls.items():
                waits[mode].append(await short_behind_long(url))
        print(f"\na 3-token request while a 400-token one streams, median of {args.repeats}:")
        for mode, seconds in waits.items():
            print(f"  {mode:<14} {statistics.median(seconds):7.2f} s   (goal < 2 s)")
        print(f"  uptime before: {before}; after: {load_average()}\n")

        loaded = batched.loaded
        assert loaded is not None
        results: dict[tuple[str, int], Run] = {}
        cpu: dict[tuple[str, int], float] = {}
        before = load_average()
        library = [library_run(loaded.model, loaded.tokenizer, args.max_tokens) for _ in range(args.repeats)]
        deadline = time.monotonic() + args.time_limit
        for n in counts:
            runs: dict[str, list[Run]] = {"turns": [], "batched": []}
            spent: dict[str, float] = {"turns": 0.0, "batched": 0.0}
            for _ in range(args.repeats):
                for mode in runs:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        print(f"time limit reached at N={n}", file=sys.stderr)
                        break
                    cpu_before = time.process_time()
                    runs[mode].append(await asyncio.wait_for(serve_batch(urls[mode], n, args.max_tokens), remaining))
                    spent[mode] += time.process_time() - cpu_before
            for mode, done in runs.items():
                if done:
                    results[(mode, n)] = median_run(done)
                    cpu[(mode, n)] = spent[mode] / max(1, sum(r.tokens for r in done))
            print(f"  N={n:<3} done", file=sys.stderr)
    finally:
        for server in servers.values():
            server.stop()

    header = f"{'mode':<9} {'N':>3} | {'TTFT p50':>8} {'p95':>7} | {'tok/s':>7} {'x 1 client':>10} | {'cpu ms/tok':>10}"
    print("time to first token (s), aggregate tokens/s (median run), and its ratio to the same mode with 1 client")
    print(header)
    print("-" * len(header))
    one = median_run(library)
    print(f"{'generate':<9} {1:>3} | {one.p50:>8.3f} {one.p95:>7.3f} | {one.rate:>7.1f} {1.0:>10.2f} | {'':>10}")
    for mode in ("turns", "batched"):
        for n in counts:
            if (mode, n) not in results:
                continue
            run = results[(mode, n)]
            base = results.get((mode, 1))
            ratio = f"{run.rate / base.rate:>10.2f}" if base else f"{'':>10}"
            print(
                f"{mode:<9} {n:>3} | {run.p50:>8.3f} {run.p95:>7.3f} | {run.rate:>7.1f} {ratio} | "
                f"{cpu[(mode, n)] * 1000:>10.2f}"
            )
    if ("batched", 1) in results and ("batched", 4) in results:
        gain = results[("batched", 4)].rate / results[("batched", 1)].rate
        print(f"\nbatched aggregate tokens/s, 4 clients / 1 client: {gain:.2f} (goal >= 1.5)")
    print(f"uptime before: {before}; after: {load_average()}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="bundled", help="gpt2 model: bundled (default), gpt2, a folder...")
    parser.add_argument("--clients", default="1,4,16", help="comma-separated client counts (default 1,4,16)")
    parser.add_argument("--max-tokens", type=int, default=24, help="tokens per request (default 24)")
    parser.add_argument("--time-limit", type=float, default=300, help="give up after this many seconds (default 300)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each measurement (default 3)")
    sys.exit(asyncio.run(main(parser.parse_args())))
