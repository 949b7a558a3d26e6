"""Benchmark: `fleetmon serve` over the streaming collector against `fleetmon simulate` (I/O).

Issue 17's figures: the client's CPU per host per tick (target <= 1 ms at 1,000 hosts and
2 s ticks: no handshakes, just reading and analysing), and flat memory and file descriptors
over a long run. The simulator is its own process (`--time-scale X` answers a 2 s tick every
2/X s with the hosts' clocks moved on by 2 s, so a long run of simulated ticks takes less
time); `fleetmon serve` is measured from /proc: CPU (user + sys), RSS and open fds, sampled
every few seconds, and /healthz's count of samples analysed.

Beside it, the same path in this process, per kind of host (`--kind` of the simulator:
kvm, xen, linux; 40 hosts, no containers, 11 ticks 2 s apart, rounds interleaved): each
tick split, paired with the one before, analysed and its memo kept, as collect/stream.py
does (containers_bench.live_pair_ms); the CPU of one such pair, the part of the target
that is parsing and analysing alone (the same 1 ms), without sockets or the event loop.
`--pairs-only` measures it alone (seconds, not minutes).
    .venv/bin/python benchmarks/live_bench.py [--hosts 1000] [--minutes 5] [--time-scale 1]
        [--pairs-only] [--pair-rounds 5]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from containers_bench import live_pair_ms, streamed_texts
from measure import FLEETMON, log, machine, save, table
from simulated import simulator

TARGET_CPU_MS_PER_HOST_TICK = 1.0
TICK_S = 2.0
_PAIRS = re.compile(rb"(\d+)/(\d+) hosts live; (\d+) samples analysed; (\d+) passed over")


def _proc(pid: int) -> tuple[float, float, int]:
    """CPU seconds (user + sys), RSS in MB and open fds of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    rss_kb = next(
        int(line.split()[1])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmRSS:")
    )
    return cpu, rss_kb / 1024, len(os.listdir(f"/proc/{pid}/fd"))


def _health(port: int) -> tuple[int, int, int, int]:
    """(hosts live, hosts, samples analysed, ticks passed over) from /healthz."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
            body = r.read()
    except urllib.error.HTTPError as exc:  # 503: no tick yet, or ticks late (stale)
        body = exc.read()
        log(f"/healthz {exc.code}: {body.decode(errors='replace').strip()}")
    m = _PAIRS.search(body)
    if m is None:
        return 0, 0, 0, 0
    return int(m.group(1)), int(m.group(2)), int(m.group(3)), int(m.group(4))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _run_baseline(inventory: Path, tmp: Path) -> dict[str, Any]:
    """`fleetmon run` of the same fleet in the same run: its client CPU per host (the cost
    of a connection, a handshake and one probe each time, which streaming avoids)."""
    out = tmp / "run.json"
    argv = [str(FLEETMON), "run", str(inventory), "--interval", f"{TICK_S:g}", "--format", "json",
            "-o", str(out), "--no-lock", "-q"]  # fmt: skip
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    hosts = sum(
        1 for h in __import__("json").loads(out.read_text())["hosts"] if h["status"] == "ok"
    )
    cpu = usage.ru_utime + usage.ru_stime
    return {"wall_s": round(time.monotonic() - t0, 2), "cpu_s": round(cpu, 2), "hosts_ok": hosts,
            "cpu_ms_per_host": round(1000 * cpu / max(1, hosts), 2)}  # fmt: skip


def bench(
    hosts: int, minutes: float, time_scale: float, rules: bool, connect_timeout: float | None
) -> dict[str, Any]:
    """One long run; samples every 10 s after the fleet is live."""
    with tempfile.TemporaryDirectory(prefix="fleetmon-live-") as tmp:
        extra = ["--time-scale", f"{time_scale:g}"]
        with simulator(hosts, Path(tmp), latency_ms=0.0, extra=extra) as fleet:
            baseline = _run_baseline(fleet.inventory, Path(tmp))
            port = _free_port()
            argv = [str(FLEETMON), "serve", str(fleet.inventory), "--listen",
                    f"127.0.0.1:{port}", "-d", f"{TICK_S:g}"]  # fmt: skip
            if not rules:
                argv.append("--no-rules")
            if connect_timeout is not None:
                # A loop saturated by the hosts already live slows the others' handshakes.
                argv += ["--connect-timeout", f"{connect_timeout:g}"]
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                doc = _watch(proc, port, fleet, hosts, minutes, time_scale)
                doc["baseline_run"] = baseline
            finally:
                t0 = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(300)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            doc["sigterm_to_exit_s"] = round(time.monotonic() - t0, 2)
            doc["exit_code"] = proc.returncode
            return doc


def _watch(
    proc: subprocess.Popen[bytes], port: int, fleet: Any, hosts: int, minutes: float,
    time_scale: float,
) -> dict[str, Any]:  # fmt: skip
    deadline = time.monotonic() + max(300.0, 0.6 * hosts)
    while True:
        try:
            live, _, _, _ = _health(port)
        except OSError:
            live = 0
        if live >= hosts:
            break
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"only {live} of {hosts} hosts live")
        time.sleep(1)
    time.sleep(3 * TICK_S)  # past the first ticks' start-up
    samples = []
    t0 = time.monotonic()
    sim0 = fleet.cpu_s()
    while True:
        now = time.monotonic() - t0
        cpu, rss, fds = _proc(proc.pid)
        live, _, pairs, passed = _health(port)
        samples.append({"t_s": round(now, 1), "cpu_s": cpu, "rss_mb": round(rss, 1),
                        "fds": fds, "pairs": pairs, "passed": passed, "live": live})  # fmt: skip
        log(f"t={now:6.0f}s rss={rss:.1f} MB fds={fds} pairs={pairs} passed={passed} live={live}")
        if now >= minutes * 60:
            break
        time.sleep(10)
    first, last = samples[0], samples[-1]
    pairs = last["pairs"] - first["pairs"]
    cpu_ms = 1000 * (last["cpu_s"] - first["cpu_s"]) / max(1, pairs)
    half = samples[len(samples) // 2 :]
    return {
        "hosts": hosts,
        "tick_s": TICK_S,
        "time_scale": time_scale,
        "minutes": minutes,
        "simulated_ticks_per_host": round(pairs / hosts, 1),
        "cpu_ms_per_host_tick": round(cpu_ms, 3),
        "client_cores": round((last["cpu_s"] - first["cpu_s"]) / (last["t_s"] - first["t_s"]), 3),
        "sim_cores": round((fleet.cpu_s() - sim0) / (last["t_s"] - first["t_s"]), 3),
        # Ticks read but not analysed because a newer one had arrived (the client behind).
        "ticks_passed_over": last["passed"] - first["passed"],
        "rss_mb_at_minutes": {
            m: next((x["rss_mb"] for x in samples if x["t_s"] >= 60 * m), None)
            for m in (1, 2, 5, 10, 20, 30)
            if m <= minutes
        },
        "rss_mb_first": first["rss_mb"],
        "rss_mb_last": last["rss_mb"],
        "rss_mb_max_second_half": max(s["rss_mb"] for s in half),
        "rss_mb_min_second_half": min(s["rss_mb"] for s in half),
        "fds": sorted({s["fds"] for s in samples}),
        "samples": samples,
        "machine": machine(),
    }


PAIR_KINDS = ("kvm", "xen", "linux")


def bench_pairs(rounds: int, hosts: int = 40) -> dict[str, Any]:
    """The in-process pair CPU per kind of host (ms, the median of `rounds` interleaved)."""
    texts = {kind: streamed_texts(hosts, 0, 11, kind) for kind in PAIR_KINDS}
    ms: dict[str, list[float]] = {kind: [] for kind in PAIR_KINDS}
    for _ in range(rounds):
        for kind in PAIR_KINDS:
            ms[kind].append(live_pair_ms(texts[kind]))
    pair = {kind: round(statistics.median(v), 3) for kind, v in ms.items()}
    log("in process, ms a pair: " + ", ".join(f"{k} {v}" for k, v in pair.items()))
    return {"hosts": hosts, "rounds": rounds, "ticks": 11, "pair_ms": pair, "machine": machine()}


def render_pairs(doc: dict[str, Any]) -> str:
    rows = [(f"{kind}: CPU a pair (ms)", ms) for kind, ms in doc["pair_ms"].items()]
    rows.append(("target (ms)", TARGET_CPU_MS_PER_HOST_TICK))
    rows.append(("load average (1 min)", round(doc["machine"]["loadavg_1m"], 1)))
    return table(rows, [f"in process, {doc['hosts']} hosts a kind", "figure"])


def render(doc: dict[str, Any]) -> str:
    rows = [
        ("hosts", doc["hosts"]),
        ("tick (simulated s) / time scale", f"{doc['tick_s']:g} / {doc['time_scale']:g}"),
        ("minutes (real)", doc["minutes"]),
        ("simulated ticks per host", doc["simulated_ticks_per_host"]),
        ("client CPU per host per tick (ms)", doc["cpu_ms_per_host_tick"]),
        ("ticks passed over (client behind)", doc["ticks_passed_over"]),
        (
            "RSS at minutes (MB)",
            ", ".join(f"{m}: {v}" for m, v in doc["rss_mb_at_minutes"].items()),
        ),
        ("client cores busy", doc["client_cores"]),
        ("simulator cores busy", doc["sim_cores"]),
        ("RSS first / last (MB)", f"{doc['rss_mb_first']} / {doc['rss_mb_last']}"),
        (
            "RSS second half min..max (MB)",
            f"{doc['rss_mb_min_second_half']}..{doc['rss_mb_max_second_half']}",
        ),
        ("open fds seen", ", ".join(map(str, doc["fds"]))),
        (
            "same run: fleetmon run, client CPU per host (ms)",
            doc["baseline_run"]["cpu_ms_per_host"],
        ),
        ("load average (1 min) at the end", round(doc["machine"]["loadavg_1m"], 1)),
        ("SIGTERM to exit (s), exit code", f"{doc['sigterm_to_exit_s']}, {doc['exit_code']}"),
    ]
    return table(rows, ["fleetmon serve, streaming", "figure"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hosts", type=int, default=1000)
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--time-scale", type=float, default=1.0)
    p.add_argument("--no-rules", action="store_true")
    p.add_argument("--connect-timeout", type=float, default=None, help="serve's, in seconds")
    p.add_argument("--pairs-only", action="store_true", help="the in-process pairs alone")
    p.add_argument("--pair-rounds", type=int, default=5)
    args = p.parse_args(argv)
    pairs = bench_pairs(args.pair_rounds)
    print(render_pairs(pairs), flush=True)
    if args.pairs_only:
        save("live-pairs", pairs)
        return 0
    doc = bench(args.hosts, args.minutes, args.time_scale, not args.no_rules, args.connect_timeout)
    doc["in_process"] = pairs
    print(render(doc), flush=True)
    save(f"live-{args.hosts}", doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
