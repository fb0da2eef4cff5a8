"""Bible files: quillmate's own TOML format, and lorebooks from other tools.

quillmate's format (``*.bible.toml``), meant to live beside the manuscript under
version control; every field but ``name`` may be left out::

    memory = \"\"\"
    A tale of the salt coast. Mara captains the Gull.
    \"\"\"
    authors_note = "Keep it tense; short sentences."

    [settings]             # optional; see BibleSettings
    scan_tokens = 1000
    recursion = 1

    [[entry]]
    name = "Mara"
    keys = ["Mara", "the captain"]   # /like this/i for a regular expression
    content = "Mara: captain of the Gull, one eye, never sings."
    priority = 10          # kept before lower priorities when space is short
    order = 100            # place among the entries: lower first
    always_on = false
    enabled = true
    case_sensitive = false
    whole_word = true
    regex = false

Imports read SillyTavern World Info JSON, NovelAI ``.lorebook`` files and KoboldAI
Lite world info (its JSON export, or a saved story with memory and author's note).
Each import is built whole before anything changes, so a malformed file changes
nothing; what had no place in a quillmate bible is listed in ``ImportResult.unmapped``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from assistant.bible.model import Bible, BibleError
from assistant.templates.toml_lines import TomlSyntaxError, read_toml

Format = Literal["quillmate", "sillytavern", "novelai", "kobold"]
FORMATS: tuple[Format, ...] = ("quillmate", "sillytavern", "novelai", "kobold")


@dataclass
class ImportResult:
    """A bible read from a file, and what of the file could not be carried over.

    Attributes:
        bible: The bible read.
        format: Which kind of file it was.
        unmapped: One line for each thing left behind (``entry 'Mara': secondary keys``).
    """

    bible: Bible
    format: Format
    unmapped: list[str] = field(default_factory=list)


def read_bible_file(path: Path | str) -> ImportResult:
    """Read a bible file of any known kind (told apart by its contents).

    Raises:
        BibleError: the file cannot be read, is not a bible of a known kind, or holds a bad entry.
    """
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BibleError(f"There is no bible file at {path}.", "Check the path.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise BibleError(f"The bible file {path} cannot be read: {error}.", "Check it is a text file.") from None
    return parse_bible(text, where=f"the bible file {path.name}")


def parse_bible(text: str, *, where: str = "the bible file") -> ImportResult:
    """A bible from the text of a file of any known kind (see :func:`read_bible_file`)."""
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith(("{", "[")):
        try:
            data = json.loads(stripped)
        except ValueError as error:
            raise BibleError(
                f"{_cap(where)} is not valid JSON: {error}.", "Export the lorebook again from the tool it came from."
            ) from None
        return from_json(data, where=where)
    try:
        data = read_toml(text)
    except TomlSyntaxError as error:
        raise BibleError(
            f"{_cap(where)} is not valid TOML (line {error.line}): {error.message}.",
            "A quillmate bible is TOML; a lorebook from another tool is JSON.",
        ) from None
    return ImportResult(from_toml_data(data, where), "quillmate")


def from_toml_data(data: Mapping[str, Any], where: str = "the bible file") -> Bible:
    """A bible from parsed quillmate TOML (``[[entry]]`` tables)."""
    known = {"memory", "authors_note", "settings", "entry"}
    extra = sorted(set(data) - known)
    if extra:
        raise BibleError(
            f"{_cap(where)} has a problem: {', '.join(extra)} is not something a bible knows (a typing mistake?).",
            "Entries are [[entry]] tables; see `quillmate bible --help`.",
        )
    entries = data.get("entry", [])
    if not isinstance(entries, list):
        raise BibleError(f"{_cap(where)} has a problem: entries must be [[entry]] tables.", "")
    body = {k: v for k, v in data.items() if k != "entry"} | {"entries": entries}
    return Bible.of(body, where=where)


def from_json(data: Any, *, where: str = "the lorebook") -> ImportResult:
    """A bible from a SillyTavern, NovelAI or KoboldAI Lite JSON lorebook (told apart by shape)."""
    if isinstance(data, Mapping) and isinstance(data.get("entries"), Mapping):
        return _from_sillytavern(data, where)
    if isinstance(data, Mapping) and ("lorebookVersion" in data or _looks_novelai(data.get("entries"))):
        return _from_novelai(data, where)
    if isinstance(data, list) or (isinstance(data, Mapping) and "worldinfo" in data):
        return _from_kobold(data, where)
    raise BibleError(
        f"{_cap(where)} is not a lorebook quillmate knows.",
        "quillmate reads SillyTavern World Info, NovelAI .lorebook and KoboldAI Lite world info JSON.",
    )


def _looks_novelai(entries: Any) -> bool:
    return isinstance(entries, list) and any(isinstance(e, Mapping) and "text" in e for e in entries)


def _from_sillytavern(data: Mapping[str, Any], where: str) -> ImportResult:
    unmapped: list[str] = []
    entries: list[dict[str, Any]] = []
    raw = data["entries"]
    for number, (slot, item) in enumerate(sorted(raw.items(), key=lambda kv: _int(kv[0], 0))):
        item = _object(item, f"{where}, entry {slot}")
        keys = _strings(item.get("key", []), f"{where}, entry {slot}, key")
        name = str(item.get("comment") or "").strip() or (keys[0] if keys else f"Entry {number + 1}")
        entry: dict[str, Any] = {
            "name": name,
            "keys": keys,
            "content": _text(item.get("content", ""), f"{where}, entry {name!r}"),
            "always_on": bool(item.get("constant", False)),
            "enabled": not item.get("disable", False),
            # SillyTavern's order is both where an entry goes and which is kept: higher wins both.
            "order": _int(item.get("order"), 100),
            "priority": _int(item.get("order"), 100),
        }
        if item.get("caseSensitive") is not None:
            entry["case_sensitive"] = bool(item["caseSensitive"])
        if item.get("matchWholeWords") is not None:
            entry["whole_word"] = bool(item["matchWholeWords"])
        lost = [
            label
            for label, present in (
                ("secondary keys", item.get("selective") and item.get("keysecondary")),
                ("probability", item.get("useProbability") and _int(item.get("probability"), 100) < 100),
                ("inclusion group", item.get("group")),
                ("position and depth", _int(item.get("position"), 0) not in (0, 1)),
            )
            if present
        ]
        if lost:
            unmapped.append(f"entry {name!r}: {', '.join(lost)}")
        entries.append(entry)
    return ImportResult(_build(entries, {}, where), "sillytavern", unmapped)


def _from_novelai(data: Mapping[str, Any], where: str) -> ImportResult:
    unmapped: list[str] = []
    entries: list[dict[str, Any]] = []
    raw = data.get("entries", [])
    if not isinstance(raw, list):
        raise BibleError(f"{_cap(where)} has a problem: its entries are not a list.", "")
    for number, item in enumerate(raw):
        item = _object(item, f"{where}, entry {number + 1}")
        keys = _strings(item.get("keys", []), f"{where}, entry {number + 1}, keys")
        name = str(item.get("displayName") or "").strip() or (keys[0] if keys else f"Entry {number + 1}")
        found = item.get("contextConfig")
        config: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        priority = _int(config.get("budgetPriority"), 400)
        entries.append(
            {
                "name": name,
                "keys": keys,
                "content": _text(item.get("text", ""), f"{where}, entry {name!r}"),
                "always_on": bool(item.get("forceActivation", False)),
                "enabled": bool(item.get("enabled", True)),
                # NovelAI puts higher budget priorities in first: the same order, lowest number first.
                "priority": priority,
                "order": -priority,
            }
        )
        lost = [
            label
            for label, present in (
                ("its own search range", _int(item.get("searchRange"), 1000) != 1000),
                ("prefix and suffix", config.get("prefix") or (config.get("suffix") or "\n") != "\n"),
                ("its own token budget", _int(config.get("tokenBudget"), 2048) not in (1, 2048)),
                (
                    "bias groups",
                    any(g.get("phrases") for g in item.get("loreBiasGroups", []) if isinstance(g, Mapping)),
                ),
                ("category", item.get("category")),
            )
            if present
        ]
        if lost:
            unmapped.append(f"entry {name!r}: {', '.join(lost)}")
    return ImportResult(_build(entries, {}, where), "novelai", unmapped)


def _from_kobold(data: Any, where: str) -> ImportResult:
    top: dict[str, Any] = {}
    raw = data
    if isinstance(data, Mapping):
        raw = data.get("worldinfo") or []
        top = {
            "memory": _text(data.get("memory", ""), f"{where}, memory"),
            "authors_note": _text(data.get("authorsnote", ""), f"{where}, author's note"),
        }
    if not isinstance(raw, list):
        raise BibleError(f"{_cap(where)} has a problem: its world info is not a list.", "")
    unmapped: list[str] = []
    entries: list[dict[str, Any]] = []
    for number, item in enumerate(raw):
        item = _object(item, f"{where}, entry {number + 1}")
        keys = _strings(item.get("key", ""), f"{where}, entry {number + 1}, key")
        name = str(item.get("comment") or "").strip() or (keys[0] if keys else f"Entry {number + 1}")
        entries.append(
            {
                "name": name,
                "keys": keys,
                "content": _text(item.get("content", ""), f"{where}, entry {name!r}"),
                "always_on": bool(item.get("constant", False)),
                "enabled": not item.get("widisabled", False),
                "order": number,  # KoboldAI Lite has no order or priority: keep the file's
            }
        )
        lost = [
            label
            for label, present in (
                ("secondary keys", item.get("selective") and item.get("keysecondary")),
                ("anti-keys", item.get("keyanti")),
                ("probability", _int(item.get("probability"), 100) < 100),
                ("group", item.get("wigroup")),
            )
            if present
        ]
        if lost:
            unmapped.append(f"entry {name!r}: {', '.join(lost)}")
    return ImportResult(_build(entries, top, where), "kobold", unmapped)


def _build(entries: list[dict[str, Any]], top: dict[str, Any], where: str) -> Bible:
    """The bible, with names made unique (``Mara (2)``): lorebooks often repeat a name."""
    seen: dict[str, int] = {}
    for entry in entries:
        base = entry["name"]
        n = seen.get(base.casefold(), 0) + 1
        seen[base.casefold()] = n
        if n > 1:
            entry["name"] = f"{base} ({n})"
    return Bible.of({**top, "entries": entries}, where=where)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _object(item: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(item, Mapping):
        raise BibleError(
            f"{_cap(where)} is not an entry (found {type(item).__name__}).", "The file may be damaged; export it again."
        )
    return item


def _strings(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        return [k.strip() for k in value.split(",") if k.strip()]
    if isinstance(value, Sequence) and all(isinstance(k, str) for k in value):
        return [k.strip() for k in value if k.strip()]
    raise BibleError(f"{_cap(where)} should be a list of words.", "The file may be damaged; export it again.")


def _text(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BibleError(
            f"{_cap(where)} should be text (found {type(value).__name__}).", "The file may be damaged; export it again."
        )
    return value


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


# ------------------------------------------------------------------ writing


def to_toml(bible: Bible) -> str:
    """The bible in quillmate's TOML format (see the module docstring)."""
    lines = [
        "# A quillmate story bible: memory, author's note and entries.",
        "# `quillmate run continue --bible THIS_FILE` uses it; `quillmate bible import` puts it in a session.",
        f"memory = {_toml_string(bible.memory)}",
        f"authors_note = {_toml_string(bible.authors_note)}",
    ]
    settings = bible.settings.to_data()
    if settings:
        lines += ["", "[settings]", *(f"{k} = {_toml_value(v)}" for k, v in settings.items())]
    for entry in bible.entries:
        lines += ["", "[[entry]]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in entry.to_data().items()]
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return _toml_string(str(value))


def _toml_string(text: str) -> str:
    if "\n" in text and "'''" not in text and all(c == "\n" or c == "\t" or ord(c) >= 32 for c in text):
        return "'''\n" + text + "'''"  # a literal string: what the writer wrote, unescaped
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def to_sillytavern(bible: Bible) -> dict[str, Any]:
    """The bible as SillyTavern World Info JSON (memory and author's note have no place there)."""
    entries: dict[str, Any] = {}
    for uid, entry in enumerate(bible.entries):
        entries[str(uid)] = {
            "uid": uid,
            "key": list(entry.keys),
            "keysecondary": [],
            "comment": entry.name,
            "content": entry.content,
            "constant": entry.always_on,
            "selective": False,
            "order": entry.order,
            "position": 0,
            "disable": not entry.enabled,
            "excludeRecursion": False,
            "probability": 100,
            "useProbability": False,
            "depth": 4,
            "group": "",
            "caseSensitive": entry.case_sensitive,
            "matchWholeWords": entry.whole_word,
            "displayIndex": uid,
        }
    return {"entries": entries}


def write_bible_file(bible: Bible, path: Path | str, fmt: Format = "quillmate") -> Path:
    """Write ``bible`` to ``path`` as quillmate TOML or SillyTavern JSON; returns the path.

    Raises:
        BibleError: an unknown format, or the file cannot be written.
    """
    from assistant.sessions.files import atomic_write

    if fmt == "quillmate":
        text = to_toml(bible)
    elif fmt == "sillytavern":
        text = json.dumps(to_sillytavern(bible), ensure_ascii=False, indent=2) + "\n"
    else:
        raise BibleError(f"quillmate cannot write {fmt} files.", "Export as quillmate or sillytavern.")
    path = Path(path).expanduser()
    try:
        atomic_write(path, text)
    except OSError as error:
        raise BibleError(
            f"The bible could not be written to {path}: {error.strerror or error}.",
            "Check the folder exists and you may write there.",
        ) from None
    return path


__all__ = [
    "FORMATS",
    "Format",
    "ImportResult",
    "from_json",
    "parse_bible",
    "read_bible_file",
    "to_sillytavern",
    "to_toml",
    "write_bible_file",
]
