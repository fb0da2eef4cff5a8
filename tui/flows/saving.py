"""Saving the draft to its file, reloading it, and closing the session on quit."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from tui.flows.base import Flow, Services
from tui.flows.continuation import ContinuationFlow
from tui.flows.generation import GenerationFlow
from tui.flows.panels import PanelFlow
from tui.flows.status import StatusFlow
from tui.screens.pickers import SaveAsScreen

if TYPE_CHECKING:
    from assistant.sessions import SessionStore

SAVE_FORCE_WINDOW = 10.0
"""Seconds in which a second Ctrl+S overwrites a file changed by another program."""


class SavingFlow(Flow):
    """Save, Save as, reload, quit and finish (the app's ``saving``)."""

    def __init__(
        self,
        services: Services,
        generation: GenerationFlow,
        continuation: ContinuationFlow,
        indicators: StatusFlow,
        panels: PanelFlow,
        *,
        store: SessionStore | None = None,
        owns_store: bool = False,
        new_session: bool = False,
    ) -> None:
        super().__init__(services)
        self.generation = generation
        self.continuation = continuation
        self.indicators = indicators
        self.panels = panels
        self.store = store
        self._owns_store = owns_store
        self._new_session = new_session
        self._force_save_until = 0.0
        self.finished = False
        self.farewell = ""
        """What to tell the writer after the app has closed (set by :meth:`finish`)."""

    def save(self) -> None:
        """Write the draft to its file (atomically)."""
        if self.session.read_only:
            self._refuse_read_only()
            return
        if self.session.file is None:
            self.save_as()
            return
        force = time.monotonic() < self._force_save_until
        self._start_save(None, force)

    def _refuse_read_only(self) -> None:
        name = self.session.file.name if self.session.file is not None else "a file"
        self.notify(
            f"This window is read-only, so it never writes {name}: the window that has the session "
            "open for writing saves it.",
            severity="warning",
            timeout=8,
        )

    def save_as(self) -> None:
        """Write the draft to a file of the writer's choosing, and keep saving there."""
        if self.session.read_only:
            self._refuse_read_only()
            return
        suggestion = self.session.file.name if self.session.file else _file_name_for(self.session.title)

        def chosen(path: Path | None) -> None:
            if path is not None:
                self._start_save(path, False)

        self.services.push_screen(SaveAsScreen(suggestion), callback=chosen)

    def _start_save(self, path: Path | None, force: bool) -> None:
        self.services.run_worker(partial(self._save, path, force), group="save", exclusive=True, exit_on_error=False)

    async def _save(self, path: Path | None, force: bool) -> None:
        from assistant.sessions import FileChangedOutside

        version = self.session.document.version
        try:
            target = await asyncio.to_thread(self.session.save_to_file, path, force=force)
        except FileChangedOutside as error:
            self._force_save_until = time.monotonic() + SAVE_FORCE_WINDOW
            self.notify(
                f"{error.message}\nPress Ctrl+S again to overwrite it, or Ctrl+P → 'Reload the file "
                "from disk' to take its version.",
                severity="warning",
                timeout=SAVE_FORCE_WINDOW,
            )
            return
        except Exception as error:
            self.tell.report(error, prefix="Not saved: ")
            return
        self._force_save_until = 0.0
        self.indicators.file_version = version
        self.views.status.update_state(title=self.session.title)
        self.indicators.check_file()
        self.notify(f"Saved {target.name}.", timeout=2)

    def reload_file(self) -> None:
        """Take the linked file's text as it is on disk now (the difference counts as your typing)."""
        if self.session.file is None:
            self.notify("This draft has no file yet.", timeout=3)
            return
        self.continuation.clear_ghost("reload")
        try:
            self.session.reload_from_file()
        except Exception as error:
            self.tell.report(error)
            return
        self.indicators.file_version = self.session.document.version
        self.views.editor.resync()
        self.indicators.draft_changed()
        self.notify(f"Reloaded {self.session.file.name}. Ctrl+Z undoes it.", timeout=4)

    async def quit(self, finish: Callable[[], None]) -> None:
        """Get ready to quit: stop the model, keep the last notes, then ``finish`` (off the event loop)."""
        self.generation.stop()
        self.panels.flush_notes()
        await asyncio.to_thread(finish)

    def finish(self) -> None:
        """Save everything and close the session (safe to call twice). Sets :attr:`farewell`."""
        if self.finished:
            return
        self.finished = True
        self.indicators.closed = True
        session = self.session
        lines: list[str] = []
        if not session.read_only and session.file is not None:
            try:
                on_disk = session.file.read_text(encoding="utf-8") if session.file.exists() else None
                if on_disk != session.document.text:
                    if session.file_changed_outside():
                        lines.append(
                            f"{session.file.name} was changed by another program, so quillmate left it "
                            f"alone; your draft is in session {session.id}."
                        )
                    else:
                        session.save_to_file()
            except Exception as error:
                lines.append(f"Could not write {session.file.name}: {error}")
        try:
            session.close()
        except Exception as error:
            rescue = Path.home() / f"quillmate-rescue-{session.id}.md"
            try:
                session.export_rescue(rescue)
                lines.append(f"The sessions database could not be written ({error}); your text was saved to {rescue}.")
            except Exception:
                lines.append(f"The sessions database could not be written ({error}).")
        untouched = self._new_session and session.file is None and not session.document.text and not session.events
        if untouched and self.store is not None:
            with contextlib.suppress(Exception):
                self.store.delete(session.id)  # an empty draft that was never written in is not kept
        if self._owns_store and self.store is not None:
            with contextlib.suppress(Exception):
                self.store.close()
        if not lines and session.file is None and session.document.text.strip():
            lines.append(f"Your draft is kept in session {session.id}: quillmate write --session {session.id}")
        self.farewell = "\n".join(lines)


def _file_name_for(title: str) -> str:
    keep = "".join(c if c.isalnum() or c in " -_" else " " for c in title).strip()
    stem = "-".join(keep.lower().split())[:40] or "draft"
    return f"{stem}.md"
