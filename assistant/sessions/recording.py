"""Recording a generation in a session: the one path every front end takes.

The writing app, ``quillmate run --session``, the HTTP server and the language
server all record a generation the same way, so a session's history reads the
same wherever its text came from: a :class:`GenerationRecorder` is started when
the request is made and is then told exactly one ending.

Example (what a language-server feature does)::

    from assistant.sessions import GenerationRecorder

    prepared = assistant.prepare("continue", {"text": before_cursor})
    recorder = GenerationRecorder.start(
        session, prepared.template.name, prepared.variables, prepared.request.params,
        backend=assistant.backend.name, model=model_name, source="lsp",
    )
    try:
        result = await collect(assistant.astream_prepared(prepared))
    except asyncio.CancelledError:
        recorder.cancelled(texts_so_far)        # or a partial GenerationResult
        raise
    except Exception as error:
        recorder.failed(error)                  # stores error.message (a QuillmateError's one line)
        raise
    recorder.finished(result)
    ...
    recorder.accept(alternative=0, pos=cursor)  # later, when the writer keeps it (None if not recorded)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypedDict, Unpack

from assistant.sessions.errors import SessionReadOnly
from assistant.sessions.session import Session
from backends.base import FinishReason, GenerationResult

Outcome = Literal["finished", "cancelled", "failed"]


class GenerationDetails(TypedDict, total=False):
    """Who and what made a generation, as :meth:`Session.record_generation` takes them."""

    backend: str
    """The backend profile's name."""
    model: str
    """The model, as far as it is known now (the result's model replaces it)."""
    prompt_tokens: int
    """Tokens in the prompt, when known before the answer."""
    notices: Any
    """Notices known before the answer (e.g. the prompt was shortened)."""
    source: str
    """Who asked: ``app`` (the default), ``cli``, ``server`` or ``lsp``."""
    prompt: Any
    """What is sent, as labelled parts: ``Prepared.prompt_report()`` (a ``PromptReport``)."""
    position: int | None
    """For a suggestion at the cursor: its offset in the draft (its history is kept by that point)."""
    anchor: str | None
    """The text just before ``position`` when the front end's text may be ahead of the session's."""


class GenerationRecorder:
    """Records one generation's life in a session: asked, then finished, cancelled or failed.

    Start one with :meth:`start` (or attach to an event already recorded with
    ``GenerationRecorder(session, event_id)``), then call exactly one of
    :meth:`finished`, :meth:`cancelled` or :meth:`failed`. The rules:

    * **Nothing to record into.** With no session, or one open read-only or already
      closed, ``start`` records nothing: ``event_id`` is None and every method does
      nothing. A session closed or made read-only mid-way makes the ending a no-op too.
    * **One ending.** The first ending counts; any later one (or a second call of the
      same) changes nothing and returns False, so cleanup code may call them freely.
    * **The writer's decision stands.** When the writer kept or dismissed the text while
      it was still arriving (the app's Tab), the ending records the text and keeps
      that decision instead of overwriting it.

    Endings return True when they changed the session. They are safe to call on the
    thread that owns the session; the session saves the change in the background.

    Attributes:
        session: The session recorded into (None for a recorder that records nothing).
        event_id: The generation event's id in the session, or None when nothing was recorded.
    """

    def __init__(self, session: Session | None = None, event_id: int | None = None) -> None:
        self.session = session
        self.event_id = event_id if session is not None else None
        self._outcome: Outcome | None = None
        self._lock = threading.Lock()

    @classmethod
    def start(
        cls,
        session: Session | None,
        template: str,
        variables: Mapping[str, Any] | None = None,
        params: Any = None,
        **details: Unpack[GenerationDetails],
    ) -> GenerationRecorder:
        """Record that a generation was asked for; returns its recorder.

        Args:
            session: Where to record; None, read-only or closed records nothing.
            template: The template's name (``continue``, ``rewrite``, ``chat``...).
            variables: The template variables as resolved (stored scrubbed of keys; long text shortened).
            params: The generation parameters: a ``GenerationParams`` or a mapping.
            details: Who and what made it, by name (:class:`GenerationDetails`).

        Returns:
            A recorder whose ``event_id`` names the new pending event (None when nothing was recorded).
        """
        if session is None or not _writable(session):
            return cls()
        try:
            event_id = session.record_generation(template, variables, params, **details)
        except SessionReadOnly:  # closed by another thread a moment ago
            return cls()
        return cls(session, event_id)

    @property
    def recording(self) -> bool:
        """True when there is an event to record into."""
        return self.event_id is not None

    @property
    def outcome(self) -> Outcome | None:
        """``finished``, ``cancelled`` or ``failed`` once an ending was called, else None."""
        return self._outcome

    def finished(self, result: GenerationResult) -> bool:
        """The answer arrived: store its alternatives, how each ended, its notices and usage.

        A result that ended in an error is recorded as failed with the result's reason,
        one cut short by cancellation as cancelled.
        """

        def record(session: Session, event_id: int) -> None:
            decision = _writer_decision(session, event_id)
            session.record_result(event_id, result)
            _restore(session, event_id, decision)

        return self._end("finished", record)

    def cancelled(self, partial: GenerationResult | Sequence[str] | None = None) -> bool:
        """The writer (or the program) stopped it: keep what had arrived, if given, and mark it cancelled.

        Args:
            partial: The text so far, one string per alternative, or a result built from it.
        """

        def record(session: Session, event_id: int) -> None:
            decision = _writer_decision(session, event_id)
            if isinstance(partial, GenerationResult):
                session.record_result(event_id, partial)
            elif partial is not None:
                texts = tuple(partial)
                reasons: tuple[FinishReason, ...] = tuple("cancelled" for _ in texts)
                session.record_result(event_id, GenerationResult(texts=texts, finish_reasons=reasons))
            if decision is None:
                session.mark_cancelled(event_id)
            else:
                _restore(session, event_id, decision)

        return self._end("cancelled", record)

    def failed(self, error: BaseException | str) -> bool:
        """It failed before an answer: store the one-line reason (an error's ``message``, else its text)."""
        message = error if isinstance(error, str) else (getattr(error, "message", None) or str(error))

        def record(session: Session, event_id: int) -> None:
            session.mark_error(event_id, message)

        return self._end("failed", record)

    def accept(self, alternative: int = 0, pos: int | None = None, text: str | None = None) -> tuple[int, int] | None:
        """Put an alternative into the draft as the model's text (see ``Session.accept``); None when not recorded.

        Raises:
            SessionReadOnly: the session can no longer be changed.
        """
        if self.session is None or self.event_id is None:
            return None
        return self.session.accept(self.event_id, alternative, pos=pos, text=text)

    def _end(self, outcome: Outcome, record: Callable[[Session, int], None]) -> bool:
        with self._lock:
            if self._outcome is not None:
                return False
            self._outcome = outcome
        session, event_id = self.session, self.event_id
        if session is None or event_id is None or not _writable(session):
            return False
        try:
            record(session, event_id)
        except (SessionReadOnly, KeyError):  # closed meanwhile, or the event is not in this session
            return False
        return True

    def __repr__(self) -> str:
        where = self.session.id if self.session is not None else None
        return f"GenerationRecorder(session={where!r}, event_id={self.event_id!r}, outcome={self._outcome!r})"


def _writable(session: Session) -> bool:
    return not (session.read_only or session.closed)


def _writer_decision(session: Session, event_id: int) -> tuple[str, int] | None:
    """("accepted", alternative) or ("rejected", 0) when the writer decided while the text arrived."""
    event = session.event(event_id)
    if event.status == "accepted":
        return "accepted", event.accepted_alternative or 0
    if event.status == "rejected":
        return "rejected", 0
    return None


def _restore(session: Session, event_id: int, decision: tuple[str, int] | None) -> None:
    if decision is None:
        return
    if decision[0] == "accepted":
        session.mark_accepted(event_id, decision[1])
    else:
        session.mark_rejected(event_id)


def record_cli_generation(
    store: Any,
    session_id: str,
    template: str,
    variables: Mapping[str, Any] | None,
    params: Any,
    backend: str,
    model: str,
    result: GenerationResult,
    prompt_tokens: int = 0,
    prompt: Any = None,
) -> int:
    """For ``quillmate run ... --session ID``: record the generation and append its first alternative.

    The session is opened for the moment of writing only. The text goes at the end of the
    document as model text (with the event's provenance) and the event is marked accepted;
    a failed or empty result is recorded without changing the text. ``store`` is a
    ``SessionStore`` (None: the default one, closed afterwards). Returns the event id.

    Raises:
        SessionNotFound, SessionLocked, StorageError.
    """
    own = store is None
    if own:
        from assistant.sessions.store import SessionStore

        store = SessionStore()
    try:
        with store.open(session_id) as session:
            recorder = GenerationRecorder.start(
                session,
                template,
                variables,
                params,
                backend=backend,
                model=model,
                prompt_tokens=prompt_tokens,
                source="cli",
                prompt=prompt,
            )
            recorder.finished(result)
            text = result.text
            if recorder.event_id is None:  # cannot happen to a session just opened for writing; said plainly if it does
                raise SessionReadOnly(f"Session {session.id} could not be written to; nothing was recorded.")
            if text and not result.error:
                recorder.accept(0, pos=len(session.document), text=text)
            return recorder.event_id
    finally:
        if own:
            store.close()
