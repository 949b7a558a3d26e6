"""A real Dask cluster for tests: `dask scheduler` and `dask worker` started as the CLIs, on
loopback, each in its own process group (stopped, or killed mid-run, by that group)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import select
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

DASK = str(Path(sys.executable).with_name("dask"))
SIM = str(Path(sys.executable).with_name("fleetmon"))


def require_dask() -> None:
    """Skip without the `dask` CLI; in CI (CI=true) a missing one fails."""
    if not os.path.exists(DASK):
        if os.environ.get("CI") == "true":
            pytest.fail(f"{DASK} is missing: pip install -e '.[test]' installs distributed")
        pytest.skip("dask CLI not installed (pip install -e '.[test]')")


def _start(
    argv: Sequence[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, env={**os.environ, **(env or {})},
        )  # fmt: skip


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Signal the process's whole group (a worker and its nanny) and reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@dataclass
class Cluster:
    """A scheduler and its workers, by name."""

    address: str
    scheduler: subprocess.Popen[bytes]
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    folder: Path = Path()

    def worker_address(self, name: str) -> str:
        """The address the scheduler knows the worker `name` by (from its log)."""
        for line in (self.folder / f"worker-{name}.log").read_text().splitlines():
            if "Start worker at:" in line:
                return line.split("Start worker at:")[1].strip()
        raise AssertionError(f"worker {name} has not started")

    def close(self) -> None:
        for proc in self.workers.values():
            stop(proc)
        stop(self.scheduler)


def start_cluster(
    folder: Path,
    workers: dict[str, Sequence[str]],
    wait_s: float = 60,
    tls: Sequence[str] = (),
    nofile: dict[str, int] | None = None,
    env: dict[str, dict[str, str]] | None = None,
) -> Cluster:
    """A scheduler on a free loopback port and one single-thread worker per entry of
    `workers` (name -> extra CLI options, e.g. ["--resources", "site-a=1"]), all registered.
    `tls`: the --tls-* options of the scheduler and the workers (its scheme is then tls).
    `nofile`: a worker's open-file limit (name -> `ulimit -n`), else the test's.
    `env`: a worker's environment variables (name -> {VAR: value}) over the test's."""
    sched_file = folder / "scheduler.json"
    sched = _start(
        [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
         "--scheduler-file", str(sched_file), *(["--protocol", "tls", *tls] if tls else [])],
        folder / "scheduler.log",
    )  # fmt: skip
    cluster = Cluster("", sched, folder=folder)
    try:
        deadline = time.monotonic() + wait_s
        while not sched_file.exists() or not sched_file.read_text().strip():
            assert sched.poll() is None, (folder / "scheduler.log").read_text()
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.2)
        cluster.address = json.loads(sched_file.read_text())["address"]
        for name, extra in workers.items():
            limit = (nofile or {}).get(name)
            wrap = ["sh", "-c", f'ulimit -n {limit} && exec "$@"', "sh"] if limit else []
            cluster.workers[name] = _start(
                [*wrap, DASK, "worker", cluster.address, "--name", name, "--nthreads", "1",
                 "--host", "127.0.0.1", "--no-dashboard", *tls, *extra],
                folder / f"worker-{name}.log",
                (env or {}).get(name),
            )  # fmt: skip
        for name in workers:
            while True:
                try:
                    cluster.worker_address(name)
                    break
                except AssertionError:
                    assert cluster.workers[name].poll() is None, f"worker {name} exited"
                    assert time.monotonic() < deadline, f"worker {name} did not start"
                    time.sleep(0.2)
        _wait_registered(folder, len(workers), deadline)
    except BaseException:
        cluster.close()
        raise
    return cluster


def _wait_registered(folder: Path, count: int, deadline: float) -> None:
    log = folder / "scheduler.log"
    while log.read_text().count("Register worker") < count:
        assert time.monotonic() < deadline, "the workers did not register"
        time.sleep(0.2)


@dataclass
class Sim:
    """A running `fleetmon simulate` and the inventory it wrote."""

    proc: subprocess.Popen[bytes]
    inventory: Path


def start_sim(folder: Path, argv: Sequence[str]) -> Sim:
    """`fleetmon simulate ARGV --inventory-out folder/sim.yaml`, once it says ready."""
    inv = folder / "sim.yaml"
    proc = subprocess.Popen(
        [SIM, "simulate", "--port", "0", "--inventory-out", str(inv), *argv],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + 60
    while b"collect them with" not in seen:
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_sim(Sim(proc, inv))
            raise AssertionError(f"simulator did not start: {seen.decode(errors='replace')}")
        if select.select([proc.stdout], [], [], 0.5)[0]:
            seen += os.read(proc.stdout.fileno(), 65536)
    return Sim(proc, inv)


def stop_sim(sim: Sim) -> None:
    """Stop the simulator (SIGINT, as a user would) and close its pipe."""
    stop(sim.proc, signal.SIGINT)
    if sim.proc.stdout is not None:
        sim.proc.stdout.close()


def loopback_base() -> str:
    """A random 127.x.y.1 for a simulator (x <= 200: a second site is 65,536 addresses
    further on)."""
    return f"127.{random.randint(100, 200)}.{random.randint(0, 255)}.1"


def running_on(address: str, worker: str, wait_s: float = 60, count: int = 1) -> None:
    """Return once `worker` has announced the start of `count` fleetmon shards (the event
    each attempt logs on the scheduler)."""
    import distributed

    with distributed.Client(address, timeout=20) as client:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            events = client.get_events("fleetmon-shard")
            if sum(msg["worker"] == worker for _, msg in events) >= count:
                return
            time.sleep(0.1)
    raise AssertionError(f"{worker} never ran {count} shard(s)")


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def worker_process(nanny: subprocess.Popen[bytes]) -> int:
    """The worker process a `dask worker` (its nanny) started."""
    (pid,) = [p for p in children(nanny.pid)
              if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()]  # fmt: skip
    return pid
