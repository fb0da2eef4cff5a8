"""A program that ends while the local model still writes for another reader exits cleanly.

A daemon thread still inside torch when Python finalises used to abort the whole program
("terminate called without an active exception", exit 134) after its output was written;
backends.shutdown now stops and joins the model's threads first. Real subprocesses and the
bundled model through transformers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from backends.base import GenerationParams
from backends.batching import Batcher, prepare_job
from backends.gpt2 import GPT2Backend, TurnLock, _request_kwargs, prompt_ids

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import asyncio, sys, threading
from backends.base import Delta, GenerationParams, GenerationRequest, GenerationResult
from backends.gpt2 import GPT2Backend

backend = GPT2Backend("local", model="bundled")
writing = threading.Event()

async def write(params):
    result = None
    async for event in backend.stream(GenerationRequest.completion("Once upon a time", params)):
        if isinstance(event, Delta):
            writing.set()
        if isinstance(event, GenerationResult):
            result = event
    return result

# Another reader (a server's, say) is still being written for when this program ends.
long = GenerationParams(max_new_tokens=400, seed=1, num_alternatives=int(sys.argv[1]))
other = threading.Thread(target=lambda: asyncio.run(write(long)), daemon=True)
other.start()
writing.wait()
short = asyncio.run(write(GenerationParams(max_new_tokens=3, seed=2)))
print("WROTE", repr(short.texts[0]), "OTHER STILL WRITING", other.is_alive(), flush=True)
"""


@pytest.mark.parametrize("alternatives", [1, 2], ids=["in-the-shared-batch", "in-a-generate-worker"])
def test_the_program_exits_cleanly_while_another_request_is_still_being_written(alternatives: int) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(alternatives)], capture_output=True, env=env, timeout=300, cwd=ROOT
    )
    out, err = done.stdout.decode(), done.stderr.decode()
    assert "OTHER STILL WRITING True" in out, (out, err)  # the case under test: the model was busy at exit
    assert done.returncode == 0, err
    assert "terminate called" not in err


def test_a_stopped_batcher_ends_the_job_it_is_writing_and_its_thread_returns() -> None:
    backend = GPT2Backend("local", model="bundled", prefix_cache=False)
    loaded = backend._load_sync()
    batcher = Batcher(loaded.model, TurnLock(), None)  # its own, so the shared one stays open for other tests
    params = GenerationParams(max_new_tokens=400, seed=3)
    kwargs = _request_kwargs(loaded, params)
    first_token = threading.Event()
    tokens: list[int] = []

    def on_token(token: int) -> None:
        tokens.append(token)
        first_token.set()

    job = prepare_job(
        loaded.model,
        prompt_ids(loaded, "Once upon a time"),
        kwargs,
        params.seed,
        on_token=on_token,
        finished=lambda: False,
        cancel=threading.Event(),
        keep_cache=False,
    )
    reader = threading.Thread(target=batcher.run, args=(job,))
    reader.start()
    assert first_token.wait(120)
    worker = batcher._thread
    assert worker is not None
    batcher.stop()
    reader.join(60)
    worker.join(60)
    assert not reader.is_alive() and not worker.is_alive()
    assert job.error is None and 0 < len(tokens) < 400  # ended early, without an error of its own
    with pytest.raises(RuntimeError, match="closing"):
        batcher.run(job)
