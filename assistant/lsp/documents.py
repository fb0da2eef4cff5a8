"""Who wrote what in an editor's document: offers the model made, and the session they land in.

A file-backed document maps to the same co-writing session as ``quillmate write FILE``.
The session is opened only for the moment it is needed (an accept, a save, a provenance
question) and closed again, so the writing app can open the same file in between: the
server never sits on the session's lock. Before each use the session's text is brought
in line with the editor's (the differences are the writer's own typing).

When the writing app holds the session, the server reads it read-only and says once that
accepted text is not being recorded. Documents without a file, or with sessions turned
off, keep their provenance in memory for as long as they are open.

Nothing here knows about LSP.
"""

from __future__ import annotations

import contextlib
import itertools
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from assistant.bible import Bible
from assistant.sessions import Document, Session, SessionLocked, SessionNotFound, SessionStore
from backends.base import GenerationParams, GenerationResult
from backends.errors import QuillmateError

KEPT_OFFERS = 20
_memory_ids = itertools.count(1)


@dataclass
class Offer:
    """A generation the writer may accept part of.

    Attributes:
        template: The template that made it.
        variables: The variables it ran with (scrubbed when stored).
        params: The generation settings.
        backend: The backend profile.
        model: The model.
        result: The finished generation.
        event_ids: The session event recording it, by session id, once something was accepted.
        prompt: What was sent, as labelled parts (``PromptReport.to_dict()``), recorded with it.
        position: For a suggestion at the cursor, its offset in the editor's text then (the
            session keeps the suggestions made at one point as that point's history).
        anchor: The text just before ``position`` then (:func:`assistant.sessions.points.anchor_at`).
    """

    template: str
    variables: dict[str, Any]
    params: GenerationParams
    backend: str
    model: str
    result: GenerationResult
    event_ids: dict[str, int] = field(default_factory=dict)
    prompt: dict[str, Any] | None = None
    position: int | None = None
    anchor: str = ""

    def alternative_holding(self, text: str) -> int | None:
        """The index of the first alternative containing ``text``, or None."""
        for index, candidate in enumerate(self.result.texts):
            if text and text in candidate:
                return index
        return None


@dataclass(frozen=True)
class Accepted:
    """What became of an accept: recorded in a session, in memory, or not at all (and why)."""

    recorded: bool
    session_id: str | None
    message: str = ""


class Ledger:
    """The provenance of one open document.

    Args:
        path: The file behind the document, or None (an unsaved buffer).
        store: The sessions database; None keeps provenance in memory only.
    """

    def __init__(self, path: Path | None, store: SessionStore | None, text: str = "") -> None:
        self.path = path
        self.store = store if path is not None else None
        self.offers: deque[Offer] = deque(maxlen=KEPT_OFFERS)
        self.memory = Document(text) if self.store is None else None
        self.session_id: str | None = None
        self.warned_locked = False

    # -- offers ----------------------------------------------------------------------------

    def remember(self, offer: Offer) -> None:
        """Keep an offer so a later accept can name the generation it came from.

        Every offer is a draft the session keeps, taken or not: it is recorded at once when
        the document's session exists (and no other quillmate holds it), else at the first accept.
        """
        self.offers.append(offer)
        if self.store is None or self.path is None:
            return
        try:
            session = self._open_existing()
            if session is None:
                return
            try:
                self._record_drafts(session)
            finally:
                session.close()
        except QuillmateError:
            # Held by the writing app, or the database is busy: the next accept records it (and
            # reports a failure then); the writer's suggestion must not fail over bookkeeping.
            return

    def _record_drafts(self, session: Session) -> None:
        """Record in ``session`` every kept offer it does not have yet."""
        for offer in self.offers:
            if session.id in offer.event_ids or not offer.backend:
                continue  # already there, or text the server never offered (no model to name)
            _record(session, offer)

    def _find(self, text: str) -> tuple[Offer, int]:
        for offer in reversed(self.offers):
            index = offer.alternative_holding(text)
            if index is not None:
                return offer, index
        # Text the server never offered (another client's, or edited before accepting): still model text.
        result = GenerationResult(texts=(text,), finish_reasons=("stop",))
        offer = Offer("continue", {}, GenerationParams(), "", "", result)
        self.offers.append(offer)
        return offer, 0

    # -- sessions --------------------------------------------------------------------------

    @contextlib.contextmanager
    def session(self, text: str, *, create: bool) -> Iterator[Session | None]:
        """The document's session, its text brought in line with ``text``; closed afterwards.

        Yields None when there is no session (and ``create`` is False). When another
        quillmate holds it, yields it read-only (``session.read_only``), unsynced.
        """
        if self.store is None or self.path is None:
            yield None
            return
        try:
            opened = self.store.open_for_file(self.path) if create else self._open_existing()
        except SessionLocked:
            try:
                opened = self.store.open_for_file(self.path, read_only=True)
            except SessionNotFound:
                opened = None
        if opened is None:
            yield None
            return
        try:
            self.session_id = opened.id
            if not opened.read_only:
                opened.document.set_text(text)
            yield opened
        finally:
            opened.close()

    def _open_existing(self) -> Session | None:
        assert self.store is not None and self.path is not None
        try:
            probe = self.store.open_for_file(self.path, read_only=True)
        except SessionNotFound:
            return None
        probe.close()
        return self.store.open(probe.id)  # SessionLocked when the writing app has it

    def sync(self, text: str) -> None:
        """Bring an existing session's text in line with the editor's (the writer's typing)."""
        if self.memory is not None:
            self.memory.set_text(text)
            return
        with self.session(text, create=False):
            pass

    def saved(self, text: str) -> None:
        """The editor wrote the file: sync, and remember the file as quillmate's own last save."""
        if self.store is None:
            return self.sync(text)
        with self.session(text, create=False) as session:
            if session is not None and not session.read_only and session.file is not None:
                with contextlib.suppress(Exception):  # the file may be gone again already
                    session.reload_from_file()
        return None

    def accept(self, text: str, offset: int, accepted: str) -> Accepted:
        """Record ``accepted`` (at ``offset`` of the editor's ``text``) as model-written.

        The editor usually has inserted it already (it is in ``text``); if not, it is
        inserted into the record at ``offset``.
        """
        if not accepted:
            return Accepted(False, self.session_id, "Nothing was accepted.")
        offer, alternative = self._find(accepted)
        if self.memory is not None:
            event_id = offer.event_ids.setdefault("", next(_memory_ids))
            self.memory.set_text(text)
            _mark_model(self.memory, offset, accepted, event_id, alternative)
            return Accepted(True, None)
        with self.session(text, create=True) as session:
            assert session is not None
            if session.read_only:
                return Accepted(
                    False,
                    session.id,
                    f"{self._locked_message(session)} "
                    "What you accept here is not being recorded until you close it there.",
                )
            self._record_drafts(session)
            known = offer.event_ids.get(session.id)
            event_id = known if known is not None else _record(session, offer)
            _mark_model(session.document, offset, accepted, event_id, alternative)
            session.mark_accepted(event_id, alternative)
            return Accepted(True, session.id)

    def bible(self) -> Bible | None:
        """The story bible of the document's session (None without a session; never creates one).

        Read without taking the session's lock, so it works while the writing app has it open.
        """
        if self.store is None or self.path is None:
            return None
        try:
            opened = self.store.open_for_file(self.path, read_only=True)
        except SessionNotFound:
            return None
        try:
            return opened.bible
        finally:
            opened.close()

    def provenance(self, text: str) -> tuple[str | None, list[dict[str, str]]]:
        """The session id (or None) and the document as spans of writer and model text."""
        if self.memory is not None:
            self.memory.set_text(text)
            return None, _spans(self.memory)
        with self.session(text, create=False) as session:
            if session is None:
                return None, [{"author": "writer", "text": text}] if text else []
            return session.id, _spans(session.document)

    def _locked_message(self, session: Session) -> str:
        holder = self.store.list_lock(session.id) if self.store is not None else None
        who = f" ({holder.describe()})" if holder is not None else ""
        name = self.path.name if self.path is not None else "this document"
        return f"The session for {name} is open in another quillmate{who}."


def _record(session: Session, offer: Offer) -> int:
    """Record ``offer`` in ``session`` as a generation and its result; returns the event id."""
    event_id = session.record_generation(
        offer.template,
        offer.variables,
        asdict(offer.params),
        offer.backend,
        offer.model,
        prompt_tokens=offer.result.usage.prompt_tokens,
        notices=offer.result.notices,
        source="lsp",
        prompt=offer.prompt,
        position=offer.position,
        anchor=offer.anchor,
    )
    session.record_result(event_id, offer.result)
    offer.event_ids[session.id] = event_id
    return event_id


def _mark_model(document: Document, offset: int, accepted: str, event_id: int, alternative: int) -> None:
    end = offset + len(accepted)
    if document.text[offset:end] == accepted:
        document.replace(offset, end, accepted, "model", event_id, alternative, urgent=True)
    else:  # the editor has not told us of the insertion yet
        document.replace(offset, offset, accepted, "model", event_id, alternative, urgent=True)


def _spans(document: Document) -> list[dict[str, Any]]:
    """Spans as the editor sees them: model text the writer has since edited stays model text, marked edited."""
    text = document.text
    out: list[dict[str, Any]] = []
    for span in document.spans():
        if span.end <= span.start:
            continue
        entry: dict[str, Any] = {
            "author": "writer" if span.author == "writer" else "model",
            "text": text[span.start : span.end],
        }
        if span.author == "edited":
            entry["edited"] = True
        out.append(entry)
    return out
