"""OpenAI fine-tuning jobs through the official SDK: upload a training file, start a job, watch it.

Key, server and error wording are the OpenAI backend's own (``OpenAIBackend.resolve_key``,
``openai_errors.translate``), so a fine-tune finds the same key as writing does and every
failure is one key-free line. ``openai`` is imported when a client is first made.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from backends.errors import BackendError
from backends.openai_backend import OpenAIBackend
from backends.openai_errors import protect, shown_url, translate

T = TypeVar("T")
TERMINAL = ("succeeded", "failed", "cancelled")


class FineTuning:
    """Files and fine-tuning jobs on the server an OpenAI profile names."""

    def __init__(self, backend: OpenAIBackend) -> None:
        self.backend = backend
        self._key = backend.resolve_key()  # raises BackendError (no key) before anything is sent
        self._client: Any = None

    def _sdk(self) -> Any:
        if self._client is None:
            import openai

            shown_url(self.backend.base_url)
            protect(self._key.secret.reveal())
            self._client = openai.OpenAI(
                api_key=self._key.secret.reveal(),
                base_url=self.backend.base_url,
                organization=self.backend.organization,
                project=self.backend.project,
                timeout=self.backend.timeout,
                max_retries=self.backend.max_retries,
            )
        return self._client

    def _call(self, model: str, action: Callable[[Any], T]) -> T:
        try:
            return action(self._sdk())
        except Exception as error:
            if isinstance(error, BackendError):
                raise
            raise translate(
                error,
                model=model,
                base_url=self.backend._shown_base_url(),
                key_source=self._key.source,
                timeout=self.backend.timeout,
                retries=self.backend.max_retries,
            ) from None

    def upload(self, filename: str, data: bytes) -> str:
        """Upload a JSONL training file; returns its file id."""
        found = self._call(self.backend.model, lambda c: c.files.create(file=(filename, data), purpose="fine-tune"))
        return str(found.id)

    def start(self, model: str, training_file: str, suffix: str, validation_file: str | None = None) -> dict[str, Any]:
        """Start a fine-tuning job of ``model`` on an uploaded file; returns the job."""
        extra = {"validation_file": validation_file} if validation_file else {}
        job = self._call(
            model, lambda c: c.fine_tuning.jobs.create(model=model, training_file=training_file, suffix=suffix, **extra)
        )
        return dict(job.model_dump())

    def job(self, job_id: str) -> dict[str, Any]:
        """The job as the server describes it now."""
        return dict(self._call(self.backend.model, lambda c: c.fine_tuning.jobs.retrieve(job_id)).model_dump())

    def events(self, job_id: str, limit: int = 20) -> list[dict[str, Any]]:
        """The job's most recent events, oldest first."""
        page = self._call(self.backend.model, lambda c: c.fine_tuning.jobs.list_events(job_id, limit=limit))
        return [dict(e.model_dump()) for e in reversed(list(page.data))]
