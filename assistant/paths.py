"""Where quillmate keeps its files: one place, one override.

``QUILLMATE_HOME`` relocates everything (config, templates, keys, sessions) under
one folder, for tests and for writers who keep their tools in one place.
Otherwise the platform's usual folders are used (platformdirs). Nothing here
touches the disk until a folder is asked for with ``ensure_dir``.
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "quillmate"
HOME_ENV = "QUILLMATE_HOME"


def _home() -> Path | None:
    value = os.environ.get(HOME_ENV, "").strip()
    return Path(value).expanduser() if value else None


def config_dir() -> Path:
    """Folder of ``config.toml``, user templates and key files."""
    home = _home()
    if home is not None:
        return home / "config"
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def data_dir() -> Path:
    """Folder of the sessions database and other saved work."""
    home = _home()
    if home is not None:
        return home / "data"
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def config_file() -> Path:
    """The config file (``QUILLMATE_CONFIG`` names another one)."""
    override = os.environ.get("QUILLMATE_CONFIG", "").strip()
    return Path(override).expanduser() if override else config_dir() / "config.toml"


def templates_dir() -> Path:
    """The writer's own templates; a file here overrides a built-in of the same name."""
    return config_dir() / "templates"


def keys_dir() -> Path:
    """Key files, each written 0600 inside a 0700 folder."""
    return config_dir() / "keys"


def sessions_db() -> Path:
    """The SQLite database of co-writing sessions."""
    return data_dir() / "sessions.db"


def models_dir() -> Path:
    """Models tuned on the writer's own texts, one folder each (``quillmate tune``)."""
    return data_dir() / "models"


def ensure_dir(path: Path) -> Path:
    """Create ``path`` and any missing parents private to the user: 0700 from the start."""
    for folder in [*reversed(path.parents), path]:
        if not folder.exists():
            folder.mkdir(mode=0o700, exist_ok=True)
            folder.chmod(0o700)  # mkdir's mode is filtered by the umask
    return path
