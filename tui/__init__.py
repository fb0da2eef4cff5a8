"""The writing app (``quillmate write``): a Textual co-writing editor.

It reaches models only through :class:`assistant.Assistant` and keeps the draft in
an :mod:`assistant.sessions` session. Build it with :func:`tui.app.make_app`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["make_app"]


def make_app(*args: Any, **kwargs: Any) -> Any:
    """Build the writing app (see :func:`tui.app.make_app`); imports Textual on first use."""
    from tui.app import make_app as _make_app

    return _make_app(*args, **kwargs)
