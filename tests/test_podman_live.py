"""Live: `fleetmon run` on this machine while real Podman containers run (tests/podman_util.py),
checked against `podman stats --no-stream` read just before and just after the run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import podman_util
import pytest
from clirun import fleetmon

from fleetmon.sources.ctrnames import NAMES_COMMAND, PODMAN_STORES, parse_names

pytestmark = [pytest.mark.slow]

_SI = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}
_DURATION_RE = re.compile(r"([0-9.]+)(h|ms|µs|us|ns|m|s)")
_UNIT_S = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "µs": 1e-6, "us": 1e-6, "ns": 1e-9}


def si_bytes(text: str) -> float:
    """podman's "30.77MB" (SI units, as docker/go-units HumanSize prints)."""
    m = re.fullmatch(r"([0-9.]+)([kMGT]?B)", text.strip())
    assert m is not None, text
    return float(m.group(1)) * _SI[m.group(2)]


def go_duration_s(text: str) -> float:
    """A Go time.Duration string ("1m24.2s", "250.07ms") in seconds."""
    return sum(float(n) * _UNIT_S[u] for n, u in _DURATION_RE.findall(text))


def podman_stats() -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in json.loads(podman_util.podman("stats", "--no-stream",
                                                                "--format", "json"))}  # fmt: skip


def test_fleetmon_sees_the_podman_containers_as_podman_stats_does(tmp_path: Path) -> None:
    podman_util.require_podman()
    prefix = f"fmtest-{os.getpid()}"
    inv = tmp_path / "inv.yaml"
    inv.write_text("all:\n  hosts:\n    here:\n      ansible_connection: local\n", "utf-8")
    with podman_util.containers(prefix):
        time.sleep(2)  # the memory holder fills its 30 MB
        before = podman_stats()
        proc = fleetmon("run", inv, "--format", "json", "--interval", "2", "--no-lock",
                        "--history", "none", "-q")  # fmt: skip
        after = podman_stats()
    # 0-3 by the findings of this machine (no libvirtd here: unknowns): not the point.
    assert proc.returncode in (0, 1, 2, 3), proc.stderr
    (host,) = json.loads(proc.stdout)["hosts"]
    assert host["status"] == "ok", host["error"]
    rows = {c["name"]: c for c in host["containers"]}
    cpu_name, mem_name = f"{prefix}-cpu", f"{prefix}-mem"
    assert {cpu_name, mem_name} <= set(rows)
    cpu, mem = rows[cpu_name]["metrics"], rows[mem_name]["metrics"]
    assert rows[cpu_name]["labels"]["runtime"] == "podman"
    assert rows[cpu_name]["labels"]["id"].startswith(before[cpu_name]["id"])

    # CPU: the probe's two samples lie between podman's two readings, so the CPU time it
    # saw cannot exceed what podman's cumulative cpu_time grew by; the quota caps it at 50 %.
    dt = host["interval_s"]
    used_s = cpu["ctr.cpu_pct"] / 100 * dt
    outer_s = go_duration_s(after[cpu_name]["cpu_time"]) - go_duration_s(
        before[cpu_name]["cpu_time"]
    )
    assert 0 < used_s <= outer_s * 1.0001, (used_s, outer_s)
    # --cpus 0.5: a busy loop gets at most its quota, then waits out the period (throttled);
    # on a machine busy with other work it may get less and never reach the quota.
    assert 0 < cpu["ctr.cpu_pct"] <= 50 * 1.05
    throttled = cpu["ctr.cpu_throttled_pct"]
    assert 0 <= throttled <= 100
    assert cpu["ctr.cpu_host_pct"] == pytest.approx(
        cpu["ctr.cpu_pct"] / host["metrics"]["cpu.count"]
    )

    # Memory: podman reads the same cgroup (v1: usage_in_bytes, 2 decimals of MB).
    for stats in (before, after):
        used, _, limit = stats[mem_name]["mem_usage"].partition(" / ")
        assert mem["ctr.mem_bytes"] == pytest.approx(si_bytes(used), rel=0.05)
        assert mem["ctr.mem_limit_bytes"] == pytest.approx(si_bytes(limit), rel=0.001)
    assert mem["ctr.mem_limit_bytes"] == 64 << 20
    assert 40 < mem["ctr.mem_limit_pct"] < 55  # 30 MB of 64 MiB, plus busybox
    assert mem["ctr.pids"] == int(after[mem_name]["pids"])
    assert mem["ctr.oom_kills"] == 0
    assert cpu["ctr.mem_limit_bytes"] is None  # no --memory: no limit

    # The shipped rules judged them (the JSON lists findings that are not OK).
    found = {(f["rule"], f["subject"]): f for f in host["findings"]}
    if throttled > 25:
        finding = found[("ctr-cpu-throttled", cpu_name)]
        assert finding["severity"] == ("critical" if throttled > 75 else "warning")
        assert finding["message"].startswith(f"container {cpu_name} on here was throttled in ")
    else:
        assert ("ctr-cpu-throttled", cpu_name) not in found
    assert not [k for k in found if k[0].startswith("ctr-") and k[1] == mem_name]


def test_a_pod_s_containers_and_its_infra_container_are_rows_with_the_pod(
    tmp_path: Path,
) -> None:
    """Podman with cgroupfs puts a pod's containers below the pod's own cgroup,
    libpod_parent/<pod>/libpod-<id>: each is a row, named, with the pod's id, its memory
    and pids as podman stats reads them."""
    podman_util.require_podman()
    prefix = f"fmpod-{os.getpid()}"
    inv = tmp_path / "inv.yaml"
    inv.write_text("all:\n  hosts:\n    here:\n      ansible_connection: local\n", "utf-8")
    with podman_util.pod(prefix) as ids:
        time.sleep(2)  # the shell fills its 10 MB
        before = podman_stats()
        proc = fleetmon("run", inv, "--format", "json", "--interval", "1", "--no-lock",
                        "--history", "none", "-q")  # fmt: skip
        after = podman_stats()
    assert proc.returncode in (0, 1, 2, 3), proc.stderr
    (host,) = json.loads(proc.stdout)["hosts"]
    assert host["status"] == "ok", host["error"]
    rows = {c["labels"]["id"]: c for c in host["containers"]}
    infra, inner = rows[ids["infra"]], rows[ids["in"]]
    assert inner["name"] == f"{prefix}-in"
    assert infra["name"] == f"{ids['pod'][:12]}-infra"  # podman's name for it
    for row in (infra, inner):
        assert row["labels"]["runtime"] == "podman"
        assert row["labels"]["pod"] == ids["pod"]
    for stats in (before, after):
        used = si_bytes(stats[inner["name"]]["mem_usage"].partition(" / ")[0])
        assert inner["metrics"]["ctr.mem_bytes"] == pytest.approx(used, rel=0.05)
    assert inner["metrics"]["ctr.mem_bytes"] > 10e6
    assert infra["metrics"]["ctr.pids"] == int(after[infra["name"]]["pids"]) == 1
    assert inner["metrics"]["ctr.pids"] == int(after[inner["name"]]["pids"])
    assert 0 <= inner["metrics"]["ctr.cpu_pct"] < 50


def test_rootless_and_vfs_podman_stores_name_their_containers(tmp_path: Path) -> None:
    """A rootless user's store is below its home, and a store's folder is named after its
    driver (vfs-containers, ...): the probe's ctr_names command reads a real containers.json
    (written here by podman) there, and only there (root's store and the kubelet's links
    pointed away)."""
    podman_util.require_podman()
    name = f"fm.rootless_{os.getpid()}"
    cid = podman_util.podman("create", "--name", name, *podman_util.ULIMITS, "--rootfs",
                             str(podman_util.busybox_rootfs()), "true").strip()  # fmt: skip
    try:
        store = Path("/var/lib/containers/storage/overlay-containers/containers.json")
        home = tmp_path / "home"
        users = {"alice": "vfs-containers", "bob": "overlay-containers"}
        for user, folder in users.items():
            mine = home / user / ".local/share/containers/storage" / folder
            mine.mkdir(parents=True)
            (mine / "containers.json").write_bytes(store.read_bytes())
    finally:
        subprocess.run([*podman_util.PODMAN, "rm", "-f", name], capture_output=True,
                       timeout=60, check=False)  # fmt: skip
    assert "/home/" in PODMAN_STORES
    cmd = NAMES_COMMAND.replace("/home/", f"{home}/")
    for real in ("/var/lib/containers/storage/", "/var/log/containers/"):
        cmd = cmd.replace(real, f"{tmp_path}/none{real}")
    proc = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert parse_names(proc.stdout)[cid] == name
    assert proc.stdout.count(f'"{name}"') == len(users)  # both read, no file name before
    assert str(home) not in proc.stdout


def _ctr_row(inv: Path, name: str) -> dict[str, Any]:
    proc = fleetmon("run", inv, "--format", "json", "--interval", "1", "--no-lock",
                    "--history", "none", "-q")  # fmt: skip
    assert proc.returncode in (0, 1, 2, 3), proc.stderr
    (host,) = json.loads(proc.stdout)["hosts"]
    assert host["status"] == "ok", host["error"]
    rows: dict[str, dict[str, Any]] = {c["name"]: c for c in host["containers"]}
    return rows[name]


def test_a_paused_container_is_paused_and_running_again_once_unpaused(tmp_path: Path) -> None:
    """`podman pause` freezes the container's cgroup (v1 freezer.state here): its row says
    paused, as `podman ps` does, its CPU 0; `podman unpause`: running again."""
    podman_util.require_podman()
    name = f"fmtest-{os.getpid()}-paused"
    inv = tmp_path / "inv.yaml"
    inv.write_text("all:\n  hosts:\n    here:\n      ansible_connection: local\n", "utf-8")
    try:
        with podman_util._startable():
            podman_util.podman(
                "run", "-d", "--name", name, *podman_util.ULIMITS, "--rootfs",
                str(podman_util.busybox_rootfs()), "sh", "-c", "while true; do :; done",
            )  # fmt: skip
        podman_util.podman("pause", name)
        assert podman_util.podman("ps", "-a", "--filter", f"name=^{name}$", "--format",
                                  "{{.Status}}").strip() == "Paused"  # fmt: skip
        row = _ctr_row(inv, name)
        assert row["metrics"]["ctr.state"] == "paused"
        assert row["metrics"]["ctr.cpu_pct"] == 0.0  # frozen: not one ns between the samples
        podman_util.podman("unpause", name)
        row = _ctr_row(inv, name)
        assert row["metrics"]["ctr.state"] == "running"
        assert row["metrics"]["ctr.cpu_pct"] > 10  # the busy loop runs again
    finally:
        subprocess.run(
            [*podman_util.PODMAN, "rm", "-f", "-t", "0", name],
            capture_output=True, timeout=60, check=False,
        )  # fmt: skip
