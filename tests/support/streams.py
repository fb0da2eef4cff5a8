"""Drain a backend's stream in tests: its notices and its one result."""

from __future__ import annotations

from typing import Any

from backends.base import GenerationRequest, GenerationResult, Notice


async def run(backend: Any, request: GenerationRequest) -> tuple[list[Notice], GenerationResult]:
    """The notices and the final result of ``backend.stream(request)``."""
    notices, result = [], None
    async for event in backend.stream(request):
        if isinstance(event, Notice):
            notices.append(event)
        elif isinstance(event, GenerationResult):
            result = event
    assert result is not None
    return notices, result
