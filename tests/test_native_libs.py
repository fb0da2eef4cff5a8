"""torch's shared libraries open without holding the interpreter lock (backends/native_libs.py).

Each check runs in a fresh Python: the test process may have imported torch long ago.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the preload is for Linux"),
    pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed"),
]

CHILD = r"""
import json, sys, threading, time

from backends.native_libs import preload_torch_libraries

ticks = []
stop = threading.Event()


def tick():
    while not stop.is_set():
        ticks.append(time.perf_counter())
        time.sleep(0.001)


ticker = threading.Thread(target=tick)
ticker.start()
time.sleep(0.05)
started = time.perf_counter()
loaded = preload_torch_libraries()
ended = time.perf_counter()
stop.set()
ticker.join()
during = [started] + [t for t in ticks if started < t < ended] + [ended]
maps = open("/proc/self/maps").read()
out = {
    "loaded": loaded,
    "seconds": ended - started,
    "longest_gap": max(b - a for a, b in zip(during, during[1:])),
    "libtorch_before_import": "libtorch_cpu.so" in maps,
    "torch_imported_by_preload": "torch" in sys.modules,
}
import torch

out["works"] = torch.ones(3).sum().item() == 3.0
print(json.dumps(out))
"""


def _run(env_extra: dict[str, str] | None = None) -> dict[str, object]:
    env = {name: value for name, value in os.environ.items() if name != "TORCH_USE_RTLD_GLOBAL"}
    env.update(PYTHONPATH=str(REPO_ROOT), **(env_extra or {}))
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_the_libraries_open_while_other_threads_run() -> None:
    seen = _run()
    assert seen["loaded"] is True
    assert seen["libtorch_before_import"] is True and seen["torch_imported_by_preload"] is False
    # Another thread kept running through the preload: held, it would have stopped for most of it.
    assert seen["longest_gap"] < max(0.5 * seen["seconds"], 0.02), seen
    assert seen["works"] is True


def test_left_to_torch_when_it_is_asked_to_load_itself_globally() -> None:
    seen = _run({"TORCH_USE_RTLD_GLOBAL": "1"})
    assert seen["loaded"] is False and seen["libtorch_before_import"] is False
    assert seen["works"] is True
