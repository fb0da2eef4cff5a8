"""The writing-quality evaluation (`quillmate eval`): its measures, and a small subset run end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from assistant import Assistant
from assistant.evaluation import (
    Case,
    cases,
    format_table,
    measure,
    midjourney_ok,
    negative_prompt_ok,
    run_eval,
)
from assistant.keywords import content_words, uses_words
from backends.openai_backend import OpenAIBackend
from tests.support.fake_openai_server import FakeOpenAI


def test_the_prompt_set_is_fixed_and_seeded() -> None:
    full = cases()
    assert [c.template for c in full].count("poem") == 24
    assert cases() == full
    small = cases(subset=2)
    assert [c.template for c in small] == ["poem", "poem", "slogan", "slogan", "image-prompt", "image-prompt"]
    assert len({c.seed for c in small}) == len(small)
    assert cases(seed=5)[0].seed != full[0].seed


def test_topic_words_match_by_stem() -> None:
    assert content_words("a cat who stole a pie") == ["cat", "stole", "pie"]
    assert uses_words("Two cats and their pies", ["cat", "pie"]) == 1.0
    assert uses_words("The clock's hands", ["clock"]) == 1.0
    assert uses_words("Rain'd on the lantern; thou know'st", ["rain", "know"]) == 1.0
    assert uses_words("nothing here", ["frost"]) == 0.0


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("a lighthouse in a storm, oil painting --ar 16:9 --v 6", True),
        ("a lighthouse --ar 16:9 --v 5.2", True),
        ("a lighthouse --ar 16:9", False),
        ("a lighthouse --ar 0:9 --v 6", False),
        ("a lighthouse --ar 16:9 --v 42", False),
    ],
)
def test_midjourney_parameters(text: str, ok: bool) -> None:
    assert midjourney_ok(text) is ok


def test_negative_prompt() -> None:
    assert negative_prompt_ok("a fox in snow, watercolour\nNegative prompt: blurry, text")
    assert not negative_prompt_ok("a fox in snow, watercolour")
    assert not negative_prompt_ok("a fox\nNegative prompt:")


def test_measures_of_a_limerick_and_a_haiku() -> None:
    limerick = (Path(__file__).parent / "fixtures" / "forms" / "limerick_lear_beard.txt").read_text()
    found = measure(Case("poem", {"topic": "an old man's beard", "form": "limerick"}, 1), limerick)
    assert found["aabba"] is True and found["on_topic"] is True and found["form_ok"] is True
    haiku = measure(Case("poem", {"topic": "first frost", "form": "haiku"}, 1), "one two three four five\nsix")
    assert haiku["five_seven_five"] is False and haiku["on_topic"] is False


def test_eval_on_an_openai_compatible_server(tmp_path: Path) -> None:
    """Any backend: no token probabilities over HTTP, so perplexity is reported as not available."""
    with FakeOpenAI() as fake:
        fake.replies[:] = [
            "An old silent pond\nA frog jumps into the pond\nSplash! Silence again.",  # haiku
            "- Ring the bicycle bell\n- A bell for every road",  # slogans
            "a lighthouse in a storm, crashing waves, oil painting --ar 16:9 --v 6",  # image prompt
        ]
        backend = OpenAIBackend.from_options(
            "fake", {"model": "gpt-test", "base_url": fake.url("scripted"), "timeout": 5, "mode": "chat"}
        )
        with Assistant(backend) as helper:
            report = run_eval(helper, subset=1)
    poem, slogan, image = (report["templates"][name] for name in ("poem", "slogan", "image-prompt"))
    assert poem["haiku_five_seven_five"] == 1.0
    assert slogan["names_product"] == 1.0
    assert image["midjourney_params_ok"] == 1.0 and image["scene_words"] == 1.0
    assert report["heldout_perplexity"] is None
    table = format_table(report)
    assert "| poem | haiku exactly 5-7-5 (of 1) | 100% |" in table
    assert "| all | held-out perplexity | n/a |" in table


@pytest.mark.slow
def test_cli_eval_subset_on_the_bundled_model(tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    done = subprocess.run(
        [sys.executable, "-m", "assistant", "eval", "--subset", "1", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "| poem | haiku exactly 5-7-5 (of 1) |" in done.stdout
    report = json.loads(out.read_text())
    assert report["backend"] == "local"
    assert [s["template"] for s in report["samples"]] == ["poem", "slogan", "image-prompt"]
    assert report["templates"]["poem"]["haiku_five_seven_five"] == 1.0
    assert 20 < report["heldout_perplexity"] < 1000


def test_cli_eval_refuses_a_missing_folder(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "assistant", "eval", "--json", str(tmp_path / "nope" / "e.json")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "There is no folder" in done.stderr and "Traceback" not in done.stderr
