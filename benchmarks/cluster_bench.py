"""Benchmark (issue 15): `fleetmon run` on one machine against `fleetmon run --cluster local:2`,
10,000 simulated hosts (and the cluster path's overhead on 200), turn about in each round.

The simulator (its own process, 50 ms latency) shares the two cores with the client: its CPU
is measured beside each run. For each run: wall minus the interval, the whole tree's CPU
(the client and, with --cluster, its worker processes and the fork server they come from,
which the client stops and reaps before it exits: wait4), the client process's own CPU
(RUSAGE_SELF), the shards' own CPU (the task threads, from the report's notes), peak RSS of
the largest process and of the whole tree, and the 1-minute load average after the run.
    .venv/bin/python benchmarks/cluster_bench.py [--hosts 10000] [--rounds 2] [--small 200]
        [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from measure import BENCH_DIR, VENV_PY, log, machine, run_measured, save, table
from simulated import simulator

#: Issue 15's targets.
TARGET_OVER_INTERVAL_S = 120.0  # 10,000 hosts, one machine, no cluster
TARGET_RSS_MB = 1024.0
TARGET_CLUSTER_CPU_RATIO = 1.1  # total client CPU per host, cluster / local
TARGET_CLUSTER_WALL_RATIO = 0.9
TARGET_OVERHEAD_S = 2.0  # 200 hosts, cluster wall - local wall
INTERVAL_S = 1.0
FORKS = 200
MODES: dict[str, tuple[str, ...]] = {"local": (), "cluster": ("--cluster", "local:2")}
_TASK_CPU = re.compile(r"\(([\d.]+) s CPU\)$")


def run_once(inv: Path, mode: str, work: Path, sim_cpu: Any) -> dict[str, Any]:
    """One `fleetmon run` of the inventory in `mode`, measured."""
    out = work / f"{mode}.json"
    self_file = work / f"{mode}.self.json"
    argv = [
        str(VENV_PY), str(BENCH_DIR / "selfcpu.py"), str(self_file), "run", str(inv), "-q",
        "--interval", str(INTERVAL_S), "-f", str(FORKS), "--format", "json", "-o", str(out),
        "--history", "none", "--no-lock", *MODES[mode],
    ]  # fmt: skip
    cpu0 = sim_cpu()
    m = run_measured(argv, timeout_s=1800)
    sim = sim_cpu() - cpu0
    doc = json.loads(out.read_text()) if out.exists() else {}
    own = json.loads(self_file.read_text())["self_cpu_s"] if self_file.exists() else None
    notes = [n for n in doc.get("notes", []) if n.startswith(("cluster", "worker"))]
    tasks = [float(t.group(1)) for n in notes if (t := _TASK_CPU.search(n))]
    return {
        "wall_s": m.wall_s,
        "cpu_s": m.cpu_s,
        "self_cpu_s": own,
        "maxrss_mb": m.maxrss_mb,
        "tree_rss_mb": m.tree_rss_mb,
        "sim_cpu_s": sim,
        "rc": m.rc,
        "ok": doc.get("summary", {}).get("collected"),
        "task_cpu_s": sum(tasks) if tasks else None,
        "load_1m": os.getloadavg()[0],
        "notes": notes,
        "stderr": m.stderr_tail[-400:],
    }


def _summary(runs: list[dict[str, Any]], n: int) -> dict[str, Any]:
    def per_host_ms(key: str) -> list[float]:
        return [r[key] / n * 1000 for r in runs if r[key] is not None]

    out: dict[str, Any] = {"runs": runs}
    keys = ("cpu_s", "self_cpu_s", "task_cpu_s", "sim_cpu_s")
    for key, label in ((k, k.removesuffix("_s")) for k in keys):
        vals = per_host_ms(key)
        out[f"{label}_ms_per_host"] = statistics.median(vals) if vals else None
        out[f"{label}_ms_per_host_range"] = [min(vals), max(vals)] if vals else None
    walls = [r["wall_s"] - INTERVAL_S for r in runs]
    out["wall_minus_interval_s"] = statistics.median(walls)
    out["wall_minus_interval_range"] = [min(walls), max(walls)]
    out["maxrss_mb"] = max(r["maxrss_mb"] for r in runs)
    out["tree_rss_mb"] = max(r["tree_rss_mb"] for r in runs)
    out["load_1m_range"] = [min(r["load_1m"] for r in runs), max(r["load_1m"] for r in runs)]
    return out


def bench_size(n: int, rounds: int) -> dict[str, Any]:
    """Both modes, `rounds` times, taking turns, against one simulator of n hosts."""
    with tempfile.TemporaryDirectory(prefix=f"fleetmon-cluster-{n}-") as tmp:
        work = Path(tmp)
        log(f"simulator: {n} hosts, 50 ms latency; forks {FORKS}")
        with simulator(n, work, latency_ms=50.0) as fleet:
            runs: dict[str, list[dict[str, Any]]] = {m: [] for m in MODES}
            for r in range(rounds):
                order = list(MODES) if r % 2 == 0 else list(reversed(MODES))
                for mode in order:
                    res = run_once(fleet.inventory, mode, work, fleet.cpu_s)
                    runs[mode].append(res)
                    log(
                        f"  N={n} {mode:8s} round {r + 1}: wall {res['wall_s']:7.2f} s  "
                        f"cpu {res['cpu_s']:7.2f} s (client {res['self_cpu_s'] or 0:.2f}, "
                        f"shards {res['task_cpu_s'] or 0:.2f})  sim {res['sim_cpu_s']:6.2f} s  "
                        f"rss {res['maxrss_mb']:5.0f} MB  ok {res['ok']}/{n}  "
                        f"load {res['load_1m']:.1f}"
                    )
    doc = {m: _summary(rs, n) for m, rs in runs.items()}
    loc, clu = doc["local"], doc["cluster"]
    pairs = list(zip(runs["local"], runs["cluster"], strict=True))
    doc["ratios"] = {
        "cpu": [c["cpu_s"] / lo["cpu_s"] for lo, c in pairs],
        "client_self_cpu": [
            c["self_cpu_s"] / lo["self_cpu_s"]
            for lo, c in pairs
            if c["self_cpu_s"] and lo["self_cpu_s"]
        ],
        "wall": [c["wall_s"] / lo["wall_s"] for lo, c in pairs],
        "overhead_s": [c["wall_s"] - lo["wall_s"] for lo, c in pairs],
    }
    doc["cpu_ratio"] = statistics.median(doc["ratios"]["cpu"])
    doc["wall_ratio"] = statistics.median(doc["ratios"]["wall"])
    doc["overhead_s"] = statistics.median(doc["ratios"]["overhead_s"])
    doc["hosts"] = n
    del loc, clu
    return doc


def bench(sizes: Sequence[int], rounds: int, small: int, small_rounds: int) -> dict[str, Any]:
    """The big fleet in both modes, then the small one (the cluster's fixed overhead)."""
    doc: dict[str, Any] = {"machine": machine(), "interval_s": INTERVAL_S, "forks": FORKS}
    doc["sizes"] = {str(n): bench_size(n, rounds) for n in sizes}
    if small:
        doc["small"] = bench_size(small, small_rounds)
    return doc


def render(doc: dict[str, Any]) -> str:
    """One row per size and mode, then the ratios against the targets."""
    rows = []
    parts = [*doc["sizes"].values(), *([doc["small"]] if "small" in doc else [])]
    for part in parts:
        for mode in MODES:
            s = part[mode]
            lo, hi = s["wall_minus_interval_range"]
            load = "{:.1f}-{:.1f}".format(*s["load_1m_range"])
            rows.append((part["hosts"], mode, f"{lo:.1f}-{hi:.1f}", s["cpu_ms_per_host"],
                         s["self_cpu_ms_per_host"], s["task_cpu_ms_per_host"],
                         s["sim_cpu_ms_per_host"], s["maxrss_mb"], s["tree_rss_mb"],
                         load))  # fmt: skip
    heads = ("N", "mode", "wall-interval s", "CPU ms/host (tree)", "client CPU ms/host",
             "shards CPU ms/host", "sim CPU ms/host", "peak RSS MB", "tree RSS MB",
             "load 1m")  # fmt: skip
    notes = []
    for part in doc["sizes"].values():
        r, lo = part["ratios"], part["local"]
        notes.append(
            f"N={part['hosts']}: cluster/local CPU {_range(r['cpu'])} (target <= "
            f"{TARGET_CLUSTER_CPU_RATIO}), client-own CPU {_range(r['client_self_cpu'])}, wall "
            f"{_range(r['wall'])} (target <= {TARGET_CLUSTER_WALL_RATIO}); local wall-interval "
            f"{lo['wall_minus_interval_s']:.1f} s (target <= {TARGET_OVER_INTERVAL_S:g}),"
            f" peak RSS {lo['maxrss_mb']:.0f} MB (target <= {TARGET_RSS_MB:g})"
        )
    if "small" in doc:
        small = doc["small"]
        notes.append(
            f"N={small['hosts']}: cluster overhead {_range(small['ratios']['overhead_s'])}"
            f" s (target <= {TARGET_OVERHEAD_S:g}), wall {_range(small['ratios']['wall'])},"
            f" CPU {_range(small['ratios']['cpu'])}"
        )
    return table(rows, heads) + "\n" + "\n".join(notes)


def _range(values: Sequence[float]) -> str:
    if not values:
        return "n/a"
    lo, hi = min(values), max(values)
    return f"{lo:.2f}" if abs(hi - lo) < 0.005 else f"{lo:.2f}-{hi:.2f}"


def main(argv: list[str] | None = None) -> int:
    """Run, print the table, save results/cluster.json."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--hosts", type=int, nargs="*", default=[10_000])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--small", type=int, default=200, help="0: no overhead part")
    ap.add_argument("--small-rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2, help="--cluster local:N")
    args = ap.parse_args(argv)
    MODES["cluster"] = ("--cluster", f"local:{args.workers}")
    doc = bench(args.hosts, args.rounds, args.small, args.small_rounds)
    print(render(doc))
    print(f"saved {save('cluster', doc)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
