"""Story bible entries: keys (plain, case, whole-word, regex), checks, and bounded recursion."""

from __future__ import annotations

import pytest

from assistant.bible import Bible, BibleError, Entry, find_triggers
from assistant.bible.triggers import text_tail


def words(text: str) -> int:
    return len(text.split())


def names(bible: Bible, text: str) -> list[str]:
    return [t.entry.name for t in find_triggers(bible, text, words)]


def test_plain_keys_ignore_case_and_match_whole_words_by_default() -> None:
    bible = Bible(entries=(Entry(name="Ann", keys=("Ann",)),))
    assert names(bible, "and then ANN spoke") == ["Ann"]
    assert names(bible, "the Annual fair") == []


def test_part_word_and_case_sensitive_keys() -> None:
    bible = Bible(entries=(Entry(name="Ann", keys=("Ann",), whole_word=False, case_sensitive=True),))
    assert names(bible, "the Annual fair") == ["Ann"]
    assert names(bible, "the annual fair") == []


def test_regex_keys_and_the_key_that_triggered() -> None:
    bible = Bible(
        entries=(Entry(name="Gull", keys=("ship", r"gull(s)?\b"), regex=True), Entry(name="Lis", keys=("/harbou?r/i",)))
    )
    triggers = find_triggers(bible, "Two GULLS over the harbor.", words)
    found = {t.entry.name: (t.key, t.matched) for t in triggers}
    assert found == {"Gull": (r"gull(s)?\b", "GULLS"), "Lis": ("/harbou?r/i", "harbor")}


def test_a_bad_regex_is_a_clear_error_naming_entry_and_key() -> None:
    with pytest.raises(BibleError) as caught:
        Bible.of({"entries": [{"name": "Mara", "keys": ["Mara", "/capt(ain/"]}]})
    assert caught.value.message.startswith("The bible has a problem: entry 'Mara': key '/capt(ain/' is not a valid")
    with pytest.raises(BibleError, match="two entries are named"):
        Bible.of({"entries": [{"name": "Mara"}, {"name": "mara"}]})
    with pytest.raises(BibleError, match="colour is not something a bible knows"):
        Bible.of({"entries": [{"name": "Mara", "colour": "red"}]})


def test_only_the_last_scan_tokens_are_searched() -> None:
    bible = Bible.of({"entries": [{"name": "Mara", "keys": ["Mara"]}], "settings": {"scan_tokens": 5}})
    assert names(bible, "Mara left. one two three four five six") == []
    assert names(bible, "one two three four Mara left") == ["Mara"]
    assert text_tail("alpha beta gamma delta", 2, words) == " gamma delta"


def test_disabled_entries_never_come_in_and_always_on_ones_always_do() -> None:
    bible = Bible(entries=(Entry(name="Off", keys=("sea",), enabled=False), Entry(name="Style", always_on=True)))
    triggers = find_triggers(bible, "the sea", words)
    assert [(t.entry.name, t.reason) for t in triggers] == [("Style", "always on")]


def test_recursion_is_bounded() -> None:
    chain = [
        {"name": "A", "keys": ["alpha"], "content": "see beta"},
        {"name": "B", "keys": ["beta"], "content": "see gamma"},
        {"name": "C", "keys": ["gamma"], "content": "see delta"},
        {"name": "D", "keys": ["delta"], "content": "the end"},
    ]
    text = "it began with alpha"
    assert names(Bible.of({"entries": chain}), text) == ["A"]
    two = find_triggers(Bible.of({"entries": chain, "settings": {"recursion": 2}}), text, words)
    assert [(t.entry.name, t.depth, t.via) for t in two] == [("A", 0, None), ("B", 1, "A"), ("C", 2, "B")]
    assert two[2].reason == "key 'gamma' in entry 'B'"


def test_editing_copies_for_a_bible_tab() -> None:
    bible = Bible().with_entry(Entry(name="Mara", keys=("Mara",)))
    bible = bible.toggled("mara")
    assert bible.entry("MARA").enabled is False
    bible = bible.with_entry(Entry(name="Mara Vell", keys=("Mara",)), replace="Mara")
    assert [e.name for e in bible.entries] == ["Mara Vell"]
    assert bible.without("Mara Vell").entries == ()
    with pytest.raises(BibleError, match="no entry called 'Nobody'"):
        bible.entry("Nobody")
