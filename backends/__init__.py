"""Model backends behind one contract (see ``backends.base``).

Importing this package is cheap: torch, transformers and openai are imported
only when a backend first needs them.
"""

from backends.base import (
    Backend,
    BackendInfo,
    Capabilities,
    ChatMessage,
    Delta,
    GenerationParams,
    GenerationRequest,
    GenerationResult,
    Notice,
    StreamEvent,
    TextPart,
    TokenAlternatives,
    Usage,
)
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
from backends.settings import SETTINGS, ParamOverrides, Setting

__all__ = [
    "SETTINGS",
    "AuthenticationError",
    "Backend",
    "BackendError",
    "BackendInfo",
    "BackendTimeout",
    "Capabilities",
    "ChatMessage",
    "ConfigError",
    "ContextOverflow",
    "Delta",
    "GenerationParams",
    "GenerationRequest",
    "GenerationResult",
    "InvalidParameters",
    "ModelNotFound",
    "Notice",
    "ParamOverrides",
    "QuillmateError",
    "RateLimited",
    "Setting",
    "StreamEvent",
    "TextPart",
    "TokenAlternatives",
    "Usage",
    "UsageError",
]
