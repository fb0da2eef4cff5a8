"""quillmate's core: templates, parameters, sessions and the Python API.

    from assistant import Assistant
    print(Assistant().run("poem", topic="the sea at night").text)

Names are imported on first use, so ``import assistant`` (and the CLI's start-up)
stays fast and never loads torch, transformers or openai.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from backends import credentials as _credentials

_EXPORTS: dict[str, str] = {
    "Assistant": "assistant.core",
    "Prepared": "assistant.core",
    "collect": "assistant.core",
    "Config": "assistant.config",
    "DTYPES": "backends.gpt2",
    "Profile": "assistant.config",
    "load_config": "assistant.config",
    "Template": "assistant.templates",
    "TemplateLibrary": "assistant.templates",
    "RenderedPrompt": "assistant.templates",
    "Backend": "backends.base",
    "ChatMessage": "backends.base",
    "Delta": "backends.base",
    "GenerationParams": "backends.base",
    "GenerationRequest": "backends.base",
    "GenerationResult": "backends.base",
    "ParamOverrides": "backends.settings",
    "SETTINGS": "backends.settings",
    "Setting": "backends.settings",
    "Notice": "backends.base",
    "TextPart": "backends.base",
    "TokenAlternatives": "backends.base",
    "Usage": "backends.base",
    "QuillmateError": "assistant.errors",
    "UsageError": "assistant.errors",
    "TemplateError": "assistant.errors",
    "BackendError": "assistant.errors",
    "ConfigError": "assistant.errors",
    "InvalidParameters": "assistant.errors",
    "ModelNotFound": "assistant.errors",
    "ContextOverflow": "assistant.errors",
    "check_form": "assistant.forms",
    "FormReport": "assistant.forms",
    "FormSpec": "assistant.forms",
}

__all__ = [
    "DTYPES",
    "SETTINGS",
    "Assistant",
    "Backend",
    "BackendError",
    "ChatMessage",
    "Config",
    "ConfigError",
    "ContextOverflow",
    "Delta",
    "FormReport",
    "FormSpec",
    "GenerationParams",
    "GenerationRequest",
    "GenerationResult",
    "InvalidParameters",
    "ModelNotFound",
    "Notice",
    "ParamOverrides",
    "Prepared",
    "Profile",
    "QuillmateError",
    "RenderedPrompt",
    "Setting",
    "Template",
    "TemplateError",
    "TemplateLibrary",
    "TextPart",
    "TokenAlternatives",
    "Usage",
    "UsageError",
    "check_form",
    "collect",
    "load_config",
]

if TYPE_CHECKING:  # pragma: no cover
    from assistant.config import Config, Profile, load_config
    from assistant.core import Assistant, Prepared, collect
    from assistant.errors import (
        BackendError,
        ConfigError,
        ContextOverflow,
        InvalidParameters,
        ModelNotFound,
        QuillmateError,
        TemplateError,
        UsageError,
    )
    from assistant.forms import FormReport, FormSpec, check_form
    from assistant.templates import RenderedPrompt, Template, TemplateLibrary
    from backends.base import (
        Backend,
        ChatMessage,
        Delta,
        GenerationParams,
        GenerationRequest,
        GenerationResult,
        Notice,
        TextPart,
        TokenAlternatives,
        Usage,
    )
    from backends.gpt2 import DTYPES
    from backends.settings import SETTINGS, ParamOverrides, Setting


def _stored_key(name: str) -> Any:
    from assistant.keys import stored_secret

    return stored_secret(name)


# Backends never import the core; they find keys saved with `quillmate keys set` through this store.
_credentials.use_key_store(_stored_key)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'assistant' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
