"""Benchmark harness (I/O): run one client as a child process and measure what it cost.

Wall time from the parent's monotonic clock; CPU (user + sys) and peak RSS from os.wait4 of
that child (done by spawn.py), so they include every descendant it reaped (Ansible's forks and
ssh processes) and nothing of the server side. The summed RSS of the process tree is
sampled from /proc: ru_maxrss is the largest single process, not Ansible's 100 workers.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results"
VENV_PY = REPO / ".venv" / "bin" / "python"
FLEETMON = REPO / ".venv" / "bin" / "fleetmon"
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
# No benchmark writes the machine's real history: `fleetmon run` (fleet.cli_argv) records
# a default run's history in a file of the benchmark's temporary folder; any other fleetmon
# the benchmarks start has none unless the caller sets FLEETMON_HISTORY (history_bench.py
# measures the history with files of its own).
os.environ.setdefault("FLEETMON_HISTORY", "none")


@dataclass(frozen=True, slots=True)
class Measured:
    """One child run: its costs, exit status and the JSON summary it printed last (if any)."""

    wall_s: float
    cpu_s: float
    maxrss_mb: float
    tree_rss_mb: float
    rc: int
    #: Most file descriptors the child itself held at one sample (sockets, pipes, files).
    peak_fds: int
    summary: Mapping[str, Any] = field(default_factory=dict)
    stderr_tail: str = ""


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/children") as f:
                kids += [int(p) for p in f.read().split()]
    return kids


def tree_rss_kb(root: int) -> int:
    """Summed resident set of `root`'s descendants (shared pages counted each time)."""
    total, todo = 0, _children(root)
    while todo:
        pid = todo.pop()
        with contextlib.suppress(OSError, ValueError, IndexError), open(f"/proc/{pid}/statm") as f:
            total += int(f.read().split()[1]) * PAGE_KB
        todo += _children(pid)
    return total


def run_measured(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout_s: float = 600.0,
    stdout_path: str | Path | None = None,
    nofile: tuple[int, int | None] | None = None,
    sample_s: float = 0.25,
) -> Measured:
    """Run argv to completion; the last stdout line, when it is a JSON object, is its summary.

    `nofile`: (soft, hard or None to keep) open-file limits for the child.
    """
    out_file = open(stdout_path, "wb") if stdout_path else None  # noqa: SIM115 (closed below)
    fd, usage_path = tempfile.mkstemp(prefix="fleetmon-bench-usage-", suffix=".json")
    os.close(fd)
    limit = "-" if nofile is None else f"{nofile[0]}:{nofile[1] if nofile[1] is not None else ''}"
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-S", str(BENCH_DIR / "spawn.py"), usage_path, limit, *argv],
        env=dict(env) if env is not None else None,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=out_file if out_file is not None else subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # a timeout kills the spawner and the client together
    )
    peak = [0, 0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(sample_s):
            peak[0] = max(peak[0], tree_rss_kb(proc.pid))
            for kid in _children(proc.pid):
                with contextlib.suppress(OSError):
                    peak[1] = max(peak[1], len(os.listdir(f"/proc/{kid}/fd")))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    chunks: dict[str, bytes] = {}

    def drain(name: str, stream: Any) -> None:
        chunks[name] = stream.read()

    readers = [threading.Thread(target=drain, args=("err", proc.stderr))]
    if out_file is None:
        readers.append(threading.Thread(target=drain, args=("out", proc.stdout)))
    for r in readers:
        r.start()
    timer = threading.Timer(timeout_s, lambda: os.killpg(proc.pid, signal.SIGKILL))
    timer.start()
    try:
        proc.wait()
    finally:
        timer.cancel()
        done.set()
    wall = time.monotonic() - start
    try:
        usage = json.loads(Path(usage_path).read_text())
    except (OSError, json.JSONDecodeError):
        usage = {"cpu_s": float("nan"), "maxrss_kb": 0, "rc": proc.returncode}
    finally:
        Path(usage_path).unlink(missing_ok=True)
    for r in readers:
        r.join()
    sampler.join()
    if out_file is not None:
        out_file.close()
    summary: dict[str, Any] = {}
    lines = chunks.get("out", b"").decode("utf-8", "replace").strip().splitlines()
    if lines and lines[-1].startswith("{"):
        with contextlib.suppress(json.JSONDecodeError):
            summary = json.loads(lines[-1])
    return Measured(
        wall_s=wall,
        cpu_s=usage["cpu_s"],
        maxrss_mb=usage["maxrss_kb"] / 1024,
        tree_rss_mb=peak[0] / 1024,
        rc=usage["rc"],
        peak_fds=peak[1],
        summary=summary,
        stderr_tail=chunks.get("err", b"").decode("utf-8", "replace")[-2000:],
    )


def median_of(runs: Sequence[Measured], key: Callable[[Measured], float]) -> float:
    """The median of one figure over the repetitions."""
    return statistics.median(key(r) for r in runs)


def summarise(runs: Sequence[Measured], hosts: int) -> dict[str, Any]:
    """Median figures of repeated runs of one client (per-host CPU from whole-process CPU)."""
    return {
        "runs": len(runs),
        "wall_s": median_of(runs, lambda r: r.wall_s),
        "wall_s_all": [round(r.wall_s, 3) for r in runs],
        "cpu_s": median_of(runs, lambda r: r.cpu_s),
        "cpu_ms_per_host": median_of(runs, lambda r: r.cpu_s) / hosts * 1000,
        "maxrss_mb": median_of(runs, lambda r: r.maxrss_mb),
        "tree_rss_mb": median_of(runs, lambda r: r.tree_rss_mb),
        "peak_fds": max(r.peak_fds for r in runs),
        "rc": [r.rc for r in runs],
        "summary": dict(runs[-1].summary),
    }


def machine() -> dict[str, Any]:
    """Facts that make figures comparable: CPUs, load, Python, fd limit."""
    return {
        "cpus": os.cpu_count(),
        "loadavg_1m": os.getloadavg()[0],
        "python": platform.python_version(),
        "kernel": platform.release(),
        "nofile": resource.getrlimit(resource.RLIMIT_NOFILE),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def save(name: str, doc: Mapping[str, Any]) -> Path:
    """Write results/<name>.json and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    return path


def table(rows: Iterable[Sequence[object]], headers: Sequence[str]) -> str:
    """A plain aligned text table (no dependency, so the peers venv could print it too)."""
    cells = [[str(h) for h in headers], *[[_fmt(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
    return "-" if v is None else str(v)


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, None when either is missing or b is 0."""
    if a is None or b is None or b == 0:
        return None
    return a / b


def log(msg: str) -> None:
    """Progress on stderr, so stdout stays the tables."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def as_dict(m: Measured) -> dict[str, Any]:
    """A Measured as plain JSON data."""
    return asdict(m)
