"""Batched decoding: concurrent requests to one local model share each forward pass.

A single thread per model (:class:`Batcher`) runs the decoding loop. A request that arrives
while others are writing joins at the next step: its prompt is computed on its own (as
``generate`` would, reusing the prefix cache), the first word is chosen, and its keys and
values are left-padded into the batch's ``DynamicCache``. Each step then feeds every
row's last token at once, with an attention mask over the padding and each row's own
position ids. A row that ends (stop sequence, end of text, max tokens, cancelled) leaves
the batch at once, and the padding no row needs any more is cut off the front.

Each row keeps what makes it its own request: the logits processors ``generate`` would
build for it (repetition penalty, at least one token, suppressed tokens, banned phrases,
biases, word alternatives, temperature, top-k, top-p), applied to that row's tokens only,
and a random generator seeded with its own seed. A seeded request therefore draws the same
random numbers however many others share its steps.

What batching cannot promise is bit-for-bit equal logits: a row computed among others goes
through matrix products of another shape, whose sums round differently in the last bits
(about 1e-5 on the bundled model). Text only changes where two words were that close, which
is rare; with the same requests joining at the same steps the output is always the same.

The loop holds the model's :class:`~backends.gpt2.TurnLock` while it has rows and steps
aside at each step for whatever else waits for the model (beam search, several
alternatives, scoring), so those still take turns with the batch.

torch and transformers are imported only when a request is prepared.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from backends.shutdown import stop_at_exit


class _Turns(Protocol):
    """The part of ``TurnLock`` the loop uses."""

    def acquire(self) -> None: ...
    def release(self) -> None: ...
    def step_aside(self) -> None: ...
    @property
    def others_waiting(self) -> bool: ...


@dataclass
class BatchJob:
    """One request for the batch: a prompt, how to choose each token, and where tokens go.

    Attributes:
        ids: The prompt's tokens.
        processors: The logits processors ``generate`` would use for this request alone, in order.
        sample: Draw tokens at random (else take the likeliest).
        generator: The request's own random generator (None: torch's global one).
        max_new_tokens: The most tokens to write.
        on_token: Receives each new token, in order.
        finished: True once the request needs no more tokens (a stop sequence or end of text).
        cancel: Set when the reader has gone away.
        keep_cache: Keep the finished row's keys and values in the model's prefix cache.
    """

    ids: Sequence[int]
    processors: Sequence[Callable[[Any, Any], Any]]
    sample: bool
    generator: Any
    max_new_tokens: int
    on_token: Callable[[int], None]
    finished: Callable[[], bool]
    cancel: threading.Event
    keep_cache: bool = True
    reused: int = 0
    """Prompt tokens taken from the prefix cache."""
    written: int = 0
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


def prepare_job(model: Any, ids: Sequence[int], kwargs: dict[str, Any], seed: int | None, **job: Any) -> BatchJob:
    """A job whose processors and sampling are exactly what ``model.generate(**kwargs)`` would use.

    ``kwargs`` are ``generate``'s keyword arguments for one row without beams; ``seed``
    seeds the job's own generator (None draws from torch's global generator).
    """
    import torch

    options = dict(kwargs)
    custom = options.pop("logits_processor", None)
    max_new_tokens = int(options["max_new_tokens"])
    device = model.device
    # generate()'s own steps, so each row gets the processors it would get alone.
    config, _ = model._prepare_generation_config(None, **options)
    model._prepare_special_tokens(config, True, device=device)
    processors = model._get_logits_processor(
        generation_config=config, input_ids_seq_length=len(ids), logits_processor=custom, device=device
    )
    generator = None
    if seed is not None:
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)
    return BatchJob(list(ids), processors, bool(config.do_sample), generator, max_new_tokens, **job)


class _Row:
    """A job in the batch: its tokens so far (prompt, written, and the next to feed)."""

    def __init__(self, job: BatchJob, device: Any) -> None:
        import torch

        self.job = job
        self.length = len(job.ids)
        self.last = job.ids[-1]
        self.error: BaseException | None = None
        self.tokens = torch.zeros((1, self.length + job.max_new_tokens), dtype=torch.long, device=device)
        self.tokens[0, : self.length] = torch.tensor(job.ids, dtype=torch.long, device=device)

    def choose(self, logits: Any) -> None:
        """Pick the next token from this row's logits (1 x vocabulary) and hand it on."""
        import torch

        job = self.job
        tokens, scores = self.tokens[:, : self.length], logits
        for processor in job.processors:  # as LogitsProcessorList does, without its per-call signature check
            scores = processor(tokens, scores)
        if job.sample:
            probs = torch.nn.functional.softmax(scores, dim=-1)
            token = int(torch.multinomial(probs, num_samples=1, generator=job.generator)[0, 0])
        else:
            token = int(torch.argmax(scores, dim=-1)[0])
        self.tokens[0, self.length] = token
        self.last = token
        self.length += 1
        job.written += 1
        job.on_token(token)

    @property
    def over(self) -> bool:
        job = self.job
        return self.error is not None or job.cancel.is_set() or job.finished() or job.written >= job.max_new_tokens


class Batcher:
    """The decoding loop of one model; :meth:`run` hands it a job and waits for the job to end.

    Args:
        model: A causal language model (GPT-2 family) in eval mode.
        turns: The model's turn lock.
        prefix_cache: The model's prefix cache (``backends.prefix_cache``), used under ``turns``.
    """

    def __init__(self, model: Any, turns: _Turns, prefix_cache: Any) -> None:
        self.model = model
        self.turns = turns
        self.prefix_cache = prefix_cache
        self._waiting: list[BatchJob] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._jobs: dict[int, BatchJob] = {}  # every job not yet ended, waiting or in the batch
        self._stopping = False
        self.steps = 0
        """Batched steps taken so far."""
        self.widest = 0
        """The most rows one step has carried."""

    def run(self, job: BatchJob) -> None:
        """Write ``job`` among whatever else is being written; returns when it has ended.

        Raises:
            Exception: what went wrong in the model, if anything did.
        """
        with self._cond:
            if self._stopping:
                raise RuntimeError("The program is closing.")
            self._waiting.append(job)
            self._jobs[id(job)] = job
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="quillmate-batch", daemon=True)
                self._thread.start()
                stop_at_exit(self._thread, self.stop)
            self._cond.notify_all()
        try:
            job.done.wait()
        finally:
            with self._cond:
                self._jobs.pop(id(job), None)
        if job.error is not None:
            raise job.error

    def stop(self) -> None:
        """End every job at its next step and let the loop's thread return (at exit: see backends.shutdown)."""
        with self._cond:
            self._stopping = True
            for job in self._jobs.values():
                job.cancel.set()
            self._cond.notify_all()

    def _take_waiting(self) -> list[BatchJob]:
        with self._cond:
            jobs, self._waiting = self._waiting, []
            return jobs

    def _loop(self) -> None:
        while True:
            with self._cond:
                if (
                    not self._cond.wait_for(lambda: bool(self._waiting) or self._stopping, timeout=30)
                    or not self._waiting
                ):
                    self._thread = None  # idle (or stopped): the next job starts a fresh thread
                    return
            self.turns.acquire()
            try:
                _Batch(self).drive()
            finally:
                self.turns.release()


class _Batch:
    """The rows being written now, their shared cache and its attention mask."""

    def __init__(self, batcher: Batcher) -> None:
        self.batcher = batcher
        self.model = batcher.model
        self.device = batcher.model.device
        self.rows: list[_Row] = []
        self.cache: Any = None
        self.mask: Any = None  # rows x cached tokens: 1 where a row has a token, 0 for padding

    def drive(self) -> None:
        """Take in jobs and step until no row is left and none is waiting."""
        import torch

        with torch.inference_mode():
            while True:
                joining = [row for row in map(self._start, self.batcher._take_waiting()) if row is not None]
                try:
                    if joining:
                        self._join(joining)
                    if not self.rows:
                        return
                    self._step()
                    self._drop_finished()
                except Exception as error:  # the shared step failed: every row in it ends with the error
                    for row in {id(r): r for r in [*self.rows, *(r for r, _ in joining)]}.values():
                        self._end(row, error)
                    self.rows, self.cache, self.mask = [], None, None
                    continue
                if self.batcher.turns.others_waiting:
                    self.batcher.turns.step_aside()

    def _start(self, job: BatchJob) -> tuple[_Row, Any] | None:
        """Compute a new job's prompt and its first token; None when it ends there."""
        import torch

        try:
            row = _Row(job, self.device)
            if job.cancel.is_set():
                self._end(row)
                return None
            cache = None
            if job.keep_cache and self.batcher.prefix_cache is not None:
                cache, job.reused = self.batcher.prefix_cache.take(job.ids)
            else:
                from transformers import DynamicCache

                cache = DynamicCache()
            rest = torch.tensor([list(job.ids[job.reused :])], dtype=torch.long, device=self.device)
            output = self.model(input_ids=rest, cache=cache, use_cache=True, logits_to_keep=1)
            row.choose(output.logits[:, -1].to(dtype=torch.float32, copy=True))
        except Exception as error:
            job.error = error
            job.done.set()
            return None
        if row.over:
            self._end(row, cache=cache)
            return None
        return row, cache

    def _join(self, joining: list[tuple[_Row, Any]]) -> None:
        """Left-pad the new rows' caches and the batch's to one length and stack them."""
        import torch
        from transformers import DynamicCache

        parts: list[tuple[Any, Any]] = []  # (cache, mask) per group of rows
        if self.rows:
            parts.append((self.cache, self.mask))
        for _, cache in joining:
            parts.append((cache, torch.ones((1, cache.get_seq_length()), dtype=torch.long, device=self.device)))
        width = max(mask.shape[1] for _, mask in parts)
        layers = []
        for index in range(len(parts[0][0].layers)):
            keys, values = [], []
            for cache, mask in parts:
                layer = cache.layers[index]
                pad = (0, 0, width - mask.shape[1], 0)
                keys.append(torch.nn.functional.pad(layer.keys, pad))
                values.append(torch.nn.functional.pad(layer.values, pad))
            layers.append((torch.cat(keys), torch.cat(values)))
        self.mask = torch.cat([torch.nn.functional.pad(mask, (width - mask.shape[1], 0)) for _, mask in parts])
        self.cache = DynamicCache(ddp_cache_data=layers)
        self.rows.extend(row for row, _ in joining)

    def _step(self) -> None:
        """Feed every row's last token at once and choose each row's next."""
        import torch

        rows = self.rows
        last = torch.tensor([[row.last] for row in rows], device=self.device)
        positions = torch.tensor([[row.length - 1] for row in rows], device=self.device)
        self.mask = torch.cat([self.mask, torch.ones((len(rows), 1), dtype=torch.long, device=self.device)], dim=1)
        output = self.model(
            input_ids=last, attention_mask=self.mask, position_ids=positions, cache=self.cache, use_cache=True
        )
        logits = output.logits[:, -1].to(dtype=torch.float32, copy=True)
        self.batcher.steps += 1
        self.batcher.widest = max(self.batcher.widest, len(rows))
        for index, row in enumerate(rows):
            try:
                row.choose(logits[index : index + 1])
            except Exception as error:  # this row's own processors or reader: it alone ends
                row.error = error

    def _drop_finished(self) -> None:
        import torch

        keep = [i for i, row in enumerate(self.rows) if not row.over]
        if len(keep) == len(self.rows):
            return
        for i, row in enumerate(self.rows):
            if i not in keep:
                self._end(row, row.error, None if row.error else self._row_cache(i))
        self.rows = [self.rows[i] for i in keep]
        if not keep:
            self.cache, self.mask = None, None
            return
        index = torch.tensor(keep, device=self.device)
        self.cache.batch_select_indices(index)
        self.mask = self.mask[index]
        front = int(self.mask.any(dim=0).to(torch.int8).argmax())  # padding every row still left has
        if front:
            self.mask = self.mask[:, front:]
            for layer in self.cache.layers:
                layer.keys = layer.keys[:, :, front:]
                layer.values = layer.values[:, :, front:]

    def _row_cache(self, index: int) -> Any:
        """Row ``index``'s keys and values without its padding, as a cache of its own."""
        if not self.rows[index].job.keep_cache:
            return None
        from transformers import DynamicCache

        pad = int((self.mask[index] == 0).sum())
        return DynamicCache(
            ddp_cache_data=[
                (layer.keys[index : index + 1, :, pad:].clone(), layer.values[index : index + 1, :, pad:].clone())
                for layer in self.cache.layers
            ]
        )

    def _end(self, row: _Row, error: BaseException | None = None, cache: Any = None) -> None:
        job = row.job
        job.error = error
        if cache is not None and error is None and job.keep_cache and self.batcher.prefix_cache is not None:
            held = cache.get_seq_length()
            if 0 < held < row.length:
                self.batcher.prefix_cache.store(row.tokens[0, :held].tolist(), cache)
        job.done.set()
