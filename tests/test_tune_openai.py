"""`quillmate tune --backend openai` against a loopback server that speaks the files and
fine-tuning job endpoints the official SDK calls."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fake_finetune_server import FakeFineTuning
from tests.test_cli import quillmate
from tests.test_tune import invented_prose

SECRET = "sk-test-SECRET-do-not-show-1234"
BASE = "gpt-4o-mini-2024-07-18"


@pytest.fixture
def fake() -> Iterator[FakeFineTuning]:
    with FakeFineTuning() as server:
        yield server


@pytest.fixture
def writing(tmp_path: Path) -> Path:
    folder = tmp_path / "novel"
    folder.mkdir()
    for index in range(3):
        (folder / f"chapter-{index}.md").write_text(invented_prose(index, 40), encoding="utf-8")
    return folder


def use_server(home: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QM_FT_KEY", SECRET)
    config = home / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.toml").write_text(
        f'[backends.openai]\nbase_url = "{url}"\napi_key_env = "QM_FT_KEY"\nmax_retries = 0\n', encoding="utf-8"
    )


def tune(writing: Path, home: Path, *extra: str):
    return quillmate(
        "tune",
        str(writing),
        "--name",
        "hosted-voice",
        "--backend",
        "openai",
        "--base",
        BASE,
        "--poll-seconds",
        "0",
        *extra,
        home=home,
    )


def no_secret(*outputs: bytes) -> None:
    for output in outputs:
        assert SECRET not in output.decode() and SECRET[-8:] not in output.decode()


def test_fine_tune_uploads_chat_pairs_and_registers_the_model(
    writing: Path, isolated_home: Path, fake: FakeFineTuning, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_server(isolated_home, fake.url("ok"), monkeypatch)
    out = tune(writing, isolated_home, "--yes")
    assert out.returncode == 0, out.stderr.decode()
    no_secret(out.stdout, out.stderr)
    stdout = out.stdout.decode()
    assert "training and" in stdout and "cost about $" in stdout
    assert "is ready as backend 'hosted-voice'" in stdout
    assert "running" in out.stderr.decode() and "Step 1/30" in out.stderr.decode()

    training = fake.files["file-1"].decode().splitlines()
    assert len(training) >= 10
    for line in training:
        roles = [m["role"] for m in json.loads(line)["messages"]]
        assert roles == ["system", "user", "assistant"]
    assert "file-2" in fake.files  # the held-out documents, as the validation file
    assert all(
        {k.lower(): v for k, v in r.headers.items()}["authorization"] == f"Bearer {SECRET}" for r in fake.requests
    )
    job = next(iter(fake.jobs.values()))
    assert (job["model"], job["training_file"], job["validation_file"]) == (BASE, "file-1", "file-2")

    listed = quillmate("backends", "list", home=isolated_home).stdout.decode()
    assert "hosted-voice" in listed and f"ft:{BASE}:quillmate:hosted-voice:abc123" in listed
    card = json.loads((isolated_home / "data/models/hosted-voice/quillmate_model.json").read_text(encoding="utf-8"))
    assert card["status"] == "succeeded" and card["profile"]["api_key_env"] == "QM_FT_KEY"
    assert "hosted-voice" in quillmate("models", "list", home=isolated_home).stdout.decode()


def test_a_failed_job_is_one_line_and_registers_nothing(
    writing: Path, isolated_home: Path, fake: FakeFineTuning, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_server(isolated_home, fake.url("fail"), monkeypatch)
    out = tune(writing, isolated_home, "--yes")
    stderr = out.stderr.decode()
    assert out.returncode == 1
    assert "failed: The job failed due to an internal error." in stderr.splitlines()[-1]
    no_secret(out.stdout, out.stderr)
    listed = quillmate("backends", "list", home=isolated_home).stdout.decode()
    assert "hosted-voice" not in listed
    assert "failed" in quillmate("models", "list", home=isolated_home).stdout.decode()


@pytest.mark.parametrize(
    ("scenario", "message"),
    [
        ("invalid", "rejected the request (400): The training file has 3 examples missing an assistant message."),
        ("quota", "run out of credit"),
    ],
)
def test_api_errors_are_one_line(
    writing: Path,
    isolated_home: Path,
    fake: FakeFineTuning,
    monkeypatch: pytest.MonkeyPatch,
    scenario: str,
    message: str,
) -> None:
    use_server(isolated_home, fake.url(scenario), monkeypatch)
    out = tune(writing, isolated_home, "--yes")
    stderr = out.stderr.decode()
    assert out.returncode == 1, stderr
    assert message in stderr and "Traceback" not in stderr
    no_secret(out.stdout, out.stderr)


def test_no_key_stops_before_anything_is_sent(writing: Path, isolated_home: Path) -> None:
    out = tune(writing, isolated_home, "--yes")
    assert out.returncode == 1
    assert "No OpenAI API key" in out.stderr.decode()


def test_too_little_text_fails_validation_before_upload(
    tmp_path: Path, isolated_home: Path, fake: FakeFineTuning, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_server(isolated_home, fake.url("ok"), monkeypatch)
    (tmp_path / "short.md").write_text(invented_prose(1, 8), encoding="utf-8")
    out = tune(tmp_path / "short.md", isolated_home, "--yes")
    assert out.returncode == 2
    assert "OpenAI needs at least 10" in out.stderr.decode()
    assert fake.requests == []


def test_cost_must_be_confirmed(
    writing: Path, isolated_home: Path, fake: FakeFineTuning, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_server(isolated_home, fake.url("ok"), monkeypatch)
    out = tune(writing, isolated_home)
    assert out.returncode == 2 and "confirm with --yes" in out.stderr.decode()
    assert fake.requests == []


def test_leave_and_resume_watching_with_tune_status(
    writing: Path, isolated_home: Path, fake: FakeFineTuning, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_server(isolated_home, fake.url("ok"), monkeypatch)
    out = tune(writing, isolated_home, "--yes", "--no-wait")
    assert out.returncode == 0, out.stderr.decode()
    assert "quillmate tune status" in out.stdout.decode()
    assert "hosted-voice" not in quillmate("backends", "list", home=isolated_home).stdout.decode()
    watched = quillmate("tune", "status", "--poll-seconds", "0", home=isolated_home)
    assert watched.returncode == 0, watched.stderr.decode()
    assert "is ready as backend 'hosted-voice'" in watched.stdout.decode()
    assert "hosted-voice" in quillmate("backends", "list", home=isolated_home).stdout.decode()
    again = quillmate("tune", "status", home=isolated_home)
    assert again.returncode == 2 and "No OpenAI fine-tuning job is under way" in again.stderr.decode()
