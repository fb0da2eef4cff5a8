"""Fine-tuning a hosted model through the OpenAI API on the writer's texts.

Each training document becomes one chat example: the story's opening as the user's turn,
its continuation as the assistant's, under the same instruction quillmate's ``continue``
template gives. Held-out documents become the validation file, never trained on.

Before anything is uploaded the examples are checked against the API's limits and the cost
is estimated; the job is recorded in a model card at once, so ``quillmate tune status``
can pick it up again, and when it succeeds the card's profile makes the fine-tuned model a
backend of the writer's chosen name.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from assistant.tuning.documents import Manuscript
from assistant.tuning.models import TunedModel, folder_for, list_models, now_iso, read_card, write_card
from backends.errors import BackendError, UsageError

SYSTEM = "You continue a writer's story in their own voice. Reply with only the new text."
MIN_EXAMPLES = 10  # the API refuses fewer
MAX_FILE_BYTES = 512 * 1024 * 1024
CHARS_PER_TOKEN = 4  # a rough count for English prose; the estimate says so
ESTIMATED_EPOCHS = 3
# US dollars per million training tokens, from OpenAI's price list; a model not listed gets no price.
TRAINING_PRICES = {
    "gpt-4o-mini": 3.00,
    "gpt-4o": 25.00,
    "gpt-4.1-nano": 1.50,
    "gpt-4.1-mini": 5.00,
    "gpt-4.1": 25.00,
    "gpt-3.5-turbo": 8.00,
}
EXAMPLE_TOKEN_LIMITS = {"gpt-4o-mini": 65_536, "gpt-4o": 65_536, "gpt-4.1": 65_536, "gpt-3.5-turbo": 16_385}
DEFAULT_EXAMPLE_LIMIT = 16_385


def _family(model: str, table: dict[str, Any]) -> str | None:
    """The longest table entry ``model`` starts with (``gpt-4o-mini-2024-07-18`` -> ``gpt-4o-mini``)."""
    matches = [name for name in table if model == name or model.startswith(name + "-")]
    return max(matches, key=len) if matches else None


def continuation_pair(document: str) -> dict[str, Any] | None:
    """One chat example from a ``Story:`` document: its first half asks, its second half answers."""
    head, _, body = document.partition("\n\n")
    paragraphs = [p for p in body.split("\n\n") if p.strip()]
    if len(paragraphs) >= 2:
        cut = len(paragraphs) // 2
        opening, rest = "\n\n".join(paragraphs[:cut]), "\n\n".join(paragraphs[cut:])
    else:
        sentences = re.split(r"(?<=[.!?])\s+", body.strip())
        if len(sentences) < 2:
            return None
        cut = len(sentences) // 2
        opening, rest = " ".join(sentences[:cut]), " ".join(sentences[cut:])
    return {
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"{head}\n\nThe story so far:\n{opening}"},
            {"role": "assistant", "content": rest},
        ]
    }


def estimate_tokens(example: dict[str, Any]) -> int:
    """About how many tokens an example counts for (4 characters a token, plus a little per message)."""
    return sum(len(m["content"]) // CHARS_PER_TOKEN + 4 for m in example["messages"])


@dataclass
class Prepared:
    """The training and validation files, checked, with the figures the writer confirms."""

    training: bytes
    validation: bytes
    examples: int
    validation_examples: int
    tokens: int
    cost: float | None
    """Estimated US dollars for ``ESTIMATED_EPOCHS`` epochs; None when the model's price is not known."""


def _jsonl(examples: Iterable[dict[str, Any]]) -> tuple[bytes, int, int, int]:
    lines, count, tokens, longest = [], 0, 0, 0
    for example in examples:
        lines.append(json.dumps(example, ensure_ascii=False))
        count += 1
        size = estimate_tokens(example)
        tokens += size
        longest = max(longest, size)
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b"", count, tokens, longest


def prepare(manuscript: Manuscript, model: str) -> Prepared:
    """Build and check the chat-format files for ``model``.

    Raises:
        UsageError: too few examples, an example over the model's limit, or a file over 512 MB.
    """
    pairs = (continuation_pair(d) for d in manuscript.train_documents())
    training, count, tokens, longest = _jsonl(p for p in pairs if p is not None)
    held = (continuation_pair(d) for d in manuscript.heldout_documents())
    validation, validation_count, _, _ = _jsonl(p for p in held if p is not None)
    problems = []
    if count < MIN_EXAMPLES:
        problems.append(f"it makes {count} training examples and OpenAI needs at least {MIN_EXAMPLES}")
    family = _family(model, EXAMPLE_TOKEN_LIMITS)
    limit = EXAMPLE_TOKEN_LIMITS[family] if family else DEFAULT_EXAMPLE_LIMIT
    if longest > limit:
        problems.append(f"one example has about {longest:,} tokens, over the {limit:,} {model} takes")
    if len(training) > MAX_FILE_BYTES:
        problems.append(f"the training file would be {len(training) / 2**20:.0f} MB, over the 512 MB limit")
    if problems:
        raise UsageError(
            "The text cannot be sent for fine-tuning: " + "; ".join(problems) + ".",
            "Give more text (about 20,000 characters or more) in paragraphs separated by blank lines.",
        )
    price_family = _family(model, TRAINING_PRICES)
    cost = tokens * ESTIMATED_EPOCHS * TRAINING_PRICES[price_family] / 1e6 if price_family else None
    return Prepared(training, validation, count, validation_count, tokens, cost)


def _source_list(manuscript: Manuscript) -> list[dict[str, Any]]:
    return [{"name": s.path.name, "sha256": s.sha256, "characters": s.characters} for s in manuscript.sources]


def record_job(
    name: str, base: str, job: dict[str, Any], manuscript: Manuscript, prepared: Prepared, profile_name: str
) -> TunedModel:
    """Write the card of a job just started (no profile yet)."""
    card = {
        "name": name,
        "backend": "openai",
        "base": base,
        "method": "openai fine-tuning",
        "openai_profile": profile_name,
        "job": job.get("id"),
        "status": job.get("status"),
        "created": now_iso(),
        "updated": now_iso(),
        "sources": _source_list(manuscript),
        "steps": None,
        "figures": {
            "job": job.get("id"),
            "examples": prepared.examples,
            "validation_examples": prepared.validation_examples,
            "estimated_tokens": prepared.tokens,
            "estimated_cost_usd": None if prepared.cost is None else round(prepared.cost, 2),
        },
        "profile": None,
    }
    folder = folder_for(name)
    write_card(folder, card)
    return TunedModel(name, folder, card)


def find_job(job_id: str | None) -> TunedModel:
    """The model card of ``job_id``, or of the most recent OpenAI job still under way.

    Raises:
        UsageError: when there is no such job.
    """
    jobs = [m for m in list_models() if m.card.get("backend") == "openai"]
    if job_id:
        for model in jobs:
            if model.card.get("job") == job_id or model.name == job_id:
                return model
        raise UsageError(f"quillmate started no fine-tuning job '{job_id}'.", "See them with: quillmate models list")
    waiting = [m for m in jobs if m.card.get("status") not in ("succeeded", "failed", "cancelled")]
    if not waiting:
        raise UsageError(
            "No OpenAI fine-tuning job is under way.", "Start one with: quillmate tune FILES --backend openai"
        )
    return max(waiting, key=lambda m: str(m.card.get("created")))


def watch(
    model: TunedModel,
    client: Any,
    profile_options: dict[str, Any],
    *,
    poll_seconds: float = 10.0,
    on_event: Callable[[str], None] | None = None,
) -> TunedModel:
    """Follow the job until it ends; on success register the profile.

    Args:
        model: The job's card (from :func:`record_job` or :func:`find_job`).
        client: A ``backends.openai_tuning.FineTuning``.
        profile_options: The OpenAI profile's settings (server, key source) the new profile keeps.
        poll_seconds: How often to ask the server.
        on_event: Told each new event message and status change.

    Raises:
        BackendError: when the job fails or is cancelled (the card records it).
    """
    job_id = str(model.card["job"])
    seen: set[str] = set()
    status = None
    while True:
        job = client.job(job_id)
        for event in client.events(job_id):
            key = str(event.get("id"))
            if key not in seen:
                seen.add(key)
                if on_event:
                    on_event(str(event.get("message", "")))
        if job.get("status") != status:
            status = job.get("status")
            if on_event:
                on_event(f"job {job_id}: {status}")
        if status in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(poll_seconds)
    card = dict(read_card(model.folder) or model.card)
    card["status"] = status
    card["updated"] = now_iso()
    figures = dict(card.get("figures") or {})
    if job.get("trained_tokens"):
        figures["trained_tokens"] = job["trained_tokens"]
    if status == "succeeded":
        fine_tuned = str(job.get("fine_tuned_model"))
        figures["fine_tuned_model"] = fine_tuned
        keep = ("base_url", "api_key_env", "api_key_file", "organization", "project")
        card["profile"] = {
            "kind": "openai",
            "model": fine_tuned,
            **{k: v for k, v in profile_options.items() if k in keep},
        }
        card["figures"] = figures
        write_card(model.folder, card)
        return TunedModel(model.name, model.folder, card)
    error = job.get("error") or {}
    detail = error.get("message") if isinstance(error, dict) else None
    figures["error"] = detail or status
    card["figures"] = figures
    write_card(model.folder, card)
    raise BackendError(
        f"The fine-tuning job {job_id} {status}" + (f": {detail}" if detail else "."),
        "Nothing was registered; fix what it says and run quillmate tune again.",
    )
