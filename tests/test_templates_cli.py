"""``quillmate templates``: list, show, validate, new."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.cli.templates_cmd import templates
from assistant.errors import TemplateError, UsageError
from assistant.templates import builtin_templates_dir, load_template_file

GOOD = (
    'name = "haiku"\ndescription = "Three lines."\n'
    '[variables.topic]\nrequired = true\n[chat]\nuser = "A haiku on {topic}"\n'
)
BAD = 'name = "bad"\n[variables.x]\ndefault = ""\n[chat]\nuser = """fine {x}\nevil {x.__class__}\n"""\n'


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("QUILLMATE_HOME", str(tmp_path / "home"))
    return tmp_path / "home" / "config" / "templates"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def put(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_list_shows_builtins_with_origin_and_description(runner: CliRunner, home: Path) -> None:
    result = runner.invoke(templates, ["list"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["continue", "image-prompt", "poem", "rewrite", "slogan"]
    poem = next(line for line in lines if line.startswith("poem"))
    assert "built-in" in poem and "A poem about anything" in poem
    assert str(home) in result.stderr


def test_list_marks_overrides_and_reports_broken_files(runner: CliRunner, home: Path) -> None:
    put(home, "poem.toml", 'name = "poem"\ndescription = "My own poem"\n[chat]\nuser = "x"\n')
    put(home, "haiku.toml", GOOD)
    broken = put(home, "bad.toml", BAD)
    result = runner.invoke(templates, ["list"])
    assert result.exit_code == 0
    rows = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert "user, overrides built-in" in rows["poem"] and "My own poem" in rows["poem"]
    assert "user" in rows["haiku"] and "overrides" not in rows["haiku"]
    assert "bad" not in rows
    assert f"{broken}:6:" in result.stderr and "skipped a broken template" in result.stderr


def test_show_prints_path_variables_and_file(runner: CliRunner, home: Path) -> None:
    result = runner.invoke(templates, ["show", "slogan"])
    assert result.exit_code == 0
    out = result.stdout
    assert "slogan (built-in)" in out
    assert "File:" in out and "slogan.toml" in out
    assert "product*" in out and "(required)" in out
    assert "count" in out and "integer 1..20" in out
    assert "one of: playful, earnest" in out
    assert "--- slogan.toml ---" in out and "[variables.max_words]" in out


def test_show_accepts_a_path(runner: CliRunner, home: Path, tmp_path: Path) -> None:
    path = put(tmp_path / "drafts", "haiku.toml", GOOD)
    result = runner.invoke(templates, ["show", str(path)])
    assert result.exit_code == 0
    assert "haiku (file)" in result.stdout and "topic*" in result.stdout


def test_show_unknown_template_raises_a_template_error(runner: CliRunner, home: Path) -> None:
    result = runner.invoke(templates, ["show", "peom"])
    assert isinstance(result.exception, TemplateError)
    assert "Did you mean 'poem'?" in str(result.exception)


def test_validate_ok_files_exit_zero(runner: CliRunner, home: Path, tmp_path: Path) -> None:
    good = put(tmp_path, "haiku.toml", GOOD)
    result = runner.invoke(templates, ["validate", str(good), "poem"])
    assert result.exit_code == 0
    first, second = result.stdout.splitlines()
    assert first == f"{good}: ok"
    assert second == f"{builtin_templates_dir() / 'poem.toml'}: ok"
    assert result.stderr == ""


def test_validate_reports_file_and_line_and_exits_two(runner: CliRunner, home: Path, tmp_path: Path) -> None:
    good = put(tmp_path, "haiku.toml", GOOD)
    bad = put(tmp_path, "bad.toml", BAD)
    result = runner.invoke(templates, ["validate", str(good), str(bad)])
    assert result.exit_code == 2
    assert f"{good}: ok" in result.stdout and str(bad) not in result.stdout
    assert f"{bad}:6: in chat.user: '{{x.__class__}}' reaches into a value" in result.stderr
    assert "1 of 2 template files had problems" in result.stderr


def test_validate_missing_file_exits_two(runner: CliRunner, home: Path, tmp_path: Path) -> None:
    result = runner.invoke(templates, ["validate", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2
    assert "No template file at" in result.stderr


def test_new_writes_a_valid_starter_and_refuses_to_overwrite(runner: CliRunner, home: Path) -> None:
    result = runner.invoke(templates, ["new", "my-idea"])
    assert result.exit_code == 0
    path = Path(result.stdout.strip())
    assert path == home / "my-idea.toml" and path.is_file()
    assert (home.stat().st_mode & 0o777) == 0o700
    template = load_template_file(path)
    assert template.name == "my-idea"
    path.write_text(path.read_text() + "\n# my edits\n")
    again = runner.invoke(templates, ["new", "my-idea"])
    assert isinstance(again.exception, TemplateError) and "already exists" in str(again.exception)
    assert path.read_text().endswith("# my edits\n")


def test_new_from_builtin_copies_and_renames(runner: CliRunner, home: Path) -> None:
    result = runner.invoke(templates, ["new", "my-poem", "--from", "poem"])
    assert result.exit_code == 0
    template = load_template_file(home / "my-poem.toml")
    assert template.name == "my-poem" and "topic" in template.variables
    same_name = runner.invoke(templates, ["new", "poem", "--from", "poem"])
    assert same_name.exit_code == 0 and "overrides the built-in 'poem'" in same_name.stderr
    listing = runner.invoke(templates, ["list"])
    assert "user, overrides built-in" in next(x for x in listing.stdout.splitlines() if x.startswith("poem "))


@pytest.mark.parametrize("bad", ["my poem", "../escape", "-x"])
def test_new_refuses_bad_names(runner: CliRunner, home: Path, bad: str) -> None:
    result = runner.invoke(templates, ["new", "--", bad])
    assert isinstance(result.exception, UsageError)
    assert not home.exists() or not any(home.iterdir())


def test_main_turns_template_errors_into_one_line_and_exit_two(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from assistant.cli import main

    with pytest.raises(SystemExit) as caught:
        main(["templates", "show", "peom"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("quillmate: Unknown template 'peom'. Did you mean 'poem'?")
    assert "Traceback" not in err


def test_show_missing_path_says_so(runner: CliRunner, home: Path, tmp_path: Path) -> None:
    result = runner.invoke(templates, ["show", str(tmp_path / "gone.toml")])
    assert isinstance(result.exception, TemplateError)
    assert "No template file at" in str(result.exception)


def test_new_with_edit_opens_the_editor_and_checks_the_result(
    runner: CliRunner, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []

    def fake_edit(*, filename: str) -> None:
        opened.append(filename)
        path = Path(filename)
        path.write_text(path.read_text().replace("about {subject}", "about {subject.__doc__}"))

    monkeypatch.setattr("click.edit", fake_edit)
    result = runner.invoke(templates, ["new", "sketch", "--edit"])
    assert result.exit_code == 0
    assert opened == [str(home / "sketch.toml")]
    assert f"{home / 'sketch.toml'}:" in result.stderr and "reaches into a value" in result.stderr
