"""Benchmark of containers (issue 14): what 200 containers on a host cost (I/O).

- probe: the real probe script (`sh -s`, as the remote side runs it) on this machine, its
  cgroup root pointed at a tree of 200 container cgroups in a temporary folder (v2: the
  recorded Docker container files of tests/data/couchbase-platform under
  system.slice/docker-<id>.scope, beside 100 system services it must not read; v1: the same
  under cpu/, cpuacct/, memory/, blkio/, pids/, freezer/ as Podman's cgroupfs layout; the
  freezer's state, v2 cgroup.events and v1 freezer.state, written as the kernel has them),
  against the same script on an empty tree in the same run. CPU is the children's user+system time
  (getrusage). Target: <= 20 ms more per host.
- client: `fleetmon run` against `fleetmon simulate --kind linux` with `--containers 200`
  and with `--containers 0`, rounds interleaved, each recording its history as a default
  run does (a file per fleet in the temporary folder, kept across the rounds); CPU per host
  of the client process, and analyse_host alone on one simulated host in this process.
  Target: <= 1 ms more per host.
- live: the live modes' path (top, serve) in this process on 60 simulated Linux hosts with
  200 containers and with none, 11 ticks 2 s apart: each tick split, paired with the one
  before, analysed, the memo kept for the next (collect/stream.py); CPU per host per tick.
Usage: .venv/bin/python benchmarks/containers_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fleet import measure_clients
from measure import log, machine, save, table
from simulated import sim_job, simulator

from fleetmon.analyse.pipeline import analyse_host, analyse_output
from fleetmon.collect.probe import REMOTE_COMMAND, ProbeOptions, build_script
from fleetmon.model import HostReport, HostSpec, RawResult, Status
from fleetmon.sim.answer import Answer, ScriptInfo
from fleetmon.sim.captures import load_captures
from fleetmon.sim.containers import with_containers
from fleetmon.sim.hosts import endpoints, make_fleet
from fleetmon.sim.render import Moment
from fleetmon.sources.sections import Section, keep_for_next, pair_output, split_tick

ROOT = Path(__file__).resolve().parent.parent
RECORDED = ROOT / "tests" / "data" / "couchbase-platform" / "cgroup" / "test"
TARGET_PROBE_MS = 20.0
TARGET_CLIENT_MS = 1.0
LIVE_NONCE = "0123456789abcdef"
V1_CONTROLLERS = {"cpu": "cpu", "cpuacct": "cpu", "memory": "memory", "blkio": "io",
                  "pids": "pids", "freezer": "freezer"}  # fmt: skip


def make_tree(root: Path, n: int, version: int) -> None:
    """n container cgroups (and 100 service cgroups the probe must skip) under root."""
    v2 = RECORDED / "v2" / "sys" / "fs" / "cgroup"
    files = [f for f in v2.iterdir() if f.is_file()]
    v1 = RECORDED / "v1" / "sys" / "fs" / "cgroup"
    root.mkdir(parents=True)
    if version == 2:
        (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    for i in range(n + 100):
        cid = f"{i:064x}"
        if version == 2:
            d = root / "system.slice" / (f"docker-{cid}.scope" if i < n else f"svc{i}.service")
            d.mkdir(parents=True)
            for f in files:
                shutil.copyfile(f, d / f.name)
            # Every v2 cgroup has it (5.2+); the recording predates the probe's reading it.
            (d / "cgroup.events").write_text("populated 1\nfrozen 0\n")
            continue
        for ctl in V1_CONTROLLERS:
            d = root / ctl / ("libpod_parent/libpod-" + cid if i < n else f"system/svc{i}")
            d.mkdir(parents=True)
            src = v1 / ctl if (v1 / ctl).is_dir() else None
            for f in src.iterdir() if src else ():
                if f.is_file():
                    shutil.copyfile(f, d / f.name)
            if ctl == "pids":
                (d / "pids.current").write_text("3\n")
            if ctl == "freezer":  # the paused check (issue 14): one word a container
                (d / "freezer.state").write_text("THAWED\n")


def probe_cpu_ms(cgroup_root: Path, interval_s: float = 0.2) -> float:
    """CPU (ms) of one run of the real probe script with this cgroup root."""
    script = build_script(ProbeOptions(interval_s=interval_s, hypervisor="none",
                                       cgroup_root=str(cgroup_root)))  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(REMOTE_COMMAND.split(), input=script, capture_output=True, text=True,
                   check=True)  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) * 1000


def bench_probe(rounds: int, n: int = 200) -> dict[str, Any]:
    """Median probe CPU with n containers and with none, interleaved, per cgroup version."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="fleetmon-ctr-tree-") as tmp:
        for version in (2, 1):
            full, empty = Path(tmp) / f"v{version}-full", Path(tmp) / f"v{version}-empty"
            make_tree(full, n, version)
            make_tree(empty, 0, version)
            with_, without = [], []
            for _ in range(rounds):
                with_.append(probe_cpu_ms(full))
                without.append(probe_cpu_ms(empty))
            med_with, med_without = statistics.median(with_), statistics.median(without)
            out[f"v{version}"] = {
                "containers_ms": med_with, "empty_ms": med_without,
                "added_ms": med_with - med_without, "rounds": rounds,
            }  # fmt: skip
            log(f"probe v{version}: {n} containers {med_with:.1f} ms, none {med_without:.1f} ms")
    return out


def analyse_ms(per_host: int, repeats: int) -> float:
    """Median ms of analyse_host on one simulated Linux host with per_host containers."""
    fleet = with_containers(make_fleet(2, "linux", 1, {}, endpoints("127.0.1.1", 2, 22, 1)),
                            per_host, 1)  # fmt: skip
    info = ScriptInfo(nonce="0123456789abcdef", interval_s=1.0, hypervisor="none")
    times = []
    for host in fleet:
        ans = Answer(load_captures(), host, info, "", "")
        t0 = 1_790_000_000.0  # moments as the simulator's own: 1 s apart, 10 s in
        text = ans.first(Moment(10.0, t0)) + ans.second(Moment(11.0, t0 + 1))
        raw = RawResult(HostSpec(host.name, host.address), Status.OK, stdout=text,
                        nonce=info.nonce)  # fmt: skip
        if analyse_host(raw).status is not Status.OK:
            raise RuntimeError(f"{host.name}: {analyse_host(raw).error}")
        for _ in range(repeats):
            t0 = time.process_time()
            analyse_host(raw)
            times.append((time.process_time() - t0) * 1000)
    return statistics.median(times)


def streamed_texts(
    hosts: int, per_host: int, ticks: int, kind: str = "linux"
) -> list[tuple[str, list[str]]]:
    """Each simulated host's name and its streamed ticks, 2 s apart (as the simulator's
    looping probe prints them); `kind` as `fleetmon simulate --kind` (linux, kvm, xen)."""
    fleet = with_containers(
        make_fleet(hosts, kind, 1, {}, endpoints("127.0.1.1", hosts, 22, 1)), per_host, 1
    )
    info = ScriptInfo(nonce=LIVE_NONCE, interval_s=2.0, hypervisor="auto")
    caps = load_captures()
    t0 = 1_790_000_000.0
    return [
        (host.name, [Answer(caps, host, info, "", "").tick(k, Moment(10.0 + 2 * k, t0 + 2 * k),
                                                           k == 1) for k in range(1, ticks + 1)])
        for host in fleet
    ]  # fmt: skip


def live_pair_ms(texts: list[tuple[str, list[str]]]) -> float:
    """CPU ms per host per tick of the live modes' path in this process: each tick split,
    paired with the previous one, analysed, and the memo kept for the next pair as
    collect/stream.py does (the first pair, which parses both samples, included)."""
    t0 = time.process_time()
    pairs = 0
    for name, ticks in texts:
        once: dict[str, Section] = {}
        prev: Mapping[str, Section] | None = None
        memo: dict[tuple[str, str, str], Any] = {}
        for text in ticks:
            tick = split_tick(text, LIVE_NONCE)
            once.update(tick.once)
            if prev is not None:
                out = pair_output(once, prev, tick.sections, memo)
                analyse_output(HostReport(name, "127.0.0.1", (), Status.OK, None), out,
                               counters=False)  # fmt: skip
                keep_for_next(out)
                pairs += 1
            prev = tick.sections
    return (time.process_time() - t0) * 1000 / pairs


def bench_live(hosts: int, rounds: int, n: int = 200) -> dict[str, Any]:
    """The live modes' CPU per host per tick (in process) with n containers and none,
    rounds interleaved."""
    texts = {k: streamed_texts(hosts, k, 11) for k in (n, 0)}
    ms: dict[int, list[float]] = {n: [], 0: []}
    for _ in range(rounds):
        for k in (n, 0):
            ms[k].append(live_pair_ms(texts[k]))
    with_, without = statistics.median(ms[n]), statistics.median(ms[0])
    log(f"live: {n} containers {with_:.3f} ms a pair, none {without:.3f}")
    pair = {"containers": with_, "none": without, "added": with_ - without}
    return {"hosts": hosts, "rounds": rounds, "ticks": 11, "pair_ms": pair}


def bench_client(hosts: int, rounds: int, n: int = 200) -> dict[str, Any]:
    """fleetmon run's CPU per host against simulated hosts with n containers and none."""
    cpu: dict[int, list[float]] = {n: [], 0: []}
    with tempfile.TemporaryDirectory(prefix="fleetmon-ctr-sim-") as tmp:
        for r in range(rounds):
            for k in (n, 0):
                work = Path(tmp) / f"r{r}-c{k}"  # its own inventory and job files
                work.mkdir()
                extra = ("--kind", "linux", "--containers", str(k))
                # One history per fleet across the rounds, as a run every few minutes has.
                history = Path(tmp) / f"history-c{k}.sqlite"
                with simulator(hosts, work, latency_ms=0.0, extra=extra) as fleet:
                    res = measure_clients(sim_job(fleet, 100), ("cli",), 1, work, history=history)
                cpu[k].append(res["cli"]["cpu_ms_per_host"])
    with_, without = statistics.median(cpu[n]), statistics.median(cpu[0])
    return {
        "hosts": hosts, "rounds": rounds,
        "cli_cpu_ms_per_host": {"containers": with_, "none": without, "added": with_ - without},
        "analyse_host_ms": {"containers": analyse_ms(n, 20), "none": analyse_ms(0, 20)},
    }  # fmt: skip


def render(doc: dict[str, Any]) -> str:
    rows: list[tuple[object, ...]] = []
    for v in ("v2", "v1"):
        p = doc["probe"][v]
        rows.append((f"probe CPU, cgroup {v}", p["containers_ms"], p["empty_ms"], p["added_ms"],
                     f"<= {TARGET_PROBE_MS:g}"))  # fmt: skip
    c = doc["client"]["cli_cpu_ms_per_host"]
    rows.append(("fleetmon run CPU per host", c["containers"], c["none"], c["added"],
                 f"<= {TARGET_CLIENT_MS:g}"))  # fmt: skip
    lv = doc["live"]["pair_ms"]
    rows.append(("live pair per host (in process)", lv["containers"], lv["none"], lv["added"],
                 f"<= {TARGET_CLIENT_MS:g}"))  # fmt: skip
    a = doc["client"]["analyse_host_ms"]
    rows.append(("analyse_host per host", a["containers"], a["none"],
                 a["containers"] - a["none"], "-"))  # fmt: skip
    return table(rows, ("ms", "200 containers", "none", "added", "target"))


def bench(quick: bool = False) -> dict[str, Any]:
    """Both parts; the JSON document."""
    doc: dict[str, Any] = {"machine": machine()}
    doc["probe"] = bench_probe(3 if quick else 7)
    doc["client"] = bench_client(20 if quick else 50, 1 if quick else 3)
    doc["live"] = bench_live(20 if quick else 60, 3 if quick else 7)
    return doc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    doc = bench(args.quick)
    print(render(doc))
    print(f"saved {save('containers', doc)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
