"""Saving the draft to its file, reloading it, and closing the session on quit."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

from textual import work

from tui.flows.panels import PanelFlow
from tui.screens.pickers import SaveAsScreen
from tui.widgets.editor import DraftEditor
from tui.widgets.panels import NotesView

SAVE_FORCE_WINDOW = 10.0
"""Seconds in which a second Ctrl+S overwrites a file changed by another program."""


class SavingFlow(PanelFlow):
    """Save, Save as, reload, quit and finish."""

    def action_save(self) -> None:
        """Write the draft to its file (atomically)."""
        if self.session.read_only:
            self._refuse_read_only()
            return
        if self.session.file is None:
            self.action_save_as()
            return
        force = time.monotonic() < self._force_save_until
        self._save_worker(None, force)

    def _refuse_read_only(self) -> None:
        name = self.session.file.name if self.session.file is not None else "a file"
        self.notify(f"This window is read-only, so it never writes {name}: the window that has the session "
                    "open for writing saves it.", severity="warning", timeout=8)

    def action_save_as(self) -> None:
        """Write the draft to a file of the writer's choosing, and keep saving there."""
        if self.session.read_only:
            self._refuse_read_only()
            return
        suggestion = self.session.file.name if self.session.file else _file_name_for(self.session.title)

        def chosen(path: Path | None) -> None:
            if path is not None:
                self._save_worker(path, False)

        self.push_screen(SaveAsScreen(suggestion), callback=chosen)

    @work(exclusive=True, group="save", exit_on_error=False)
    async def _save_worker(self, path: Path | None, force: bool) -> None:
        from assistant.sessions import FileChangedOutside

        version = self.session.document.version
        try:
            target = await asyncio.to_thread(self.session.save_to_file, path, force=force)
        except FileChangedOutside as error:
            self._force_save_until = time.monotonic() + SAVE_FORCE_WINDOW
            self.notify(f"{error.message}\nPress Ctrl+S again to overwrite it, or Ctrl+P → 'Reload the file "
                        "from disk' to take its version.", severity="warning", timeout=SAVE_FORCE_WINDOW)
            return
        except Exception as error:
            self._report(error, prefix="Not saved: ")
            return
        self._force_save_until = 0.0
        self._file_version = version
        self.status.update_state(title=self.session.title)
        self._check_file()
        self.notify(f"Saved {target.name}.", timeout=2)

    def action_reload_file(self) -> None:
        """Take the linked file's text as it is on disk now (the difference counts as your typing)."""
        if self.session.file is None:
            self.notify("This draft has no file yet.", timeout=3)
            return
        self._clear_ghost("reload")
        try:
            self.session.reload_from_file()
        except Exception as error:
            self._report(error)
            return
        self._file_version = self.session.document.version
        self.editor.resync()
        self._draft_changed(DraftEditor.DraftChanged(self.editor))
        self.notify(f"Reloaded {self.session.file.name}. Ctrl+Z undoes it.", timeout=4)

    async def action_quit(self) -> None:
        """Quit. The draft is already saved; a linked file is brought up to date too."""
        self.stop_generation()
        if self._notes_timer is not None:  # notes typed in the last moment
            self._notes_timer.stop()
            self._notes_timer = None
            with contextlib.suppress(Exception):
                self._save_notes(self._find("#notes-view", NotesView).text)
        await asyncio.to_thread(self.finish)
        self.exit()

    def finish(self) -> None:
        """Save everything and close the session (safe to call twice). Sets ``exit_message``."""
        if self._finished:
            return
        self._finished = True
        session = self.session
        lines: list[str] = []
        if not session.read_only and session.file is not None:
            try:
                on_disk = session.file.read_text(encoding="utf-8") if session.file.exists() else None
                if on_disk != session.document.text:
                    if session.file_changed_outside():
                        lines.append(f"{session.file.name} was changed by another program, so quillmate left it "
                                     f"alone; your draft is in session {session.id}.")
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
        self.exit_message = "\n".join(lines)


def _file_name_for(title: str) -> str:
    keep = "".join(c if c.isalnum() or c in " -_" else " " for c in title).strip()
    stem = "-".join(keep.lower().split())[:40] or "draft"
    return f"{stem}.md"
