"""The writing engine behind ``quillmate lsp``: one loaded model, prompts built for editors.

Nothing here knows about LSP: the server turns requests into calls on :class:`Engine`
and its results back into LSP shapes. The model is loaded once, off the event loop,
and kept for every later request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from assistant.bible import Bible
from assistant.core import Assistant, Prepared
from assistant.templates import Template
from backends.base import GenerationParams
from backends.errors import UsageError

# The preset rewrites a plugin may name; anything else is passed on as a free instruction.
PRESET_REWRITES: dict[str, str] = {
    "vivid": "more vivid",
    "shorter": "shorter",
    "longer": "longer",
    "simpler": "simpler",
    "past-tense": "in the past tense",
    "present-tense": "in the present tense",
    "first-person": "in the first person",
    "third-person": "in the third person",
}

# Templates with an action of their own, so they are not offered again as "run template".
DEDICATED_TEMPLATES = ("continue", "rewrite")

SETTING_KEYS = ("backend", "model", "params", "sessions")
EDITOR_LOGPROBS = 5
"""Alternatives kept at each word of a continuation (``params.logprobs`` in the settings changes it; 0 turns it off)."""


def instruction_text(instruction: str) -> str:
    """The words the rewrite template gets for a preset name or a free instruction."""
    wanted = instruction.strip()
    if not wanted:
        raise UsageError("A rewrite needs an instruction.", f"For example: {', '.join(PRESET_REWRITES)}.")
    return PRESET_REWRITES.get(wanted, wanted)


@dataclass(frozen=True)
class Settings:
    """What an editor can set (``initializationOptions`` or ``didChangeConfiguration``).

    Attributes:
        backend: Backend profile name; None for the configured default.
        model: Model for that profile; None for the profile's own.
        params: Generation settings applied to every request.
        sessions: Map file-backed documents to co-writing sessions.
    """

    backend: str | None = None
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    sessions: bool = True

    def updated(self, options: Mapping[str, Any] | None) -> Settings:
        """A copy with ``options`` applied, every value checked.

        Raises:
            UsageError: an unknown key or a value of the wrong kind.
            InvalidParameters: a generation setting out of range.
        """
        if not options:
            return self
        if not isinstance(options, Mapping):
            raise UsageError("quillmate's settings must be an object.", f"Known keys: {', '.join(SETTING_KEYS)}.")
        unknown = sorted(set(options) - set(SETTING_KEYS))
        if unknown:
            raise UsageError(
                f"Unknown quillmate setting: {', '.join(unknown)}.", f"Known keys: {', '.join(SETTING_KEYS)}."
            )
        changes: dict[str, Any] = {}
        for key in ("backend", "model"):
            if key in options:
                value = options[key]
                if value is not None and not isinstance(value, str):
                    raise UsageError(f"The '{key}' setting must be a name.")
                changes[key] = value or None
        if "params" in options:
            params = dict(options["params"] or {})
            GenerationParams().with_overrides(**params)  # report a bad value now, not at the first request
            changes["params"] = params
        if "sessions" in options:
            changes["sessions"] = bool(options["sessions"])
        return replace(self, **changes)


class Engine:
    """One Assistant kept loaded for the editor's requests.

    Args:
        settings: The starting settings.
        make_assistant: Builds the Assistant (tests inject one); called off the event loop.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        make_assistant: Callable[[str | None, str | None], Assistant] | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self._make = make_assistant or (lambda backend, model: Assistant(backend, model=model))
        self._ready: asyncio.Task[Assistant] | None = None
        self._assistant: Assistant | None = None

    # -- loading -----------------------------------------------------------------------------

    def start_loading(self) -> asyncio.Task[Assistant]:
        """Begin loading the model in the background (idempotent); returns the task."""
        if self._ready is None or (self._ready.done() and self._ready.exception() is not None):
            self._ready = asyncio.ensure_future(self._load(self.settings.backend, self.settings.model))
        return self._ready

    async def _load(self, backend: str | None, model: str | None) -> Assistant:
        helper = await asyncio.to_thread(self._make, backend, model)
        await helper.backend.load()
        self._assistant = helper
        return helper

    async def assistant(self) -> Assistant:
        """The loaded Assistant (waits for the first load; a failed load is tried again).

        Raises:
            QuillmateError: the backend cannot be built or its model loaded.
        """
        task = self.start_loading()
        # shield: a cancelled request must not cancel the load the next request needs
        return await asyncio.shield(task)

    @property
    def loaded(self) -> Assistant | None:
        """The Assistant once loaded, else None (never waits)."""
        return self._assistant

    async def configure(self, settings: Settings) -> None:
        """Use new settings; a changed backend or model is loaded now."""
        old = self.settings
        self.settings = settings
        if (settings.backend, settings.model) != (old.backend, old.model):
            await self.switch_backend(settings.backend, settings.model)

    async def switch_backend(self, backend: str | None, model: str | None = None) -> Assistant:
        """Load another backend profile (and model); the old one is released once the new one works."""
        previous, previous_task = self._assistant, self._ready
        task = asyncio.ensure_future(self._load(backend, model))
        self._ready = task
        try:
            helper = await asyncio.shield(task)
        except BaseException:
            self._ready = previous_task  # keep writing with the backend that works
            raise
        self.settings = replace(self.settings, backend=backend, model=model)
        if previous is not None and previous is not helper:
            with contextlib.suppress(Exception):
                await previous.aclose()
        return helper

    async def aclose(self) -> None:
        """Release the model."""
        if self._assistant is not None:
            await self._assistant.aclose()
            self._assistant = None

    # -- preparing ---------------------------------------------------------------------------

    def _params(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return {**self.settings.params, **{k: v for k, v in (overrides or {}).items() if v is not None}}

    def prepare_continue(
        self,
        helper: Assistant,
        before: str,
        *,
        title: str = "",
        bible: Bible | None = None,
        n: int | None = None,
        max_new_tokens: int | None = None,
        after: str = "",
    ) -> Prepared:
        """Continue ``before`` (the text up to the cursor) with ``n`` alternatives, with the session's ``bible``.

        ``after`` is the text after the cursor (bounded: see ``assistant.cursor``), for a model
        that fills in the middle.
        """
        variables: dict[str, Any] = {"text": before}
        if title:
            variables["title"] = title
        # Word alternatives come with every suggestion, so quillmate/alternatives can show them later.
        asked = self._params({"num_alternatives": n, "max_new_tokens": max_new_tokens})
        params = {"logprobs": EDITOR_LOGPROBS, **asked}
        return helper.prepare("continue", variables, params, bible=bible, suffix=after)

    def prepare_rewrite(
        self,
        helper: Assistant,
        passage: str,
        instruction: str,
        *,
        bible: Bible | None = None,
        max_new_tokens: int | None = None,
    ) -> Prepared:
        """Rewrite ``passage`` by a preset name (``vivid``...) or a free instruction, with the session's ``bible``."""
        if not passage.strip():
            raise UsageError("Select the passage to rewrite first.")
        variables = {"passage": passage, "instruction": instruction_text(instruction)}
        return helper.prepare("rewrite", variables, self._params({"max_new_tokens": max_new_tokens}), bible=bible)

    def prepare_template(
        self,
        helper: Assistant,
        name: str,
        variables: Mapping[str, Any] | None,
        selection: str | None = None,
        *,
        max_new_tokens: int | None = None,
    ) -> Prepared:
        """Run template ``name``; the selection fills its input variable unless given."""
        template = helper.template(name)
        values = dict(variables or {})
        if selection is not None and template.input_variable and template.input_variable not in values:
            values[template.input_variable] = selection
        return helper.prepare(template, values, self._params({"max_new_tokens": max_new_tokens}))

    # -- describing --------------------------------------------------------------------------

    def templates(self, helper: Assistant | None = None) -> list[Template]:
        """Every usable template (user files override built-ins)."""
        library = helper.templates if helper is not None else _library()
        return library.list()

    def context_info(self) -> dict[str, Any]:
        """Backend, model and context window (from what is loaded; never waits for it)."""
        helper = self._assistant
        if helper is None:
            return {
                "backend": self.settings.backend,
                "model": self.settings.model,
                "contextWindow": None,
                "loading": True,
            }
        info = helper.backend.info()
        window = info.context_window or helper.backend.capabilities.context_window
        return {"backend": info.name, "model": info.model, "contextWindow": window, "loading": False}


def template_output(template: Template) -> str:
    """``edit`` when the template's text replaces the selection, else ``insert``."""
    return "edit" if template.output == "selection" else "insert"


def story_title(path: Path | None) -> str:
    """A title for the continue template: the file's name without its extension."""
    return path.stem.replace("_", " ").replace("-", " ") if path is not None else ""


def clean_result(template: Template, text: str, passage: str | None = None) -> str:
    """The text an edit should insert: rewrites and pieces of their own lose stray outer blank space.

    A rewrite keeps the selection's own final line break, so the next line stays where it was.
    """
    if template.output == "cursor":
        return text
    cleaned = text.strip()
    if passage is not None and passage.endswith("\n") and not cleaned.endswith("\n"):
        cleaned += "\n"
    return cleaned


def _library() -> Any:
    from assistant.templates import TemplateLibrary

    return TemplateLibrary()
