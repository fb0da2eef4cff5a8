"""The CLI end to end, in subprocesses, as an editor or a script would call it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.sessions import reopened, writer_session

HEAVY = ("torch", "transformers", "openai", "langchain_core", "textual")


def quillmate(
    *args: str, stdin: bytes | None = None, home: Path, timeout: float = 180
) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "QUILLMATE_"))}
    env.update(QUILLMATE_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        env=env,
        timeout=timeout,
    )


@pytest.fixture
def home(isolated_home: Path) -> Path:
    return isolated_home


def test_help_and_version_import_nothing_heavy(home: Path) -> None:
    code = (
        "import sys\n"
        "from assistant.cli import main\n"
        "for args in (['--help'], ['--version'], ['run', '--help'], ['templates', '--help']):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 0, (args, e.code)\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout


@pytest.mark.parametrize("module", ["assistant", "backends", "assistant.templates", "assistant.core", "backends.gpt2"])
def test_importing_core_modules_stays_light(module: str) -> None:
    code = f"import sys, {module}\nprint([m for m in {HEAVY[:3]!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_help_lists_commands(home: Path) -> None:
    out = quillmate("--help", home=home)
    assert out.returncode == 0
    text = out.stdout.decode()
    for command in ("run", "templates", "backends"):
        assert command in text


def test_run_streams_text_to_stdout_only(home: Path, tiny_model_dir: Path) -> None:
    out = quillmate(
        "run",
        "poem",
        "--var",
        "topic=the sea",
        "--model",
        str(tiny_model_dir),
        "--max-tokens",
        "12",
        "--seed",
        "1",
        home=home,
    )
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout.strip(), "the poem goes to stdout"
    assert b"quillmate:" not in out.stdout


def test_stdin_fills_the_input_variable(home: Path, tiny_model_dir: Path) -> None:
    args = ("run", "continue", "--model", str(tiny_model_dir), "--max-tokens", "8", "--temperature", "0", "--json")
    out = quillmate(*args, stdin=b"It was late when the lantern spoke.", home=home)
    assert out.returncode == 0, out.stderr.decode()
    record = json.loads(out.stdout.decode().splitlines()[0])
    assert record["template"] == "continue"
    assert record["usage"]["prompt_tokens"] > 5, "the piped text reached the prompt"


def test_include_input_keeps_the_selection(home: Path, tiny_model_dir: Path) -> None:
    piped = "It was late when the lantern spoke.\n"
    out = quillmate(
        "run",
        "continue",
        "--include-input",
        "--model",
        str(tiny_model_dir),
        "--max-tokens",
        "5",
        stdin=piped.encode(),
        home=home,
    )
    assert out.returncode == 0, out.stderr.decode()
    # The line ending is the editor's, not a break: the continuation carries the line on.
    assert out.stdout.decode().startswith(piped.rstrip("\n"))
    assert out.stdout.decode().endswith("\n")


def test_json_gives_one_object_per_alternative(home: Path, tiny_model_dir: Path) -> None:
    out = quillmate(
        "run",
        "slogan",
        "--var",
        "product=lanterns",
        "-n",
        "3",
        "--json",
        "--seed",
        "3",
        "--model",
        str(tiny_model_dir),
        "--max-tokens",
        "6",
        home=home,
    )
    assert out.returncode == 0, out.stderr.decode()
    lines = out.stdout.decode().strip().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["index"] for r in records] == [0, 1, 2]
    assert all(r["finish_reason"] in ("stop", "length") for r in records)
    assert all(r["backend"] == "local" for r in records)


def test_alternatives_are_divided_in_text_mode(home: Path, tiny_model_dir: Path) -> None:
    out = quillmate(
        "run",
        "poem",
        "--var",
        "topic=snow",
        "-n",
        "2",
        "--model",
        str(tiny_model_dir),
        "--max-tokens",
        "5",
        home=home,
    )
    assert out.returncode == 0, out.stderr.decode()
    assert "alternative 2 of 2" in out.stdout.decode()


def test_a_haiku_has_three_lines_and_a_poem_starts_at_its_first_word(home: Path) -> None:
    out = quillmate(
        "run", "poem", "--var", "topic=the sea at night", "--var", "form=haiku", "--seed", "4", "--json", home=home
    )
    assert out.returncode == 0, out.stderr.decode()
    poems = [json.loads(line)["text"] for line in out.stdout.decode().splitlines()]
    assert len(poems) == 1
    for poem in poems:
        assert 1 <= len([line for line in poem.splitlines() if line.strip()]) <= 3, poem
        assert poem == poem.lstrip(), "a poem starts at its first word"
    plain = quillmate(
        "run",
        "poem",
        "--var",
        "topic=the sea at night",
        "--var",
        "form=haiku",
        "--seed",
        "4",
        "--max-lines",
        "1",
        home=home,
    )
    assert plain.returncode == 0, plain.stderr.decode()
    assert plain.stdout.decode().strip() == poems[0].splitlines()[0].strip()  # the writer's own setting wins


@pytest.mark.parametrize(
    ("args", "stdin", "code", "message"),
    [
        (("run", "peom", "--var", "topic=x"), b"", 2, "Unknown template 'peom'"),
        (("run", "poem", "--var", "topic=x", "--backend", "nowhere"), b"", 2, "Unknown backend 'nowhere'"),
        (("run", "poem", "--var", "topic=x", "--var", "colour=blue"), b"", 2, "colour"),
        (("run", "poem"), b"", 2, "topic"),
        (("run", "poem", "--var", "topic"), b"", 2, "name=value"),
        (("run", "poem", "--var", "topic=x", "--temperature", "-1"), b"", 2, "temperature"),
        (("run", "poem", "--var", "topic=x", "--top-p", "2"), b"", 2, "top_p"),
        (("run", "poem", "--var", "topic=x", "--max-lines", "0"), b"", 2, "max_lines"),
        (("run", "continue"), b"caf\xe9 au lait", 2, "not valid UTF-8"),
        (("run", "--template-file", "/nonexistent/t.toml"), b"", 2, "t.toml"),
        (("run", "poem", os.fsdecode(b"--var=topic=\xff")), b"", 2, "not valid UTF-8"),
    ],
)
def test_errors_are_one_line_with_exit_codes(
    home: Path, args: tuple[str, ...], stdin: bytes, code: int, message: str
) -> None:
    out = quillmate(*args, stdin=stdin, home=home)
    err = out.stderr.decode()
    assert out.returncode == code, err
    assert message in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert out.stdout == b""


def test_missing_model_names_it_and_how_to_fetch(home: Path) -> None:
    out = quillmate("run", "poem", "--var", "topic=x", "--model", "gpt2-xl", home=home)
    err = out.stderr.decode()
    assert out.returncode == 1, err
    assert "gpt2-xl" in err and "hf download" in err
    assert "Traceback" not in err


def test_debug_shows_the_traceback(home: Path) -> None:
    out = quillmate("--debug", "run", "peom", home=home)
    assert out.returncode == 2
    assert "Traceback" in out.stderr.decode()


def test_backends_list_shows_profiles(home: Path) -> None:
    out = quillmate("backends", "list", home=home)
    assert out.returncode == 0, out.stderr.decode()
    text = out.stdout.decode()
    assert "* local" in text and "gpt2" in text


def test_backends_check_loads_and_writes(home: Path, tiny_model_dir: Path) -> None:
    out = quillmate("backends", "check", "local", "--model", str(tiny_model_dir), home=home)
    assert out.returncode == 0, out.stderr.decode()
    text = out.stdout.decode()
    assert "device:   cpu" in text and "context:  1024 tokens" in text and "tokens/s" in text


def test_ctrl_c_exits_130_and_keeps_partial_text(home: Path, tmp_path: Path) -> None:
    import signal
    import time

    endless = tmp_path / "endless.toml"  # no stop sequences: still writing when Ctrl+C comes
    endless.write_text('[completion]\nprompt = "Story: The Long Road\\n\\n"\n', encoding="utf-8")

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "QUILLMATE_"))}
    env.update(QUILLMATE_HOME=str(home), HF_HUB_OFFLINE="1")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "assistant",
            "run",
            "--template-file",
            str(endless),
            "--model",
            "bundled",  # slow enough (about 130 tokens/s) to be still writing when Ctrl+C comes
            "--max-tokens",
            "900",
            "--temperature",
            "1",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    received = b""
    deadline = time.monotonic() + 120
    while not received and time.monotonic() < deadline:
        chunk = proc.stdout.read()
        received += chunk or b""
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _rest, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err.decode()
    assert received, "text streamed before Ctrl+C stays on stdout"
    assert b"Traceback" not in err


def test_run_records_into_a_session(home: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    session_id = writer_session("The lantern spoke. ", title="Lantern")
    out = quillmate(
        "run",
        "continue",
        "--session",
        session_id,
        "--model",
        str(tiny_model_dir),
        "--max-tokens",
        "6",
        "--seed",
        "2",
        stdin=b"The lantern spoke.",
        home=home,
    )
    assert out.returncode == 0, out.stderr.decode()
    generated = out.stdout.decode().rstrip("\n")
    with reopened(session_id) as session:
        assert session.document.text == "The lantern spoke. " + generated
        stats = session.stats()
        assert stats.model_words + stats.writer_words >= 3
        assert len(session.events) == 1


def test_a_failed_run_is_recorded_in_the_session(home: Path, tmp_path: Path) -> None:
    session_id = writer_session("The lantern spoke.", title="Lantern")
    out = quillmate(
        "run",
        "continue",
        "--session",
        session_id,
        "--model",
        str(tmp_path / "no-such-model"),
        stdin=b"The lantern spoke.",
        home=home,
    )
    assert out.returncode != 0 and "no-such-model" in out.stderr.decode()
    with reopened(session_id) as session:
        assert session.document.text == "The lantern spoke."  # nothing lost, nothing added
        [event] = session.events
        full = session.event(event.id)
        assert full.status == "error" and "no-such-model" in (full.error or "")
        assert full.source == "cli"


def test_run_with_unknown_session_fails_before_writing(home: Path, tiny_model_dir: Path) -> None:
    out = quillmate("run", "poem", "--var", "topic=x", "--session", "nosuch", "--model", str(tiny_model_dir), home=home)
    assert out.returncode != 0
    assert out.stdout == b""
    assert "nosuch" in out.stderr.decode() and "Traceback" not in out.stderr.decode()


def test_run_refuses_a_session_open_elsewhere_before_writing(home: Path, tiny_model_dir: Path) -> None:
    from assistant.sessions import SessionStore

    store = SessionStore()
    session = store.create(title="Held")
    try:
        out = quillmate(
            "run", "poem", "--var", "topic=x", "--session", session.id, "--model", str(tiny_model_dir), home=home
        )
        assert out.returncode != 0
        assert out.stdout == b""
        assert "open in another quillmate" in out.stderr.decode()
        assert session.events == []
    finally:
        session.close()
        store.close()
