"""Defects new users hit with `quillmate run`, each checked through the real CLI in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fake_openai_server import FakeOpenAI
from tests.support.sessions import reopened, writer_session
from tests.test_cli import quillmate


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def use_fake_server(home: Path, url: str) -> None:
    (home / "config").mkdir(exist_ok=True)
    (home / "config" / "config.toml").write_text(
        f'default_backend = "fake"\n\n[backends.fake]\nkind = "openai"\nbase_url = "{url}"\n'
        'model = "fake-model"\ntimeout = 5\n',
        encoding="utf-8",
    )


def one_line_error(out: subprocess.CompletedProcess[bytes]) -> str:
    err = out.stderr.decode()
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_global_flags_work_after_the_command(isolated_home: Path) -> None:
    out = quillmate("run", "peom", "--var", "topic=x", "--debug", home=isolated_home)
    assert out.returncode == 2
    assert "Traceback" in out.stderr.decode() and "No such option" not in out.stderr.decode()
    for flag in ("--quiet", "--verbose"):
        out = quillmate("run", "peom", flag, home=isolated_home)
        assert out.returncode == 2 and "Unknown template 'peom'" in one_line_error(out)
    listed = quillmate("templates", "list", "--verbose", home=isolated_home)
    assert listed.returncode == 0, listed.stderr.decode()


def test_a_bare_variable_points_at_var(isolated_home: Path) -> None:
    out = quillmate("run", "poem", "topic=the sea", home=isolated_home)
    assert out.returncode == 2
    assert '--var topic="the sea"' in one_line_error(out)
    assert out.stdout == b""


def test_empty_stdin_says_it_was_empty(isolated_home: Path) -> None:
    out = quillmate("run", "continue", stdin=b"\n", home=isolated_home)
    assert out.returncode == 2
    assert "standard input was empty" in one_line_error(out)


def test_unused_stdin_gets_one_note(isolated_home: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    piped = tmp_path / "stdin.txt"
    piped.write_text("apples\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "QUILLMATE_"))}
    env.update(QUILLMATE_HOME=str(isolated_home), HF_HUB_OFFLINE="1")
    args = [
        sys.executable,
        "-m",
        "assistant",
        "run",
        "poem",
        "--var",
        "topic=war",
        "--model",
        str(tiny_model_dir),
        "--max-tokens",
        "3",
        "--verbose",
    ]
    with piped.open("rb") as stdin:
        out = subprocess.run(args, stdin=stdin, capture_output=True, env=env, timeout=180)
    err = out.stderr.decode()
    assert out.returncode == 0, err
    assert err.count("standard input was not used") == 1 and "--var topic" in err, err


def test_rewrite_output_starts_at_its_first_word(isolated_home: Path, tiny_model_dir: Path) -> None:
    for seed in ("1", "2", "3"):
        out = quillmate(
            "run",
            "rewrite",
            "--var",
            "instruction=shorter",
            "--model",
            str(tiny_model_dir),
            "--max-tokens",
            "8",
            "--seed",
            seed,
            stdin=b"The sea was dark.\n",
            home=isolated_home,
        )
        assert out.returncode == 0, out.stderr.decode()
        text = out.stdout.decode()
        assert text == text.lstrip() and text.endswith("\n")


def test_python_api_results_are_tidied_by_output_kind(tiny_model_dir: Path) -> None:
    from assistant import Assistant

    with Assistant("local", model=str(tiny_model_dir)) as helper:
        params = {"max_new_tokens": 8, "num_alternatives": 3, "seed": 5}
        rewritten = helper.run("rewrite", params, passage="The sea was dark.", instruction="shorter")
    assert all(text == text.strip() for text in rewritten.texts), rewritten.texts


def test_include_input_joins_the_continuation_to_the_line(isolated_home: Path, fake: FakeOpenAI) -> None:
    use_fake_server(isolated_home, fake.url("ok"))  # writes "Hello", " there", " friend"
    out = quillmate("run", "continue", "--include-input", stdin=b"It was late. \n", home=isolated_home)
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout.decode() == "It was late. Hello there friend\n"
    out = quillmate("run", "continue", "--include-input", stdin=b"The end.\n\n", home=isolated_home)
    assert out.stdout.decode() == "The end.\n\nHello there friend\n"


def test_a_session_refuses_text_that_is_not_the_end_of_its_draft(isolated_home: Path, tiny_model_dir: Path) -> None:
    session_id = writer_session("The lantern spoke.", title="Shore")
    out = quillmate(
        "run",
        "continue",
        "--session",
        session_id,
        "--model",
        str(tiny_model_dir),
        stdin=b"The tide came in",
        home=isolated_home,
    )
    assert out.returncode == 2
    assert "not the end of session" in one_line_error(out)
    assert out.stdout == b""
    with reopened(session_id) as session:
        assert session.document.text == "The lantern spoke." and session.events == []


def test_json_reports_each_alternatives_own_tokens(isolated_home: Path, tiny_model_dir: Path) -> None:
    out = quillmate(
        "run",
        "continue",
        "-n",
        "2",
        "--json",
        "--model",
        str(tiny_model_dir),
        "--max-tokens",
        "6",
        "--temperature",
        "1",
        "--seed",
        "4",
        stdin=b"It was late when",
        home=isolated_home,
    )
    assert out.returncode == 0, out.stderr.decode()
    counts = [json.loads(line)["usage"]["completion_tokens"] for line in out.stdout.decode().splitlines()]
    assert len(counts) == 2 and all(0 < n <= 6 for n in counts), counts


def test_openai_shares_usage_out_per_alternative(isolated_home: Path, fake: FakeOpenAI) -> None:
    use_fake_server(isolated_home, fake.url("ok"))
    out = quillmate("run", "continue", "-n", "2", "--json", stdin=b"It was late when", home=isolated_home)
    assert out.returncode == 0, out.stderr.decode()
    records = [json.loads(line) for line in out.stdout.decode().splitlines()]
    counts = [r["usage"]["completion_tokens"] for r in records]
    assert len(counts) == 2 and counts[0] == counts[1] and counts[0] > 0, counts


def test_a_passage_too_long_is_named(isolated_home: Path, tiny_model_dir: Path) -> None:
    passage = ("The sea was dark and the lantern spoke. " * 26000).encode()  # about 1 MB
    out = quillmate(
        "run",
        "rewrite",
        "--var",
        "instruction=shorter",
        "--model",
        str(tiny_model_dir),
        stdin=passage,
        home=isolated_home,
    )
    assert out.returncode == 2
    err = one_line_error(out)
    assert "passage is too long" in err and "notes" not in err, err


def test_fixed_values_are_named_by_the_context_fitting() -> None:
    from backends.base import TextPart, fit_parts
    from backends.errors import ContextOverflow

    fixed = TextPart("Passage:\n" + "word " * 100, values=(("passage", "word " * 100),))
    with pytest.raises(ContextOverflow) as caught:
        fit_parts((fixed,), 10, lambda t: len(t.split()), lambda t, n: t)
    assert "passage is too long" in str(caught.value) and "notes" not in str(caught.value)


def test_a_lone_surrogate_from_a_server_never_crashes(isolated_home: Path, fake: FakeOpenAI) -> None:
    use_fake_server(isolated_home, fake.url("lone_surrogate"))
    out = quillmate("run", "continue", stdin=b"It was late when", home=isolated_home)
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout.decode() == "Hello fr\ufffd friend\n"
    out = quillmate("run", "continue", "--json", stdin=b"It was late when", home=isolated_home)
    assert out.returncode == 0 and "\ufffd" in json.loads(out.stdout)["text"]


def test_a_closed_pipe_exits_quietly(isolated_home: Path, tmp_path: Path) -> None:
    endless = tmp_path / "endless.toml"
    endless.write_text('[completion]\nprompt = "Story: The Long Road\\n\\n"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "QUILLMATE_"))}
    env.update(QUILLMATE_HOME=str(isolated_home), HF_HUB_OFFLINE="1")
    command = (
        f"{sys.executable} -m assistant run --template-file {endless} --model bundled --max-tokens 400 "
        "--temperature 1 | head -c 12; exit ${PIPESTATUS[0]}"
    )
    out = subprocess.run(["bash", "-c", command], capture_output=True, env=env, timeout=180)
    assert out.returncode == 0, out.stderr.decode()
    assert len(out.stdout) == 12 and out.stderr == b""


def test_a_model_folder_without_a_tokenizer_is_refused(
    isolated_home: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "weights-only"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_model_dir / name, folder / name)
    out = quillmate("run", "poem", "--var", "topic=x", "--model", str(folder), "--max-tokens", "3", home=isolated_home)
    assert out.returncode == 1
    assert "no tokenizer files" in one_line_error(out)
    assert out.stdout == b""


def test_transformers_offline_alone_counts_as_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    from backends.gpt2 import _hub_offline

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    assert not _hub_offline()
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    assert _hub_offline()
