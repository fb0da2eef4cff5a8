"""The backend contract: what every model backend takes, streams and reports.

A backend turns a :class:`GenerationRequest` (chat messages or a completion
prompt, plus :class:`GenerationParams`) into a stream of events: any number of
:class:`Delta` and :class:`Notice` events, then exactly one
:class:`GenerationResult`. Everything else (templates, sessions, the CLI, the
app) lives in ``assistant`` and works the same for every backend.
The settings themselves are declared in ``backends.settings``.

Nothing here imports torch, transformers or openai.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from backends.errors import ContextOverflow, InvalidParameters
from backends.settings import GenerationParams

FinishReason = Literal["stop", "length", "cancelled", "error"]
Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class TextPart:
    """A piece of a prompt.

    ``elastic`` parts hold the writer's own text. When a prompt does not fit the
    model's context window, elastic parts lose their oldest text first; every
    other part (instructions, notes, examples) is kept whole.
    """

    text: str
    elastic: bool = False
    # The template variables filled into this (fixed) part, as (name, value): lets a prompt
    # that cannot fit say which of the writer's values is too long. Not part of equality.
    values: tuple[tuple[str, str], ...] = field(default=(), compare=False, repr=False)


def join_parts(parts: Sequence[TextPart]) -> str:
    """The plain text of a sequence of parts."""
    return "".join(p.text for p in parts)


@dataclass(frozen=True)
class ChatMessage:
    """One message of a chat prompt; ``content`` is a sequence of parts."""

    role: Role
    content: tuple[TextPart, ...]

    @classmethod
    def of(cls, role: Role, text: str, *, elastic: bool = False) -> ChatMessage:
        """A message made of one part."""
        return cls(role, (TextPart(text, elastic),))

    @property
    def text(self) -> str:
        return join_parts(self.content)


@dataclass(frozen=True)
class GenerationRequest:
    """Either chat ``messages`` or a completion ``prompt``, plus parameters.

    ``suffix`` is the writer's text after the cursor, when the prompt ends at a cursor with
    more text after it: a model that fills in the middle (see ``backends.fim``) writes what
    goes between the two; any other sees the prompt alone, and a Notice says so.
    """

    params: GenerationParams = field(default_factory=GenerationParams)
    prompt: tuple[TextPart, ...] | None = None
    messages: tuple[ChatMessage, ...] | None = None
    suffix: str = ""

    def __post_init__(self) -> None:
        if (self.prompt is None) == (self.messages is None):
            raise InvalidParameters("A request needs either a completion prompt or chat messages.")
        if not isinstance(self.suffix, str):
            raise InvalidParameters("The text after the cursor (suffix) must be text.")

    @classmethod
    def completion(
        cls, prompt: str | Sequence[TextPart], params: GenerationParams | None = None, *, suffix: str = ""
    ) -> GenerationRequest:
        """A completion request; a plain string counts as one elastic part."""
        parts = (TextPart(prompt, elastic=True),) if isinstance(prompt, str) else tuple(prompt)
        return cls(params=params or GenerationParams(), prompt=parts, suffix=suffix)

    @classmethod
    def chat(cls, messages: Sequence[ChatMessage], params: GenerationParams | None = None) -> GenerationRequest:
        """A chat request."""
        return cls(params=params or GenerationParams(), messages=tuple(messages))

    @property
    def is_chat(self) -> bool:
        return self.messages is not None

    @property
    def has_text_after(self) -> bool:
        """True when the writer has words after the cursor (blank space alone does not count)."""
        return bool(self.suffix.strip())


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do. Parameters it cannot honour produce a Notice.

    Attributes:
        chat: Takes chat messages.
        completion: Takes a plain completion prompt.
        context_window: Tokens the model can see at once (prompt + generated).
        max_alternatives: The largest n it can produce in one request.
        seed: Honours ``seed``.
        top_k: Honours ``top_k``.
        beams: Honours ``num_beams``.
        repetition_penalty: Honours ``repetition_penalty``.
        phrase_ban: How it honours ``ban``: ``exact`` (the phrase is never written), ``cut``
            (the text ends just before a banned phrase, found as it streams in), or ``""`` (not at all).
        phrase_bias: Honours ``bias``.
        text_after: Sees the text after the cursor (``suffix``): a model that fills in the
            middle, or a server that takes a completion's ``suffix``.
    """

    chat: bool
    completion: bool
    context_window: int
    max_alternatives: int = 1
    seed: bool = False
    top_k: bool = False
    beams: bool = False
    repetition_penalty: bool = False
    phrase_ban: Literal["exact", "cut", ""] = ""
    phrase_bias: bool = False
    text_after: bool = False


@dataclass(frozen=True)
class Delta:
    """New text for alternative ``index``."""

    index: int
    text: str


NoticeKind = Literal["truncated", "unsupported", "adjusted", "model", "info"]


@dataclass(frozen=True)
class Notice:
    """Something the caller should tell the writer, e.g. that text was left out."""

    kind: NoticeKind
    message: str


NOTICES_FIELD = "quillmate_notices"
"""Extra field of a streamed chunk in which ``quillmate serve`` sends its notices; the ``openai`` backend reads it."""


@dataclass(frozen=True)
class Usage:
    """Token counts of one request.

    Attributes:
        prompt_tokens: Tokens of the prompt.
        completion_tokens: Tokens written, all alternatives together.
        completion_tokens_each: Tokens written by each alternative, in index order, when
            the backend knows them (empty otherwise).
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    completion_tokens_each: tuple[int, ...] = ()

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def completion_tokens_of(self, index: int, alternatives: int = 1) -> int | None:
        """Tokens written by alternative ``index``; None when only the total of several is known."""
        if index < len(self.completion_tokens_each):
            return self.completion_tokens_each[index]
        return self.completion_tokens if alternatives == 1 and index == 0 else None


@dataclass(frozen=True)
class TokenAlternatives:
    """One written token and the words the model almost chose there.

    Attributes:
        token: The token's text, as it stands in the written text (a token that holds
            only part of a character has "" here; the next one carries the character).
        logprob: The natural-log probability the model gave this token.
        top: The likeliest tokens at this point, likeliest first, as ``(text, logprob)``;
            the written token is among them when it was likely enough.
    """

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class GenerationResult:
    """The end of a stream: the full text of every alternative and how it ended.

    Attributes:
        texts: The text of each alternative, in index order.
        finish_reasons: Why each alternative ended.
        usage: Token counts.
        time_to_first_token: Seconds from the request to the first text, if any.
        tokens_per_second: Generated tokens per second of generation time.
        notices: Everything the writer should know (truncation, ignored settings).
        model: The model that produced the text.
        error: For finish reason ``error``: the one-line reason.
        logprobs: With the ``logprobs`` setting: for each alternative, its tokens in order with
            the words the model almost chose at each (empty when not asked or not given).
    """

    texts: tuple[str, ...]
    finish_reasons: tuple[FinishReason, ...]
    usage: Usage = field(default_factory=Usage)
    time_to_first_token: float | None = None
    tokens_per_second: float | None = None
    notices: tuple[Notice, ...] = ()
    model: str = ""
    error: str | None = None
    logprobs: tuple[tuple[TokenAlternatives, ...], ...] = ()

    @property
    def text(self) -> str:
        """The first alternative."""
        return self.texts[0] if self.texts else ""

    @property
    def finish_reason(self) -> FinishReason:
        """The first alternative's finish reason."""
        return self.finish_reasons[0] if self.finish_reasons else "error"

    @property
    def complete(self) -> bool:
        """False when the text was cut short by cancellation or an error."""
        return all(r in ("stop", "length") for r in self.finish_reasons)


StreamEvent = Delta | Notice | GenerationResult


@dataclass(frozen=True)
class BackendInfo:
    """What ``quillmate backends list/check`` shows about a backend."""

    name: str
    kind: str
    model: str
    device: str = ""
    dtype: str = ""
    context_window: int | None = None
    details: dict[str, str] = field(default_factory=dict)


class Backend(ABC):
    """A source of generated text.

    Subclasses set ``kind`` and implement :meth:`capabilities`, :meth:`stream`
    and :meth:`info`. Construction must be cheap and must not load a model or
    import heavy libraries; do that in :meth:`load` or on the first request.
    """

    kind: str = ""

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    @abstractmethod
    def capabilities(self) -> Capabilities:
        """What this backend can do (may load the model's configuration)."""

    @abstractmethod
    def stream(self, request: GenerationRequest) -> AsyncIterator[StreamEvent]:
        """Generate text for ``request``.

        Args:
            request: The prompt or messages and the parameters, already validated.

        Returns:
            An async iterator of Delta and Notice events that ends with one
            GenerationResult. If the consumer stops iterating early (``aclose()``
            or task cancellation), the backend stops producing within 250 ms and
            releases its resources before ``aclose()`` returns.

        Raises:
            BackendError: when the backend cannot start (model missing, key
                refused, server unreachable). Failures after text has started
                arrive as a result with finish reason ``error`` and the partial text.
        """

    @abstractmethod
    def info(self) -> BackendInfo:
        """Describe the backend without generating anything."""

    async def load(self) -> None:  # noqa: B027 - optional hook
        """Load the model or open the connection now rather than on first use."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release the model, connections and threads."""

    async def score_texts(self, texts: Sequence[str], *, context: str = "") -> list[tuple[float, int]] | None:
        """How likely the model finds each of ``texts`` right after ``context``.

        Optional: backends that can see token probabilities (the local model) implement it;
        the core uses it to choose between words (a rhyme) and to measure perplexity.

        Args:
            texts: Continuations to score, each on its own.
            context: Text before each of them (may be empty: the start of a document).

        Returns:
            (sum of natural-log probabilities, token count) for each text, or None when
            this backend cannot tell.
        """
        return None

    def count_tokens(self, text: str) -> int:
        """Approximate token count of ``text`` (backends may do better)."""
        return max(1, math.ceil(len(text.encode("utf-8")) / 4)) if text else 0

    def unsupported_notices(self, params: GenerationParams) -> list[Notice]:
        """Notices for each parameter this backend cannot honour."""
        caps = self.capabilities
        notes: list[str] = []
        if params.top_k and not caps.top_k:
            notes.append("top_k")
        if params.num_beams > 1 and not caps.beams:
            notes.append("num_beams")
        if params.seed is not None and not caps.seed:
            notes.append("seed")
        if params.repetition_penalty != 1.0 and not caps.repetition_penalty:
            notes.append("repetition_penalty")
        if params.ban and not caps.phrase_ban:
            notes.append("ban")
        if params.bias and not caps.phrase_bias:
            notes.append("bias")
        result = [Notice("unsupported", f"{self.name} cannot honour {name}; it was not applied.") for name in notes]
        if params.ban and caps.phrase_ban == "cut":
            result.append(
                Notice(
                    "unsupported",
                    f"{self.name} cannot keep banned phrases from being written; quillmate ends the text "
                    "just before one instead.",
                )
            )
        if params.num_alternatives > caps.max_alternatives:
            result.append(
                Notice(
                    "adjusted",
                    f"{self.name} makes at most {caps.max_alternatives} alternatives; "
                    f"asked for {params.num_alternatives}.",
                )
            )
        return result


class StopFilter:
    """Applies stop sequences and a line limit to one alternative's text as it streams in.

    Text that might be the beginning of a stop sequence is held back until it is
    known not to be; at the first stop sequence the text ends (without it). With
    ``max_lines``, the text ends at the line break that closes its last allowed
    line with words in it.
    """

    def __init__(self, stops: Sequence[str], max_lines: int | None = None) -> None:
        self.stops = tuple(stops)
        self.max_lines = max_lines
        self.text = ""
        self.sent = 0
        self.stopped = False
        self._lines = 0  # lines with words in them, closed by a line break, before _scanned
        self._scanned = 0
        self._line_has_words = False

    def feed(self, piece: str) -> str:
        """Take new text; return what may be shown now."""
        if self.stopped:
            return ""
        self.text += piece
        if self.stops:
            start = max(0, self.sent - max(len(s) for s in self.stops))
            found = [i for i in (self.text.find(s, start) for s in self.stops) if i >= 0]
            if found:
                self.text = self.text[: min(found)]
                self.stopped = True
        if self.max_lines is not None:
            self._cut_at_line_limit()
        if self.stopped:
            return self._release(len(self.text))
        return self._release(len(self.text) - self._held_back())

    def _cut_at_line_limit(self) -> None:
        assert self.max_lines is not None
        for i in range(self._scanned, len(self.text)):
            char = self.text[i]
            if char == "\n":
                if self._line_has_words:
                    self._lines += 1
                    if self._lines >= self.max_lines:
                        self.text = self.text[:i]
                        self.stopped = True
                        break
                self._line_has_words = False
            elif not char.isspace():
                self._line_has_words = True
        self._scanned = len(self.text)

    def flush(self) -> str:
        """The end of the text: release whatever was held back."""
        return self._release(len(self.text))

    def _held_back(self) -> int:
        if not self.stops:
            return 0
        longest = 0
        for stop in self.stops:
            for size in range(min(len(stop) - 1, len(self.text)), longest, -1):
                if self.text.endswith(stop[:size]):
                    longest = size
                    break
        return longest

    def _release(self, upto: int) -> str:
        if upto <= self.sent:
            return ""
        chunk = self.text[self.sent : upto]
        self.sent = upto
        return chunk


@dataclass(frozen=True)
class FittedPrompt:
    """A prompt cut to fit the context window, and what was left out."""

    parts: tuple[TextPart, ...]
    dropped_tokens: int = 0
    dropped_chars: int = 0
    dropped_words: int = 0

    @property
    def text(self) -> str:
        return join_parts(self.parts)

    def notice(self) -> Notice | None:
        if not self.dropped_chars:
            return None
        words = self.dropped_words
        # Text without spaces between words (Chinese, Japanese, one endless run) is measured in characters.
        amount = f"{words:,} words" if words * 20 >= self.dropped_chars else f"{self.dropped_chars:,} characters"
        return Notice(
            "truncated",
            f"Your text was too long for the model's context; the oldest {amount} "
            f"(about {self.dropped_tokens:,} tokens) were left out and the most recent part kept.",
        )


def fit_parts(
    parts: Sequence[TextPart],
    budget: int,
    count_tokens: Callable[[str], int],
    tail_tokens: Callable[[str, int], str],
) -> FittedPrompt:
    """Cut the elastic parts of a prompt from the start until it fits ``budget`` tokens.

    Args:
        parts: The prompt's parts; fixed parts are never cut.
        budget: Tokens the prompt may take.
        count_tokens: Counts the tokens of a text.
        tail_tokens: Returns the end of a text that is at most the given number of tokens.

    Returns:
        The fitted prompt and how much was dropped.

    Raises:
        ContextOverflow: when the fixed parts alone exceed the budget.
    """
    total = count_tokens(join_parts(parts))
    if total <= budget:
        return FittedPrompt(tuple(parts))
    fixed = count_tokens("".join(p.text for p in parts if not p.elastic))
    if fixed > budget or not any(p.elastic for p in parts):
        raise _overflow(parts, fixed, budget, count_tokens)
    elastic_budget = budget - fixed
    # Several elastic parts share the budget; the last (most recent) is served first.
    kept: list[TextPart] = list(parts)
    dropped_tokens = dropped_chars = dropped_words = 0
    for i in range(len(kept) - 1, -1, -1):
        part = kept[i]
        if not part.elastic:
            continue
        n = count_tokens(part.text)
        if n <= elastic_budget:
            elastic_budget -= n
            continue
        tail = _snap_to_word(tail_tokens(part.text, max(elastic_budget, 0))) if elastic_budget > 0 else ""
        lost = part.text[: len(part.text) - len(tail)]
        dropped_tokens += n - count_tokens(tail)
        dropped_chars += len(lost)
        dropped_words += len(lost.split())
        kept[i] = TextPart(tail, elastic=True)
        elastic_budget = 0
    # Tokenisation at the seams can differ by a token or two: trim until it fits.
    while count_tokens(join_parts(kept)) > budget:
        candidates = [i for i, p in enumerate(kept) if p.elastic and p.text]
        if not candidates:
            raise ContextOverflow(
                f"The prompt does not fit the {budget:,} tokens the model has room for.",
                "Shorten the notes, lower max tokens, or use a model with a longer context.",
            )
        i = candidates[-1]
        text = kept[i].text
        # A token less, cut where the backend cuts: the local one cuts in large steps so the
        # kept front, and the computation it can reuse, stays the same from request to request.
        shorter = _snap_to_word(tail_tokens(text, count_tokens(text) - 1))
        cut = len(text) - len(shorter) if len(shorter) < len(text) else max(1, len(text) // 50)
        dropped_chars += cut
        dropped_words += len(text[:cut].split())
        dropped_tokens += count_tokens(text) - count_tokens(text[cut:])
        kept[i] = TextPart(text[cut:], elastic=True)
    return FittedPrompt(tuple(kept), max(dropped_tokens, 1), dropped_chars, dropped_words)


def _overflow(
    parts: Sequence[TextPart], fixed: int, budget: int, count_tokens: Callable[[str], int]
) -> ContextOverflow:
    """The error for a prompt whose fixed parts cannot fit, naming the value that is too long."""
    filled = [pair for part in parts if not part.elastic for pair in part.values]
    if filled:
        name, value = max(filled, key=lambda pair: len(pair[1]))
        tokens = count_tokens(value)
        if tokens * 2 > fixed or tokens > budget // 2:  # it, not the template's own words, is the bulk
            return ContextOverflow(
                f"The {name} is too long for the model: about {tokens:,} tokens, and the model has room "
                f"for {budget:,} for the whole prompt.",
                f"Shorten the {name} (send it in parts), lower max tokens, or use a model with a longer context.",
            )
    return ContextOverflow(
        f"The prompt's instructions and notes alone take about {fixed:,} tokens, "
        f"more than the {budget:,} the model has room for.",
        "Shorten the notes, lower max tokens, or use a model with a longer context.",
    )


def _snap_to_word(text: str) -> str:
    """Drop a partial word at the start of a cut text."""
    if not text or text[0].isspace():
        return text
    for i, ch in enumerate(text[:80]):
        if ch.isspace():
            return text[i:]
    return text
