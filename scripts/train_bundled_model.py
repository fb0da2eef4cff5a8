#!/usr/bin/env python3
"""Train quillmate's bundled offline GPT-2-architecture model.

Reads the public-domain corpus described in ``SOURCES.md``, cleans it, shapes it into
``Poem:`` / ``Story:`` / ``Sayings:`` documents (the shapes the prompt templates use),
holds out a document-level evaluation split, trains a byte-level BPE tokenizer and a small
``GPT2LMHeadModel``, and writes a ``transformers``-loadable folder (float16 safetensors,
config, generation config, GPT-2-format tokenizer files, training log and metrics).

Checkpoints are written to the output folder every few minutes, so an interrupted run still
leaves a usable model. Runs are seeded and reproducible on a given machine.

Example (the shipped model)::

    python scripts/train_bundled_model.py --out backends/bundled_model --time-budget-minutes 75
"""

from __future__ import annotations

import argparse
import copy
import csv
import hashlib
import json
import math
import os
import random
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

EOS = "<|endoftext|>"
REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
from backends.fim import LAYOUT_KEY  # noqa: E402
from backends.tuning import evaluate, lr_at  # noqa: E402 - shared with `quillmate tune`
from scripts import training_shapes as shapes  # noqa: E402

DEFAULT_CORPUS = Path("/work/shared/corpus")
DEFAULT_OUT = REPO_ROOT / "backends" / "bundled_model"

# --------------------------------------------------------------------------------------
# Corpus description: work titles, genre and sampling weight per file.
# Weights > 1 upsample (short poems, sayings); weights < 1 downsample huge monotone works.
# --------------------------------------------------------------------------------------

POEM_CSV = "verse_lyric_public_domain_poems_by_form.csv"
DOUBTFUL_CSV_TITLES = {
    "I Love to Do My Homework",
    "Don't Worry if Your Job Is Small",
    "The Secret",
    "Getting Information Out of Pa",
}
CSV_FORM_WORDS = {
    "couplet": "couplets",
    "concrete or pattern poetry": "pattern poem",
    "common measure": "common measure",
}

EPICS: dict[str, tuple[str, float]] = {
    "verse_epic_kalevala_crawford_pg5186.txt": ("The Kalevala", 0.5),
    "verse_epic_virgil_aeneid_dryden_pg228.txt": ("The Aeneid", 0.5),
    "verse_epic_homer_odyssey_pope_pg3160.txt": ("The Odyssey", 0.5),
    "verse_epic_dante_divine_comedy_cary_pg8800.txt": ("The Divine Comedy", 0.5),
    "verse_epic_milton_paradise_lost_pg20.txt": ("Paradise Lost", 0.6),
    "verse_epic_beowulf_gummere_pg981.txt": ("Beowulf", 0.8),
}

PROSE: dict[str, tuple[str, float]] = {
    "prose_allegory_bunyan_pilgrims_progress_pg131.txt": ("The Pilgrim's Progress", 0.5),
    "prose_children_barrie_peter_pan_pg16.txt": ("Peter and Wendy", 1.0),
    "prose_children_carroll_alice_in_wonderland_pg11.txt": ("Alice's Adventures in Wonderland", 1.0),
    "prose_children_kipling_jungle_book_pg236.txt": ("The Jungle Book", 1.0),
    "prose_epic_homer_iliad_butler_pg2199.txt": ("The Iliad", 0.3),
    "prose_fable_aesop_jacobs_pg28.txt": ("The Fables of Aesop", 1.0),
    "prose_fable_aesop_townsend_pg21.txt": ("Aesop's Fables", 1.0),
    "prose_fable_aesop_vernon_jones_pg11339.txt": ("Aesop's Fables", 1.0),
    "prose_fairy_andersen_fairy_tales_pg1597.txt": ("Andersen's Fairy Tales", 1.0),
    "prose_fairy_grimm_household_tales_hunt_pg5314.txt": ("Household Tales", 0.8),
    "prose_fairy_jacobs_english_fairy_tales_pg7439.txt": ("English Fairy Tales", 1.0),
    "prose_fairy_jacobs_indian_fairy_tales_pg7128.txt": ("Indian Fairy Tales", 1.0),
    "prose_fairy_lang_blue_fairy_book_pg503.txt": ("The Blue Fairy Book", 0.8),
    "prose_fairy_lang_yellow_fairy_book_pg640.txt": ("The Yellow Fairy Book", 0.8),
    "prose_fairy_perrault_tales_of_mother_goose_welsh_pg17208.txt": ("Tales of Mother Goose", 1.0),
    "prose_fairy_ralston_russian_fairy_tales_pg22373.txt": ("Russian Fairy Tales", 0.5),
    "prose_folk_parker_australian_legendary_tales_pg3833.txt": ("Australian Legendary Tales", 1.0),
    "prose_folk_philippine_folk_tales_pg12814.txt": ("Philippine Folk Tales", 1.0),
    "prose_folk_westervelt_hawaiian_legends_gods_ghosts_pg39195.txt": ("Hawaiian Legends", 0.7),
    "prose_legend_bulfinch_mythology_pg4928.txt": ("Bulfinch's Mythology", 0.25),
    "prose_legend_gregory_gods_and_fighting_men_pg14465.txt": ("Gods and Fighting Men", 0.4),
    "prose_legend_guest_mabinogion_pg5160.txt": ("The Mabinogion", 0.5),
    "prose_legend_malory_morte_darthur_vol1_pg1251.txt": ("Le Morte d'Arthur", 0.3),
    "prose_legend_rolleston_high_deeds_of_finn_pg14749.txt": ("The High Deeds of Finn", 0.5),
    "prose_legend_volsunga_saga_morris_pg1152.txt": ("The Story of the Volsungs", 0.6),
    "prose_legend_younger_prose_edda_anderson_pg18947.txt": ("The Younger Edda", 0.5),
}
FABLE_FILES = {f for f in PROSE if "_fable_aesop_" in f}

LYRIC_WEIGHT = 1.5  # short lyric books: upsampled so `poem` prompts land in familiar territory
CSV_WEIGHT = 1.0  # the big by-form poem set (3.4 MB) is already large
WHITMAN_WEIGHT = 0.7
SAYINGS_WEIGHT = 4.0  # sayings: upsampled so `slogan` prompts land in familiar territory
SHAKESPEARE_DIALOGUE_WEIGHT = 0.15

# Section headings whose section is skipped (front matter) or which end the useful text.
SKIP_HEADINGS = re.compile(
    r"^(contents|table of contents|preface|introduction|introductory|list of illustrations|"
    r"illustrations|dedication|transcriber'?s note|note|notes|editor'?s note|advertisement|"
    r"acknowledge?ments?|prefatory note|to the reader|the argument|argument|footnotes?)\.?$",
    re.I,
)
FRONT_MATTER_WORDS = re.compile(
    r"\b(preface|introduction|bibliographical|transcriber|editor'?s note|glossary|index)\b", re.I
)
BACK_MATTER = re.compile(
    r"^(index|general index|glossary|glossarial index|notes|notes and references|footnotes|"
    r"endnotes|appendix|bibliography|list of authorities|the end|finis)\.?$",
    re.I,
)
GENERIC_HEADING = re.compile(r"^(chapter|book|canto|rune|part|section|fitt?|stave)\b[\s\w.:-]*$|^[ivxlc]+\.?$", re.I)
AUTHOR_HEADING = re.compile(r"^(by\b|charles g\. d\. roberts|walt whitman|in divers tones)", re.I)
CREDIT_LINE = re.compile(
    r"produced by|e-text prepared|ebook was produced|proofreading team|pgdp\.net|"
    r"http|www\.|transcriber|internet archive|millennium fulcrum|duncan research",
    re.I,
)


# --------------------------------------------------------------------------------------
# Cleaning
# --------------------------------------------------------------------------------------


def normalise(text: str) -> str:
    """Normalise whitespace and strip Gutenberg / Markdown leftovers from a whole file."""
    text = text.replace("\ufeff", "").replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u00a0", " ").replace("\u2009", " ").replace("\u200b", "")
    text = re.sub(r"\[Illustration[^\]]*\]", "", text, flags=re.S | re.I)
    text = re.sub(r"\[(?:Footnote|Note)[^\]]*\]", "", text, flags=re.S)
    text = re.sub(r"\[\d+\]|\{\d+\}|\[[a-z]\]", "", text)  # footnote / section markers
    text = re.sub(r"(?<![\w_])_(?=\S)([^_\n]+(?:\n[^_\n]+)?)(?<=\S)_(?![\w_])", r"\1", text)
    text = text.replace("_", "")
    lines = [ln.rstrip() for ln in text.split("\n")]
    return "\n".join(lines)


def paragraphs(text: str) -> list[str]:
    """Split text into blank-line separated blocks, keeping internal line breaks."""
    return [b.strip("\n") for b in re.split(r"\n\s*\n", text) if b.strip()]


def is_heading(block: str) -> bool:
    """Heuristic: a short single line, upper/title case, not ending like a sentence piece."""
    if "\n" in block:
        return False
    line = block.strip()
    if not line or len(line) > 70 or line[-1] in ",;:-" or line.startswith(("\u201c", '"', "'")):
        return False
    if GENERIC_HEADING.match(line) or line.isupper():
        return True
    words = [w for w in re.findall(r"[A-Za-z][\w'\u2019-]*", line)]
    small = {
        "a",
        "an",
        "and",
        "the",
        "of",
        "in",
        "on",
        "to",
        "for",
        "or",
        "with",
        "at",
        "by",
        "from",
        "who",
        "was",
        "is",
        "his",
        "her",
        "their",
        "into",
        "out",
        "as",
        "that",
    }
    big = [w for w in words if w.lower() not in small]
    return bool(big) and len(words) <= 12 and all(w[0].isupper() for w in big) and line[-1] != "."


def is_list_block(block: str) -> bool:
    """Contents/index-like block: short unpunctuated lines, or numbered entries."""
    lines = [ln.strip() for ln in block.split("\n") if ln.strip()]
    if len(lines) < 4:
        return False
    mean = sum(len(ln) for ln in lines) / len(lines)
    bare = sum(1 for ln in lines if not re.search(r"[.,;:!?\u2014\"'\u201d)]$", ln))
    numbered = sum(1 for ln in lines if re.search(r"\d+$|^\d+\.?\s", ln) or re.match(r"^[ivxlc]+\.\s", ln, re.I))
    return (mean < 50 and bare >= 0.8 * len(lines)) or numbered >= 0.6 * len(lines)


def looks_like_prose(block: str) -> bool:
    """Wrapped prose: most lines but the last are 60+ characters long."""
    lines = [ln.strip() for ln in block.split("\n")][:-1]
    return bool(lines) and sum(len(ln) >= 60 for ln in lines) >= 0.5 * len(lines)


def is_verse_block(block: str) -> bool:
    """True when a block's line breaks matter (verse, songs) rather than wrapped prose."""
    lines = block.split("\n")
    if len(lines) < 2:
        return False
    indented = sum(1 for ln in lines if ln.startswith("  "))
    return indented >= 0.8 * len(lines) or not looks_like_prose(block)


def clean_block(block: str) -> str:
    """Drop credit lines from a block and dedent it."""
    lines = [ln for ln in block.split("\n") if not CREDIT_LINE.search(ln)]
    if not lines:
        return ""
    indent = min((len(ln) - len(ln.lstrip()) for ln in lines if ln.strip()), default=0)
    return "\n".join(ln[indent:] for ln in lines).strip()


def unwrap(block: str) -> str:
    """Join a wrapped prose paragraph into one line."""
    return re.sub(r"\s+", " ", block).strip()


def smart_title(heading: str) -> str:
    """Title-case ALL-CAPS headings (dropping tale numbers); leave mixed-case ones alone."""
    heading = re.sub(r"^\d+\.?\s+", "", heading.strip()).rstrip(".").strip()
    if heading.isupper():
        small = {"a", "an", "and", "the", "of", "in", "on", "to", "for", "or", "with", "at", "by"}
        words = heading.lower().split()
        out = [w if (i and w in small) else w[:1].upper() + w[1:] for i, w in enumerate(words)]
        heading = " ".join(out)
        heading = re.sub(r"\b([IVXLC]+)\b", lambda m: m.group(1).upper(), heading, flags=re.I)
    return heading


def strip_back_matter(blocks: list[str]) -> list[str]:
    """Cut glossaries, indexes and end notes found in the last 40 % of a work."""
    start = int(len(blocks) * 0.6)
    for i in range(start, len(blocks)):
        if is_heading(blocks[i]) and BACK_MATTER.match(blocks[i].strip()):
            return blocks[:i]
    return blocks


# --------------------------------------------------------------------------------------
# Documents
# --------------------------------------------------------------------------------------


@dataclass
class Doc:
    """One training document in the template shape."""

    text: str
    source: str
    genre: str  # "verse" | "prose" | "sayings"
    weight: float = 1.0


def poem_doc(title: str, form: str, body: str, source: str, weight: float) -> Doc:
    """``Poem: {title}\\nForm: {form}\\n\\n{text}``."""
    body = re.sub(r"\n{3,}", "\n\n", body.strip("\n"))
    title = title.strip() or body.split("\n", 1)[0].strip()
    return Doc(f"Poem: {title}\nForm: {form}\n\n{body}", source, "verse", weight)


def guess_form(body: str, default: str = "lyric") -> str:
    """14 non-empty lines is a sonnet; otherwise the default form word."""
    n = sum(1 for ln in body.split("\n") if ln.strip())
    return "sonnet" if n == 14 else default


def chunk_lines(stanzas: list[str], min_lines: int, max_lines: int) -> Iterator[str]:
    """Group stanzas into passages of about ``min_lines``–``max_lines`` lines."""
    cur: list[str] = []
    count = 0
    for stanza in stanzas:
        lines = stanza.split("\n")
        while len(lines) > max_lines:  # very long stanza (blank verse paragraphs)
            head, lines = lines[:max_lines], lines[max_lines:]
            if cur:
                yield "\n\n".join(cur)
                cur, count = [], 0
            yield "\n".join(head)
        if cur and count + len(lines) > max_lines:
            yield "\n\n".join(cur)
            cur, count = [], 0
        cur.append("\n".join(lines))
        count += len(lines)
        if count >= min_lines:
            yield "\n\n".join(cur)
            cur, count = [], 0
    if cur and count >= min(8, min_lines):
        yield "\n\n".join(cur)


def split_long_poem(title: str, form: str, body: str, source: str, weight: float) -> list[Doc]:
    """Keep a poem whole when short, else cut it into 20–40 line passages."""
    stanzas = paragraphs(body)
    if sum(s.count("\n") + 1 for s in stanzas) <= 60:
        return [poem_doc(title, form, body, source, weight)]
    return [poem_doc(title, form, p, source, weight) for p in chunk_lines(stanzas, 20, 40)]


def csv_poems(path: Path) -> list[Doc]:
    """The poetry-eval CSV: form column mapped to a plain word; doubtful rows dropped."""
    docs: list[Doc] = []
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["poem_title"].strip() in DOUBTFUL_CSV_TITLES:
                continue
            body = normalise(row["poem_text"]).strip()
            if len(body) < 20:
                continue
            form = (row["form"] or "lyric").strip().lower()
            form = CSV_FORM_WORDS.get(form, form)
            title = normalise(row["poem_title"]).strip()
            docs += split_long_poem(title, form, body, path.name, CSV_WEIGHT)
    return docs


def markdown_poems(path: Path, sonnets: bool) -> list[Doc]:
    """Palgrave / Shakespeare Markdown: ``###`` titles, poet names after Palgrave poems."""
    text = normalise(path.read_text(encoding="utf-8"))
    docs: list[Doc] = []
    parts = re.split(r"^###\s*(.+?)\s*#*\s*$", text, flags=re.M)
    for i in range(1, len(parts) - 1, 2):
        heading, body = parts[i].strip(), parts[i + 1]
        body = re.sub(r"^#.*$", "", body, flags=re.M)  # book headings of the next section
        blocks = [clean_block(b) for b in paragraphs(body)]
        blocks = [b for b in blocks if b]
        if not sonnets and blocks and "\n" not in blocks[-1] and blocks[-1].isupper():
            blocks = blocks[:-1]  # the poet's name
        if not blocks:
            continue
        body = "\n\n".join(blocks)
        if sonnets:
            docs.append(poem_doc(f"Sonnet {roman_to_int(heading)}", "sonnet", body, path.name, LYRIC_WEIGHT))
        else:
            docs += split_long_poem(smart_title(heading), guess_form(body), body, path.name, LYRIC_WEIGHT)
    return docs


def roman_to_int(s: str) -> int | str:
    """Convert a Roman numeral (``XIV``) to an int; return the input if it is not one."""
    values = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
    s = s.strip().rstrip(".").upper()
    if not s or any(c not in values for c in s):
        return s
    total = 0
    for a, b in zip(s, s[1:] + " ", strict=True):
        total += -values[a] if b in values and values[b] > values[a] else values[a]
    return total


def dickinson_poems(path: Path) -> list[Doc]:
    """Dickinson: poems numbered ``I.``, ``II.`` with titles removed; title = first line."""
    text = normalise(path.read_text(encoding="utf-8"))
    docs: list[Doc] = []
    for body in re.split(r"^\s*[IVXLC]+\.\s*$", text, flags=re.M):
        blocks = [clean_block(b) for b in paragraphs(body)]
        blocks = [b for b in blocks if b and not (is_heading(b) and b.isupper())]
        if blocks:
            body = "\n\n".join(blocks)
            title = body.split("\n", 1)[0].rstrip(",;:.!?\u2014 ")
            docs.append(poem_doc(title, guess_form(body), body, path.name, LYRIC_WEIGHT))
    return docs


def headed_poems(path: Path, form: str, weight: float) -> list[Doc]:
    """Lyric books (Whitman, Roberts): a poem runs from one unindented heading to the next."""
    blocks = strip_back_matter(paragraphs(normalise(path.read_text(encoding="utf-8"))))
    docs: list[Doc] = []
    title, body = "", []

    def flush() -> None:
        text = "\n\n".join(b for b in body if b)
        if title and text.count("\n") >= 1 and not SKIP_HEADINGS.match(title) and not AUTHOR_HEADING.match(title):
            f = guess_form(text, form) if form != "free verse" else form
            docs.extend(split_long_poem(smart_title(title), f, text, path.name, weight))

    for block in blocks:
        if is_heading(block) and not block.startswith(" "):
            flush()
            title, body = block.strip(), []
            if re.match(r"^BOOK [IVXLC]+", title):
                title = ""
        elif not is_list_block(block) or is_verse_block(block):
            body.append(clean_block(block))
    flush()
    return docs


def epic_passages(path: Path, work: str, weight: float) -> list[Doc]:
    """Long epics: verse blocks cut into 20–40 line passages titled ``Work, Book N``."""
    blocks = strip_back_matter(paragraphs(normalise(path.read_text(encoding="utf-8"))))
    docs: list[Doc] = []
    section, stanzas = "", []

    def flush() -> None:
        title = f"{work}, {section}" if section else work
        for passage in chunk_lines(stanzas, 20, 40):
            docs.append(poem_doc(title, "epic verse", passage, path.name, weight))

    for block in blocks:
        if is_heading(block):
            line = block.strip()
            if re.match(r"^(book|canto|rune|part)\s+\w+", line, re.I):
                flush()
                stanzas = []
                section = smart_title(re.sub(r"[.:].*$", "", line))
            continue
        if not looks_like_prose(block) and not is_list_block(block) and not CREDIT_LINE.search(block):
            stanzas.append(clean_block(block))
    flush()
    return docs


def shakespeare_dialogue(path: Path) -> list[Doc]:
    """Tiny Shakespeare: speeches grouped into ~24-line passages (heavily downweighted)."""
    speeches = paragraphs(normalise(path.read_text(encoding="utf-8")))
    return [
        poem_doc("Scenes from Shakespeare", "dramatic verse", p, path.name, SHAKESPEARE_DIALOGUE_WEIGHT)
        for p in chunk_lines(speeches, 16, 32)
    ]


def prose_stories(path: Path, work: str, weight: float, morals: list[str]) -> list[Doc]:
    """Prose books: sections split at headings, chunked to ~2,000 characters."""
    blocks = strip_back_matter(paragraphs(normalise(path.read_text(encoding="utf-8"))))
    docs: list[Doc] = []
    title, skipping, section = "", True, []

    def flush() -> None:
        if skipping or not section:
            return
        if path.name in FABLE_FILES and len(section) >= 2:
            last = section[-1]
            if "\n" not in last and len(last) < 140 and not last.startswith(("\u201c", '"')):
                morals.append(last)
        if sum(len(p) for p in section) < 300:
            return
        name = smart_title(title) if title else work
        if GENERIC_HEADING.match(title):
            name = f"{work}, {smart_title(title)}"
        chunk: list[str] = []
        for para in section:
            chunk.append(para)
            if sum(len(p) for p in chunk) > 2000:
                docs.append(Doc(f"Story: {name}\n\n" + "\n\n".join(chunk), path.name, "prose", weight))
                chunk = []
        if sum(len(p) for p in chunk) > 200 or (chunk and not docs):
            docs.append(Doc(f"Story: {name}\n\n" + "\n\n".join(chunk), path.name, "prose", weight))

    for raw in blocks:
        block = clean_block(raw)
        if not block:
            continue
        if is_heading(block):
            flush()
            section = []
            line = block.strip()
            skipping = bool(SKIP_HEADINGS.match(line) or FRONT_MATTER_WORDS.search(line))
            if GENERIC_HEADING.match(line) and title and not GENERIC_HEADING.match(title):
                pass  # keep the tale title; "BOOK I." style headings become the next title
            title = line
            continue
        if is_list_block(block) and not is_verse_block(block):
            continue
        if re.match(r"^CHAPTER [IVXLC]+\.\s", block) and len(block) < 250:
            continue  # chapter-summary lists (Malory)
        section.append(block if is_verse_block(block) else unwrap(block))
    flush()
    return docs


def devils_definitions(path: Path) -> list[str]:
    """Short one-paragraph Devil's Dictionary definitions as ``Word: definition`` lines."""
    out = []
    for block in paragraphs(normalise(path.read_text(encoding="utf-8"))):
        m = re.match(r"^([A-Z][A-Z' -]+),\s*(?:[a-z. ]{1,8}\.)\s+(.+)$", unwrap(block))
        if m and len(m.group(2)) <= 200:
            word = m.group(1).strip().capitalize()
            out.append(f"{word}: {m.group(2).strip()}")
    return out


def proverbs(path: Path) -> list[str]:
    """One proverb per line."""
    return [ln.strip() for ln in normalise(path.read_text(encoding="utf-8")).split("\n") if len(ln.strip()) > 5]


def sayings_docs(items: list[tuple[str, str]], rng: random.Random) -> list[Doc]:
    """Group (saying, source) pairs 5–10 per ``Sayings:`` document."""
    items = items[:]
    rng.shuffle(items)
    docs: list[Doc] = []
    i = 0
    while i < len(items):
        n = rng.randint(5, 10)
        group = items[i : i + n]
        i += n
        text = "Sayings:\n" + "\n".join(f"- {s}" for s, _ in group)
        src = Counter(s for _, s in group).most_common(1)[0][0]
        docs.append(Doc(text, src, "sayings", SAYINGS_WEIGHT))
    return docs


def build_documents(corpus: Path, seed: int) -> list[Doc]:
    """Read and shape every corpus file into template-shaped documents."""
    docs: list[Doc] = []
    morals: list[str] = []
    docs += csv_poems(corpus / POEM_CSV)
    docs += markdown_poems(corpus / "verse_lyric_palgrave_golden_treasury.md", sonnets=False)
    docs += markdown_poems(corpus / "verse_lyric_shakespeare_sonnets.md", sonnets=True)
    docs += dickinson_poems(corpus / "verse_lyric_dickinson_poems_three_series.txt")
    docs += headed_poems(corpus / "verse_lyric_whitman_leaves_of_grass_pg1322.txt", "free verse", WHITMAN_WEIGHT)
    docs += headed_poems(corpus / "verse_lyric_roberts_in_divers_tones_pg6956.txt", "lyric", LYRIC_WEIGHT)
    for name, (work, weight) in EPICS.items():
        docs += epic_passages(corpus / name, work, weight)
    docs += shakespeare_dialogue(corpus / "verse_drama_tinyshakespeare.txt")
    for name, (work, weight) in PROSE.items():
        docs += prose_stories(corpus / name, work, weight, morals)
    sayings = [(s, "proverbs_common_english.txt") for s in proverbs(corpus / "proverbs_common_english.txt")]
    devil = "prose_humor_bierce_devils_dictionary_pg972.txt"
    sayings += [(s, devil) for s in devils_definitions(corpus / devil)]
    sayings += [(m, "aesop morals") for m in dict.fromkeys(morals)]
    docs += sayings_docs(sayings, random.Random(seed))
    return [d for d in docs if len(d.text) > 60]


def is_heldout(doc: Doc, fraction: float, seed: int) -> bool:
    """Stable document-level split from a hash of the text and the seed."""
    h = hashlib.sha1(f"{seed}:{doc.text}".encode()).digest()
    return int.from_bytes(h[:4], "big") / 2**32 < fraction


def add_split_options(parser: argparse.ArgumentParser) -> None:
    """The options that find the held-out documents again: corpus, seed and share (for the measuring scripts)."""
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--split-seed", type=int, default=1234, help="the training script's --seed")
    parser.add_argument("--heldout-frac", type=float, default=0.02, help="the training script's --heldout-frac")


def heldout_documents(args: argparse.Namespace) -> list[Doc]:
    """The documents no edition trained on, from the options of :func:`add_split_options`."""
    docs = build_documents(args.corpus, args.split_seed)
    return [d for d in docs if is_heldout(d, args.heldout_frac, args.split_seed)]


def weighted_stream(docs: list[Doc], rng: random.Random) -> list[Doc]:
    """Apply sampling weights (repeat or subsample) and shuffle."""
    out: list[Doc] = []
    for d in docs:
        copies = int(d.weight) + (1 if rng.random() < d.weight - int(d.weight) else 0)
        out += [d] * copies
    rng.shuffle(out)
    return out


# --------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------


def train_tokenizer(texts: list[str], vocab_size: int, out: Path):
    """Byte-level BPE with ``<|endoftext|>``, saved in GPT-2 format; returns the HF tokenizer."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2TokenizerFast

    bpe = ByteLevelBPETokenizer(add_prefix_space=False)
    bpe.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=2, special_tokens=[EOS], show_progress=False)
    out.mkdir(parents=True, exist_ok=True)
    bpe.save_model(str(out))  # vocab.json + merges.txt
    bpe.save(str(out / "tokenizer.json"))
    tok = GPT2TokenizerFast(
        vocab_file=str(out / "vocab.json"),
        merges_file=str(out / "merges.txt"),
        tokenizer_file=str(out / "tokenizer.json"),
        eos_token=EOS,
        bos_token=EOS,
        unk_token=EOS,
        add_prefix_space=False,
        model_max_length=1024,
    )
    tok.save_pretrained(str(out))
    return tok


# --------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------


@dataclass
class TrainState:
    """Mutable bookkeeping for the training loop."""

    step: int = 0
    tokens: int = 0
    log: list[dict] = field(default_factory=list)
    best_heldout: float = float("inf")


def save_model(model, tokenizer_dir: Path, out: Path, extra: dict[str, object]) -> None:
    """Write a float16 safetensors model + configs + tokenizer files into ``out`` atomically."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.tmp") as tmp_name:
        tmp = Path(tmp_name)
        half = copy.deepcopy(model).to("cpu").half()
        half.save_pretrained(str(tmp), safe_serialization=True)
        for f in tokenizer_dir.iterdir():
            if f.is_file():
                shutil.copy2(f, tmp / f.name)
        for name, obj in extra.items():
            (tmp / name).write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
        for f in tmp.iterdir():
            f.chmod(0o644)
            os.replace(f, out / f.name)


@dataclass
class Data:
    """Token streams for training and held-out evaluation."""

    train: object  # torch.LongTensor
    doc_starts: object  # torch.LongTensor of offsets of EOS tokens preceding documents
    heldout: object


def encode_stream(tok, docs: list[str]):
    """Encode documents into one stream: ``EOS doc EOS doc ...``; return (ids, starts)."""
    import torch

    eos = tok.convert_tokens_to_ids(EOS)
    enc = tok._tokenizer.encode_batch(docs, add_special_tokens=False)  # fast path
    ids: list[int] = []
    starts: list[int] = []
    for e in enc:
        starts.append(len(ids))
        ids.append(eos)
        ids.extend(e.ids)
    ids.append(eos)
    return torch.tensor(ids, dtype=torch.long), torch.tensor(starts, dtype=torch.long)


def get_batch(data: Data, batch: int, seq: int, gen, aligned_frac: float = 0.5):
    """Random windows; ``aligned_frac`` of them start exactly at a document boundary (so headers are seen)."""
    import torch

    n = data.train.numel() - seq - 1
    rand = torch.randint(0, n, (batch,), generator=gen)
    pick = torch.randint(0, data.doc_starts.numel(), (batch,), generator=gen)
    aligned = data.doc_starts[pick].clamp(max=n - 1)
    use_aligned = torch.rand(batch, generator=gen) < aligned_frac
    offs = torch.where(use_aligned, aligned, rand)
    x = torch.stack([data.train[o : o + seq + 1] for o in offs.tolist()])
    return x


def text_perplexity(model, tok, text: str, max_len: int = 1024) -> float:
    """Perplexity of one text (EOS-prefixed, as the app does at a document start)."""
    import torch

    ids = [tok.eos_token_id, *tok.encode(text)[: max_len - 1]]
    x = torch.tensor([ids], device=model.device)
    model.eval()
    with torch.no_grad():
        loss = model(input_ids=x, labels=x).loss.item()
    model.train()
    return math.exp(loss)


def genre_mix(docs: list[Doc]) -> dict[str, dict[str, float]]:
    """Documents and bytes per genre, with percentages."""
    mix: dict[str, dict[str, float]] = {}
    for d in docs:
        g = mix.setdefault(d.genre, {"docs": 0, "bytes": 0})
        g["docs"] += 1
        g["bytes"] += len(d.text.encode())
    total = sum(g["bytes"] for g in mix.values())
    for g in mix.values():
        g["bytes_pct"] = round(100 * g["bytes"] / total, 1)
    return mix


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--vocab-size", type=int, default=8192)
    p.add_argument("--n-layer", type=int, default=4)
    p.add_argument("--n-embd", type=int, default=256)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--n-positions", type=int, default=1024)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument(
        "--long-seq-len", type=int, default=512, help="sequence length for the final phase (trains later positions)"
    )
    p.add_argument(
        "--long-frac", type=float, default=0.15, help="fraction of the run trained at --long-seq-len (0 disables)"
    )
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-steps", type=int, default=0, help="0 = limited by time budget only")
    p.add_argument(
        "--time-budget-minutes",
        type=float,
        default=0.0,
        help="wall-clock budget of the training loop (0 = limited by steps only)",
    )
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup-frac", type=float, default=0.05)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--heldout-frac", type=float, default=0.02)
    p.add_argument("--eval-every-minutes", type=float, default=8.0)
    p.add_argument("--eval-tokens", type=int, default=24576, help="held-out tokens per periodic eval")
    p.add_argument("--final-eval-tokens", type=int, default=200_000)
    p.add_argument("--checkpoint-minutes", type=float, default=5.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps ...")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument(
        "--init-from",
        type=Path,
        default=None,
        help="start from this model folder and its tokenizer (e.g. the first edition) instead of from scratch",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from the training state saved beside --out (OUT.resume.pt), written every checkpoint",
    )
    p.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16", "fp16"),
        default="auto",
        help="auto: bf16 (or fp16) mixed precision on a GPU, fp32 on the CPU",
    )
    p.add_argument("--fim-rate", type=float, default=0.2, help="share of poems and stories also given as FIM")
    p.add_argument(
        "--fim-weight",
        type=float,
        default=1.0,
        help="sampling weight of each fill-in-the-middle document (above 1 for a run that teaches it)",
    )
    p.add_argument(
        "--fim-layout",
        choices=("psm", "spm"),
        default="psm",
        help="gap documents' layout: text before the gap first (psm) or the text after it first (spm); "
        "written to config.json for the backend",
    )
    p.add_argument(
        "--fim-max-middle", type=int, default=40, help="longest gap in words (short gaps teach its end more often)"
    )
    p.add_argument("--keyword-rate", type=float, default=0.85, help="share of poems given a Keywords line")
    p.add_argument("--sayings-docs", type=int, default=8000, help="'Sayings about …' documents to make")
    p.add_argument("--image-docs", type=int, default=5000, help="image-prompt documents to make")
    p.add_argument(
        "--plain-weight",
        type=float,
        default=1.0,
        help="scale the sampling weight of stories and of poems without keywords (below 1 when continuing "
        "from a model that knows them already)",
    )
    p.add_argument("--aligned-frac", type=float, default=0.5, help="share of windows that start at a document")
    args = p.parse_args(argv)
    if args.max_steps <= 0 and args.time_budget_minutes <= 0:
        p.error("give --max-steps and/or --time-budget-minutes")
    return args


def shape_documents(docs: list[Doc], args: argparse.Namespace, rng: random.Random) -> list[Doc]:
    """Add the second edition's shapes: keyword poems, sayings about a word, image prompts, FIM."""
    common = shapes.common_words(d.text for d in docs)
    things = shapes.nouns(d.text for d in docs)
    out: list[Doc] = []
    for d in docs:
        if d.genre == "verse" and rng.random() < args.keyword_rate:
            d = shapes.keyword_poem(d, rng, common)
        if d.genre == "prose" or (d.genre == "verse" and "\nKeywords: " not in d.text):
            d = Doc(d.text, d.source, d.genre, d.weight * args.plain_weight)
        out.append(d)
        if d.genre in ("verse", "prose") and rng.random() < args.fim_rate:
            # Sized so a whole gap document, middle and end included, fits in one training window
            # (about four characters a token); a long story gives several gaps.
            window, after = int(2.4 * args.seq_len), args.seq_len
            for _ in range(min(4, max(1, len(d.text) // 3000))):
                fim = shapes.fill_in_the_middle(
                    d.text, rng, window=window, after=after, layout=args.fim_layout, max_middle=args.fim_max_middle
                )
                if fim:
                    out.append(Doc(fim, d.source, "fim", min(d.weight, 1.0) * args.fim_weight))
    lines = shapes.short_lines(d for d in docs if d.genre != "fim")
    for text in shapes.sayings_about(lines, rng, common, things, args.sayings_docs):
        out.append(Doc(text, "sayings about a word", "sayings", 1.0))
    pairs = shapes.scenes(docs, common, things)
    for text in shapes.image_docs(pairs, rng, things, args.image_docs):
        out.append(Doc(text, "image prompts from prose", "image", 1.0))
    return out


def autocast_dtype(precision: str, device):
    """The mixed-precision dtype for this device, or None for plain fp32."""
    import torch

    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if precision == "fp16" or (precision == "auto" and not torch.cuda.is_bf16_supported()):
        return torch.float16
    return torch.bfloat16


def reuse_tokenizer(model_dir: Path, out: Path):
    """The tokenizer of ``model_dir`` with the fill-in-the-middle tokens added, saved to ``out``."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    tok.add_special_tokens({"additional_special_tokens": list(shapes.FIM_TOKENS)})
    tok.save_pretrained(str(out))
    return tok


def pick_heldout_passage(heldout: list[Doc], rng: random.Random) -> str:
    """A ~1–2k character passage from a held-out story, cut at paragraph boundaries."""
    stories = sorted((d for d in heldout if d.genre == "prose" and len(d.text) > 1500), key=lambda d: d.text)
    doc = rng.choice(stories) if stories else max(heldout, key=lambda d: len(d.text))
    out = ""
    for para in doc.text.split("\n\n"):
        if len(out) > 1000:
            break
        out = f"{out}\n\n{para}" if out else para
    return out[:2000].strip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the whole pipeline."""
    args = parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("RAYON_NUM_THREADS", str(args.threads))
    import torch
    from tqdm import tqdm
    from transformers import GenerationConfig, GPT2Config, GPT2LMHeadModel

    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    t_start = time.time()
    out: Path = args.out

    # ---- data ------------------------------------------------------------------------
    docs = build_documents(args.corpus, args.seed)
    train_docs = [d for d in docs if not is_heldout(d, args.heldout_frac, args.seed)]
    heldout_docs = [d for d in docs if is_heldout(d, args.heldout_frac, args.seed)]
    # The split is made on the first edition's shapes, so both editions hold out the same texts.
    train_docs = shape_documents(train_docs, args, random.Random(args.seed + 1))
    stream = weighted_stream(train_docs, random.Random(args.seed))
    print(
        f"documents: {len(docs)} ({len(heldout_docs)} held out); weighted training stream: {len(stream)} docs",
        flush=True,
    )

    tok_dir = Path(tempfile.mkdtemp(prefix="quillmate_tok_"))
    if args.init_from:
        tok = reuse_tokenizer(args.init_from, tok_dir)
    else:
        tok = train_tokenizer([d.text for d in train_docs], args.vocab_size, tok_dir)
        tok.add_special_tokens({"additional_special_tokens": list(shapes.FIM_TOKENS)})
        tok.save_pretrained(str(tok_dir))
    train_ids, starts = encode_stream(tok, [d.text for d in stream])
    heldout_ids, _ = encode_stream(tok, [d.text for d in heldout_docs])
    data = Data(train_ids, starts, heldout_ids)
    mix_weighted = genre_mix(stream)
    for genre, g in mix_weighted.items():
        g["tokens"] = int(sum(len(tok._tokenizer.encode(d.text).ids) for d in stream if d.genre == genre))
    src_bytes = Counter()
    for d in stream:
        src_bytes[d.source] += len(d.text.encode())
    print(
        f"train tokens (one pass of the weighted stream): {train_ids.numel():,}; "
        f"held-out tokens: {heldout_ids.numel():,}",
        flush=True,
    )
    print("genre mix:", json.dumps(mix_weighted), flush=True)

    out.mkdir(parents=True, exist_ok=True)
    passage = pick_heldout_passage(heldout_docs, random.Random(args.seed))
    (out / "heldout_passage.txt").write_text(passage, encoding="utf-8")
    for f in tok_dir.iterdir():
        shutil.copy2(f, out / f.name)

    # ---- model -----------------------------------------------------------------------
    device = torch.device(args.device)
    eos_id = tok.eos_token_id
    config = GPT2Config(
        vocab_size=len(tok),
        n_positions=args.n_positions,
        n_embd=args.n_embd,
        n_layer=args.n_layer,
        n_head=args.n_head,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
        tie_word_embeddings=True,
        # Positions beyond the longest training window were never trained; quillmate's
        # backend keeps prompt + new text within this many tokens.
        quillmate_context_window=max(args.seq_len, args.long_seq_len if args.long_frac > 0 else 0),
    )
    if args.init_from:
        model = GPT2LMHeadModel.from_pretrained(str(args.init_from), dtype=torch.float32)
        model.resize_token_embeddings(len(tok))
        model.config.quillmate_context_window = config.quillmate_context_window
        model.config.dtype = "float32"
        for name in ("n_layer", "n_embd", "n_head", "n_positions"):
            setattr(args, name, getattr(model.config, name))
        model = model.to(device)
    else:
        model = GPT2LMHeadModel(config).to(device)
    if args.fim_rate > 0:
        setattr(model.config, LAYOUT_KEY, args.fim_layout)  # the backend lays out its prompts the same way
    model.generation_config = GenerationConfig(
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
        do_sample=True,
        temperature=0.8,
        top_k=50,
        top_p=0.95,
        repetition_penalty=1.1,
        max_new_tokens=200,
    )
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"model: {args.n_layer} layers, d={args.n_embd}, heads={args.n_head}, vocab={len(tok)}, params={n_params:,}",
        flush=True,
    )

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "wpe" not in n]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2 or "wpe" in n]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.95),
        eps=1e-8,
    )
    gen = torch.Generator().manual_seed(args.seed)
    state = TrainState()
    budget_s = args.time_budget_minutes * 60
    resume_path = out.with_name(out.name + ".resume.pt")
    resumed_seconds = 0.0
    if args.resume and resume_path.exists():
        saved = torch.load(resume_path, map_location=device, weights_only=False)
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        gen.set_state(saved["gen"])
        state = TrainState(saved["step"], saved["tokens"], saved["log"])
        resumed_seconds = saved["seconds"]
        print(f"resumed at step {state.step} after {resumed_seconds / 60:.1f} min of training", flush=True)
    amp_dtype = autocast_dtype(args.precision, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)

    def progress(now: float) -> float:
        p = 0.0
        if args.max_steps > 0:
            p = max(p, state.step / args.max_steps)
        if budget_s > 0:
            p = max(p, (now - t_loop + resumed_seconds) / budget_s)
        return min(1.0, p)

    def metrics_and_log(final: bool, heldout_loss: float, train_seconds: float) -> dict:
        m = {
            "heldout_loss": heldout_loss,
            "heldout_perplexity": math.exp(heldout_loss),
            "heldout_passage_perplexity": text_perplexity(model, tok, passage),
            "params": n_params,
            "train_tokens": state.tokens,
            "train_steps": state.step,
            "train_seconds": round(train_seconds, 1),
            "vocab_size": len(tok),
            "final": final,
            "threads": args.threads,
            "device": args.device,
            "config": {
                k: getattr(args, k)
                for k in (
                    "n_layer",
                    "n_embd",
                    "n_head",
                    "n_positions",
                    "seq_len",
                    "long_seq_len",
                    "long_frac",
                    "batch_size",
                    "lr",
                    "warmup_frac",
                    "weight_decay",
                    "seed",
                    "heldout_frac",
                    "fim_rate",
                    "fim_weight",
                    "fim_layout",
                    "fim_max_middle",
                    "keyword_rate",
                    "sayings_docs",
                    "image_docs",
                    "precision",
                    "plain_weight",
                    "aligned_frac",
                )
            },
            "init_from": str(args.init_from) if args.init_from else None,
            "genre_mix_weighted": mix_weighted,
            "source_bytes_weighted": dict(src_bytes.most_common()),
            "documents": {"total": len(docs), "heldout": len(heldout_docs), "train_weighted": len(stream)},
            "heldout_tokens_total": int(heldout_ids.numel()),
            "train_stream_tokens": int(train_ids.numel()),
        }
        return m

    def checkpoint(final: bool, heldout_loss: float) -> None:
        train_seconds = time.time() - t_loop + resumed_seconds
        torch.save(
            {
                "model": model.state_dict(),
                "opt": opt.state_dict(),
                "gen": gen.get_state(),
                "step": state.step,
                "tokens": state.tokens,
                "log": state.log,
                "seconds": train_seconds,
            },
            resume_path.with_suffix(".tmp"),
        )
        os.replace(resume_path.with_suffix(".tmp"), resume_path)
        m = metrics_and_log(final, heldout_loss, train_seconds)
        save_model(model, tok_dir, out, {"metrics.json": m, "training_log.json": state.log})
        with (out / "training_log.csv").open("w", encoding="utf-8") as fh:
            fh.write("step,tokens,seconds,lr,train_loss,heldout_loss\n")
            for r in state.log:
                fh.write(
                    f"{r['step']},{r['tokens']},{r['seconds']},{r['lr']:.6g},"
                    f"{r['train_loss']:.4f},{r.get('heldout_loss', '')}\n"
                )

    # ---- loop ------------------------------------------------------------------------
    model.train()
    t_loop = time.time()
    last_eval = last_ckpt = t_loop
    ema: float | None = None
    last_heldout = evaluate(model, heldout_ids, args.seq_len, args.eval_tokens)
    state.log += (
        []
        if state.step
        else [
            {
                "step": 0,
                "tokens": 0,
                "seconds": 0.0,
                "lr": 0.0,
                "train_loss": last_heldout,
                "heldout_loss": round(last_heldout, 4),
            }
        ]
    )
    bar = tqdm(
        total=1000,
        unit="‰",
        desc="training",
        mininterval=5 if sys.stderr.isatty() else 30,
        bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt}‰ [{elapsed}<{remaining}{postfix}]",
    )
    window_tokens, window_t = 0, time.time()
    tok_s = 0.0
    while True:
        now = time.time()
        prog = progress(now)
        if prog >= 1.0:
            break
        long_phase = args.long_frac > 0 and prog >= 1 - args.long_frac
        seq = args.long_seq_len if long_phase else args.seq_len
        bsz = max(1, args.batch_size * args.seq_len // seq) if long_phase else args.batch_size
        lr = lr_at(prog, args.lr, args.warmup_frac)
        for g in opt.param_groups:
            g["lr"] = lr
        x = get_batch(data, bsz, seq, gen, args.aligned_frac).to(device)
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            logits = model(input_ids=x[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(opt)
        scaler.update()
        state.step += 1
        state.tokens += bsz * seq
        window_tokens += bsz * seq
        lv = loss.item()
        ema = lv if ema is None else 0.95 * ema + 0.05 * lv
        now = time.time()
        if now - window_t > 10:
            tok_s = window_tokens / (now - window_t)
            window_tokens, window_t = 0, now
        row: dict = {
            "step": state.step,
            "tokens": state.tokens,
            "seconds": round(now - t_loop, 1),
            "lr": lr,
            "train_loss": round(ema, 4),
        }
        if now - last_eval >= args.eval_every_minutes * 60:
            last_heldout = evaluate(model, heldout_ids, args.seq_len, args.eval_tokens)
            row["heldout_loss"] = round(last_heldout, 4)
            last_eval = time.time()
            tqdm.write(
                f"step {state.step} tokens {state.tokens:,} train {ema:.3f} "
                f"heldout {last_heldout:.3f} (ppl {math.exp(last_heldout):.1f})"
            )
        if state.step % 10 == 0 or "heldout_loss" in row:
            state.log.append(row)
        if time.time() - last_ckpt >= args.checkpoint_minutes * 60:
            checkpoint(False, last_heldout)
            last_ckpt = time.time()
        bar.n = int(progress(time.time()) * 1000)
        bar.set_postfix_str(f"step={state.step} loss={ema:.3f} tok/s={tok_s:.0f} seq={seq} lr={lr:.2e}", refresh=False)
        bar.update(0)
    bar.close()

    train_seconds = time.time() - t_loop + resumed_seconds
    final_loss = evaluate(model, heldout_ids, args.seq_len, args.final_eval_tokens)
    state.log.append(
        {
            "step": state.step,
            "tokens": state.tokens,
            "seconds": round(train_seconds, 1),
            "lr": 0.0,
            "train_loss": round(ema or float("nan"), 4),
            "heldout_loss": round(final_loss, 4),
        }
    )
    checkpoint(True, final_loss)
    m = json.loads((out / "metrics.json").read_text())
    m["train_seconds"] = round(train_seconds, 1)
    m["total_seconds"] = round(time.time() - t_start, 1)
    (out / "metrics.json").write_text(json.dumps(m, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(tok_dir, ignore_errors=True)
    print(
        f"done: {state.step} steps, {state.tokens:,} tokens in {train_seconds / 60:.1f} min; "
        f"held-out ppl {math.exp(final_loss):.2f}, passage ppl "
        f"{m['heldout_passage_perplexity']:.2f} -> {out}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
