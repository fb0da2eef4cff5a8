"""Crash safety: a writer process is killed with SIGKILL at random moments, hundreds of times.

A small fork server (a fresh Python that has imported quillmate) forks each writer, so a
writer starts in milliseconds. The writer keeps typing words and accepting "generations"
into one session and logs every change it makes and every change the autosaver reports
saved. After each SIGKILL the test checks that the database opens, passes
``PRAGMA integrity_check``, holds a clean prefix of what was typed, holds everything that
was acknowledged as saved, and (for writers that lived long enough) everything typed
more than one second before the kill.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from assistant.sessions import SessionStore

REPO = Path(__file__).resolve().parents[1]
KILLS = int(os.environ.get("QUILLMATE_CRASH_KILLS", "200"))
BUDGET = float(os.environ.get("QUILLMATE_CRASH_BUDGET", "90"))
GUARANTEE = 1.0  # seconds: a change older than this at the kill must be on disk

FORK_SERVER = textwrap.dedent("""
    import os, sys, time
    from assistant.sessions import SessionStore

    def writer(db_path, session_id, log_path):
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        def emit(line):
            os.write(fd, (line + "\\n").encode())
        emit(f"B {time.monotonic():.6f}")
        store = SessionStore(db_path)
        session = store.open(session_id)
        doc = session.document
        i = len(doc.text.split())
        session.on_saved = lambda version: emit(f"S {version}")
        emit(f"R {i} {time.monotonic():.6f}")
        while True:
            if i % 7 == 3:  # an accepted generation: saved at once
                eid = session.record_generation("continue", {"i": i}, {"temperature": 0.8}, "test", "fake")
                session.accept(eid, 0, text=f"m{i} ")
            else:
                doc.insert(len(doc), f"w{i} ")
            emit(f"M {i} {doc.version} {time.monotonic():.6f}")
            i += 1
            time.sleep(0.002)

    for line in sys.stdin:
        db_path, session_id, log_path = line.split()
        pid = os.fork()
        if pid == 0:
            try:
                writer(db_path, session_id, log_path)
            finally:
                os._exit(1)
        print(pid, flush=True)
        sys.stdin.readline()  # "reap"
        os.waitpid(pid, 0)
        print("reaped", flush=True)
""")


def token(i: int) -> str:
    return f"m{i}" if i % 7 == 3 else f"w{i}"


def check_after_kill(db_path: Path, session_id: str, log: str, kill_time: float, long_run: bool) -> int:
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    store = SessionStore(db_path)
    assert store.recovered is None
    session = store.open(session_id, read_only=True)
    text = session.document.text
    store.close()
    words = text.split()
    k = len(words)
    assert text == "".join(token(i) + " " for i in range(k)), "the saved text is not a clean prefix"
    for span in session.document.spans():
        first = text[span.start : span.end].lstrip()[:1]
        if first:
            assert (span.author == "model") == (first == "m")
    made: list[tuple[int, int, float]] = []
    saved_version = -1
    for line in log.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] == "M":
            made.append((int(parts[1]), int(parts[2]), float(parts[3])))
        elif len(parts) == 2 and parts[0] == "S":
            saved_version = max(saved_version, int(parts[1]))
    acked = [i for i, version, _ in made if version <= saved_version]
    if acked:
        assert k > max(acked), f"word {max(acked)} was acknowledged as saved but is missing"
    if long_run:
        old = [i for i, _, t in made if t <= kill_time - GUARANTEE]
        assert old, "the writer never got going"
        assert k > max(old), f"word {max(old)} was typed over {GUARANTEE} s before the kill but is missing"
    return k


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "win32", reason="needs fork and SIGKILL")
def test_sigkill_at_random_moments_never_loses_saved_work(tmp_path: Path) -> None:
    db_path = tmp_path / "data" / "sessions.db"
    store = SessionStore(db_path)
    session = store.create(title="crash test")
    session_id = session.id
    session.close()
    store.close()
    server = subprocess.Popen(
        [sys.executable, "-c", FORK_SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    rng = random.Random(int(os.environ.get("QUILLMATE_CRASH_SEED", "1234")))
    started = time.monotonic()
    kills = long_runs = 0
    words = 0
    try:
        assert server.stdin is not None and server.stdout is not None
        while kills < KILLS and time.monotonic() - started < BUDGET:
            long_run = kills % 20 == 10
            lifetime = rng.uniform(1.2, 1.5) if long_run else rng.uniform(0.0, 0.2)
            log_path = tmp_path / f"writer-{kills}.log"
            server.stdin.write(f"{db_path} {session_id} {log_path}\n")
            server.stdin.flush()
            pid = int(server.stdout.readline())
            time.sleep(lifetime)
            os.kill(pid, signal.SIGKILL)
            kill_time = time.monotonic()
            server.stdin.write("reap\n")
            server.stdin.flush()
            assert server.stdout.readline().strip() == "reaped"
            kills += 1
            long_runs += long_run
            log = log_path.read_text() if log_path.exists() else ""
            words = check_after_kill(db_path, session_id, log, kill_time, long_run)
            log_path.unlink(missing_ok=True)
    finally:
        server.kill()
        server.wait()
    elapsed = time.monotonic() - started
    print(f"\n{kills} kills ({long_runs} after > 1 s) in {elapsed:.1f} s; {words} words survived")
    assert kills >= KILLS, f"only {kills} kills in {BUDGET} s"
    assert words > 100
