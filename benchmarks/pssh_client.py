"""Peer client (I/O): parallel-ssh runs the probe on every host of a job file.

Runs in the peers venv (benchmarks/.venv-peers), where fleetmon is not installed: the job
file carries the probe command ready-made (`env LC_ALL=C ... sh -c '<script>'`).
    benchmarks/.venv-peers/bin/python benchmarks/pssh_client.py JOB.json
Prints one JSON summary line last.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any


def main(argv: list[str]) -> int:
    """Run the probe with ParallelSSHClient (pool_size = forks) and count the good hosts."""
    from pssh.clients import ParallelSSHClient

    job: dict[str, Any] = json.loads(Path(argv[0]).read_text())
    addresses = [a for _, a, _ in job["hosts"]]
    ports = {p for _, _, p in job["hosts"]}
    if len(ports) != 1:
        raise SystemExit("pssh_client: one port for all hosts expected")
    t0 = time.monotonic()
    cpu0 = time.process_time()
    client = ParallelSSHClient(
        addresses,
        user=job["user"],
        port=ports.pop(),
        pkey=job["key"],
        pool_size=job["forks"],
        num_retries=1,
        timeout=job["connect_timeout_s"] + job["interval_s"] + 30,
    )
    output = client.run_command(job["command_line"], stop_on_errors=False)
    client.join(output)
    ok = 0
    errors: list[str] = []
    for host_out in output:
        if host_out.exception is not None:
            errors.append(repr(host_out.exception))
            continue
        size = sum(len(line) for line in host_out.stdout)
        if host_out.exit_code == 0 and size > 0:
            ok += 1
    print(
        json.dumps(
            {
                "ok": ok,
                "hosts": len(addresses),
                "phase_wall_s": time.monotonic() - t0,
                "phase_cpu_s": time.process_time() - cpu0,
                "errors": errors[:3],
            }
        )
    )
    return 0 if ok == len(addresses) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
