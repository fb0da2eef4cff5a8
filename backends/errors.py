"""Errors every part of quillmate raises and understands.

Each error's message is one line a writer can act on; ``hint`` says what to do.
The CLI prints ``message`` (and the hint), never a traceback unless ``--debug``.
"""

from __future__ import annotations


class QuillmateError(Exception):
    """Base of every error quillmate reports to a person.

    Attributes:
        message: One line saying what went wrong.
        hint: One line saying what to do about it (may be empty).
        exit_code: The CLI exit status for this error (1 runtime, 2 usage).
    """

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip() if self.hint else self.message


class UsageError(QuillmateError):
    """The request itself is wrong: bad option, unknown name, invalid value."""

    exit_code = 2


class InvalidParameters(UsageError):
    """A generation parameter is out of range."""


class ConfigError(UsageError):
    """The config file or a backend profile is wrong."""


class BackendError(QuillmateError):
    """A backend failed at run time (model missing, server down, key refused)."""


class ModelNotFound(BackendError):
    """The model cannot be found locally and cannot be downloaded."""


class AuthenticationError(BackendError):
    """The service refused the API key."""


class RateLimited(BackendError):
    """The service kept answering 429 after retries."""


class BackendTimeout(BackendError):
    """The service did not answer in time."""


class ContextOverflow(UsageError):
    """The fixed parts of a prompt alone do not fit the model's context window."""
