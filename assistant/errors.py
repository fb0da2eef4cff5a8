"""The errors quillmate reports (defined with the backend contract, re-exported here)."""

from backends.errors import (
    AuthenticationError,
    BackendError,
    BackendTimeout,
    ConfigError,
    ContextOverflow,
    InvalidParameters,
    ModelNotFound,
    QuillmateError,
    RateLimited,
    UsageError,
)


class TemplateError(UsageError):
    """A template is unknown, malformed, unsafe, or missing a variable."""


__all__ = [
    "AuthenticationError",
    "BackendError",
    "BackendTimeout",
    "ConfigError",
    "ContextOverflow",
    "InvalidParameters",
    "ModelNotFound",
    "QuillmateError",
    "RateLimited",
    "TemplateError",
    "UsageError",
]
