"""Each generation setting is declared once (backends/settings.py); everything else derives from it.

Checked here against the real parts: GenerationParams and ParamOverrides, the layers
merged by Assistant, the ``quillmate run`` options (in a subprocess), the server's
request parsing, and the Settings tab under Pilot.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import click
import pytest

from assistant.cli.run_cmd import run as run_command
from assistant.cli.setting_options import overrides_from_options
from assistant.config import Config
from assistant.core import Assistant
from assistant.server.schemas import WIRE_SETTINGS, Limits, parse_request
from backends.errors import InvalidParameters, UsageError
from backends.settings import (
    SETTING,
    SETTING_NAMES,
    SETTINGS,
    GenerationParams,
    ParamOverrides,
    combination_problems,
    validate_setting,
)
from tests.support.scripted_backend import ScriptedBackend

# name: (valid values, invalid values, what the message says it must be)
TABLE: dict[str, tuple[list[Any], list[Any], str]] = {
    "temperature": ([0, 0.0, 0.8, 2], [-0.1, 2.01, float("nan"), "0.5", True], "from 0 to 2"),
    "top_p": ([0.01, 1], [0, 1.5, None], "above 0 and at most 1"),
    "top_k": ([0, 40], [-1, 2.0], "a whole number of 0 or more"),
    "num_alternatives": ([1, 16], [0, 1.5], "a whole number of at least 1"),
    "max_new_tokens": ([1, 4000], [0, -5, "200"], "a whole number of at least 1"),
    "num_beams": ([1, 4], [0, False], "a whole number of at least 1"),
    "repetition_penalty": ([0.5, 1, 1.3], [0, -1], "above 0"),
    "seed": ([None, 0, 12345], [-1, 3.5], "a whole number of 0 or more"),
    "max_lines": ([None, 1, 14], [0, 2.5], "a whole number of at least 1"),
    "stop": ([(), ("\n\n",), ["a", "b"], "one"], [("",), [3], 7], "a list of non-empty strings"),
    "ban": ([(), ("and the",), ["a b", "c"]], [("",), [3]], "a list of non-empty strings"),
    "use_words": ([(), ("kitchen",), ["lantern", "rain"]], [("",), [3]], "a list of non-empty strings"),
    "bias": (
        [(), {"and the": -5}, ["dark=2.5"], [["sea", 3]], "a=b=1"],
        [["x"], {"a": 101}, {" ": 1}, ["a=b"], 7],
        "phrases with weights, as PHRASE=WEIGHT with a weight from -100 to 100",
    ),
    "logprobs": ([0, 5, 20], [-1, 21, 2.5], "a whole number from 0 to 20"),
    "real_words": ([True, False], ["yes", 1, 0, None], "true or false"),
}


def test_the_table_covers_every_setting_and_the_dataclass_is_the_declaration() -> None:
    assert set(TABLE) == set(SETTING_NAMES)
    assert SETTING_NAMES == tuple(f.name for f in fields(GenerationParams)) == GenerationParams.names()
    defaults = GenerationParams()
    for spec in SETTINGS:
        assert getattr(defaults, spec.name) == spec.default
        assert spec.label and spec.help.endswith(".") and spec.flags
    assert (SETTING["seed"].optional, SETTING["stop"].many, SETTING["top_k"].kind) == (True, True, int)
    GenerationParams().validated()  # the defaults are valid


@pytest.mark.parametrize("name", sorted(TABLE))
def test_each_setting_is_checked_the_same_way_everywhere(name: str) -> None:
    good, bad, requirement = TABLE[name]
    spec = SETTING[name]
    assert requirement in spec.requirement
    for value in good:
        assert validate_setting(name, value) is None, value
        assert ParamOverrides({name: value}).apply(GenerationParams()) is not None
    for value in bad:
        problem = validate_setting(name, value)
        assert problem is not None and problem.startswith(spec.called or name), value
        assert requirement in problem and "\n" not in problem
        if value is None:
            continue  # None is "unset" in a layer of overrides
        with pytest.raises(InvalidParameters) as caught:
            ParamOverrides({name: value})
        assert problem in caught.value.message
        with pytest.raises(InvalidParameters) as caught:
            GenerationParams(**{name: value}).validated()
        assert f"{spec.called or name} must be {spec.requirement}" in caught.value.message


def test_every_problem_is_reported_in_one_line() -> None:
    with pytest.raises(InvalidParameters) as caught:
        GenerationParams(temperature=-1, top_p=0, max_lines=0).validated()
    message = caught.value.message
    assert message.startswith("Invalid generation settings: ") and "\n" not in message
    assert all(name in message for name in ("temperature", "top_p", "max_lines"))
    with pytest.raises(InvalidParameters, match="Unknown generation setting: temprature"):
        ParamOverrides(temprature=0.5)
    assert "unknown setting 'temprature'" in (validate_setting("temprature", 0.5) or "")


def test_settings_that_clash_are_found_when_layers_meet() -> None:
    assert combination_problems({"num_alternatives": 4, "num_beams": 2}) == [
        "with beam search, n (4) cannot exceed num_beams (2)"
    ]
    assert combination_problems({"num_alternatives": 4}) == []  # num_beams 1: no beam search
    assert combination_problems({"num_alternatives": 4, "num_beams": "two"}) == []  # left to validate_setting
    beams = ParamOverrides(num_beams=2)  # fine alone
    with pytest.raises(InvalidParameters, match="cannot exceed num_beams"):
        (beams | {"num_alternatives": 4}).apply(GenerationParams())


def test_overrides_merge_with_the_later_layer_winning_and_none_meaning_unset() -> None:
    template = ParamOverrides(temperature=0.9, stop=["\nPoem:"], max_lines=3)
    session = ParamOverrides({"temperature": 0.8, "max_lines": None})
    merged = template | session | {"seed": 4}
    assert dict(merged) == {"temperature": 0.8, "seed": 4, "max_lines": 3, "stop": ("\nPoem:",)}
    assert merged.apply(GenerationParams(top_k=5)) == GenerationParams(
        temperature=0.8, top_k=5, seed=4, max_lines=3, stop=("\nPoem:",)
    )
    assert dict(ParamOverrides(stop=())) == {"stop": ()}  # an explicit "no stop sequences" is kept


# -- the layers in Assistant: config [defaults] < template < the caller ---------------------


@pytest.fixture
def helper() -> Assistant:
    # The built-in poem template sets temperature 0.9; the config's [defaults] says 0.5.
    return Assistant(ScriptedBackend("local"), config=Config(defaults={"temperature": 0.5, "seed": 11}))


def test_an_explicit_value_equal_to_the_default_still_wins(helper: Assistant) -> None:
    assert GenerationParams().temperature == 0.8  # the built-in default, so the old rule dropped it
    template_only = helper.prepare("poem", {"topic": "moss"}).request.params
    assert template_only.temperature == 0.9 and template_only.seed == 11

    given = helper.prepare("poem", {"topic": "moss"}, GenerationParams(temperature=0.8)).request.params
    assert given == GenerationParams(temperature=0.8)  # complete settings are used exactly as given

    layered = helper.prepare("poem", {"topic": "moss", "form": "haiku"}, ParamOverrides(temperature=0.8))
    params = layered.request.params
    assert params.temperature == 0.8
    assert (params.seed, params.max_lines) == (11, 3)  # config default and the haiku's own setting are kept
    assert "\nPoem:" in params.stop
    assert helper.params_for(None, {"temperature": 0.8}).temperature == 0.8


def test_assistant_reports_bad_layers_in_one_line(helper: Assistant) -> None:
    with pytest.raises(InvalidParameters) as caught:
        helper.prepare("poem", {"topic": "moss"}, {"temperature": 3, "num_beams": 0})
    assert "temperature must be from 0 to 2 (got 3)" in caught.value.message
    assert "num_beams" in caught.value.message
    with pytest.raises(InvalidParameters):
        helper.params_for(None, GenerationParams(top_p=0))


# -- the command line -------------------------------------------------------------------


def test_run_has_one_option_per_setting_with_the_declared_flags() -> None:
    options = {p.name: p for p in run_command.params if isinstance(p, click.Option)}
    for spec in SETTINGS:
        option = options[spec.name]
        assert set(option.opts + option.secondary_opts) == set(spec.flags)
        assert option.multiple == spec.many
        assert spec.help in (option.help or "")
    flags = [flag for option in options.values() for flag in option.opts]
    assert {"-n", "--alternatives", "-t", "--temperature", "--max-tokens", "--stop"} <= set(flags)


def test_options_become_overrides_once() -> None:
    given = {name: None for name in SETTING_NAMES} | {"stop": (), "temperature": 0.8, "num_alternatives": 2}
    assert dict(overrides_from_options(given)) == {"temperature": 0.8, "num_alternatives": 2}
    assert dict(overrides_from_options(given | {"stop": ("END",)}))["stop"] == ("END",)
    with pytest.raises(InvalidParameters, match="top_k must be a whole number of 0 or more"):
        overrides_from_options(given | {"top_k": -2})


def test_quillmate_run_refuses_a_temperature_above_the_declared_range(isolated_home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "QUILLMATE_"))}
    env.update(QUILLMATE_HOME=str(isolated_home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    out = subprocess.run(
        [sys.executable, "-m", "assistant", "run", "poem", "--var", "topic=x", "--temperature", "2.5"],
        input=b"",
        capture_output=True,
        env=env,
        timeout=120,
    )
    err = out.stderr.decode()
    assert out.returncode == 2, err
    assert "temperature must be from 0 to 2 (got 2.5)" in err
    assert len(err.strip().splitlines()) == 1 and out.stdout == b""


# -- the server -------------------------------------------------------------------------


def _parse(**fields: Any) -> Any:
    body = {"model": "local", "messages": [{"role": "user", "content": "hi"}], **fields}
    return parse_request(body, "chat", Limits(max_tokens=64, max_alternatives=4))


def test_the_server_maps_openai_names_and_takes_ranges_from_the_declaration() -> None:
    parsed = _parse(max_tokens=10, n=2, temperature=2, top_k=-1, stop="END", seed=0)
    assert isinstance(parsed.overrides, ParamOverrides)
    assert dict(parsed.overrides) == {
        "temperature": 2,
        "top_k": 0,
        "num_alternatives": 2,
        "max_new_tokens": 10,
        "seed": 0,
        "stop": ("END",),
    }
    assert set(WIRE_SETTINGS.values()) <= set(SETTING_NAMES)
    for wire, name in WIRE_SETTINGS.items():
        bad = -2 if wire == "top_k" else TABLE[name][1][0]  # -1 is how some clients turn top_k off
        with pytest.raises(UsageError) as caught:
            _parse(**{wire: bad})
        assert caught.value.message.startswith(f"'{wire}' must be {SETTING[name].requirement}"), wire


def test_the_server_adds_its_own_limits() -> None:
    with pytest.raises(UsageError, match="at most 64 tokens"):
        _parse(max_completion_tokens=65)
    with pytest.raises(UsageError, match="at most 4 alternatives"):
        _parse(n=5)
    assert dict(_parse(stop=[]).overrides) == {}  # an empty list leaves the template's stops alone
    assert dict(_parse(top_k=-1).overrides) == {"top_k": 0}


# -- the Settings tab -------------------------------------------------------------------


async def test_the_settings_tab_is_built_from_the_declaration_and_checks_ranges() -> None:
    from textual.widgets import Input, Label

    from tests.support.settings_host import SettingsHost
    from tui.widgets.panels.settings import SAMPLING_FIELDS, SettingsView

    app = SettingsHost()
    posted = app.posted
    async with app.run_test(size=(100, 40)) as pilot:
        view = app.query_one(SettingsView)
        assert [s.name for s in SAMPLING_FIELDS] == [s.name for s in SETTINGS if s.name != "stop"]
        labels = [str(label.render()) for label in view.query(".setting-label").results(Label)]
        # The number type belongs to the model, not to a generation: it is the one row not in the declaration.
        assert labels == [s.label for s in SAMPLING_FIELDS if not s.many] + ["Number type"]
        temperature = view.query_one("#set-temperature", Input)
        assert temperature.tooltip == SETTING["temperature"].explained
        view.load({}, {"temperature": 0.9, "seed": None})
        assert view.query_one("#set-seed", Input).placeholder == "random"

        temperature.value = "2.5"
        await pilot.pause()
        error = str(view.query_one("#err-temperature").render())
        assert error == "Temperature must be from 0 to 2."
        assert posted == []  # nothing out of range leaves the tab
        view.query_one("#set-top_k", Input).value = "-3"
        temperature.value = "1.5"
        await pilot.pause()
        assert str(view.query_one("#err-temperature").render()) == ""
        assert "Top-k must be a whole number of 0 or more" in str(view.query_one("#err-top_k").render())
        assert posted == []
        view.query_one("#set-top_k", Input).value = "5"
        await pilot.pause()
        assert posted[-1] == {"temperature": 1.5, "top_k": 5}
