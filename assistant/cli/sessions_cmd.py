"""``quillmate sessions``: list, show, export, search and delete co-writing sessions."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from assistant.cli.common import echo_err

if TYPE_CHECKING:
    from assistant.sessions import SessionStore


def _store() -> SessionStore:
    """The store (imported lazily to keep `quillmate --help` fast); warns if the database was recovered."""
    from assistant.sessions import SessionStore

    store = SessionStore()
    if store.recovered is not None:
        echo_err(f"quillmate: {store.recovered.message}")
    return store


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def sessions() -> None:
    """List, show, export, search and delete co-writing sessions.

    \b
    Examples:
      quillmate sessions list
      quillmate sessions drafts 3f2a --compare 1 4
      quillmate sessions export 3f2a --format md-attributed -o chapter1.md
      quillmate sessions search lighthouse
    """


@sessions.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_cmd(as_json: bool) -> None:
    """List sessions, most recently changed first."""
    with _store() as store:
        infos = store.list()
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "id": i.id,
                        "title": i.title,
                        "file": str(i.file) if i.file else None,
                        "created": i.created,
                        "updated": i.updated,
                        "words": i.words,
                        "events": i.events,
                        "open_in": {"pid": i.locked_by.pid, "host": i.locked_by.host} if i.locked_by else None,
                    }
                    for i in infos
                ],
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    if not infos:
        echo_err("No sessions yet: `quillmate write` starts one.")
        return
    click.echo(f"{'ID':<8}  {'UPDATED':<16}  {'WORDS':>7}  TITLE")
    for info in infos:
        flag = "  (open)" if info.locked_by else ""
        where = f"  [{info.file}]" if info.file and info.file.name != info.title else ""
        click.echo(f"{info.id:<8}  {_when(info.updated):<16}  {info.words:>7,}  {info.title}{where}{flag}")


@sessions.command("new")
@click.option(
    "--file",
    "file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Link the session to this file (it starts with the file's text).",
)
@click.option("--title", help="The session's title.")
def new_cmd(file: Path | None, title: str | None) -> None:
    """Start a session and print its id (for scripts: `ID=$(quillmate sessions new)`)."""
    with _store() as store, store.create(title=title, file=file) as session:
        click.echo(session.id)


def _show_prompt(session_id: str, number: int, as_json: bool) -> None:
    """What generation ``number`` sent, part by part."""
    from assistant.bible import PromptReport
    from backends.errors import UsageError

    with _store() as store:
        session = store.open(session_id, read_only=True)
        try:
            event = session.event(number)
        except KeyError:
            raise UsageError(
                f"Session {session.id} has no generation #{number}.",
                f"`quillmate sessions show {session.id}` lists them.",
            ) from None
        finally:
            session.close()
    if not event.prompt:
        raise UsageError(
            f"Generation #{number} did not record what it sent (it came from an older quillmate "
            "or a front end that does not record prompts yet).",
            "",
        )
    if as_json:
        click.echo(json.dumps(event.prompt, indent=2, ensure_ascii=False))
        return
    click.echo(PromptReport.from_dict(event.prompt).render())


@sessions.command("show")
@click.argument("session_id")
@click.option(
    "--prompt", "prompt_number", type=int, metavar="N", help="Show what generation N sent to the model, part by part."
)
@click.option("--json", "as_json", is_flag=True, help="With --prompt: print the parts as JSON.")
def show_cmd(session_id: str, prompt_number: int | None = None, as_json: bool = False) -> None:
    """Show a session: title, file, statistics, recent generations and notes."""
    if prompt_number is not None:
        _show_prompt(session_id, prompt_number, as_json)
        return
    with _store() as store:
        session = store.open(session_id, read_only=True)
        lock = store.list_lock(session.id)
        events = session.events
    stats = session.stats()
    lines = [
        f"Session   {session.id}",
        f"Title     {session.title}",
        f"File      {session.file or '(none)'}",
        f"Created   {_when(session.created)}",
        f"Updated   {_when(session.updated)}",
        f"Words     {stats.summary()}",
    ]
    if lock is not None:
        lines.append(f"Open in   {lock.describe()}")
    for model in stats.by_model:
        lines.append(f"          {model.model}: {model.words:,} words, {model.edited_words:,} edited")
    if events:
        lines += ["", f"Generations ({len(events)}, latest last):"]
        for event in events[-10:]:
            extra = f" alternative {event.accepted_alternative + 1}" if event.accepted_alternative is not None else ""
            lines.append(f"  #{event.id:<4} {_when(event.created)}  {event.label()}: {event.status}{extra}")
    if session.notes.strip():
        lines += ["", "Memory:", *("  " + line for line in session.notes.strip().splitlines())]
    click.echo("\n".join(lines))


@sessions.command("drafts")
@click.argument("session_id")
@click.option(
    "--compare",
    "pair",
    nargs=2,
    metavar="N M",
    help="Show how draft M differs from draft N (numbers, or generation.alternative like 2.1).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def drafts_cmd(session_id: str, pair: tuple[str, str] | None, as_json: bool) -> None:
    """List every draft the model wrote in a session, taken or not, and compare any two (also across models)."""
    from assistant.sessions.drafts import compare, drafts_of, find_draft, preview

    with _store() as store:
        session = store.open(session_id, read_only=True)
        try:
            drafts = drafts_of(session.events)
        finally:
            session.close()
    if pair:
        first, second = find_draft(drafts, pair[0]), find_draft(drafts, pair[1])
        diff = compare(first, second)
        if as_json:
            click.echo(
                json.dumps(
                    {"from": first.to_dict(), "to": second.to_dict(), "diff": diff}, indent=2, ensure_ascii=False
                )
            )
        elif diff:
            click.echo(diff, nl=False)
        else:
            echo_err(f"{first.label} and {second.label} are the same text.")
        return
    if as_json:
        click.echo(json.dumps([d.to_dict() for d in drafts], indent=2, ensure_ascii=False))
        return
    if not drafts:
        echo_err(f"Session {session.id} has no drafts yet.")
        return
    click.echo(f"{'N':>4}  {'GEN':<6}  {'WRITTEN':<16}  {'MODEL':<24}  {'STATUS':<9}  TEXT")
    for d in drafts:
        who = f"{d.model or '?'} via {d.backend}" if d.backend and d.backend != d.model else (d.model or "?")
        status = "taken" if d.accepted else d.status
        click.echo(
            f"{d.number:>4}  #{d.ref:<5}  {_when(d.created):<16}  {who[:24]:<24}  {status:<9}  {preview(d.text)}"
        )


@sessions.command("export")
@click.argument("session_id")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["md", "md-attributed", "html", "json"]),
    default="md",
    show_default=True,
    help="md is exactly your text; md-attributed and html mark model-written text.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (atomically) instead of standard output.",
)
@click.option(
    "--with-drafts",
    is_flag=True,
    help="Add the drafts that were not taken (every alternative the writer did not keep), each named by its model.",
)
def export_cmd(session_id: str, fmt: str, output: Path | None, with_drafts: bool = False) -> None:
    """Export a session's text (with who wrote what, for md-attributed, html and json)."""
    from assistant.sessions import atomic_write, export_session

    with _store() as store:
        session = store.open(session_id, read_only=True)
        text = export_session(session, fmt, with_drafts=with_drafts)
    if output is None:
        click.echo(text, nl=False)
        return
    atomic_write(output, text)
    echo_err(f"Exported {session.id} ({fmt}) to {output}.")


@sessions.command("delete")
@click.argument("session_id")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def delete_cmd(session_id: str, yes: bool) -> None:
    """Delete a session for good (its linked file, if any, is not touched)."""
    with _store() as store:
        full_id = store.resolve(session_id)
        info = next((i for i in store.list() if i.id == full_id), None)
        if not yes:
            label = f"{full_id} ({info.title}, {info.words:,} words)" if info else full_id
            if not click.confirm(f"Delete session {label}? This cannot be undone", default=False, err=True):
                echo_err("Nothing deleted.")
                return
        store.delete(full_id)
    echo_err(f"Deleted session {full_id}.")


@sessions.command("unlock")
@click.argument("session_id")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def unlock_cmd(session_id: str, yes: bool) -> None:
    """Free a session held by a quillmate that is gone (e.g. one that crashed on another machine)."""
    with _store() as store:
        full_id = store.resolve(session_id)
        holder = store.list_lock(full_id)
        if holder is not None and not yes:
            question = f"Session {full_id} is held by {holder.describe()}. Take it over anyway"
            if not click.confirm(question, default=False, err=True):
                echo_err("Left as it was.")
                return
        previous = store.break_lock(full_id)
    echo_err(f"Session {full_id} is free." if previous else f"Session {full_id} was not held.")


@sessions.command("search")
@click.argument("query", nargs=-1, required=True)
@click.option("--limit", default=20, show_default=True, help="Show at most this many matches.")
def search_cmd(query: tuple[str, ...], limit: int) -> None:
    """Find sessions whose draft or notes contain every word of QUERY."""
    text = " ".join(query)
    with _store() as store:
        hits = store.search(text, limit=limit)
        notice = store.search_notice
    if notice:
        echo_err(f"quillmate: {notice}")
    if not hits:
        echo_err(f"No session mentions {text!r}.")
        return
    for hit in hits:
        click.echo(f"{hit.session_id}  {hit.title}  ({hit.where})  {hit.snippet}")
