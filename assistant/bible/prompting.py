"""The bible in a template's prompt: which templates take it, and how it is filled in.

A template takes a bible when it has a ``notes`` variable and an input text (the
built-in ``continue`` and ``rewrite``). The bible's block of memory and entries becomes
``notes``. For a continuation (output at the cursor, elastic input) the input becomes
the draft's tail with the author's note in it, sized by :func:`assemble`; for anything
else (a rewrite) the passage is sent whole and only the entries it mentions are added.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from assistant.bible.assembly import Assembly, DroppedPart, PromptPart, PromptReport, assemble
from assistant.bible.model import Bible
from assistant.bible.triggers import approx_tokens
from backends.fim import suffix_room

if TYPE_CHECKING:
    from assistant.core import Assistant, ParamsLike, Prepared
    from assistant.templates import Template

NOTES = "notes"
# Stand-ins while measuring the template's own words; private-use characters no writer types.
_TEXT_MARK = "\ue010TEXT\ue011"
_NOTES_MARK = "\ue010NOTES\ue011"


def takes_bible(template: Template) -> bool:
    """True when ``template`` has a ``notes`` variable and an input text for the bible to work with."""
    return NOTES in template.variables and bool(template.input_variable)


def is_continuation(template: Template) -> bool:
    """True for a template that carries the text on at the cursor from an elastic input (``continue``)."""
    name = template.input_variable
    return template.output == "cursor" and bool(name) and template.variables[name or ""].elastic


def prepare_with_bible(
    helper: Assistant, template: Template, variables: Mapping[str, Any], params: ParamsLike, bible: Bible
) -> Prepared:
    """:meth:`Assistant.prepare` for a template that takes a bible (see the module docstring)."""
    from assistant.core import Prepared

    name = template.input_variable or ""
    values = {k: v for k, v in variables.items() if k != NOTES}  # the bible is the notes now
    resolved = template.resolve(values)
    caps = helper.backend.capabilities
    form = template.pick_form(chat=caps.chat, completion=caps.completion)
    gen_params = helper.params_for(template, params, resolved=resolved)
    count = helper.backend.count_tokens
    skeleton = template.render({**values, name: _TEXT_MARK, NOTES: _NOTES_MARK}, form).text
    own_tokens = count(skeleton.replace(_TEXT_MARK, "").replace(_NOTES_MARK, ""))
    text = resolved[name]
    if is_continuation(template):
        assembly = assemble(
            bible,
            text,
            context_window=caps.context_window,
            reserved=gen_params.max_new_tokens + own_tokens,
            count=count,
        )
    else:
        passage_tokens = count(text)
        quiet = bible.replaced(authors_note="")  # the note steers what comes next, not a rewrite
        assembly = assemble(
            quiet,
            text,
            context_window=caps.context_window,
            reserved=gen_params.max_new_tokens + own_tokens + passage_tokens,
            count=count,
        )
        passage = PromptPart("draft", "Passage", text, passage_tokens)
        assembly = replace(
            assembly,
            draft=text,
            dropped=tuple(d for d in assembly.dropped if d.kind != "draft"),
            parts=(*(p for p in assembly.parts if p.kind != "draft"), passage),
        )
    filled = {**values, name: assembly.draft, NOTES: assembly.context}
    rendered = template.render(filled, form)
    request = rendered.request(gen_params)
    report = _report(rendered, skeleton, assembly, count, caps.context_window, gen_params.max_new_tokens)
    # ``variables`` stay the writer's own (the draft as given); what was sent is in the report.
    return Prepared(template, rendered, request, resolved, report)


def _prompt_tokens(rendered: Any, count: Callable[[str], int]) -> int:
    if rendered.prompt is not None:
        return count("".join(p.text for p in rendered.prompt))
    return sum(count(m.text) for m in rendered.messages or ())


def _report(
    rendered: Any, skeleton: str, assembly: Assembly, count: Callable[[str], int], window: int, max_new: int
) -> PromptReport:
    total = _prompt_tokens(rendered, count)
    own = skeleton.replace(_NOTES_MARK, "{memory and entries}").replace(_TEXT_MARK, "{draft}")
    own_tokens = max(total - sum(p.tokens for p in assembly.parts), 0)
    instructions = PromptPart("instructions", "Instructions", own, own_tokens, reason=f"template {rendered.template}")
    return PromptReport(
        rendered.form,
        (instructions, *assembly.parts),
        assembly.dropped,
        window,
        max_new,
        assembly.bible_budget,
        assembly.warnings,
    )


def plain_report(
    prepared: Prepared, count_tokens: Callable[[str], int] | None = None, context_window: int = 0
) -> PromptReport:
    """The report for a prompt made without a bible: the template's words, then each value filled into it."""
    count = count_tokens or approx_tokens
    template, rendered = prepared.template, prepared.rendered
    name = template.input_variable
    parts: list[PromptPart] = []
    total = _prompt_tokens(rendered, count)
    if name and prepared.variables.get(name):
        text = prepared.variables[name]
        if rendered.prompt is not None:  # the elastic text as sent, after any cut
            elastic = "".join(p.text for p in rendered.prompt if p.elastic)
            text = elastic or text
        parts.append(PromptPart("draft", "Your text", text, count(text), reason=f"variable {name}"))
    notes = prepared.variables.get(NOTES, "")
    if notes.strip():
        parts.insert(0, PromptPart("memory", "Notes", notes, count(notes), reason="variable notes"))
    own = max(total - sum(p.tokens for p in parts), 0)
    words = rendered.text
    for part in parts:  # the template's own words, with a stand-in where each value went
        slot = "{draft}" if part.kind == "draft" else "{notes}"
        words = words.replace(part.text, slot, 1) if part.text else words
    parts.insert(0, PromptPart("instructions", "Instructions", words, own, reason=f"template {template.name}"))
    params = prepared.request.params
    return PromptReport(rendered.form, tuple(parts), (), context_window, params.max_new_tokens)


def with_text_after(
    report: PromptReport, suffix: str, *, seen: bool, count_tokens: Callable[[str], int] | None = None
) -> PromptReport:
    """``report`` with the writer's text after the cursor: a part when the model sees it, else left out."""
    label = "Text after the cursor"
    tokens = (count_tokens or approx_tokens)(suffix)
    if not seen:
        why = "this model writes from the text before the cursor only"
        return replace(report, dropped=(*report.dropped, DroppedPart("after", label, tokens, why)))
    room = suffix_room(report.context_window - report.max_new_tokens) if report.context_window else tokens
    sent = min(tokens, room)
    why = "the model fills in the middle" + (f"; its first {sent:,} of {tokens:,} tokens" if sent < tokens else "")
    return replace(report, parts=(*report.parts, PromptPart("after", label, suffix, sent, reason=why)))


__all__ = ["is_continuation", "plain_report", "prepare_with_bible", "takes_bible", "with_text_after"]
