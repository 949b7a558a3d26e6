"""`fleetmon run --cluster`: which worker collected each host (`collected_by`, and a failed
host's reason), and a retry that keeps away from the worker its shard died on, restarted
or not (real `dask scheduler` and `dask worker` processes on loopback, the simulator as
the fleet)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from clirun import fleetmon
from daskcli import (
    loopback_base,
    require_dask,
    running_on,
    start_cluster,
    start_sim,
    stop_sim,
    worker_process,
)

from fleetmon.cluster.engine import ShardRunner
from fleetmon.cluster.shards import make_shards
from fleetmon.collect.base import CollectOptions
from fleetmon.collect.probe import ProbeOptions
from fleetmon.model import HostSpec

pytestmark = pytest.mark.slow

#: Where the workers run: every worker of these tests is on this machine.
MACHINE = socket.gethostname()
ARGS = ("-q", "--format", "json", "--history", "none")


def _run(*args: object) -> dict[str, Any]:
    res = fleetmon("run", *args, *ARGS, timeout=300)
    assert res.returncode in (0, 1, 2, 3), res.stderr
    report: dict[str, Any] = json.loads(res.stdout)
    return report


def test_a_host_failing_on_a_worker_names_the_worker_in_its_reason_and_row(
    tmp_path: Path,
) -> None:
    """A host's reason said "Connection refused" whichever worker tried it: an operator
    could not tell a host down from a worker that cannot reach it."""
    require_dask()
    c = start_cluster(tmp_path, {"x": [], "y": []})
    s = start_sim(tmp_path, ["--hosts", "6", "--base-address", loopback_base(),
                             "--faults", "unreachable=2"])  # fmt: skip
    try:
        local = _run(s.inventory)
        dist = _run(s.inventory, "--cluster", c.address, "--shard-size", "3")
    finally:
        stop_sim(s)
        c.close()
    labels = {f"{c.worker_address(n)} ({n} on {MACHINE})" for n in ("x", "y")}
    assert Counter(h["status"] for h in dist["hosts"]) == {"ok": 4, "unreachable": 2}
    # Every host, collected or not, says which worker collected it.
    assert {h["collected_by"] for h in dist["hosts"]} <= labels
    assert all(h["collected_by"] is None for h in local["hosts"])
    for d, lo in zip(dist["hosts"], local["hosts"], strict=True):
        assert (d["name"], d["status"]) == (lo["name"], lo["status"])
        if d["status"] == "ok":
            assert d["error"] is None
        else:  # the local run's reason, after the worker it failed from
            assert d["error"] == f"from worker {d['collected_by']}: {lo['error']}"
            assert d["error"].endswith(" refused"), d["error"]


def test_a_killed_worker_s_shard_is_retried_on_the_other_worker_not_its_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker process killed (OOM, kill -9) is restarted by its nanny at another address
    under the same name: the retry of its shard goes to the other worker, and its hosts say
    so."""
    require_dask()
    # The scheduler fails a task whose worker died at once (KilledWorker), as local:N's
    # does, rather than rerunning it itself: the client's retry is what is tested.
    monkeypatch.setenv("DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES", "0")
    c = start_cluster(tmp_path, {"x": [], "y": []})
    s = start_sim(tmp_path, ["--hosts", "4", "--base-address", loopback_base()])
    x_addr = c.worker_address("x")
    try:
        # Two shards of 2 hosts, one on each worker, each at least its 6 s interval long.
        proc = subprocess.Popen(
            [sys.executable, "-m", "fleetmon", "run", str(s.inventory), "--cluster", c.address,
             "--shard-size", "2", "--interval", "6", *ARGS],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            running_on(c.address, x_addr, wait_s=120)
            os.kill(worker_process(c.workers["x"]), signal.SIGKILL)
            out, err = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    finally:
        stop_sim(s)
        c.close()
    report = json.loads(out)
    assert Counter(h["status"] for h in report["hosts"]) == {"ok": 4}, (err, report["notes"])
    retried = [n for n in report["notes"] if "retried" in n]
    assert len(retried) == 1, report["notes"]
    assert f"(its worker {x_addr} " in retried[0], retried
    # Every host on y: the retried shard's too, not on x, nor on x started again.
    y_label = f"{c.worker_address('y')} (y on {MACHINE})"
    assert {h["collected_by"] for h in report["hosts"]} == {y_label}, retried


def _declare(inventory: Path, out: Path, **host_vars: str) -> Path:
    """The inventory with `host_vars` set on the hosts the simulator plays faulty."""
    doc = yaml.safe_load(inventory.read_text())
    for group in doc["all"]["children"].values():
        for entry in (group.get("hosts") or {}).values():
            if isinstance(entry, dict) and entry.get("sim_fault"):
                entry.update(host_vars)
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


def test_a_failed_host_reads_as_in_a_local_run_without_its_secret_on_the_cluster(
    tmp_path: Path,
) -> None:
    """A shard carries no inventory variable's value: an unreachable host declaring
    `fleetmon_hypervisor: kvm` came back `none` (its host_up lost its kvm label), and a
    refused login no longer said its `ansible_password` is not used."""
    require_dask()
    c = start_cluster(tmp_path, {"x": []})
    s = start_sim(tmp_path, ["--hosts", "4", "--base-address", loopback_base(),
                             "--faults", "unreachable=1,auth=1"])  # fmt: skip
    inv = _declare(s.inventory, tmp_path / "inv.yaml", fleetmon_hypervisor="kvm",
                   ansible_password="hunter2-vaulted")  # fmt: skip
    try:
        local = _run(inv)
        dist = _run(inv, "--cluster", c.address)
    finally:
        stop_sim(s)
        c.close()
    assert Counter(h["status"] for h in dist["hosts"]) == {
        "ok": 2, "unreachable": 1, "auth_failed": 1,
    }  # fmt: skip
    for d, lo in zip(dist["hosts"], local["hosts"], strict=True):
        assert (d["name"], d["status"], d["hypervisor"]) == (
            lo["name"], lo["status"], lo["hypervisor"],
        )  # fmt: skip
        if d["status"] != "ok":
            assert d["hypervisor"] == "kvm"
            assert d["error"] == f"from worker {d['collected_by']}: {lo['error']}"
    (denied,) = [h["error"] for h in dist["hosts"] if h["status"] == "auth_failed"]
    assert "(ansible_password is not used)" in denied, denied
    for log in ("scheduler.log", "worker-x.log"):
        assert "hunter2" not in (tmp_path / log).read_text()


class _Scheduler:
    def __init__(self, workers: dict[str, Any]) -> None:
        self.workers = workers

    async def identity(self, n_workers: int) -> dict[str, Any]:
        return {"workers": self.workers}


class _Client:
    """What ShardRunner asks of a Dask client to submit: the scheduler's workers, and the
    submissions it was given."""

    def __init__(self, workers: dict[str, Any]) -> None:
        self.scheduler = _Scheduler(workers)
        self.submitted: list[dict[str, Any]] = []

    def sync(self, question: Any, callback_timeout: float, **kwargs: Any) -> Any:
        import asyncio

        return asyncio.run(question(**kwargs))

    def submit(self, *args: Any, **kwargs: Any) -> object:
        self.submitted.append(kwargs)
        return object()


def test_a_retry_avoids_the_worker_it_failed_on_by_name_when_restarted_elsewhere() -> None:
    """The nanny starts a killed worker again at another address: avoiding the address
    alone sent the retry back to the same machine, the same missing route or key."""
    old, new, other = "tcp://127.0.0.1:1", "tcp://127.0.0.1:2", "tcp://127.0.0.1:3"
    client = _Client({old: {"name": "x"}, other: {"name": "y"}})
    runner = ShardRunner(client)
    opts = CollectOptions()
    hosts = [HostSpec(name="h1", address="192.0.2.1")]
    (shard,) = make_shards(hosts, opts, lambda h: ProbeOptions(), lambda h: opts, lambda h: None)
    assert runner._submit(shard, 1, (), None) is not None
    client.scheduler.workers = {new: {"name": "x"}, other: {"name": "y"}}  # x restarted
    retry = runner._submit(shard, 2, ("attempt 1: its worker died",), old)
    assert retry is not None
    assert retry.only == (other,)
    assert [s["workers"] for s in client.submitted] == [None, [other]]
    # With no other worker, the restarted one gets it (rather than none).
    client.scheduler.workers = {new: {"name": "x"}}
    retry = runner._submit(shard, 2, ("attempt 1: its worker died",), old)
    assert retry is not None
    assert client.submitted[-1]["workers"] is None
    # Workers without a name of their own are told apart by their addresses.
    client.scheduler.workers = {new: {"name": None}, other: {"name": None}}
    retry = runner._submit(shard, 2, ("attempt 1: its worker died",), new)
    assert client.submitted[-1]["workers"] == [other]
