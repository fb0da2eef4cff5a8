"""The backend: making the Assistant, loading the model, switching backends, and the Settings tab."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from textual import on, work

from assistant import QuillmateError
from tui.flows.generation import GenerationFlow
from tui.screens.pickers import BackendScreen
from tui.suggestion import SUGGESTION_TOKENS
from tui.widgets.panels import SAMPLING_FIELDS, SettingsView

if TYPE_CHECKING:
    from assistant import Backend


class BackendFlow(GenerationFlow):
    """Backend loading and switching, and the generation settings kept with the session."""

    async def _ensure_assistant(self) -> bool:
        """Make the Assistant off the event loop; on failure fall back to the default profile."""
        if self._assistant is not None:
            return True
        try:
            await asyncio.to_thread(lambda: self.assistant)
        except Exception as error:
            self._report(error, prefix=f"The backend '{self._backend_name}' could not be set up: ")
            default = self.config.default_backend
            if default == self._backend_name:
                self.status.update_state(activity="unavailable")
                return False
            from assistant.core import Assistant

            try:
                self._assistant = await asyncio.to_thread(Assistant, default, config=self.config)
            except Exception as second:
                self._report(second)
                self.status.update_state(activity="unavailable")
                return False
            self.notify(f"Using the '{default}' backend instead.", severity="warning")
        self._backend_name = self.assistant.backend.name
        self._load_settings_view()
        return True

    @work(exclusive=True, group="load", exit_on_error=False)
    async def _load_worker(self, old: Backend | None = None) -> None:
        if not await self._ensure_assistant():
            return
        backend = self.assistant.backend
        self.backend_ready = False
        if old is not None and old is not backend:
            with contextlib.suppress(Exception):
                await old.aclose()
        if not self.generating:
            self.status.update_state(activity="loading")
        try:
            self._show_backend_info(await asyncio.to_thread(backend.info))
            await backend.load()
            self._show_backend_info(await asyncio.to_thread(backend.info))
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if backend is self.assistant.backend:
                self.status.update_state(activity="unavailable")
                self._report(error, prefix="The model could not be loaded: ")
            return
        if backend is self.assistant.backend:
            self.backend_ready = True
            if not self.generating:
                self.status.update_state(activity="ready")

    def switch_backend(self, name: str, model: str | None = None) -> None:
        """Use another backend profile (and optionally model); stops a generation in flight first."""
        self.stop_generation()
        old = self.assistant.backend
        try:
            if self.backend_factory is not None:
                new = self.backend_factory(name, model)
                self.assistant.switch_backend(new)
            else:
                self.assistant.switch_backend(name, model=model)
        except Exception as error:
            self._report(error, prefix="Could not switch the model: ")
            return
        self._backend_name = name
        with contextlib.suppress(QuillmateError):
            self.session.update_settings(backend=name, model=model)
        self.status.update_state(backend=name, model=model or "", device="", tokens_per_second=None,
                                 context_used=None, activity="loading")
        self.notify(f"Switched to {name}" + (f" ({model})" if model else "") + ".", timeout=3)
        self._load_settings_view()
        self._load_worker(old)

    def _profiles(self) -> list[tuple[str, str]]:
        out = []
        for name, profile in self.config.profiles.items():
            model = profile.options.get("model", "")
            out.append((name, f"{profile.kind}" + (f", {model}" if model else "")))
        current = self._backend_name
        if current and not any(name == current for name, _ in out):
            kind = self._assistant.backend.kind if self._assistant is not None else ""
            out.insert(0, (current, kind or "custom"))
        return out

    def _load_settings_view(self) -> None:
        defaults: dict[str, Any] = {}
        with contextlib.suppress(Exception):
            defaults = asdict(self.assistant.params_for(self.assistant.template("continue")))
            defaults["max_new_tokens"] = SUGGESTION_TOKENS  # the app asks for about a paragraph
        view = self.settings_view
        view.load(self.session_params, defaults)
        view.set_backends(self._profiles(), self._backend_name, self.session.settings.get("model"))

    @on(SettingsView.ParamsChanged)
    def _params_changed(self, message: SettingsView.ParamsChanged) -> None:
        view = self.settings_view
        try:
            self.assistant.params_for(None, message.params)
        except QuillmateError as error:
            placed = False
            for spec in SAMPLING_FIELDS:
                wrong = spec.name in error.message or (spec.name == "num_alternatives" and "n (" in error.message)
                if spec.name in message.params and wrong:
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
            self.session.update_settings(params=dict(message.params))
        except Exception as error:
            self._report(error)

    @on(SettingsView.SwitchBackend)
    def _settings_switch(self, message: SettingsView.SwitchBackend) -> None:
        self.switch_backend(message.backend, message.model)

    def action_switch_backend(self) -> None:
        """Choose another backend or model."""
        def chosen(choice: tuple[str, str | None] | None) -> None:
            if choice is not None:
                self.switch_backend(*choice)

        self.push_screen(BackendScreen(self._profiles(), self._backend_name), callback=chosen)


def _problem_for(message: str, name: str) -> str:
    """The part of an InvalidParameters message about ``name``."""
    body = message.removeprefix("Invalid generation settings: ").rstrip(".")
    for part in body.split("; "):
        if name in part or (name == "num_alternatives" and part.startswith("n ")):
            return part[0].upper() + part[1:] + "."
    return message
