"""A form for a template's variables, built from what the template declares.

Text variables get an input (a text box when ``multiline``), choices a drop-down,
integers a validated number box. Defaults are filled in, required fields are
marked with ``*``, and problems are shown under the field they concern.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.validation import Integer
from textual.widget import Widget
from textual.widgets import Button, Input, Select, Static, TextArea

from assistant.errors import TemplateError
from tui.keys import FORM_RUN, display


def field_problem(spec: Any, raw: str) -> str | None:
    """What is wrong with ``raw`` as a value of the variable ``spec`` (None when it is fine)."""
    value = raw.strip()
    if not value:
        return "Needed." if spec.required else None
    if spec.kind == "integer":
        if not re.fullmatch(r"[+-]?\d+", value):
            return "A whole number, please."
        number = int(value)
        if spec.min is not None and number < spec.min:
            return f"At least {spec.min}."
        if spec.max is not None and number > spec.max:
            return f"At most {spec.max}."
    if spec.kind == "choice" and spec.options and value.casefold() not in {o.casefold() for o in spec.options}:
        return "Choose one of the options."
    return None


class TemplateFormScreen(ModalScreen[dict[str, str] | None]):
    """Fill in a template's variables; dismissed with the values, or None when cancelled.

    Args:
        template: The template (an ``assistant.templates.Template``).
        values: Values to start with (e.g. the selection for the template's input).
        hidden: Variables filled in by the app (e.g. the draft for ``continue``), not shown.
        note: A line shown under the title (e.g. where the result will go).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding(FORM_RUN, "run", "Run", priority=True),
    ]

    def __init__(
        self,
        template: Any,
        values: Mapping[str, str] | None = None,
        *,
        hidden: tuple[str, ...] = (),
        note: str = "",
    ) -> None:
        super().__init__()
        self.template = template
        self.initial = dict(values or {})
        self.hidden = set(hidden)
        self.note = note

    @property
    def shown_variables(self) -> list[Any]:
        return [spec for name, spec in self.template.variables.items() if name not in self.hidden]

    def compose(self) -> ComposeResult:
        t = self.template
        with Vertical(id="form-box", classes="dialog"):
            yield Static(f"{t.name}", classes="dialog-title")
            if t.description:
                yield Static(t.description, classes="hint")
            if self.note:
                yield Static(self.note, classes="hint")
            with VerticalScroll(id="form-fields"):
                for spec in self.shown_variables:
                    yield from self._field(spec)
                if not self.shown_variables:
                    yield Static("This template needs nothing more from you.", classes="hint")
            yield Static("", id="form-error", classes="field-error")
            with Horizontal(classes="buttons"):
                yield Button(f"Run ({display(FORM_RUN.split(',')[0])})", id="run", variant="primary", compact=True)
                yield Button("Cancel (Esc)", id="cancel", compact=True)

    def _field(self, spec: Any) -> ComposeResult:
        label = Text(spec.name.replace("_", " "), style="bold")
        if spec.required:
            label.append(" *", style="bold red")
        if spec.description:
            label.append(f"  {spec.description}", style="dim")
        yield Static(label, classes="field-label" + (" required" if spec.required else ""))
        start = self.initial.get(spec.name)
        if start is None and spec.default is not None:
            start = str(spec.default)
        start = start or ""
        widget: Widget
        if spec.kind == "choice" and spec.options:
            options = [(o, o) for o in spec.options]
            chosen = next((o for o in spec.options if o.casefold() == start.casefold()), None)
            widget = Select(
                options,
                value=chosen if chosen is not None else Select.NULL,
                allow_blank=chosen is None,
                id=f"var-{spec.name}",
                compact=True,
            )
        elif spec.kind == "integer":
            validators = [Integer(minimum=spec.min, maximum=spec.max)]
            widget = Input(
                start,
                type="integer",
                validators=validators,
                validate_on=["changed", "submitted"],
                id=f"var-{spec.name}",
                compact=True,
            )
        elif spec.multiline:
            widget = TextArea(
                start,
                soft_wrap=True,
                id=f"var-{spec.name}",
                classes="multiline",
                highlight_cursor_line=False,
                compact=True,
            )
        else:
            widget = Input(start, id=f"var-{spec.name}", compact=True)
        widget.add_class("field")
        yield widget
        yield Static("", id=f"err-{spec.name}", classes="field-error")

    def on_mount(self) -> None:
        fields = list(self.query(".field"))
        if fields:
            empty = [f for f in fields if self._raw(f) == ""]
            (empty or fields)[0].focus()

    @staticmethod
    def _raw(widget: Widget) -> str:
        if isinstance(widget, Select):
            return "" if widget.value is Select.NULL or widget.value is None else str(widget.value)
        if isinstance(widget, TextArea):
            return widget.text
        if isinstance(widget, Input):
            return widget.value
        return ""

    def values(self) -> dict[str, str]:
        """What is filled in now (hidden variables included, as given)."""
        out = {k: v for k, v in self.initial.items() if k in self.hidden}
        for spec in self.shown_variables:
            raw = self._raw(self.query_one(f"#var-{spec.name}"))
            if raw.strip() or spec.kind != "text" or spec.name in self.initial:
                out[spec.name] = raw
        return out

    def _show(self, selector: str, message: str) -> None:
        error = self.query_one(selector, Static)
        error.update(message)
        error.display = bool(message)

    def validate_all(self) -> bool:
        """Show a problem under each field that has one; True when there is none."""
        ok = True
        for spec in self.shown_variables:
            problem = field_problem(spec, self._raw(self.query_one(f"#var-{spec.name}")))
            self._show(f"#err-{spec.name}", problem or "")
            ok = ok and problem is None
        self._show("#form-error", "")
        if not ok:
            return False
        try:
            self.template.resolve({k: v for k, v in self.values().items() if v != ""})
        except TemplateError as error:
            named = next((s.name for s in self.shown_variables if f"'{s.name}'" in error.message), None)
            if named:
                self._show(f"#err-{named}", error.message)
            else:
                self._show("#form-error", str(error))
            return False
        return True

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        name = (event.input.id or "").removeprefix("var-")
        spec = self.template.variables.get(name)
        if spec is not None:
            self._show(f"#err-{name}", field_problem(spec, event.value) or "")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_run()

    @on(Button.Pressed, "#run")
    def _run_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_run()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_cancel()

    def action_run(self) -> None:
        if self.validate_all():
            self.dismiss(self.values())

    def action_cancel(self) -> None:
        self.dismiss(None)
