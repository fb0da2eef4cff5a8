"""The templates a writer can use by name: the built-ins in ``prompts/``, overridden by their own files."""

from __future__ import annotations

from pathlib import Path

from assistant import paths
from assistant.errors import TemplateError
from assistant.templates.common import NAME_PATTERN, did_you_mean
from assistant.templates.files import load_template_file
from assistant.templates.model import Template


def builtin_templates_dir() -> Path:
    """The folder of the built-in templates (the installed ``prompts`` package)."""
    import prompts

    return Path(prompts.__file__).resolve().parent


class TemplateLibrary:
    """The templates a writer can use by name: built-ins, overridden by their own files.

    Attributes:
        user_dir: The writer's templates folder (``paths.templates_dir()`` by default).
        builtin_dir: The built-in templates folder.
        errors: The problems of files that :meth:`list` had to skip.
    """

    def __init__(self, user_dir: Path | None = None, builtin_dir: Path | None = None) -> None:
        self.user_dir = Path(user_dir) if user_dir is not None else paths.templates_dir()
        self.builtin_dir = Path(builtin_dir) if builtin_dir is not None else builtin_templates_dir()
        self.errors: list[TemplateError] = []

    @staticmethod
    def _files(folder: Path) -> dict[str, Path]:
        if not folder.is_dir():
            return {}
        return {p.stem: p for p in sorted(folder.glob("*.toml")) if p.is_file() and not p.name.startswith(".")}

    def names(self) -> list[str]:
        """Every template name (without loading the files), sorted."""
        return sorted(set(self._files(self.builtin_dir)) | set(self._files(self.user_dir)))

    def list(self) -> list[Template]:
        """Every usable template, sorted by name; broken files go to :attr:`errors`."""
        self.errors = []
        builtins = self._files(self.builtin_dir)
        found: dict[str, Template] = {}
        for name, path in builtins.items():
            try:
                found[name] = load_template_file(path, "builtin")
            except TemplateError as error:
                self.errors.append(error)
        for name, path in self._files(self.user_dir).items():
            try:
                template = load_template_file(path, "user")
            except TemplateError as error:
                self.errors.append(error)
                found.pop(name, None)  # `run NAME` would fail too: don't pretend the built-in is used
                continue
            found[name] = template.model_copy(update={"overrides_builtin": name in builtins})
        return [found[name] for name in sorted(found)]

    def get(self, name: str) -> Template:
        """The template called ``name``: the writer's own file first, then the built-in."""
        if NAME_PATTERN.fullmatch(name):
            user = self.user_dir / f"{name}.toml"
            builtin = self.builtin_dir / f"{name}.toml"
            if user.is_file():
                template = load_template_file(user, "user")
                return template.model_copy(update={"overrides_builtin": builtin.is_file()})
            if builtin.is_file():
                return load_template_file(builtin, "builtin")
        if name.endswith(".toml") or "/" in name or "\\" in name:
            raise TemplateError(
                f"Unknown template '{name}'.", "To use a template file by its path, pass --template-file PATH."
            )
        raise TemplateError(
            f"Unknown template '{name}'.{did_you_mean(name, self.names())}", "See `quillmate templates list`."
        )

    def load_file(self, path: Path) -> Template:
        """A template from any file (``--template-file PATH``)."""
        return load_template_file(Path(path).expanduser(), "file")
