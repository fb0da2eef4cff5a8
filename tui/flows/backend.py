"""The backend: making the Assistant, loading the model, switching backends, and the Settings tab."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from functools import partial
from importlib.machinery import ModuleSpec
from typing import TYPE_CHECKING, Any

from assistant import QuillmateError
from tui.flows.base import Flow, Services
from tui.flows.generation import GenerationFlow
from tui.flows.status import StatusFlow
from tui.screens.pickers import BackendScreen
from tui.suggestion import SUGGESTION_TOKENS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from assistant import Backend


FULL_COLLECTIONS_HELD = 1_000_000_000
"""The collector's oldest-generation threshold while a model loads: no full pass in the meantime."""
FREEZE_AFTER_MODULES = 100
"""A load that imported more modules than this brought in a library (torch): its objects are frozen."""


class _FullCollections:
    """Holds the garbage collector's full passes while loads run (process-wide, as the collector is)."""

    holds = 0
    thresholds = gc.get_threshold()

    @classmethod
    @contextlib.contextmanager
    def held(cls) -> Iterator[None]:
        """No full pass while the block runs; freeze what it imported if that was a library."""
        if cls.holds == 0:
            cls.thresholds = gc.get_threshold()
            gc.set_threshold(cls.thresholds[0], cls.thresholds[1], FULL_COLLECTIONS_HELD)
        cls.holds += 1
        modules_before = len(sys.modules)
        try:
            yield
        finally:
            cls.holds -= 1
            if len(sys.modules) - modules_before > FREEZE_AFTER_MODULES:
                gc.freeze()  # the library lives as long as the app: no full pass need visit its objects
            if cls.holds == 0:
                gc.set_threshold(*cls.thresholds)


class LoadPacer:
    """Lets the model's libraries load only while the writer rests, so typing never lags.

    Importing torch and transformers is seconds of work that holds Python's interpreter lock for
    long stretches (loading a C extension holds it for hundreds of milliseconds at a time), so a
    load in a background thread made every key wait: p95 about 430 ms on a busy two-core machine,
    and lowering ``sys.setswitchinterval`` did not help (bench/tui_latency.py). An import cannot
    be paused midway, but it can between modules: while installed, this import hook holds every
    other thread's next module until the writer has not typed for ``quiet`` seconds. The event
    loop's thread is never held. The model is ready a little later for a writer who keeps typing;
    it is only asked for when they pause.

    Timing the event loop against the loader's steps showed where the long holds were: opening
    libtorch (the backend now does that with the lock released: backends/native_libs.py), and
    the garbage collector's full passes, each over every object the libraries had made so far
    (a third of a second and more, several per load). While installed, only the quick passes
    over young objects run, and what a load brought in is then frozen out of later full passes
    (``gc.freeze``), which would otherwise stop the app the same way.
    """

    def __init__(self, quiet: float = 0.5) -> None:
        self.quiet = quiet
        """Seconds without a key (or a click or a paste) before the loading may go on."""
        self._last_activity = float("-inf")
        self._app_thread: int | None = None

    def touch(self) -> None:
        """The writer just did something: hold the loading for a while."""
        self._last_activity = time.monotonic()

    def wait_for_rest(self) -> None:
        """Block (the calling loader thread) until the writer has rested ``quiet`` seconds."""
        while (left := self._last_activity + self.quiet - time.monotonic()) > 0:
            time.sleep(min(left, 0.05))

    async def rest(self) -> None:
        """Wait (on the event loop) until the writer has rested ``quiet`` seconds."""
        while (left := self._last_activity + self.quiet - time.monotonic()) > 0:
            await asyncio.sleep(min(left, 0.05))

    def find_spec(self, name: str, path: Sequence[str] | None = None, target: object = None) -> ModuleSpec | None:
        """Find the module as the other finders do; a loader thread's copy waits for the writer to rest.

        The wait is in ``create_module``, not here: finders run under Python's global import
        lock, and waiting under it would hold up the app's own imports.
        """
        if threading.get_ident() == self._app_thread:
            return None
        for finder in list(sys.meta_path):
            find = getattr(finder, "find_spec", None) if finder is not self else None
            spec = find(name, path, target) if find is not None else None
            if spec is not None:
                break
        else:
            return None
        create = getattr(spec.loader, "create_module", None)
        if create is not None:
            with contextlib.suppress(AttributeError):  # a loader with __slots__ is left as it is

                def paced_create(spec: ModuleSpec) -> Any:
                    self.wait_for_rest()
                    return create(spec)

                spec.loader.create_module = paced_create
        return spec

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Pace imports made by other threads while the block runs (enter it on the app's thread)."""
        self._app_thread = threading.get_ident()
        sys.meta_path.insert(0, self)
        try:
            with _FullCollections.held():
                yield
        finally:
            with contextlib.suppress(ValueError):
                sys.meta_path.remove(self)


class BackendFlow(Flow):
    """Backend loading and switching, and the generation settings kept with the session (the app's ``backends``)."""

    def __init__(self, services: Services, generation: GenerationFlow, indicators: StatusFlow) -> None:
        super().__init__(services)
        self.generation = generation
        self.indicators = indicators
        self.pacer = LoadPacer()
        """Holds the model's loading while the writer types (the app tells it of every key)."""
        self._undo: tuple[Backend, str, str | None, str, str] | None = None
        """After a new number type: (the backend made with it, profile, model, that number type, the one
        before), to go back to should the model not load with it (int8 on a GPU)."""

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
        with self.pacer.installed():
            await self._load_paced(old)

    async def _load_paced(self, old: Backend | None) -> None:
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
            await backend.load()
            self.indicators.show_backend_info(await asyncio.to_thread(backend.info))
        except asyncio.CancelledError:
            raise
        except Exception as error:
            undo, self._undo = self._undo, None
            if undo is not None and undo[0] is backend and backend is self.assistant.backend:
                _, name, model, tried, before = undo
                self.tell.report(error, prefix=f"The model could not be loaded as {tried}: ")
                self.switch(name, model, before, quiet=True)
                return
            if backend is self.assistant.backend:
                self.views.status.update_state(activity="unavailable")
                self.tell.report(error, prefix="The model could not be loaded: ")
            return
        if self._undo is not None and self._undo[0] is backend:
            self._undo = None
        if backend is self.assistant.backend:
            self.backend.ready = True
            if not self.generation.generating:
                self.views.status.update_state(activity="ready")

    def switch(self, name: str, model: str | None = None, dtype: str | None = None, *, quiet: bool = False) -> None:
        """Use another backend profile (and optionally model, and number type for a local model);
        stops a generation in flight first. ``quiet``: going back after a number type that failed."""
        self.generation.stop()
        old = self.assistant.backend
        before = self.dtypes().get(self.backend.name) if name == self.backend.name else None
        try:
            if self.backend.factory is not None:
                new = self.backend.factory(name, model)
                self.assistant.switch_backend(new)
            else:
                self.assistant.switch_backend(name, model=model, dtype=dtype)
        except Exception as error:
            self.tell.report(error, prefix="Could not switch the model: ")
            return
        self.backend.name = name
        with contextlib.suppress(QuillmateError):
            self.session.update_settings(backend=name, model=model, dtype=dtype)
        self.views.status.update_state(
            backend=name, model=model or "", device="", tokens_per_second=None, context_used=None, activity="loading"
        )
        if quiet:
            from assistant import DTYPES

            self.notify(f"Back to {self.dtypes().get(name, DTYPES[0])}.", timeout=5)
        else:
            if dtype is not None and before is not None and dtype != before:
                self._undo = (self.assistant.backend, name, model, dtype, before)
            which = ", ".join(part for part in (model, dtype) if part)
            self.notify(f"Switched to {name}" + (f" ({which})" if which else "") + ".", timeout=3)
        self.load_settings_view()
        self.load(old)

    def dtypes(self) -> dict[str, str]:
        """The number type of each local model's profile: the session's choice for the one in use, else its own."""
        from assistant import DTYPES  # the local backend's module: not needed for the first frame

        settings = self.session.settings
        chosen = settings.get("dtype") if settings.get("backend") == self.backend.name else None
        out = {}
        for name, profile in self.backend.config.profiles.items():
            if profile.takes_dtype:
                out[name] = str(profile.options.get("dtype", DTYPES[0]))
        if chosen and self.backend.name in out:
            out[self.backend.name] = str(chosen)
        return out

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
        view.set_backends(self.profiles(), self.backend.name, self.session.settings.get("model"), self.dtypes())

    def params_changed(self, params: Mapping[str, Any]) -> None:
        """The writer changed a setting: check it, show what is wrong beside its field, or keep it."""
        from tui.widgets.panels import SAMPLING_FIELDS

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
