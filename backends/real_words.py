"""Keep a local model to real words (the ``real_words`` setting).

A small model spells by pieces and now and then joins pieces into a word no one has
seen ("chopied"). :class:`RealWordsProcessor` stops that as it writes: at each step it
takes the current unfinished word (letters and apostrophes since the last other
character, a word begun in the prompt included), and among the :data:`TOP_K` likeliest
next tokens keeps only those after which

- every word the token finishes is in the CMU pronouncing dictionary (in any case;
  "kitchen's", "dimm'd" and the like count when their plain spelling does), and
- the word it leaves unfinished is still the start of one.

Everything else is set to minus infinity. Digits and punctuation are not words and always
pass; the words of the prompt and of ``use_words`` count as real (a name, a made-up
product). Words are what ``quillmate eval`` counts: runs of ASCII letters with apostrophes
inside them. If none of the likeliest tokens passes, it looks further down the
list, :data:`WIDER_K` at a time, until some do (a small model may like a word's
spelling by pieces far less than its usual one: "kitc" + "hen"). Only when no token at
all will do (every one banned), or the word under way was begun in a way no dictionary
word is (a name in the prompt, say), is the step left alone, so writing never comes to
a dead end.

The dictionary's words are kept in one sorted list (loaded once per process, on first
use, through ``pronouncing``); a text is the start of a word when the first word not
before it in the list begins with it. Each token's text is read once per tokenizer.
What was decided for each (word under way, token) is kept, per tokenizer. Measured on
two CPU cores with the bundled model (whose tokens take about 5 ms each there), the
processor costs about 0.2 ms per token written, 0.6 ms while its verdicts are still being
filled in, and about 0.13 ms per alternative with four at once; cheap enough to be on in
every built-in template where a local model writes.

torch is imported only when the processor first runs.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

TOP_K = 50
"""How many of the likeliest tokens are considered at each step."""

WIDER_K = 1000
"""How many more are considered at a time when none of the first :data:`TOP_K` will do."""

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")  # as assistant.forms.sounds.words_of reads words
_LOOKBACK = 16  # tokens searched back for the start of the unfinished word


def _normal(text: str) -> str:
    return text.lower().replace("’", "'")


class Lexicon:
    """The words of a dictionary, for asking whether a word is known or can still become one.

    Args:
        words: The dictionary's words (lower case); those that cannot be written as one
            word (with dots, hyphens, digits, or apostrophes at an end) are dropped, and so
            are single letters other than "a", "i" and "o" (the dictionary spells out "n"
            and "t", which a model would otherwise leave lying about).
        within: A larger lexicon whose words count too (see :meth:`widened`).
    """

    def __init__(self, words: Iterable[str], *, within: Lexicon | None = None) -> None:
        self.words: list[str] = sorted({w for w in words if _WORD.fullmatch(w) and (len(w) > 1 or w in "aio")})
        self._set = frozenset(self.words)
        self._within = within
        self._viable: dict[str, bool] = {}

    def widened(self, words: Iterable[str]) -> Lexicon:
        """These words and ``words`` (a few: the names and words of a prompt)."""
        return Lexicon(words, within=self)

    def _has(self, word: str) -> bool:
        return word in self._set or (self._within is not None and self._within._has(word))

    def known(self, word: str) -> bool:
        """True when ``word`` (lower case) is a dictionary word, or one with "'s" after it,
        or a poet's "-'d" for "-ed" or "-'st" for "-est".

        Every word known here is known to ``assistant.forms.sounds.is_known``, which also
        reads a word without its apostrophes; that is left out here, or the model would
        learn to spell "histidine" as "Histi'din'e".
        """
        has = self._has
        if has(word):
            return True
        if "'" not in word:
            return False
        return (
            (word.endswith("'s") and has(word[:-2]))
            or (word.endswith("'d") and has(word[:-2] + "ed"))
            or (word.endswith("'st") and has(word[:-3] + "est"))
        )

    def begins(self, prefix: str) -> bool:
        """True when some dictionary word starts with ``prefix``."""
        at = bisect.bisect_left(self.words, prefix)
        if at < len(self.words) and self.words[at].startswith(prefix):
            return True
        return self._within is not None and self._within.begins(prefix)

    def viable(self, begun: str) -> bool:
        """True when a word begun so (lower case, perhaps ending in an apostrophe) can still end as a known one."""
        answer = self._viable.get(begun)
        if answer is None:
            answer = self._can_finish(begun)
            if len(self._viable) > 200_000:
                self._viable.clear()
            self._viable[begun] = answer
        return answer

    def _can_finish(self, begun: str) -> bool:
        if self.begins(begun):
            return True
        if "'" not in begun:
            return False
        head, _, tail = begun.rpartition("'")
        has = self._has
        if tail in ("", "s") and has(head):  # "kitchen'" + "s", or a closing quote
            return True
        if tail in ("", "d") and has(head + "ed"):  # "dimm'd"
            return True
        return tail in ("", "s", "st") and has(head + "est")  # "know'st"

    def run_ok(self, run: str, *, finished: bool) -> bool:
        """True when a run of word characters holds only known words; an unfinished run's
        last word need only be able to become one."""
        words = [(m.group(), m.end()) for m in _WORD.finditer(run)]
        if not words:
            return True
        last, end = words[-1]
        if not finished:
            rest = run[end:]
            if rest == "":
                words.pop()
            elif rest == "'":
                words.pop()
                last += "'"
            else:
                finished = True  # "word''": the word is over
        if not finished and not self.viable(last):
            return False
        return all(self.known(word) for word, _ in words)


@functools.lru_cache(maxsize=1)
def lexicon() -> Lexicon:
    """The CMU pronouncing dictionary's words (loaded on first use, once per process)."""
    import pronouncing

    pronouncing.init_cmu()
    return Lexicon(pronouncing.lookup)


@dataclass(frozen=True)
class _Token:
    """What the processor needs of one token's text (lower case, straight apostrophes)."""

    lead: str  # the word characters it starts with (its whole text when ``whole``)
    whole: bool  # all word characters: the word under way goes on
    trail: str  # the word characters it ends with (the start of a new word)
    inner: tuple[str, ...]  # the runs of word characters between (each a finished word)
    empty: bool  # no text at all (end of text, a special token)


def _token(text: str) -> _Token:
    text = _normal(text)
    if not text:
        return _Token("", False, "", (), True)
    runs = [(m.group(), m.start(), m.end()) for m in re.finditer(r"[a-z']+", text)]
    if len(runs) == 1 and runs[0][1] == 0 and runs[0][2] == len(text):
        return _Token(text, True, text, (), False)
    lead = runs[0][0] if runs and runs[0][1] == 0 else ""
    trail = runs[-1][0] if runs and runs[-1][2] == len(text) and (len(runs) > 1 or not lead) else ""
    inner = tuple(run for run, start, end in runs if start > 0 and end < len(text))
    return _Token(lead, False, trail, inner, False)


@functools.lru_cache(maxsize=4)
def _tokens(tokenizer: Any) -> tuple[_Token, ...]:
    from backends.steering import token_texts

    return tuple(_token(text) for text in token_texts(tokenizer))


@functools.lru_cache(maxsize=4)
def _verdicts(tokenizer: Any) -> dict[tuple[str, int], bool]:
    """What was decided for each (word under way, token), shared by every request to one model."""
    return {}


class RealWordsProcessor:
    """A ``transformers`` logits processor for ``real_words`` (see the module's docstring).

    The words of the prompt count as real too (a character's name, the topic of a poem), as
    do ``also`` (the ``use_words``); a word the prompt leaves unfinished does not.

    Args:
        tokenizer: The model's tokenizer.
        words: The dictionary (by default the CMU pronouncing dictionary's words).
        also: More words to allow.
        top_k: How many of the likeliest tokens to consider at each step.
        wider_k: How many more to consider at a time when none of those will do (0: none).
    """

    def __init__(
        self,
        tokenizer: Any,
        words: Lexicon | None = None,
        also: Iterable[str] = (),
        top_k: int = TOP_K,
        wider_k: int = WIDER_K,
    ) -> None:
        self.tokenizer = tokenizer
        self.tokens = _tokens(tokenizer)
        self.words = words or lexicon()
        self.also = [word for text in also for word in _WORD.findall(_normal(text))]
        self.top_k = top_k
        self.wider_k = wider_k
        self._verdicts = _verdicts(tokenizer) if words is None else {}
        self._wider: Lexicon | None = None  # with the prompt's words, once the prompt is seen
        self._wider_verdicts: dict[tuple[str, int], bool] = {}
        self._started = False

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        if not self._started:  # one call per step, so the first call sees the prompt
            self._started = True
            self._read_prompts(input_ids.tolist())
        values, indices = torch.topk(scores, min(self.top_k, scores.shape[-1]), dim=-1)
        tails = input_ids[:, -_LOOKBACK:].tolist()
        rows: list[int] = []
        columns: list[int] = []
        left_alone: list[int] = []
        for row, (tail, ranked, ids) in enumerate(zip(tails, values.tolist(), indices.tolist(), strict=True)):
            begun = self.word_under_way(tail)
            keep = self._keep(begun, ranked, ids)
            if not keep and self.wider_k and len(ids) < scores.shape[-1]:
                keep = self._look_further(begun, scores[row], len(ids))
            if keep:
                rows.extend([row] * len(keep))
                columns.extend(keep)
            else:
                left_alone.append(row)
        if not rows:
            return scores
        out = torch.full_like(scores, float("-inf"))
        where = (torch.tensor(rows, device=scores.device), torch.tensor(columns, device=scores.device))
        out[where] = scores[where]
        if left_alone:
            out[left_alone] = scores[left_alone]
        return out

    def _keep(self, begun: str, ranked: Sequence[float], ids: Sequence[int]) -> list[int]:
        return [tid for value, tid in zip(ranked, ids, strict=True) if value > -1e30 and self.allows(begun, tid)]

    def _look_further(self, begun: str, scores: Any, seen: int) -> list[int]:
        """The allowed tokens among the next :data:`WIDER_K` likeliest after the ``seen`` first,
        and so on down the list until some are found (rare, so the sort is worth it)."""
        import torch

        ranked, ids = torch.sort(scores, descending=True)
        ranked_list, id_list = ranked.tolist(), ids.tolist()
        for start in range(seen, len(id_list), self.wider_k):
            end = start + self.wider_k
            keep = self._keep(begun, ranked_list[start:end], id_list[start:end])
            if keep or ranked_list[start] < -1e30:
                return keep
        return []

    def _read_prompts(self, prompts: list[list[int]]) -> None:
        """Allow the words of each row's prompt, all but a last one still being written."""
        found = set(self.also)
        for ids in {tuple(ids) for ids in prompts}:
            text = _normal(self.tokenizer.decode(list(ids), skip_special_tokens=True))
            words = list(_WORD.finditer(text))
            if words and words[-1].end() == len(text):
                words.pop()
            found.update(match.group() for match in words)
        extra = [word for word in found if not self.words.known(word)]
        if extra:
            self._wider = self.words.widened(extra)

    def word_under_way(self, ids: Sequence[int]) -> str:
        """The unfinished word at the end of these tokens (lower case; "" when the last token ended a word)."""
        begun = ""
        for tid in reversed(ids):
            token = self.tokens[tid] if 0 <= tid < len(self.tokens) else None
            if token is None or token.empty:
                break
            begun = token.trail + begun
            if not token.whole:
                break
        return begun

    def allows(self, begun: str, tid: int) -> bool:
        """True when token ``tid`` may follow the unfinished word ``begun``."""
        if self._wider is not None:
            return _decided(self._wider_verdicts, self._wider, self.tokens, begun, tid)
        return _decided(self._verdicts, self.words, self.tokens, begun, tid)


def _decided(
    verdicts: dict[tuple[str, int], bool], words: Lexicon, tokens: Sequence[_Token], begun: str, tid: int
) -> bool:
    """Whether token ``tid`` may follow ``begun``, remembered in ``verdicts``."""
    key = (begun, tid)
    verdict = verdicts.get(key)
    if verdict is None:
        verdict = 0 <= tid < len(tokens) and _judge(words, tokens[tid], begun)
        if len(verdicts) > 100_000:
            verdicts.clear()
        verdicts[key] = verdict
    return verdict


def _judge(words: Lexicon, token: _Token, begun: str) -> bool:
    # A word begun so that no dictionary word starts that way (a name in the prompt, or a
    # step left alone) is not this step's to judge: only the words after it are.
    judged = not begun or words.run_ok(begun, finished=False)
    if token.empty:
        return not judged or words.run_ok(begun, finished=True)
    if token.whole:
        return not judged or words.run_ok(begun + token.lead, finished=False)
    if judged and not words.run_ok(begun + token.lead, finished=True):
        return False
    if not all(words.run_ok(run, finished=True) for run in token.inner):
        return False
    return not token.trail or words.run_ok(token.trail, finished=False)


__all__ = ["TOP_K", "Lexicon", "RealWordsProcessor", "lexicon"]
