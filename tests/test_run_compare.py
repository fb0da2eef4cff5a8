"""``quillmate run --compare``: one request on several backend profiles, in real subprocesses, offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant import paths
from assistant.sessions.drafts import drafts_of
from tests.support.sessions import reopened, writer_session
from tests.test_cli import quillmate


@pytest.fixture
def home(isolated_home: Path, tiny_model_dir: Path) -> Path:
    """Two local profiles that work offline: the bundled model and a tiny random one."""
    config = paths.config_file()
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f'[backends.bundled]\nkind = "gpt2"\nmodel = "bundled"\n\n'
        f'[backends.tiny]\nkind = "gpt2"\nmodel = "{tiny_model_dir.as_posix()}"\n',
        encoding="utf-8",
    )
    return isolated_home


ARGS = ("run", "continue", "--compare", "bundled,tiny", "--max-tokens", "6", "--seed", "4")


def test_each_draft_is_labelled_by_backend_and_model_on_stdout(home: Path) -> None:
    out = quillmate(*ARGS, stdin=b"The lantern spoke.", home=home)
    assert out.returncode == 0, out.stderr.decode()
    lines = out.stdout.decode().splitlines()
    headers = [line for line in lines if line.startswith("────")]
    assert len(headers) == 2
    assert headers[0] == "──── draft 1 of 2: bundled ────"  # the model's name is the profile's: said once
    assert headers[1].startswith("──── draft 2 of 2: tiny (") and headers[1].endswith(") ────")
    assert lines[0] == headers[0]
    assert b"Traceback" not in out.stderr


def test_json_gives_one_object_per_draft_with_backend_model_and_text(home: Path) -> None:
    out = quillmate(*ARGS, "--json", stdin=b"The lantern spoke.", home=home)
    assert out.returncode == 0, out.stderr.decode()
    records = [json.loads(line) for line in out.stdout.decode().splitlines()]
    assert [r["backend"] for r in records] == ["bundled", "tiny"]
    assert records[0]["model"] == "bundled" and records[1]["model"] not in ("", "bundled")
    assert all(isinstance(r["text"], str) and r["text"] for r in records)


def test_with_a_session_every_draft_is_kept_by_its_model_and_the_text_is_unchanged(home: Path) -> None:
    session_id = writer_session("The lantern spoke. ", title="Lantern")
    out = quillmate(*ARGS, "--json", "--session", session_id, stdin=b"The lantern spoke.", home=home)
    assert out.returncode == 0, out.stderr.decode()
    printed = [json.loads(line) for line in out.stdout.decode().splitlines()]
    with reopened(session_id) as session:
        assert session.document.text == "The lantern spoke. "
        drafts = drafts_of(session.events)
    assert [(d.backend, d.model, d.accepted) for d in drafts] == [(r["backend"], r["model"], False) for r in printed]
    assert [d.text.strip() for d in drafts] == [r["text"].strip() for r in printed]
    assert all(d.status == "done" for d in drafts)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--compare", "bundled,,tiny"), "--compare expects backend profile names separated by commas"),
        (("--compare", "tiny,tiny"), "--compare names tiny more than once"),
        (("--compare", "bundled,nope"), "Unknown backend 'nope'"),
        (("--compare", "bundled,tiny", "--backend", "tiny"), "does not go with --backend"),
    ],
)
def test_a_wrong_compare_is_one_line_before_anything_is_written(
    home: Path, extra: tuple[str, ...], message: str
) -> None:
    out = quillmate("run", "continue", *extra, stdin=b"The lantern spoke.", home=home)
    assert out.returncode != 0 and out.stdout == b""
    err = out.stderr.decode()
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
