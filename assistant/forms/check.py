"""The form checker: syllables per line, rhyme scheme, line count, and what breaks a form."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from typing import Any

from assistant.forms.sounds import line_syllables, rhymes, words_of
from assistant.forms.specs import FORMS, FormSpec, find_form, get_form


@dataclass(frozen=True)
class LineReport:
    """One line of a poem as the checker hears it.

    Attributes:
        number: 1-based line number (blank lines are not counted).
        text: The line.
        syllables: Its syllable count (the reading closest to what the form asks).
        syllable_range: The fewest and most syllables it can be read with ("fire" is 1 or 2).
        end_word: The last word, which carries the rhyme.
        rhyme: Its letter in the rhyme scheme the poem actually has.
    """

    number: int
    text: str
    syllables: int
    syllable_range: tuple[int, int]
    end_word: str
    rhyme: str


@dataclass(frozen=True)
class FormReport:
    """What the checker found.

    Attributes:
        form: The form checked against (None: no form, only the description).
        lines: Each line with its syllables and rhyme letter.
        rhyme_scheme: The scheme the poem has, e.g. "AABBA".
        problems: What breaks the form, one sentence each (empty when it keeps it).
        rhyme_pairs: Pairs of lines the form wants to rhyme.
        rhymed_pairs: How many of them do.
        scheme: The form's scheme the poem came closest to.
    """

    form: str | None
    lines: tuple[LineReport, ...]
    rhyme_scheme: str
    problems: tuple[str, ...] = ()
    rhyme_pairs: int = 0
    rhymed_pairs: int = 0
    scheme: str | None = None
    broken_lines: tuple[int, ...] = field(default=(), compare=False)

    @property
    def ok(self) -> bool:
        """True when the poem keeps its form (always, for no form)."""
        return not self.problems

    @property
    def line_count(self) -> int:
        return len(self.lines)

    @property
    def rhyme_share(self) -> float | None:
        """The share of the form's rhyme pairs that rhyme (None when the form has no rhymes)."""
        return self.rhymed_pairs / self.rhyme_pairs if self.rhyme_pairs else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description, as ``quillmate form check --json`` prints it."""
        return {
            "form": self.form,
            "ok": self.ok,
            "line_count": self.line_count,
            "syllables": [line.syllables for line in self.lines],
            "rhyme_scheme": self.rhyme_scheme,
            "scheme": self.scheme,
            "rhyme_share": self.rhyme_share,
            "problems": list(self.problems),
            "broken_lines": list(self.broken_lines),
            "lines": [
                {
                    "number": line.number,
                    "text": line.text,
                    "syllables": line.syllables,
                    "syllable_range": list(line.syllable_range),
                    "end_word": line.end_word,
                    "rhyme": line.rhyme,
                }
                for line in self.lines
            ],
        }

    def summary(self) -> str:
        """One line for a terminal: "haiku: 5-7-5, keeps the form" or what breaks it."""
        counts = "-".join(str(line.syllables) for line in self.lines) or "no lines"
        head = f"{self.form or 'poem'}: {len(self.lines)} lines, syllables {counts}"
        if self.rhyme_scheme and self.lines:
            head += f", rhymes {self.rhyme_scheme}"
        if self.form is None:
            return head
        return f"{head}; keeps the form" if self.ok else f"{head}; {self.problems[0]}"


_TITLE_RE = re.compile(r"^\s*(#+\s|title:|poem:|form:)", re.IGNORECASE)


def poem_lines(text: str) -> list[str]:
    """The lines of a poem that have words in them, stripped."""
    return [line.strip() for line in text.splitlines() if any(ch.isalpha() for ch in line)]


def _end_word(line: str) -> str:
    found = words_of(line)
    return found[-1] if found else ""


def _letters(end_words: list[str]) -> str:
    """The rhyme scheme the lines have: each line gets the letter of the first earlier line it rhymes with."""
    labels: list[str] = []
    groups: list[list[str]] = []
    for word in end_words:
        for index, members in enumerate(groups):
            if any(rhymes(word, other) or (word and word == other) for other in members):
                members.append(word)
                labels.append(_label(index))
                break
        else:
            groups.append([word])
            labels.append(_label(len(groups) - 1))
    return "".join(labels)


def _label(index: int) -> str:
    letters = string.ascii_uppercase
    return letters[index] if index < len(letters) else letters[index % 26].lower()


def _reading(bounds: tuple[int, int], wanted: tuple[int, int] | None) -> int:
    lo, hi = bounds
    if wanted is None:
        return hi if hi == lo else (lo + hi + 1) // 2
    want_lo, want_hi = wanted
    if hi < want_lo:
        return hi
    if lo > want_hi:
        return lo
    return max(lo, min(hi, want_lo if want_lo == want_hi else max(want_lo, lo)))


def _normal(line: str) -> str:
    return " ".join(words_of(line))


def _rhyme_check(spec: FormSpec, ends: list[str], scheme: str) -> tuple[int, int, list[tuple[int, int]]]:
    """(pairs, rhymed, unrhymed pairs as 0-based line indexes) for one scheme."""
    labels = spec.scheme_for(len(ends), scheme)
    first_of: dict[str, list[int]] = {}
    pairs = rhymed = 0
    misses: list[tuple[int, int]] = []
    for index, label in enumerate(labels):
        if label == "x":
            continue
        earlier = first_of.setdefault(label, [])
        if earlier:
            pairs += 1
            refrain = any(index + 1 == copy for _, copy in spec.refrains)
            if any(rhymes(ends[index], ends[j]) or (refrain and ends[index] == ends[j]) for j in earlier):
                rhymed += 1
            else:
                misses.append((earlier[0], index))
        earlier.append(index)
    return pairs, rhymed, misses


def check_form(text: str, form: str | FormSpec | None = "auto") -> FormReport:
    """Check ``text`` against ``form`` ("haiku", "limerick", "sonnet", ... or "auto").

    With "auto" the form is guessed from the line count and rhymes (see :func:`detect_form`);
    with None the poem is only described (syllables, rhyme scheme), nothing is judged.

    Raises:
        UsageError: ``form`` names no known form.
    """
    lines = poem_lines(text)
    spec: FormSpec | None
    if isinstance(form, FormSpec):
        spec = form
    elif form is None:
        spec = None
    elif form.strip().lower() == "auto":
        spec = detect_form(text)
    else:
        spec = get_form(form)
    ends = [_end_word(line) for line in lines]
    bounds = [line_syllables(line) for line in lines]
    counts = [_reading(b, spec.syllables_for(i) if spec is not None else None) for i, b in enumerate(bounds)]
    reports = tuple(
        LineReport(i + 1, line, counts[i], bounds[i], ends[i], letter)
        for i, (line, letter) in enumerate(zip(lines, _letters(ends), strict=True))
    )
    scheme_found = "".join(r.rhyme for r in reports)
    if spec is None:
        return FormReport(None, reports, scheme_found)
    problems: list[str] = []
    broken: set[int] = set()
    length_ok = _check_length(spec, len(lines), problems)
    for i, (lo, hi) in enumerate(bounds):
        wanted = spec.syllables_for(i)
        if wanted is None or (spec.lines is not None and i >= spec.lines):
            continue
        want_lo, want_hi = wanted
        if hi < want_lo or lo > want_hi:
            need = str(want_lo) if want_lo == want_hi else f"{want_lo}-{want_hi}"
            problems.append(f"line {i + 1} has {counts[i]} syllables; the {spec.name} wants {need}.")
            broken.add(i + 1)
    pairs = rhymed = 0
    best_scheme = None
    if spec.schemes and lines:
        scored = [(_rhyme_check(spec, ends, s), s) for s in spec.schemes]
        (pairs, rhymed, misses), best_scheme = max(
            scored, key=lambda item: (item[0][1] / max(1, item[0][0]), -len(item[1]))
        )
        if pairs and rhymed / pairs < spec.min_rhyme_share:
            for a, b in misses:
                problems.append(f"lines {a + 1} and {b + 1} should rhyme ('{ends[a]}', '{ends[b]}').")
                broken.add(b + 1)
    for line, copy in spec.refrains:
        if length_ok and copy <= len(lines) and _normal(lines[line - 1]) != _normal(lines[copy - 1]):
            problems.append(f"line {copy} should repeat line {line} as a refrain.")
            broken.add(copy)
    return FormReport(
        spec.name, reports, scheme_found, tuple(problems), pairs, rhymed, best_scheme, tuple(sorted(broken))
    )


def _check_length(spec: FormSpec, count: int, problems: list[str]) -> bool:
    if spec.lines is not None and count != spec.lines:
        problems.append(f"it has {count} lines; a {spec.name} has {spec.lines}.")
        return False
    if spec.lines is None and spec.stanza and (count == 0 or count % spec.stanza):
        problems.append(f"it has {count} lines; {spec.name} come in groups of {spec.stanza}.")
        return False
    return True


def detect_form(text: str) -> FormSpec | None:
    """The form ``text`` keeps best, or None (free verse) when it keeps none.

    Forms are tried from the most particular; the first the poem keeps wins. A poem that
    keeps none is judged against the form its line count suggests (14 lines: a sonnet),
    so the report says what is missing.
    """
    count = len(poem_lines(text))
    order = (
        "haiku",
        "cinquain",
        "tanka",
        "limerick",
        "villanelle",
        "shakespearean sonnet",
        "petrarchan sonnet",
        "ballad stanza",
        "couplets",
    )
    for name in order:
        if check_form(text, FORMS[name]).ok:
            return FORMS["sonnet"] if name.endswith("sonnet") else FORMS[name]
    by_count = {3: "haiku", 5: "limerick", 14: "sonnet", 19: "villanelle"}
    return find_form(by_count.get(count))
