"""The Settings tab: sampling settings kept with the session, and the model to use (and its number type)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Input, Label, Select, Static, TextArea

from assistant import DTYPES, SETTINGS, Setting

TEMPLATE_ONLY = frozenset({"stop"})
"""Settings the tab leaves to templates: a session's stop sequences would override every template's own."""

SAMPLING_FIELDS: tuple[Setting, ...] = tuple(spec for spec in SETTINGS if spec.name not in TEMPLATE_ONLY)
"""The settings the tab offers, as declared in ``backends.settings``: a box for each number, on or off
for each switch, and a text area for each list (one phrase a line; ``PHRASE=WEIGHT`` a line for
phrases with weights)."""

SWITCH_CHOICES: tuple[tuple[str, bool], ...] = (("on", True), ("off", False))
"""What a switch setting's list offers; left empty, the template's default holds."""

DTYPE_TOOLTIP = (
    "How a local model's weights are held: auto (float16 on a GPU, float32 on the CPU), float32, float16, "
    "bfloat16, or int8, about twice as fast on the CPU and for the CPU only. Changing it reloads the model."
)


def list_text(spec: Setting, value: Any) -> str:
    """A list setting's value as the text of its box: one item a line."""
    value = spec.normalise(value)
    if not isinstance(value, tuple):
        return ""
    if spec.mapping:
        return "\n".join(f"{phrase}={weight:g}" for phrase, weight in value)
    return "\n".join(str(item) for item in value)


def parse_list(spec: Setting, text: str) -> tuple[tuple[Any, ...] | None, str]:
    """A list setting's box read back: (the value, or None when empty; what is wrong, or "")."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return None, ""
    if spec.mapping:
        for number, line in enumerate(lines, 1):
            if not spec.accepts((line,)):
                return None, f"Line {number} ({line!r}): write {spec.requirement}."
    value = spec.normalise(lines)
    if not spec.accepts(value):
        return None, f"{spec.label} must be {spec.requirement}."
    return value, ""


def _on_off(value: Any) -> str:
    """A switch's value as the tab shows it."""
    return "on" if value else "off"


class SettingsView(VerticalScroll):
    """Sampling settings (kept with the session) and the backend to use."""

    @dataclass
    class ParamsChanged(Message):
        """Valid settings were entered: only the ones the writer set, by name."""

        params: dict[str, Any]

    @dataclass
    class SwitchBackend(Message):
        """Switch to another backend profile (and optionally model, and number type for a local model)."""

        backend: str
        model: str | None
        dtype: str | None = None
        """The number type of a local model's weights (one of ``DTYPES``); None: the profile's."""

    def __init__(self, profiles: list[tuple[str, str]], current: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._profiles = profiles
        self._current = current
        self._model: str | None = None
        self._dtypes: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        yield Static("Leave a box empty for the template's default (greyed). Kept with this session.", classes="hint")
        for spec in SAMPLING_FIELDS:
            if spec.many:
                yield Label(
                    spec.label + (" (PHRASE=WEIGHT, one a line)" if spec.mapping else " (one a line)"),
                    classes="setting-list-label",
                )
                yield TextArea(
                    id=f"set-{spec.name}",
                    classes="setting-list field",
                    tooltip=spec.explained,
                    compact=True,
                    placeholder="none" if not spec.mapping else "e.g. moonlight=5",
                )
                yield Static("", classes="setting-error", id=f"err-{spec.name}")
                continue
            if spec.kind is bool:
                with Horizontal(classes="setting-row"):
                    yield Label(spec.label, classes="setting-label")
                    yield Select[bool](
                        SWITCH_CHOICES,
                        id=f"set-{spec.name}",
                        classes="setting-switch",
                        prompt=_on_off(spec.default),
                        tooltip=spec.explained,
                        compact=True,
                    )
                yield Static("", classes="setting-error", id=f"err-{spec.name}")
                continue
            with Horizontal(classes="setting-row"):
                yield Label(spec.label, classes="setting-label")
                yield Input(
                    id=f"set-{spec.name}",
                    type="integer" if spec.kind is int else "number",
                    classes="setting-input",
                    tooltip=spec.explained,
                    compact=True,
                )
            yield Static("", classes="setting-error", id=f"err-{spec.name}")
        yield Static("Model", classes="section")
        yield Select[str](
            [(f"{name} ({what})", name) for name, what in self._profiles],
            value=self._current,
            id="set-backend",
            allow_blank=False,
            compact=True,
        )
        yield Input(placeholder="model (empty = the profile's)", id="set-model", compact=True)
        with Horizontal(classes="setting-row", id="dtype-row"):
            yield Label("Number type", classes="setting-label")
            yield Select[str](
                [(name, name) for name in DTYPES],
                value=DTYPES[0],
                id="set-dtype",
                allow_blank=False,
                compact=True,
                tooltip=DTYPE_TOOLTIP,
                disabled=True,
            )
        yield Button("Switch model", id="set-switch", compact=True)

    def load(self, values: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
        """Show the writer's values (``values``) and, greyed, the defaults."""
        for spec in SAMPLING_FIELDS:
            if spec.many:
                area = self.query_one(f"#set-{spec.name}", TextArea)
                with area.prevent(TextArea.Changed):
                    area.text = list_text(spec, values.get(spec.name))
                self.show_error(spec.name, "")
                continue
            if spec.kind is bool:
                switch = self.query_one(f"#set-{spec.name}", Select)
                value = values.get(spec.name)
                with switch.prevent(Select.Changed):
                    if isinstance(value, bool):
                        switch.value = value
                    else:
                        switch.clear()
                switch.prompt = _on_off(defaults.get(spec.name, spec.default))
                self.show_error(spec.name, "")
                continue
            box = self.query_one(f"#set-{spec.name}", Input)
            value = values.get(spec.name)
            with box.prevent(Input.Changed):
                box.value = "" if value is None else str(value)
            default = defaults.get(spec.name)
            box.placeholder = spec.unset if default is None else str(default)
            self.show_error(spec.name, "")

    def set_backends(
        self,
        profiles: list[tuple[str, str]],
        current: str,
        model: str | None,
        dtypes: Mapping[str, str] | None = None,
    ) -> None:
        """Offer the configured backend profiles: (name, description); ``dtypes``: the number type
        of each local model's profile (the one in use as chosen), the only ones that have one."""
        self._profiles = profiles
        self._current = current
        self._model = model
        self._dtypes = dict(dtypes or {})
        select = self.query_one("#set-backend", Select)
        with select.prevent(Select.Changed):
            select.set_options([(f"{name} ({what})", name) for name, what in profiles])
            if any(name == current for name, _ in profiles):
                select.value = current
        self.query_one("#set-model", Input).value = model or ""
        self._show_dtype(current)

    def _show_dtype(self, backend: str) -> None:
        """Show the number type of ``backend``'s model; greyed for a backend that has none."""
        select = self.query_one("#set-dtype", Select)
        dtype = self._dtypes.get(backend)
        with select.prevent(Select.Changed):
            select.value = dtype if dtype in DTYPES else DTYPES[0]
        select.disabled = dtype is None

    def values(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The values entered (parsed) and, per field that is wrong, what it must be."""
        out: dict[str, Any] = {}
        problems: dict[str, str] = {}
        for spec in SAMPLING_FIELDS:
            if spec.many:
                items, problem = parse_list(spec, self.query_one(f"#set-{spec.name}", TextArea).text)
                if problem:
                    problems[spec.name] = problem
                elif items is not None:
                    out[spec.name] = items
                continue
            if spec.kind is bool:
                chosen = self.query_one(f"#set-{spec.name}", Select).value
                if isinstance(chosen, bool):
                    out[spec.name] = chosen
                continue
            raw = self.query_one(f"#set-{spec.name}", Input).value.strip()
            if not raw:
                continue
            try:
                value = spec.kind(raw)
            except ValueError:
                problems[spec.name] = f"{spec.label} must be {'a whole number' if spec.kind is int else 'a number'}."
                continue
            if spec.accepts(value):
                out[spec.name] = value
            else:
                problems[spec.name] = f"{spec.label} must be {spec.requirement}."
        return out, problems

    def show_error(self, name: str, message: str) -> None:
        """Show ``message`` under a field (empty clears it)."""
        error = self.query_one(f"#err-{name}", Static)
        error.update(message)
        error.display = bool(message)

    @on(Input.Changed, ".setting-input")
    @on(TextArea.Changed, ".setting-list")
    @on(Select.Changed, ".setting-switch")
    def _changed(self, event: Input.Changed | TextArea.Changed | Select.Changed) -> None:
        event.stop()
        values, problems = self.values()
        for spec in SAMPLING_FIELDS:
            self.show_error(spec.name, problems.get(spec.name, ""))
        if not problems:
            self.post_message(self.ParamsChanged(values))

    @on(Button.Pressed, "#set-switch")
    def _switch(self, event: Button.Pressed) -> None:
        event.stop()
        backend = self.query_one("#set-backend", Select).value
        if not isinstance(backend, str):
            return
        model = self.query_one("#set-model", Input).value.strip() or None
        self.post_message(self.SwitchBackend(backend, model, self._chosen_dtype(backend)))

    def _chosen_dtype(self, backend: str) -> str | None:
        """The number type shown, for a backend that has one; None for any other."""
        value = self.query_one("#set-dtype", Select).value
        return value if backend in self._dtypes and isinstance(value, str) else None

    @on(Select.Changed, "#set-backend")
    def _backend_picked(self, event: Select.Changed) -> None:
        event.stop()
        if isinstance(event.value, str):
            self._show_dtype(event.value)

    @on(Select.Changed, "#set-dtype")
    def _dtype_picked(self, event: Select.Changed) -> None:
        """A new number type for the model in use reloads it at once; for another backend it waits for Switch."""
        event.stop()
        backend = self.query_one("#set-backend", Select).value
        dtype = self.query_one("#set-dtype", Select).value  # as it is now: the event may be the select's first
        if backend != self._current or backend not in self._dtypes or not isinstance(dtype, str):
            return  # the select's own first value, before the tab knows the backend's number type
        if dtype != self._dtypes[backend]:
            self.post_message(self.SwitchBackend(self._current, self._model, dtype))
