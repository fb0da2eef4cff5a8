"""``quillmate lsp``: the language server, a thin LSP shell over :mod:`assistant.lsp.engine`.

Each feature is registered with a decorator and hands its work to plain code that knows
nothing of LSP (the engine, :mod:`~assistant.lsp.documents`, :mod:`~assistant.lsp.actions`).
The wire format is documented in ``editors/PROTOCOL.md``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams, JsonRpcServerError
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.uris import to_fs_path

from assistant.alternatives import choices_at, regenerate_from
from assistant.cursor import text_after_cursor
from assistant.lsp import actions
from assistant.lsp.alternatives import Located, in_document, in_suggestion
from assistant.lsp.documents import Ledger, Offer
from assistant.lsp.engine import Engine, clean_result, story_title, template_output
from assistant.lsp.streaming import generate
from assistant.sessions.points import anchor_at
from backends.base import GenerationResult, Notice
from backends.errors import QuillmateError, UsageError

if TYPE_CHECKING:
    from assistant.core import Assistant, Prepared

log = logging.getLogger("quillmate.lsp")

PROGRESS = "quillmate/progress"
EXTENSION_KEY = "quillmate"
ERROR_CODE = -32001  # a QuillmateError that is not the request's fault (model, backend, storage)

Handler = TypeVar("Handler", bound=Callable[..., Awaitable[Any]])


def _version() -> str:
    try:
        return metadata.version("quillmate")
    except metadata.PackageNotFoundError:
        return "0+unknown"


@attrs.define
class RawRequest:
    """A quillmate/* request whose params stay a plain dict (pygls would make namedtuples)."""

    id: int | str
    method: str
    jsonrpc: str
    params: Any = None


class QuillmateProtocol(LanguageServerProtocol):
    """LSP, plus quillmate's extension object on inline completion requests."""

    def __init__(self, server: Any, converter: Any) -> None:
        super().__init__(server, converter)
        self.extensions: dict[int | str, dict[str, Any]] = {}

    def structure_message(self, data: dict[str, Any]) -> Any:
        method, params = data.get("method"), data.get("params")
        if isinstance(method, str) and method.startswith("quillmate/") and "id" in data:
            return RawRequest(id=data["id"], method=method, jsonrpc=data.get("jsonrpc", ""), params=params)
        if method == types.TEXT_DOCUMENT_INLINE_COMPLETION and isinstance(params, dict):
            extension = params.pop(EXTENSION_KEY, None)
            if isinstance(extension, dict) and "id" in data:
                self.extensions[data["id"]] = extension
        return super().structure_message(data)


class QuillmateServer(LanguageServer):
    """The server: one engine (the loaded model) and one ledger per open document."""

    def __init__(self, engine: Engine | None = None) -> None:
        super().__init__("quillmate", _version(), protocol_cls=QuillmateProtocol)
        self.engine = engine or Engine()
        self.ledgers: dict[str, Ledger] = {}
        self._store: Any = None

    @property
    def qprotocol(self) -> QuillmateProtocol:
        assert isinstance(self.protocol, QuillmateProtocol)
        return self.protocol

    # -- documents -------------------------------------------------------------------------

    def ledger(self, uri: str) -> Ledger:
        """The provenance ledger of ``uri`` (made on first use)."""
        if uri not in self.ledgers:
            path = _path_of(uri)
            store = self.store() if path is not None and self.engine.settings.sessions else None
            self.ledgers[uri] = Ledger(path, store, self.text(uri))
        return self.ledgers[uri]

    def store(self) -> Any:
        """The sessions database, opened on first use."""
        if self._store is None:
            from assistant.sessions import SessionStore

            self._store = SessionStore()
        return self._store

    def text(self, uri: str) -> str:
        """The editor's current text of ``uri``."""
        return self.workspace.get_text_document(uri).source

    def offset(self, uri: str, position: dict[str, Any] | types.Position) -> int:
        """A code-point offset for an LSP position (in the negotiated encoding)."""
        return self.workspace.get_text_document(uri).offset_at_position(_position(position))

    # -- reporting -------------------------------------------------------------------------

    def show(self, message: str, kind: types.MessageType = types.MessageType.Error) -> None:
        """``window/showMessage``."""
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))

    def note(self, notice: Notice) -> None:
        """A backend's notice goes to the editor's log (and stderr)."""
        log.info("%s", notice.message)
        self.window_log_message(
            types.LogMessageParams(type=types.MessageType.Info, message=f"quillmate: note: {notice.message}")
        )

    def progress_sender(self, stream_id: str | None) -> Callable[[int, str, bool], None] | None:
        """A callback sending ``quillmate/progress`` for ``stream_id`` (None when not streaming)."""
        if not stream_id:
            return None

        def send(index: int, text: str, done: bool) -> None:
            self.protocol.notify(PROGRESS, {"streamId": stream_id, "index": index, "text": text, "done": done})

        return send

    def report_server_error(self, error: Exception, source: Any) -> None:
        # Request errors were already shown as one line by `reporting`; only log them here.
        log.info("%s", error)


server = QuillmateServer()


def reporting(handler: Handler) -> Handler:
    """Turn a failure into ``window/showMessage`` plus a JSON-RPC error carrying the same line."""

    @functools.wraps(handler)
    async def wrapper(ls: QuillmateServer, *args: Any) -> Any:
        try:
            return await handler(ls, *args)
        except QuillmateError as error:
            line = f"quillmate: {error}"
            ls.show(line)
            if isinstance(error, UsageError):
                raise JsonRpcInvalidParams(line) from None
            raise JsonRpcServerError(line, ERROR_CODE) from None
        except (asyncio.CancelledError, JsonRpcException):
            raise
        except Exception as error:
            log.exception("unexpected error")
            line = f"quillmate: unexpected error: {type(error).__name__}: {error} (please report it)"
            ls.show(line)
            raise JsonRpcServerError(line, ERROR_CODE) from None

    return wrapper  # type: ignore[return-value]


# -- lifecycle and configuration -------------------------------------------------------------


@server.feature(types.INITIALIZE)
def initialize(ls: QuillmateServer, params: types.InitializeParams) -> None:
    try:
        ls.engine.settings = ls.engine.settings.updated(params.initialization_options)
    except QuillmateError as error:  # keep the defaults; the editor still gets a server
        ls.show(f"quillmate: {error}")


@server.feature(types.INITIALIZED)
def initialized(ls: QuillmateServer, params: types.InitializedParams) -> None:
    task = ls.engine.start_loading()

    def loaded(done: asyncio.Task[Any]) -> None:
        if not done.cancelled() and isinstance(done.exception(), QuillmateError):
            ls.show(f"quillmate: {done.exception()}")

    task.add_done_callback(loaded)


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
@reporting
async def did_change_configuration(ls: QuillmateServer, params: types.DidChangeConfigurationParams) -> None:
    settings = params.settings if isinstance(params.settings, dict) else {}
    wanted = settings.get("quillmate", settings)
    await ls.engine.configure(ls.engine.settings.updated(wanted if isinstance(wanted, dict) else None))


# -- document sync ---------------------------------------------------------------------------


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: QuillmateServer, params: types.DidOpenTextDocumentParams) -> None:
    _quietly(ls, lambda: ls.ledger(params.text_document.uri).sync(params.text_document.text))


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: QuillmateServer, params: types.DidSaveTextDocumentParams) -> None:
    uri = params.text_document.uri
    _quietly(ls, lambda: ls.ledger(uri).saved(ls.text(uri)))


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: QuillmateServer, params: types.DidCloseTextDocumentParams) -> None:
    # The editor may throw unsaved changes away: the file on disk is what the session keeps.
    ledger = ls.ledgers.pop(params.text_document.uri, None)
    path = ledger.path if ledger is not None and ledger.memory is None else None
    if ledger is not None and path is not None and path.is_file():
        _quietly(ls, lambda: ledger.sync(path.read_text(encoding="utf-8")))


# -- ghost text --------------------------------------------------------------------------------


@server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
@reporting
async def inline_completion(ls: QuillmateServer, params: types.InlineCompletionParams) -> types.InlineCompletionList:
    extension = ls.qprotocol.extensions.pop(ls.protocol.msg_id, {}) if ls.protocol.msg_id is not None else {}
    uri = params.text_document.uri
    document, offset = ls.text(uri), ls.offset(uri, params.position)
    before = document[:offset]
    helper = await ls.engine.assistant()
    ledger = ls.ledger(uri)
    prepared = ls.engine.prepare_continue(
        helper,
        before,
        title=story_title(ledger.path),
        n=extension.get("n"),
        max_new_tokens=extension.get("maxNewTokens"),
        bible=ledger.bible(),
        after=text_after_cursor(document, offset),
    )
    result = await generate(helper, prepared.request, ls.progress_sender(extension.get("streamId")), ls.note)
    ledger.remember(_offer(prepared, helper, result, at=before))
    here = types.Range(start=params.position, end=params.position)
    return types.InlineCompletionList(
        items=[types.InlineCompletionItem(insert_text=text, range=here) for text in result.texts]
    )


# -- rewrites and templates (quillmate's own requests) ----------------------------------------------


@server.feature("quillmate/rewrite")
@reporting
async def rewrite_request(ls: QuillmateServer, params: dict[str, Any]) -> dict[str, Any]:
    uri, selection = _document_uri(params), _range(params)
    new_text = await _rewrite(ls, uri, selection, str(params.get("instruction") or ""), params.get("streamId"))
    return {"newText": new_text, "edit": _edit(uri, selection, new_text)}


@server.feature("quillmate/templates")
@reporting
async def templates_request(ls: QuillmateServer, params: Any = None) -> list[dict[str, Any]]:
    return [
        {
            "name": t.name,
            "description": t.description,
            "takesSelection": t.input_variable is not None,
            "output": template_output(t),
        }
        for t in ls.engine.templates(ls.engine.loaded)
    ]


@server.feature("quillmate/runTemplate")
@reporting
async def run_template_request(ls: QuillmateServer, params: dict[str, Any]) -> dict[str, Any]:
    return await _run_template(
        ls,
        params.get("template"),
        params.get("variables"),
        _document_uri(params, required=False),
        params.get("range"),
        params.get("streamId"),
    )


@server.feature("quillmate/contextInfo")
@reporting
async def context_info_request(ls: QuillmateServer, params: dict[str, Any] | None = None) -> dict[str, Any]:
    info = ls.engine.context_info()
    uri = _document_uri(params or {}, required=False)
    info["sessionId"] = ls.ledger(uri).provenance(ls.text(uri))[0] if uri else None
    return info


@server.feature("quillmate/provenance")
@reporting
async def provenance_request(ls: QuillmateServer, params: dict[str, Any]) -> dict[str, Any]:
    uri = _document_uri(params)
    session_id, spans = ls.ledger(uri).provenance(ls.text(uri))
    return {"sessionId": session_id, "spans": spans}


# -- word alternatives ----------------------------------------------------------------------------


@server.feature("quillmate/alternatives")
@reporting
async def alternatives_request(ls: QuillmateServer, params: dict[str, Any]) -> dict[str, Any]:
    uri = _document_uri(params)
    found = _locate(ls, uri, params)
    reply = choices_at(found.tokens, found.at).to_dict()
    reply["text"] = found.written
    if found.base is not None:
        reply["range"] = _client_range(ls, uri, found.base + reply["start"], found.base + reply["end"])
    return reply


@server.feature("quillmate/regenerateFrom")
@reporting
async def regenerate_from_request(ls: QuillmateServer, params: dict[str, Any]) -> dict[str, Any]:
    uri = _document_uri(params)
    choice = params.get("choice")
    if not isinstance(choice, str) or not choice:
        raise UsageError("quillmate/regenerateFrom needs 'choice': the word to put there.", "See editors/PROTOCOL.md.")
    found = _locate(ls, uri, params)
    helper = await ls.engine.assistant()
    ledger = ls.ledger(uri)
    made: list[Prepared] = []
    after = _after_written(ls, uri, found, params)

    def prepare(text: str) -> Prepared:
        made.append(
            ls.engine.prepare_continue(
                helper, text, title=story_title(ledger.path), n=1, bible=ledger.bible(), after=after
            )
        )
        return made[-1]

    send = ls.progress_sender(params.get("streamId"))
    on_progress = None
    if send is not None:
        # Progress carries the whole new suggestion: the kept words and the choice, then the rest.
        lead = found.written[: choices_at(found.tokens, found.at).start] + choice

        def on_progress(index: int, text: str, done: bool) -> None:
            send(index, lead + text, done)

    again = await regenerate_from(
        helper,
        found.before,
        found.written,
        found.tokens,
        found.at,
        choice,
        prepare=prepare,
        run=lambda request: generate(helper, request, on_progress, ls.note),
    )
    result = replace(
        again.result, texts=(again.text,), finish_reasons=again.result.finish_reasons[:1], logprobs=(again.tokens,)
    )
    # Written again from the same point as the suggestion it replaces (when the editor said where that is).
    point = found.before if found.base is not None or isinstance(params.get("position"), dict) else None
    ledger.remember(_offer(made[-1], helper, result, at=point))
    reply: dict[str, Any] = {"text": again.text, "start": again.start}
    if found.base is not None:
        span = _client_range(ls, uri, found.base + again.start, found.base + len(found.written))
        reply["edit"] = _edit(uri, span, again.text[again.start :])
    return reply


def _after_written(ls: QuillmateServer, uri: str, found: Located, params: dict[str, Any]) -> str:
    """The document's text after a suggestion: after its text in the document, else after where it was offered."""
    document = ls.text(uri)
    if found.base is not None:
        return text_after_cursor(document, found.base + len(found.written))
    position = params.get("position")
    return text_after_cursor(document, ls.offset(uri, position)) if isinstance(position, dict) else ""


def _locate(ls: QuillmateServer, uri: str, params: dict[str, Any]) -> Located:
    """The word the request points at: ``text`` + ``offset`` (a suggestion), else ``position`` in the document."""
    offers = ls.ledger(uri).offers
    if "text" in params:
        text, offset = params.get("text"), params.get("offset")
        if not isinstance(text, str) or not isinstance(offset, int) or isinstance(offset, bool):
            raise UsageError(
                "A suggestion's word needs 'text' and a whole-number 'offset' in it.", "See editors/PROTOCOL.md."
            )
        position = params.get("position")
        before = ls.text(uri)[: ls.offset(uri, position)] if isinstance(position, dict) else ""
        return in_suggestion(offers, text, offset, before)
    position = params.get("position")
    if not isinstance(position, dict):
        raise UsageError(
            "Give the word's 'position' in the document, or a suggestion's 'text' and 'offset'.",
            "See editors/PROTOCOL.md.",
        )
    return in_document(offers, ls.text(uri), ls.offset(uri, position))


def _client_range(ls: QuillmateServer, uri: str, start: int, end: int) -> dict[str, Any]:
    """Code-point offsets ``start``..``end`` of ``uri`` as an LSP range (in the negotiated encoding)."""
    document = ls.workspace.get_text_document(uri)
    return {
        "start": _position_dict(document.client_position_at_offset(start)),
        "end": _position_dict(document.client_position_at_offset(end)),
    }


def _position_dict(position: types.Position) -> dict[str, int]:
    return {"line": position.line, "character": position.character}


# -- code actions and commands -------------------------------------------------------------------


@server.feature(
    types.TEXT_DOCUMENT_CODE_ACTION,
    types.CodeActionOptions(
        code_action_kinds=[
            types.CodeActionKind.QuickFix,
            types.CodeActionKind.RefactorRewrite,
            types.CodeActionKind.Refactor,
        ]
    ),
)
def code_action(ls: QuillmateServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    selection = _range_dict(params.range)
    has_selection = params.range.start != params.range.end
    try:
        templates = ls.engine.templates(ls.engine.loaded) if has_selection else []
    except QuillmateError:
        templates = []  # a broken template file must not hide the rewrites
    return [
        types.CodeAction(
            title=a.title, kind=a.kind, command=types.Command(title=a.title, command=a.command, arguments=a.arguments)
        )
        for a in actions.actions_for(params.text_document.uri, selection, has_selection, templates)
    ]


@server.command(actions.CONTINUE)
@reporting
async def continue_command(ls: QuillmateServer, *args: Any) -> dict[str, Any]:
    uri, position = _arg(args, 0, str, "a document uri"), _arg(args, 1, dict, "a position")
    offset = ls.offset(uri, position)
    helper = await ls.engine.assistant()
    ledger = ls.ledger(uri)
    document = ls.text(uri)
    before = document[:offset]
    prepared = ls.engine.prepare_continue(
        helper,
        before,
        title=story_title(ledger.path),
        n=1,
        bible=ledger.bible(),
        after=text_after_cursor(document, offset),
    )
    result = await generate(helper, prepared.request, on_notice=ls.note)
    ledger.remember(_offer(prepared, helper, result, at=before))
    await _apply(ls, uri, {"start": position, "end": position}, result.text, "quillmate: continue")
    return {"text": result.text}


@server.command(actions.REWRITE)
@reporting
async def rewrite_command(ls: QuillmateServer, *args: Any) -> dict[str, Any]:
    uri, selection = _arg(args, 0, str, "a document uri"), _arg(args, 1, dict, "a range")
    instruction = _arg(args, 2, str, "an instruction")
    new_text = await _rewrite(ls, uri, selection, instruction, None)
    await _apply(ls, uri, selection, new_text, f"quillmate: rewrite {instruction}")
    return {"newText": new_text}


@server.command(actions.RUN_TEMPLATE)
@reporting
async def run_template_command(ls: QuillmateServer, *args: Any) -> dict[str, Any]:
    spec = _arg(args, 0, dict, "an object with the template's name")
    uri, selection = spec.get("uri"), spec.get("range")
    outcome = await _run_template(ls, spec.get("template"), spec.get("variables"), uri, selection, None)
    edit = outcome.get("edit")
    if edit is not None and uri:
        change = edit["changes"][uri][0]
        await _apply(
            ls, uri, change["range"], change["newText"], f"quillmate: {spec.get('template')}", accepted=outcome["text"]
        )
    return outcome


@server.command(actions.SWITCH_BACKEND)
@reporting
async def switch_backend_command(ls: QuillmateServer, *args: Any) -> dict[str, Any]:
    profile = _arg(args, 0, str, "a backend profile name")
    model = args[1] if len(args) > 1 and isinstance(args[1], str) and args[1] else None
    await ls.engine.switch_backend(profile, model)
    info = ls.engine.context_info()
    ls.show(f"quillmate: now writing with {info['backend']} ({info['model']}).", types.MessageType.Info)
    return info


@server.command(actions.ACCEPT)
@reporting
async def accept_command(ls: QuillmateServer, *args: Any) -> dict[str, Any]:
    spec = _arg(args, 0, dict, "an object with uri, text and position")
    uri = _document_uri(spec)
    text, position = spec.get("text"), spec.get("position")
    if not isinstance(text, str) or not isinstance(position, dict):
        raise UsageError("quillmate.accept needs the accepted text and its position.")
    return _record_accept(ls, uri, ls.offset(uri, position), text)


# -- the work behind the handlers ------------------------------------------------------------------


async def _rewrite(
    ls: QuillmateServer, uri: str, selection: dict[str, Any], instruction: str, stream_id: str | None
) -> str:
    text = ls.text(uri)
    passage = text[ls.offset(uri, selection["start"]) : ls.offset(uri, selection["end"])]
    helper = await ls.engine.assistant()
    prepared = ls.engine.prepare_rewrite(helper, passage, instruction, bible=ls.ledger(uri).bible())
    result = await generate(helper, prepared.request, ls.progress_sender(stream_id), ls.note)
    new_text = clean_result(prepared.template, result.text, passage)
    ls.ledger(uri).remember(_offer(prepared, helper, result))
    if not new_text.strip():
        raise UsageError("The model wrote nothing for this rewrite.", "Try again, or another instruction.")
    return new_text


async def _run_template(
    ls: QuillmateServer,
    name: Any,
    variables: Any,
    uri: str | None,
    selection: dict[str, Any] | None,
    stream_id: str | None,
) -> dict[str, Any]:
    if not isinstance(name, str) or not name:
        raise UsageError("Name the template to run.", "quillmate/templates lists them.")
    if variables is not None and not isinstance(variables, dict):
        raise UsageError("A template's variables must be an object of names and values.")
    passage = None
    if uri and selection:
        passage = ls.text(uri)[ls.offset(uri, selection["start"]) : ls.offset(uri, selection["end"])]
    helper = await ls.engine.assistant()
    prepared = ls.engine.prepare_template(helper, name, variables, passage or None)
    result = await generate(helper, prepared.request, ls.progress_sender(stream_id), ls.note)
    output = template_output(prepared.template)
    text = clean_result(prepared.template, result.text, passage if output == "edit" else None)
    if uri:
        ls.ledger(uri).remember(_offer(prepared, helper, result))
    reply: dict[str, Any] = {"text": text, "output": output}
    if uri and selection:
        if output == "edit":
            reply["edit"] = _edit(uri, selection, text)
        else:
            end = selection["end"]
            gap = "\n" if (passage or "").endswith("\n") else "\n\n"
            reply["edit"] = _edit(uri, {"start": end, "end": end}, f"{gap}{text}\n")
    return reply


async def _apply(
    ls: QuillmateServer, uri: str, selection: dict[str, Any], new_text: str, label: str, accepted: str | None = None
) -> None:
    """Apply an edit the writer asked for through the editor (so undo works), then record it as model text."""
    start = ls.offset(uri, selection["start"])
    edit = types.WorkspaceEdit(changes={uri: [types.TextEdit(range=_lsp_range(selection), new_text=new_text)]})
    answer = await ls.workspace_apply_edit_async(types.ApplyWorkspaceEditParams(edit=edit, label=label))
    if not answer.applied:
        reason = f": {answer.failure_reason}" if answer.failure_reason else ""
        raise UsageError(f"The editor did not apply the edit{reason}.")
    await asyncio.sleep(0)  # let the editor's didChange for the edit be read first
    accepted = new_text if accepted is None else accepted
    offset = start + max(0, new_text.find(accepted))
    _record_accept(ls, uri, offset, accepted)


def _offer(prepared: Prepared, helper: Assistant, result: GenerationResult, *, at: str | None = None) -> Offer:
    """``result`` of ``prepared`` as an offer for the document's ledger, with what was sent.

    ``at`` is the document's text before the cursor for a suggestion offered there: the
    session keeps it with that point's history.
    """
    return Offer(
        prepared.template.name,
        prepared.variables,
        prepared.request.params,
        helper.backend.name,
        result.model,
        result,
        prompt=_sent(prepared, helper),
        position=None if at is None else len(at),
        anchor="" if at is None else anchor_at(at, len(at)),
    )


def _sent(prepared: Prepared, helper: Assistant) -> dict[str, Any] | None:
    """What ``prepared`` sent, as labelled parts, to record with an accepted generation (None if uncountable)."""
    try:
        return prepared.prompt_report(helper.backend).to_dict()
    except Exception:  # the record is a courtesy: never lose the writer's generation over it
        return None


def _record_accept(ls: QuillmateServer, uri: str, offset: int, text: str) -> dict[str, Any]:
    ledger = ls.ledger(uri)
    outcome = ledger.accept(ls.text(uri), offset, text)
    if not outcome.recorded and outcome.message and not ledger.warned_locked:
        ledger.warned_locked = True
        ls.show(f"quillmate: {outcome.message}", types.MessageType.Warning)
    return {"recorded": outcome.recorded, "sessionId": outcome.session_id}


def _quietly(ls: QuillmateServer, work: Callable[[], Any]) -> None:
    """Session bookkeeping on a notification: a failure is shown, never raised (nothing answers it)."""
    try:
        work()
    except QuillmateError as error:
        ls.show(f"quillmate: {error}", types.MessageType.Warning)


def _arg(args: tuple[Any, ...], index: int, kind: type, what: str) -> Any:
    if len(args) <= index or not isinstance(args[index], kind):
        raise UsageError(f"This command needs {what} as argument {index + 1}.", "See editors/PROTOCOL.md.")
    return args[index]


def _document_uri(params: Any, *, required: bool = True) -> Any:
    if not isinstance(params, dict):
        params = {}
    uri = params.get("uri") or (params.get("textDocument") or {}).get("uri")
    if required and not isinstance(uri, str):
        raise UsageError("This request needs a textDocument with its uri.")
    return uri if isinstance(uri, str) else None


def _range(params: dict[str, Any]) -> dict[str, Any]:
    found = params.get("range")
    if not (isinstance(found, dict) and isinstance(found.get("start"), dict) and isinstance(found.get("end"), dict)):
        raise UsageError("This request needs the range of the selection.")
    return found


def _position(value: dict[str, Any] | types.Position) -> types.Position:
    if isinstance(value, types.Position):
        return value
    try:
        return types.Position(line=int(value["line"]), character=int(value["character"]))
    except (KeyError, TypeError, ValueError):
        raise UsageError("A position needs a line and a character.") from None


def _lsp_range(value: dict[str, Any]) -> types.Range:
    return types.Range(start=_position(value["start"]), end=_position(value["end"]))


def _range_dict(value: types.Range) -> dict[str, Any]:
    return {"start": _position_dict(value.start), "end": _position_dict(value.end)}


def _edit(uri: str, selection: dict[str, Any], new_text: str) -> dict[str, Any]:
    return {"changes": {uri: [{"range": selection, "newText": new_text}]}}


def _path_of(uri: str) -> Path | None:
    if not uri.startswith("file:"):
        return None
    path = to_fs_path(uri)
    return Path(path) if path else None
