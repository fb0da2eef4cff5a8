"""``quillmate bible``: a session's (or a bible file's) memory, author's note and entries."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from assistant.cli.common import echo_err
from backends.errors import UsageError

if TYPE_CHECKING:
    from assistant.bible import Bible, Entry


class _Target:
    """Where the bible lives: a session (opened for writing only when it changes) or a TOML file."""

    def __init__(self, session_id: str | None, file: Path | None) -> None:
        if bool(session_id) == bool(file):
            raise UsageError(
                "Say whose bible: --session ID, or --file BIBLE.toml.", "`quillmate sessions list` shows the sessions."
            )
        self.session_id = session_id
        self.file = file

    def read(self) -> Bible:
        if self.file is not None:
            from assistant.bible import Bible
            from assistant.bible.files import read_bible_file

            return read_bible_file(self.file).bible if self.file.exists() else Bible()
        from assistant.sessions import SessionStore

        with SessionStore() as store:
            session = store.open(self.session_id or "", read_only=True)
            try:
                return session.bible
            finally:
                session.close()

    @contextlib.contextmanager
    def change(self) -> Iterator[_Change]:
        """Read, let the caller change, then save (nothing is saved if the caller fails)."""
        if self.file is not None:
            change = _Change(self.read())
            yield change
            from assistant.bible.files import write_bible_file

            write_bible_file(change.bible, self.file)
            return
        from assistant.sessions import SessionStore

        with SessionStore() as store, store.open(self.session_id or "") as session:
            change = _Change(session.bible)
            yield change
            session.bible = change.bible

    @property
    def label(self) -> str:
        return f"session {self.session_id}" if self.session_id else str(self.file)


class _Change:
    def __init__(self, bible: Bible) -> None:
        self.bible = bible


def _target_options(command: Any) -> Any:
    command = click.option(
        "--file",
        "file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="A bible file (quillmate TOML) instead of a session.",
    )(command)
    return click.option("--session", "session_id", metavar="ID", help="The session whose bible this is.")(command)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def bible() -> None:
    """A story bible: memory, author's note, and entries that come in when their keys appear.

    \b
    Examples:
      quillmate bible add Mara --keys "Mara, the captain" --content "Captain of the Gull." --session 3f2a
      quillmate bible edit --memory "A tale of the salt coast." --session 3f2a
      quillmate bible import world.json --session 3f2a
      quillmate bible export -o story.bible.toml --session 3f2a
    """


@bible.command("list")
@_target_options
@click.option("--json", "as_json", is_flag=True, help="Print the whole bible as JSON.")
def list_cmd(session_id: str | None, file: Path | None, as_json: bool) -> None:
    """List the entries (and say whether there is a memory and an author's note)."""
    current = _Target(session_id, file).read()
    if as_json:
        click.echo(json.dumps(current.to_data(), indent=2, ensure_ascii=False))
        return
    click.echo(f"Memory         {_short(current.memory) or '(none)'}")
    click.echo(f"Author's note  {_short(current.authors_note) or '(none)'}")
    if not current.entries:
        echo_err("No entries yet: `quillmate bible add NAME --keys ... --content ...` adds one.")
        return
    click.echo("")
    click.echo(f"{'NAME':<24}  {'PRIO':>4}  {'ORDER':>5}  {'':<9}  KEYS")
    for entry in current.entries:
        flags = "always on" if entry.always_on else ("off" if not entry.enabled else "")
        if entry.always_on and not entry.enabled:
            flags = "off"
        click.echo(f"{entry.name[:24]:<24}  {entry.priority:>4}  {entry.order:>5}  {flags:<9}  {', '.join(entry.keys)}")


@bible.command("show")
@click.argument("name", required=False)
@_target_options
def show_cmd(name: str | None, session_id: str | None, file: Path | None) -> None:
    """Show one entry in full (or, without NAME, the memory, author's note and settings)."""
    current = _Target(session_id, file).read()
    if name is None:
        click.echo("Memory:\n" + (_indent(current.memory) or "  (none)"))
        click.echo("Author's note:\n" + (_indent(current.authors_note) or "  (none)"))
        settings = current.settings.model_dump()
        click.echo("Settings:\n" + "\n".join(f"  {k} = {v}" for k, v in settings.items()))
        return
    entry = current.entry(name)
    click.echo(_describe(entry))


def _describe(entry: Entry) -> str:
    how = "regular expressions" if entry.regex else ("whole words" if entry.whole_word else "anywhere in a word")
    case = "same capitals" if entry.case_sensitive else "any capitals"
    return "\n".join(
        [
            f"Name      {entry.name}",
            f"Keys      {', '.join(entry.keys) or '(none)'}  ({how}, {case})",
            f"Priority  {entry.priority}",
            f"Order     {entry.order}",
            f"State     {'on' if entry.enabled else 'off'}{', always on' if entry.always_on else ''}",
            "Content:",
            _indent(entry.content) or "  (empty)",
        ]
    )


def _entry_options(command: Any) -> Any:
    for option in reversed(
        [
            click.option("--keys", "-k", help='Words that bring it in, separated by commas ("Mara, the captain").'),
            click.option("--content", "-c", help="What the model reads; '-' reads it from standard input."),
            click.option("--priority", type=int, help="Kept before lower priorities when space is short."),
            click.option("--order", type=int, help="Place among the entries in the prompt: lower first."),
            click.option(
                "--always-on/--keyed", "always_on", default=None, help="In every prompt, or only when a key appears."
            ),
            click.option(
                "--regex/--plain", "regex", default=None, help="Keys are regular expressions, or plain words."
            ),
            click.option(
                "--case-sensitive/--any-case", "case_sensitive", default=None, help="Keys match capitals exactly."
            ),
            click.option(
                "--whole-word/--part-word", "whole_word", default=None, help="Plain keys match whole words only."
            ),
            click.option("--enable/--disable", "enabled", default=None, help="Switch the entry on or off."),
        ]
    ):
        command = option(command)
    return command


def _entry_changes(**values: Any) -> dict[str, Any]:
    changes = {k: v for k, v in values.items() if v is not None}
    if changes.get("content") == "-":
        changes["content"] = sys.stdin.read()
    return changes


@bible.command("add")
@click.argument("name")
@_entry_options
@_target_options
def add_cmd(name: str, session_id: str | None, file: Path | None, **values: Any) -> None:
    """Add an entry called NAME."""
    from assistant.bible import Bible

    target = _Target(session_id, file)
    with target.change() as change:
        if _has(change.bible, name):
            raise UsageError(
                f"There is already an entry called {name!r}.",
                f"Change it with `quillmate bible edit {name!r}`, or choose another name.",
            )
        entry = Bible.of({"entries": [{"name": name, **_entry_changes(**values)}]}).entries[0]
        change.bible = change.bible.with_entry(entry)
    echo_err(f"Added {entry.name!r} to the bible of {target.label}.")


@bible.command("edit")
@click.argument("name", required=False)
@click.option("--name", "new_name", help="Rename the entry.")
@_entry_options
@click.option("--memory", help="Set the memory (no NAME); '-' reads it from standard input.")
@click.option("--authors-note", "authors_note", help="Set the author's note (no NAME).")
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="SETTING=VALUE",
    help="Change a setting (no NAME): scan_tokens, recursion, budget_fraction, min_tail_tokens, "
    "authors_note_depth, authors_note_unit.",
)
@_target_options
def edit_cmd(
    name: str | None,
    new_name: str | None,
    memory: str | None,
    authors_note: str | None,
    settings: tuple[str, ...],
    session_id: str | None,
    file: Path | None,
    **values: Any,
) -> None:
    """Change the entry called NAME, or (without NAME) the memory, author's note and settings."""
    from assistant.bible import Bible

    target = _Target(session_id, file)
    with target.change() as change:
        current = change.bible
        if name is None:
            if new_name or any(v is not None for v in values.values()):
                raise UsageError("Name the entry to change.", "For example: quillmate bible edit Mara --priority 5")
            data = current.to_data()
            if memory is not None:
                data["memory"] = sys.stdin.read() if memory == "-" else memory
            if authors_note is not None:
                data["authors_note"] = authors_note
            data["settings"] = {**data.get("settings", {}), **_settings(settings)}
            change.bible = Bible.of(data)
            what = "memory, author's note and settings"
        else:
            if memory is not None or authors_note is not None or settings:
                raise UsageError(
                    "--memory, --authors-note and --set change the bible, not an entry.", "Leave out the entry's name."
                )
            entry = current.entry(name)
            changes = _entry_changes(**values) | ({"name": new_name} if new_name else {})
            if not changes:
                raise UsageError(f"Nothing to change in {entry.name!r}.", "See `quillmate bible edit --help`.")
            edited = Bible.of({"entries": [entry.to_data() | changes]}).entries[0]
            change.bible = current.with_entry(edited, replace=name)
            what = repr(edited.name)
    echo_err(f"Changed {what} in the bible of {target.label}.")


def _settings(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise UsageError(f"--set expects SETTING=VALUE, got {pair!r}.", "For example: --set recursion=1")
        out[key.strip()] = value.strip()
    return out


@bible.command("remove")
@click.argument("name")
@_target_options
def remove_cmd(name: str, session_id: str | None, file: Path | None) -> None:
    """Remove the entry called NAME."""
    target = _Target(session_id, file)
    with target.change() as change:
        gone = change.bible.entry(name)
        change.bible = change.bible.without(name)
    echo_err(f"Removed {gone.name!r} from the bible of {target.label}.")


@bible.command("import")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--replace", is_flag=True, help="Replace the whole bible instead of adding to it.")
@_target_options
def import_cmd(path: Path, replace: bool, session_id: str | None, file: Path | None) -> None:
    """Import a bible file: quillmate TOML, SillyTavern World Info, NovelAI .lorebook or KoboldAI Lite world info.

    Entries are added; an entry with the same name as one already there replaces it.
    The memory and author's note are taken only where the bible has none (all of it with --replace).
    """
    from assistant.bible.files import read_bible_file

    imported = read_bible_file(path)  # read and checked whole before anything changes
    target = _Target(session_id, file)
    replaced: list[str] = []
    with target.change() as change:
        if replace:
            change.bible = imported.bible
        else:
            merged = change.bible
            for entry in imported.bible.entries:
                if _has(merged, entry.name):
                    replaced.append(merged.entry(entry.name).name)
                    merged = merged.with_entry(entry, replace=entry.name)
                else:
                    merged = merged.with_entry(entry)
            fills = {
                k: getattr(imported.bible, k)
                for k in ("memory", "authors_note")
                if getattr(imported.bible, k).strip() and not getattr(merged, k).strip()
            }
            change.bible = merged.replaced(**fills) if fills else merged
    count = len(imported.bible.entries)
    echo_err(
        f"Imported {count} entr{'y' if count == 1 else 'ies'} ({imported.format}) into the bible of "
        f"{target.label}" + (f"; replaced {', '.join(map(repr, replaced))}." if replaced else ".")
    )
    for line in imported.unmapped:
        echo_err(f"  not carried over: {line}")


@bible.command("export")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of standard output.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["quillmate", "sillytavern"]),
    default="quillmate",
    show_default=True,
    help="quillmate TOML, or SillyTavern World Info JSON.",
)
@_target_options
def export_cmd(output: Path | None, fmt: str, session_id: str | None, file: Path | None) -> None:
    """Write the bible as a quillmate TOML file (or SillyTavern World Info)."""
    from assistant.bible.files import to_sillytavern, to_toml, write_bible_file

    current = _Target(session_id, file).read()
    if output is None:
        text = (
            to_toml(current)
            if fmt == "quillmate"
            else json.dumps(to_sillytavern(current), indent=2, ensure_ascii=False) + "\n"
        )
        click.echo(text, nl=False)
        return
    write_bible_file(current, output, fmt)  # type: ignore[arg-type]
    echo_err(f"Exported the bible ({fmt}) to {output}.")
    if fmt == "sillytavern" and (current.memory.strip() or current.authors_note.strip()):
        echo_err("  SillyTavern World Info has no memory or author's note; they were left out.")


def load_bible(session_id: str | None, file: Path | None) -> Bible | None:
    """For ``quillmate run``: the bible in ``file``, else the session's, else None."""
    if file is not None:
        from assistant.bible.files import read_bible_file

        return read_bible_file(file).bible
    if session_id:
        return _Target(session_id, None).read()
    return None


def show_dry_run(prepared: Any, backend: Any, *, as_json: bool) -> None:
    """``quillmate run --dry-run``: the prompt's labelled parts (JSON on stdout, or text on stderr)."""
    report = prepared.prompt_report(backend)
    if as_json:
        click.echo(
            json.dumps(
                {"dry_run": True, "template": prepared.template.name, "prompt": report.to_dict()},
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    echo_err(report.render())
    echo_err("(dry run: nothing was sent)")


def _has(current: Bible, name: str) -> bool:
    return any(e.name.casefold() == name.strip().casefold() for e in current.entries)


def _short(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 60 else line[:59] + "…"


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.strip().splitlines())
