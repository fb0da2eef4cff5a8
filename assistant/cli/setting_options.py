"""Command-line options for the generation settings, made from their declaration.

Each setting in ``backends.settings.SETTINGS`` becomes one click option with the
flags, type and help it declares; values are checked once, by :class:`ParamOverrides`,
so the command line reports the same one-line problems as templates and the API.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click

from backends.settings import SETTINGS, ParamOverrides, Setting

F = TypeVar("F", bound=Callable[..., Any])


def setting_option(spec: Setting) -> Callable[[F], F]:
    """The click option for one setting; its value arrives under the setting's name."""
    if spec.kind is bool:  # a switch: --real-words/--no-real-words, unset when neither is given
        on, off = spec.flags
        return click.option(f"{on}/{off}", spec.name, default=None, help=spec.explained)
    kind = click.INT if spec.kind is int else click.FLOAT if spec.kind is float else click.STRING
    if spec.mapping:  # PHRASE=WEIGHT, read by the setting itself
        kind = click.STRING
    help_text = spec.explained + (" Repeatable." if spec.many else "")
    return click.option(*spec.flags, spec.name, type=kind, multiple=spec.many, default=None, help=help_text)


def setting_options(command: F) -> F:
    """Add an option for every generation setting, in the declared order."""
    for spec in reversed(SETTINGS):  # click lists decorators from the top down
        command = setting_option(spec)(command)
    return command


def overrides_from_options(options: Mapping[str, Any]) -> ParamOverrides:
    """The settings given on the command line (a repeatable option not given is unset).

    Raises:
        InvalidParameters: a value out of range, naming the setting.
    """
    given = {spec.name: options.get(spec.name) for spec in SETTINGS}
    return ParamOverrides({name: value if value != () else None for name, value in given.items()})
