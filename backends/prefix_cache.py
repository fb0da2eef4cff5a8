"""Keep the key/value caches of a model's recent prompts, so a prompt that starts the same is not computed again.

Co-writing asks for continuation after continuation of the same draft: the writer's
text grows by a few words and the model is asked again. Computing the draft's keys
and values is nearly all of the wait before the first word, so each local model keeps
the caches of its last few prompts (with what it wrote after them) and hands the
longest matching one to ``generate``, which then computes only the new tokens.

The caches are transformers' own :class:`~transformers.DynamicCache` objects; an entry
that matches only in part is cut back with ``crop()``, on a copy when much of it would be lost. Memory is bounded:
the least recently used entries go first when the total passes ``max_bytes``.

Nothing here imports torch or transformers at import time.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
"""Memory for one model's caches: three full 1,024-token windows of GPT-2 small in float32."""

DEFAULT_MAX_ENTRIES = 8


@dataclass
class _Entry:
    tokens: tuple[int, ...]
    cache: Any  # a DynamicCache of one row holding exactly ``tokens``
    nbytes: int


@dataclass(frozen=True)
class PrefixCacheStats:
    """What the cache holds and how the last look-up went.

    Attributes:
        entries: Caches kept.
        nbytes: Memory they take.
        hits: Look-ups that reused at least one token.
        lookups: Look-ups in all.
        last_reused: Tokens the last look-up took from the cache.
    """

    entries: int
    nbytes: int
    hits: int
    lookups: int
    last_reused: int


class PrefixCache:
    """A small LRU of key/value caches keyed by the tokens they hold, for one model.

    Args:
        max_bytes: Memory the entries may take together; 0 keeps nothing.
        max_entries: Entries kept at most.
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self._entries: list[_Entry] = []  # least recently used first
        self._lock = threading.Lock()
        self._hits = 0
        self._lookups = 0
        self._last_reused = 0

    def take(self, ids: Sequence[int]) -> tuple[Any, int]:
        """A cache holding the longest kept prefix of ``ids``, for ``generate`` to continue.

        At least the last token of ``ids`` is always left to compute, since its output
        is what the first new token is drawn from.

        Args:
            ids: The prompt's tokens.

        Returns:
            A ``DynamicCache`` of one row that the caller may extend, and how many of
            the first tokens of ``ids`` it already holds (0: an empty cache).
        """
        from transformers import DynamicCache

        limit = len(ids) - 1
        with self._lock:
            self._lookups += 1
            best: _Entry | None = None
            reused = 0
            for entry in self._entries:
                shared = _common_prefix(entry.tokens, ids, limit)
                if shared > reused:
                    best, reused = entry, shared
            self._last_reused = reused
            if best is None:
                return DynamicCache(), 0
            self._hits += 1
            lost = len(best.tokens) - reused
            if lost * 4 <= reused:
                # The new prompt extends this entry, or leaves out only its last few tokens (most often
                # what the model wrote after it and the writer did not keep): use it in place rather
                # than copy it; the entry this request leaves behind takes its place.
                self._entries.remove(best)
                cache = best.cache
            else:
                self._touch(best)
                cache = copy.deepcopy(best.cache)
        if lost:
            cache.crop(-lost)
        return cache, reused

    def store(self, tokens: Sequence[int], cache: Any) -> None:
        """Keep ``cache``, a one-row cache holding exactly ``tokens``; entries it extends are dropped.

        Args:
            tokens: The tokens whose keys and values the cache holds.
            cache: A ``DynamicCache`` of one row; the caller must not change it afterwards.
        """
        key = tuple(tokens)
        if not key or cache.get_seq_length() != len(key):
            return
        nbytes = _cache_bytes(cache)
        if nbytes > self.max_bytes or self.max_entries < 1:
            return
        with self._lock:
            self._entries = [e for e in self._entries if e.tokens != key[: len(e.tokens)]]
            self._entries.append(_Entry(key, cache, nbytes))
            while len(self._entries) > self.max_entries or sum(e.nbytes for e in self._entries) > self.max_bytes:
                self._entries.pop(0)

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()

    @property
    def stats(self) -> PrefixCacheStats:
        """What the cache holds now."""
        with self._lock:
            return PrefixCacheStats(
                len(self._entries),
                sum(e.nbytes for e in self._entries),
                self._hits,
                self._lookups,
                self._last_reused,
            )

    def _touch(self, entry: _Entry) -> None:
        self._entries.remove(entry)
        self._entries.append(entry)


def _common_prefix(a: Sequence[int], b: Sequence[int], limit: int) -> int:
    n = min(len(a), len(b), limit)
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def _cache_bytes(cache: Any) -> int:
    # Whole storages: a cropped layer is a view that keeps its full tensor alive.
    total = 0
    for layer in cache.layers:
        for tensor in (getattr(layer, "keys", None), getattr(layer, "values", None)):
            if tensor is not None:
                total += tensor.untyped_storage().nbytes()
    return total
