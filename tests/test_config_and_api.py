"""Config profiles, environment overrides, and the public Python API."""

from __future__ import annotations

from pathlib import Path

import pytest

import assistant
from assistant import Assistant, Delta, GenerationResult, Notice
from assistant.config import load_config
from assistant.errors import ConfigError, InvalidParameters, TemplateError


def write_config(home: Path, text: str) -> Path:
    path = home / "config" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_without_a_config_file(isolated_home: Path) -> None:
    config = load_config()
    assert config.default_backend == "local"
    assert config.profile().kind == "gpt2"
    assert config.profile("openai").kind == "openai"
    assert config.path == isolated_home / "config" / "config.toml"


def test_profiles_merge_with_the_defaults(isolated_home: Path) -> None:
    write_config(
        isolated_home,
        'default_backend = "medium"\n[backends.local]\nmodel = "bundled"\n'
        '[backends.medium]\nkind = "gpt2"\nmodel = "gpt2-medium"\n[defaults]\ntemperature = 0.5\n',
    )
    config = load_config()
    assert config.default_backend == "medium"
    assert config.profile("local").options == {"model": "bundled", "device": "auto", "dtype": "auto"}
    assert config.profile().options["model"] == "gpt2-medium"
    assert config.generation_defaults().temperature == 0.5


def test_environment_picks_the_backend(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUILLMATE_BACKEND", "openai")
    assert load_config().profile().name == "openai"
    monkeypatch.setenv("QUILLMATE_BACKEND", "nowhere")
    with pytest.raises(ConfigError, match="Unknown backend 'nowhere'"):
        load_config()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("default_backend = \n", "line 1"),
        ("colour = 'blue'\n", "colour"),
        ("[backends.x]\nmodel = 'gpt2'\n", "needs a kind"),
        ("[defaults]\ntemperature = -2\n", "temperature"),
        ("[defaults]\nwarmth = 2\n", "warmth"),
    ],
)
def test_config_mistakes_are_named(isolated_home: Path, text: str, message: str) -> None:
    path = write_config(isolated_home, text)
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert message in str(caught.value)
    assert str(path) in str(caught.value) or message in ("needs a kind",)


def test_public_api_matches_all() -> None:
    exported = set(assistant.__all__)
    assert exported == {name for name in dir(assistant)}
    for name in exported:
        assert getattr(assistant, name) is not None
    with pytest.raises(AttributeError):
        assistant.NoSuchThing  # noqa: B018


def test_sync_run_stream_and_params(tiny_model_dir: Path) -> None:
    with Assistant("local", model=str(tiny_model_dir)) as helper:
        result = helper.run("poem", params={"max_new_tokens": 6, "seed": 5}, topic="the sea")
        again = helper.run("poem", params={"max_new_tokens": 6, "seed": 5}, topic="the sea")
        assert isinstance(result, GenerationResult) and result.text == again.text
        events = list(helper.stream("slogan", params={"max_new_tokens": 5, "num_alternatives": 2}, product="tea"))
        assert isinstance(events[-1], GenerationResult) and len(events[-1].texts) == 2
        assert any(isinstance(e, Delta) and e.index == 1 for e in events)
        with pytest.raises(TemplateError, match="topic"):
            helper.run("poem")
        with pytest.raises(InvalidParameters):
            helper.run("poem", params={"temperature": -1}, topic="x")


async def test_async_api_and_template_defaults(tiny_model_dir: Path) -> None:
    helper = Assistant("local", model=str(tiny_model_dir))
    prepared = helper.prepare("poem", {"topic": "rain"}, {"max_new_tokens": 7})
    assert prepared.rendered.form == "completion", "GPT-2 takes the completion form"
    assert prepared.request.params.max_new_tokens == 7
    assert prepared.request.params.stop == tuple(helper.templates.get("poem").params.get("stop", ()))
    result = await helper.arun("poem", params={"max_new_tokens": 5}, topic="rain")
    assert result.usage.completion_tokens <= 5
    notices = [e async for e in helper.astream("continue", params={"max_new_tokens": 3}, text="x " * 3000)]
    assert any(isinstance(e, Notice) and e.kind == "truncated" for e in notices)
    await helper.aclose()


def test_folders_are_created_private(tmp_path: Path) -> None:
    import stat

    from assistant.paths import ensure_dir

    target = ensure_dir(tmp_path / "a" / "b" / "c")
    for folder in (tmp_path / "a", tmp_path / "a" / "b", target):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
