"""Benchmark: the rules over a replayed fleet, in-process (issues 15 and 17).

A `--save-raw` folder is duplicated to N hosts and analysed once; then, each in a child
process so a baseline tree can take turns with this one (`--baseline DIR`: another checkout,
e.g. a worktree of main), round by round:
- `rules.evaluate` with the shipped playbooks: client CPU ms per host (target <= 0.3);
- the live report of 1,000 hosts (`LiveFleet.refresh`: fleet statistics, rules, exit code):
  ms per host per tick;
- bytes per host (tracemalloc) of the analysed hosts, and of their judged copies (findings).
    .venv/bin/python benchmarks/rules_bench.py RAWDIR [--hosts 2000] [--rounds 3]
        [--baseline /work/main]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from measure import VENV_PY, log, table
from offline import duplicate_raw

TARGET_RULES_MS = 0.3
LIVE_HOSTS = 1000


def _child(raw_dir: str, rounds: int) -> dict[str, Any]:
    """In the child: analyse, then time the rules and the live refresh, then the memory."""
    import yaml

    from fleetmon.analyse.fleet import fleet_stats
    from fleetmon.analyse.guests import link_guests
    from fleetmon.analyse.pipeline import analyse_host
    from fleetmon.cli.common import match_from_specs, playbooks_dir
    from fleetmon.cli.live import LiveFleet, load_plan
    from fleetmon.cli.options import build_parser
    from fleetmon.io.rawstore import load_raw
    from fleetmon.rules import default_rule_files, evaluate, load_rules

    _run, raws = load_raw(raw_dir)
    specs = {r.host.name: r.host for r in raws}
    rules = load_rules(default_rule_files(str(playbooks_dir())))
    spec_list = list(specs.values())
    cache: dict[str, Any] = {}

    def match(p: str) -> Any:
        if p not in cache:
            cache[p] = match_from_specs(p, spec_list)
        return cache[p]

    tracemalloc.start()
    b0 = tracemalloc.get_traced_memory()[0]
    hosts = link_guests(tuple(analyse_host(r) for r in raws))
    del raws
    gc.collect()
    b1 = tracemalloc.get_traced_memory()[0]
    fleet = fleet_stats(hosts)
    b1 = tracemalloc.get_traced_memory()[0]
    judged, _ff = evaluate(rules, hosts, specs, fleet, match)
    gc.collect()
    b2 = tracemalloc.get_traced_memory()[0]  # the judged copies of the hosts: their findings
    tracemalloc.stop()
    n = len(judged)
    out: dict[str, Any] = {
        "hosts": n,
        "analysed_b_per_host": (b1 - b0) / n,
        "findings_b_per_host": (b2 - b1) / n,
        "findings": sum(len(h.findings) for h in judged),
    }
    del judged
    times = []
    for _ in range(rounds):
        gc.collect()
        t0 = time.process_time()
        evaluate(rules, hosts, specs, fleet, match)
        times.append(time.process_time() - t0)
    out["rules_ms_per_host"] = min(times) / n * 1000
    live = [h for h in hosts if h.collected][:LIVE_HOSTS]
    groups: dict[str, dict[str, Any]] = {}
    for h in live:
        for g in h.groups or ("ungrouped",):
            groups.setdefault(g, {})[h.name] = {"ansible_host": "127.0.0.1"}
    with tempfile.TemporaryDirectory(prefix="fleetmon-rules-") as tmp:
        inv = Path(tmp) / "inv.yaml"
        children = {g: {"hosts": hs} for g, hs in groups.items()}
        inv.write_text(yaml.safe_dump({"all": {"children": children}}))
        args = build_parser().parse_args(["serve", str(inv)])
        lf = LiveFleet(args, load_plan(args))
    by_name = {h.name: h for h in live}
    for i, spec in enumerate(lf.plan.hosts):
        lf.latest[i] = by_name[spec.name]
        lf.links[i].state = "live"
    ticks = []
    for _ in range(rounds):
        gc.collect()
        t0 = time.process_time()
        lf.refresh()
        ticks.append(time.process_time() - t0)
    out["live_hosts"] = len(lf.plan.hosts)
    out["live_ms_per_host_tick"] = min(ticks) / len(lf.plan.hosts) * 1000
    return out


def _measure(tree: str, raw_dir: Path, rounds: int) -> dict[str, Any]:
    """One child process running `tree`'s fleetmon over `raw_dir`."""
    env = {**os.environ, "PYTHONPATH": tree}
    argv = [str(VENV_PY), __file__, "--child", str(raw_dir), "--rounds", str(rounds)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"{tree}: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    """Take turns between this tree and the baseline; print the medians of the rounds."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("raw_dir", help="a --save-raw folder (200 simulated hosts, say)")
    ap.add_argument("--hosts", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--baseline", help="another source tree to measure beside this one")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.raw_dir, args.rounds)))
        return 0
    trees = {"this": str(Path(__file__).resolve().parent.parent)}
    if args.baseline:
        trees["baseline"] = args.baseline
    with tempfile.TemporaryDirectory(prefix="fleetmon-rules-") as tmp:
        dest = Path(tmp) / "replay"
        duplicate_raw(Path(args.raw_dir), args.hosts, dest)
        runs: dict[str, list[dict[str, Any]]] = {k: [] for k in trees}
        for r in range(2):
            for label, tree in trees.items():
                runs[label].append(_measure(tree, dest, args.rounds))
                log(f"rules round {r + 1} {label}: {runs[label][-1]}")
    keys = ("rules_ms_per_host", "live_ms_per_host_tick", "analysed_b_per_host")
    keys += ("findings_b_per_host",)
    rows = [
        (label, *(sorted(m[k] for m in ms)[len(ms) // 2] for k in keys))
        for label, ms in runs.items()
    ]
    print(f"rules over {args.hosts} hosts (target <= {TARGET_RULES_MS} ms/host)")
    print(table(rows, ("tree", "rules ms/host", "live ms/host/tick", "host B", "findings B")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
