"""Benchmark: how long one host takes from connect to the probe's exit, which the default
`--timeout` must leave room for (issue 11), and what a hung host costs a run (I/O).

1. This machine's real probe (`ansible_connection: local`: sh, the real /proc) and, when
   libvirt answers, its virsh: `--rounds` runs at `--interval 1`, each host's elapsed_s from the
   `--save-raw` folder's run.json, less the interval.
2. `fleetmon simulate` (KVM, Xen with and without xentop, Linux; 50 ms added per reply),
   `--hosts` hosts, `--rounds` runs: the same figure for every host.
3. The same fleet with one host that never answers (`--faults timeout=1`): the run's wall
   clock with a 10 s margin (interval + 10 s, the default until the probe's own time limits
   needed room for one hung tool of each kind) and with the default (interval + 30 s).
Prints the overheads (median, 99th percentile, max) and writes results/timeout.json.
    .venv/bin/python benchmarks/timeout_bench.py [--hosts 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from measure import FLEETMON, log, machine, save, table
from simulated import simulator

INTERVAL_S = 1.0


def _run(inventory: Path, work: Path, *extra: str) -> tuple[float, list[float]]:
    """One `fleetmon run`: its wall clock and each collected host's elapsed_s."""
    raw = work / f"raw-{time.monotonic_ns()}"
    argv = [str(FLEETMON), "run", str(inventory), "-q", "--history", "none", "--interval",
            str(INTERVAL_S), "--format", "json", "-o", "/dev/null", "--save-raw", str(raw),
            *extra]  # fmt: skip
    t0 = time.monotonic()
    subprocess.run(argv, check=False, capture_output=True)
    wall = time.monotonic() - t0
    doc = json.loads((raw / "run.json").read_text())
    return wall, [h["elapsed_s"] for h in doc["hosts"] if h["status"] == "ok"]


def _summary(elapsed: list[float]) -> dict[str, float]:
    over = sorted(e - INTERVAL_S for e in elapsed)
    p99 = over[min(len(over) - 1, round(0.99 * (len(over) - 1)))]
    return {"hosts": len(over), "median_s": statistics.median(over), "p99_s": p99,
            "max_s": over[-1]}  # fmt: skip


def bench(hosts: int, rounds: int, hung: bool = True) -> dict[str, Any]:
    doc: dict[str, Any] = {"machine": machine(), "interval_s": INTERVAL_S}
    with tempfile.TemporaryDirectory(prefix="fleetmon-timeout-") as tmp:
        work = Path(tmp)
        local = work / "local.yaml"
        local.write_text("all:\n  hosts:\n    here:\n      ansible_connection: local\n")
        elapsed: list[float] = []
        for _ in range(rounds):
            elapsed += _run(local, work, "--timeout", "120")[1]
        doc["local"] = _summary(elapsed)
        log(f"local probe: {doc['local']}")
        with simulator(hosts, work, latency_ms=50.0, extra=("--kind", "mixed")) as fleet:
            elapsed = []
            for _ in range(rounds):
                elapsed += _run(fleet.inventory, work, "--timeout", "120")[1]
            doc["simulated"] = _summary(elapsed)
        log(f"simulated: {doc['simulated']}")
        if not hung:
            return doc
        faults = ("--kind", "mixed", "--faults", "timeout=1")
        with simulator(hosts, work, latency_ms=50.0, extra=faults) as fleet:
            walls = {}
            for name, timeout in (("margin 10 s", INTERVAL_S + 10), ("default", None)):
                extra = ("--timeout", f"{timeout:g}") if timeout else ()
                walls[name] = _run(fleet.inventory, work, *extra)[0]
            doc["hung_host_wall_s"] = walls
        log(f"one hung host: {walls}")
    return doc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--hosts", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip-hung", action="store_true", help="no run with a hung host")
    args = ap.parse_args()
    doc = bench(args.hosts, args.rounds, hung=not args.skip_hung)
    rows = [
        (what, s["hosts"], s["median_s"], s["p99_s"], s["max_s"])
        for what, s in (("local probe", doc["local"]), ("simulated", doc["simulated"]))
    ]
    print(table(rows, ["", "host runs", "median s", "p99 s", "max s"]))
    print("one hung host, run wall clock:", doc.get("hung_host_wall_s"))
    print(f"wrote {save('timeout', doc)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
