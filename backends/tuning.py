"""Fine-tune a GPT-2-family model on a writer's own text: full or LoRA, on the GPU or all CPU cores.

The core (``assistant.tuning``) reads and shapes the writer's files; this module takes
documents as plain strings, tokenizes them one at a time with the base model's tokenizer
into a compact array of ids (the text is never held whole), and trains.

Decisions:

* **Full** fine-tuning suits the small bundled model (5.5 M parameters); **LoRA** (``peft``)
  suits GPT-2 and larger, where full training would be slow and the optimizer state large.
  GPT-2's projections are ``Conv1D`` layers, hence ``fan_in_fan_out=True``.
* The result is always a folder ``from_pretrained`` loads. Full and merged LoRA results hold
  float32 weights (float16 would round away the small updates of a short tune); an unmerged
  LoRA result holds only the adapter, which transformers applies to the base it names.
* A run stops at a clean step: after ``steps``, when the time budget is spent, or on
  Ctrl+C (``KeyboardInterrupt`` inside the loop); every stop saves a usable model and the
  optimizer state in ``.resume/`` so ``resume=True`` carries on from there.

torch, transformers and peft are imported only inside the functions that need them.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backends.errors import BackendError, UsageError

FULL = "full"
LORA = "lora"
METHODS = (FULL, LORA)
RESUME_DIR = ".resume"
LORA_TARGETS = ["c_attn", "c_proj", "c_fc"]  # every projection of a GPT-2 block


def lr_at(progress: float, base: float, warmup_frac: float, min_ratio: float = 0.1) -> float:
    """Linear warmup then cosine decay to ``min_ratio * base``; progress in [0, 1]."""
    if progress < warmup_frac:
        return base * max(progress / warmup_frac, 0.01)
    t = min(1.0, (progress - warmup_frac) / max(1e-9, 1 - warmup_frac))
    return base * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


def evaluate(model: Any, ids: Any, seq: int, max_tokens: int, batch: int = 8) -> float:
    """Mean next-token loss over non-overlapping ``seq``-token windows of a 1-D token tensor."""
    import torch

    was_training = model.training
    model.eval()
    seq = max(1, min(seq, ids.numel() - 1))
    n_win = min((ids.numel() - 1) // seq, max(1, max_tokens // seq))
    total, count = 0.0, 0
    device = next(model.parameters()).device
    with torch.no_grad():
        for i in range(0, n_win, batch):
            xs = [ids[j * seq : (j + 1) * seq + 1] for j in range(i, min(n_win, i + batch))]
            x = torch.stack(xs).to(device)
            logits = model(input_ids=x[:, :-1]).logits.float()
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.size(-1)), x[:, 1:].reshape(-1), reduction="sum"
            )
            total += loss.item()
            count += x[:, 1:].numel()
    if was_training:
        model.train()
    return total / max(1, count)


@dataclass
class TuneSpec:
    """What to train and how; every field has a default a laptop can run."""

    base: str
    """A model folder or a Hugging Face id in the local cache."""
    out: Path
    """The folder the tuned model is written to."""
    method: str = FULL
    steps: int | None = None
    minutes: float | None = None
    resume: bool = False
    merge: bool = False
    """LoRA only: write merged weights (faster to load and run) instead of the adapter."""
    seq_len: int = 256
    batch_size: int = 8
    lr: float | None = None
    """None: 5e-4 for full tuning, 1e-3 for LoRA."""
    lora_rank: int = 8
    eval_tokens: int = 16_384
    sample_prompt: str = ""
    sample_tokens: int = 40
    seed: int = 1234
    device: str = "auto"
    checkpoint_minutes: float = 5.0


@dataclass
class StepReport:
    """One step's figures, for a progress display."""

    step: int
    total_steps: int | None
    loss: float
    tokens_per_second: float
    elapsed: float
    fraction: float
    """How much of the budget (steps or time) is spent, 0..1."""

    @property
    def seconds_left(self) -> float | None:
        """Estimated time to the end of the budget (None before there is a rate)."""
        if self.fraction <= 0:
            return None
        return self.elapsed * (1 - self.fraction) / self.fraction


@dataclass
class TuneResult:
    """What a run did and measured."""

    steps: int
    total_steps: int
    """Steps over every run of this model (resumed runs add up)."""
    tokens: int
    seconds: float
    device: str
    threads: int
    trainable_parameters: int
    parameters: int
    perplexity_before: float
    perplexity_after: float
    sample_before: str
    sample_after: str
    interrupted: bool
    train_tokens: int
    heldout_tokens: int
    log: list[dict[str, float]] = field(default_factory=list)


@dataclass
class Corpus:
    """The writer's text as token ids: the training stream and the held-out stream."""

    train: array
    heldout: array
    doc_starts: array
    eos: int


def encode_documents(tokenizer: Any, train_docs: Iterable[str], heldout_docs: Iterable[str]) -> Corpus:
    """Tokenize documents one by one into ``EOS doc EOS doc ... EOS`` streams of int32 ids."""
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0

    def stream(docs: Iterable[str], starts: array | None) -> array:
        ids = array("i")
        for doc in docs:
            if starts is not None:
                starts.append(len(ids))
            ids.append(eos)
            ids.extend(tokenizer(doc, add_special_tokens=False)["input_ids"])
        ids.append(eos)
        return ids

    starts = array("i")
    train = stream(train_docs, starts)
    heldout = stream(heldout_docs, None)
    return Corpus(train, heldout, starts, eos)


def load_tokenizer(base: str) -> Any:
    """The base model's tokenizer, from a folder or the local Hugging Face cache.

    Raises:
        BackendError: when it cannot be found (no download is attempted).
    """
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    try:
        return AutoTokenizer.from_pretrained(base, local_files_only=True)
    except (OSError, ValueError) as error:
        raise BackendError(
            f"Cannot load the tokenizer of the base model '{base}' ({str(error).splitlines()[0][:160]}).",
            "Name a model folder, `bundled`, or a model already in your Hugging Face cache.",
        ) from None


def _pick_device(device: str) -> str:
    import torch

    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


def _load_model(spec: TuneSpec, device: str) -> tuple[Any, int]:
    """The model to train (a PeftModel for LoRA) and the step count already done."""
    import torch
    from transformers import AutoModelForCausalLM

    resume_dir = spec.out / RESUME_DIR
    done = 0
    model: Any
    if spec.resume:
        state_file = resume_dir / "state.json"
        if not state_file.is_file():
            raise UsageError(
                f"There is nothing to resume in {spec.out}.",
                "Run without --resume to start a new tuning.",
            )
        done = int(json.loads(state_file.read_text(encoding="utf-8"))["steps"])
    if spec.method == FULL:
        source = str(spec.out) if spec.resume else spec.base
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32, local_files_only=True)
    else:
        try:
            from peft import LoraConfig, PeftModel, get_peft_model
        except ImportError:
            raise UsageError("LoRA tuning needs the peft package.", "Install it: pip install peft") from None

        model = AutoModelForCausalLM.from_pretrained(spec.base, dtype=torch.float32, local_files_only=True)
        if spec.resume:
            model = PeftModel.from_pretrained(model, str(resume_dir / "adapter"), is_trainable=True)
        else:
            config = LoraConfig(
                r=spec.lora_rank,
                lora_alpha=2 * spec.lora_rank,
                lora_dropout=0.0,
                target_modules=LORA_TARGETS,
                fan_in_fan_out=True,
                task_type="CAUSAL_LM",
            )
            model = get_peft_model(model, config)
    return model.to(device), done


def _context(model: Any) -> int:
    config = model.config
    return int(
        getattr(config, "quillmate_context_window", None)
        or getattr(config, "n_positions", None)
        or getattr(config, "max_position_embeddings", None)
        or 1024
    )


def _sample(model: Any, tokenizer: Any, prompt: str, tokens: int, seed: int) -> str:
    import torch

    if not prompt or tokens <= 0:
        return ""
    device = next(model.parameters()).device
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"].to(device)
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    was_training = model.training
    model.eval()
    torch.manual_seed(seed)
    with torch.no_grad():
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=tokens,
            do_sample=True,
            temperature=0.8,
            top_k=50,
            top_p=0.95,
            pad_token_id=eos,
            eos_token_id=eos,
        )
    if was_training:
        model.train()
    return str(tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True))


def _save(model: Any, tokenizer: Any, spec: TuneSpec, optimizer: Any, state: dict[str, Any]) -> None:
    """Write a loadable model into ``spec.out`` and what resuming needs into ``.resume/``.

    Files are written into a fresh sibling folder and moved in one by one with
    ``os.replace``, so an interruption mid-save leaves the previous files whole.
    """
    import torch

    spec.out.mkdir(parents=True, exist_ok=True)
    staging = spec.out.parent / f".{spec.out.name}.saving"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        resume = staging / RESUME_DIR
        resume.mkdir()
        if spec.method == LORA:
            model.save_pretrained(str(resume / "adapter"))
            if spec.merge:
                import copy

                merged = copy.deepcopy(model).merge_and_unload()
                merged.to("cpu").save_pretrained(str(staging), safe_serialization=True)
            else:
                model.save_pretrained(str(staging))
                # An absolute base path: transformers finds the base wherever the writer runs quillmate.
                adapter_config = staging / "adapter_config.json"
                data = json.loads(adapter_config.read_text(encoding="utf-8"))
                base = Path(spec.base).expanduser()
                data["base_model_name_or_path"] = str(base.resolve()) if base.is_dir() else spec.base
                adapter_config.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        else:
            model.to("cpu").save_pretrained(str(staging), safe_serialization=True)
            model.to(state["device"])
        tokenizer.save_pretrained(str(staging))
        (staging / "README.md").unlink(missing_ok=True)  # peft's template card; the core writes the real one
        torch.save(optimizer.state_dict(), resume / "optimizer.pt")
        (resume / "state.json").write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
        # Files of the other form (an adapter after merged weights, or the reverse) must not linger.
        stale = {"adapter_config.json", "adapter_model.safetensors", "model.safetensors", "config.json"}
        new_names = {path.name for path in staging.iterdir()}
        for name in stale - new_names:
            (spec.out / name).unlink(missing_ok=True)
        shutil.rmtree(spec.out / RESUME_DIR, ignore_errors=True)
        for path in staging.iterdir():
            os.replace(path, spec.out / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def train(
    spec: TuneSpec,
    train_docs: Iterable[str],
    heldout_docs: Iterable[str],
    on_step: Callable[[StepReport], None] | None = None,
    on_status: Callable[[str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TuneResult:
    """Tune ``spec.base`` on the documents and save the result in ``spec.out``.

    Args:
        spec: The model, method and budget.
        train_docs: Documents to train on, one string each (read lazily, once).
        heldout_docs: Documents never trained on, for the perplexity figures.
        on_step: Called after every step with its figures.
        on_status: Called with a short line before each slow phase (loading, measuring, saving).
        should_stop: Asked before every step; True stops the run as Ctrl+C does (from another
            thread, such as the writing app's, where no KeyboardInterrupt can reach the loop).

    Returns:
        The figures of the run; the model is saved even when it was interrupted.

    Raises:
        UsageError: for a bad spec, or too little text to train on.
        BackendError: when the base model cannot be loaded.
    """
    import torch

    if spec.method not in METHODS:
        raise UsageError(f"Unknown tuning method '{spec.method}'.", "Use lora or full.")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the caller shows progress; transformers' bars would garble it
    status = on_status or (lambda line: None)
    device = _pick_device(spec.device)
    threads = os.cpu_count() or 1
    if device == "cpu":
        torch.set_num_threads(threads)
    status("Loading the base model…")
    tokenizer = load_tokenizer(spec.base)
    try:
        model, done_before = _load_model(spec, device)
    except (OSError, ValueError) as error:
        raise BackendError(
            f"Cannot load the base model '{spec.base}' ({str(error).splitlines()[0][:160]}).",
            "Name a model folder, `bundled`, or a model already in your Hugging Face cache.",
        ) from None
    seq = max(16, min(spec.seq_len, _context(model)))
    status("Reading and tokenizing your text…")
    corpus = encode_documents(tokenizer, train_docs, heldout_docs)
    train_ids = torch.frombuffer(bytearray(corpus.train.tobytes()), dtype=torch.int32).long()
    heldout_ids = torch.frombuffer(bytearray(corpus.heldout.tobytes()), dtype=torch.int32).long()
    starts = torch.frombuffer(bytearray(corpus.doc_starts.tobytes()), dtype=torch.int32).long()
    if heldout_ids.numel() < 3:
        raise UsageError("There is no held-out text to measure the tuning with.", "Give quillmate more text.")
    # A short text trains on shorter windows rather than not at all.
    seq = min(seq, max(8, train_ids.numel() // 2))
    if train_ids.numel() <= seq + 1:
        raise UsageError("There is too little text to train on.", "Give quillmate at least a few pages.")

    torch.manual_seed(spec.seed)
    gen = torch.Generator().manual_seed(spec.seed + done_before)
    status("Measuring the model before tuning…")
    before = evaluate(model, heldout_ids, seq, spec.eval_tokens)
    sample_before = _sample(model, tokenizer, spec.sample_prompt, spec.sample_tokens, spec.seed)

    base_lr = spec.lr if spec.lr is not None else (5e-4 if spec.method == FULL else 1e-3)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=base_lr, betas=(0.9, 0.95), weight_decay=0.01)
    if spec.resume and (spec.out / RESUME_DIR / "optimizer.pt").is_file():
        optimizer.load_state_dict(torch.load(spec.out / RESUME_DIR / "optimizer.pt", weights_only=True))
    budget_s = (spec.minutes or 0) * 60
    steps_goal = spec.steps or 0
    if steps_goal <= 0 and budget_s <= 0:
        raise UsageError("Give the tuning a budget: --steps N or --minutes N.")

    model.train()
    started = last_save = time.monotonic()
    step, tokens, interrupted = 0, 0, False
    ema: float | None = None
    window_tokens, window_start, rate = 0, started, 0.0
    log: list[dict[str, float]] = [{"step": done_before, "heldout_loss": round(before, 4)}]
    n = train_ids.numel() - seq - 1

    def progress(now: float) -> float:
        done = 0.0
        if steps_goal:
            done = max(done, step / steps_goal)
        if budget_s:
            done = max(done, (now - started) / budget_s)
        return min(1.0, done)

    def state() -> dict[str, Any]:
        return {"steps": done_before + step, "device": device, "method": spec.method}

    status(f"Training on {device} ({'all ' + str(threads) + ' CPU cores' if device == 'cpu' else 'GPU'})…")
    try:
        while progress(time.monotonic()) < 1.0:
            if should_stop is not None and should_stop():
                interrupted = True
                break
            lr = lr_at(progress(time.monotonic()), base_lr, warmup_frac=0.05)
            for group in optimizer.param_groups:
                group["lr"] = lr
            rand = torch.randint(0, max(1, n), (spec.batch_size,), generator=gen)
            pick = torch.randint(0, starts.numel(), (spec.batch_size,), generator=gen)
            aligned = starts[pick].clamp(max=max(0, n - 1))
            # Half the windows start at a document's beginning, so its "Story:" heading is learnt.
            offsets = torch.where(torch.rand(spec.batch_size, generator=gen) < 0.5, aligned, rand)
            x = torch.stack([train_ids[o : o + seq + 1] for o in offsets.tolist()]).to(device)
            logits = model(input_ids=x[:, :-1]).logits
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), x[:, 1:].reshape(-1))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            step += 1
            tokens += x[:, 1:].numel()
            window_tokens += x[:, 1:].numel()
            value = float(loss.item())
            ema = value if ema is None else 0.9 * ema + 0.1 * value
            now = time.monotonic()
            if now - window_start >= 2.0 or rate == 0.0:
                rate = window_tokens / max(1e-6, now - window_start)
                window_tokens, window_start = 0, now
            if step % 10 == 0:
                log.append(
                    {"step": done_before + step, "train_loss": round(ema, 4), "seconds": round(now - started, 1)}
                )
            if on_step is not None:
                total = steps_goal if steps_goal and not budget_s else None
                on_step(StepReport(step, total, ema, rate, now - started, progress(now)))
            if spec.checkpoint_minutes and now - last_save >= spec.checkpoint_minutes * 60:
                _save(model, tokenizer, spec, optimizer, state())
                last_save = time.monotonic()
    except KeyboardInterrupt:
        interrupted = True  # the step in flight is dropped (at worst half-applied: one small step)
    seconds = time.monotonic() - started
    status("Saving the model…")
    _save(model, tokenizer, spec, optimizer, state())
    status("Measuring the model after tuning…")
    after = evaluate(model, heldout_ids, seq, spec.eval_tokens)
    sample_after = _sample(model, tokenizer, spec.sample_prompt, spec.sample_tokens, spec.seed)
    log.append({"step": done_before + step, "heldout_loss": round(after, 4)})
    return TuneResult(
        steps=step,
        total_steps=done_before + step,
        tokens=tokens,
        seconds=round(seconds, 1),
        device=device,
        threads=threads if device == "cpu" else 0,
        trainable_parameters=sum(p.numel() for p in trainable),
        parameters=sum(p.numel() for p in model.parameters()),
        perplexity_before=math.exp(before),
        perplexity_after=math.exp(after),
        sample_before=sample_before,
        sample_after=sample_after,
        interrupted=interrupted,
        train_tokens=int(train_ids.numel()),
        heldout_tokens=int(heldout_ids.numel()),
        log=log,
    )
