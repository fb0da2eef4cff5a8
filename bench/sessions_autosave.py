"""Benchmark: opening and autosaving large co-writing sessions.

For sessions of 10,000 and 100,000 words (each with 5,000 generation events, about 40% of
the words accepted model text) it measures:

* the time to open the store and the session (text, spans, event summaries);
* the time of one autosave after a one-character edit in the middle of the text (the work
  the background saver does, run here on the calling thread), and the bytes it appends
  to the WAL;
* the time of one keystroke in the document (typing at the end, and in the middle);
* the database size.

Run:  python bench/sessions_autosave.py [--repeat 15] [--dir /tmp/somewhere]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from assistant.sessions import SessionStore
from backends.base import GenerationParams, GenerationResult, Notice, Usage

WORDS = ["the", "sea", "keeper", "lamp", "climbed", "night", "storm", "harbour", "light", "slowly", "and", "rain"]


def words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)) + " "


def build(path: Path, total_words: int, events: int, seed: int = 1) -> str:
    """A session of ``total_words`` words with ``events`` accepted generations; returns its id."""
    rng = random.Random(seed)
    store = SessionStore(path, autosave_delay=3600)
    session = store.create(title=f"bench {total_words}")
    session._schedule = lambda urgent=False: None  # type: ignore[method-assign]  # one save at the end
    doc = session.document
    doc._on_change = None
    per_event = total_words / events
    model_words = max(1, round(per_event * 0.4))
    writer_words = max(1, round(per_event) - model_words)
    params = GenerationParams(temperature=0.8, max_new_tokens=60, num_alternatives=2)
    for _ in range(events):
        doc.insert(len(doc), words(rng, writer_words))
        eid = session.record_generation(
            "continue",
            {"text": doc.text[-6000:], "notes": "A storm is coming."},
            params,
            "local",
            "gpt2",
            prompt_tokens=900,
        )
        alt = words(rng, model_words)
        session.record_result(
            eid,
            GenerationResult(
                texts=(alt, words(rng, model_words)),
                finish_reasons=("stop", "length"),
                usage=Usage(900, 40),
                notices=(Notice("truncated", "The oldest 4,000 words were left out."),),
                model="gpt2",
            ),
        )
        session.accept(eid, 0, pos=len(doc), text=alt)
    del session._schedule
    session.flush()
    session.close()
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return session.id


def median_ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:.1f} ms"


def bench(folder: Path, total_words: int, events: int, repeat: int) -> dict[str, str]:
    path = folder / f"sessions-{total_words}.db"
    t0 = time.perf_counter()
    sid = build(path, total_words, events)
    build_s = time.perf_counter() - t0

    opens = []
    for _ in range(repeat):
        t = time.perf_counter()
        store = SessionStore(path, autosave_delay=3600)
        session = store.open(sid)
        opens.append(time.perf_counter() - t)
        session.close()
        store.close()

    store = SessionStore(path, autosave_delay=3600)
    session = store.open(sid)
    doc = session.document
    text_len = len(doc)
    word_count = len(doc.text.split())
    doc.insert(0, "x")  # warm up: opens the saver's connection
    session.flush()
    session._conn.execute("PRAGMA wal_autocheckpoint = 0")  # let the WAL grow so its growth can be measured
    wal = Path(str(path) + "-wal")
    rng = random.Random(7)
    saves, wal_bytes = [], []
    for _ in range(repeat):
        doc.insert(rng.randrange(len(doc) // 4, 3 * len(doc) // 4), "y")
        before = wal.stat().st_size
        t = time.perf_counter()
        session.flush()
        saves.append(time.perf_counter() - t)
        wal_bytes.append(wal.stat().st_size - before)

    keys_end, keys_mid = [], []
    for _ in range(300):  # typing at the end ...
        t = time.perf_counter()
        doc.insert(len(doc), "z")
        keys_end.append(time.perf_counter() - t)
    mid = len(doc) // 2
    while (doc.attribution_at(mid - 1) or doc.attribution_at(0)).author != "writer":
        mid += 1
    for i in range(300):  # ... and in the middle, inside writer text
        t = time.perf_counter()
        doc.insert(mid + i, "q")
        keys_mid.append(time.perf_counter() - t)
    t = time.perf_counter()
    stats = session.stats()
    stats_s = time.perf_counter() - t
    session.close()
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return {
        "words": f"{word_count:,}",
        "characters": f"{text_len:,}",
        "events": f"{events:,}",
        "provenance spans": f"{len(doc.spans()):,}",
        "build + first full save": f"{build_s:.1f} s",
        "open store + session": median_ms(opens),
        "autosave after 1-char edit": median_ms(saves),
        "WAL bytes per autosave": f"{statistics.median(wal_bytes):,.0f}",
        "keystroke at the end": f"{statistics.median(keys_end) * 1e6:.0f} us",
        "keystroke in the middle": f"{statistics.median(keys_mid) * 1e6:.0f} us",
        "statistics (uncached)": f"{stats_s * 1000:.0f} ms ({stats.model_share:.0%} model)",
        "database size": f"{path.stat().st_size / 1e6:.2f} MB",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15, help="samples per median")
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--dir", type=Path, default=None, help="folder for the databases (default: a temp folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp)
        results = {n: bench(folder, n, args.events, args.repeat) for n in (10_000, 100_000)}
    print(f"sessions autosave benchmark: medians of {args.repeat}; SQLite WAL, synchronous=FULL")
    print(f"{'':28}{'10k words':>22}{'100k words':>22}")
    for name in results[10_000]:
        print(f"{name:28}{results[10_000][name]:>22}{results[100_000][name]:>22}")


if __name__ == "__main__":
    main()
