"""Every key the writing app answers to, in one place (the bindings and the help screen use it).

The keys avoid ones terminals keep for themselves (Ctrl+S/Ctrl+Q flow control is
off in Textual's raw mode; Ctrl+Space arrives as Ctrl+@), and each important
action has an F-key or a second key for terminals that do not send the first.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Key:
    """One binding as the writer sees it.

    Attributes:
        keys: Textual key names, comma-separated (the first is shown).
        action: The action it runs.
        description: Short label (footer).
        help: What it does, in a sentence (help screen).
        group: The help screen's section.
    """

    keys: str
    action: str
    description: str
    help: str
    group: str


WRITING = "Writing with the model"
EDITING = "Editing"
PANELS = "Panels and tools"
APP = "The app"

# Keys handled by the editor (only while it has focus; several fall back to their usual meaning).
EDITOR_KEYS: tuple[Key, ...] = (
    Key(
        "tab",
        "accept('all')",
        "Accept",
        "Accept the whole suggestion (without one, Tab moves to the next panel).",
        WRITING,
    ),
    Key(
        "ctrl+right,alt+right",
        "accept('word')",
        "Accept word",
        "Accept the suggestion's next word (without one, jump a word right).",
        WRITING,
    ),
    Key(
        "ctrl+down,alt+down",
        "accept('line')",
        "Accept line",
        "Accept the suggestion up to the end of its line (without one, move down).",
        WRITING,
    ),
    Key("ctrl+n,alt+full_stop", "cycle(1)", "Next version", "Show the next alternative (when n > 1).", WRITING),
    Key("alt+comma", "cycle(-1)", "Previous version", "Show the previous alternative.", WRITING),
    Key("ctrl+home", "draft_start", "Start", "Go to the start of the draft.", EDITING),
    Key("ctrl+end", "draft_end", "End", "Go to the end of the draft.", EDITING),
    Key("ctrl+shift+home", "draft_start(True)", "Select to start", "Select to the start of the draft.", EDITING),
    Key("ctrl+shift+end", "draft_end(True)", "Select to end", "Select to the end of the draft.", EDITING),
    Key("ctrl+z", "undo", "Undo", "Undo (typing is undone a word at a time; an accept in one step).", EDITING),
    Key("ctrl+y", "redo", "Redo", "Redo.", EDITING),
)

APP_KEYS: tuple[Key, ...] = (
    Key(
        "f5,ctrl+j,ctrl+@",
        "continue",
        "Continue",
        "Continue the story from the cursor; the suggestion appears as dim ghost text.",
        WRITING,
    ),
    Key(
        "escape",
        "escape",
        "Stop/Dismiss",
        "Stop the model (what it wrote so far stays as a suggestion); again to dismiss it; "
        "from a panel, back to the draft.",
        WRITING,
    ),
    Key(
        "ctrl+c",
        "interrupt",
        "Stop",
        "Also stops the model while it writes (with text selected, Ctrl+C copies).",
        WRITING,
    ),
    Key("ctrl+g", "regenerate", "Try again", "Throw the suggestion away and write another one.", WRITING),
    Key(
        "alt+a,f8",
        "alternatives",
        "Other words",
        "The words the model almost wrote at the cursor, with their chances; pick one to write on from it.",
        WRITING,
    ),
    Key(
        "f9,alt+h",
        "history",
        "Drafts here",
        "Every suggestion made at the cursor, newest first, with its model and settings; bring any one back.",
        WRITING,
    ),
    Key(
        "f12,alt+c",
        "compare",
        "Compare",
        "Write the continuation at the cursor with two or more backends, side by side; keep the one you like.",
        WRITING,
    ),
    Key("ctrl+r", "rewrite", "Rewrite", "Rewrite the selected passage (more vivid, shorter…); preview first.", WRITING),
    Key(
        "ctrl+p",
        "command_palette",
        "Commands",
        "Commands: every template (poem, slogan…), switching model, saving, and more.",
        PANELS,
    ),
    Key("f2", "toggle_panel", "Panel", "Show or hide the side panel.", PANELS),
    Key("f3", "toggle_provenance", "Who wrote what", "Tint the text the model wrote.", PANELS),
    Key("f4,ctrl+b", "switch_backend", "Model", "Switch to another backend or model.", PANELS),
    Key("ctrl+l", "chat", "Chat", "Chat about your draft with the model.", PANELS),
    Key("alt+1", "tab('results')", "Results", "Show the Results tab.", PANELS),
    Key("alt+2", "tab('chat')", "Chat tab", "Show the Chat tab.", PANELS),
    Key(
        "alt+3",
        "tab('bible')",
        "Bible",
        "Show the Bible tab: memory, author's note, and entries for characters, places and lore.",
        PANELS,
    ),
    Key("alt+4", "tab('settings')", "Settings", "Show the Settings tab (temperature, n, max tokens…).", PANELS),
    Key("alt+5", "tab('stats')", "Stats", "Show the Stats tab (who wrote how much).", PANELS),
    Key(
        "alt+6",
        "tab('context')",
        "Context",
        "Show the Context tab: what the model was sent, part by part (n: what the next continuation would send).",
        PANELS,
    ),
    Key("ctrl+s", "save", "Save", "Save the draft to its file now (it is also saved continuously).", APP),
    Key("f1", "help", "Help", "Show these keys.", APP),
    Key("ctrl+q", "quit", "Quit", "Quit. Everything is already saved; nothing is asked.", APP),
)

TAB_KEYS: tuple[str, ...] = ("alt+1", "alt+2", "alt+3", "alt+4", "alt+5", "alt+6")
"""Alt+1…6, the side panel's tabs in order (see :func:`report_alt_digits_as_keys`)."""

FORM_RUN = "ctrl+r,ctrl+enter"
"""Runs a template form (Ctrl+S stays Save; Ctrl+Enter only reaches apps in some terminals)."""

# Keys of the text box itself, listed for completeness on the help screen.
TEXT_KEYS: tuple[tuple[str, str], ...] = (
    ("Shift+arrows", "Select text"),
    ("Ctrl+Left / Ctrl+Right", "Move a word (Ctrl+Right accepts a word while a suggestion shows)"),
    ("Home / End", "Start / end of the line"),
    ("Ctrl+X / Ctrl+C / Ctrl+V", "Cut / copy / paste"),
    ("Ctrl+W", "Delete the word before the cursor"),
    ("Ctrl+K", "Delete to the end of the line"),
    ("F6 / F7", "Select the line / select everything"),
)


def report_alt_digits_as_keys() -> None:
    """Let Alt+1…5 reach the app as ``alt+1``…``alt+5`` instead of ``¡™£¢∞``.

    Terminals send Alt+digit as ESC then the digit. Textual turns ESC+1…5 into the
    characters macOS composes with Option+1…5 (``¡™£¢∞``, for WezTerm), so in tmux, xterm
    or WezTerm the tab keys typed those characters into the draft. Here those five
    sequences of Textual's table name the keys ``alt+1``… instead.
    Only the ESC+digit sequences change: a ``£`` or ``¡`` typed on the keyboard stays
    text (it cannot be told apart from a composed one, and writers need it).
    Textual keeps this table in a private module; if that changes, nothing breaks here:
    the keys then arrive as whatever Textual makes of them.
    """
    with contextlib.suppress(Exception):
        from textual import _ansi_sequences

        table: dict[str, Any] = _ansi_sequences.ANSI_SEQUENCES_KEYS  # type: ignore[assignment]
        for key in TAB_KEYS:
            sequence = "\x1b" + key.removeprefix("alt+")
            if isinstance(table.get(sequence), str):
                table[sequence] = (_KeyName(key),)  # Textual reports a tuple's names as they are


@dataclass(frozen=True)
class _KeyName:
    """A key name where Textual's table expects a member of its ``Keys`` enum (it reads ``.value``)."""

    value: str


def display(keys: str) -> str:
    """Key names as a writer reads them: ``ctrl+right,alt+right`` -> ``Ctrl+Right / Alt+Right``."""
    names = {"full_stop": ".", "comma": ",", "@": "Space", "escape": "Esc", "pageup": "PgUp", "pagedown": "PgDn"}
    shown = []
    for key in keys.split(","):
        parts = [names.get(p, p) for p in key.strip().split("+")]
        shown.append(
            "+".join(
                p if len(p) == 1 and not p.isalpha() else p.capitalize() if len(p) > 1 else p.upper() for p in parts
            )
        )
    return " / ".join(shown)
