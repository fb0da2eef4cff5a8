"""Bible files: quillmate TOML, SillyTavern, NovelAI and KoboldAI Lite imports, exports and round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.bible import Bible, BibleError
from assistant.bible.files import read_bible_file, to_sillytavern, write_bible_file

SILLYTAVERN = {
    "entries": {
        "0": {
            "uid": 0,
            "key": ["Mara", "captain"],
            "keysecondary": [],
            "comment": "Mara",
            "content": "Mara: one eye.",
            "constant": False,
            "vectorized": False,
            "selective": True,
            "selectiveLogic": 0,
            "addMemo": True,
            "order": 100,
            "position": 0,
            "disable": False,
            "excludeRecursion": False,
            "preventRecursion": False,
            "probability": 100,
            "useProbability": True,
            "depth": 4,
            "group": "",
            "groupOverride": False,
            "groupWeight": 100,
            "scanDepth": None,
            "caseSensitive": None,
            "matchWholeWords": None,
            "automationId": "",
            "role": None,
            "displayIndex": 0,
        },
        "1": {
            "uid": 1,
            "key": ["/gulls?/i"],
            "keysecondary": ["sea"],
            "comment": "",
            "content": "The Gull, a ship.",
            "constant": True,
            "selective": True,
            "order": 50,
            "position": 4,
            "disable": True,
            "probability": 40,
            "useProbability": True,
            "depth": 2,
            "group": "ships",
            "caseSensitive": True,
            "matchWholeWords": False,
        },
    }
}

NOVELAI = {
    "lorebookVersion": 5,
    "entries": [
        {
            "text": "Lis: a harbour town.",
            "contextConfig": {
                "prefix": "",
                "suffix": "\n",
                "tokenBudget": 1,
                "reservedTokens": 0,
                "budgetPriority": 400,
                "trimDirection": "trimBottom",
                "insertionType": "newline",
                "maximumTrimType": "sentence",
                "insertionPosition": -1,
            },
            "lastUpdatedAt": 1700000000000,
            "displayName": "Lis",
            "id": "1b0c9c1e-0000-4000-8000-000000000001",
            "keys": ["Lis", "harbour"],
            "searchRange": 1000,
            "enabled": True,
            "forceActivation": False,
            "keyRelative": False,
            "nonStoryActivatable": False,
            "category": "",
            "loreBiasGroups": [{"phrases": [], "bias": 0}],
        },
        {
            "text": "Tone: salt and rope.",
            "contextConfig": {"budgetPriority": 800, "tokenBudget": 2048},
            "displayName": "Tone",
            "keys": [],
            "searchRange": 5000,
            "enabled": True,
            "forceActivation": True,
            "category": "style",
        },
    ],
    "settings": {"orderByKeyLocations": False},
    "categories": [],
}

KOBOLD_SAVE = {
    "gamestarted": True,
    "prompt": "It began",
    "memory": "A tale of the salt coast.",
    "authorsnote": "Keep it tense.",
    "anotetemplate": "[Author's note: <|>]",
    "actions": [],
    "worldinfo": [
        {
            "key": "Mara,captain",
            "keysecondary": "",
            "keyanti": "",
            "content": "Mara: one eye.",
            "comment": "",
            "folder": None,
            "selective": False,
            "constant": False,
            "probability": 100,
            "wigroup": "",
            "widisabled": False,
        },
        {
            "key": "Gull",
            "keysecondary": "",
            "keyanti": "rowboat",
            "content": "The Gull.",
            "comment": "Ship",
            "folder": None,
            "selective": False,
            "constant": True,
            "probability": 100,
            "wigroup": "",
            "widisabled": False,
        },
    ],
}


def write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_sillytavern_world_info(tmp_path: Path) -> None:
    result = read_bible_file(write(tmp_path / "world.json", SILLYTAVERN))
    assert result.format == "sillytavern"
    mara, gull = result.bible.entries
    assert (mara.name, mara.keys, mara.content, mara.order, mara.priority) == (
        "Mara",
        ("Mara", "captain"),
        "Mara: one eye.",
        100,
        100,
    )
    assert (gull.name, gull.always_on, gull.enabled, gull.case_sensitive, gull.whole_word) == (
        "/gulls?/i",
        True,
        False,
        True,
        False,
    )
    assert result.unmapped == ["entry '/gulls?/i': secondary keys, probability, inclusion group, position and depth"]


def test_novelai_lorebook(tmp_path: Path) -> None:
    result = read_bible_file(write(tmp_path / "story.lorebook", NOVELAI))
    assert result.format == "novelai"
    lis, tone = result.bible.entries
    assert (lis.name, lis.keys, lis.priority, lis.always_on) == ("Lis", ("Lis", "harbour"), 400, False)
    assert (tone.always_on, tone.priority, tone.order < lis.order) == (True, 800, True)
    assert result.unmapped == ["entry 'Tone': its own search range, category"]


def test_koboldai_lite_save_brings_memory_and_authors_note(tmp_path: Path) -> None:
    result = read_bible_file(write(tmp_path / "saved.json", KOBOLD_SAVE))
    assert result.format == "kobold"
    bible = result.bible
    assert (bible.memory, bible.authors_note) == ("A tale of the salt coast.", "Keep it tense.")
    assert [(e.name, e.keys, e.always_on) for e in bible.entries] == [
        ("Mara", ("Mara", "captain"), False),
        ("Ship", ("Gull",), True),
    ]
    assert result.unmapped == ["entry 'Ship': anti-keys"]
    assert read_bible_file(write(tmp_path / "wi.json", KOBOLD_SAVE["worldinfo"])).bible.entries == bible.entries


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"entries": {"0": {"key": ["Mara"], "content": "x"', "is not valid JSON"),
        ('{"entries": {"0": {"key": 5, "content": "x"}}}', "entry 0, key should be a list of words"),
        ('{"lorebookVersion": 5, "entries": [{"text": 3, "displayName": "Lis"}]}', "entry 'Lis' should be text"),
        ('[{"key": "Mara", "content": "x"}, "oops"]', "entry 2 is not an entry"),
        ('{"entries": {"0": {"key": ["/(/"], "comment": "Bad", "content": "x"}}}', "entry 'Bad': key '/(/'"),
        ('{"something": "else"}', "is not a lorebook quillmate knows"),
        ('memory = "x"\n[[entry]]\nname = "A"\ncolor = 1\n', "entry 'A': color is not something a bible knows"),
        ('memory = "x\n', "is not valid TOML (line 1)"),
    ],
)
def test_malformed_files_are_clear_errors(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(BibleError) as caught:
        read_bible_file(path)
    assert expected in caught.value.message, caught.value.message
    assert "\n" not in caught.value.message


def test_quillmate_toml_round_trip(tmp_path: Path) -> None:
    bible = Bible.of(
        {
            "memory": "A tale of the salt coast.\nMara captains the Gull; she never sings.\n",
            "authors_note": 'Keep it "tense".',
            "entries": [
                {
                    "name": "Mara",
                    "keys": ["Mara", "/capt(ain)?/"],
                    "content": "One eye.\n\nLoud.",
                    "priority": 5,
                    "order": 3,
                    "always_on": True,
                    "case_sensitive": True,
                },
                {
                    "name": "Gull",
                    "keys": ["Gull"],
                    "content": "It ends in '''quotes'''",
                    "enabled": False,
                    "whole_word": False,
                    "regex": False,
                },
            ],
            "settings": {"recursion": 2, "authors_note_unit": "lines", "budget_fraction": 0.5},
        }
    )
    path = write_bible_file(bible, tmp_path / "story.bible.toml")
    assert "[[entry]]" in path.read_text(encoding="utf-8")
    again = read_bible_file(path)
    assert again.format == "quillmate" and again.bible == bible


def test_sillytavern_export_imports_back(tmp_path: Path) -> None:
    bible = Bible.of(
        {
            "entries": [
                {"name": "Mara", "keys": ["Mara"], "content": "One eye.", "order": 7, "priority": 7, "always_on": True}
            ]
        }
    )
    path = write_bible_file(bible, tmp_path / "world.json", "sillytavern")
    assert json.loads(path.read_text(encoding="utf-8")) == to_sillytavern(bible)
    back = read_bible_file(path)
    assert back.bible.entries == bible.entries and back.unmapped == []
