"""Streaming a generation for an editor: the whole text so far of each alternative, then done."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from assistant.core import Assistant
from backends.base import Delta, GenerationRequest, GenerationResult, Notice
from backends.errors import BackendError

# (alternative index, its whole text so far, done)
ProgressCallback = Callable[[int, str, bool], None]
NoticeCallback = Callable[[Notice], None]

_stopping: set[asyncio.Task[Any]] = set()  # generations told to stop, finishing their last step


async def generate(
    helper: Assistant,
    request: GenerationRequest,
    on_progress: ProgressCallback | None = None,
    on_notice: NoticeCallback | None = None,
) -> GenerationResult:
    """Run ``request``, reporting each alternative's growing text, and return the result.

    After the last chunk every alternative is reported once more with ``done`` set and
    its final text. Cancelling the awaiting task tells the model to stop at once and returns
    without waiting for its last step (that finishes in the background), so an editor's
    ``$/cancelRequest`` is answered promptly even on a busy machine.

    Raises:
        BackendError: the generation failed (the one-line reason from the backend).
    """
    task = asyncio.ensure_future(_generate(helper, request, on_progress, on_notice))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.cancel()
        _stopping.add(task)
        task.add_done_callback(_stopping.discard)
        raise


async def _generate(
    helper: Assistant,
    request: GenerationRequest,
    on_progress: ProgressCallback | None,
    on_notice: NoticeCallback | None,
) -> GenerationResult:
    texts: list[str] = []
    result: GenerationResult | None = None
    async for event in helper.astream_request(request):
        if isinstance(event, Delta):
            while event.index >= len(texts):
                texts.append("")
            texts[event.index] += event.text
            if on_progress is not None:
                on_progress(event.index, texts[event.index], False)
        elif isinstance(event, Notice):
            if on_notice is not None:
                on_notice(event)
        elif isinstance(event, GenerationResult):
            result = event
    if result is None:  # a backend that broke the contract
        raise BackendError("The model ended without a result.", "Try again, or switch backend.")
    if result.error:
        raise BackendError(result.error)
    if on_progress is not None:
        for index, text in enumerate(result.texts):
            on_progress(index, text, True)
    return result
