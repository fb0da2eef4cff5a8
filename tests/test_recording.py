"""GenerationRecorder: one path for recording a generation's life, against a real sessions database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from assistant.errors import BackendError
from assistant.sessions import GenerationRecorder, Session, SessionStore
from backends.base import GenerationParams, GenerationResult, Notice, Usage


def result(*texts: str, reasons: tuple[str, ...] | None = None, error: str | None = None) -> GenerationResult:
    return GenerationResult(
        texts=texts,
        finish_reasons=reasons or ("stop",) * len(texts),  # type: ignore[arg-type]
        usage=Usage(12, 6),
        notices=(Notice("truncated", "The oldest words were left out."),),
        model="gpt2",
        error=error,
    )


@pytest.fixture
def store() -> SessionStore:
    return SessionStore(autosave_delay=0.05)


def open_session(store: SessionStore, text: str = "It was late when") -> Session:
    session = store.create()
    session.document.insert(0, text)
    return session


def saved_event(store: SessionStore, session: Session, event_id: int):  # type: ignore[no-untyped-def]
    session.close()
    return store.open(session.id, read_only=True).event(event_id)


def start(session: Session | None, **extra: object) -> GenerationRecorder:
    return GenerationRecorder.start(
        session,
        "continue",
        {"text": "It was late when", "api_key": "sk-" + "z" * 30},
        GenerationParams(temperature=0.7, stop=("\n\n",)),
        backend="local",
        model="gpt2",
        **extra,
    )  # type: ignore[arg-type]


def test_start_then_finished_is_saved(store: SessionStore) -> None:
    session = open_session(store)
    recorder = start(session, prompt_tokens=9, source="lsp")
    assert recorder.recording and session.event(recorder.event_id).status == "pending"  # type: ignore[arg-type]
    assert recorder.finished(result(" the bell rang.", " it rained.")) and recorder.outcome == "finished"
    event = saved_event(store, session, recorder.event_id)  # type: ignore[arg-type]
    assert event.status == "done" and event.alternatives == [" the bell rang.", " it rained."]
    assert event.source == "lsp" and event.prompt_tokens == 9 and event.usage["completion_tokens"] == 6
    assert event.params["temperature"] == 0.7 and event.params["stop"] == ["\n\n"]
    assert event.variables["api_key"] == "[redacted]"
    assert event.notices == [{"kind": "truncated", "message": "The oldest words were left out."}]


def test_only_the_first_ending_counts(store: SessionStore) -> None:
    session = open_session(store)
    recorder = start(session)
    assert recorder.cancelled([" the bell"])
    assert not recorder.finished(result(" the bell rang."))
    assert not recorder.failed("The model failed.")
    assert not recorder.cancelled()
    event = saved_event(store, session, recorder.event_id)  # type: ignore[arg-type]
    assert event.status == "cancelled" and event.alternatives == [" the bell"] and event.error is None
    assert recorder.outcome == "cancelled"


def test_cancelled_without_text_and_failed_with_the_one_line_reason(store: SessionStore) -> None:
    session = open_session(store)
    stopped = start(session)
    stopped.cancelled()
    failed = start(session)
    failed.failed(BackendError("Cannot connect to http://127.0.0.1:9 (connection refused).", "Is it running?"))
    said = start(session)
    said.failed("The server answered 500.")
    session.close()
    again = store.open(session.id, read_only=True)
    assert again.event(stopped.event_id).status == "cancelled"  # type: ignore[arg-type]
    assert again.event(stopped.event_id).alternatives == []  # type: ignore[arg-type]
    gone = again.event(failed.event_id)  # type: ignore[arg-type]
    assert gone.status == "error" and gone.error == "Cannot connect to http://127.0.0.1:9 (connection refused)."
    assert again.event(said.event_id).error == "The server answered 500."  # type: ignore[arg-type]


def test_a_result_that_ended_in_an_error_is_recorded_as_failed(store: SessionStore) -> None:
    session = open_session(store)
    recorder = start(session)
    recorder.finished(result(" the bell", reasons=("error",), error="The connection broke; the text so far is kept."))
    event = saved_event(store, session, recorder.event_id)  # type: ignore[arg-type]
    assert event.status == "error" and event.alternatives == [" the bell"] and "connection broke" in event.error


def test_the_writers_decision_while_streaming_stands(store: SessionStore) -> None:
    session = open_session(store)
    kept = start(session)
    kept.accept(0, text=" the")  # the writer took a word with Tab while the rest still arrived
    kept.finished(result(" the bell rang.", " it rained."))
    dismissed = start(session)
    session.mark_rejected(dismissed.event_id)  # type: ignore[arg-type]
    dismissed.cancelled([" half a"])
    session.close()
    again = store.open(session.id, read_only=True)
    event = again.event(kept.event_id)  # type: ignore[arg-type]
    assert event.status == "accepted" and event.accepted_alternative == 0 and len(event.alternatives) == 2
    assert again.document.text == "It was late when the"
    assert again.document.spans()[-1].generation_id == kept.event_id
    assert again.event(dismissed.event_id).status == "rejected"  # type: ignore[arg-type]
    assert again.event(dismissed.event_id).alternatives == [" half a"]  # type: ignore[arg-type]


def test_read_only_closed_or_no_session_records_nothing_and_never_raises(store: SessionStore) -> None:
    session = open_session(store)
    session.close()
    looking = store.open(session.id, read_only=True)
    for where in (None, looking, session):
        recorder = start(where)
        assert recorder.event_id is None and not recorder.recording
        assert not recorder.finished(result("x")) and recorder.accept(0) is None
    writable = store.open(session.id)
    recorder = start(writable)
    writable.close()  # e.g. the writer quit while the model was still writing
    assert recorder.event_id is not None
    assert not recorder.failed("too late") and recorder.outcome == "failed"
    again = store.open(session.id, read_only=True)
    assert [e.status for e in again.events] == ["pending"]


def test_record_into_a_session_from_the_bundled_model(store: SessionStore, bundled_model_dir: Path) -> None:
    from assistant import Assistant, collect

    session = open_session(store, "The lighthouse keeper climbed the stairs and")
    helper = Assistant("local", model=str(bundled_model_dir))
    prepared = helper.prepare("continue", {"text": session.document.text}, {"max_new_tokens": 6, "seed": 3})
    recorder = GenerationRecorder.start(
        session,
        prepared.template.name,
        prepared.variables,
        prepared.request.params,
        backend=helper.backend.name,
        source="lsp",
    )

    async def run() -> GenerationResult:
        try:
            return await collect(helper.astream_request(prepared.request))
        finally:
            await helper.aclose()

    generated = asyncio.run(run())
    assert recorder.finished(generated)
    start_at, end_at = recorder.accept(0)  # type: ignore[misc]
    assert session.document.text[start_at:end_at] == generated.text and generated.text
    event = saved_event(store, session, recorder.event_id)  # type: ignore[arg-type]
    assert event.status == "accepted" and event.model and event.usage["completion_tokens"] > 0
    assert event.template == "continue" and event.params["max_new_tokens"] == 6
