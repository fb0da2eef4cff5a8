"""Running templates: the form, then a continuation, a rewrite, or results in the Results tab."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from assistant.sessions import GenerationRecorder
from tui.flows.base import Flow, Services
from tui.flows.continuation import ContinuationFlow
from tui.flows.generation import GenerationFlow
from tui.flows.rewrite import RewriteFlow
from tui.screens.template_form import TemplateFormScreen

if TYPE_CHECKING:
    from assistant import Delta, Prepared
    from tui.widgets.panels import ResultItem


class TemplateFlow(Flow):
    """Template forms and runs, and the Results tab (the app's ``templates``)."""

    def __init__(
        self, services: Services, generation: GenerationFlow, continuation: ContinuationFlow, rewriting: RewriteFlow
    ) -> None:
        super().__init__(services)
        self.generation = generation
        self.continuation = continuation
        self.rewriting = rewriting

    def open(self, name: str) -> None:
        """Show the form of template ``name`` and run it."""
        try:
            template = self.assistant.templates.get(name)
        except Exception as error:
            self.tell.report(error)
            return
        editor = self.views.editor
        start, end = editor.selection_offsets
        selection = self.session.document.text[start:end]
        values: dict[str, str] = {}
        hidden: tuple[str, ...] = ()
        target = template.input_variable
        if template.output == "cursor":
            if self.session.read_only:
                self.notify("This session is open read-only, so nothing can be added to it.", severity="warning")
                return
            hidden = (target,) if target else ()
            if target:
                values[target] = "(your draft up to the cursor)"
            note = "It carries on from your cursor; the result appears there as a suggestion."
            if "notes" in template.variables and self.session.notes.strip():
                values["notes"] = self.session.notes
            if "title" in template.variables and self.continuation.story_title():
                values["title"] = self.continuation.story_title()
        elif template.output == "selection":
            if self.session.read_only:
                self.notify("This session is open read-only, so nothing can be rewritten.", severity="warning")
                return
            if not selection.strip():
                self.notify(f"Select the passage for '{template.name}' first, then run it again.", timeout=5)
                return
            hidden = (target,) if target else ()
            if target:
                values[target] = selection
            note = "It works on the selected passage; you will see a preview before anything changes."
        else:
            if target and selection.strip():
                values[target] = selection
            note = "The results go to the Results tab."
        screen = TemplateFormScreen(template, values, hidden=hidden, note=note)
        self.services.push_screen(screen, callback=partial(self._run_template, template))

    def _run_template(self, template: Any, values: dict[str, str] | None) -> None:
        if values is None:
            return
        target = template.input_variable
        if template.output == "cursor":
            values = {k: v for k, v in values.items() if k != target}
            self.continuation.start(template, values)
        elif template.output == "selection":
            values = {k: v for k, v in values.items() if k != target}
            self.rewriting.start(template, values)
        else:
            self.run_list(template, values)

    def run_list(self, template: Any, values: Mapping[str, Any]) -> None:
        """Run a template whose results go to the Results tab."""
        prepared = self.generation.prepare(template, values)
        if prepared is None:
            return
        recorder = self.generation.record(template.name, prepared.variables, prepared.request)
        self.views.side.display = True
        self.views.side.show_tab("results")
        heading = _result_heading(template, prepared.variables)
        self.generation.run(partial(self._list_worker, prepared, heading, recorder))

    async def _list_worker(self, prepared: Prepared, name: str, recorder: GenerationRecorder) -> None:
        items = await self.views.results.add(name, prepared.request.params.num_alternatives, event_id=recorder.event_id)

        def stream(delta: Delta) -> None:
            if delta.index < len(items):
                item = items[delta.index]
                item.set_text((item.text + delta.text).lstrip("\n") if not item.text else item.text + delta.text)

        try:
            result = await self.generation.consume(prepared, stream)  # a poem in a fixed form keeps it
        except asyncio.CancelledError:
            for item in items:
                item.set_text(item.text.strip(), finished=True)
            recorder.cancelled([item.text for item in items])
            raise
        except Exception as error:
            for item in items:
                item.set_text(item.text or "(failed)", finished=True)
            recorder.failed(error)
            self.tell.report(error)
            return
        if result is not None:
            for item, text in zip(items, result.texts, strict=False):
                item.set_text(text.strip(), finished=True)
            recorder.finished(result)
            if result.error:
                self.notify(f"The model stopped early: {result.error}", severity="error", timeout=8)

    def insert_result(self, item: ResultItem) -> None:
        """Put a result into the draft at the cursor."""
        if not item.text.strip():
            return
        self.continuation.insert_generated(item.text, item.event_id, item.alternative)


def _result_heading(template: Any, variables: Mapping[str, Any]) -> str:
    """A result's heading: the template, its choices and what it was about ("poem · haiku · the sea")."""
    parts = [template.name]
    parts += [
        str(variables[name])
        for name, spec in template.variables.items()
        if spec.kind == "choice" and variables.get(name)
    ]
    about = " ".join(str(variables.get(template.input_variable) or "").split()) if template.input_variable else ""
    if about:
        parts.append(about if len(about) <= 40 else about[:39] + "…")
    return " · ".join(parts)
