"""A scripted backend whose load imports generated modules in a thread, as loading torch does."""

from __future__ import annotations

import asyncio
import importlib
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

from tests.support.scripted_backend import ScriptedBackend


class ImportingBackend(ScriptedBackend):
    """Its load imports ``count`` modules of ``source``, written to ``folder``; ``imported`` counts them.

    ``loading`` is true while the imports run.
    """

    def __init__(self, folder: Path, kind: str, source: str, count: int) -> None:
        super().__init__("local")
        self.names: list[str] = []
        self.imported = 0
        self.loading = False
        tag = uuid.uuid4().hex[:8]
        for i in range(count):
            name = f"qm_{kind}_{tag}_{i}"
            (folder / f"{name}.py").write_text(source, encoding="utf-8")
            self.names.append(name)

    def _import_all(self) -> None:
        self.loading = True
        try:
            for name in self.names:
                importlib.import_module(name)
                self.imported += 1
        finally:
            self.loading = False

    async def load(self) -> None:
        await asyncio.to_thread(self._import_all)
        self.loaded = True


def importing_backend(folder: Path, kind: str, source: str, count: int) -> Iterator[ImportingBackend]:
    """For a fixture: the backend with ``folder`` importable, and its modules forgotten afterwards."""
    folder.mkdir()
    sys.path.insert(0, str(folder))
    made = ImportingBackend(folder, kind, source, count)
    yield made
    sys.path.remove(str(folder))
    for name in made.names:
        sys.modules.pop(name, None)
