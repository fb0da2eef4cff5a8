"""Shaping the writer's text into training documents and splitting off the held-out ones.

Each file becomes ``Story: {title}`` documents of whole paragraphs, about 2,000 characters
each: the shape the ``continue`` template's completion prompt uses, and the one the bundled
model was trained on, so a tuned model carries on a story the way it learnt to.

The text is never held whole: a first pass reads each file once to count its documents
and hash it, and the training and held-out streams read the files again, one at a time.
Every tenth document (at least one) is held out and never trained on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from assistant.tuning.sources import Skipped, Unreadable, collect_files, read_source, sha256_of
from backends.errors import UsageError

DOC_CHARS = 2000
HELDOUT_EVERY = 10
MIN_CHARS = 400
FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n", re.S)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


@dataclass(frozen=True)
class SourceFile:
    """A file that will be learnt from: named and hashed in the model card, its text never kept."""

    path: Path
    sha256: str
    characters: int
    documents: int
    title: str


@dataclass
class Manuscript:
    """The writer's files, surveyed: which are used, which were skipped, how the split falls."""

    sources: list[SourceFile]
    skipped: list[Skipped]
    heldout: set[int] = field(default_factory=set)
    """Indices (over every document of every source, in order) that are held out."""
    sample_prompt: str = ""

    @property
    def documents(self) -> int:
        """How many documents in all."""
        return sum(s.documents for s in self.sources)

    @property
    def characters(self) -> int:
        """How many characters in all."""
        return sum(s.characters for s in self.sources)

    def train_documents(self) -> Iterator[str]:
        """The training documents, read from disk as they are needed."""
        return self._documents(lambda index: index not in self.heldout)

    def heldout_documents(self) -> Iterator[str]:
        """The held-out documents, read from disk as they are needed."""
        return self._documents(lambda index: index in self.heldout)

    def _documents(self, keep: Callable[[int], bool]) -> Iterator[str]:
        index = 0
        for source in self.sources:
            for document in shape(source.title, read_source(source.path)):
                if keep(index):
                    yield document
                index += 1


def title_of(path: Path, text: str) -> str:
    """The first Markdown heading, else the file name made readable."""
    if path.suffix.lower() in (".md", ".markdown"):
        found = HEADING.search(text[:5000])
        if found:
            return found.group(1).strip()
    words = re.sub(r"[_-]+", " ", path.stem).strip()
    return words[:1].upper() + words[1:] if words else "Untitled"


def shape(title: str, text: str, size: int = DOC_CHARS) -> Iterator[str]:
    """``Story: {title}`` documents of whole paragraphs, about ``size`` characters each."""
    text = FRONT_MATTER.sub("", text)
    paragraphs = [p.strip("\n") for p in re.split(r"\n\s*\n", text) if p.strip()]
    chunk: list[str] = []
    length = 0
    for paragraph in paragraphs:
        if chunk and length + len(paragraph) > size:
            yield f"Story: {title}\n\n" + "\n\n".join(chunk)
            chunk, length = [], 0
        chunk.append(paragraph)
        length += len(paragraph) + 2
    if chunk:
        yield f"Story: {title}\n\n" + "\n\n".join(chunk)


def survey(paths: list[Path], on_skip: Callable[[Skipped], None] | None = None) -> Manuscript:
    """Read every file once: hash it, count its documents, choose the held-out ones.

    Args:
        paths: Files and folders the writer named.
        on_skip: Told about each file left out, as soon as it is.

    Raises:
        UsageError: when no file can be used, or there is too little text to split.
    """
    files, skipped = collect_files(paths)
    for item in skipped:
        if on_skip:
            on_skip(item)
    sources: list[SourceFile] = []
    for path in files:
        try:
            text = read_source(path)
        except Unreadable as why:
            item = Skipped(path, str(why))
            skipped.append(item)
            if on_skip:
                on_skip(item)
            continue
        title = title_of(path, text)
        documents = sum(1 for _ in shape(title, text))
        sources.append(SourceFile(path, sha256_of(path), len(text), documents, title))
    if not sources:
        raise UsageError(
            "None of the files given can be used to tune a model.",
            "Give quillmate .txt or .md files (or folders holding them) with your own writing.",
        )
    manuscript = Manuscript(sources, skipped)
    total = manuscript.documents
    if total < 2 or manuscript.characters < MIN_CHARS:
        raise UsageError(
            f"There is too little text to tune on ({manuscript.characters:,} characters).",
            "Give quillmate at least a few pages, so that some can be kept aside to measure what it learnt.",
        )
    heldout = set(range(HELDOUT_EVERY - 1, total, HELDOUT_EVERY)) or {total - 1}
    manuscript.heldout = heldout
    manuscript.sample_prompt = _prompt_from(next(manuscript.heldout_documents()))
    return manuscript


def _prompt_from(document: str, words: int = 12) -> str:
    """The heading and first words of a held-out document: the same prompt before and after."""
    head, _, body = document.partition("\n\n")
    opening = " ".join(body.split()[:words])
    return f"{head}\n\n{opening}"
