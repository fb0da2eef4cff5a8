"""Generation settings, each declared once.

A setting is one field of :class:`GenerationParams`: the annotation gives its name
and type, :func:`setting` its default, range, label, help text and command-line
flags. Everything else derives from that declaration:

- :meth:`GenerationParams.validated` and :class:`ParamOverrides` check values with it;
- the ``quillmate run`` options (``assistant/cli/setting_options.py``);
- the Settings tab of the writing app (``tui/widgets/panels/settings.py``);
- the HTTP server's request checks (``assistant/server/schemas.py``);
- template ``[params]`` checks, through :func:`validate_setting` and
  :func:`combination_problems`.

Settings reach a backend in layers, weakest first: the config's ``[defaults]``, the
template's ``[params]``, the session's settings, then the command line or the request.
Each layer above the defaults is a :class:`ParamOverrides`, where a setting left out
is unset; nothing is ever inferred from a value being equal to its default.

Nothing here imports torch, transformers or openai.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

from backends.errors import InvalidParameters

_PROBLEMS_PREFIX = "Invalid generation settings: "


def setting(
    default: Any,
    *,
    label: str,
    help: str,
    flags: tuple[str, ...],
    minimum: float | None = None,
    maximum: float | None = None,
    above: bool = False,
    off: float | None = None,
    unset: str = "",
    called: str = "",
) -> Any:
    """Declare a field of :class:`GenerationParams` as a setting (see :class:`Setting`)."""
    details = {
        "label": label,
        "help": help,
        "flags": flags,
        "minimum": minimum,
        "maximum": maximum,
        "above": above,
        "off": off,
        "unset": unset,
        "called": called,
    }
    return field(default=default, metadata={"setting": details})


@dataclass(frozen=True, kw_only=True)
class GenerationParams:
    """How to generate: a complete set of settings. ``temperature=0`` means greedy decoding.

    Each field's meaning is in its ``help`` below (and in ``SETTING[name].help``).
    Build one with keywords; check it with :meth:`validated`.
    """

    temperature: float = setting(
        0.8,
        label="Temperature",
        flags=("--temperature", "-t"),
        minimum=0,
        maximum=2,
        help="0 = always the most likely words; higher = more surprising.",
    )
    top_p: float = setting(
        1.0,
        label="Top-p",
        flags=("--top-p",),
        minimum=0,
        above=True,
        maximum=1,
        off=1,
        help="Sample from the likeliest words whose chances add up to this share.",
    )
    top_k: int = setting(
        0,
        label="Top-k",
        flags=("--top-k",),
        minimum=0,
        off=0,
        help="Sample only from the k likeliest words.",
    )
    num_alternatives: int = setting(
        1,
        label="Alternatives (n)",
        flags=("-n", "--alternatives"),
        minimum=1,
        called="n (num_alternatives)",
        help="How many alternatives to write.",
    )
    max_new_tokens: int = setting(
        200,
        label="Max tokens",
        flags=("--max-tokens",),
        minimum=1,
        help="The longest each alternative may be, in tokens.",
    )
    num_beams: int = setting(
        1,
        label="Beams",
        flags=("--num-beams",),
        minimum=1,
        off=1,
        help="Beam search: keep this many most likely drafts at each step.",
    )
    repetition_penalty: float = setting(
        1.0,
        label="Repetition penalty",
        flags=("--repetition-penalty",),
        minimum=0,
        above=True,
        off=1,
        help="Above 1 discourages repeating words.",
    )
    seed: int | None = setting(
        None,
        label="Seed",
        flags=("--seed",),
        minimum=0,
        unset="random",
        help="Makes sampling reproducible on the same backend and machine.",
    )
    max_lines: int | None = setting(
        None,
        label="Max lines",
        flags=("--max-lines",),
        minimum=1,
        unset="no limit",
        help="End each alternative after this many lines (blank lines don't count).",
    )
    logprobs: int = setting(
        0,
        label="Word alternatives",
        flags=("--logprobs",),
        minimum=0,
        maximum=20,
        off=0,
        called="logprobs (word alternatives)",
        help="Also report, at each word written, this many words the model almost chose, with their chances.",
    )
    real_words: bool = setting(
        False,
        label="Real words only",
        flags=("--real-words", "--no-real-words"),
        help="Local models: only write words the dictionary knows (keeps small models from inventing words).",
    )
    stop: tuple[str, ...] = setting(
        (),
        label="Stop at",
        flags=("--stop",),
        called="stop sequences",
        help="Stop writing where this text would appear; the text itself is left out.",
    )
    ban: tuple[str, ...] = setting(
        (),
        label="Banned phrases",
        flags=("--ban",),
        called="banned phrases",
        help="Never write this phrase, in any capitalisation, as whole words.",
    )
    use_words: tuple[str, ...] = setting(
        (),
        label="Words to use",
        flags=("--use-word",),
        called="words to use",
        help="Nudge a local model to work in this word once (other backends leave it to the prompt).",
    )
    bias: tuple[tuple[str, float], ...] = setting(
        (),
        label="Phrase bias",
        flags=("--bias",),
        minimum=-100,
        maximum=100,
        called="phrase bias",
        help="Make a phrase likelier (positive weight) or rarer (negative), as PHRASE=WEIGHT.",
    )

    def __post_init__(self) -> None:
        for spec in SETTINGS:
            value = getattr(self, spec.name)
            normal = spec.normalise(value)
            if normal is not value:
                object.__setattr__(self, spec.name, normal)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The names of all settings."""
        return SETTING_NAMES

    def with_overrides(self, **overrides: Any) -> GenerationParams:
        """A copy with the given non-None values replaced, validated."""
        return ParamOverrides(overrides).apply(self)

    def validated(self) -> GenerationParams:
        """Return self after checking every value; raise InvalidParameters otherwise."""
        values = {spec.name: getattr(self, spec.name) for spec in SETTINGS}
        problems = [p for spec in SETTINGS if (p := spec.problem(values[spec.name]))]
        _raise_problems(problems + combination_problems(values))
        return self

    @property
    def greedy(self) -> bool:
        """True when decoding picks the most likely token (temperature 0)."""
        return self.temperature == 0


@dataclass(frozen=True)
class Setting:
    """One generation setting as declared on :class:`GenerationParams`.

    Attributes:
        name: The field name, used in templates, the config, sessions and messages.
        kind: ``int``, ``float``, ``bool`` or ``str`` (the type of each item when ``many``).
        default: The value when no layer sets it.
        label: The words the writing app shows beside it.
        help: One or two plain sentences for writers.
        flags: The ``quillmate run`` flags, long and short; for a switch (``bool``), the one
            that turns it on and the one that turns it off.
        minimum: The smallest value allowed (numbers only).
        maximum: The largest value allowed (numbers only).
        above: True when ``minimum`` itself is not allowed.
        off: The value that turns the setting off, if there is one.
        optional: None is a valid value (unset: random seed, no line limit).
        many: A sequence of values (stop sequences), repeatable on the command line.
        mapping: With ``many``: phrases with a number each (``kind`` is the number's type),
            held as ``(phrase, number)`` pairs, written ``PHRASE=NUMBER`` on the command line.
        unset: What None means, shown in an empty box (``random``).
        called: How error messages name it, when not by ``name``.
    """

    name: str
    kind: type
    default: Any
    label: str
    help: str
    flags: tuple[str, ...]
    minimum: float | None = None
    maximum: float | None = None
    above: bool = False
    off: float | None = None
    optional: bool = False
    many: bool = False
    mapping: bool = False
    unset: str = ""
    called: str = ""

    @property
    def requirement(self) -> str:
        """What a valid value is, as the end of "… must be": ``from 0 to 2``."""
        if self.mapping:
            return f"phrases with weights, as PHRASE=WEIGHT with a weight {self._bounds()}"
        if self.many:
            return "a list of non-empty strings"
        if self.kind is bool:
            return "true or false"
        bounds = self._bounds()
        if self.kind is int:
            return f"a whole number {bounds}" if bounds.startswith("from") else f"a whole number of {bounds}"
        return bounds

    @property
    def explained(self) -> str:
        """The help text with the allowed values, for help screens and tooltips."""
        if self.mapping:
            return f"{self.help} (Weights {self._bounds()}.)"
        if self.many or self.kind is bool:
            return self.help
        allowed = self.requirement
        if self.off is not None:
            allowed += f"; {_number(self.off)} = off"
        if self.optional and self.unset:
            allowed += f"; not set: {self.unset}"
        return f"{self.help} ({allowed[0].upper()}{allowed[1:]}.)"

    def _bounds(self) -> str:
        low, high = self.minimum, self.maximum
        if low is None and high is None:
            return "any number" if self.kind is float else "any size"
        if low is None:
            return f"at most {_number(high)}"
        if high is None:
            if self.above:
                return f"above {_number(low)}"
            return "0 or more" if low == 0 else f"at least {_number(low)}"
        if self.above:
            return f"above {_number(low)} and at most {_number(high)}"
        return f"from {_number(low)} to {_number(high)}"

    def normalise(self, value: Any) -> Any:
        """The value in this setting's usual form: stop sequences as a tuple (one text alone
        counts as one sequence). Anything else is returned as given, for :meth:`problem` to judge."""
        if self.mapping:
            return _pairs(value)
        if self.many:
            if isinstance(value, str):
                return (value,)
            if isinstance(value, list):
                return tuple(value)
        return value

    def accepts(self, value: Any) -> bool:
        """True when ``value`` (normalised) is valid for this setting."""
        value = self.normalise(value)
        if value is None:
            return self.optional
        if self.mapping:
            return isinstance(value, tuple) and all(
                isinstance(pair, tuple)
                and len(pair) == 2
                and isinstance(pair[0], str)
                and pair[0].strip()
                and self._number_ok(pair[1])
                for pair in value
            )
        if self.many:
            return isinstance(value, tuple) and all(isinstance(item, str) and item for item in value)
        if self.kind is bool:
            return isinstance(value, bool)
        return self._number_ok(value)

    def _number_ok(self, value: Any) -> bool:
        if self.kind is int:
            if not isinstance(value, int) or isinstance(value, bool):
                return False
        elif not _is_number(value):
            return False
        if self.minimum is not None and (value <= self.minimum if self.above else value < self.minimum):
            return False
        return self.maximum is None or value <= self.maximum

    def problem(self, value: Any, *, called: str = "") -> str | None:
        """What is wrong with ``value``, as one phrase naming the setting, or None when it is fine.

        Args:
            value: The value to check.
            called: How to name the setting (the server uses its request field name).
        """
        if self.accepts(value):
            return None
        return f"{called or self.called or self.name} must be {self.requirement} (got {value!r})"


def _pairs(value: Any) -> Any:
    """Phrase weights as a tuple of ``(phrase, weight)`` pairs, from a mapping, pairs, or
    ``PHRASE=WEIGHT`` texts (the last ``=`` splits, so a phrase may hold one). Anything
    that cannot be read is returned as given, for :meth:`Setting.problem` to name."""
    if isinstance(value, Mapping):
        value = tuple(value.items())
    elif isinstance(value, str):
        value = (value,)
    if not isinstance(value, list | tuple):
        return value
    pairs: list[Any] = []
    for item in value:
        if isinstance(item, str) and "=" in item:
            phrase, _, weight = item.rpartition("=")
            try:
                pairs.append((phrase, float(weight)))
            except ValueError:
                return value
        elif isinstance(item, list | tuple) and len(item) == 2:
            pairs.append(tuple(item))
        else:
            return value
    return tuple(pairs)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _number(value: float | None) -> str:
    return f"{value:g}"


def _declared() -> tuple[Setting, ...]:
    hints = get_type_hints(GenerationParams)
    result = []
    for item in fields(GenerationParams):
        hint = hints[item.name]
        args = get_args(hint)
        optional = (get_origin(hint) in (Union, UnionType)) and NoneType in args
        if optional:
            hint = next(arg for arg in args if arg is not NoneType)
        many = get_origin(hint) is tuple
        kind = get_args(hint)[0] if many else hint
        mapping = get_origin(kind) is tuple  # tuple[tuple[str, float], ...]: phrases with numbers
        if mapping:
            kind = get_args(kind)[1]
        result.append(
            Setting(
                item.name, kind, item.default, optional=optional, many=many, mapping=mapping, **item.metadata["setting"]
            )
        )
    return tuple(result)


SETTINGS: tuple[Setting, ...] = _declared()
"""Every generation setting, in the order front ends show them."""

SETTING: Mapping[str, Setting] = {spec.name: spec for spec in SETTINGS}
"""The settings by name."""

SETTING_NAMES: tuple[str, ...] = tuple(SETTING)
"""The names of every setting (what a template's ``[params]`` may hold)."""


def validate_setting(name: str, value: Any) -> str | None:
    """What is wrong with ``value`` for the setting ``name``, or None when it is fine.

    The problem is one phrase without a final full stop, naming the setting:
    ``top_p must be above 0 and at most 1 (got 2)``. An unknown name is a problem too.
    """
    spec = SETTING.get(name)
    if spec is None:
        return f"unknown setting '{name}' (known settings: {', '.join(SETTING_NAMES)})"
    return spec.problem(value)


def combination_problems(values: Mapping[str, Any]) -> list[str]:
    """Problems between settings that are each valid on their own.

    Settings missing from ``values`` count as their defaults; settings with invalid
    values are left to :func:`validate_setting`.
    """

    def valid(name: str) -> Any:
        value = values.get(name, SETTING[name].default)
        return value if SETTING[name].accepts(value) else None

    problems = []
    alternatives, beams = valid("num_alternatives"), valid("num_beams")
    if alternatives is not None and beams is not None and alternatives > beams > 1:
        problems.append(f"with beam search, n ({alternatives}) cannot exceed num_beams ({beams})")
    return problems


def _raise_problems(problems: list[str]) -> None:
    if problems:
        raise InvalidParameters(_PROBLEMS_PREFIX + "; ".join(problems) + ".")


class ParamOverrides(Mapping[str, Any]):
    """The settings one layer sets (template, session, command line, request).

    A setting that is left out, or given as None, is unset: the layers below decide it.
    Values are checked when the layer is made; settings that clash with each other
    are found when the layers are applied. Layers merge with ``|``, the right one winning::

        layers = ParamOverrides(template.params) | ParamOverrides(temperature=0.8)
        params = layers.apply(config.generation_defaults())

    Raises:
        InvalidParameters: for an unknown name or a value out of range (all in one line).
    """

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any] | None = None, /, **more: Any) -> None:
        given = {**(values or {}), **more}
        unknown = sorted(set(given) - set(SETTING_NAMES))
        if unknown:
            raise InvalidParameters(
                f"Unknown generation setting: {', '.join(unknown)}.", f"Known settings: {', '.join(SETTING_NAMES)}."
            )
        chosen = {name: SETTING[name].normalise(value) for name, value in given.items() if value is not None}
        _raise_problems([p for name in chosen if (p := SETTING[name].problem(given[name]))])
        self._values: dict[str, Any] = {name: chosen[name] for name in SETTING_NAMES if name in chosen}

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        inside = ", ".join(f"{name}={value!r}" for name, value in self._values.items())
        return f"ParamOverrides({inside})"

    def __or__(self, later: Mapping[str, Any] | None) -> ParamOverrides:
        """These settings, with those ``later`` sets replacing them."""
        if not later:
            return self
        top = later if isinstance(later, ParamOverrides) else ParamOverrides(later)
        merged = ParamOverrides()
        merged._values = {
            name: value
            for name in SETTING_NAMES
            if (value := top._values.get(name, self._values.get(name))) is not None
        }
        return merged

    def apply(self, params: GenerationParams) -> GenerationParams:
        """``params`` with these settings replacing its own, validated as a whole."""
        return replace(params, **self._values).validated()


__all__ = [
    "SETTING",
    "SETTINGS",
    "SETTING_NAMES",
    "GenerationParams",
    "ParamOverrides",
    "Setting",
    "combination_problems",
    "setting",
    "validate_setting",
]
