"""`fleetmon run --cluster`: shards on a real Dask cluster (the `dask scheduler` and `dask
worker` CLIs on loopback), against the simulator playing two sites."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from clirun import fleetmon
from daskcli import (
    Cluster,
    Sim,
    loopback_base,
    require_dask,
    running_on,
    start_cluster,
    start_sim,
    stop,
    stop_sim,
    worker_process,
)
from tlsfiles import self_signed

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require_dask()
    c = start_cluster(
        tmp_path_factory.mktemp("dask"), {"a": ["--resources", "site-a=1"], "any": []}
    )
    yield c
    c.close()


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    s = start_sim(
        tmp_path_factory.mktemp("sim"),
        ["--hosts", "24", "--sites", "a,b", "--base-address", loopback_base(), "--kind", "mixed"],
    )
    yield s
    stop_sim(s)


def _unpin(inventory: Path, site: str, out: Path) -> Path:
    """The inventory with `site`'s hosts left without a fleetmon_site (any worker's)."""
    doc = yaml.safe_load(inventory.read_text())
    for group in doc["all"]["children"].values():
        for entry in (group.get("hosts") or {}).values():
            if isinstance(entry, dict) and entry.get("fleetmon_site") == site:
                del entry["fleetmon_site"]
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


def _run(*args: object) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    res = fleetmon("run", *args, "-q", "--format", "json", "--history", "none", timeout=300)
    assert res.returncode in (0, 1, 2, 3), res.stderr
    return res, json.loads(res.stdout)


def _worker_shards(report: dict[str, Any]) -> dict[str, list[str]]:
    """Worker address -> the shards the run's notes say it ran."""
    out = {}
    for note in report["notes"]:
        if note.startswith("worker "):
            worker, _, rest = note.removeprefix("worker ").partition(": shards ")
            out[worker] = rest.rsplit(" (", 1)[0].split(", ")
    return out


def _site_of(inventory: Path) -> dict[str, str | None]:
    doc = yaml.safe_load(inventory.read_text())
    return {
        name: (entry or {}).get("fleetmon_site")
        for group in doc["all"]["children"].values()
        for name, entry in (group.get("hosts") or {}).items()
        if isinstance(entry, dict)
    }


def test_shards_land_on_their_site_s_worker_and_match_a_local_run(
    cluster: Cluster, sim: Sim, tmp_path: Path
) -> None:
    inv = _unpin(sim.inventory, "b", tmp_path / "inv.yaml")
    sites = _site_of(inv)
    _, local = _run(inv)
    _, dist = _run(inv, "--cluster", cluster.address, "--shard-size", "5")
    placed = _worker_shards(dist)
    a_addr = cluster.worker_address("a")
    # Site a: 12 hosts in 3 shards of 4, every one on the worker offering site-a.
    assert sorted(k for keys in placed.values() for k in keys if k.startswith("site-a")) == [
        "site-a/1of3", "site-a/2of3", "site-a/3of3",
    ]  # fmt: skip
    assert [k for w, keys in placed.items() if w != a_addr for k in keys if "site-a" in k] == []
    assert sum(len(keys) for keys in placed.values()) == 6
    # The same hosts in the same order, with the same statuses and the same fixed facts;
    # the rates come from two probes of the simulator a few seconds apart.
    assert [h["name"] for h in dist["hosts"]] == [h["name"] for h in local["hosts"]]
    assert len(dist["hosts"]) == len(sites) == 24
    for d, lo in zip(dist["hosts"], local["hosts"], strict=True):
        same = ("status", "address", "groups", "hypervisor", "error")
        assert {k: d[k] for k in same} == {k: lo[k] for k in same}
        assert d["metrics"].keys() == lo["metrics"].keys()
        for key in ("cpu.count", "mem.total_bytes"):
            assert d["metrics"][key] == lo["metrics"][key]
        for scope in ("disks", "nics", "filesystems", "vms"):
            assert [r["name"] for r in d[scope]] == [r["name"] for r in lo[scope]]
        busy_d, busy_l = d["metrics"]["cpu.busy_pct"], lo["metrics"]["cpu.busy_pct"]
        assert abs(busy_d - busy_l) < 5, (d["name"], busy_d, busy_l)
    assert dist["summary"]["collected"] == local["summary"]["collected"] == 24
    assert dist["fleet"]["metrics"].keys() == local["fleet"]["metrics"].keys()


def test_a_site_without_a_worker_is_accounted_for_as_shard_failed(
    cluster: Cluster, sim: Sim
) -> None:
    res, report = _run(sim.inventory, "--cluster", cluster.address)
    sites = _site_of(sim.inventory)
    statuses = {h["name"]: (h["status"], h["error"]) for h in report["hosts"]}
    assert sorted(statuses) == sorted(sites)
    for name, site in sites.items():
        status, error = statuses[name]
        if site == "a":
            assert status == "ok"
        else:
            assert status == "shard_failed"
            assert error == (
                "shard site-b/1of1: no worker offers the resource site-b (start one with"
                " `dask worker SCHEDULER --resources site-b=1`)"
            )
    # Hosts not collected make the run UNKNOWN (3) unless something is CRITICAL (2).
    assert res.returncode == (2 if report["summary"]["critical"] else 3)
    assert report["summary"]["failed"] == 12


def _processes_marked(mark: str) -> list[int]:
    """The processes whose environment holds FLEETMON_TEST_MARK=mark."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:  # gone meanwhile, or not ours to read
                continue
            if f"FLEETMON_TEST_MARK={mark}".encode() in environ.split(b"\0"):
                found.append(int(entry.name))
    return found


def test_local_workers_run_every_site_and_no_process_outlives_the_run(sim: Sim) -> None:
    require_dask()
    mark = uuid.uuid4().hex
    res = fleetmon(
        "run", sim.inventory, "--cluster", "local:2", "-q", "--format", "json",
        "--history", "none", timeout=300, env={"FLEETMON_TEST_MARK": mark},
    )  # fmt: skip
    assert res.returncode in (0, 1, 2, 3), res.stderr
    report = json.loads(res.stdout)
    assert Counter(h["status"] for h in report["hosts"]) == {"ok": 24}
    # Each site's 12 hosts in 2 shards (one per worker), though the shard size is 500.
    placed = _worker_shards(report)
    assert sorted(k for keys in placed.values() for k in keys) == [
        "site-a/1of2", "site-a/2of2", "site-b/1of2", "site-b/2of2",
    ]  # fmt: skip
    assert len(placed) == 2
    # The workers, the server they were forked from and multiprocessing's resource tracker
    # (which exits once its client has) are gone within a few seconds.
    deadline = time.monotonic() + 10
    while (left := _processes_marked(mark)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left == []


def test_a_shard_past_its_deadline_is_retried_then_shard_timeout(tmp_path: Path) -> None:
    require_dask()
    c = start_cluster(tmp_path, {"x": [], "y": []})
    s = start_sim(
        tmp_path, ["--hosts", "8", "--base-address", loopback_base(), "--faults", "timeout=1"]
    )
    try:
        started = time.monotonic()
        _, report = _run(
            s.inventory, "--cluster", c.address, "--shard-size", "4",
            "--shard-timeout", "8", "--timeout", "60",
        )  # fmt: skip
        elapsed = time.monotonic() - started
    finally:
        stop_sim(s)
        c.close()
    by_status = Counter(h["status"] for h in report["hosts"])
    assert by_status == {"ok": 4, "shard_timeout": 4}
    late = [h for h in report["hosts"] if h["status"] == "shard_timeout"]
    assert len({h["error"] for h in late}) == 1
    error = late[0]["error"]
    assert error.startswith("shard any/")
    assert error.count("ran past its deadline of 8 s on worker tcp://127.0.0.1:") == 2
    assert "attempt 1: " in error
    assert "attempt 2: " in error
    assert any("retried (ran past its deadline of 8 s" in n for n in report["notes"])
    assert elapsed >= 16  # two attempts of 8 s, not the per-host 60


def test_a_worker_killed_mid_run_has_its_shards_retried(tmp_path: Path) -> None:
    require_dask()
    c = start_cluster(tmp_path, {"a": ["--resources", "site-a=1"], "b": []})
    s = start_sim(tmp_path, ["--hosts", "20", "--sites", "a,b", "--base-address", loopback_base()])
    inv = _unpin(s.inventory, "b", tmp_path / "inv.yaml")
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fleetmon", "run", str(inv), "--cluster", c.address,
             "--shard-size", "5", "--interval", "3", "-q", "--format", "json", "--history", "none"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        b_addr = c.worker_address("b")
        running_on(c.address, b_addr)
        stop(c.workers["b"], signal.SIGKILL)
        out, err = proc.communicate(timeout=240)
    finally:
        stop_sim(s)
        c.close()
    report = json.loads(out)
    assert sorted(h["name"] for h in report["hosts"]) == sorted(_site_of(inv))
    assert Counter(h["status"] for h in report["hosts"]) == {"ok": 20}, err
    retried = [n for n in report["notes"] if "retried" in n]
    assert retried, report["notes"]
    assert all(f"its worker {b_addr}" in n for n in retried), report["notes"]
    assert list(_worker_shards(report)) == [c.worker_address("a")]


def _tls_env(crt: Path, key: Path) -> dict[str, str]:
    """Dask's client TLS settings as the README names them (environment variables)."""
    return {
        "DASK_DISTRIBUTED__COMM__TLS__CA_FILE": str(crt),
        "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT": str(crt),
        "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY": str(key),
    }


def test_a_tls_cluster_runs_with_dask_s_tls_settings_and_says_when_they_are_missing(
    sim: Sim, tmp_path: Path
) -> None:
    require_dask()
    crt, key = self_signed(tmp_path)
    stranger = self_signed(tmp_path, "stranger")  # a certificate the cluster does not trust
    c = start_cluster(
        tmp_path, {"any": []}, tls=["--tls-ca-file", str(crt), "--tls-cert", str(crt),
                                    "--tls-key", str(key)],
    )  # fmt: skip
    inv = _unpin(_unpin(sim.inventory, "a", tmp_path / "a.yaml"), "b", tmp_path / "inv.yaml")
    args = ("run", inv, "--cluster", c.address, "-q", "--format", "json", "--history", "none")
    try:
        assert c.address.startswith("tls://127.0.0.1:")
        missing = fleetmon(*args, env={k: "" for k in _tls_env(crt, key)})
        good = fleetmon(*args, timeout=300, env=_tls_env(crt, key))
        refused = fleetmon(*args, "--connect-timeout", "3", env=_tls_env(*stranger))
        unreadable = fleetmon(*args, env=_tls_env(tmp_path / "nowhere.crt", key))
    finally:
        c.close()
    assert missing.returncode == 4
    assert missing.stdout == ""
    assert missing.stderr == (
        f"fleetmon: error: --cluster {c.address}: tls:// needs Dask's TLS settings"
        " (distributed.comm.tls: ca-file, client.cert, client.key; or"
        " DASK_DISTRIBUTED__COMM__TLS__CA_FILE, DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT"
        " and DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY)\n"
    )
    assert unreadable.returncode == 4
    assert unreadable.stderr == (
        f"fleetmon: error: --cluster {c.address}: Dask's TLS settings (ca-file"
        f" {tmp_path}/nowhere.crt, client.cert {tmp_path}/nowhere.crt, client.key {key}):"
        " [Errno 2] No such file or directory\n"
    )
    report = json.loads(good.stdout)
    assert Counter(h["status"] for h in report["hosts"]) == {"ok": 24}, good.stderr
    assert list(_worker_shards(report)) == [c.worker_address("any")]
    assert c.worker_address("any").startswith("tls://")
    # A client whose certificate the cluster does not trust (nor it the cluster's): every
    # host is accounted for with the reason, and no traceback.
    assert refused.returncode == 3, refused.stderr
    assert "Traceback" not in refused.stderr
    failed = json.loads(refused.stdout)["hosts"]
    assert len(failed) == 24
    assert {h["status"] for h in failed} == {"shard_failed"}
    assert all(
        h["error"].startswith(f"cannot reach the Dask scheduler at {c.address}: ") for h in failed
    ), failed[0]["error"]


def test_a_port_that_is_no_dask_scheduler_fails_every_host_in_a_bounded_time(
    sim: Sim, cluster: Cluster, tmp_path: Path
) -> None:
    """A listener that never speaks (a mistyped port, another service): Dask's timeout
    bounds its connect, not its handshake, and the run waited for ever. And tls:// to a
    plain scheduler was an internal error (exit 70, Dask's ValueError) with no report."""
    silent = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(silent.accept()[0]), daemon=True).start()
    port = silent.getsockname()[1]
    crt, key = self_signed(tmp_path)
    try:
        started = time.monotonic()
        res = fleetmon("run", sim.inventory, "--cluster", f"tcp://127.0.0.1:{port}",
                       "--connect-timeout", "2", "-q", "--format", "json", "--history", "none",
                       timeout=300)  # fmt: skip
        elapsed = time.monotonic() - started
        tls = fleetmon("run", sim.inventory, "--cluster", cluster.address.replace("tcp", "tls"),
                       "--connect-timeout", "5", "-q", "--format", "json", "--history", "none",
                       timeout=300, env=_tls_env(crt, key))  # fmt: skip
    finally:
        silent.close()
        for conn in accepted:
            conn.close()
    assert res.returncode == 3, res.stderr
    assert "Traceback" not in res.stderr
    assert {h["status"] for h in json.loads(res.stdout)["hosts"]} == {"shard_failed"}
    assert json.loads(res.stdout)["hosts"][0]["error"] == (
        f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}: no Dask handshake"
        " within 9 s (is a Dask scheduler listening there?)"
    )
    assert elapsed < 120  # 9 s and the run's own; the bound only guards a hang
    assert tls.returncode == 3, tls.stderr
    assert "Traceback" not in tls.stderr
    (error,) = {h["error"] for h in json.loads(tls.stdout)["hosts"]}
    tls_address = cluster.address.replace("tcp://", "tls://")
    assert error.startswith(f"cannot reach the Dask scheduler at {tls_address}: "), error


def test_a_scheduler_lost_mid_run_fails_the_hosts_still_out_and_the_outputs_are_written(
    tmp_path: Path,
) -> None:
    """Before, the scheduler killed mid-run was an internal error (exit 70) with Dask's
    traceback on stderr and no report written."""
    require_dask()
    c = start_cluster(tmp_path, {"x": [], "y": []})
    s = start_sim(tmp_path, ["--hosts", "8", "--base-address", loopback_base()])
    html = tmp_path / "fleet.html"
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fleetmon", "run", str(s.inventory), "--cluster", c.address,
             "--shard-size", "2", "--interval", "8", "-q", "--format", "json", "--history", "none",
             "--html", str(html)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        running_on(c.address, c.worker_address("x"))
        stop(c.scheduler, signal.SIGKILL)
        out, err = proc.communicate(timeout=240)
    finally:
        stop_sim(s)
        c.close()
    assert proc.returncode == 3, err
    assert "Traceback" not in err
    assert err == ""
    report = json.loads(out)
    assert len(report["hosts"]) == 8
    # Those of the two shards waiting behind the first two are surely still out (each
    # worker runs one at a time, each shard lasts 8 s at least).
    lost = [h for h in report["hosts"] if h["status"] != "ok"]
    assert len(lost) >= 4
    assert {h["status"] for h in lost} == {"shard_failed"}
    assert {h["error"] for h in lost} == {"lost the connection to the Dask scheduler"}
    assert f"--cluster {c.address}: lost the connection to the Dask scheduler" in report["notes"]
    assert html.read_text().startswith("<!DOCTYPE html>")


def test_a_worker_that_stops_answering_has_its_shards_taken_back(tmp_path: Path) -> None:
    """A worker stopped (SIGSTOP, a hung host) holds the shards the scheduler gave it
    without starting them: no start, so no deadline ran, and the run waited until the
    worker came back (the scheduler forgets a silent worker only after 5 minutes)."""
    require_dask()
    c = start_cluster(tmp_path, {"x": [], "y": []})
    s = start_sim(tmp_path, ["--hosts", "8", "--base-address", loopback_base()])
    worker = worker_process(c.workers["x"])
    x_addr = c.worker_address("x")
    os.kill(worker, signal.SIGSTOP)
    try:
        _, report = _run(s.inventory, "--cluster", c.address, "--shard-size", "2",
                         "--shard-timeout", "600")  # fmt: skip
    finally:
        os.kill(worker, signal.SIGCONT)
        stop_sim(s)
        c.close()
    assert Counter(h["status"] for h in report["hosts"]) == {"ok": 8}
    retried = [n for n in report["notes"] if "retried" in n]
    assert retried, report["notes"]
    assert all(f"its worker {x_addr} stopped answering (no heartbeat for " in n for n in retried)
    assert list(_worker_shards(report)) == [c.worker_address("y")]
