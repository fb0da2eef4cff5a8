"""Local GPT-2-family models through Hugging Face ``transformers``.

Loads any causal language model of the GPT-2 family (``gpt2``, ``distilgpt2``,
``gpt2-medium``, a fine-tuned folder, or quillmate's bundled offline model) with
``from_pretrained``, lazily on the first request, and keeps it for reuse.
Generation runs in a worker thread and streams token by token; the event loop
never waits on the model.

torch and transformers are imported only when a model is first loaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from backends.base import (
    Backend,
    BackendInfo,
    Capabilities,
    ChatMessage,
    Delta,
    FinishReason,
    GenerationParams,
    GenerationRequest,
    GenerationResult,
    Notice,
    StopFilter,
    StreamEvent,
    TextPart,
    Usage,
    fit_parts,
)
from backends.batching import Batcher, prepare_job
from backends.errors import ConfigError, ModelNotFound
from backends.fim import (
    MARKER_TOKENS,
    FimTokens,
    cannot_see_after,
    end_at_word,
    find_fim_tokens,
    layout_of,
    suffix_room,
    with_resume_stop,
)
from backends.handoff import Handoff
from backends.native_libs import preload_torch_libraries
from backends.prefix_cache import PrefixCache
from backends.shutdown import stop_at_exit
from backends.steering import steering_kwargs
from backends.token_alternatives import add_recorder, beam_notice
from backends.token_mask import add_token_mask

BUNDLED_MODEL_DIR = Path(__file__).resolve().parent / "bundled_model"
BUNDLED_NAME = "bundled"
AUTO_MODEL = "auto"
HUB_DEFAULT = "gpt2"
DEFAULT_CONTEXT = 1024
MAX_ALTERNATIVES = 16
INT8 = "int8"
DTYPES = ("auto", "float32", "float16", "bfloat16", INT8)
"""The values of a local profile's ``dtype``; int8 quantizes the linear layers and runs on the CPU only."""
TRIM_STEP_SHARE = 4
"""A draft that outgrows the context loses its front in steps of 1/4 of the context window.

GPT-2's positions are absolute, so a window that moves by one token cannot reuse any of the
previous request's computation; a front that moves in large steps stays the same for many
requests, and each of them computes only its new words (see backends.prefix_cache).
"""
_OPTIONS = {"model", "device", "dtype", "revision"}


class TurnLock:
    """A lock taken in arrival order, whose holder can step aside for one turn of each waiting thread.

    The shared batch (backends.batching) and the generations that cannot join it (several
    alternatives, beam search, or all with ``batching=False``) take turns token by token (see
    :meth:`step_aside`), so a short request is not stuck behind a long one; anything else that
    uses the model (scoring) takes a whole turn in the same line.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._line: deque[object] = deque()  # the holder first, then the waiting threads in arrival order

    def acquire(self) -> None:
        """Wait for this thread's turn."""
        ticket = object()
        with self._cond:
            self._line.append(ticket)
            self._cond.wait_for(lambda: self._line[0] is ticket)

    def release(self) -> None:
        """End this thread's turn."""
        with self._cond:
            self._line.popleft()
            self._cond.notify_all()

    @property
    def others_waiting(self) -> bool:
        """True when another thread waits for a turn."""
        return len(self._line) > 1

    def step_aside(self) -> None:
        """Let every thread now waiting have a turn, then continue (the holder only)."""
        with self._cond:
            if len(self._line) < 2:
                return
            ticket = self._line.popleft()
            self._line.append(ticket)
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._line[0] is ticket)

    def __enter__(self) -> TurnLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@dataclass
class LoadedModel:
    """A model and tokenizer in memory, shared by every backend that names them."""

    model: Any
    tokenizer: Any
    device: str
    dtype: str
    label: str
    context_window: int
    eos_token_id: int
    load_seconds: float
    lock: TurnLock
    # Key/value caches of recent prompts (see backends.prefix_cache); used under ``lock``.
    prefix_cache: PrefixCache = field(default_factory=PrefixCache)
    # The tokens that let the model fill in the middle (see backends.fim); None: it cannot.
    fim: FimTokens | None = None
    # The decoding loop that lets concurrent requests share each step (see backends.batching).
    batcher: Batcher = field(init=False)

    def __post_init__(self) -> None:
        self.batcher = Batcher(self.model, self.lock, self.prefix_cache)


_cache: dict[tuple[str, str, str, str | None], LoadedModel] = {}
_cache_lock = threading.Lock()


def hub_model_is_cached(model_id: str = HUB_DEFAULT) -> bool:
    """True when ``model_id``'s weights are in the local Hugging Face cache."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    for filename in ("model.safetensors", "pytorch_model.bin"):
        found = try_to_load_from_cache(model_id, filename)
        if isinstance(found, str):
            return True
    return False


def resolve_model(model: str) -> tuple[str, Notice | None]:
    """Turn a profile's ``model`` into something ``from_pretrained`` loads.

    ``auto`` picks GPT-2 from the local Hugging Face cache when it is there, else the
    bundled offline model, and says which. A model named explicitly is never replaced.
    """
    if model == AUTO_MODEL:
        if hub_model_is_cached(HUB_DEFAULT):
            return HUB_DEFAULT, Notice("model", "Using GPT-2 from your Hugging Face cache.")
        return str(BUNDLED_MODEL_DIR), Notice(
            "model",
            "Using quillmate's bundled offline model, a small demo model; "
            'for better writing set model = "gpt2" (needs one download) or use an OpenAI profile.',
        )
    if model == BUNDLED_NAME:
        return str(BUNDLED_MODEL_DIR), None
    return model, None


def _model_json(model: str, filename: str, revision: str | None = None) -> Any:
    """A JSON file of a model, read without loading it: a folder's own, else the Hugging Face cache's copy.

    None when neither is there or it cannot be read.
    """
    target, _ = resolve_model(model)
    path = Path(target).expanduser() / filename
    if not path.is_file():
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            return None
        try:
            found = try_to_load_from_cache(target, filename, revision=revision)
        except ValueError:  # not a folder and not a valid hub name (HFValidationError): loading will say so
            return None
        if not isinstance(found, str):
            return None
        path = Path(found)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def declared_fim_tokens(model: str, revision: str | None = None) -> FimTokens | None:
    """The fill-in-the-middle tokens a model's ``tokenizer.json`` declares (and its embedding has rows for)."""
    data = _model_json(model, "tokenizer.json", revision)
    if not isinstance(data, dict):
        return None
    model_vocab = (data.get("model") or {}).get("vocab")
    vocab = dict(model_vocab) if isinstance(model_vocab, dict) else {}
    for token in data.get("added_tokens") or ():
        if isinstance(token, dict) and "content" in token and "id" in token:
            vocab[token["content"]] = token["id"]
    config = _model_json(model, "config.json", revision)
    rows = config.get("vocab_size") if isinstance(config, dict) else None
    return find_fim_tokens(vocab, rows if isinstance(rows, int) else None, layout_of(config or {}))


def declared_context_window(model: str, revision: str | None = None) -> int | None:
    """The context window a model's ``config.json`` declares, read without loading the model.

    A folder's own file, else the Hugging Face cache's copy; None when neither is there.
    """
    data = _model_json(model, "config.json", revision)
    # The same order as after loading: a declared usable context before the position table.
    for key in ("quillmate_context_window", "n_positions", "max_position_embeddings"):
        value = data.get(key) if isinstance(data, dict) else None
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def pick_device(device: str) -> str:
    """``auto`` picks CUDA, then Apple's MPS, then the CPU."""
    import torch

    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def _pick_dtype(dtype: str, device: str) -> Any:
    import torch

    names = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if dtype == "auto":
        return torch.float16 if device in ("cuda", "mps") else torch.float32
    if dtype == INT8:
        if device != "cpu":
            raise ConfigError(
                f"int8 runs on the CPU only, and this model would run on {device}.",
                f'On {device} use dtype = "float16" or "bfloat16" (as fast, and exact enough), '
                'or set device = "cpu" to use int8.',
            )
        return torch.float32  # loaded in float32, then quantized (backends.int8)
    if dtype not in names:
        raise ConfigError(f"Unknown dtype '{dtype}'.", "Use auto, float32, float16, bfloat16 or int8 (CPU only).")
    return names[dtype]


def load_model(model: str, device: str = "auto", dtype: str = "auto", revision: str | None = None) -> LoadedModel:
    """Load (or reuse) a model and its tokenizer.

    Raises:
        ModelNotFound: when the model is neither local nor downloadable.
    """
    target, _ = resolve_model(model)
    key = (target, device, dtype, revision)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
        loaded = _load_uncached(target, model, device, dtype, revision)
        _cache[key] = loaded
        return loaded


# Any one of these lets transformers load a real tokenizer from a folder.
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "tokenizer.model", "vocab.txt")


def _load_uncached(target: str, requested: str, device: str, dtype: str, revision: str | None) -> LoadedModel:
    started = time.perf_counter()
    preload_torch_libraries()  # the slowest part of the import, without stopping other threads
    import torch  # noqa: F401 - imported here so start-up stays fast
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    resolved_device = pick_device(device)
    torch_dtype = _pick_dtype(dtype, resolved_device)
    is_folder = Path(target).expanduser().is_dir()
    if is_folder:
        target = str(Path(target).expanduser())
    elif target.startswith(("./", "../", "~", "/")):
        raise ModelNotFound(f"No model folder at {target}.", "Check the path in your profile or --model.")

    if is_folder and not any((Path(target) / name).is_file() for name in TOKENIZER_FILES):
        # transformers would build a tokenizer of one token from the config alone, and every
        # text would come out empty; say what is missing instead.
        raise ModelNotFound(
            f"The folder {target} has no tokenizer files ({', '.join(TOKENIZER_FILES)}).",
            "Save the tokenizer next to the model with tokenizer.save_pretrained() on the same folder.",
        )

    def load(local_only: bool) -> tuple[Any, Any]:
        kwargs: dict[str, Any] = {"local_files_only": local_only}
        if revision:
            kwargs["revision"] = revision
        tokenizer = AutoTokenizer.from_pretrained(target, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(target, dtype=torch_dtype, **kwargs)
        return tokenizer, model

    try:
        tokenizer, model = load(local_only=True)
    except (OSError, ValueError) as first_error:
        if is_folder:
            raise ModelNotFound(
                f"The folder {target} does not hold a model quillmate can load ({_short(first_error)}).",
                "It needs config.json, the weights and the tokenizer files, as saved by save_pretrained().",
            ) from None
        if _hub_offline():
            raise ModelNotFound(
                f"The model '{requested}' is not in your Hugging Face cache, and downloads are off "
                "(HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE).",
                f"On a connected machine run `hf download {target}` once, "
                "or use the bundled offline model: --model bundled.",
            ) from None
        unreachable = _hub_unreachable(target)
        if unreachable:
            raise ModelNotFound(
                f"The model '{requested}' is not in your Hugging Face cache and could not be downloaded "
                f"({unreachable}).",
                f"On a connected machine run `hf download {target}` once, "
                "or use the bundled offline model: --model bundled.",
            ) from None
        try:
            tokenizer, model = load(local_only=False)
        except Exception as error:
            raise ModelNotFound(
                f"The model '{requested}' is not in your Hugging Face cache and could not be downloaded "
                f"({_short(error)}).",
                f"On a connected machine run `hf download {target}` once, "
                "or use the bundled offline model: --model bundled.",
            ) from None
    model.to(resolved_device)
    model.eval()
    if dtype == INT8:
        from backends.int8 import quantize_int8

        quantize_int8(model)
    eos = tokenizer.eos_token_id
    if eos is None:
        eos = model.config.eos_token_id or 0
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    # A model may declare a shorter usable context than its position table (e.g. trained on shorter windows).
    context = (
        getattr(model.config, "quillmate_context_window", None)
        or getattr(model.config, "n_positions", None)
        or getattr(model.config, "max_position_embeddings", None)
    )
    label = "bundled" if Path(target) == BUNDLED_MODEL_DIR else (target if not is_folder else Path(target).name)
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        device=resolved_device,
        dtype=INT8 if dtype == INT8 else str(torch_dtype).replace("torch.", ""),
        label=label,
        context_window=int(context or DEFAULT_CONTEXT),
        eos_token_id=int(eos),
        load_seconds=time.perf_counter() - started,
        lock=TurnLock(),
        fim=find_fim_tokens(
            tokenizer.get_vocab(), model.get_input_embeddings().num_embeddings, layout_of(model.config)
        ),
    )


def _hub_offline() -> bool:
    # transformers honours TRANSFORMERS_OFFLINE on its own, so either one means no downloads.
    return any(
        os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def _hub_unreachable(model_id: str, timeout: float = 5.0) -> str | None:
    """Ask the hub about ``model_id`` once, quickly; None when it answers, else why not.

    Without this, an offline machine waits through the download client's retries.
    """
    import httpx
    from huggingface_hub import constants

    url = f"{constants.ENDPOINT.rstrip('/')}/api/models/{model_id}"
    try:
        response = httpx.head(url, timeout=timeout, follow_redirects=True)
    except httpx.HTTPError as error:
        return f"the Hugging Face hub is unreachable: {type(error).__name__}"
    if response.status_code in (401, 404):
        return "no such model on the Hugging Face hub"
    return None


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:160]


def transcript_prompt(messages: Sequence[ChatMessage]) -> tuple[TextPart, ...]:
    """Render a chat as a transcript a base model can continue."""
    parts: list[TextPart] = []
    names = {"system": "", "user": "Writer: ", "assistant": "Companion: "}
    for message in messages:
        parts.append(TextPart(names[message.role]))
        parts.extend(message.content)
        parts.append(TextPart("\n\n"))
    parts.append(TextPart("Companion:"))
    return tuple(parts)


TRANSCRIPT_STOPS = ("\nWriter:", "\nCompanion:")
"""Where a reply in a transcript ends: the model starting the next turn itself."""


def with_transcript_stops(params: GenerationParams) -> GenerationParams:
    """``params`` with the transcript's turn markers added to its stop sequences."""
    missing = tuple(stop for stop in TRANSCRIPT_STOPS if stop not in params.stop)
    return replace(params, stop=params.stop + missing) if missing else params


class _AlternativeStreamer:
    """Receives each step's tokens from ``generate`` and turns them into text deltas.

    Stop sequences are found here: an alternative that reaches one is marked done
    (the stopping criterion then ends it).
    """

    def __init__(
        self,
        tokenizer: Any,
        rows: int,
        stops: Sequence[str],
        eos_token_id: int,
        emit: Callable[[Sequence[Delta]], None],
        cancel: threading.Event,
        max_lines: int | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.eos = eos_token_id
        self.emit = emit
        self._step: list[Delta] | None = None  # this step's deltas while put() collects them
        self.cancel = cancel
        self.tokens: list[list[int]] = [[] for _ in range(rows)]
        self.filters = [StopFilter(stops, max_lines) for _ in range(rows)]
        self.decoded = [0] * rows  # tokens whose text has been fed to the filter
        self.pending = [False] * rows
        self.done = [False] * rows
        self.reasons: list[FinishReason | None] = [None] * rows
        self.first_token_at: float | None = None
        self._prompt_seen = False

    @property
    def texts(self) -> list[str]:
        return [f.text for f in self.filters]

    def put(self, value: Any) -> None:
        if not self._prompt_seen:  # generate() first hands over the prompt itself
            self._prompt_seen = True
            return
        # Every alternative's text of one step is handed over together: one wake-up of the reader.
        self._step = []
        try:
            for row, token in enumerate(value.reshape(-1).tolist()[: len(self.done)]):
                self.put_token(row, token)
        finally:
            step, self._step = self._step, None
            if step:
                self.emit(step)

    def put_token(self, row: int, token: int) -> None:
        """Take one new token of alternative ``row`` (ignored once it is done or the reader has gone)."""
        if self.done[row] or self.cancel.is_set():
            return
        if token == self.eos:
            self._finish(row, "stop")
            return
        self.tokens[row].append(token)
        self._advance(row)

    def _advance(self, row: int, *, final: bool = False) -> None:
        # Byte-level BPE: the text of the tokens since the last piece is the next piece, as long
        # as the last piece ended on a whole character (a half one waits), so the cost per
        # token stays flat however long the text grows.
        tokens = self.tokens[row]
        piece = self.tokenizer.decode(
            tokens[self.decoded[row] :], skip_special_tokens=True, clean_up_tokenization_spaces=False
        )
        if piece.endswith("\ufffd") and not final:  # half of a multi-byte character: wait for the rest
            self.pending[row] = True
            return
        self.pending[row] = False
        self.decoded[row] = len(tokens)
        self._send(row, self.filters[row].feed(piece))
        if self.filters[row].stopped:
            self._finish(row, "stop")

    def _send(self, row: int, chunk: str) -> None:
        if chunk:
            if self.first_token_at is None:
                self.first_token_at = time.perf_counter()
            if self._step is not None:
                self._step.append(Delta(row, chunk))
            else:
                self.emit((Delta(row, chunk),))

    def _finish(self, row: int, reason: FinishReason) -> None:
        if self.done[row]:
            return
        if self.pending[row]:
            self._advance(row, final=True)
            if self.done[row]:  # the last characters completed a stop sequence
                return
        self.done[row] = True
        self.reasons[row] = reason
        self._send(row, self.filters[row].flush())

    def end(self) -> None:
        reason: FinishReason = "cancelled" if self.cancel.is_set() else "length"
        for row in range(len(self.done)):
            self._finish(row, reason)

    def all_done(self) -> bool:
        return all(self.done)


def _make_stopping_criteria(
    streamer: _AlternativeStreamer, cancel: threading.Event, turns: TurnLock | None = None
) -> Any:
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class StopWhenDone(StoppingCriteria):
        none_done: Any = None  # made once: most steps end no alternative

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            if turns is not None and turns.others_waiting:
                _take_turns(turns, input_ids.device)
            rows = input_ids.shape[0]
            if cancel.is_set():
                return torch.ones(rows, dtype=torch.bool, device=input_ids.device)
            # Beam search (only cancellation applies), or no alternative has ended yet.
            if rows != len(streamer.done) or not any(streamer.done):
                if self.none_done is None or self.none_done.shape[0] != rows:
                    self.none_done = torch.zeros(rows, dtype=torch.bool, device=input_ids.device)
                return self.none_done
            return torch.tensor(streamer.done, dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([StopWhenDone()])


def _take_turns(turns: TurnLock, device: Any) -> None:
    """Let the model's other users have a turn each, keeping this generation's random numbers aside.

    Sampling draws from torch's global generator; each generation keeps its own state across the
    others' turns, so a seeded request writes the same text however the requests interleave.
    """
    import torch

    cpu = torch.get_rng_state()
    accelerator = None
    if device.type == "cuda":
        accelerator = torch.cuda.get_rng_state(device)
    elif device.type == "mps":
        accelerator = torch.mps.get_rng_state()
    turns.step_aside()
    torch.set_rng_state(cpu)
    if device.type == "cuda" and accelerator is not None:
        torch.cuda.set_rng_state(accelerator, device)
    elif device.type == "mps" and accelerator is not None:
        torch.mps.set_rng_state(accelerator)


class GPT2Backend(Backend):
    """A GPT-2-family model running on this machine (GPU when there is one)."""

    kind = "gpt2"
    max_concurrency = 16
    """Requests ``quillmate serve`` lets in at once: they share each step (see backends.batching)."""

    def __init__(
        self,
        name: str = "local",
        model: str = AUTO_MODEL,
        device: str = "auto",
        dtype: str = "auto",
        revision: str | None = None,
        *,
        prefix_cache: bool = True,
        batching: bool = True,
    ) -> None:
        super().__init__(name)
        self.model_name = model
        self.device = device
        self.dtype = dtype
        self.revision = revision
        self.prefix_cache = prefix_cache
        """Reuse the computation of earlier prompts that start the same (the output does not change)."""
        self.batching = batching
        """Let concurrent requests of one alternative without beams share each step (backends.batching);
        others, and all requests when this is off, take turns token by token (TurnLock)."""
        self._loaded: LoadedModel | None = None
        self._worker: threading.Thread | None = None
        self._declared_context: int | None = None
        self._declared_fim: bool | None = None

    @classmethod
    def from_options(cls, name: str, options: Mapping[str, Any]) -> GPT2Backend:
        """Build from a config profile; unknown keys are an error."""
        unknown = set(options) - _OPTIONS - {"kind"}
        if unknown:
            raise ConfigError(
                f"Backend profile '{name}' has unknown setting(s): {', '.join(sorted(unknown))}.",
                f"A gpt2 profile takes: {', '.join(sorted(_OPTIONS))}.",
            )
        values: dict[str, Any] = {k: str(v) for k, v in options.items() if k in _OPTIONS}
        return cls(name, **values)

    @property
    def capabilities(self) -> Capabilities:
        context = self._loaded.context_window if self._loaded else self._context_before_loading()
        fim = self._loaded.fim is not None if self._loaded else self._fim_before_loading()
        return Capabilities(
            chat=False,
            completion=True,
            context_window=context,
            max_alternatives=MAX_ALTERNATIVES,
            seed=True,
            top_k=True,
            beams=True,
            repetition_penalty=True,
            phrase_ban="exact",
            phrase_bias=True,
            text_after=fim,
        )

    def _fim_before_loading(self) -> bool:
        """Whether the model's tokenizer declares fill-in-the-middle tokens, read from its files."""
        if self._declared_fim is None:
            self._declared_fim = declared_fim_tokens(self.model_name, self.revision) is not None
        return self._declared_fim

    def _context_before_loading(self) -> int:
        """The model's context window from its config file (the weights stay on disk)."""
        if self._declared_context is None:
            declared = declared_context_window(self.model_name, self.revision)
            self._declared_context = declared or DEFAULT_CONTEXT
        return self._declared_context

    @property
    def loaded(self) -> LoadedModel | None:
        """The model in memory, or None before the first request."""
        return self._loaded

    def _load_sync(self) -> LoadedModel:
        if self._loaded is None:
            self._loaded = load_model(self.model_name, self.device, self.dtype, self.revision)
        return self._loaded

    async def load(self) -> None:
        await asyncio.to_thread(self._load_sync)

    def info(self) -> BackendInfo:
        loaded = self._loaded
        if loaded is None:
            target, _ = resolve_model(self.model_name)
            label = "bundled" if target == str(BUNDLED_MODEL_DIR) else target
            return BackendInfo(self.name, self.kind, label, self.device, self.dtype, self._context_before_loading())
        return BackendInfo(self.name, self.kind, loaded.label, loaded.device, loaded.dtype, loaded.context_window)

    def count_tokens(self, text: str) -> int:
        loaded = self._load_sync()
        return len(loaded.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _head_tokens(self, text: str, count: int) -> str:
        """The start of ``text`` in at most ``count`` tokens, ending at a whole word."""
        tokenizer = self._load_sync().tokenizer
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) <= count:
            return text
        return end_at_word(tokenizer.decode(ids[: max(count, 0)], clean_up_tokenization_spaces=False))

    def _tail_tokens(self, text: str, count: int) -> str:
        """The end of ``text`` in at most ``count`` tokens, its front cut at a multiple of the trim step."""
        loaded = self._load_sync()
        tokenizer = loaded.tokenizer
        if count <= 0:
            return ""
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        drop = len(ids) - count
        if drop > 0:
            step = max(1, loaded.context_window // TRIM_STEP_SHARE)
            drop = -(-drop // step) * step
        return tokenizer.decode(ids[max(drop, 0) :], clean_up_tokenization_spaces=False)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamEvent]:
        params = request.params.validated()
        first_use = self._loaded is None
        loaded = await asyncio.to_thread(self._load_sync)
        notices: list[Notice] = []
        if first_use:
            _, model_notice = resolve_model(self.model_name)
            if model_notice:
                notices.append(model_notice)
        parts: Sequence[TextPart]
        if request.messages is not None:
            parts = transcript_prompt(request.messages)
            params = with_transcript_stops(params)
            notices.append(Notice("info", f"{self.name} is a completion model; the chat was sent as a transcript."))
        else:
            parts = request.prompt or ()
        params, adjusted = self._fit_params(params, loaded.context_window)
        notices.extend(adjusted)
        if beam := beam_notice(params):
            notices.append(beam)
        room = loaded.context_window - params.max_new_tokens
        # The text after the cursor: None writes on from the prompt alone.
        after = None
        if request.has_text_after:
            if loaded.fim is not None and request.messages is None:
                after = await asyncio.to_thread(self._head_tokens, request.suffix, suffix_room(room))
                room -= MARKER_TOKENS + self.count_tokens(after)
                params = with_resume_stop(params, after)
            else:
                notices.append(cannot_see_after())
        fitted = await asyncio.to_thread(fit_parts, parts, room, self.count_tokens, self._tail_tokens)
        truncated = fitted.notice()
        if truncated:
            notices.append(truncated)
        for notice in notices:
            yield notice

        handoff: Handoff[Delta] = Handoff(asyncio.get_running_loop())
        cancel = threading.Event()
        rows = params.num_alternatives
        streamer = _AlternativeStreamer(
            loaded.tokenizer,
            rows,
            params.stop,
            loaded.eos_token_id,
            handoff.put_all,
            cancel,
            params.max_lines,
        )
        outcome: dict[str, Any] = {}
        started = time.perf_counter()
        worker = threading.Thread(
            target=self._generate,
            args=(loaded, fitted.text, params, streamer, cancel, outcome, handoff.close, after),
            name=f"quillmate-{self.name}-generate",
            daemon=True,
        )
        self._worker = worker
        worker.start()
        stop_at_exit(worker, cancel.set)  # a reader that never comes back must not leave it inside torch
        try:
            async for delta in handoff.items():
                yield delta
        finally:
            cancel.set()
            if worker.is_alive():
                await asyncio.to_thread(worker.join)
        elapsed = time.perf_counter() - started
        error = outcome.get("error")
        reasons = tuple(r or ("error" if error else "length") for r in streamer.reasons)
        completion_tokens = outcome.get("completion_tokens", sum(len(t) for t in streamer.tokens))
        yield GenerationResult(
            texts=tuple(streamer.texts),
            finish_reasons=reasons,
            usage=Usage(outcome.get("prompt_tokens", 0), completion_tokens, tuple(len(t) for t in streamer.tokens)),
            time_to_first_token=(streamer.first_token_at - started) if streamer.first_token_at else None,
            tokens_per_second=(completion_tokens / elapsed) if elapsed > 0 and completion_tokens else None,
            notices=tuple(notices),
            model=loaded.label,
            error=error,
            logprobs=_alternatives(outcome.get("recorder"), streamer),
        )

    async def score_texts(self, texts: Sequence[str], *, context: str = "") -> list[tuple[float, int]] | None:
        loaded = await asyncio.to_thread(self._load_sync)
        return await asyncio.to_thread(_score_texts, loaded, list(texts), context)

    def _fit_params(self, params: GenerationParams, context: int) -> tuple[GenerationParams, list[Notice]]:
        notices: list[Notice] = []
        limit = max(16, context - 64)
        if params.max_new_tokens > limit:
            notices.append(
                Notice(
                    "adjusted",
                    f"max tokens lowered from {params.max_new_tokens} to {limit} to fit the "
                    f"model's {context}-token context.",
                )
            )
            params = params.with_overrides(max_new_tokens=limit)
        if params.num_alternatives > MAX_ALTERNATIVES:
            notices.append(Notice("adjusted", f"At most {MAX_ALTERNATIVES} alternatives at once."))
            params = params.with_overrides(num_alternatives=MAX_ALTERNATIVES)
        if params.greedy and params.num_alternatives > 1 and params.num_beams == 1:
            notices.append(Notice("info", "With temperature 0 every alternative is the same; raise it for variety."))
        return params, notices

    def _generate(
        self,
        loaded: LoadedModel,
        prompt: str,
        params: GenerationParams,
        streamer: _AlternativeStreamer,
        cancel: threading.Event,
        outcome: dict[str, Any],
        done: Callable[[], None],
        after: str | None = None,
    ) -> None:
        """Write in this worker thread: in the shared batch when the request can join it, else with
        ``model.generate``, taking turns token by token with the model's other users.

        With ``after`` (the text after the cursor) the model fills in the middle (see backends.fim).
        """
        try:
            import torch

            if self.batching and params.num_beams == 1 and params.num_alternatives == 1:
                self._generate_batched(loaded, prompt, params, streamer, cancel, outcome, after)
                return
            with loaded.lock:
                if cancel.is_set():
                    streamer.end()
                    return
                tokenizer = loaded.tokenizer
                ids = prompt_ids(loaded, prompt, after)
                outcome["prompt_tokens"] = len(ids)
                # One row per alternative (beam search makes its own), so one cached prompt serves them all.
                rows = params.num_alternatives if params.num_beams == 1 else 1
                input_ids = torch.tensor([ids] * rows, device=loaded.device)
                attention_mask = torch.ones_like(input_ids)
                if params.seed is not None:
                    torch.manual_seed(params.seed)
                    if loaded.device == "cuda":
                        torch.cuda.manual_seed_all(params.seed)
                kwargs = _request_kwargs(loaded, params)
                outcome["recorder"] = add_recorder(kwargs, params, tokenizer)
                criteria = _make_stopping_criteria(streamer, cancel, loaded.lock)
                with torch.inference_mode():
                    if params.num_beams > 1:
                        output = loaded.model.generate(
                            input_ids=input_ids, attention_mask=attention_mask, stopping_criteria=criteria, **kwargs
                        )
                        _stream_finished_beams(output[:, input_ids.shape[1] :], streamer, cancel, outcome)
                    else:
                        cache = _cached_prompt(loaded, ids, rows, outcome) if self.prefix_cache else None
                        if cache is not None:
                            kwargs["cache"] = cache
                        output = loaded.model.generate(
                            input_ids=input_ids,
                            attention_mask=attention_mask,
                            stopping_criteria=criteria,
                            streamer=streamer,
                            **kwargs,
                        )
                        if cache is not None:
                            _keep_cache(loaded, output, cache, rows)
        except Exception as error:
            outcome["error"] = f"The local model failed while writing: {_short(error)}"
            streamer.end()
        finally:
            done()

    def _generate_batched(
        self,
        loaded: LoadedModel,
        prompt: str,
        params: GenerationParams,
        streamer: _AlternativeStreamer,
        cancel: threading.Event,
        outcome: dict[str, Any],
        after: str | None,
    ) -> None:
        """Write one alternative as a row of the model's shared batch; returns when the row has ended."""
        if cancel.is_set():
            streamer.end()
            return
        ids = prompt_ids(loaded, prompt, after)
        outcome["prompt_tokens"] = len(ids)
        kwargs = _request_kwargs(loaded, params)
        outcome["recorder"] = add_recorder(kwargs, params, loaded.tokenizer)
        job = prepare_job(
            loaded.model,
            ids,
            kwargs,
            params.seed,
            on_token=lambda token: streamer.put_token(0, token),
            finished=streamer.all_done,
            cancel=cancel,
            keep_cache=self.prefix_cache,
        )
        try:
            loaded.batcher.run(job)
        finally:
            outcome["prefix_reused"] = job.reused


def prompt_ids(loaded: LoadedModel, prompt: str, after: str | None = None) -> list[int]:
    """The tokens ``generate`` starts from: ``prompt``'s, or with ``after`` the fill-in-the-middle layout.

    The two texts are tokenized apart, as the model saw them in training (the markers split them).
    """
    tokenizer = loaded.tokenizer
    before = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    if after is None or loaded.fim is None:
        return before or [loaded.eos_token_id]
    tail = tokenizer(after, add_special_tokens=False)["input_ids"] if after else []
    return loaded.fim.prompt_ids(before, tail)


def _alternatives(recorder: Any, streamer: _AlternativeStreamer) -> tuple[tuple[Any, ...], ...]:
    """Each alternative's word alternatives, when the ``logprobs`` setting asked for them."""
    if recorder is None:
        return ()
    return tuple(
        recorder.alternatives(row, streamer.tokens[row], streamer.texts[row]) for row in range(len(streamer.tokens))
    )


def _score_texts(loaded: LoadedModel, texts: list[str], context: str, batch: int = 16) -> list[tuple[float, int]]:
    """Log-probability sums of each text after ``context``, in small batches (right-padded)."""
    import torch

    tokenizer = loaded.tokenizer
    head = tokenizer(context, add_special_tokens=False)["input_ids"] if context else []
    head = head or [loaded.eos_token_id]  # a document starts after an end-of-text token
    limit = loaded.context_window
    scores: list[tuple[float, int]] = []
    with loaded.lock, torch.inference_mode():
        for start in range(0, len(texts), batch):
            rows = []
            for text in texts[start : start + batch]:
                body = tokenizer(text, add_special_tokens=False)["input_ids"]
                ids = (head + body)[-limit:]
                rows.append((ids, min(len(body), len(ids) - 1)))
            width = max(len(ids) for ids, _ in rows)
            input_ids = torch.full((len(rows), width), loaded.eos_token_id, device=loaded.device)
            mask = torch.zeros((len(rows), width), dtype=torch.long, device=loaded.device)
            for r, (ids, _) in enumerate(rows):
                input_ids[r, : len(ids)] = torch.tensor(ids, device=loaded.device)
                mask[r, : len(ids)] = 1
            logits = loaded.model(input_ids=input_ids, attention_mask=mask).logits.float()
            logprobs = torch.log_softmax(logits, dim=-1)
            for r, (ids, count) in enumerate(rows):
                if count <= 0:
                    scores.append((0.0, 0))
                    continue
                positions = torch.arange(len(ids) - count - 1, len(ids) - 1, device=loaded.device)
                targets = input_ids[r, len(ids) - count : len(ids)]
                scores.append((float(logprobs[r, positions, targets].sum()), count))
    return scores


def _request_kwargs(loaded: LoadedModel, params: GenerationParams) -> dict[str, Any]:
    """``generate``'s keyword arguments for ``params`` on this model: sampling, stops, bans and biases."""
    kwargs = _generate_kwargs(params, loaded.eos_token_id)
    kwargs.update(steering_kwargs(loaded.tokenizer, params))
    # An end-of-text as the very first token would hand the writer nothing; they asked for more words.
    # The layout's markers (fill in the middle) are never part of the writing.
    add_token_mask(kwargs, loaded.eos_token_id, loaded.fim.ids if loaded.fim is not None else ())
    return kwargs


def _generate_kwargs(params: GenerationParams, eos: int) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "max_new_tokens": params.max_new_tokens,
        "pad_token_id": eos,
        "eos_token_id": eos,
        "num_beams": params.num_beams,
        "num_return_sequences": params.num_alternatives if params.num_beams > 1 else 1,
        "repetition_penalty": params.repetition_penalty,
    }
    if params.greedy:
        kwargs["do_sample"] = False
    else:
        kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=params.top_k)
    return kwargs


def _cached_prompt(loaded: LoadedModel, ids: Sequence[int], rows: int, outcome: dict[str, Any]) -> Any:
    """A ``DynamicCache`` for ``generate`` holding as much of the prompt as the model's prefix cache has.

    With several alternatives the rest of the prompt (all but its last token) is computed
    here once and copied to every row, rather than once per row inside ``generate``.
    """
    import torch

    cache, reused = loaded.prefix_cache.take(ids)
    outcome["prefix_reused"] = reused
    if rows > 1:
        if reused < len(ids) - 1:
            rest = torch.tensor([list(ids[reused:-1])], device=loaded.device)
            loaded.model(input_ids=rest, cache=cache, use_cache=True, logits_to_keep=1)
        cache.batch_repeat_interleave(rows)
    return cache


def _keep_cache(loaded: LoadedModel, output: Any, cache: Any, rows: int) -> None:
    """Keep the first alternative's cache (prompt and written tokens) for the next request."""
    import torch

    if rows > 1:
        cache.batch_select_indices(torch.tensor([0], device=output.device))
    length = cache.get_seq_length()
    if 0 < length < output.shape[1]:
        loaded.prefix_cache.store(output[0, :length].tolist(), cache)


def _stream_finished_beams(
    new_tokens: Any, streamer: _AlternativeStreamer, cancel: threading.Event, outcome: dict[str, Any]
) -> None:
    """Beam search cannot stream; hand each finished alternative over in one piece."""
    total = 0
    streamer._prompt_seen = True
    for row, sequence in enumerate(new_tokens.tolist()):
        if row >= len(streamer.done):
            break
        for token in sequence:
            if token == streamer.eos:
                break
            streamer.tokens[row].append(token)
        total += len(streamer.tokens[row])
        ended_early = len(streamer.tokens[row]) < len(sequence)
        streamer._advance(row, final=True)
        if not streamer.done[row]:
            streamer._finish(row, "stop" if ended_early else "length")
    outcome["completion_tokens"] = total
    if cancel.is_set():
        for row in range(len(streamer.reasons)):
            streamer.reasons[row] = "cancelled"


def unload_all() -> None:
    """Forget every loaded model (frees memory; the next request loads again)."""
    with _cache_lock:
        _cache.clear()
    with contextlib.suppress(ImportError):
        import gc

        gc.unfreeze()  # an app may have frozen a model with its libraries, out of the collector's reach
        gc.collect()
