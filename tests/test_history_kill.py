"""kill -9 at random moments of a write loses at most that run and never corrupts the file.

A real child process records runs of a 30-host fleet in a loop (each a few tens of ms of
writing, retention included) and prints each run's time once committed; the test kills it
with SIGKILL at a random moment, then checks the file: `PRAGMA integrity_check` is ok,
every run the child reported is there whole, and nothing of a half-written run is.
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
from clirun import ROOT

pytestmark = pytest.mark.slow

CHILD = textwrap.dedent(
    """
    import dataclasses, sys
    from datetime import UTC, datetime
    sys.path.insert(0, sys.argv[2])
    from reportfactory import fleet_report
    from fleetmon.history import open_history, record_run, Retention

    base = fleet_report(30, 20, seed=7)
    hist = open_history(sys.argv[1], writable=True)
    t = hist.conn.execute("SELECT coalesce(max(t), 1795662000) FROM runs").fetchone()[0]
    keep = Retention(raw_s=3 * 3600)  # deletions and rollups happen too
    print("ready", flush=True)
    while True:
        t += 600
        start = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        rep = dataclasses.replace(base, run=dataclasses.replace(base.run, started_at=start))
        record_run(hist, rep, keep)
        print(t, flush=True)
    """
)


def _check(path: Path, committed: list[int], rows_per_run: int) -> list[int]:
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        runs = [t for (t,) in conn.execute("SELECT t FROM runs ORDER BY t")]
        newest = max(runs)
        # Every run the child saw committed is there, unless retention has since dropped it.
        assert [t for t in committed if t >= newest - 3 * 3600] == [
            t for t in runs if t in set(committed)
        ]
        # At most one run more: the newest, committed but killed before it could say so.
        unreported = sorted(set(runs) - set(committed))
        assert unreported in ([], [newest])
        for t in runs:  # each run whole: all its rows, none of a half-written one
            n = sum(
                conn.execute(
                    f"SELECT count(*) FROM raw_{s} WHERE k >= ? AND k < ?",
                    (t << 24, (t + 1) << 24),
                ).fetchone()[0]
                for s in ("host", "disk", "nic", "fs", "vm")
            )
            assert n == rows_per_run, (t, n)
        total = conn.execute("SELECT count(*) FROM raw_vm").fetchone()[0]
        assert total == len(runs) * 29 * 20  # 29 collected hosts of 30, 20 VMs each
        return unreported
    finally:
        conn.close()


def test_kill_9_at_random_points_of_writes(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    rng = random.Random(int(os.environ.get("FLEETMON_KILL_SEED", "13")))
    committed: list[int] = []
    rows_per_run = None
    kills = 0
    for _ in range(12):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), str(ROOT / "tests")],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        for _ in range(rng.randint(0, 3)):
            committed.append(int(child.stdout.readline()))
        time.sleep(rng.uniform(0, 0.08))  # somewhere inside the next write
        child.send_signal(signal.SIGKILL)
        assert child.wait() == -signal.SIGKILL
        kills += 1
        committed += [int(line) for line in child.stdout.read().split()]
        child.stdout.close()
        if rows_per_run is None and committed:
            conn = sqlite3.connect(path)
            t = committed[0]
            rows_per_run = sum(
                conn.execute(
                    f"SELECT count(*) FROM raw_{s} WHERE k >= ? AND k < ?",
                    (t << 24, (t + 1) << 24),
                ).fetchone()[0]
                for s in ("host", "disk", "nic", "fs", "vm")
            )
            conn.close()
        if rows_per_run is not None:
            committed += _check(path, committed, rows_per_run)
    assert kills == 12
    assert len(committed) >= 6
