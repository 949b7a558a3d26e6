"""Benchmark: the streaming collector against a real OpenSSH sshd on loopback (I/O).

`fleetmon top --batch` on N hosts of one sshd for T ticks, against the same on a second
sshd whose sessions have a PATH without awk (sshd_config `SetEnv`), where the probe reads
each /proc file with a cat and its output goes out as the shell writes it (collect/probe.py
`fm_rd`, `_compound`: some 45 writes a sample, each a packet of its own). Rounds are
interleaved (the machine is shared and noisy); figures are medians: the client's CPU per
tick (its start-up and the N handshakes included, the same on both sides) and the server
side's (sshd and the probes: the rest of the machine's busy time over the run, so run it
on a machine otherwise quiet).
    .venv/bin/python benchmarks/stream_sshd.py [--hosts 20] [--ticks 15] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from fleet import bench_sshd
from measure import FLEETMON, log, machine, ratio, run_measured, save, table
from probetext import env_without_awk  # tests/ is on sys.path (fleet.py)


def _machine_busy_s() -> float:
    """CPU time the whole machine has been busy (/proc/stat: all but idle and iowait)."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def _one(inventory: Path, ticks: int, hosts: int) -> dict[str, float]:
    """One `top --batch` run: the client's CPU per tick, and the rest of the machine's busy
    time over the run per tick (sshd and the probes; what else runs here adds noise, the
    same to both sides on average: the rounds interleave)."""
    before = _machine_busy_s()
    argv = [str(FLEETMON), "top", str(inventory), "--batch", "-n", str(ticks), "-d", "1"]
    m = run_measured(argv, timeout_s=300)
    if m.rc != 0:
        raise SystemExit(f"fleetmon top exited {m.rc}: {m.stderr_tail}")
    time.sleep(1.5)  # the loops see the closed channel at their next write, after a sleep
    busy = _machine_busy_s() - before
    per_tick = hosts * ticks
    return {
        "client_ms_per_tick": 1000 * m.cpu_s / per_tick,
        "server_ms_per_tick": 1000 * (busy - m.cpu_s) / per_tick,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hosts", type=int, default=20)
    ap.add_argument("--ticks", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="fleetmon-stream-sshd-"))
        os.chmod(tmp, 0o755)
        bare = env_without_awk(Path(tmp))["PATH"]
        config = "MaxStartups 200\nMaxSessions 200\n"
        servers = {
            "awk": stack.enter_context(bench_sshd(config)),
            "no awk": stack.enter_context(bench_sshd(config + f"SetEnv PATH={bare}\n")),
        }
        inventories = {
            name: s.inventory(
                args.hosts,
                Path(tmp),
                name=f"{name.replace(' ', '-')}.yaml",
                vars={
                    "ansible_ssh_common_args": f"-o UserKnownHostsFile={s.known_hosts}",
                    # as fleet.py: whether libvirtd runs here must not change the work
                    "fleetmon_hypervisor": "none",
                },
            )
            for name, s in servers.items()
        }
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
        for r in range(args.rounds):
            for name in servers:
                runs[name].append(_one(inventories[name], args.ticks, args.hosts))
                log(f"round {r + 1} {name}: {runs[name][-1]}")
    medians = {
        name: {k: statistics.median(run[k] for run in rs) for k in rs[0]}
        for name, rs in runs.items()
    }
    doc: dict[str, Any] = {
        "machine": machine(),
        "hosts": args.hosts,
        "ticks": args.ticks,
        "rounds": args.rounds,
        "medians": medians,
        "runs": runs,
        "client_ratio": ratio(
            medians["awk"]["client_ms_per_tick"], medians["no awk"]["client_ms_per_tick"]
        ),
        "server_ratio": ratio(
            medians["awk"]["server_ms_per_tick"], medians["no awk"]["server_ms_per_tick"]
        ),
    }
    rows = [
        (name, f"{m['client_ms_per_tick']:.2f}", f"{m['server_ms_per_tick']:.2f}")
        for name, m in medians.items()
    ]
    print(table(rows, ("probe output", "client ms/tick", "server ms/tick")))
    print(f"client awk/no-awk x{doc['client_ratio']:.2f}, server x{doc['server_ratio']:.2f}")
    print(f"saved {save('stream_sshd', doc)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
