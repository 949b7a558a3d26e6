"""Benchmark clients (I/O), each run as its own child process on a job file (see fleet.py).

    python benchmarks/clients.py bare JOB.json     # bare asyncssh loop: connect, run, no parsing
    python benchmarks/clients.py collect JOB.json  # fleetmon in-process: collect() + build_report

Both send the same probe script on stdin of the same remote command under the same
semaphore, verify host keys the same way, and print one JSON summary line last.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import asyncssh

from fleetmon.collect.probe import REMOTE_COMMAND, ProbeOptions, build_script


def _probe_options(job: dict[str, Any]) -> ProbeOptions:
    return ProbeOptions(interval_s=job["interval_s"], hypervisor=job.get("hypervisor", "auto"))


def _elapsed_stats(elapsed: list[float]) -> dict[str, float | None]:
    if not elapsed:
        return {"elapsed_p50_s": None, "elapsed_max_s": None}
    return {"elapsed_p50_s": statistics.median(elapsed), "elapsed_max_s": max(elapsed)}


async def bare(job: dict[str, Any]) -> dict[str, Any]:
    """The baseline: what any asyncssh client must do for this probe, and nothing else."""
    key = asyncssh.read_private_key(job["key"])
    known = asyncssh.read_known_hosts(job["known_hosts"])
    script = build_script(_probe_options(job)).encode()
    slots = asyncio.Semaphore(job["forks"])
    elapsed: list[float] = []
    errors: list[str] = []

    async def one(address: str, port: int) -> int:
        async with slots:
            t0 = time.monotonic()
            try:
                async with asyncssh.connect(
                    address,
                    port,
                    username=job["user"],
                    client_keys=[key],
                    known_hosts=known,
                    connect_timeout=job["connect_timeout_s"],
                    # asyncssh's defaults unless the job names ciphers (a side measurement).
                    encryption_algs=job.get("encryption_algs", ()),
                ) as conn:
                    res = await conn.run(REMOTE_COMMAND, input=script, encoding=None)
            except (OSError, asyncssh.Error) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                return 0
            elapsed.append(time.monotonic() - t0)
            out = res.stdout
            return 1 if res.exit_status == 0 and isinstance(out, bytes) and out else 0

    cpu0 = time.process_time()
    t0 = time.monotonic()
    oks = await asyncio.gather(*(one(a, p) for _, a, p in job["hosts"]))
    return {
        "ok": sum(oks),
        "hosts": len(job["hosts"]),
        "phase_wall_s": time.monotonic() - t0,
        "phase_cpu_s": time.process_time() - cpu0,
        "errors": errors[:3],
        **_elapsed_stats(elapsed),
    }


def collect_pipeline(job: dict[str, Any]) -> dict[str, Any]:
    """fleetmon as a library: collect() then the pure pipeline (split, parse, deltas, stats)."""
    from fleetmon.analyse.pipeline import build_report
    from fleetmon.cli.runtime import utc_now
    from fleetmon.collect.runner import CollectOptions, collect
    from fleetmon.model import HostSpec, RunInfo, Status

    hosts = [
        HostSpec(name=n, address=a, port=p, user=job["user"], key_file=job["key"])
        for n, a, p in job["hosts"]
    ]
    opts = CollectOptions(
        interval_s=job["interval_s"],
        forks=job["forks"],
        connect_timeout_s=job["connect_timeout_s"],
        known_hosts=job["known_hosts"],
    )
    cpu0 = time.process_time()
    t0 = time.monotonic()
    raws = asyncio.run(collect(hosts, opts, lambda h: _probe_options(job)))
    collect_wall, collect_cpu = time.monotonic() - t0, time.process_time() - cpu0
    run = RunInfo(
        fleetmon_version="bench",
        started_at=utc_now(),
        interval_s=job["interval_s"],
        inventory="bench",
    )
    report = build_report(raws, run)
    elapsed = [r.elapsed_s for r in raws if r.status is Status.OK and r.elapsed_s is not None]
    return {
        "ok": sum(1 for h in report.hosts if h.status is Status.OK),
        "hosts": len(hosts),
        "phase_wall_s": collect_wall,
        "phase_cpu_s": collect_cpu,
        "analyse_cpu_s": time.process_time() - cpu0 - collect_cpu,
        "errors": [f"{r.status.value}: {r.reason}" for r in raws if r.status is not Status.OK][:3],
        **_elapsed_stats(elapsed),
    }


def main(argv: list[str]) -> int:
    """Run one client on a job file and print its JSON summary."""
    kind, job_path = argv
    job = json.loads(Path(job_path).read_text())
    if kind == "bare":
        summary = asyncio.run(bare(job))
    elif kind == "collect":
        summary = collect_pipeline(job)
    else:
        raise SystemExit(f"unknown client {kind!r}")
    print(json.dumps(summary))
    return 0 if summary["ok"] == summary["hosts"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
