"""`make bench` (I/O): every benchmark of issues 2, 7, 13, 15 and 18, one figures table,
results/*.json.

Runs, in this order: the real-sshd comparison with the peers (fleet.py), the simulator
(simulated.py), offline replay (offline.py), the defaults (defaults.py), then the HTML and
inventory benchmarks, the history's, the live modes' (live_bench.py on the simulator,
stream_sshd.py against a real sshd), the containers' (containers_bench.py), the cluster's
(cluster_bench.py) and the exports' (exports_bench.py: Prometheus, OpenMetrics, InfluxDB).
Each part's own table is printed as it ends; the closing table holds every target with its
figure. A part that crashes is reported and the others still run.
    .venv/bin/python benchmarks/run_all.py [--quick] [--only fleet simulated ...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import cluster_bench
import containers_bench
import defaults
import exports_bench
import fleet
import history_bench
import live_bench
import offline
import simulated
from measure import BENCH_DIR, VENV_PY, log, machine, save, table

PARTS = (
    "fleet", "simulated", "offline", "defaults", "html", "inventory", "history", "live",
    "stream_sshd", "containers", "cluster", "exports",
)  # fmt: skip


def _fleet(quick: bool) -> dict[str, Any]:
    doc = fleet.bench([100, 300], rounds=1 if quick else 2, forks=100, peers=True,
                      ansible_rounds=1)  # fmt: skip
    print(fleet.render(doc), flush=True)
    return doc


def _simulated(quick: bool) -> dict[str, Any]:
    doc = simulated.bench([1000] if quick else [1000, 5000], rounds=1 if quick else 2,
                          forks=200, latency_ms=50.0)  # fmt: skip
    print(simulated.render(doc), flush=True)
    return doc


def _offline(quick: bool) -> dict[str, Any]:
    doc = offline.bench(10_000, rounds=1, source="sim")
    print(offline.render(doc), flush=True)
    return doc


def _defaults(quick: bool) -> dict[str, Any]:
    forks = [50, 100, 200, 400]
    doc: dict[str, Any] = {"machine": machine()}
    if not quick:
        doc["forks_sshd"] = defaults.forks_sshd(300, forks)
    doc.update(defaults.simulated_checks(1000, forks))
    print(defaults.render(doc), flush=True)
    return doc


def _history(quick: bool) -> dict[str, Any]:
    doc = history_bench.bench(quick=quick)
    print(history_bench.render(doc), flush=True)
    return doc


def _live(quick: bool) -> dict[str, Any]:
    # Issue 17: 1,000 hosts at 2 s ticks; --quick: 2 minutes instead of 10.
    doc = live_bench.bench(1000, minutes=2.0 if quick else 10.0, time_scale=1.0, rules=True,
                           connect_timeout=None)  # fmt: skip
    print(live_bench.render(doc), flush=True)
    return doc


def _containers(quick: bool) -> dict[str, Any]:
    doc = containers_bench.bench(quick=quick)
    print(containers_bench.render(doc), flush=True)
    return doc


def _cluster(quick: bool) -> dict[str, Any]:
    doc = cluster_bench.bench([2000] if quick else [10_000], rounds=1 if quick else 2,
                              small=200, small_rounds=1 if quick else 3)  # fmt: skip
    print(cluster_bench.render(doc), flush=True)
    return doc


def _exports(quick: bool) -> dict[str, Any]:
    doc = exports_bench.bench(1000, 20, repeat=1 if quick else 3)
    print(exports_bench.render(doc), flush=True)
    return doc


def _script(name: str) -> Callable[[bool], dict[str, Any]]:
    def run(quick: bool) -> dict[str, Any]:
        # check=True: a script that crashes is a part that failed, as the others are.
        res = subprocess.run([str(VENV_PY), str(BENCH_DIR / name)], check=True)
        return {"rc": res.returncode}

    return run


RUNNERS: dict[str, Callable[[bool], dict[str, Any]]] = {
    "fleet": _fleet,
    "simulated": _simulated,
    "offline": _offline,
    "defaults": _defaults,
    "html": _script("html_bench.py"),
    "inventory": _script("inventory_bench.py"),
    "history": _history,
    "live": _live,
    "stream_sshd": _script("stream_sshd.py"),
    "containers": _containers,
    "cluster": _cluster,
    "exports": _exports,
}


def _target(rows: list[tuple[object, ...]], what: str, value: float | None, limit: float) -> None:
    met = None if value is None else value <= limit
    rows.append((what, value, f"<= {limit:.3g}", {None: "n/a", True: "met", False: "MISSED"}[met]))


def targets(results: dict[str, Any]) -> list[tuple[object, ...]]:
    """(what, figure, target, verdict) for every target of issues 2 and 7 that was measured."""
    rows: list[tuple[object, ...]] = []
    for n, part in results.get("fleet", {}).get("sizes", {}).items():
        for who in ("cli", "collect"):
            r = part["ratios"].get(who)
            if r is None:
                continue
            label = "fleetmon run" if who == "cli" else "fleetmon collect+pipeline"
            for key, limit in fleet.TARGETS.items():
                _target(rows, f"sshd N={n}: {label} {key}", r[key], limit)
    sim = results.get("simulated", {}).get("sizes", {}).get("1000")
    if sim is not None:
        cli = sim["clients"]["cli"]
        _target(rows, "sim N=1000: wall - interval (s)", cli["wall_minus_interval_s"],
                simulated.TARGET_OVER_INTERVAL_S)  # fmt: skip
        _target(rows, "sim N=1000: peak RSS (MB)", cli["maxrss_mb"], simulated.TARGET_RSS_MB)
    off = results.get("offline")
    if off and "cli" in off:
        _target(rows, "offline 10,000 hosts: seconds", off["cli"]["wall_s"], offline.TARGET_S)
    hist = results.get("history")
    if hist and "size" in hist:
        t = history_bench.TARGETS
        _target(rows, "history: write 100 hosts x 20 VMs (ms)", hist["write_100"]["median_ms"],
                t["write_100_ms"])  # fmt: skip
        _target(rows, "history: write 1,000 hosts x 20 VMs (ms)",
                hist["write_1000"]["median_ms"], t["write_1000_ms"])  # fmt: skip
        _target(rows, "history: bytes per stored value", hist["size"]["bytes_per_value"],
                t["bytes_per_value"])  # fmt: skip
        _target(rows, "history: retention pass (s)", hist["size"]["retention_pass_s"],
                t["retention_pass_s"])  # fmt: skip
        _target(rows, "history: HTML queries, 100 x 20 (s)", hist["size"]["html_queries_s"],
                t["html_queries_s"])  # fmt: skip
        _target(rows, "history: predict_linear 24 h, 1,000 hosts (s)",
                hist["rule"]["added_s"], t["predict_linear_1000_s"])  # fmt: skip
    ctr = results.get("containers")
    if ctr and "probe" in ctr:
        for v in ("v2", "v1"):
            _target(rows, f"200 containers: probe CPU added, cgroup {v} (ms)",
                    ctr["probe"][v]["added_ms"], containers_bench.TARGET_PROBE_MS)  # fmt: skip
        _target(rows, "200 containers: client CPU added per host (ms)",
                ctr["client"]["cli_cpu_ms_per_host"]["added"],
                containers_bench.TARGET_CLIENT_MS)  # fmt: skip
    _cluster_targets(rows, results.get("cluster", {}))
    exp = results.get("exports")
    if exp and "prometheus" in exp:
        for fmt in ("prometheus", "openmetrics", "influx"):
            _target(rows, f"exports 1,000 x 20: {fmt} CPU (s)", exp[fmt]["cpu_best_s"],
                    exports_bench.TARGETS["seconds"])  # fmt: skip
            _target(rows, f"exports 1,000 x 20: {fmt} extra memory (MB)",
                    exp[fmt]["held_extra_mb"], exports_bench.TARGETS["extra_mb"])  # fmt: skip
    fd = results.get("defaults", {}).get("fd_limit", {})
    for label, r in fd.items():
        good = r["ok"] == r["hosts"] and not r["emfile_seen"]
        rows.append((f"{label}: all ok, no EMFILE", f"{r['ok']}/{r['hosts']}", "all",
                     "met" if good else "MISSED"))  # fmt: skip
    live = results.get("live")
    if live and "cpu_ms_per_host_tick" in live:
        _target(rows, "live N=1000: client CPU per host per tick (ms)",
                live["cpu_ms_per_host_tick"], live_bench.TARGET_CPU_MS_PER_HOST_TICK)  # fmt: skip
    return rows


def _cluster_targets(rows: list[tuple[object, ...]], doc: dict[str, Any]) -> None:
    t = cluster_bench
    for n, part in doc.get("sizes", {}).items():
        _target(rows, f"sim N={n}, one machine: wall - interval (s)",
                part["local"]["wall_minus_interval_s"], t.TARGET_OVER_INTERVAL_S)  # fmt: skip
        _target(rows, f"sim N={n}, one machine: peak RSS (MB)", part["local"]["maxrss_mb"],
                t.TARGET_RSS_MB)  # fmt: skip
        _target(rows, f"sim N={n}: --cluster local:2 / local, total CPU", part["cpu_ratio"],
                t.TARGET_CLUSTER_CPU_RATIO)  # fmt: skip
        _target(rows, f"sim N={n}: --cluster local:2 / local, wall", part["wall_ratio"],
                t.TARGET_CLUSTER_WALL_RATIO)  # fmt: skip
    small = doc.get("small")
    if small:
        _target(rows, f"sim N={small['hosts']}: cluster overhead (s)", small["overhead_s"],
                t.TARGET_OVERHEAD_S)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run the parts, print the closing targets table, save results/all.json."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="one round, smaller sizes (a smoke run)")
    ap.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    args = ap.parse_args(argv)
    results: dict[str, Any] = {"machine": machine(), "quick": args.quick}
    failed = []
    started = time.monotonic()
    for part in args.only:
        t0 = time.monotonic()
        log(f"=== {part}")
        try:
            results[part] = RUNNERS[part](args.quick)
        except Exception:
            failed.append(part)
            results[part] = {"error": traceback.format_exc()}
            log(f"{part} failed:\n{traceback.format_exc()}")
        else:
            if part not in ("html", "inventory"):
                save(part, results[part])
        results.setdefault("durations_s", {})[part] = time.monotonic() - t0
        print(flush=True)
    results["total_s"] = time.monotonic() - started
    print(table(targets(results), ("target", "figure", "target", "verdict")))
    print(f"\nall parts in {results['total_s']:.0f} s; saved {save('all', results)}")
    if failed:
        print(f"FAILED to run: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
