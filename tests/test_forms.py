"""The form checker: syllables from the CMU dictionary, rhymes, and known poems from the corpus.

The poems under tests/fixtures/forms/ are public domain, copied from /work/shared/corpus
(Shakespeare's sonnets, Edward Lear's limericks, Wilde's villanelle "Theocritus", a Bashō
translation); see SOURCES.md there.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.forms import FORMS, check_form, count_syllables, detect_form, find_form, rhymes, syllable_range
from assistant.forms.sounds import fallback_syllables
from backends.errors import UsageError

FIXTURES = Path(__file__).parent / "fixtures" / "forms"


def poem(name: str) -> str:
    return (FIXTURES / f"{name}.txt").read_text(encoding="utf-8")


# Counted by hand, as a dictionary says them.
HAND_CHECKED = [
    ("cat", 1),
    ("the", 1),
    ("strength", 1),
    ("water", 2),
    ("haiku", 2),
    ("sonnet", 2),
    ("quiet", 2),
    ("orange", 2),
    ("autumn", 2),
    ("moonlight", 2),
    ("lantern", 2),
    ("rhythm", 2),
    ("poem", 2),
    ("beautiful", 3),
    ("poetry", 3),
    ("limerick", 3),
    ("syllable", 3),
    ("cicada", 3),
    ("idea", 3),
    ("grandmother's", 3),
    ("wandering", 3),
    ("unbelievable", 5),
]
# Words the dictionary lacks: counted from their spelling.
UNKNOWN = [
    ("quillmate", 2),
    ("blorple", 2),
    ("skrimble", 2),
    ("glimmerous", 3),
    ("frostbloom", 2),
    ("heav'n", 1),
    ("o'er", 1),
    ("lespedeza", 4),
    ("thermopylae", 4),
]


@pytest.mark.parametrize(("word", "count"), HAND_CHECKED)
def test_syllables_of_dictionary_words(word: str, count: int) -> None:
    assert count_syllables(word) == count


@pytest.mark.parametrize(("word", "count"), UNKNOWN)
def test_syllables_of_words_the_dictionary_lacks(word: str, count: int) -> None:
    assert count_syllables(word) == count
    assert fallback_syllables(word) == count


def test_words_with_two_readings_have_a_range() -> None:
    assert syllable_range("fire") == (1, 2)
    assert syllable_range("every") == (2, 3)
    assert syllable_range("family") == (2, 3)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("day", "may", True),
        ("night", "light", True),
        ("beard", "feared", True),
        ("hen", "wren", True),
        ("shines", "declines", True),
        ("dimm'd", "untrimm'd", True),
        ("love", "remove", True),
        ("cat", "dog", False),
        ("day", "day", False),
        ("sea", "stone", False),
        ("chin", "pin", True),
    ],
)
def test_rhymes(a: str, b: str, expected: bool) -> None:
    assert rhymes(a, b) is expected


@pytest.mark.parametrize("name", ["sonnet_001", "sonnet_018", "sonnet_073", "sonnet_116"])
def test_shakespeare_sonnets_keep_the_form(name: str) -> None:
    report = check_form(poem(name), "sonnet")
    assert report.ok, report.problems
    assert report.line_count == 14
    assert report.scheme == "ABABCDCDEFEFGG"
    assert report.rhyme_share is not None and report.rhyme_share >= 0.7
    assert all(9 <= line.syllables <= 11 for line in report.lines)


def test_sonnet_73_rhymes_throughout() -> None:
    report = check_form(poem("sonnet_073"), "shakespearean sonnet")
    assert report.rhyme_scheme == "ABABCDCDEFEFGG"
    assert report.rhymed_pairs == report.rhyme_pairs == 7


@pytest.mark.parametrize("name", ["limerick_lear_beard", "limerick_lear_tree", "limerick_lear_chin"])
def test_lear_limericks_keep_the_form(name: str) -> None:
    report = check_form(poem(name), "limerick")
    assert report.ok, report.problems
    assert report.rhyme_scheme == "AABBA"
    assert detect_form(poem(name)) == FORMS["limerick"]


def test_beard_limerick_syllables() -> None:
    report = check_form(poem("limerick_lear_beard"), "limerick")
    assert [line.syllables for line in report.lines] == [8, 8, 5, 5, 8]
    assert [line.end_word for line in report.lines] == ["beard", "feared", "hen", "wren", "beard"]


def test_a_limerick_printed_on_four_lines_breaks_the_form() -> None:
    report = check_form(poem("limerick_lear_border_four_lines"), "limerick")
    assert not report.ok
    assert report.problems[0] == "it has 4 lines; a limerick has 5."
    assert "line 3 has 11 syllables; the limerick wants 4-7." in report.problems


def test_a_haiku_in_translation_is_not_five_seven_five() -> None:
    report = check_form(poem("haiku_basho_cicada_translation"), "haiku")
    assert [line.syllables for line in report.lines] == [7, 4, 7]  # "Gives us no sign": four
    assert report.problems == (
        "line 1 has 7 syllables; the haiku wants 5.",
        "line 2 has 4 syllables; the haiku wants 7.",
        "line 3 has 7 syllables; the haiku wants 5.",
    )
    assert report.broken_lines == (1, 2, 3)


def test_a_five_seven_five_haiku() -> None:
    text = "An old silent pond\nA frog jumps into the pond\nSplash! Silence again.\n"
    report = check_form(text, "haiku")
    assert report.ok
    assert [line.syllables for line in report.lines] == [5, 7, 5]
    assert detect_form(text) == FORMS["haiku"]


def test_villanelle_refrains_and_rhymes() -> None:
    text = poem("villanelle_wilde_theocritus")
    report = check_form(text, "villanelle")
    assert report.ok, report.problems
    assert report.line_count == 19
    broken = text.replace("Dost thou remember Sicily?\n\nStill by", "Dost thou forget the sea?\n\nStill by")
    problems = check_form(broken, "villanelle").problems
    assert "line 9 should repeat line 3 as a refrain." in problems


def test_a_sonnet_with_lines_missing_and_no_rhymes() -> None:
    lines = poem("sonnet_018").splitlines()[:12]
    assert check_form("\n".join(lines), "sonnet").problems[0] == "it has 12 lines; a sonnet has 14."
    scrambled = "\n".join(f"{line.rstrip(',.:;')} stone" if i % 2 else line for i, line in enumerate(lines + lines[:2]))
    report = check_form(scrambled, "sonnet")
    assert not report.ok
    assert any("should rhyme" in problem for problem in report.problems)


def test_broken_limerick_names_the_lines_that_should_rhyme() -> None:
    text = poem("limerick_lear_chin").replace("with her chin.", "on her harp.")
    report = check_form(text, "limerick")
    assert "lines 1 and 5 should rhyme ('chin', 'harp')." in report.problems
    assert 5 in report.broken_lines


def test_forms_by_name_and_alias() -> None:
    assert find_form("Petrarchan sonnet") == FORMS["petrarchan sonnet"]
    assert find_form("ballad") == FORMS["ballad stanza"]
    assert find_form("free verse") is None
    with pytest.raises(UsageError, match="'ode' is not a form"):
        check_form("Some words", "ode")


def test_report_as_json() -> None:
    data = check_form(poem("limerick_lear_tree"), "limerick").to_dict()
    assert data["ok"] is True
    assert data["rhyme_scheme"] == "AABBA"
    assert data["syllables"] == [8, 9, 6, 6, 9]
    json.dumps(data)


def test_exported_from_the_package() -> None:
    import assistant

    assert assistant.check_form is check_form
    assert "check_form" in assistant.__all__ and "FormReport" in assistant.__all__


# -- the command line ---------------------------------------------------------------------


def quillmate(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args], input=stdin, capture_output=True, text=True, timeout=60
    )


def test_cli_form_check_a_file() -> None:
    done = quillmate("form", "check", str(FIXTURES / "limerick_lear_beard.txt"))
    assert done.returncode == 0, done.stderr
    assert "Form: limerick" in done.stdout
    assert "It keeps the form." in done.stdout


def test_cli_form_check_stdin_as_json_and_a_broken_form() -> None:
    done = quillmate("form", "check", "-", "--form", "haiku", "--json", stdin=poem("haiku_basho_cicada_translation"))
    assert done.returncode == 1
    data = json.loads(done.stdout)
    assert data["form"] == "haiku" and data["ok"] is False
    assert data["syllables"] == [7, 4, 7]


def test_cli_form_check_explains_what_breaks() -> None:
    done = quillmate("form", "check", "-", "--form", "sonnet", stdin=poem("limerick_lear_chin"))
    assert done.returncode == 1
    assert "It has 5 lines; a sonnet has 14." in done.stdout


def test_cli_form_check_bad_input_is_one_line() -> None:
    missing = quillmate("form", "check", "no-such-poem.txt")
    assert missing.returncode != 0
    assert "There is no file 'no-such-poem.txt'" in missing.stderr
    assert "Traceback" not in missing.stderr
    unknown = quillmate("form", "check", "-", "--form", "rondeau", stdin="a line\n")
    assert "'rondeau' is not a form quillmate can check." in unknown.stderr
    empty = quillmate("form", "check", "-", stdin="\n\n")
    assert "The poem has no words to check." in empty.stderr
