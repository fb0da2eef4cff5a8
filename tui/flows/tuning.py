"""Tuning a model on the writer's own files, from the palette, while they keep writing (the app's ``tuning``)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from tui.flows.base import Flow, Services
from tui.screens.tune import TunedScreen, TuneRequest, TuneScreen, writing_near
from tui.widgets.tuning import TuningProgress, duration

if TYPE_CHECKING:
    from assistant.tuning.local import LocalOutcome
    from assistant.tuning.sources import Skipped
    from tui.flows.backend import BackendFlow


class TuningFlow(Flow):
    """Runs ``assistant.tuning.local.tune_local`` in a thread, shows its progress, stops it, offers the result.

    Attributes:
        running: The name of the model being tuned, or None.
        options: Extra budget and ``TuneSpec`` fields for every run (``steps``, ``batch_size``,
            ``seq_len``...), like the command line's hidden options: tests keep runs short with them.
        outcome: The last finished run.
    """

    def __init__(self, services: Services, backends: BackendFlow) -> None:
        super().__init__(services)
        self.backends = backends
        self.running: str | None = None
        self.options: dict[str, Any] = {}
        self.outcome: LocalOutcome | None = None
        self._stop = threading.Event()

    @property
    def progress(self) -> TuningProgress:
        """The progress bar above the status bar."""
        return self.views.find("#tuning-progress", TuningProgress)

    def open(self) -> None:
        """Ask which files to tune on, under what name and for how long; then start."""
        if self.running is not None:
            self.notify(
                f"A model is being tuned already ('{self.running}'). Ctrl+P → Stop tuning ends it.", severity="warning"
            )
            return
        name = f"{self.session.file.stem}-voice" if self.session.file is not None else "my-voice"
        screen = TuneScreen(writing_near(self.session.file), name)
        self.services.push_screen(screen, callback=self._chosen)

    def _chosen(self, request: TuneRequest | None) -> None:
        if request is not None:
            self.start(request)

    def start(self, request: TuneRequest) -> None:
        """Tune in the background as ``request`` says."""
        self._stop.clear()
        self.running = request.plan.name
        self.progress.show(f"Tuning '{self.running}': starting…")
        self.services.refresh_bindings()
        self.services.run_worker(partial(self._run, request), group="tuning", exclusive=True, exit_on_error=False)

    def stop(self) -> None:
        """Stop at the next step; the model trained so far is saved and offered as usual."""
        if self.running is None or self._stop.is_set():
            return
        self._stop.set()
        if self.progress.is_attached:  # not when the app has closed
            self.progress.show(f"Tuning '{self.running}': stopping after this step and saving what it learnt…")

    async def _run(self, request: TuneRequest) -> None:
        from assistant.tuning.local import tune_local

        loop = asyncio.get_running_loop()

        def on_loop(show: Callable[..., None]) -> Callable[..., None]:
            def later(*args: Any) -> None:
                loop.call_soon_threadsafe(show, *args)

            return later

        skipped: list[Skipped] = []
        options = dict(self.options)
        steps = options.pop("steps", None)
        try:
            outcome = await asyncio.to_thread(
                tune_local,
                request.plan,
                request.files,
                steps=steps,
                minutes=None if steps else request.minutes,
                on_skip=skipped.append,
                on_status=on_loop(self._show_status),
                on_step=on_loop(self._show_step),
                should_stop=self._stop.is_set,
                **options,
            )
        except asyncio.CancelledError:
            self._stop.set()  # the app is closing: the thread stops at the next step and saves
            raise
        except Exception as error:
            self.tell.report(error, prefix="The tuning stopped: ")
            return
        finally:
            self.running = None
            if self.progress.is_attached:
                self.progress.show("")
        self.finished(outcome, skipped)

    def _show_status(self, line: str) -> None:
        if self.running is not None and not self._stop.is_set():
            self.progress.show(f"Tuning '{self.running}': {line}")

    def _show_step(self, report: Any) -> None:  # backends.tuning.StepReport
        if self.running is None or self._stop.is_set():
            return
        step = f"step {report.step}" + (f"/{report.total_steps}" if report.total_steps else "")
        self.progress.show(
            f"Tuning '{self.running}': {step} · loss {report.loss:.2f} · {duration(report.seconds_left)} left"
            " · Ctrl+P → Stop tuning"
        )

    def finished(self, outcome: LocalOutcome, skipped: list[Skipped]) -> None:
        """Make the new profile known, say what the run did, and offer to write with it."""
        from assistant.config import load_config

        self.outcome = outcome
        name = outcome.model.name
        config = load_config()  # the new model's profile is registered on disk
        self.backend.config = config
        if self.backend.made is not None:
            self.assistant.config = config
        self.backends.load_settings_view()
        if skipped:
            self.notify(
                "Left out: " + "; ".join(f"{item.path.name} ({item.reason})" for item in skipped) + ".",
                severity="warning",
                timeout=10,
            )

        def answered(switch: bool | None) -> None:
            if switch:
                self.backends.switch(name, None)

        self.services.push_screen(TunedScreen(name, summary(outcome)), callback=answered)


def summary(outcome: LocalOutcome) -> str:
    """What a run did, in a few plain sentences."""
    result = outcome.result
    before, after = result.perplexity_before, result.perplexity_after
    change = 100 * (1 - after / before) if before else 0.0
    lines = [
        f"{result.steps} steps in {duration(result.seconds)} on {result.device}.",
        f"How surprised it is by your held-out text (perplexity): {before:.1f} before, {after:.1f} after "
        f"({abs(change):.0f}% {'lower: it predicts your writing better' if change >= 0 else 'higher'}).",
    ]
    if result.interrupted:
        lines.append("Stopped early: the model so far is saved and usable.")
    return "\n".join(lines)
