"""Benchmark: the figures behind fleetmon's defaults (I/O), issue 7 must-have 5.

1. --forks 50/100/200/400 for N = 300 against the real loopback sshd (server-CPU bound) and
   for N = 1,000 simulated hosts with 50 ms latency (latency bound): wall, CPU per host and
   the slowest host's time (what the connect timeout must leave room for).
2. The open-file limit: 1,000 simulated hosts under `ulimit -n 256` (soft and hard), and
   under a soft 256 with a higher hard limit: fleetmon must queue, never fail with EMFILE.
    .venv/bin/python benchmarks/defaults.py [--forks 50 100 200 400] [--skip-sshd]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fleet import bench_sshd, cli_argv, cli_ok, fleetmon_inventory, make_job, measure_clients
from measure import VENV_PY, log, machine, run_measured, save, table
from simulated import sim_job, simulator

FD_LIMIT = 256
#: What collect() makes of --forks under the child's open-file limit (printed as JSON).
USABLE_FORKS = (
    "import json; from fleetmon.collect.runner import usable_forks; "
    "from fleetmon.model import HostSpec; "
    "print(json.dumps({{'forks': usable_forks({forks}, [HostSpec('h', '127.0.0.1')])}}))"
)


def _sweep(job: dict[str, Any], forks: Sequence[int], work: Path) -> dict[str, Any]:
    out = {}
    for f in forks:
        res = measure_clients({**job, "forks": f}, ("collect",), 1, work / f"f{f}")
        out[str(f)] = res["collect"]
    return out


def forks_sshd(n: int, forks: Sequence[int]) -> dict[str, Any]:
    """The forks sweep against the real sshd."""
    with bench_sshd() as server:
        hosts = [(f"h{i:03d}", server.host, server.port) for i in range(1, n + 1)]
        job = make_job(
            hosts,
            user=server.user,
            key=str(server.client_key),
            known_hosts=str(server.known_hosts),
            forks=0,
        )
        with tempfile.TemporaryDirectory(prefix="fleetmon-forks-") as tmp:
            for f in forks:
                (Path(tmp) / f"f{f}").mkdir()
            log(f"forks sweep: real sshd, N={n}, forks {list(forks)}")
            return _sweep(job, forks, Path(tmp))


def simulated_checks(n: int, forks: Sequence[int]) -> dict[str, Any]:
    """The forks sweep and the open-file-limit runs against one simulated fleet."""
    doc: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="fleetmon-defaults-") as tmp:
        work = Path(tmp)
        for f in forks:
            (work / f"f{f}").mkdir()
        with simulator(n, work) as fleet:
            job = sim_job(fleet, 100)
            log(f"forks sweep: simulator, N={n}, forks {list(forks)}")
            doc["forks_sim"] = _sweep(job, forks, work)
            inv = fleetmon_inventory(job, work / "inventory.yaml")
            doc["fd_limit"] = {}
            cases = (
                ("nofile 256/256, default forks", FD_LIMIT, FD_LIMIT, 200),
                ("nofile 256/256, -f 400", FD_LIMIT, FD_LIMIT, 400),
                ("nofile soft 256, hard unchanged, -f 400", FD_LIMIT, None, 400),
            )
            for label, soft, hard, f in cases:
                out = work / "fd.json"
                out.unlink(missing_ok=True)
                m = run_measured(
                    cli_argv(inv, {**job, "forks": f}, out),
                    nofile=(soft, hard),
                    timeout_s=300,
                )
                ok = cli_ok(out)
                emfile = "Too many open files" in m.stderr_tail or "EMFILE" in m.stderr_tail
                used = run_measured(
                    [str(VENV_PY), "-c", USABLE_FORKS.format(forks=f)], nofile=(soft, hard)
                ).summary.get("forks")
                log(f"  {label}: rc {m.rc}, ok {ok}/{n}, {m.wall_s:.1f} s, EMFILE {emfile}")
                doc["fd_limit"][label] = {
                    "rc": m.rc,
                    "ok": ok,
                    "hosts": n,
                    "wall_s": m.wall_s,
                    "cpu_s": m.cpu_s,
                    "peak_fds": m.peak_fds,
                    "emfile_seen": emfile,
                    "forks_asked": f,
                    "forks_used": used,
                    "stderr_tail": m.stderr_tail[-500:] if ok != n else "",
                }
    return doc


def render(doc: dict[str, Any]) -> str:
    """The forks tables and the fd-limit table."""
    parts = []
    for key, title in (("forks_sshd", "real sshd"), ("forks_sim", "simulator, 50 ms")):
        if key not in doc:
            continue
        rows = [
            (title, f, s["wall_s"], s["cpu_ms_per_host"], s["maxrss_mb"],
             s["summary"].get("elapsed_max_s"), f"{s['summary'].get('ok')}/"
             f"{s['summary'].get('hosts')}")
            for f, s in doc[key].items()
        ]  # fmt: skip
        parts.append(
            table(
                rows,
                ("fleet", "forks", "wall s", "CPU ms/host", "peak RSS MB", "slowest host s", "ok"),
            )
        )
    if "fd_limit" in doc:
        rows = [
            (label, r["rc"], f"{r['ok']}/{r['hosts']}", r["wall_s"], r["emfile_seen"],
             f"{r['forks_asked']} -> {r['forks_used']}", r["peak_fds"])
            for label, r in doc["fd_limit"].items()
        ]  # fmt: skip
        parts.append(
            table(rows, ("open-file limit", "rc", "ok", "wall s", "EMFILE", "forks", "peak fds"))
        )
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    """Run, print the tables, save results/defaults.json."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--forks", type=int, nargs="+", default=[50, 100, 200, 400])
    ap.add_argument("--sshd-hosts", type=int, default=300)
    ap.add_argument("--sim-hosts", type=int, default=1000)
    ap.add_argument("--skip-sshd", action="store_true")
    args = ap.parse_args(argv)
    doc: dict[str, Any] = {"machine": machine()}
    if not args.skip_sshd:
        doc["forks_sshd"] = forks_sshd(args.sshd_hosts, args.forks)
    doc.update(simulated_checks(args.sim_hosts, args.forks))
    print(render(doc))
    print(f"saved {save('defaults', doc)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
