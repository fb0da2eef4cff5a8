"""Suggestions kept by their point in the draft: found again after edits, on real SQLite files, old ones included."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from assistant import paths
from assistant.lsp.documents import Ledger, Offer
from assistant.sessions import SessionStore, db
from assistant.sessions.drafts import drafts_of, history, settings_line
from assistant.sessions.points import ANCHOR_CHARS, anchor_at, at_point
from backends.base import GenerationParams, GenerationResult

OPENING = "The keeper climbed the stairs of the lighthouse, counting every step as she went. "


def result(*texts: str, model: str = "gpt2") -> GenerationResult:
    return GenerationResult(texts=texts, finish_reasons=("stop",) * len(texts), model=model)


def suggest(session, pos: int, *texts: str, temperature: float = 0.8, model: str = "gpt2") -> int:
    event_id = session.record_generation(
        "continue", {"text": "…"}, GenerationParams(temperature=temperature), "local", model, position=pos
    )
    session.record_result(event_id, result(*texts, model=model))
    return event_id


def test_a_point_is_found_by_the_text_before_it_not_its_offset() -> None:
    text = OPENING + "Then the lamp."
    pos = len(OPENING)
    anchor = anchor_at(text, pos)
    assert len(anchor) == ANCHOR_CHARS and text[:pos].endswith(anchor)
    assert at_point(anchor, text, pos)
    assert at_point(anchor, "A title.\n\n" + text, pos + 10)  # moved by text written above it
    assert not at_point(anchor, text, pos - 1) and not at_point(anchor, text, len(text))
    # Near the start the anchor is all the text before the point, and must be exactly that.
    assert anchor_at("Salt.", 5) == "Salt." and at_point("Salt.", "Salt. More.", 5)
    assert not at_point("Salt.", "Old salt. More.", 9)
    assert at_point("", "Anything", 0) and not at_point("", "Anything", 3)


def test_every_suggestion_at_a_point_is_kept_and_found_again_after_reopening(tmp_path: Path) -> None:
    db_file = tmp_path / "sessions.db"
    with SessionStore(db_file) as store, store.create(title="Lighthouse") as session:
        session.document.insert(0, OPENING)
        here = len(OPENING)
        first = suggest(session, here, "The lamp was cold.", "The lamp was warm.")
        session.mark_rejected(first)
        second = suggest(session, here, "Gulls cried.", temperature=1.1, model="gpt-4o-mini")
        session.accept(second, 0, pos=here)
        elsewhere = suggest(session, 10, "keeper-ish")  # a point in the middle of the first line
        rewrite = session.record_generation("rewrite", {"text": "x"}, None, "local", "gpt2")  # tied to no point
        session.record_result(rewrite, result("Reworded."))
        session_id = session.id
    raw = sqlite3.connect(db_file)
    rows = raw.execute("SELECT seq, position, anchor FROM events ORDER BY seq").fetchall()
    raw.close()
    assert rows[0] == (first, here, OPENING[-ANCHOR_CHARS:])
    assert rows[2] == (elsewhere, 10, OPENING[:10]) and rows[3] == (rewrite, None, "")

    with SessionStore(db_file) as store, store.open(session_id) as session:
        session.document.insert(0, "# Chapter One\n\n")  # everything after moves by 15 characters
        moved = here + 15
        assert [e.id for e in session.events_at(moved)] == [first, second]
        assert session.events_at(here) == []
        assert [e.id for e in session.events_at(10)] == []  # its anchor was the start of the draft
        drafts = history(session.events_at(moved))
    assert [(d.ref, d.text) for d in drafts] == [
        (f"{second}.1", "Gulls cried."),
        (f"{first}.2", "The lamp was warm."),
        (f"{first}.1", "The lamp was cold."),
    ]
    assert drafts[0].accepted and drafts[0].who == "gpt-4o-mini via local" and drafts[0].position == here
    assert settings_line(drafts[0].params).startswith("Temperature 1.1 · Top-p 1 · Max tokens")
    assert "Alternatives" not in settings_line(drafts[0].params)


def test_an_old_sessions_file_is_migrated_and_keeps_working() -> None:
    path = paths.sessions_db()
    conn = db.connect(path)
    conn.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied REAL NOT NULL)")
    for old in (db.m001_initial, db.m002_fts, db.m003_bible):  # the database as the last release left it
        old(conn)
        conn.execute("INSERT INTO migrations VALUES (?, 0)", (old.__name__,))
    conn.execute(
        "INSERT INTO sessions (id, created, updated, length, next_event) VALUES ('0ld5e551', 1, 1, ?, 2)",
        (len(OPENING),),
    )
    conn.execute(
        "INSERT INTO chunks (session_id, ord, text, spans, words) VALUES ('0ld5e551', 4294967296, ?, ?, 14)",
        (OPENING, json.dumps([[len(OPENING), "w"]])),
    )
    old_event = {"id": 1, "created": 1.0, "template": "continue", "alternatives": ["An old draft."], "status": "done"}
    conn.execute(
        "INSERT INTO events (session_id, seq, created, template, backend, model, status, data) "
        "VALUES ('0ld5e551', 1, 1, 'continue', 'local', 'gpt2', 'done', ?)",
        (json.dumps(old_event),),
    )
    conn.close()

    with SessionStore() as store:
        names = [r[0] for r in store.conn.execute("SELECT name FROM migrations ORDER BY name")]
        assert names[-1] == "m004_points"
        with store.open("0ld5e551") as session:
            assert session.document.text == OPENING
            assert session.event(1).position is None and session.event(1).alternatives == ["An old draft."]
            assert session.events_at(len(OPENING)) == []  # recorded before points were kept: no point
            new = suggest(session, len(OPENING), "A new draft.")
    with SessionStore() as store, store.open("0ld5e551", read_only=True) as session:
        assert [e.id for e in session.events_at(len(OPENING))] == [new]
        assert [d.text for d in drafts_of(session.events)] == ["An old draft.", "A new draft."]


def test_the_language_server_records_where_each_suggestion_was_offered(tmp_path: Path) -> None:
    path = tmp_path / "chapter.md"
    path.write_text(OPENING, encoding="utf-8")
    params = GenerationParams(temperature=0.5)
    with SessionStore() as store:
        store.open_for_file(path).close()  # the file's session exists: offers are recorded at once
        ledger = Ledger(path, store, OPENING)
        here = len(OPENING)
        anchor = anchor_at(OPENING, here)
        ledger.remember(Offer("continue", {}, params, "local", "gpt2", result("One."), position=here, anchor=anchor))
        ledger.remember(Offer("continue", {}, params, "local", "gpt2", result("Two.")))  # no point given
        with store.open_for_file(path, read_only=True) as session:
            assert [e.alternatives for e in session.events_at(here)] == [["One."]]
            assert [e.position for e in session.events] == [here, None]
