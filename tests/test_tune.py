"""`quillmate tune` and `quillmate models` on the real bundled model and a tiny GPT-2 (LoRA through peft).

The writer's text is generated here with an invented vocabulary the bundled model has never
seen, so a few steps of tuning must lower its held-out perplexity.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cli import quillmate

FAST = ("--batch-size", "4", "--seq-len", "64")


def invented_prose(seed: int, paragraphs: int) -> str:
    """Prose in an invented vocabulary: the bundled model finds it very surprising at first."""
    rng = random.Random(seed)
    nouns = ["zorblat", "quimmet", "vashtree", "plinkard", "morrowgast"]
    names = ["Oriveth", "Blemmick", "Saunavar"]
    verbs = ["glimmered", "snarfed", "tolloped", "brastled"]
    paragraphs_out = []
    for _ in range(paragraphs):
        sentences = [
            f"{rng.choice(names)} {rng.choice(verbs)} past the {rng.choice(nouns)}, "
            f"and the {rng.choice(nouns)} {rng.choice(verbs)} {rng.choice(['softly', 'at dusk', 'again'])}."
            for _ in range(rng.randint(3, 5))
        ]
        paragraphs_out.append(" ".join(sentences))
    return "\n\n".join(paragraphs_out)


@pytest.fixture
def writing(tmp_path: Path) -> Path:
    folder = tmp_path / "my-writing"
    folder.mkdir()
    (folder / "chronicle.md").write_text("# The Fen Chronicles\n\n" + invented_prose(1, 24), encoding="utf-8")
    (folder / "second.txt").write_text(invented_prose(2, 24), encoding="utf-8")
    return folder


def card(home: Path, name: str) -> dict:
    return json.loads((home / "data" / "models" / name / "quillmate_model.json").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_tune_bundled_model_then_write_with_it_and_remove_it(writing: Path, isolated_home: Path) -> None:
    (writing / "photo.png").write_bytes(b"\x89PNG\r\n")
    (writing / "broken.txt").write_bytes(b"\x00\x01binary")
    out = quillmate(
        "tune",
        str(writing),
        str(writing / "photo.png"),
        "--name",
        "fen",
        "--steps",
        "8",
        *FAST,
        home=isolated_home,
        timeout=400,
    )
    stderr = out.stderr.decode()
    assert out.returncode == 0, stderr
    assert "skipped" in stderr and "photo.png" in stderr and "broken.txt: looks like a binary file" in stderr
    stdout = out.stdout.decode()
    assert "Held-out perplexity:" in stdout and "before:" in stdout and "after:" in stdout

    data = card(isolated_home, "fen")
    figures = data["figures"]
    assert figures["perplexity_after"] < 0.7 * figures["perplexity_before"], figures
    assert (data["base"], data["method"], data["steps"]) == ("bundled", "full", 8)
    assert {s["name"] for s in data["sources"]} == {"chronicle.md", "second.txt"}
    folder = isolated_home / "data" / "models" / "fen"
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert "chronicle.md" in readme and data["sources"][0]["sha256"] in readme
    assert "Oriveth tolloped past" not in readme.split("## Sources")[1]  # names and hashes, never the text
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()

    listed = quillmate("backends", "list", home=isolated_home)
    assert "fen" in listed.stdout.decode()
    run = quillmate(
        "run",
        "continue",
        "--backend",
        "fen",
        "--max-tokens",
        "12",
        "--seed",
        "3",
        stdin=b"Oriveth snarfed past the",
        home=isolated_home,
    )
    assert run.returncode == 0, run.stderr.decode()
    assert run.stdout.decode().strip()

    models = quillmate("models", "list", home=isolated_home).stdout.decode()
    assert "fen" in models and "bundled (full)" in models and "perplexity" in models
    shown = quillmate("models", "show", "fen", home=isolated_home).stdout.decode()
    assert "chronicle.md" in shown and "sha256" in shown

    again = quillmate("tune", str(writing), "--name", "fen", "--steps", "1", home=isolated_home)
    assert again.returncode == 2 and "already exists" in again.stderr.decode()

    removed = quillmate("models", "remove", "fen", home=isolated_home)
    assert removed.returncode == 0 and not folder.exists()
    gone = quillmate("run", "continue", "--backend", "fen", stdin=b"x", home=isolated_home)
    assert gone.returncode == 2 and "Unknown backend 'fen'" in gone.stderr.decode()


def _tune(writing: Path, name: str, **kwargs: object):
    from assistant.tuning.local import plan, tune_local

    resume = bool(kwargs.pop("resume", False))
    base = kwargs.pop("base", None)
    method = kwargs.pop("method", None)
    the_plan = plan(name, base, method, resume)  # type: ignore[arg-type]
    kwargs.setdefault("batch_size", 4)
    kwargs.setdefault("seq_len", 64)
    kwargs.setdefault("sample_tokens", 8)
    return tune_local(the_plan, [writing], **kwargs)  # type: ignore[arg-type]


def _loads_and_writes(folder: Path) -> str:
    import asyncio

    from backends.base import GenerationParams, GenerationRequest
    from backends.gpt2 import GPT2Backend, unload_all

    unload_all()
    backend = GPT2Backend("check", model=str(folder), device="cpu")
    request = GenerationRequest.completion("Story: X\n\nOriveth", GenerationParams(max_new_tokens=6, seed=1))

    async def go() -> str:
        from backends.base import GenerationResult

        async for event in backend.stream(request):
            if isinstance(event, GenerationResult):
                assert event.error is None, event.error
                return event.text
        raise AssertionError("no result")

    return asyncio.run(go())


def test_lora_on_a_tiny_gpt2_saves_an_adapter_that_loads(writing: Path, tiny_model_dir: Path) -> None:
    outcome = _tune(writing, "tiny-voice", base=str(tiny_model_dir), steps=3)
    folder = outcome.model.folder
    assert outcome.model.card["method"] == "lora"
    assert (folder / "adapter_model.safetensors").is_file() and not (folder / "model.safetensors").exists()
    adapter = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    assert adapter["base_model_name_or_path"] == str(tiny_model_dir.resolve())
    assert outcome.result.trainable_parameters < outcome.result.parameters / 4
    assert isinstance(_loads_and_writes(folder), str)


def test_lora_merge_writes_plain_weights(writing: Path, tiny_model_dir: Path) -> None:
    outcome = _tune(writing, "tiny-merged", base=str(tiny_model_dir), steps=2, merge=True)
    folder = outcome.model.folder
    assert (folder / "model.safetensors").is_file() and not (folder / "adapter_config.json").exists()
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), "pt") as weights:
        assert not any("lora" in key for key in weights.keys())  # noqa: SIM118 - safe_open has no __iter__
    assert isinstance(_loads_and_writes(folder), str)


def test_resume_adds_steps_and_keeps_the_first_date(writing: Path) -> None:
    first = _tune(writing, "resumed", steps=2, sample_tokens=0)
    second = _tune(writing, "resumed", steps=3, resume=True, sample_tokens=0)
    assert second.model.card["steps"] == 5
    assert second.model.card["created"] == first.model.card["created"]
    assert len(second.model.card["runs"]) == 2
    assert (second.model.folder / ".resume" / "optimizer.pt").is_file()


def test_ctrl_c_during_training_leaves_a_usable_model(writing: Path) -> None:
    def interrupt(report: object) -> None:
        if getattr(report, "step", 0) >= 2:
            raise KeyboardInterrupt

    outcome = _tune(writing, "stopped", steps=50, on_step=interrupt, sample_tokens=0)
    assert outcome.result.interrupted and outcome.model.card["steps"] == 2
    assert outcome.model.card["figures"]["interrupted"] is True
    assert isinstance(_loads_and_writes(outcome.model.folder), str)
    from assistant.config import load_config

    assert load_config().profile("stopped").options["model"] == str(outcome.model.folder)


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (lambda d: (d / "a.bin.txt").write_bytes(b"\x00\x00\x00junk"), (), "None of the files given can be used"),
        (lambda d: (d / "empty.md").write_text("  \n", encoding="utf-8"), (), "None of the files given can be used"),
        (lambda d: (d / "line.txt").write_text("word " * 20_000, encoding="utf-8"), (), "None of the files"),
        (lambda d: (d / "short.txt").write_text("Just one line.", encoding="utf-8"), (), "too little text"),
        (lambda d: None, ("--name", "local"), "already names a backend profile"),
        (lambda d: None, ("--name", "my voice"), "cannot name a model"),
        (lambda d: None, ("--minutes", "1"), "not both"),
        (lambda d: None, ("--resume",), "no locally tuned model named"),
        (lambda d: None, ("--method", "full", "--merge"), "LoRA tuning only"),
        (lambda d: None, ("--base", "./no/such/folder"), "no model folder"),
    ],
)
def test_bad_input_gives_one_clear_line(tmp_path: Path, isolated_home: Path, make, args, message) -> None:
    folder = tmp_path / "texts"
    folder.mkdir()
    made = make(folder)
    target = folder if made is not None else Path(__file__).resolve().parent.parent / "README.md"
    argv = ["tune", str(target), "--steps", "1", *args]
    if "--name" not in args:
        argv += ["--name", "voice"]
    out = quillmate(*argv, home=isolated_home)
    stderr = out.stderr.decode()
    assert out.returncode != 0
    assert message in stderr, stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) <= 3


def test_skipped_files_say_why(tmp_path: Path) -> None:
    from assistant.tuning.documents import survey

    (tmp_path / "story.txt").write_text(invented_prose(3, 30), encoding="utf-8")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    (tmp_path / "notes.pdf").write_bytes(b"%PDF")
    skipped = []
    manuscript = survey([tmp_path, tmp_path / "notes.pdf"], skipped.append)
    reasons = {s.path.name: s.reason for s in skipped}
    assert "not UTF-8" in reasons["latin1.txt"] and "not .pdf" in reasons["notes.pdf"]
    assert [s.path.name for s in manuscript.sources] == ["story.txt"]
    assert manuscript.heldout and manuscript.sample_prompt.startswith("Story: Story\n\n")
    heldout = list(manuscript.heldout_documents())
    train = list(manuscript.train_documents())
    assert len(heldout) + len(train) == manuscript.documents
    assert not set(heldout) & set(train)  # held-out documents are never trained on


def test_missing_document_extra_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from assistant.tuning.sources import Unreadable, read_source

    for module in ("docx", "ebooklib", "odf"):
        monkeypatch.setitem(sys.modules, module, None)  # as if the extra were not installed
    for name in ("book.docx", "book.epub", "book.odt"):
        (tmp_path / name).write_bytes(b"PK")
        with pytest.raises(Unreadable, match=r"quillmate\[tune-docs\]"):
            read_source(tmp_path / name)


def test_docx_is_read_when_the_extra_is_installed(tmp_path: Path) -> None:
    docx = pytest.importorskip("docx")
    from assistant.tuning.sources import read_source

    document = docx.Document()
    document.add_paragraph("Oriveth snarfed past the zorblat.")
    document.add_paragraph("The quimmet glimmered at dusk.")
    document.save(str(tmp_path / "chapter.docx"))
    assert (
        read_source(tmp_path / "chapter.docx") == "Oriveth snarfed past the zorblat.\n\nThe quimmet glimmered at dusk."
    )


def test_odt_is_read_when_the_extra_is_installed(tmp_path: Path) -> None:
    pytest.importorskip("odf")
    from odf.opendocument import OpenDocumentText
    from odf.text import P

    from assistant.tuning.sources import read_source

    document = OpenDocumentText()
    for line in ("Oriveth snarfed past the zorblat.", "The quimmet glimmered at dusk."):
        document.text.addElement(P(text=line))
    document.save(str(tmp_path / "chapter.odt"))
    text = read_source(tmp_path / "chapter.odt")
    assert "Oriveth snarfed past the zorblat." in text and "The quimmet glimmered at dusk." in text


def test_epub_is_read_when_the_extra_is_installed(tmp_path: Path) -> None:
    pytest.importorskip("ebooklib")
    from ebooklib import epub

    from assistant.tuning.sources import read_source

    book = epub.EpubBook()
    book.set_identifier("quimmet-1")
    book.set_title("The Quimmet")
    book.set_language("en")
    chapter = epub.EpubHtml(title="One", file_name="one.xhtml", lang="en")
    chapter.content = "<h1>One</h1><p>Oriveth snarfed past the zorblat.</p><p>The quimmet glimmered at dusk.</p>"
    book.add_item(chapter)
    book.toc = (chapter,)
    book.spine = ["nav", chapter]
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    epub.write_epub(str(tmp_path / "book.epub"), book)
    text = read_source(tmp_path / "book.epub")
    assert "Oriveth snarfed past the zorblat." in text and "The quimmet glimmered at dusk." in text


def test_tuning_modules_import_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "import assistant.tuning.local, assistant.tuning.models, assistant.cli.tune_cmd, assistant.cli.models_cmd\n"
        "import backends.tuning\n"
        "print([m for m in ('torch', 'transformers', 'peft', 'openai') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
