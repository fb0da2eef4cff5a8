"""A writing-quality evaluation that runs on any backend: ``quillmate eval``.

A fixed, seeded set of prompts goes through the built-in templates (poems in four forms,
slogans, image prompts); each text is measured, and the figures are reported per template:

* **topic adherence**: poems that use a content word of their topic (or its stem), slogan
  sets that name their product, image prompts that keep the scene's words;
* **form**: haiku with exactly 5-7-5 syllables, limericks with five lines rhyming AABBA,
  sonnets with fourteen lines and the share of the scheme's rhyme pairs that rhyme (the
  checker in :mod:`assistant.forms`);
* **fluency**: the share of written words that are real words (in the CMU dictionary), and
  held-out perplexity where the backend can score text (:meth:`Backend.score_texts`);
* **image prompts**: Midjourney prompts carry valid ``--ar`` and ``--v`` parameters, Stable
  Diffusion prompts a negative prompt.

The same seeds give the same figures on the same backend and machine.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.forms import check_form
from assistant.forms.sounds import is_known, words_of
from assistant.keywords import content_words, uses_words

POEM_TOPICS = (
    "my grandmother's kitchen",
    "a cat who stole a pie",
    "first frost",
    "a broken clock",
    "the sea at night",
    "a lantern in the rain",
    "an old oak tree",
    "the last train home",
)
POEM_FORMS = ("haiku", "limerick", "sonnet", "free verse")
PRODUCTS = (
    "a bicycle bell",
    "a corner coffee shop",
    "running shoes",
    "the public library",
    "a rain jacket",
    "wildflower honey",
)
SCENES = (
    ("a lighthouse in a storm", "midjourney", "16:9"),
    ("a fox in a snowy forest", "stable-diffusion", "1:1"),
    ("a market at dawn", "midjourney", "3:2"),
    ("a girl reading under a tree", "stable-diffusion", "2:3"),
    ("a ship frozen in the ice", "midjourney", "21:9"),
    ("a bakery window at night", "stable-diffusion", "4:3"),
)
MIDJOURNEY_VERSIONS = {"1", "2", "3", "4", "5", "5.0", "5.1", "5.2", "6", "6.0", "6.1", "7"}


@dataclass(frozen=True)
class Case:
    """One prompt of the evaluation."""

    template: str
    variables: dict[str, str]
    seed: int

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.variables.items())


def cases(subset: int | None = None, seed: int = 1) -> list[Case]:
    """The fixed prompt set; ``subset`` keeps the first N prompts of each template."""
    poems = [
        Case("poem", {"topic": topic, "form": form}, 0)
        for i, topic in enumerate(POEM_TOPICS)
        for form in (POEM_FORMS[i % 4], POEM_FORMS[(i + 1) % 4], POEM_FORMS[(i + 2) % 4])
    ]
    slogans = [Case("slogan", {"product": product}, 0) for product in PRODUCTS]
    images = [Case("image-prompt", {"scene": s, "target": t, "aspect": a}, 0) for s, t, a in SCENES]
    chosen = [group[:subset] if subset else group for group in (poems, slogans, images)]
    flat = [case for group in chosen for case in group]
    return [Case(c.template, c.variables, seed + 1000 * i) for i, c in enumerate(flat)]


def midjourney_ok(text: str) -> bool:
    """True when the prompt ends with valid ``--ar W:H`` and ``--v N`` parameters."""
    ratio = re.search(r"--ar\s+(\d+)\s*:\s*(\d+)\b", text)
    version = re.search(r"--v\s+(\d+(?:\.\d+)?)\b", text)
    return bool(
        ratio
        and int(ratio.group(1)) > 0
        and int(ratio.group(2)) > 0
        and version
        and version.group(1) in MIDJOURNEY_VERSIONS
    )


def negative_prompt_ok(text: str) -> bool:
    """True when a Stable Diffusion prompt has a ``Negative prompt:`` line with something in it."""
    return bool(re.search(r"negative prompt:\s*\S", text, re.IGNORECASE))


@dataclass
class Sample:
    """One generated text and what was measured on it."""

    case: Case
    text: str
    seconds: float
    measures: dict[str, Any] = field(default_factory=dict)


def measure(case: Case, text: str) -> dict[str, Any]:
    """The figures for one text."""
    words = words_of(text)
    found: dict[str, Any] = {
        "words": len(words),
        "real_words": sum(1 for w in words if is_known(w)),
    }
    if case.template == "poem":
        topic = content_words(case.variables["topic"])
        found["on_topic"] = uses_words(text, topic) > 0
        form = case.variables["form"]
        if form != "free verse":
            report = check_form(text, form)
            syllables = [line.syllables for line in report.lines]
            found["form_ok"] = report.ok
            if form == "haiku":
                found["five_seven_five"] = syllables == [5, 7, 5] or report.ok
            elif form == "limerick":
                found["aabba"] = report.line_count == 5 and report.rhymed_pairs == report.rhyme_pairs == 3
            elif form == "sonnet":
                found["fourteen_lines"] = report.line_count == 14
                found["rhyme_share"] = report.rhyme_share or 0.0
    elif case.template == "slogan":
        found["names_product"] = uses_words(text, content_words(case.variables["product"])) > 0
    elif case.template == "image-prompt":
        found["scene_words"] = uses_words(text, content_words(case.variables["scene"]))
        if case.variables["target"] == "midjourney":
            found["params_ok"] = midjourney_ok(text)
        else:
            found["negative_prompt"] = negative_prompt_ok(text)
    return found


def _share(values: list[Any]) -> float | None:
    return sum(1 for v in values if v) / len(values) if values else None


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarise(samples: Sequence[Sample]) -> dict[str, dict[str, Any]]:
    """Per-template figures (shares between 0 and 1), as the table and the JSON show them."""
    table: dict[str, dict[str, Any]] = {}
    for template in ("poem", "slogan", "image-prompt"):
        group = [s for s in samples if s.case.template == template]
        if not group:
            continue
        words = sum(s.measures["words"] for s in group)
        row: dict[str, Any] = {
            "samples": len(group),
            "real_words": sum(s.measures["real_words"] for s in group) / words if words else None,
            "seconds_each": _mean([s.seconds for s in group]),
        }

        def of(key: str, kind: Callable[[list[Any]], float | None] = _share, items: Sequence[Sample] = group) -> Any:
            return kind([s.measures[key] for s in items if key in s.measures])

        if template == "poem":
            row["on_topic"] = of("on_topic")
            for form, key in (("haiku", "five_seven_five"), ("limerick", "aabba"), ("sonnet", "fourteen_lines")):
                forms = [s for s in group if s.case.variables["form"] == form]
                row[f"{form}_samples"] = len(forms)
                row[f"{form}_{key}"] = of(key, items=forms)
            sonnets = [s for s in group if s.case.variables["form"] == "sonnet"]
            row["sonnet_rhyme_share"] = of("rhyme_share", _mean, sonnets)
        elif template == "slogan":
            row["names_product"] = of("names_product")
        else:
            row["scene_words"] = of("scene_words", _mean)
            row["midjourney_params_ok"] = of("params_ok")
            row["negative_prompt"] = of("negative_prompt")
        table[template] = row
    return table


async def heldout_perplexity(backend: Any, text: str, chunk_chars: int = 1500) -> float | None:
    """Perplexity of ``text`` under the backend's model, or None when it cannot score text."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    chunks: list[str] = []
    for paragraph in paragraphs:
        if chunks and len(chunks[-1]) + len(paragraph) < chunk_chars:
            chunks[-1] += "\n\n" + paragraph
        else:
            chunks.append(paragraph)
    scored = await backend.score_texts(chunks) if chunks else None
    if not scored:
        return None
    total = sum(logprob for logprob, _ in scored)
    tokens = sum(count for _, count in scored)
    return math.exp(-total / tokens) if tokens else None


def heldout_text() -> str:
    """Held-out prose the bundled model never trained on (shipped beside it)."""
    from backends.gpt2 import BUNDLED_MODEL_DIR

    return (Path(BUNDLED_MODEL_DIR) / "heldout_passage.txt").read_text(encoding="utf-8")


def run_eval(
    assistant: Any, subset: int | None = None, seed: int = 1, progress: Callable[[int, int, Case], None] | None = None
) -> dict[str, Any]:
    """Run the prompt set on ``assistant``'s backend; returns the report (figures and samples)."""
    chosen = cases(subset, seed)
    samples: list[Sample] = []
    for number, case in enumerate(chosen):
        if progress is not None:
            progress(number, len(chosen), case)
        started = time.perf_counter()
        result = assistant.run(case.template, {"seed": case.seed}, **case.variables)
        sample = Sample(case, result.text, time.perf_counter() - started)
        sample.measures = measure(case, result.text)
        samples.append(sample)
    perplexity = assistant._submit(heldout_perplexity(assistant.backend, heldout_text())).result()
    info = assistant.backend.info()
    return {
        "backend": assistant.backend.name,
        "model": info.model,
        "seed": seed,
        "subset": subset,
        "heldout_perplexity": perplexity,
        "templates": summarise(samples),
        "samples": [
            {
                "template": s.case.template,
                "variables": s.case.variables,
                "seed": s.case.seed,
                "text": s.text,
                "seconds": round(s.seconds, 2),
                **s.measures,
            }
            for s in samples
        ],
    }


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def format_table(report: dict[str, Any]) -> str:
    """The report as a Markdown table, one row per figure."""
    rows = [("| Template | Figure | Value |", "|---|---|---:|")]
    lines = [*rows[0]]
    names = {
        "on_topic": "topic adherence (uses a topic word)",
        "haiku_five_seven_five": "haiku exactly 5-7-5",
        "limerick_aabba": "limericks: 5 lines rhyming AABBA",
        "sonnet_fourteen_lines": "sonnets: 14 lines",
        "sonnet_rhyme_share": "sonnets: scheme's rhyme pairs that rhyme",
        "names_product": "slogan sets that name the product",
        "scene_words": "image prompts: scene words kept",
        "midjourney_params_ok": "Midjourney: valid --ar and --v",
        "negative_prompt": "Stable Diffusion: negative prompt given",
        "real_words": "real words (CMU dictionary)",
    }
    for template, row in report["templates"].items():
        lines.append(f"| {template} | samples | {row['samples']} |")
        for key, label in names.items():
            if key in row:
                count = ""
                prefix = key.split("_")[0]
                if f"{prefix}_samples" in row and key.startswith(prefix) and prefix in ("haiku", "limerick", "sonnet"):
                    count = f" (of {row[f'{prefix}_samples']})"
                lines.append(f"| {template} | {label}{count} | {_pct(row[key])} |")
        lines.append(f"| {template} | seconds per sample | {row['seconds_each']:.1f} |")
    ppl = report["heldout_perplexity"]
    lines.append(f"| all | held-out perplexity | {'n/a' if ppl is None else f'{ppl:.1f}'} |")
    return "\n".join(lines)
