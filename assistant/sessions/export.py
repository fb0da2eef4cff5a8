"""Exporting a session: plain Markdown, attributed Markdown, HTML, JSON.

* ``md``: exactly the document text.
* ``md-attributed``: the text with a footnote marker ``[^n]`` after each
  stretch of model-written text; the footnotes name the model, template and
  time; statistics at the end.
* ``html``: a standalone page; model text in ``<span class="model">``, edited
  model text in ``<span class="edited">``, a legend and the statistics.
* ``json``: text, spans, events, notes, settings and statistics (never keys).

``with_drafts`` (off by default) adds the drafts that were not taken — every
alternative of every generation the writer did not keep, labelled by its model —
after the text: a "Drafts not taken" section in Markdown and HTML, a
``drafts_not_taken`` list in JSON. (The JSON's ``events`` are the session's full
record and hold every alternative either way; the list names them as drafts.)
"""

from __future__ import annotations

import html
import json
import time
from typing import Any

from assistant.sessions.document import Span
from assistant.sessions.drafts import Draft, drafts_of
from assistant.sessions.events import GenerationEvent, scrub
from assistant.sessions.session import Session
from assistant.sessions.stats import Stats

FORMATS = ("md", "md-attributed", "html", "json")


def export_session(session: Session, fmt: str = "md", *, with_drafts: bool = False) -> str:
    """The session in format ``fmt`` (one of FORMATS); ``with_drafts`` adds the drafts not taken."""
    if fmt == "md":
        return session.document.text + (_drafts_markdown(session) if with_drafts else "")
    if fmt == "md-attributed":
        return export_attributed_markdown(session) + (_drafts_markdown(session) if with_drafts else "")
    if fmt == "html":
        return export_html(session, with_drafts=with_drafts)
    if fmt == "json":
        return export_json(session, with_drafts=with_drafts)
    raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")


def drafts_not_taken(session: Session) -> list[Draft]:
    """Every draft the writer did not take (empty ones left out), numbered as `sessions drafts` numbers them."""
    return [draft for draft in drafts_of(session.events) if not draft.accepted and draft.text.strip()]


def _drafts_markdown(session: Session) -> str:
    """The drafts not taken as a Markdown section, each under a heading naming its model; "" when none."""
    drafts = drafts_not_taken(session)
    if not drafts:
        return ""
    lines = ["", "---", "", "## Drafts not taken", ""]
    for draft in drafts:
        lines += [f"### {draft.label[0].upper()}{draft.label[1:]}, {_when(draft.created)}", "", draft.text.strip(), ""]
    text = session.document.text
    lead = "" if text.endswith("\n") or not text else "\n"
    return lead + "\n".join(lines)


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


def _provenance(span: Span, events: dict[int, GenerationEvent]) -> str:
    event = events.get(span.generation_id) if span.generation_id is not None else None
    if event is None:
        base = f"Written by a model (generation {span.generation_id})"
    else:
        several = len(event.alternatives) > 1 and span.alternative is not None
        alt = f", alternative {(span.alternative or 0) + 1}" if several else ""
        base = f"Written by {event.label()}, {_when(event.created)}{alt}"
    return base + (", then edited by the writer" if span.author == "edited" else "")


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "0%"


def stats_lines(stats: Stats) -> list[str]:
    """The statistics as Markdown lines."""
    lines = [
        f"- Words: {stats.words:,}",
        f"- Written by the writer: {stats.writer_words:,} ({_share(stats.writer_words, stats.words)})",
        f"- Written by a model: {stats.model_words:,} ({_share(stats.model_words, stats.words)})",
        f"- Written by a model, then edited: {stats.edited_words:,} ({_share(stats.edited_words, stats.words)})",
    ]
    for model in stats.by_model:
        lines.append(f"- {model.model}: {model.words:,} words, {model.edited_words:,} edited")
    return lines


def export_attributed_markdown(session: Session) -> str:
    """Markdown with a footnote after each model-written stretch, and statistics at the end."""
    text = session.document.text
    events = {e.id: e for e in session.events}
    numbers: dict[tuple[int | None, str, int | None], int] = {}
    notes: list[str] = []
    out: list[str] = []
    for span in session.document.spans():
        piece = text[span.start : span.end]
        if span.author == "writer":
            out.append(piece)
            continue
        key = (span.generation_id, span.author, span.alternative)
        if key not in numbers:
            numbers[key] = len(numbers) + 1
            notes.append(f"[^{numbers[key]}]: {_provenance(span, events)}.")
        body = piece.rstrip()
        out.append(f"{body}[^{numbers[key]}]{piece[len(body) :]}" if body else piece)
    result = "".join(out)
    if not result.endswith("\n"):
        result += "\n"
    tail = ["", "---", "", *notes, "", "## Statistics", "", *stats_lines(session.stats()), ""]
    if not notes:
        tail = ["", "---", "", "## Statistics", "", *stats_lines(session.stats()), ""]
    return result + "\n".join(tail)


_CSS = """body { font-family: Georgia, serif; max-width: 44em; margin: 2em auto; line-height: 1.5; color: #222; }
.draft { white-space: pre-wrap; }
.model { background: #e3ecfa; }
.edited { background: #f6ecd6; }
.legend span { padding: 0 .4em; }
table { border-collapse: collapse; } td, th { padding: .2em .8em; text-align: left; }"""


def export_html(session: Session, *, with_drafts: bool = False) -> str:
    """A standalone HTML page; model text highlighted, with a legend and statistics (and the drafts not taken)."""
    esc = html.escape
    text = session.document.text
    events = {e.id: e for e in session.events}
    parts = []
    for span in session.document.spans():
        piece = esc(text[span.start : span.end], quote=True)
        if span.author == "writer":
            parts.append(piece)
        else:
            parts.append(
                f'<span class="{span.author}" title="{esc(_provenance(span, events), quote=True)}" '
                f'data-generation="{span.generation_id}">{piece}</span>'
            )
    stats = session.stats()
    rows = [
        ("Words", f"{stats.words:,}"),
        ("Written by the writer", f"{stats.writer_words:,} ({_share(stats.writer_words, stats.words)})"),
        ("Written by a model", f"{stats.model_words:,} ({_share(stats.model_words, stats.words)})"),
        ("Written by a model, then edited", f"{stats.edited_words:,} ({_share(stats.edited_words, stats.words)})"),
    ]
    rows += [(m.model, f"{m.words:,} words, {m.edited_words:,} edited") for m in stats.by_model]
    table = "\n".join(f"<tr><th>{esc(a)}</th><td>{esc(b)}</td></tr>" for a, b in rows)
    title = esc(session.title)
    drafts = ""
    if with_drafts and (not_taken := drafts_not_taken(session)):
        items = "\n".join(
            f'<article class="draft-not-taken" data-generation="{d.event_id}" data-alternative="{d.alternative}">'
            f'<h3>{esc(d.label)}</h3>\n<div class="draft">{esc(d.text.strip())}</div></article>'
            for d in not_taken
        )
        drafts = f'<section class="drafts">\n<h2>Drafts not taken</h2>\n{items}\n</section>\n'
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{title}</title>\n<style>\n{_CSS}\n</style>\n</head>\n<body>\n"
        f"<h1>{title}</h1>\n"
        '<p class="legend">Legend: <span class="writer">written by the writer</span> '
        '<span class="model">written by a model</span> '
        '<span class="edited">written by a model, then edited</span></p>\n'
        f'<div class="draft">{"".join(parts)}</div>\n'
        f'<section class="stats">\n<h2>Statistics</h2>\n<table>\n{table}\n</table>\n</section>\n'
        f"{drafts}</body>\n</html>\n"
    )


def session_dict(session: Session, *, with_drafts: bool = False) -> dict[str, Any]:
    """Everything about a session as JSON-safe data (keys scrubbed); ``with_drafts`` adds ``drafts_not_taken``."""
    data = {
        "format": "quillmate-session",
        "version": 1,
        "id": session.id,
        "title": session.title,
        "file": str(session.file) if session.file else None,
        "created": session.created,
        "updated": session.updated,
        "text": session.document.text,
        "spans": [
            {
                "start": s.start,
                "end": s.end,
                "author": s.author,
                "generation_id": s.generation_id,
                "alternative": s.alternative,
            }
            for s in session.document.spans()
        ],
        "events": [scrub(e.to_dict(), limit=1_000_000) for e in session.events],
        "notes": session.notes,
        "settings": scrub(session.settings),
        "stats": session.stats().to_dict(),
    }
    if with_drafts:
        data["drafts_not_taken"] = [scrub(d.to_dict(), limit=1_000_000) for d in drafts_not_taken(session)]
    return data


def export_json(session: Session, *, with_drafts: bool = False) -> str:
    """The session as indented JSON."""
    return json.dumps(session_dict(session, with_drafts=with_drafts), ensure_ascii=False, indent=2) + "\n"
