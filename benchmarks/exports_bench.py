"""Benchmark of the exports (issue 18): Prometheus text, OpenMetrics and InfluxDB line
protocol of 1,000 hosts x 20 VMs must each take at most 2 s and 150 MB more memory.

For each format: CPU and wall time (best and median of --repeat runs), the bytes and lines
made, and the memory it takes on top of the report, as tracemalloc's peak (measured in a
run of its own: tracing slows the code) both written as it comes (a file, standard output)
and held whole (a push, which may send it again). The baseline is prometheus_client's own
writer (generate_latest over render.prom.ReportCollector), whose bytes are the same.
The report comes from tests/reportfactory.py.
Usage: .venv/bin/python benchmarks/exports_bench.py [--hosts 1000] [--vms 20] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import reportfactory  # type: ignore[import-not-found,unused-ignore]  # tests/ on sys.path
from prometheus_client.exposition import generate_latest

from fleetmon.model import Report
from fleetmon.render.influx import influx_chunks
from fleetmon.render.prom import ReportCollector, prometheus_chunks

TARGETS = {"seconds": 2.0, "extra_mb": 150.0}


def _formats(report: Report) -> dict[str, Callable[[], Iterable[str | bytes]]]:
    return {
        "prometheus": lambda: prometheus_chunks(report),
        "openmetrics": lambda: prometheus_chunks(report, openmetrics=True),
        "influx": lambda: influx_chunks(report),
        "prometheus_client (baseline)": lambda: (generate_latest(ReportCollector(lambda: report)),),
    }


def _consume(chunks: Iterable[str | bytes]) -> tuple[int, int]:
    """Bytes and lines, each piece dropped once counted (as a file is written)."""
    size = lines = 0
    for c in chunks:
        data = c.encode("utf-8") if isinstance(c, str) else c
        size += len(data)
        lines += data.count(b"\n")
    return size, lines


def _peak_mb(make: Callable[[], Iterable[str | bytes]], hold: bool) -> float:
    tracemalloc.start()
    try:
        if hold:
            kept = list(make())
            del kept
        else:
            _consume(make())
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def bench(hosts: int = 1000, vms: int = 20, repeat: int = 3) -> dict[str, Any]:
    """Every format timed and measured on one report."""
    t0 = time.perf_counter()
    report = reportfactory.fleet_report(hosts, vms)
    doc: dict[str, Any] = {"hosts": hosts, "vms": vms, "report_s": time.perf_counter() - t0}
    for name, make in _formats(report).items():
        cpu, wall = [], []
        size = lines = 0
        for _ in range(repeat):
            w0, c0 = time.perf_counter(), time.process_time()
            size, lines = _consume(make())
            wall.append(time.perf_counter() - w0)
            cpu.append(time.process_time() - c0)
        doc[name] = {
            "cpu_best_s": min(cpu),
            "cpu_median_s": statistics.median(cpu),
            "wall_best_s": min(wall),
            "wall_median_s": statistics.median(wall),
            "bytes": size,
            "lines": lines,
            "streamed_extra_mb": _peak_mb(make, hold=False),
            "held_extra_mb": _peak_mb(make, hold=True),
        }
    return doc


def render(doc: dict[str, Any]) -> str:
    """The figures as a table, each against its budget."""
    rows = [f"exports: {doc['hosts']} hosts x {doc['vms']} VMs (budget {TARGETS['seconds']} s, "
            f"{TARGETS['extra_mb']:.0f} MB extra)"]  # fmt: skip
    head = f"{'format':30} {'CPU best':>9} {'median':>7} {'wall':>7} {'MB':>7} {'lines':>8} "
    rows.append(head + f"{'streamed':>9} {'held':>7}")
    for name, r in doc.items():
        if not isinstance(r, dict):
            continue
        rows.append(
            f"{name:30} {r['cpu_best_s']:8.2f}s {r['cpu_median_s']:6.2f}s "
            f"{r['wall_best_s']:6.2f}s {r['bytes'] / 1e6:7.1f} {r['lines']:8d} "
            f"{r['streamed_extra_mb']:7.1f}MB {r['held_extra_mb']:5.1f}MB"
        )
    return "\n".join(rows)


def over_budget(doc: dict[str, Any]) -> list[str]:
    """The formats of fleetmon's own that missed a budget."""
    missed = []
    for name in ("prometheus", "openmetrics", "influx"):
        r = doc[name]
        if r["cpu_best_s"] > TARGETS["seconds"] or r["held_extra_mb"] > TARGETS["extra_mb"]:
            missed.append(name)
    return missed


def main(argv: list[str] | None = None) -> int:
    """Measure, print the table; exit 1 when a format is over budget."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--vms", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    doc = bench(args.hosts, args.vms, args.repeat)
    print(render(doc))
    missed = over_budget(doc)
    if missed:
        print(f"OVER BUDGET: {', '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
