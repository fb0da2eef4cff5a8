"""What a story bible holds: memory, the author's note, keyed entries and how they are used.

A :class:`Bible` belongs to a session (stored in its database) or to a file kept
beside the manuscript (see :mod:`assistant.bible.files`). Everything is checked when
it is built: a key that is not a valid regular expression, two entries with the same
name or a setting out of range is a :class:`BibleError` naming the entry and the key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from backends.errors import UsageError

Unit = Literal["paragraphs", "lines"]
M = TypeVar("M", bound="BaseModel")


class BibleError(UsageError):
    """A bible, an entry or a bible file is wrong: a bad key, a duplicate name, a malformed file."""


# A key written /like this/i is a regular expression (SillyTavern writes them so too).
_SLASHED = re.compile(r"^/(.+)/([imsx]*)$", re.S)


class Entry(BaseModel):
    """One story bible entry: a character, place, thing or piece of lore.

    Attributes:
        name: What the writer calls it; unique within a bible.
        keys: Words that bring it into the prompt when they appear near the cursor. A key
            written ``/like this/i`` is a regular expression even when ``regex`` is off.
        content: The text the model reads.
        regex: Every key is a regular expression.
        case_sensitive: Keys match only with the same capitals (off: ``mara`` finds ``Mara``).
        whole_word: A plain key matches only whole words (``Ann`` does not find ``Annual``).
        always_on: In every prompt, whether or not a key appears.
        priority: When the budget is tight, entries with a lower priority are left out first.
        order: Where it goes among the entries: lower first (ties by name).
        enabled: Off: never used, but kept.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    keys: tuple[str, ...] = ()
    content: str = ""
    regex: bool = False
    case_sensitive: bool = False
    whole_word: bool = True
    always_on: bool = False
    priority: int = 0
    order: int = 100
    enabled: bool = True

    @field_validator("name")
    @classmethod
    def _strip_name(cls, name: str) -> str:
        name = name.strip()
        if not name:
            raise ValueError("an entry needs a name")
        return name

    @field_validator("keys", mode="before")
    @classmethod
    def _split_keys(cls, keys: Any) -> Any:
        if isinstance(keys, str):  # "Mara, the captain" from a form or the command line
            keys = keys.split(",")
        if isinstance(keys, (list, tuple)):
            return tuple(k.strip() for k in keys if isinstance(k, str) and k.strip()) + tuple(
                k for k in keys if not isinstance(k, str)
            )
        return keys

    @model_validator(mode="after")
    def _check_keys(self) -> Entry:
        for key in self.keys:
            self._pattern(key)  # raises ValueError naming the key
        return self

    def _pattern(self, key: str) -> re.Pattern[str]:
        flags = 0 if self.case_sensitive else re.IGNORECASE
        slashed = _SLASHED.match(key)
        try:
            if slashed:
                for letter in slashed.group(2):
                    flags |= {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}[letter]
                return re.compile(slashed.group(1), flags)
            if self.regex:
                return re.compile(key, flags)
        except re.error as error:
            raise ValueError(f"key {key!r} is not a valid regular expression: {error}") from None
        escaped = re.escape(key)
        if self.whole_word:
            # \b only works next to word characters: a key like "R2-D2!" is bounded by non-word lookarounds.
            escaped = rf"(?<!\w){escaped}(?!\w)"
        return re.compile(escaped, flags)

    @cached_property
    def patterns(self) -> tuple[tuple[str, re.Pattern[str]], ...]:
        """Each key with its compiled pattern."""
        return tuple((key, self._pattern(key)) for key in self.keys)

    def find_key(self, text: str) -> tuple[str, str] | None:
        """The first key found in ``text`` and the words it matched, or None."""
        for key, pattern in self.patterns:
            found = pattern.search(text)
            if found and found.group(0):
                return key, found.group(0)
        return None

    def to_data(self) -> dict[str, Any]:
        """The entry as plain data, leaving out settings at their defaults."""
        data = self.model_dump(exclude_defaults=True)
        data["keys"] = list(self.keys)
        return {"name": self.name, **data}


class BibleSettings(BaseModel):
    """How the bible is used when a prompt is put together.

    Attributes:
        scan_tokens: Keys are looked for in this many tokens of text before the cursor.
        recursion: How many times an included entry's text may bring in further entries (0: never).
        budget_fraction: The share of the model's context that memory, author's note and entries may take.
        min_tail_tokens: The draft's tail keeps at least this many tokens, whatever the bible holds.
        authors_note_depth: How many lines or paragraphs above the end the author's note goes.
        authors_note_unit: ``paragraphs`` or ``lines``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    scan_tokens: int = Field(default=1000, ge=1, le=1_000_000)
    recursion: int = Field(default=0, ge=0, le=10)
    budget_fraction: float = Field(default=0.35, gt=0, le=0.9)
    min_tail_tokens: int = Field(default=128, ge=0)
    authors_note_depth: int = Field(default=1, ge=1, le=1000)
    authors_note_unit: Unit = "paragraphs"

    def to_data(self) -> dict[str, Any]:
        """Only the settings the writer changed."""
        return self.model_dump(exclude_defaults=True)


class Bible(BaseModel):
    """A story bible: memory, author's note, entries and settings.

    Attributes:
        memory: Always in the prompt, at the top: premise, characters' essentials, style.
        authors_note: Short guidance (tone, tense, what happens next) placed just above the cursor.
        entries: The entries, each with a unique name.
        settings: How it is used (see :class:`BibleSettings`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    memory: str = ""
    authors_note: str = ""
    entries: tuple[Entry, ...] = ()
    settings: BibleSettings = Field(default_factory=BibleSettings)

    @model_validator(mode="after")
    def _unique_names(self) -> Bible:
        seen: set[str] = set()
        for entry in self.entries:
            folded = entry.name.casefold()
            if folded in seen:
                raise ValueError(f"two entries are named {entry.name!r}; names must differ")
            seen.add(folded)
        return self

    @classmethod
    def of(cls, data: Mapping[str, Any], *, where: str = "the bible") -> Bible:
        """A bible from plain data, or a :class:`BibleError` saying in one line what is wrong, and where."""
        return build(cls, data, where)

    @property
    def empty(self) -> bool:
        """True when there is nothing to send."""
        return not (self.memory.strip() or self.authors_note.strip() or self.entries)

    def entry(self, name: str) -> Entry:
        """The entry called ``name`` (any capitals).

        Raises:
            BibleError: there is none.
        """
        for entry in self.entries:
            if entry.name.casefold() == name.strip().casefold():
                return entry
        names = ", ".join(e.name for e in self.entries[:8]) or "none yet"
        raise BibleError(f"There is no entry called {name!r}.", f"Entries: {names}.")

    def with_entry(self, entry: Entry, *, replace: str | None = None) -> Bible:
        """A copy with ``entry`` added, or put in place of the entry named ``replace``."""
        entries = list(self.entries)
        if replace is not None:
            index = entries.index(self.entry(replace))
            entries[index] = entry
        else:
            entries.append(entry)
        return self.replaced(entries=tuple(entries))

    def without(self, name: str) -> Bible:
        """A copy without the entry called ``name`` (BibleError if there is none)."""
        gone = self.entry(name)
        return self.replaced(entries=tuple(e for e in self.entries if e is not gone))

    def toggled(self, name: str, enabled: bool | None = None) -> Bible:
        """A copy with the entry switched on or off (flipped when ``enabled`` is None)."""
        entry = self.entry(name)
        value = (not entry.enabled) if enabled is None else enabled
        return self.with_entry(entry.model_copy(update={"enabled": value}), replace=name)

    def replaced(self, **changes: Any) -> Bible:
        """A checked copy with some fields changed."""
        data = self.to_data() | {k: _plain(v) for k, v in changes.items()}
        return Bible.of(data)

    def to_data(self) -> dict[str, Any]:
        """Plain data (what the database and files store)."""
        data: dict[str, Any] = {
            "memory": self.memory,
            "authors_note": self.authors_note,
            "entries": [e.to_data() for e in self.entries],
        }
        settings = self.settings.to_data()
        if settings:
            data["settings"] = settings
        return data


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_defaults=True)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def build(model: type[M], data: Any, where: str) -> M:
    """``model`` validated from ``data``; every problem in one line of a :class:`BibleError`."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise BibleError(
            f"{where[:1].upper()}{where[1:]} has a problem: {describe(error, data)}.",
            "Fix it and try again; nothing was changed.",
        ) from None


def describe(error: ValidationError, data: Any) -> str:
    """A pydantic error in a writer's words: ``entry 'Mara': key '(' is not a valid ...``."""
    problems = []
    for item in error.errors():
        owner, field = _location(item.get("loc", ()), data)
        message = str(item.get("msg", "is not valid")).removeprefix("Value error, ")
        if item.get("type") == "extra_forbidden":
            message = "is not something a bible knows (a typing mistake?)"
        elif item.get("type") == "missing":
            message = "is missing"
        elif field:
            message = f"({item.get('input')!r}): {message[:1].lower()}{message[1:]}"
        text = f"{field} {message}" if field else message
        problems.append(f"{owner}: {text}" if owner else text)
    return "; ".join(problems)


def _location(loc: Iterable[Any], data: Any) -> tuple[str, str]:
    """(``entry 'Mara'`` or ``settings`` or empty, the field's name or empty)."""
    owner, fields = "", list[str]()
    node = data
    for part in loc:
        if isinstance(part, int):
            name = (
                node[part].get("name")
                if isinstance(node, (list, tuple)) and part < len(node) and isinstance(node[part], Mapping)
                else None
            )
            owner = f"entry {name!r}" if name else f"entry {part + 1}"
            node = node[part] if isinstance(node, (list, tuple)) and part < len(node) else None
            fields = []
            continue
        node = node.get(part) if isinstance(node, Mapping) else None
        if part != "entries":
            fields.append(str(part))
    return owner, ".".join(fields)


__all__ = ["Bible", "BibleError", "BibleSettings", "Entry", "Unit"]
