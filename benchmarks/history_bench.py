"""Benchmark of the history (issue 13, section 4): writes, bytes per value, retention,
the HTML report's queries, a predict_linear rule on 1,000 hosts.

Each figure is measured in this process on files of its own under a temporary folder (the
machine's real history is never touched), from tests/reportfactory.py's fleets moved over
time by the simulator's timeline (sim/timeline.py):
- write: one run of 100 hosts x 20 VMs and of 1,000 hosts x 20 VMs into a file already
  holding a day of runs (median of --rounds runs); target <= 100 ms and <= 1 s; and of
  100 hosts x 20 VMs x 20 containers against the same without containers (rounds
  interleaved, files holding 3 hours of runs);
- size: 8 days of 5-minute runs of 100 hosts x 20 VMs (2,304 runs): file bytes per value
  stored (raw values, and every number including the hourly/daily rollups); target <= 6;
- retention: the pass at the end of a run that closes an hour and drops the oldest raw
  rows, on that 8-day file; target <= 1 s;
- html: the sparkline and forecast queries of the HTML report on that file; target <= 1 s;
- rule: a predict_linear rule over 24 h on 1,000 hosts with a day of 5-minute runs: the
  fetch of its points plus its evaluation; target <= 1 s;
- page: the HTML report of 500 hosts x 20 VMs with every host's sparklines; 3 MB, 2 s CPU.
Usage: .venv/bin/python benchmarks/history_bench.py [--quick] [--days 8]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import reportfactory  # type: ignore[import-not-found,unused-ignore]  # tests/ on sys.path

from fleetmon.cli.historyhtml import report_trends
from fleetmon.cli.recording import Recorder
from fleetmon.history import open_history, record_run, retention
from fleetmon.history.store import transaction
from fleetmon.model import HostSpec, Row, catalog
from fleetmon.rules import evaluate, parse_rules
from fleetmon.rules.ruleset import RuleSet
from fleetmon.sim.timeline import timeline

TARGETS = {
    "write_100_ms": 100.0,
    "write_1000_ms": 1000.0,
    "bytes_per_value": 6.0,
    "retention_pass_s": 1.0,
    "html_queries_s": 1.0,
    "predict_linear_1000_s": 1.0,
}
EVERY = 300
T0 = 1_795_392_000  # 2026-11-23T00:00:00Z, a Monday


def _fill(path: Path, base: Any, runs: int, start: int = T0) -> tuple[int, float]:
    """Write `runs` runs; return the values written and the seconds it took."""
    hist = open_history(str(path), writable=True)
    values = 0
    began = time.perf_counter()
    for rep in timeline(base, start, runs, EVERY):
        values += record_run(hist, rep).values
    hist.close()
    return values, time.perf_counter() - began


def bench_write(tmp: Path, hosts: int, rounds: int) -> dict[str, Any]:
    """One run's write into a file holding a day of runs."""
    base = reportfactory.fleet_report(hosts, 20)
    path = tmp / f"write-{hosts}.sqlite"
    _fill(path, base, 24 if hosts > 100 else 288)
    hist = open_history(str(path), writable=True)
    times, values = [], 0
    later = T0 + 86_400
    for rep in timeline(base, later, rounds, EVERY):
        t0 = time.perf_counter()
        values = record_run(hist, rep).values
        times.append(time.perf_counter() - t0)
    hist.close()
    return {"hosts": hosts, "vms": hosts * 20, "values": values,
            "median_ms": 1000 * statistics.median(times), "best_ms": 1000 * min(times)}  # fmt: skip


def with_containers(base: Any, per_host: int) -> Any:
    """The fleet with `per_host` Docker containers on each collected host (every ctr.*
    metric of the catalogue set, as the probe gives them)."""
    hosts = []
    for i, h in enumerate(base.hosts):
        if not h.collected:
            hosts.append(h)
            continue
        rows = []
        for j in range(per_host):
            metrics = {m.name: float(1 + (i * 7 + j * 3 + n) % 90)
                       for n, m in enumerate(catalog.CTR)}  # fmt: skip
            metrics["ctr.pids"] = 3 + j
            labels = {"runtime": "docker", "id": f"{i:032x}{j:032x}", "cgroup": "v2"}
            rows.append(Row(f"app-{j:02d}", metrics, labels))
        hosts.append(dataclasses.replace(h, rows={**h.rows, "ctr": tuple(rows)}))
    return dataclasses.replace(base, hosts=tuple(hosts))


def bench_write_containers(
    tmp: Path, hosts: int, rounds: int, per_host: int = 20
) -> dict[str, Any]:
    """One run's write with `per_host` containers a host and without, into files holding a
    few hours of runs each, rounds interleaved (issue 14: containers in the history)."""
    plain = reportfactory.fleet_report(hosts, 20)
    fleets = {"containers": with_containers(plain, per_host), "none": plain}
    times: dict[str, list[float]] = {k: [] for k in fleets}
    values: dict[str, int] = {}
    hists = {}
    for k, base in fleets.items():
        path = tmp / f"write-ctr-{k}.sqlite"
        _fill(path, base, 36)
        hists[k] = open_history(str(path), writable=True)
    later = T0 + 86_400
    runs = {k: list(timeline(base, later, rounds, EVERY)) for k, base in fleets.items()}
    for r in range(rounds):
        for k in fleets:
            t0 = time.perf_counter()
            values[k] = record_run(hists[k], runs[k][r]).values
            times[k].append(time.perf_counter() - t0)
    for h in hists.values():
        h.close()
    med = {k: 1000 * statistics.median(v) for k, v in times.items()}
    return {"hosts": hosts, "vms": hosts * 20, "containers": hosts * per_host,
            "values": values, "median_ms": med,
            "added_ms": med["containers"] - med["none"], "rounds": rounds}  # fmt: skip


def _numbers(path: Path) -> tuple[int, int]:
    """Values in the raw tier, and every number of every tier (rollup statistics too)."""
    import sqlite3

    conn = sqlite3.connect(path)
    raw = every = 0
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'"):
        if not name.startswith(("raw_", "hourly_", "daily_")):
            continue
        cols = [r[1] for r in conn.execute(f"PRAGMA table_info({name})")][2:]
        expr = " + ".join(f'count("{c}")' for c in cols)
        n = conn.execute(f"SELECT {expr} FROM {name}").fetchone()[0] or 0
        every += n
        raw += n if name.startswith("raw_") else 0
    conn.close()
    return raw, every


def bench_size(tmp: Path, days: float) -> dict[str, Any]:
    """Days of 5-minute runs of 100 hosts x 20 VMs: bytes per value, retention, HTML."""
    base = reportfactory.fleet_report(100, 20)
    path = tmp / "week.sqlite"
    runs = int(days * 86_400 // EVERY)
    written, took = _fill(path, base, runs)
    hist = open_history(str(path), writable=True)
    hist.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = path.stat().st_size
    raw, every = _numbers(path)
    # The retention pass of the run that closes the next hour (rollup + deletions).
    last = T0 + runs * EVERY
    nxt = next(iter(timeline(base, (last // 3600 + 1) * 3600, 1, EVERY)))
    record_run(hist, nxt)
    # The pass again, alone: the hour just closed rolled up once more (idempotent, the same
    # work) and the raw tier shortened by an hour (12 runs' rows deleted, not 1).
    closed = (last // 3600 + 1) * 3600
    hist.conn.execute("UPDATE meta SET value = ? WHERE key = 'rolled_hourly_to'", (closed - 3600,))
    keep = retention.Retention(raw_s=int(days * 86_400) - 3600)
    t0 = time.perf_counter()
    with transaction(hist.conn):
        deleted = retention.apply(hist, keep, now=closed)
    pass_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    decorated = report_trends(hist, nxt, (last // 3600 + 1) * 3600)
    html_s = time.perf_counter() - t0
    hist.close()
    return {
        "runs": runs, "fill_s": took, "values_written": written, "bytes": size,
        "raw_values": raw, "all_numbers": every,
        "bytes_per_value": size / raw, "bytes_per_number": size / every,
        "retention_pass_s": pass_s, "rows_deleted": sum(deleted.values()),
        "html_queries_s": html_s,
        "sparklines": sum(len(v) for v in decorated.trends.values()),
        "forecasts": sum(len(v) for v in decorated.forecasts.values()),
    }  # fmt: skip


RULE = """
- hosts: all
  rules:
    - name: busy-tomorrow
      expr: predict_linear(cpu.busy_pct, "24h", "1d") > 95
      severity: warning
"""


def bench_rule(tmp: Path, hosts: int) -> dict[str, Any]:
    """A predict_linear rule over 24 h on `hosts` hosts: fetch + evaluation added."""
    base = reportfactory.fleet_report(hosts, 0)
    path = tmp / "rule.sqlite"
    _fill(path, base, 288)
    rep = next(iter(timeline(base, T0 + 288 * EVERY, 1, EVERY)))
    merged: dict[str, Any] = {}
    from fleetmon.rules.loader import merge

    merge(parse_rules(RULE, "bench.yaml"), "bench.yaml", merged)
    rules = RuleSet(tuple(merged.values()))
    specs = {h.name: HostSpec(h.name, h.address) for h in rep.hosts}
    with Recorder(str(path), None, lock=False, wait_s=0) as rec:
        t0 = time.perf_counter()
        hosts_, past, _ = rec.prepare(rules, rep.hosts, rep.run)
        fetch_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        out, _ = evaluate(rules, hosts_, specs, {}, past=past, states_out={})
        eval_s = time.perf_counter() - t0
    fired = sum(1 for h in out for f in h.findings if f.severity.value != "ok")
    judged = sum(1 for h in out for f in h.findings if "not judged" not in f.message)
    return {"hosts": hosts, "fetch_s": fetch_s, "evaluate_s": eval_s,
            "added_s": fetch_s + eval_s, "judged": judged, "fired": fired}  # fmt: skip


def bench_page(hosts: int = 500, vms: int = 20) -> dict[str, Any]:
    """The HTML page of `hosts` x `vms` with every host's sparklines (random values: no line
    is flat, the largest case) and a forecast on one host in 10, against its 3 MB budget."""
    import random

    from fleetmon.model import Trend
    from fleetmon.render.html import render_html

    report = reportfactory.fleet_report(hosts, vms)
    rng = random.Random(1)

    def vals(n: int, k: float = 1.0) -> tuple[float | None, ...]:
        return tuple(k * rng.uniform(1, 90) for _ in range(n))

    trends: dict[str, tuple[Trend, ...]] = {}
    for h in report.hosts:
        ts = [Trend("host", h.name, m, w, vals(n)) for m in ("cpu.busy_pct", "cpu.steal_pct",
              "mem.used_pct") for w, n in (("24h", 24), ("7d", 28))]  # fmt: skip
        ts += [
            Trend("disk", "nvme0n1", "disk.util_pct", w, vals(n))
            for w, n in (("24h", 24), ("7d", 28))
        ]
        ts += [Trend("nic", "enp6s0", "nic.rx_bytes_per_s", w, vals(n, 1e5), "rx+tx")
               for w, n in (("24h", 24), ("7d", 28))]  # fmt: skip
        trends[h.name] = tuple(ts)
    forecasts = {
        h.name: (
            "/var full in 2.3 days at the rate of the last 24 h (fit over 288 points, R² 0.96)",
        )
        for h in report.hosts[::10]
    }
    plain = len(render_html(report).encode())
    t0 = time.process_time()
    page = render_html(dataclasses.replace(report, trends=trends, forecasts=forecasts))
    return {"hosts": hosts, "vms": vms, "bytes_without": plain, "bytes": len(page.encode()),
            "render_cpu_s": time.process_time() - t0, "budget_bytes": 3_000_000}  # fmt: skip


def bench(quick: bool = False, days: float = 8.0, rounds: int = 5) -> dict[str, Any]:
    """Every measurement; a dict of figures and the targets."""
    with tempfile.TemporaryDirectory(prefix="fleetmon-history-bench-") as folder:
        tmp = Path(folder)
        doc: dict[str, Any] = {"targets": TARGETS}
        doc["write_100"] = bench_write(tmp, 100, rounds)
        doc["write_containers"] = bench_write_containers(tmp, 100, rounds)
        doc["write_1000"] = bench_write(tmp, 1000, 2 if quick else rounds)
        doc["size"] = bench_size(tmp, 1.0 if quick else days)
        doc["rule"] = bench_rule(tmp, 1000)
    doc["page"] = bench_page()
    return doc


def render(doc: dict[str, Any]) -> str:
    """The figures as lines of text."""
    w1, w2, s, r, p = (doc[k] for k in ("write_100", "write_1000", "size", "rule", "page"))
    wc = doc["write_containers"]
    return "\n".join([
        f"history write, 100 hosts x 20 VMs x 20 containers: median "
        f"{wc['median_ms']['containers']:.0f} ms ({wc['values']['containers']} values), "
        f"without containers {wc['median_ms']['none']:.0f} ms ({wc['values']['none']} values): "
        f"{wc['added_ms']:.0f} ms added",
        f"history write, 100 hosts x 20 VMs ({w1['values']} values): median "
        f"{w1['median_ms']:.0f} ms, best {w1['best_ms']:.0f} ms (target <= 100 ms)",
        f"history write, 1,000 hosts x 20 VMs ({w2['values']} values): median "
        f"{w2['median_ms']:.0f} ms, best {w2['best_ms']:.0f} ms (target <= 1000 ms)",
        f"{s['runs']} runs of 100 hosts x 20 VMs written in {s['fill_s']:.0f} s: "
        f"{s['bytes'] / 1e6:.1f} MB, {s['bytes_per_value']:.2f} bytes per raw value "
        f"({s['raw_values']} values; {s['bytes_per_number']:.2f} per number with the rollups) "
        "(target <= 6)",
        f"retention pass closing an hour: {s['retention_pass_s']:.3f} s "
        f"({s['rows_deleted']} rows deleted) (target <= 1 s)",
        f"HTML history queries, 100 hosts x 20 VMs: {s['html_queries_s']:.3f} s for "
        f"{s['sparklines']} sparklines and {s['forecasts']} forecasts (target <= 1 s)",
        f"predict_linear over 24 h on {r['hosts']} hosts: fetch {r['fetch_s']:.3f} s + "
        f"rules {r['evaluate_s']:.3f} s = {r['added_s']:.3f} s added (target <= 1 s)",
        f"HTML page, {p['hosts']} hosts x {p['vms']} VMs with every host's sparklines: "
        f"{p['bytes'] / 1e6:.2f} MB ({p['bytes_without'] / 1e6:.2f} MB without), render "
        f"{p['render_cpu_s']:.2f} s CPU (budgets 3 MB, 2 s)",
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run, print, write results/history.json when asked."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="1 day instead of 8, fewer rounds")
    ap.add_argument("--days", type=float, default=8.0)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    doc = bench(args.quick, args.days)
    print(render(doc))
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
