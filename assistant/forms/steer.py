"""Form-aware generation: poems that keep their form, on every backend.

The rules come from :mod:`assistant.forms.specs`; only the backend contract is used, so
every backend gets this the same way:

* **Completion backends** (the local GPT-2 models, completion endpoints) write the poem
  line by line. For each line one request asks for several candidates at once (a batched
  call); each candidate is cut at the word where its syllables reach the line's count, and
  the cut that keeps the count and the rhyme best is kept; among cuts that keep the form
  equally well, one that brings in a topic word the poem has not used yet wins (the form is
  never traded for the topic). When no candidate rhymes and the
  backend can score text (:meth:`Backend.score_texts`), the line's last word is replaced by
  the rhyme the model finds likeliest there.
* **Chat backends** (OpenAI-compatible APIs) write the whole poem; the checker reads it and
  the model is asked again for just the lines that break the form, a bounded number of times.

Every loop is bounded (:class:`SteerSettings`), and when the form could not be met a
notice says what is still wrong.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, replace

from assistant.forms.check import check_form, poem_lines
from assistant.forms.sounds import WORD_RE, count_syllables, is_known, rhymes, rhymes_for, syllable_range, words_of
from assistant.forms.specs import FormSpec, find_form
from assistant.keywords import keywords, stem, uses_words
from backends.base import (
    Backend,
    ChatMessage,
    Delta,
    GenerationParams,
    GenerationRequest,
    GenerationResult,
    Notice,
    StreamEvent,
    TextPart,
    Usage,
    join_parts,
)


@dataclass(frozen=True)
class SteerSettings:
    """Bounds on form-aware generation.

    Attributes:
        candidates: Candidate lines asked for in each batched call (completion backends).
        rounds: Batched calls at most per line before the best near miss is kept.
        repairs: Times at most a chat backend is asked to rewrite the lines that break the form.
        line_tokens: The longest a candidate line may be, in tokens.
        rhyme_options: Rhyming words at most scored when a line's last word is replaced.
    """

    candidates: int = 8
    rounds: int = 3
    repairs: int = 3
    line_tokens: int = 28
    rhyme_options: int = 48


# Words a line should not end on: they leave it hanging.
_WEAK_ENDS = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "and",
        "to",
        "in",
        "into",
        "with",
        "my",
        "his",
        "her",
        "their",
        "its",
        "your",
        "our",
        "for",
        "on",
        "at",
        "by",
        "from",
        "as",
        "is",
        "was",
        "that",
        "but",
        "or",
        "nor",
        "i",
        "he",
        "she",
        "we",
        "they",
        "it",
        "be",
        "are",
        "were",
        "so",
        "than",
        "then",
        "if",
        "when",
        "whose",
        "which",
        "who",
    ]
)
_TRAILING = ".,;:!?—–-'\"’”)"
_RHYMES_TO_OFFER = 8


@dataclass(frozen=True)
class _LinePlan:
    syllables: tuple[int, int] | None
    target: int | None
    partner: int | None  # earlier line (0-based) this one rhymes with
    refrain: int | None  # earlier line (0-based) this one repeats
    leads: bool = False  # a later line must rhyme with this one


def plan_lines(spec: FormSpec) -> list[_LinePlan]:
    """What each line must do: its syllables, the line it rhymes with, the line it repeats."""
    count = spec.length
    labels = spec.scheme_for(count, spec.schemes[0]) if spec.schemes else ["x"] * count
    first: dict[str, int] = {}
    refrains = {copy - 1: line - 1 for line, copy in spec.refrains}
    plans = []
    for i, label in enumerate(labels):
        partner = None
        if label != "x":
            partner = first.setdefault(label, i)
            partner = None if partner == i else partner
        plans.append(_LinePlan(spec.syllables_for(i), spec.target_syllables(i), partner, refrains.get(i)))
    leaders = {plan.partner for plan in plans}
    return [replace(plan, leads=i in leaders) for i, plan in enumerate(plans)]


@dataclass
class _Candidate:
    text: str
    score: float
    syllables_ok: bool
    rhyme_ok: bool
    prefixes: tuple[tuple[str, int], ...] = ()  # (text up to a word, its syllables) for rhyme filling

    @property
    def ok(self) -> bool:
        return self.syllables_ok and self.rhyme_ok


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if any(ch.isalpha() for ch in line):
            return " ".join(line.split())
    return ""


def _cuts(line: str) -> list[tuple[str, str, int, int, bool]]:
    """Each place a line may end: (text, last word, fewest, most syllables so far, at a pause)."""
    found = []
    lo = hi = 0
    matches = list(WORD_RE.finditer(line))
    for n, match in enumerate(matches):
        a, b = syllable_range(match.group(0).lower())
        lo, hi = lo + a, hi + b
        end = match.end()
        while end < len(line) and line[end] in _TRAILING:
            end += 1
        pause = end > match.end() or n == len(matches) - 1
        found.append((line[:end].rstrip(" -—–"), match.group(0).lower(), lo, hi, pause))
    return found


def _judge(line: str, plan: _LinePlan, written: Sequence[str]) -> _Candidate | None:
    """The best place to end ``line`` for this plan, scored; None for a line with no words."""
    cuts = _cuts(line)
    if not cuts:
        return None
    partner_word = _end_word(written[plan.partner]) if plan.partner is not None else None
    seen = {" ".join(words_of(w)) for w in written}
    best: _Candidate | None = None
    prefixes = tuple((text, lo) for text, _, lo, _, _ in cuts)
    for index, (text, word, lo, hi, pause) in enumerate(cuts):
        distance: float
        if plan.syllables is not None:
            want_lo, want_hi = plan.syllables
            syllables_ok = hi >= want_lo and lo <= want_hi
            if not syllables_ok and lo > want_hi:
                distance = lo - want_hi
            elif not syllables_ok:
                distance = want_lo - hi
            else:
                distance = (
                    0
                    if plan.target is None or lo <= plan.target <= hi
                    else min(abs(lo - plan.target), abs(hi - plan.target)) * 0.3
                )
        else:
            syllables_ok, distance = True, 0
        rhyme_ok = partner_word is None or rhymes(word, partner_word)
        words = words_of(text)
        score = -distance * 2.0
        score -= 0 if rhyme_ok else 10
        score -= 1.5 if word in _WEAK_ENDS else 0
        # A line that others must rhyme with should end on a word that has rhymes to offer.
        score -= 2.0 if plan.leads and len(rhymes_for(word)) < _RHYMES_TO_OFFER else 0
        score += 0.6 if index == len(cuts) - 1 else (0.3 if pause else 0)
        score -= 0.7 * sum(1 for w in words if not is_known(w))
        score -= 5 if " ".join(words) in seen else 0
        score -= 1 if len(words) < 2 else 0
        candidate = _Candidate(text, score, syllables_ok, rhyme_ok, prefixes[: index + 1])
        if best is None or (candidate.ok, candidate.syllables_ok, candidate.score) > (
            best.ok,
            best.syllables_ok,
            best.score,
        ):
            best = candidate
    return best


def _end_word(line: str) -> str:
    found = words_of(line)
    return found[-1] if found else ""


async def _run(backend: Backend, request: GenerationRequest) -> GenerationResult:
    """One request, drained; the stream is closed even when the caller is cancelled."""
    events = backend.stream(request)
    result: GenerationResult | None = None
    try:
        async for event in events:
            if isinstance(event, GenerationResult):
                result = event
    finally:
        await events.aclose()  # type: ignore[attr-defined]
    if result is None:
        raise RuntimeError("The backend ended its stream without a result.")
    return result


class _Tally:
    """Token counts, notices and the model name over the many requests of one poem."""

    def __init__(self) -> None:
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.notices: list[Notice] = []
        self.model = ""
        self.requests = 0

    def add(self, result: GenerationResult) -> None:
        self.requests += 1
        self.prompt_tokens += result.usage.prompt_tokens
        self.completion_tokens += result.usage.completion_tokens
        self.model = result.model or self.model
        for notice in result.notices:
            self.notice(notice)

    def notice(self, notice: Notice) -> None:
        if all(n.message != notice.message for n in self.notices):
            self.notices.append(notice)


def _line_params(
    params: GenerationParams, settings: SteerSettings, backend: Backend, seed: int | None
) -> GenerationParams:
    count = max(1, min(settings.candidates, backend.capabilities.max_alternatives))
    return replace(
        params, num_alternatives=count, max_lines=1, max_new_tokens=settings.line_tokens, seed=seed, num_beams=1
    )


def _seed(params: GenerationParams, alternative: int, line: int, attempt: int) -> int | None:
    if params.seed is None:
        return None
    return (params.seed + 7919 * alternative + 104729 * line + 15485863 * attempt) % (2**31)


async def _fill_rhyme(
    backend: Backend,
    context: str,
    candidate: _Candidate,
    plan: _LinePlan,
    partner: str,
    used: set[str],
    settings: SteerSettings,
) -> str | None:
    """``candidate`` ended with the rhyme the model finds likeliest, keeping the syllable count.

    The line is cut where a rhyming word of one to three syllables would bring it to its
    count (the form's target, or anywhere in its range), each such word is put at the end,
    and one scoring call picks the line the model finds likeliest (by its mean
    log-probability per token, so lines of different lengths compare fairly).
    """
    target = plan.target
    if target is None:
        return None
    low, high = plan.syllables if plan.syllables is not None else (target, target)
    options = [w for w in rhymes_for(partner) if w not in used and is_known(w) and len(w) > 1]
    lines: list[str] = []
    for text, so_far in candidate.prefixes:
        needs = {n for n in (1, 2, 3) if n == target - so_far or low <= so_far + n <= high}
        if needs and text and _end_word(text) not in _WEAK_ENDS - {"the", "a", "an", "my", "his", "her"}:
            fitting = [w for w in options if count_syllables(w) in needs][: settings.rhyme_options // 2]
            lines.extend(f"{text.rstrip(_TRAILING)} {word}" for word in fitting)
    if not lines:
        return None
    scored = await backend.score_texts(lines, context=context)
    if not scored:
        return None
    best = max(zip(scored, lines, strict=True), key=lambda item: item[0][0] / max(1, item[0][1]))
    return best[1]


async def steer_completion(
    backend: Backend,
    request: GenerationRequest,
    spec: FormSpec,
    settings: SteerSettings = SteerSettings(),
    topic: Sequence[str] = (),
) -> AsyncIterator[StreamEvent]:
    """Write a poem line by line on a completion backend (see the module's docstring).

    ``topic``: content words of what the poem is about (see :func:`topic_of`).
    """
    params = request.params
    base = tuple(request.prompt or ())
    # A line limit the writer set (--max-lines) wins over the form's length.
    plans = plan_lines(spec)[: params.max_lines or None]
    tally = _Tally()
    texts: list[str] = []
    started = time.perf_counter()
    first_at: float | None = None
    error: str | None = None
    for alternative in range(params.num_alternatives):
        written: list[str] = []
        for number, plan in enumerate(plans):
            if plan.refrain is not None and plan.refrain < len(written):
                line = written[plan.refrain]
            else:
                found, error = await _choose_line(
                    backend, base, params, plan, written, settings, tally, alternative, number, topic
                )
                if found is None:
                    break
                line = found
            written.append(line)
            if first_at is None:
                first_at = time.perf_counter()
            yield Delta(alternative, ("\n" if number else "") + line)
        texts.append("\n".join(written))
        report = check_form(texts[-1], spec)
        if error:
            break
        if not report.ok:
            tally.notice(_missed(spec, report.problems, alternative, params.num_alternatives))
    for notice in tally.notices:
        yield notice
    yield GenerationResult(
        texts=tuple(texts),
        finish_reasons=tuple("error" if error and i == len(texts) - 1 else "stop" for i in range(len(texts))),
        usage=Usage(tally.prompt_tokens, tally.completion_tokens),
        time_to_first_token=(first_at - started) if first_at else None,
        notices=tuple(tally.notices),
        model=tally.model,
        error=error,
    )


async def _choose_line(
    backend: Backend,
    base: tuple[TextPart, ...],
    params: GenerationParams,
    plan: _LinePlan,
    written: list[str],
    settings: SteerSettings,
    tally: _Tally,
    alternative: int,
    number: int,
    topic: Sequence[str] = (),
) -> tuple[str | None, str | None]:
    """The best line for ``plan`` after at most ``settings.rounds`` batched calls; (line, error)."""
    body = "".join(line + "\n" for line in written)
    request_parts = (*base, TextPart(body)) if body else base
    best: _Candidate | None = None
    unused = _unused(topic, written)
    for attempt in range(settings.rounds):
        line_params = _line_params(params, settings, backend, _seed(params, alternative, number, attempt))
        if params.use_words:
            # Words to use go into lines that rhyme with nothing before them: a line that must
            # rhyme keeps its end free for the rhyme.
            wanted = () if plan.partner is not None else params.use_words
            line_params = replace(line_params, use_words=tuple(w for w in wanted if not uses_words(body, [w])))
        result = await _run(backend, GenerationRequest.completion(request_parts, line_params))
        tally.add(result)
        if result.error:
            return None, result.error
        for text in result.texts:
            judged = _judge(_first_line(text), plan, written)
            if judged is not None and (best is None or _rank(judged, unused) > _rank(best, unused)):
                best = judged
        if best is not None and best.ok and (best.score > -1 or attempt >= 1):
            break
        if best is not None and best.syllables_ok and plan.partner is not None and attempt >= 1:
            break  # the rhyme is found by scoring below, which costs less than another round
    if best is None:
        return "", None
    if not best.rhyme_ok and plan.partner is not None:
        partner = _end_word(written[plan.partner])
        used = {_end_word(line) for line in written}
        filled = await _fill_rhyme(backend, join_parts(base) + body, best, plan, partner, used, settings)
        if filled:
            return filled, None
    return best.text, None


def _unused(topic: Sequence[str], written: Sequence[str]) -> frozenset[str]:
    """The stems of the topic words the poem has not used yet."""
    used = {stem(word) for line in written for word in words_of(line)}
    return frozenset(stem(word) for word in topic) - used


def _rank(candidate: _Candidate, unused: frozenset[str]) -> tuple[bool, bool, float, int]:
    """How good a line is: the form first, then the rest of its score, then new topic words."""
    new_words = len(unused & {stem(word) for word in words_of(candidate.text)})
    return candidate.ok, candidate.syllables_ok, candidate.score, new_words


def _missed(spec: FormSpec, problems: Sequence[str], alternative: int, total: int) -> Notice:
    which = f" (alternative {alternative + 1})" if total > 1 else ""
    return Notice("adjusted", f"The poem{which} does not quite keep the {spec.name} form: {problems[0]}")


_NUMBERED = re.compile(r"^\s*(?:line\s*)?(\d{1,2})\s*[:.)\]-]\s*(.*\S)\s*$", re.IGNORECASE)


def _repair_prompt(spec: FormSpec, problems: Sequence[str], wanted: Sequence[int]) -> str:
    listed = "\n".join(f"- {p[0].upper()}{p[1:]}" for p in problems)
    numbers = ", ".join(str(n) for n in wanted)
    return (
        f"That poem breaks the {spec.name} form ({spec.description}):\n{listed}\n\n"
        f"Write new versions of line(s) {numbers} only, so that the poem keeps the form. "
        f'Reply with just those lines, one per line, each starting with its number, like "{wanted[0]}: ...".'
    )


def _apply_repair(lines: list[str], reply: str, wanted: Sequence[int], spec: FormSpec) -> bool:
    """Put the reply's numbered lines in place; a whole poem of the right length replaces all."""
    changed = False
    for raw in reply.splitlines():
        match = _NUMBERED.match(raw)
        if match is None:
            continue
        number, text = int(match.group(1)), match.group(2).strip()
        if number in wanted and any(ch.isalpha() for ch in text):
            while len(lines) < number:
                lines.append("")
            lines[number - 1] = text
            changed = True
    if not changed:
        whole = poem_lines(reply)
        if spec.lines is not None and len(whole) == spec.lines:
            lines[:] = whole
            changed = True
    return changed


async def steer_chat(
    backend: Backend, request: GenerationRequest, spec: FormSpec, settings: SteerSettings = SteerSettings()
) -> AsyncIterator[StreamEvent]:
    """Write the poem, then re-ask for the lines that break the form (see the module's docstring)."""
    started = time.perf_counter()
    tally = _Tally()
    draft = await _run(backend, request)
    tally.add(draft)
    if draft.error:
        yield replace(draft, notices=tuple(tally.notices))
        return
    texts: list[str] = []
    repairs = 0
    for alternative, text in enumerate(draft.texts):
        lines = poem_lines(text)
        if spec.lines is not None and len(lines) > spec.lines:
            lines = lines[: spec.lines]
        report = check_form("\n".join(lines), spec)
        for _ in range(settings.repairs):
            if report.ok:
                break
            wanted = sorted(set(report.broken_lines) | set(range(len(lines) + 1, (spec.lines or 0) + 1)))
            if not wanted:
                break
            messages = (
                *(request.messages or ()),
                ChatMessage.of("assistant", "\n".join(lines)),
                ChatMessage.of("user", _repair_prompt(spec, report.problems, wanted)),
            )
            ask = GenerationRequest.chat(messages, replace(request.params, num_alternatives=1, max_lines=None))
            reply = await _run(backend, ask)
            tally.add(reply)
            repairs += 1
            if reply.error:
                break
            _apply_repair(lines, reply.text, wanted, spec)
            lines = [line for line in lines if line.strip()]
            report = check_form("\n".join(lines), spec)
        texts.append("\n".join(lines))
        yield Delta(alternative, texts[-1])
        if not report.ok:
            tally.notice(_missed(spec, report.problems, alternative, len(draft.texts)))
    if repairs:
        tally.notice(Notice("info", f"Lines that broke the {spec.name} form were asked for again ({repairs} time(s))."))
    for notice in tally.notices:
        yield notice
    yield GenerationResult(
        texts=tuple(texts),
        finish_reasons=draft.finish_reasons[: len(texts)],
        usage=Usage(tally.prompt_tokens, tally.completion_tokens),
        time_to_first_token=draft.time_to_first_token,
        tokens_per_second=None if time.perf_counter() == started else draft.tokens_per_second,
        notices=tuple(tally.notices),
        model=tally.model,
    )


def steer(
    backend: Backend,
    request: GenerationRequest,
    spec: FormSpec,
    settings: SteerSettings = SteerSettings(),
    *,
    topic: Sequence[str] = (),
) -> AsyncIterator[StreamEvent]:
    """Generate a poem in ``spec``'s form: line by line on completion requests, re-asking on chat.

    ``topic`` (content words, see :func:`topic_of`) breaks ties between lines on completion
    requests; a chat model is given the topic in its prompt.
    """
    if request.is_chat:
        return steer_chat(backend, request, spec, settings)
    return steer_completion(backend, request, spec, settings, topic)


def form_of(variables: Mapping[str, object]) -> FormSpec | None:
    """The form a template's variables ask for (its ``form`` variable), if it has rules to keep."""
    value = variables.get("form")
    return find_form(value) if isinstance(value, str) else None


def topic_of(variables: Mapping[str, object]) -> tuple[str, ...]:
    """The content words of what a poem is about: its ``keywords`` variable, else its ``topic``."""
    for name in ("keywords", "topic"):
        value = variables.get(name)
        if isinstance(value, str) and value.strip():
            return tuple(keywords(value, limit=None))
    return ()
