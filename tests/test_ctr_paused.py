"""A paused container (`podman pause`, `docker pause`: the cgroup freezer) is ctr.state
paused: cgroup v2 `cgroup.events` frozen, frozen by this machine's kernel on a cgroup2
mount (every controller is bound to v1 here, but the v2 freezer is no controller: the
hybrid `unified` mount has it); v1 `freezer.state`'s words through the probe's awk. Real
Podman on v1: tests/test_podman_live.py."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from probetext import NONCE
from rootonly import require_root
from test_containers import output, plant, read_tree

from fleetmon.errors import ProbeParseError
from fleetmon.sources.cgrouplines import parse_cgroups
from fleetmon.sources.containers import compute_containers
from fleetmon.sources.sections import split_output

HEX = "0123456789abcdef" * 4


def _cgroup2_root() -> Path:
    """This machine's cgroup2 mount: /sys/fs/cgroup on a v2 host, `unified` on a hybrid one."""
    for root in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified")):
        if (root / "cgroup.controllers").exists():
            return root
    pytest.fail("no cgroup2 mount at /sys/fs/cgroup or /sys/fs/cgroup/unified")


def _wait_events(cg: Path, frozen: str) -> str:
    """cgroup.events once it says `frozen <frozen>` (the kernel freezes asynchronously)."""
    deadline = time.monotonic() + 5
    while True:
        events = (cg / "cgroup.events").read_text()
        if f"\nfrozen {frozen}\n" in events or time.monotonic() > deadline:
            return events
        time.sleep(0.01)


def _state(root: Path, name: str) -> tuple[object, object]:
    counters = read_tree(root, "cgroup")
    text = output((counters, read_tree(root, "cgroup")), read_tree(root, "cgroup_mem"))
    rows = {r.name: r for r in compute_containers(split_output(text, NONCE), 4, 1.0).rows}
    m = rows[name].metrics
    return m.get("ctr.state"), m.get("ctr.cpu_pct")


def test_a_v2_cgroup_frozen_by_the_kernel_is_paused_and_running_once_thawed() -> None:
    require_root("makes a cgroup and freezes it")
    root = _cgroup2_root()
    name = f"fmtest-paused-{os.getpid()}"
    cg = root / f"lxc.payload.{name}"  # a glob of the probe's (LXC), which nothing else uses
    cg.mkdir()
    proc = subprocess.Popen(["sleep", "600"])
    try:
        (cg / "cgroup.procs").write_text(f"{proc.pid}\n")
        (cg / "cgroup.freeze").write_text("1\n")
        assert _wait_events(cg, "1") == "populated 1\nfrozen 1\n"  # the kernel's own lines
        state, cpu = _state(root, name)
        assert state == "paused"
        assert cpu == 0.0
        (cg / "cgroup.freeze").write_text("0\n")
        assert _wait_events(cg, "0") == "populated 1\nfrozen 0\n"
        assert _state(root, name)[0] == "running"
    finally:
        proc.kill()
        proc.wait(timeout=10)
        for _ in range(100):  # the cgroup empties once the killed task has gone
            try:
                cg.rmdir()
                break
            except OSError:
                time.sleep(0.02)


@pytest.mark.parametrize(
    ("word", "frozen"), [("FROZEN", 1), ("FREEZING", 1), ("THAWED", 0)]
)  # fmt: skip
def test_v1_freezer_state_words_through_the_probe_s_awk(
    tmp_path: Path, word: str, frozen: int
) -> None:
    """kernel/cgroup/legacy_freezer.c's three words (FREEZING: part of it frozen: not
    running either), written here as the kernel prints them, a word and a newline."""
    v1 = Path(__file__).parent / "data" / "couchbase-platform" / "cgroup" / "test" / "v1"
    for controller in ("cpu", "cpuacct", "memory"):
        plant(tmp_path / controller, f"docker/{HEX}", v1 / "sys" / "fs" / "cgroup" / controller)
    (tmp_path / "freezer" / "docker" / HEX).mkdir(parents=True)
    (tmp_path / "freezer" / "docker" / HEX / "freezer.state").write_text(f"{word}\n")
    gauges = read_tree(tmp_path, "cgroup_mem")
    # read in the memory mount's turn: its line's last value (no glob of the freezer mount)
    assert gauges.startswith(f"#cgroup keyed v1\n#k i f a i m l o fz\ndocker/{HEX}\t")
    assert gauges.endswith(f" {frozen}\n")
    (values,) = parse_cgroups(gauges).values()
    assert values.values["frozen"] == frozen
    counters = read_tree(tmp_path, "cgroup")
    text = output((counters, counters), gauges)
    (row,) = compute_containers(split_output(text, NONCE), 4, 1.0).rows
    assert row.metrics["ctr.state"] == ("paused" if frozen else "running")


def test_a_v1_container_without_a_freezer_mount_is_running(tmp_path: Path) -> None:
    v1 = Path(__file__).parent / "data" / "couchbase-platform" / "cgroup" / "test" / "v1"
    for controller in ("cpu", "cpuacct", "memory"):
        plant(tmp_path / controller, f"docker/{HEX}", v1 / "sys" / "fs" / "cgroup" / controller)
    gauges = read_tree(tmp_path, "cgroup_mem")
    assert "fz" not in gauges
    counters = read_tree(tmp_path, "cgroup")
    text = output((counters, counters), gauges)
    (row,) = compute_containers(split_output(text, NONCE), 4, 1.0).rows
    assert row.metrics["ctr.state"] == "running"


def test_a_freezer_word_the_kernel_never_prints_names_the_file() -> None:
    with pytest.raises(ProbeParseError) as exc:
        parse_cgroups(f"#cgroup keyed v1\n#k fz\ndocker/{HEX}\tMELTED\n", "cgroup_mem")
    assert str(exc.value).startswith(
        "section cgroup_mem: cgroup.events frozen (v1 freezer.state): malformed value"
    )
