"""API keys: stored privately, shown masked, never printed whole."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant import keys
from assistant.cli import cli
from backends.errors import UsageError
from tests.support.fake_openai_server import FakeOpenAI

KEY = "sk-proj-TopSecretValue0123456789abcdefLMNO"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_key_file_is_0600_in_a_0700_folder_from_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[tuple[str, int, int]] = []
    real_open = os.open

    def spy(path: str, flags: int, mode_: int = 0o777, *args: object, **kwargs: object) -> int:
        created.append((str(path), flags, mode_))
        return real_open(path, flags, mode_, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    old_umask = os.umask(0)  # even with a permissive umask
    try:
        path = keys.save_key("openai", KEY + "\n")
    finally:
        os.umask(old_umask)
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    assert path.read_text().strip() == KEY
    assert created and all(m == 0o600 and flags & os.O_EXCL for _, flags, m in created)
    assert not list(path.parent.glob(".*tmp"))


def test_saving_again_replaces_and_tightens(isolated_home: Path) -> None:
    folder = keys.key_path("openai").parent
    folder.mkdir(parents=True, mode=0o755)
    os.chmod(folder, 0o755)
    keys.save_key("openai", "sk-old-0000000000000000")
    path = keys.save_key("openai", KEY)
    assert path.read_text().strip() == KEY and mode(path) == 0o600 and mode(folder) == 0o700


def test_mask_and_list() -> None:
    assert keys.mask(KEY) == "sk-…LMNO"
    assert keys.mask("abcdefghijklmnop") == "…mnop"
    assert keys.mask("short") == "…"
    keys.save_key("openai", KEY)
    listed = keys.list_keys()
    assert [(k.name, k.masked) for k in listed] == [("openai", "sk-…LMNO")]
    assert keys.load_key("openai") == KEY
    assert keys.remove_key("openai") and not keys.remove_key("openai")


def test_bad_names_and_values() -> None:
    for name in ("../x", "a/b", "", ".hidden"):
        with pytest.raises(UsageError):
            keys.save_key(name, KEY)
    with pytest.raises(UsageError):
        keys.save_key("openai", "   ")
    with pytest.raises(UsageError):
        keys.save_key("openai", "sk-two words")


def test_keys_commands_never_show_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    saved = runner.invoke(cli, ["keys", "set", "openai"], input=KEY + "\n")
    assert saved.exit_code == 0, saved.output
    assert keys.load_key("openai") == KEY
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-AnotherSecret0123456789QRST")
    listed = runner.invoke(cli, ["keys", "list"])
    assert "openai" in listed.output and "sk-…LMNO" in listed.output and "sk-…QRST" in listed.output
    as_json = runner.invoke(cli, ["keys", "list", "--json"])
    record = json.loads(as_json.output)
    assert record["stored"][0]["key"] == "sk-…LMNO"
    removed = runner.invoke(cli, ["keys", "remove", "openai"])
    assert removed.exit_code == 0 and keys.load_key("openai") is None
    for result in (saved, listed, as_json, removed):
        assert KEY not in result.output and "AnotherSecret" not in result.output


def test_hidden_prompt_at_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import click

    asked: dict[str, object] = {}

    def fake_prompt(text: str, **kwargs: object) -> str:
        asked.update(kwargs)
        return KEY

    monkeypatch.setattr("assistant.cli.keys_cmd.read_stdin_text", lambda: None)
    monkeypatch.setattr(click, "prompt", fake_prompt)
    result = CliRunner().invoke(cli, ["keys", "set", "openai"])
    assert result.exit_code == 0, result.output
    assert asked.get("hide_input") is True and keys.load_key("openai") == KEY
    assert KEY not in result.output


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def test_key_is_absent_from_backends_list_json_output_and_errors(
    fake: FakeOpenAI, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = isolated_home / "my.key"
    key_file.write_text(KEY)
    config = isolated_home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f'[backends.remote]\nkind = "openai"\nmodel = "gpt-test"\nbase_url = "{fake.url("ok")}"\n'
        f'api_key_file = "{key_file}"\n\n'
        f'[backends.refused]\nkind = "openai"\nmodel = "gpt-test"\nbase_url = "{fake.url("401")}"\n'
        f'api_key_file = "{key_file}"\n\n'
        f'[backends.proxy]\nkind = "openai"\nmodel = "gpt-test"\n'
        f'base_url = "https://writer:{KEY}@proxy.example/v1?api-key={KEY}"\n'
    )
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    runner = CliRunner()
    listed = runner.invoke(cli, ["backends", "list"])
    assert listed.exit_code == 0 and "remote" in listed.output
    assert "https://writer:***@proxy.example/v1?api-key=***" in listed.output
    ran = runner.invoke(cli, ["run", "continue", "-b", "remote", "--json", "--max-tokens", "5", "--var", "text=Once"])
    assert ran.exit_code == 0, ran.output
    assert json.loads(ran.stdout.splitlines()[0])["text"] == "Hello there friend"
    assert fake.requests[-1].headers["authorization"] == f"Bearer {KEY}"
    refused = runner.invoke(cli, ["run", "continue", "-b", "refused", "--var", "text=Once"])
    assert refused.exit_code != 0
    assert "refused the API key" in str(refused.exception)
    for text in (listed.output, ran.output, refused.output, str(refused.exception)):
        assert KEY not in text
