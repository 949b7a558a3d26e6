"""Benchmark: replay 10,000 recorded hosts (parse, deltas, rules, text/JSON/HTML) offline (I/O).

A `--save-raw` folder of real recorded hosts (a real-sshd or simulator run) is duplicated into
N entries; then, each in its own child process, `fleetmon report DIR` writes the three
formats (the target: <= 10 s), and a phase run times load / analyse / rules / each renderer.
    .venv/bin/python benchmarks/offline.py [--hosts 10000] [--source RAWDIR] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from measure import (
    BENCH_DIR,
    FLEETMON,
    VENV_PY,
    log,
    machine,
    run_measured,
    save,
    summarise,
    table,
)

TARGET_S = 10.0


def duplicate_raw(source: Path, n: int, dest: Path) -> int:
    """Write a save-raw folder of n hosts cycling over source's ok hosts; return distinct ones."""
    doc = json.loads((source / "run.json").read_text())
    good = [h for h in doc["hosts"] if h["status"] == "ok"]
    if not good:
        raise SystemExit(f"{source}: no ok host to duplicate")
    (dest / "raw").mkdir(parents=True, exist_ok=True)
    hosts = []
    width = len(str(n))
    for i in range(n):
        h = json.loads(json.dumps(good[i % len(good)]))
        out_name = f"raw/{i:06d}.out"
        shutil.copyfile(source / h["stdout_file"], dest / out_name)
        h["stdout_file"] = out_name
        h["spec"]["name"] = f"r{i:0{width}d}-{h['spec']['name']}"
        hosts.append(h)
    doc["hosts"] = hosts
    (dest / "run.json").write_text(json.dumps(doc, indent=1) + "\n")
    return len(good)


def record_from_sshd(dest: Path, n: int = 20) -> Path:
    """A save-raw folder of n hosts probed through a real loopback sshd (this machine's /proc)."""
    from fleet import bench_sshd, cli_argv, fleetmon_inventory, make_job

    with bench_sshd() as server:
        hosts = [(f"h{i:02d}", server.host, server.port) for i in range(1, n + 1)]
        job = make_job(
            hosts,
            user=server.user,
            key=str(server.client_key),
            known_hosts=str(server.known_hosts),
            forks=n,
        )
        inv = fleetmon_inventory(job, dest.parent / "record-inventory.yaml")
        m = run_measured(
            cli_argv(inv, job, dest.parent / "record.json", "--save-raw", str(dest)),
            timeout_s=120,
        )
        if m.rc not in (0, 1, 2):
            raise SystemExit(f"recording run failed ({m.rc}): {m.stderr_tail}")
    return dest


def record_from_sim(dest: Path, n: int = 200) -> Path:
    """A save-raw folder of n simulated hosts (kvm, xen and plain Linux, with their VMs)."""
    from fleet import cli_argv, fleetmon_inventory
    from simulated import sim_job, simulator

    with simulator(n, dest.parent, latency_ms=0, extra=("--kind", "mixed")) as fleet:
        job = sim_job(fleet, 100)
        inv = fleetmon_inventory(job, dest.parent / "record-inventory.yaml")
        m = run_measured(
            cli_argv(inv, job, dest.parent / "record.json", "--save-raw", str(dest)),
            timeout_s=300,
        )
    if m.rc not in (0, 1, 2):
        raise SystemExit(f"recording run failed ({m.rc}): {m.stderr_tail}")
    return dest


def phases(raw_dir: str) -> dict[str, Any]:
    """In-process timing of each stage of `fleetmon report` (run in a child process)."""
    from fleetmon.analyse.pipeline import build_report
    from fleetmon.cli.common import playbooks_dir
    from fleetmon.inventory.patterns import match_pattern
    from fleetmon.io.rawstore import load_raw
    from fleetmon.render.html import render_html
    from fleetmon.render.json import render_json
    from fleetmon.render.text import render_text
    from fleetmon.rules import default_rule_files, evaluate, load_rules

    t: dict[str, float] = {}
    t0 = time.perf_counter()
    run, raws = load_raw(raw_dir)
    t["load_s"] = time.perf_counter() - t0
    rules = load_rules(default_rule_files(str(playbooks_dir())))
    specs = {r.host.name: r.host for r in raws}
    spec_list = list(specs.values())
    rules_s = [0.0]

    def evaluator(hosts: Any, fleet: Any) -> Any:
        t1 = time.perf_counter()
        res = evaluate(rules, hosts, specs, fleet, lambda p: set(match_pattern(p, spec_list)))
        rules_s[0] = time.perf_counter() - t1
        return res

    t0 = time.perf_counter()
    report = build_report(raws, run, evaluate=evaluator)
    t["analyse_s"] = time.perf_counter() - t0 - rules_s[0]
    t["rules_s"] = rules_s[0]
    sizes = {}
    for name, fn in (("text", render_text), ("json", render_json), ("html", render_html)):
        t0 = time.perf_counter()
        sizes[f"{name}_mb"] = len(fn(report).encode()) / 1e6
        t[f"render_{name}_s"] = time.perf_counter() - t0
    ok = sum(1 for h in report.hosts if h.status.value == "ok")
    findings = sum(len(h.findings) for h in report.hosts)
    return {**t, **sizes, "hosts": len(raws), "ok": ok, "findings": findings}


def bench(n: int, rounds: int, source: Path | str) -> dict[str, Any]:
    """Build the N-host folder (from a save-raw folder, or record one from `sim` or `sshd`),
    then time the CLI replay and the phases."""
    with tempfile.TemporaryDirectory(prefix="fleetmon-offline-") as tmp:
        work = Path(tmp)
        label = {"sim": "200 simulated hosts (mixed kinds)", "sshd": "20 real-sshd hosts"}.get(
            str(source), str(source)
        )
        if source == "sshd":
            log("offline: recording 20 hosts through a real sshd")
            source = record_from_sshd(work / "source")
        elif source == "sim":
            log("offline: recording 200 simulated hosts (kvm, xen, linux)")
            source = record_from_sim(work / "source")
        source = Path(source)
        dest = work / "replay"
        t0 = time.monotonic()
        distinct = duplicate_raw(source, n, dest)
        log(f"offline: {n} hosts from {distinct} recorded ones in {time.monotonic() - t0:.1f} s")
        raw_mb = sum(f.stat().st_size for f in (dest / "raw").iterdir()) / 1e6
        argv = [
            str(FLEETMON), "report", str(dest), "--format", "text", "-o", str(work / "r.txt"),
            "--json", str(work / "r.json"), "--html", str(work / "r.html"),
        ]  # fmt: skip
        runs = []
        for r in range(rounds):
            m = run_measured(argv, timeout_s=300)
            log(f"  offline CLI round {r + 1}: {m.wall_s:.2f} s, {m.maxrss_mb:.0f} MB, rc {m.rc}")
            if m.rc not in (0, 1, 2, 3):
                log(f"  fleetmon report failed: {m.stderr_tail[-600:]}")
            runs.append(m)
        ph = run_measured(
            [str(VENV_PY), str(BENCH_DIR / "offline.py"), "--phases", str(dest)], timeout_s=300
        )
        log(f"  offline phases: {ph.summary}")
        cli = summarise(runs, n)
        return {
            "machine": machine(),
            "hosts": n,
            "distinct_recorded_hosts": distinct,
            "source": label,
            "raw_mb": raw_mb,
            "cli": cli,
            "phases": dict(ph.summary),
            "phases_wall_s": ph.wall_s,
            "phases_maxrss_mb": ph.maxrss_mb,
            "target_s": TARGET_S,
            "met": cli["wall_s"] <= TARGET_S,
        }


def render(doc: dict[str, Any]) -> str:
    """One line for the CLI and one per phase."""
    cli = doc["cli"]
    rows: list[tuple[object, ...]] = [
        ("fleetmon report (text+JSON+HTML)", cli["wall_s"], cli["maxrss_mb"])
    ]
    ph = doc["phases"]
    rows += [(f"  phase {k[:-2]}", v, None) for k, v in ph.items() if k.endswith("_s")]
    rows.append(("  phases child (total)", doc["phases_wall_s"], doc["phases_maxrss_mb"]))
    head = (
        f"offline: {doc['hosts']} hosts ({doc['distinct_recorded_hosts']} distinct recorded, "
        f"{doc['raw_mb']:.0f} MB raw), target <= {TARGET_S:g} s: "
        f"{'met' if doc['met'] else 'MISSED'}"
    )
    return head + "\n" + table(rows, ("what", "seconds", "peak RSS MB"))


def main(argv: list[str] | None = None) -> int:
    """Run, print the table, save results/offline.json (or, with --phases, time one folder)."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--hosts", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument(
        "--source",
        default="sim",
        help="a --save-raw folder to duplicate, or `sim`/`sshd` to record one first",
    )
    ap.add_argument("--phases", metavar="DIR", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.phases:
        print(json.dumps(phases(args.phases)))
        return 0
    doc = bench(args.hosts, args.rounds, args.source)
    print(render(doc))
    print(f"saved {save('offline', doc)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
