"""Steering a local model's words: banned phrases and phrase biases.

Two settings reach here (declared in ``backends.settings``): ``ban``, phrases never to
write, and ``bias``, phrases made likelier or rarer. :func:`steering_kwargs` also adds the
processors of ``use_words`` (``backends.word_use``) and ``real_words`` (``backends.real_words``).

**Bans are exact, on the text.** A token-level ban (transformers' ``bad_words_ids``)
misses a phrase the model spells with other tokens (``" and" " the"`` vs ``" an" "d the"``)
and one that starts inside a token. So :class:`PhraseBan` works on characters: at each
step it looks at the end of the text so far and forbids every token that would complete
a banned phrase there, as whole words and in any capitalisation, whatever the tokens
before it were. "Complete" includes a token that ends exactly where the phrase ends
("and" + " the"), since the next token could end the word; a token that carries the
word on ("and" + " then") is allowed. This is the antislop idea (undo the step that
finished a banned phrase and choose again) done before the choice instead of after it,
so it needs no second pass and streams as it goes; the text never holds a banned phrase.
Tokens that are part of a multi-byte character are matched on their decoded text, so
phrases in plain ASCII are exact and others are matched on the characters the
tokenizer spells whole.

**Biases apply to a phrase's tokens in context.** Each phrase is tokenized as written,
in lower case and capitalised, with and without a leading space; its first token gets
the weight everywhere and each later token when the tokens before it in that spelling
were just written (transformers' ``SequenceBiasLogitsProcessor``, given every prefix).

Bans run after the model's own processors (repetition penalty, bias) and before
temperature, top-k and top-p, so sampling only ever narrows to allowed tokens.

torch and transformers are imported only when a processor is made.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Iterable, Sequence
from typing import Any

from backends.base import StopFilter
from backends.settings import GenerationParams

_SPACES = re.compile(r"\s+")
_LAST = "\U0010ffff"


def normalise_phrase(phrase: str) -> str:
    """A phrase as it is matched: lower case, outer spaces off, inner runs of space as one."""
    return _SPACES.sub(" ", phrase.strip()).lower()


def _is_word(char: str) -> bool:
    return bool(char) and (char.isalnum() or char == "_")


class PhraseBan:
    """Which tokens would complete a banned phrase after a given text.

    Args:
        phrases: The banned phrases (any case; empty ones are ignored).
        token_texts: The text of every token id, decoded on its own.
    """

    def __init__(self, phrases: Iterable[str], token_texts: Sequence[str]) -> None:
        self.phrases: tuple[str, ...] = tuple(dict.fromkeys(p for p in map(normalise_phrase, phrases) if p))
        self._lower = [text.lower() for text in token_texts]
        index = sorted((text, tid) for tid, text in enumerate(self._lower) if text)
        self._keys = [text for text, _ in index]
        self._ids = [tid for _, tid in index]
        # (phrase, k) for every phrase begun in the text before the token, by the k-th char of the phrase.
        self._begun: dict[str, list[tuple[str, int]]] = {}
        for phrase in self.phrases:
            for k in range(1, len(phrase)):
                self._begun.setdefault(phrase[k - 1], []).append((phrase, k))
        # Tokens that hold a whole phrase inside them.
        self._holding: list[tuple[str, list[int]]] = []
        for phrase in self.phrases:
            ids = [tid for tid, text in enumerate(self._lower) if len(text) >= len(phrase) and phrase in text]
            if ids:
                self._holding.append((phrase, ids))
        self.longest = max((len(p) for p in self.phrases), default=0)

    def __bool__(self) -> bool:
        return bool(self.phrases)

    def banned(self, text: str) -> set[int]:
        """The token ids that would complete a banned phrase if written right after ``text``.

        ``text`` needs only its last ``longest + 1`` characters (more is fine).
        """
        tail = text[-(self.longest + 1) :].lower() if text else ""
        out: set[int] = set()
        if tail:
            for phrase, k in self._begun.get(tail[-1], ()):
                if not tail.endswith(phrase[:k]):
                    continue
                start = len(tail) - k
                if _is_word(phrase[0]) and start > 0 and _is_word(tail[start - 1]):
                    continue  # "band the" is not "and the"
                rest = phrase[k:]
                low = bisect.bisect_left(self._keys, rest)
                high = bisect.bisect_left(self._keys, rest + _LAST, low)
                for i in range(low, high):
                    if self._ends_phrase(phrase, self._keys[i], len(rest)):
                        out.add(self._ids[i])
        before = tail[-1:] if tail else ""
        for phrase, ids in self._holding:
            for tid in ids:
                if self._holds(phrase, before, self._lower[tid]):
                    out.add(tid)
        return out

    @staticmethod
    def _ends_phrase(phrase: str, token: str, end: int) -> bool:
        """True when the phrase, ending at ``end`` in ``token``, ends a word there (or may)."""
        after = token[end : end + 1]
        return not (_is_word(phrase[-1]) and _is_word(after))

    @classmethod
    def _holds(cls, phrase: str, before: str, token: str) -> bool:
        start = token.find(phrase)
        while start >= 0:
            previous = token[start - 1] if start > 0 else before
            clean_start = not (_is_word(phrase[0]) and _is_word(previous))
            if clean_start and cls._ends_phrase(phrase, token, start + len(phrase)):
                return True
            start = token.find(phrase, start + 1)
        return False


@functools.lru_cache(maxsize=4)
def token_texts(tokenizer: Any) -> tuple[str, ...]:
    """The text of each token id of ``tokenizer``, decoded on its own (cached)."""
    size = len(tokenizer)
    return tuple(
        tokenizer.batch_decode([[i] for i in range(size)], skip_special_tokens=True, clean_up_tokenization_spaces=False)
    )


@functools.lru_cache(maxsize=16)
def _phrase_ban(tokenizer: Any, phrases: tuple[str, ...]) -> PhraseBan:
    return PhraseBan(phrases, token_texts(tokenizer))


def spellings(phrase: str) -> list[str]:
    """The spellings a bias applies to: as written, lower case, capitalised; each with and without a leading space."""
    core = _SPACES.sub(" ", phrase.strip())
    cases = dict.fromkeys([core, core.lower(), core[:1].upper() + core[1:]])
    return [prefix + case for case in cases for prefix in ("", " ")]


def sequence_bias(tokenizer: Any, bias: Sequence[tuple[str, float]]) -> dict[tuple[int, ...], float]:
    """The token sequences to bias and by how much: every prefix of every spelling of each phrase."""
    out: dict[tuple[int, ...], float] = {}
    for phrase, weight in bias:
        keys: set[tuple[int, ...]] = set()
        for spelling in spellings(phrase):
            ids = tokenizer(spelling, add_special_tokens=False)["input_ids"]
            keys.update(tuple(ids[: i + 1]) for i in range(len(ids)))
        for key in keys:
            out[key] = out.get(key, 0.0) + float(weight)
    return {key: weight for key, weight in out.items() if weight}


class PhraseBanProcessor:
    """A logits processor that forbids every token completing a banned phrase (see :class:`PhraseBan`)."""

    def __init__(self, ban: PhraseBan, tokenizer: Any) -> None:
        self.ban = ban
        self.tokenizer = tokenizer
        # Every token spells at least one byte, so this many tokens cover the phrase and the character before it.
        self.window = ban.longest + 2

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        for row in range(input_ids.shape[0]):
            ids = input_ids[row, -self.window :].tolist()
            text = self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
            banned = self.ban.banned(text)
            if banned:
                scores[row, sorted(banned)] = float("-inf")
        return scores


def phrase_pattern(phrases: Iterable[str]) -> re.Pattern[str] | None:
    """A pattern finding any of ``phrases`` as whole words, in any case, with any run of space
    between its words; None when there are no phrases."""
    alternatives = []
    for phrase in dict.fromkeys(p for p in map(normalise_phrase, phrases) if p):
        body = r"\s+".join(re.escape(word) for word in phrase.split(" "))
        start = r"(?<!\w)" if _is_word(phrase[0]) else ""
        end = r"(?!\w)" if _is_word(phrase[-1]) else ""
        alternatives.append(start + body + end)
    return re.compile("|".join(alternatives), re.IGNORECASE) if alternatives else None


class BannedPhraseCut:
    """Ends streamed text just before the first banned phrase, for backends that cannot ban.

    Text that could still become a banned phrase is held back until it is known not to
    be (one more character may end the last word). Then it goes on to ``then`` (a
    :class:`StopFilter` for the stop sequences and line limit). Only the text is judged,
    so the phrase is never shown, but the model did choose it: the alternative ends there.

    Args:
        phrases: The banned phrases.
        then: The filter the allowed text goes through next.
        before: Text already shown before this (when asking again from before a banned
            phrase): never passed on again, but a phrase that begins in it and ends in the
            new text is found, and the cut then comes where the new text starts.
    """

    def __init__(self, phrases: Sequence[str], then: StopFilter, before: str = "") -> None:
        self.pattern = phrase_pattern(phrases)
        self.then = then
        self.text = before
        self.passed = len(before)
        self._floor = len(before)
        self.cut = False
        self._hold = max((len(normalise_phrase(p)) for p in phrases), default=0) + 8

    @property
    def stopped(self) -> bool:
        return self.cut or self.then.stopped

    def feed(self, piece: str) -> str:
        """Take new text; return what may be shown now."""
        if self.stopped:
            return ""
        self.text += piece
        found = self._search()
        if found and found.end() < len(self.text):
            self.cut = True
            return self._pass(found.start())
        upto = found.start() if found else len(self.text) - self._hold
        return self._pass(upto)

    def flush(self) -> str:
        """The end of the text: release what was held back (all of it, unless it ends in a banned phrase)."""
        found = self._search()
        if found:
            self.cut = True
            return self._pass(found.start()) + self.then.flush()
        return self._pass(len(self.text)) + self.then.flush()

    def _search(self) -> re.Match[str] | None:
        """The first banned phrase that reaches into the new text (one wholly in ``before`` is not this one's)."""
        if self.pattern is None:
            return None
        found = self.pattern.search(self.text, max(0, self.passed - self._hold))
        while found is not None and found.end() <= self._floor:
            found = self.pattern.search(self.text, found.start() + 1)
        return found

    def _pass(self, upto: int) -> str:
        if upto <= self.passed:
            return ""
        chunk = self.text[self.passed : upto]
        self.passed = upto
        return self.then.feed(chunk)


def steering_kwargs(tokenizer: Any, params: GenerationParams) -> dict[str, Any]:
    """Extra ``generate()`` arguments for ``params.ban``, ``.bias``, ``.use_words`` and ``.real_words``;
    empty when none is set.

    Real words are kept after the ban, so that the tokens they keep are allowed ones. With any
    set, the sampling warpers (temperature, top-k, top-p) move into the returned processor list,
    after the ban, and ``generate`` is told to add none itself.
    """
    if not params.ban and not params.bias and not params.use_words and not params.real_words:
        return {}
    from transformers import (
        LogitsProcessorList,
        SequenceBiasLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    processors: list[Any] = []
    weights = sequence_bias(tokenizer, params.bias)
    if weights:
        processors.append(SequenceBiasLogitsProcessor([[list(key), weight] for key, weight in weights.items()]))
    if params.use_words:
        from backends.word_use import WordUseProcessor

        processors.append(WordUseProcessor(tokenizer, params.use_words))
    ban = _phrase_ban(tokenizer, tuple(params.ban))
    if ban:
        processors.append(PhraseBanProcessor(ban, tokenizer))
    if params.real_words:
        from backends.real_words import RealWordsProcessor

        processors.append(RealWordsProcessor(tokenizer, also=params.use_words))
    kwargs: dict[str, Any] = {"logits_processor": LogitsProcessorList(processors)}
    if not params.greedy:
        if params.temperature != 1.0:
            processors.append(TemperatureLogitsWarper(params.temperature))
        if params.top_k:
            processors.append(TopKLogitsWarper(params.top_k))
        if params.top_p < 1.0:
            processors.append(TopPLogitsWarper(params.top_p))
        kwargs.update(temperature=1.0, top_k=0, top_p=1.0)
    return kwargs


__all__ = [
    "BannedPhraseCut",
    "PhraseBan",
    "PhraseBanProcessor",
    "normalise_phrase",
    "phrase_pattern",
    "sequence_bias",
    "spellings",
    "steering_kwargs",
    "token_texts",
]
