"""Build backends by kind name.

Built-in kinds are registered the same way a plugin would register its own: a
``"module:Class"`` string, imported only when a backend of that kind is made.
Third-party packages can add kinds through the ``quillmate.backends`` entry-point
group.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Mapping
from importlib import metadata
from typing import Any

from backends.base import Backend
from backends.errors import ConfigError

ENTRY_POINT_GROUP = "quillmate.backends"

_KINDS: dict[str, str] = {
    "gpt2": "backends.gpt2:GPT2Backend",
    "openai": "backends.openai_backend:OpenAIBackend",
}


def register(kind: str, target: str) -> None:
    """Register a backend class, given as ``"package.module:ClassName"``."""
    _KINDS[kind] = target


def kinds() -> list[str]:
    """Every known backend kind, built-in and from plugins."""
    names = set(_KINDS)
    with contextlib.suppress(Exception):  # a broken plugin must not hide the built-ins
        names |= {ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(names)


def backend_class(kind: str) -> type[Backend]:
    """The class registered for ``kind``.

    Raises:
        ConfigError: for an unknown kind, listing the known ones.
    """
    target = _KINDS.get(kind)
    if target is None:
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name == kind:
                return ep.load()
        raise ConfigError(
            f"Unknown backend kind '{kind}'.",
            f"Known kinds: {', '.join(kinds())}.",
        )
    module_name, class_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise ConfigError(
            f"The '{kind}' backend needs a package that is not installed ({error.name}).",
            f"Install it with `pip install {error.name}`.",
        ) from None
    return getattr(module, class_name)


def create_backend(name: str, kind: str, options: Mapping[str, Any] | None = None) -> Backend:
    """Make a backend called ``name`` of ``kind`` from a profile's options.

    Raises:
        ConfigError: for an unknown kind or an option the backend does not know.
    """
    cls = backend_class(kind)
    from_options = getattr(cls, "from_options", None)
    if from_options is not None:
        return from_options(name, dict(options or {}))
    try:
        return cls(name, **dict(options or {}))
    except TypeError as error:
        raise ConfigError(f"Backend profile '{name}': {error}.") from None
