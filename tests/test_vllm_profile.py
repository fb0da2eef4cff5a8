"""The README's vLLM profile, written as it stands, against ``quillmate serve`` standing in for vLLM.

``quillmate serve`` runs in its own process on 127.0.0.1 with the bundled model, under the
model name ``gpt2`` and with a required key, as ``vllm serve gpt2 --api-key ...`` would. Only
``base_url`` is changed from the README's text (it names the server's address).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from assistant.config import load_config
from assistant.core import Assistant
from assistant.server import free_port
from backends.base import Delta, GenerationResult
from backends.errors import BackendError
from backends.gpt2 import declared_context_window
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow

KEY = "vllm-stand-in-key-0123456789"
PROFILE_START = "```toml\n[backends.vllm]\n"
TEXT = "The lantern swung in the wind, and"


def readme_profile() -> str:
    """The vLLM profile exactly as the README shows it."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index(PROFILE_START) + len("```toml\n")
    return readme[start : readme.index("```", start)]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``quillmate serve`` with the bundled model as ``gpt2``, needing ``KEY``; yields its API root."""
    home = tmp_path_factory.mktemp("serve-home")
    (home / "config").mkdir()
    (home / "config" / "config.toml").write_text(
        '[backends.gpt2]\nkind = "gpt2"\nmodel = "bundled"\ndevice = "cpu"\n', encoding="utf-8"
    )
    port = free_port()
    env = {**os.environ, "QUILLMATE_HOME": str(home), "QUILLMATE_SERVE_API_KEY": KEY, "HF_HUB_OFFLINE": "1"}
    log = (home / "serve.log").open("wb")
    command = [sys.executable, "-m", "assistant", "serve", "--backend", "gpt2", "--port", str(port), "--quiet"]
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, (home / "serve.log").read_text(errors="replace")
            try:
                if httpx.get(f"{url}/models", headers={"Authorization": f"Bearer {KEY}"}, timeout=2).is_success:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "quillmate serve did not start in time"
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
def vllm_profile(served: str, isolated_home: Path) -> str:
    """The README's profile in the writer's config, its base_url pointing at the stand-in; returns it."""
    profile, replaced = re.subn(r'^base_url = "[^"]*"', f'base_url = "{served}"', readme_profile(), flags=re.M)
    assert replaced == 1 and 'base_url = "http://gpu-box:8000/v1"' in readme_profile()
    config = isolated_home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(profile, encoding="utf-8")
    return profile


def test_the_readme_vllm_profile_writes_and_streams(vllm_profile: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_API_KEY", KEY)
    with Assistant("vllm", config=load_config()) as assistant:
        params = {"max_new_tokens": 12, "seed": 11, "temperature": 0.9, "num_alternatives": 2, "logprobs": 3}
        result = assistant.run("continue", params, text=TEXT)
        assert result.error is None and len(result.texts) == 2 and all(result.texts)
        assert result.model == "gpt2" and result.usage.completion_tokens > 0
        assert all(len(row) > 0 for row in result.logprobs), "word alternatives come back"
        assert all(len(step.top) >= 2 for step in result.logprobs[0])
        assert not [n.message for n in result.notices if n.kind == "unsupported"]
        served_context = declared_context_window("bundled", None)
        assert assistant.backend.capabilities.context_window == served_context, "from the server's max_model_len"
        again = assistant.run("continue", params, text=TEXT)
        assert again.texts == result.texts, "the same seed writes the same text"

        events = list(assistant.stream("continue", {"max_new_tokens": 16, "seed": 5, "top_k": 40}, text=TEXT))
    deltas = [event.text for event in events if isinstance(event, Delta)]
    final = events[-1]
    assert isinstance(final, GenerationResult) and final.error is None
    assert len(deltas) > 1, "the text arrives piece by piece"
    assert "".join(deltas).strip() == final.text.strip() and final.text.strip()
    assert not any("top_k" in getattr(event, "message", "") for event in events), "top_k is sent (extra_samplers)"


def test_quillmate_run_through_the_vllm_profile(vllm_profile: str, isolated_home: Path) -> None:
    env = {**os.environ, "QUILLMATE_HOME": str(isolated_home), "VLLM_API_KEY": KEY, "NO_COLOR": "1"}
    command = [sys.executable, "-m", "assistant", "run", "continue", "--var", f"text={TEXT}", "--backend", "vllm"]
    done = subprocess.run([*command, "--max-tokens", "10"], env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0 and done.stdout.strip(), done.stderr
    keyless = {k: v for k, v in env.items() if k != "VLLM_API_KEY"}
    refused = subprocess.run(command, env=keyless, capture_output=True, text=True, timeout=180)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "the variable VLLM_API_KEY named by profile 'vllm' is not set" in refused.stderr
    assert KEY not in refused.stderr + refused.stdout


def test_a_wrong_key_is_refused_by_the_stand_in(vllm_profile: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_API_KEY", "not-the-key-at-all-0000")
    with Assistant("vllm", config=load_config()) as assistant, pytest.raises(BackendError) as caught:
        assistant.run("continue", {"max_new_tokens": 4}, text=TEXT)
    assert "refused the API key" in caught.value.message and KEY not in str(caught.value)
