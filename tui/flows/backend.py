"""The backend: making the Assistant, loading the model, switching backends, and the Settings tab."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import asdict
from functools import partial
from typing import TYPE_CHECKING, Any

from assistant import QuillmateError
from tui.flows.base import Flow, Services
from tui.flows.generation import GenerationFlow
from tui.flows.status import StatusFlow
from tui.screens.pickers import BackendScreen
from tui.suggestion import SUGGESTION_TOKENS
from tui.widgets.panels import SAMPLING_FIELDS

if TYPE_CHECKING:
    from assistant import Backend


class BackendFlow(Flow):
    """Backend loading and switching, and the generation settings kept with the session (the app's ``backends``)."""

    def __init__(self, services: Services, generation: GenerationFlow, indicators: StatusFlow) -> None:
        super().__init__(services)
        self.generation = generation
        self.indicators = indicators

    async def _ensure_assistant(self) -> bool:
        """Make the Assistant off the event loop; on failure fall back to the default profile."""
        holder = self.backend
        if holder.made is not None:
            return True
        try:
            await asyncio.to_thread(lambda: self.assistant)
        except Exception as error:
            self.tell.report(error, prefix=f"The backend '{holder.name}' could not be set up: ")
            default = holder.config.default_backend
            if default == holder.name:
                self.views.status.update_state(activity="unavailable")
                return False
            from assistant.core import Assistant

            try:
                holder.made = await asyncio.to_thread(Assistant, default, config=holder.config)
            except Exception as second:
                self.tell.report(second)
                self.views.status.update_state(activity="unavailable")
                return False
            self.notify(f"Using the '{default}' backend instead.", severity="warning")
        holder.name = self.assistant.backend.name
        self.load_settings_view()
        return True

    def load(self, old: Backend | None = None) -> None:
        """Load the model in the background (closing ``old``, the backend it replaces)."""
        self.services.run_worker(partial(self._load, old), group="load", exclusive=True, exit_on_error=False)

    async def _load(self, old: Backend | None) -> None:
        if not await self._ensure_assistant():
            return
        backend = self.assistant.backend
        self.backend.ready = False
        if old is not None and old is not backend:
            with contextlib.suppress(Exception):
                await old.aclose()
        if not self.generation.generating:
            self.views.status.update_state(activity="loading")
        try:
            self.indicators.show_backend_info(await asyncio.to_thread(backend.info))
            import os, sys
            old_interval = sys.getswitchinterval()
            sys.setswitchinterval(float(os.environ.get("QM_SWITCH", old_interval)))
            try:
                await backend.load()
            finally:
                sys.setswitchinterval(old_interval)
            self.indicators.show_backend_info(await asyncio.to_thread(backend.info))
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if backend is self.assistant.backend:
                self.views.status.update_state(activity="unavailable")
                self.tell.report(error, prefix="The model could not be loaded: ")
            return
        if backend is self.assistant.backend:
            self.backend.ready = True
            if not self.generation.generating:
                self.views.status.update_state(activity="ready")

    def switch(self, name: str, model: str | None = None) -> None:
        """Use another backend profile (and optionally model); stops a generation in flight first."""
        self.generation.stop()
        old = self.assistant.backend
        try:
            if self.backend.factory is not None:
                new = self.backend.factory(name, model)
                self.assistant.switch_backend(new)
            else:
                self.assistant.switch_backend(name, model=model)
        except Exception as error:
            self.tell.report(error, prefix="Could not switch the model: ")
            return
        self.backend.name = name
        with contextlib.suppress(QuillmateError):
            self.session.update_settings(backend=name, model=model)
        self.views.status.update_state(
            backend=name, model=model or "", device="", tokens_per_second=None, context_used=None, activity="loading"
        )
        self.notify(f"Switched to {name}" + (f" ({model})" if model else "") + ".", timeout=3)
        self.load_settings_view()
        self.load(old)

    def profiles(self) -> list[tuple[str, str]]:
        """Every backend profile, as (name, what it is), the one in use first if it is not configured."""
        out = []
        for name, profile in self.backend.config.profiles.items():
            model = profile.options.get("model", "")
            out.append((name, f"{profile.kind}" + (f", {model}" if model else "")))
        current = self.backend.name
        if current and not any(name == current for name, _ in out):
            made = self.backend.made
            kind = made.backend.kind if made is not None else ""
            out.insert(0, (current, kind or "custom"))
        return out

    def load_settings_view(self) -> None:
        """Fill the Settings tab: the session's settings over the template's defaults, and the backends."""
        defaults: dict[str, Any] = {}
        with contextlib.suppress(Exception):
            defaults = asdict(self.assistant.params_for(self.assistant.template("continue")))
            defaults["max_new_tokens"] = SUGGESTION_TOKENS  # the app asks for about a paragraph
        view = self.views.settings
        view.load(self.session_params, defaults)
        view.set_backends(self.profiles(), self.backend.name, self.session.settings.get("model"))

    def params_changed(self, params: Mapping[str, Any]) -> None:
        """The writer changed a setting: check it, show what is wrong beside its field, or keep it."""
        view = self.views.settings
        try:
            self.assistant.params_for(None, params)
        except QuillmateError as error:
            placed = False
            for spec in SAMPLING_FIELDS:
                wrong = spec.name in error.message or (spec.name == "num_alternatives" and "n (" in error.message)
                if spec.name in params and wrong:
                    view.show_error(spec.name, _problem_for(error.message, spec.name))
                    placed = True
            if not placed:
                self.notify(error.message, severity="error")
            return
        for spec in SAMPLING_FIELDS:
            view.show_error(spec.name, "")
        if self.session.read_only:
            return
        try:
            self.session.update_settings(params=dict(params))
        except Exception as error:
            self.tell.report(error)

    def choose(self) -> None:
        """Let the writer choose another backend or model."""

        def chosen(choice: tuple[str, str | None] | None) -> None:
            if choice is not None:
                self.switch(*choice)

        self.services.push_screen(BackendScreen(self.profiles(), self.backend.name), callback=chosen)


def _problem_for(message: str, name: str) -> str:
    """The part of an InvalidParameters message about ``name``."""
    body = message.removeprefix("Invalid generation settings: ").rstrip(".")
    for part in body.split("; "):
        if name in part or (name == "num_alternatives" and part.startswith("n ")):
            return part[0].upper() + part[1:] + "."
    return message
