"""Reading the writer's files: plain text and Markdown always, Word, OpenDocument and EPUB
through the optional ``tune-docs`` extra (python-docx, odfpy, ebooklib).

A file that cannot be read is skipped with a reason the writer can act on; only a path
that does not exist at all is an error, since that is usually a typo.
"""

from __future__ import annotations

import hashlib
import html.parser
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from backends.errors import UsageError

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".text")
DOC_SUFFIXES = (".docx", ".odt", ".epub")
SUPPORTED = TEXT_SUFFIXES + DOC_SUFFIXES
MAX_LINE = 50_000
"""A longer line is not prose with line breaks (minified data, a dump); such a file is skipped."""
EXTRA_HINT = "install the tune-docs extra: pip install 'quillmate[tune-docs]'"


class Unreadable(Exception):
    """A file quillmate cannot use; the message says why, in a few words."""


@dataclass(frozen=True)
class Skipped:
    """A file left out, and why."""

    path: Path
    reason: str


def collect_files(paths: Iterable[Path]) -> tuple[list[Path], list[Skipped]]:
    """The files named, and the supported files inside the folders named (hidden ones left out).

    Raises:
        UsageError: for a path that does not exist.
    """
    files: list[Path] = []
    skipped: list[Skipped] = []
    for path in paths:
        path = path.expanduser()
        if path.is_dir():
            for found in sorted(path.rglob("*")):
                relative = found.relative_to(path).parts
                if (
                    found.is_file()
                    and found.suffix.lower() in SUPPORTED
                    and not any(p.startswith(".") for p in relative)
                ):
                    files.append(found)
        elif path.is_file():
            if path.suffix.lower() in SUPPORTED:
                files.append(path)
            else:
                skipped.append(
                    Skipped(
                        path,
                        f"quillmate reads {', '.join(SUPPORTED)} files, "
                        f"not {path.suffix or 'files without an extension'}",
                    )
                )
        else:
            raise UsageError(f"There is no file or folder at {path}.", "Check the path.")
    unique = list(dict.fromkeys(p.resolve() for p in files))
    return unique, skipped


def read_text_file(path: Path) -> str:
    """A .txt or .md file's text.

    Raises:
        Unreadable: binary content, text that is not UTF-8, or a line too long to be prose.
    """
    try:
        data = path.read_bytes()
    except OSError as error:
        raise Unreadable(f"cannot be read ({error.strerror or error})") from None
    if b"\x00" in data[:65536]:
        raise Unreadable("looks like a binary file, not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise Unreadable(f"is not UTF-8 text (bad byte at offset {error.start}); save it as UTF-8") from None
    return text


def read_docx(path: Path) -> str:
    """A Word document's paragraphs."""
    try:
        import docx
    except ImportError:
        raise Unreadable(f"is a Word file; to read it, {EXTRA_HINT}") from None
    try:
        document = docx.Document(str(path))
    except Exception as error:
        raise Unreadable(f"is not a Word document quillmate can open ({type(error).__name__})") from None
    return "\n\n".join(p.text for p in document.paragraphs if p.text.strip())


def read_odt(path: Path) -> str:
    """An OpenDocument text's paragraphs and headings."""
    try:
        from odf import teletype
        from odf import text as odf_text
        from odf.opendocument import load
    except ImportError:
        raise Unreadable(f"is an OpenDocument file; to read it, {EXTRA_HINT}") from None
    try:
        document = load(str(path))
    except Exception as error:
        raise Unreadable(f"is not an OpenDocument text quillmate can open ({type(error).__name__})") from None
    blocks = document.text.getElementsByType(odf_text.H) + document.text.getElementsByType(odf_text.P)
    # getElementsByType groups by type; document order matters for prose, so sort by position.
    order = {id(node): index for index, node in enumerate(_walk(document.text))}
    blocks.sort(key=lambda node: order.get(id(node), 0))
    return "\n\n".join(t for t in (teletype.extractText(b).strip() for b in blocks) if t)


def _walk(node: object) -> Iterator[object]:
    yield node
    for child in getattr(node, "childNodes", []):
        yield from _walk(child)


class _Paragraphs(html.parser.HTMLParser):
    """Plain paragraphs from XHTML: block elements end a paragraph."""

    BLOCKS = frozenset({"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "br", "tr"})

    def __init__(self) -> None:
        super().__init__()
        self.paragraphs: list[str] = []
        self._current: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "head"):
            self._skip += 1
        elif tag in self.BLOCKS:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head"):
            self._skip = max(0, self._skip - 1)
        elif tag in self.BLOCKS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self._current.append(data)

    def _flush(self) -> None:
        text = re.sub(r"\s+", " ", "".join(self._current)).strip()
        if text:
            self.paragraphs.append(text)
        self._current = []

    def close(self) -> None:
        super().close()
        self._flush()


def read_epub(path: Path) -> str:
    """An EPUB book's text, chapter by chapter in reading order."""
    try:
        import ebooklib
        from ebooklib import epub
    except ImportError:
        raise Unreadable(f"is an EPUB book; to read it, {EXTRA_HINT}") from None
    try:
        book = epub.read_epub(str(path), options={"ignore_ncx": True})
    except Exception as error:
        raise Unreadable(f"is not an EPUB book quillmate can open ({type(error).__name__})") from None
    chapters = []
    for item in book.get_items_of_type(ebooklib.ITEM_DOCUMENT):
        parser = _Paragraphs()
        parser.feed(item.get_content().decode("utf-8", "replace"))
        parser.close()
        if parser.paragraphs:
            chapters.append("\n\n".join(parser.paragraphs))
    return "\n\n".join(chapters)


def read_source(path: Path) -> str:
    """The text of one supported file, with Windows line ends made plain.

    Raises:
        Unreadable: why the file cannot be used.
    """
    suffix = path.suffix.lower()
    if suffix == ".docx":
        text = read_docx(path)
    elif suffix == ".odt":
        text = read_odt(path)
    elif suffix == ".epub":
        text = read_epub(path)
    else:
        text = read_text_file(path)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", "")
    longest = max((len(line) for line in text.split("\n")), default=0)
    if longest > MAX_LINE:
        raise Unreadable(f"has a line of {longest:,} characters, which is not prose with line breaks")
    if not text.strip():
        raise Unreadable("is empty")
    return text


def sha256_of(path: Path) -> str:
    """The file's SHA-256, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
