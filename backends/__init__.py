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

__all__ = [
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
    "QuillmateError",
    "RateLimited",
    "StreamEvent",
    "TextPart",
    "Usage",
    "UsageError",
]
