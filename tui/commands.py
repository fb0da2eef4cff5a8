"""Command palette entries (Ctrl+P): every template, every backend, and the app's actions."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import TYPE_CHECKING, Any

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from tui.app import QuillmateApp


class _EntryProvider(Provider):
    """A palette provider over a list of (label, help, callback) entries."""

    def _entries(self) -> list[tuple[str, str, Any]]:
        raise NotImplementedError

    async def discover(self) -> Hits:
        for label, help_text, callback in self._entries():
            yield DiscoveryHit(label, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for label, help_text, callback in self._entries():
            score = matcher.match(label)
            if score > 0:
                yield Hit(score, matcher.highlight(label), callback, help=help_text)


class TemplateCommands(_EntryProvider):
    """One entry per template, built-in and the writer's own."""

    async def startup(self) -> None:
        app: QuillmateApp = self.app  # type: ignore[assignment]
        try:
            self._templates: list[Any] = await asyncio.to_thread(app.assistant.templates.list)
        except Exception:
            self._templates = []

    def _entries(self) -> list[tuple[str, str, Any]]:
        app: QuillmateApp = self.app  # type: ignore[assignment]
        out = []
        for template in self._templates:
            where = {"cursor": "at the cursor", "selection": "on the selection", "list": "to Results"}.get(
                template.output, ""
            )
            mine = " (yours)" if getattr(template, "origin", "") == "user" else ""
            label = f"Template: {template.name}{mine}"
            help_text = f"{template.description} Result goes {where}.".strip()
            out.append((label, help_text, partial(app.templates.open, template.name)))
        return out


class AppCommands(_EntryProvider):
    """The app's actions and backend switching, by name."""

    def _entries(self) -> list[tuple[str, str, Any]]:
        app: QuillmateApp = self.app  # type: ignore[assignment]
        entries: list[tuple[str, str, Any]] = [
            ("Continue at the cursor", "The model carries your story on (F5).", app.action_continue),
            (
                "Other words here",
                "The words the model almost wrote at the cursor; pick one to write on from it (Alt+A / F8).",
                app.action_alternatives,
            ),
            (
                "Drafts here",
                "Every suggestion made at the cursor, newest first; bring one back (F9 / Alt+H).",
                app.action_history,
            ),
            (
                "Compare backends",
                "The continuation at the cursor from two or more backends, side by side (F12 / Alt+C).",
                app.action_compare,
            ),
            (
                "Rewrite the selection",
                "More vivid, shorter, another tense… with a preview (Ctrl+R).",
                app.action_rewrite,
            ),
            ("Chat about the draft", "Ask the model about your draft (Ctrl+L).", app.action_chat),
            (
                "Story bible",
                "Memory, author's note, and entries for characters, places and lore (Alt+3).",
                partial(app.action_tab, "bible"),
            ),
            (
                "Context: what the model was sent",
                "The last generation's prompt part by part, and what the next would send (Alt+6).",
                partial(app.action_tab, "context"),
            ),
            (
                "Sampling settings",
                "Temperature, alternatives, max tokens… (Alt+4).",
                partial(app.action_tab, "settings"),
            ),
            ("Statistics", "Who wrote how much: yours, the model's, edited (Alt+5).", partial(app.action_tab, "stats")),
            ("Results", "Poems, slogans and other template results (Alt+1).", partial(app.action_tab, "results")),
            ("Who wrote what", "Tint model-written text and show the statistics (F3).", app.action_toggle_provenance),
            ("Save", "Write the draft to its file now (Ctrl+S).", app.action_save),
            ("Save as…", "Write the draft to another file, and keep saving there.", app.action_save_as),
            ("Reload the file from disk", "Take the file's text as it is now on disk.", app.action_reload_file),
            ("Show or hide the side panel", "F2.", app.action_toggle_panel),
            ("Keys", "Every key the app answers to (F1).", app.action_help),
            ("Switch model…", "Choose a backend profile and model (F4).", app.action_switch_backend),
        ]
        if app.tuning.running is None:
            entries.append(
                (
                    "Tune a model on my writing…",
                    "Teach the bundled model your style from your own files, here on this machine.",
                    app.tuning.open,
                )
            )
        else:
            entries.append(
                ("Stop tuning", f"Stop tuning '{app.tuning.running}' and keep what it has learnt.", app.tuning.stop)
            )
        for name, profile in app.config.profiles.items():
            model = profile.options.get("model", "")
            entries.append(
                (
                    f"Switch to backend: {name}",
                    f"{profile.kind}{f' ({model})' if model else ''}",
                    partial(app.backends.switch, name, None),
                )
            )
        return entries
