"""quillmate's settings: backend profiles and generation defaults, from one TOML file.

The file lives at ``paths.config_file()``. Without one, two profiles exist:
``local`` (the GPT-2 backend; GPT-2 from the Hugging Face cache, else the
bundled offline model) and ``openai``. ``QUILLMATE_BACKEND`` picks the default
profile for one run. Example::

    default_backend = "local"

    [backends.local]
    kind = "gpt2"
    model = "auto"        # "gpt2", "distilgpt2", "gpt2-medium", a folder, or "bundled"
    device = "auto"       # auto, cpu, cuda, mps
    dtype = "auto"        # auto, float32, float16, bfloat16, int8 (CPU only)

    [backends.openai]
    kind = "openai"
    model = "gpt-4o-mini"

    [backends.llama]      # llama.cpp's server (or vLLM): an OpenAI-compatible one
    kind = "openai"
    base_url = "http://127.0.0.1:8080/v1"
    model = "model.gguf"
    mode = "completion"   # a base model; the context window is asked of the server
    extra_samplers = ["top_k", "min_p", "repetition_penalty"]   # samplers it takes beyond OpenAI's
    # context_window = 4096   # only for a server that does not say

    [defaults]            # generation defaults for every template
    temperature = 0.8
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant import paths
from backends.base import GenerationParams
from backends.errors import ConfigError, UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

BACKEND_ENV = "QUILLMATE_BACKEND"

DEFAULT_PROFILES: dict[str, dict[str, Any]] = {
    "local": {"kind": "gpt2", "model": "auto", "device": "auto", "dtype": "auto"},
    "openai": {"kind": "openai", "model": "gpt-4o-mini"},
}


@dataclass(frozen=True)
class Profile:
    """A named backend configuration: its kind and the kind's own settings."""

    name: str
    kind: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def takes_dtype(self) -> bool:
        """True for a local model's profile: the number type of its weights (``dtype``) can be chosen."""
        return self.kind == "gpt2"


@dataclass(frozen=True)
class Config:
    """Everything read from the config file, with defaults filled in."""

    default_backend: str = "local"
    profiles: dict[str, Profile] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def profile(self, name: str | None = None) -> Profile:
        """The named profile, or the default one.

        Raises:
            ConfigError: for an unknown name, listing the known ones.
        """
        chosen = name or self.default_backend
        if chosen not in self.profiles:
            known = ", ".join(sorted(self.profiles))
            raise ConfigError(f"Unknown backend '{chosen}'.", f"Configured backends: {known}.")
        return self.profiles[chosen]

    def generation_defaults(self) -> GenerationParams:
        """The ``[defaults]`` table as validated generation parameters."""
        return GenerationParams().with_overrides(**self.defaults)


def load_config(path: Path | None = None) -> Config:
    """Read the config file (if any) and apply environment overrides.

    Raises:
        ConfigError: when the file is not valid TOML or has wrong settings (names file and line).
    """
    path = path or paths.config_file()
    data: dict[str, Any] = {}
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: {error}.", "Fix the file, or move it aside to use the defaults.") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path} is not valid UTF-8 text.") from None
    unknown = set(data) - {"default_backend", "backends", "defaults"}
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting(s) {', '.join(sorted(unknown))}.",
            "Top-level settings are default_backend, [backends.NAME] and [defaults].",
        )
    raw_profiles = {name: dict(opts) for name, opts in DEFAULT_PROFILES.items()}
    from assistant.tuning.models import tuned_profiles

    for name, options in tuned_profiles().items():  # models tuned with `quillmate tune`
        raw_profiles.setdefault(name, options)
    for name, options in (data.get("backends") or {}).items():
        if not isinstance(options, dict):
            raise ConfigError(f"{path}: [backends.{name}] must be a table.")
        base = raw_profiles.get(name, {})
        same_kind = options.get("kind") in (None, base.get("kind"))
        merged = {**base, **options} if same_kind else dict(options)
        if "kind" not in merged:
            raise ConfigError(f"{path}: [backends.{name}] needs a kind (gpt2 or openai).")
        raw_profiles[name] = merged
    profiles = {
        name: Profile(name, str(opts["kind"]), {k: v for k, v in opts.items() if k != "kind"})
        for name, opts in raw_profiles.items()
    }
    default_backend = os.environ.get(BACKEND_ENV, "").strip() or str(data.get("default_backend", "local"))
    defaults = dict(data.get("defaults") or {})
    config = Config(default_backend, profiles, defaults, path)
    config.profile()  # an unknown default is reported now, not halfway through a run
    try:
        config.generation_defaults()
    except UsageError as error:
        raise ConfigError(f"{path} [defaults]: {error.message}", error.hint) from None
    return config
