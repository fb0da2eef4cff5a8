"""Exports: plain text exactly, attributed Markdown and HTML marking model text, JSON without keys."""

from __future__ import annotations

import html
import json
import re
from itertools import pairwise

import pytest

from assistant.sessions import Session, SessionStore, export_session
from backends.base import GenerationResult


@pytest.fixture
def session() -> Session:
    s = SessionStore(autosave_delay=60).create(title="Tides & <Storms>")
    doc = s.document
    doc.insert(0, "The harbour slept.\n\n")
    a = s.record_generation(
        "continue", {"text": doc.text, "key": "sk-secretsecretsecret123"}, {"temperature": 0.9}, "local", "gpt2"
    )
    s.record_result(a, GenerationResult(texts=('Waves <rolled> & "sang".\n',), finish_reasons=("stop",), model="gpt2"))
    s.accept(a, 0)
    doc.insert(len(doc), "She woke at dawn. ")
    b = s.record_generation("rewrite", {"text": "x"}, {}, "openai", "gpt-4o-mini")
    s.record_result(
        b, GenerationResult(texts=("The gulls cried out loud.",), finish_reasons=("stop",), model="gpt-4o-mini")
    )
    s.accept(b, 0)
    doc.delete(len(doc) - 5, len(doc) - 1)  # "loud" deleted: that span becomes edited
    s.notes = "Setting: a fishing town."
    yield s
    s.close()


def test_plain_markdown_is_exactly_the_text(session: Session) -> None:
    assert export_session(session, "md") == session.document.text


def test_attributed_markdown_marks_model_text_and_ends_with_matching_statistics(session: Session) -> None:
    out = export_session(session, "md-attributed")
    body, _, tail = out.partition("\n---\n")
    assert re.sub(r"\[\^\d+\]", "", body) == session.document.text + "\n"  # a newline ends the text
    assert 'sang".[^1]\n' in body  # marker before the trailing newline
    assert "[^1]: Written by gpt2 via local, template continue" in tail
    assert "[^2]: Written by gpt-4o-mini via openai, template rewrite" in tail and "then edited" in tail
    stats = session.stats()
    assert f"- Words: {stats.words:,}" in tail
    assert f"- Written by the writer: {stats.writer_words:,} " in tail
    assert f"- Written by a model: {stats.model_words:,} " in tail
    assert f"- Written by a model, then edited: {stats.edited_words:,} " in tail
    # the statistics agree with the spans
    text = session.document.text
    by_author = {"writer": 0, "model": 0, "edited": 0}
    for span in session.document.spans():
        start = span.start
        words = text[start : span.end].split()
        if words and start > 0 and not text[start].isspace() and not text[start - 1].isspace():
            words = words[1:]
        by_author[span.author] += len(words)
    assert (stats.writer_words, stats.model_words, stats.edited_words) == (
        by_author["writer"],
        by_author["model"],
        by_author["edited"],
    )
    # edited: "The gulls cried out ." (5 words); model: 'Waves <rolled> & "sang".' (4 words)
    assert stats.edited_words == 5 and stats.model_words == 4
    assert sum(by_author.values()) == len(text.split())


def test_html_escapes_text_and_marks_spans(session: Session) -> None:
    out = export_session(session, "html")
    assert "<title>Tides &amp; &lt;Storms&gt;</title>" in out
    assert "Waves &lt;rolled&gt; &amp; &quot;sang&quot;." in out
    assert "<rolled>" not in out
    assert out.count('<span class="model" title=') == 1 and out.count('<span class="edited" title=') == 1
    assert 'class="legend"' in out and "<h2>Statistics</h2>" in out
    # the page's text content is the document
    draft = out.split('<div class="draft">', 1)[1].split("</div>", 1)[0]
    assert html.unescape(re.sub(r"<[^>]+>", "", draft)) == session.document.text


def test_json_has_everything_but_keys(session: Session) -> None:
    out = export_session(session, "json")
    assert "sk-secret" not in out
    data = json.loads(out)
    assert data["text"] == session.document.text
    assert data["notes"] == "Setting: a fishing town."
    assert [e["template"] for e in data["events"]] == ["continue", "rewrite"]
    assert data["events"][0]["variables"]["key"] == "[redacted]"
    spans = data["spans"]
    assert spans[0]["start"] == 0 and spans[-1]["end"] == len(data["text"])
    assert all(a["end"] == b["start"] for a, b in pairwise(spans))
    assert data["stats"]["words"] == len(data["text"].split())


def test_empty_session_exports() -> None:
    s = SessionStore().create()
    assert export_session(s, "md") == ""
    assert "- Words: 0" in export_session(s, "md-attributed")
    assert json.loads(export_session(s, "json"))["spans"] == []
    with pytest.raises(ValueError):
        export_session(s, "docx")
    s.close()
