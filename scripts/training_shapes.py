"""The second edition's training shapes: documents that teach the bundled model to use what a
template asks for.

Each shape matches a built-in template's ``[completion]`` prompt exactly (``prompts/*.toml``):

* ``Poem: … / Form: … / Keywords: a, b, c`` — the keywords are content words of the poem's own
  text, so at writing time the topic's words (which the template puts there) get used;
* ``Sayings about {phrase}:`` — short lines that all use the phrase's word;
* ``Image prompts, one line each: …`` — scenes cut from the prose's own sentences, written out
  as subject, setting, light, colour and medium;
* fill-in-the-middle — ``<|fim_prefix|>`` head and text before the gap, ``<|fim_suffix|>``
  text after it, ``<|fim_middle|>`` the missing text, so a continuation in the middle of a
  draft fits what follows the cursor.
"""

from __future__ import annotations

import itertools
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import replace
from typing import Protocol

from assistant.keywords import STOP_WORDS, content_words
from backends.fim import end_at_word

FIM_PREFIX, FIM_SUFFIX, FIM_MIDDLE = "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"
FIM_TOKENS = (FIM_PREFIX, FIM_SUFFIX, FIM_MIDDLE)

IMAGE_HEADER = "Image prompts, one line each: subject, setting, light, colour, medium."
LIGHTS = (
    "soft morning light", "golden hour", "warm amber light", "cold moonlight", "blue hour",
    "candlelight", "overcast daylight", "dramatic chiaroscuro", "misty dawn light", "firelight",
    "harsh noon sun", "dappled sunlight", "stormy twilight", "lantern glow", "starlight",
)  # fmt: skip
COLOURS = (
    "muted earth tones", "deep blues and greens", "rich reds and golds", "pale pastel colours",
    "silver and grey", "warm ochre and umber", "vivid saturated colour", "sepia tones",
    "emerald and bronze", "black and white", "soft greens and browns", "crimson and ivory",
)  # fmt: skip
MEDIUMS = (
    "storybook watercolour", "oil painting", "35mm film photograph", "ukiyo-e woodblock print",
    "pencil sketch", "digital painting", "gouache illustration", "etching", "pre-Raphaelite painting",
    "cinematic still", "charcoal drawing", "stained glass", "linocut print", "fantasy concept art",
)  # fmt: skip
DETAILS = ("fine detail", "highly detailed", "soft shadows", "wide shot", "close-up", "shallow depth of field")

_SCENE = re.compile(
    r"\b(?:a|an|the) ((?:[a-z]+ )?[a-z]{3,}) (in|on|by|under|beside|near|upon|among|across|through|"
    r"over|before|at) (?:a|an|the) ((?:[a-z]+ )?[a-z]{3,})\b"
)
_VAGUE = frozenset({"same", "other", "one", "very", "whole", "best", "first", "last", "next", "own"})
_TALK = re.compile(r"\b(said|says|answered|replied|cried|asked|however)\b", re.I)
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]")


class Shaped(Protocol):
    """What this module needs of a training document (the script's ``Doc``)."""

    text: str
    genre: str
    weight: float


def common_words(texts: Iterable[str], top: int = 250) -> frozenset[str]:
    """The corpus's most frequent words: too common to stand for what a text is about."""
    counts: Counter[str] = Counter()
    for t in texts:
        counts.update(re.findall(r"[a-z']+", t.lower()))
    return frozenset(w for w, _ in counts.most_common(top)) | STOP_WORDS


_DETERMINERS = frozenset({"the", "a", "an", "his", "her", "my", "their", "our", "your", "this", "its"})


def nouns(texts: Iterable[str], share: float = 0.35, least: int = 4) -> frozenset[str]:
    """Words that usually follow "the", "a" or a possessive: a plain stand-in for a tagger."""
    seen: Counter[str] = Counter()
    after: Counter[str] = Counter()
    for t in texts:
        words = re.findall(r"[a-z']+", t.lower())
        seen.update(words)
        after.update(w for prev, w in itertools.pairwise(words) if prev in _DETERMINERS)
    return frozenset(w for w, n in seen.items() if n >= least and after[w] / n >= share)


def _a(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def pick_keywords(body: str, rng: random.Random, common: frozenset[str]) -> list[str]:
    """2–4 content words of ``body``, leaning to its first lines, in no fixed order."""
    words = [w for w in content_words(body) if w not in common and len(w) > 2 and "'" not in w]
    if len(words) < 2:
        return []
    early = [w for w in content_words("\n".join(body.split("\n")[:4])) if w in set(words)]
    chosen: list[str] = []
    for _ in range(rng.randint(2, 4)):
        pool = early if early and rng.random() < 0.6 else words
        w = rng.choice(pool)
        if w not in chosen:
            chosen.append(w)
    return chosen


def keyword_poem(doc: Shaped, rng: random.Random, common: frozenset[str]) -> Shaped:
    """``Poem: … / Form: … / Keywords: …`` (the ``poem`` template's shape)."""
    head, _, body = doc.text.partition("\n\n")
    keywords = pick_keywords(body, rng, common)
    if not keywords or not head.startswith("Poem:"):
        return doc
    return replace(doc, text=f"{head}\nKeywords: {', '.join(keywords)}\n\n{body}")


def short_lines(docs: Iterable[Shaped]) -> list[str]:
    """Lines and sentences of 4–12 words that read as a saying on their own."""
    found: list[str] = []
    for d in docs:
        body = d.text.partition("\n\n")[2] or d.text
        pieces = body.split("\n") if d.genre == "verse" else _SENTENCE.findall(body)
        for piece in pieces:
            line = " ".join(piece.strip().lstrip("- ").split())
            n = len(line.split())
            if (
                4 <= n <= 10
                and line[:1].isupper()
                and not _TALK.search(line)
                and line[-1:] in ".!?"
                and '"' not in line
            ):
                found.append(line)
    return found


def sayings_about(
    lines: list[str], rng: random.Random, common: frozenset[str], things: frozenset[str], count: int
) -> list[str]:
    """``Sayings about {phrase}:`` documents whose every line uses the phrase's word (a noun)."""
    by_word: dict[str, list[str]] = defaultdict(list)
    for line in dict.fromkeys(lines):
        for w in set(content_words(line)):
            if w in things and w not in common and len(w) > 2 and "'" not in w:
                by_word[w].append(line)
    words = sorted(w for w, ls in by_word.items() if len(ls) >= 4)
    docs: list[str] = []
    for _ in range(count):
        word = rng.choice(words)
        group = rng.sample(by_word[word], min(len(by_word[word]), rng.randint(3, 7)))
        roll = rng.random()
        phrase = word if roll < 0.45 else f"the {word}" if roll < 0.7 else f"{_a(word)} {word}"
        docs.append(f"Sayings about {phrase}:\n" + "\n".join(f"- {s}" for s in group))
    return docs


def scenes(docs: Iterable[Shaped], common: frozenset[str], things: frozenset[str]) -> list[tuple[str, str]]:
    """(scene, sentence) pairs: "a king beside the fire" from the prose's own sentences."""
    found: list[tuple[str, str]] = []
    for d in docs:
        if d.genre != "prose":
            continue
        for sentence in _SENTENCE.findall(d.text):
            m = _SCENE.search(sentence.lower())
            if not m:
                continue
            subject, prep, place = m.groups()
            heads = (subject.split()[-1], place.split()[-1])
            firsts = (subject.split()[0], place.split()[0])
            if any(h in common or h not in things for h in heads) or _VAGUE & set(firsts):
                continue
            found.append((f"{_a(subject)} {subject} {prep} the {place}", sentence.strip()))
    return found


def image_prompt(scene: str, sentence: str, rng: random.Random, things: frozenset[str], style: str) -> str:
    """One prompt line: the scene's words, then setting, light, colour and medium."""
    extra = [w for w in dict.fromkeys(content_words(sentence)) if w in things and w not in scene]
    setting = ", ".join(rng.sample(extra, min(len(extra), rng.randint(1, 2))))
    parts = [scene, setting, rng.choice(LIGHTS), rng.choice(COLOURS), style or rng.choice(MEDIUMS)]
    if rng.random() < 0.5:
        parts.append(rng.choice(DETAILS))
    return ", ".join(p for p in parts if p)


def image_docs(pairs: list[tuple[str, str]], rng: random.Random, things: frozenset[str], count: int) -> list[str]:
    """Documents of 2–3 scenes in the ``image-prompt`` template's completion shape."""
    docs: list[str] = []
    for _ in range(count):
        entries = []
        for scene, sentence in rng.sample(pairs, rng.randint(2, 3)):
            style = rng.choice(MEDIUMS) if rng.random() < 0.3 else ""
            style_line = f"Style: {style}\n" if style else ""
            prompt = image_prompt(scene, sentence, rng, things, style)
            entries.append(f"Scene: {scene}\n{style_line}Prompt: {prompt}")
        docs.append(IMAGE_HEADER + "\n\n" + "\n\n".join(entries))
    return docs


def _gaps(text: str, start: int) -> list[int]:
    return [i for i in range(start, len(text)) if text[i] == " " or text[i] == "\n"]


def fim_split(
    text: str, rng: random.Random, window: int = 1000, after: int = 400, max_middle: int = 40
) -> tuple[str, str, str, str] | None:
    """A document cut for filling in the middle: (head, before, middle, after), at word bounds.

    The middle is one to ``max_middle`` words long.
    """
    head, sep, body = text.partition("\n\n")
    if not sep or len(body) < 120:
        return None
    start = 0
    if len(body) > window:
        paras = [m.start() for m in re.finditer(r"\n\n", body) if m.start() < len(body) - window // 2]
        start = rng.choice([0, *[p + 2 for p in paras]])
    excerpt = body[start : start + window + after]  # the gap falls in the window; what follows it is kept
    cuts = [c for c in _gaps(excerpt, 20) if c <= window]
    if len(cuts) < 4:
        return None
    i = rng.randrange(0, len(cuts) - 2)
    j = rng.randrange(i + 1, min(len(cuts), i + max_middle))
    a, b = cuts[i], cuts[j]
    rest = excerpt[b : b + after]
    reaches_the_end = start + b + after >= len(body)
    return head, excerpt[:a], excerpt[a:b], rest if reaches_the_end else end_at_word(rest)


def fill_in_the_middle(
    text: str,
    rng: random.Random,
    window: int = 1000,
    after: int = 400,
    layout: str = "psm",
    max_middle: int = 40,
) -> str | None:
    """A fill-in-the-middle document: head and an excerpt, split around a gap at word bounds.

    ``psm`` puts the text before the gap first; ``spm`` puts the text after it first, so
    that the text before runs straight into the middle (see backends.fim).
    """
    cut = fim_split(text, rng, window, after, max_middle)
    if cut is None:
        return None
    head, prefix, middle, suffix = cut
    if layout == "spm":
        return f"{FIM_PREFIX}{FIM_SUFFIX}{suffix}{FIM_MIDDLE}{head}\n\n{prefix}{middle}"
    return f"{FIM_PREFIX}{head}\n\n{prefix}{FIM_SUFFIX}{suffix}{FIM_MIDDLE}{middle}"
