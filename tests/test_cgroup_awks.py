"""The probe's cgroup reader (sources/cgroups.py AWK_READ) under each awk a host may have:
mawk (Debian, Ubuntu), busybox (Alpine, embedded); the same lines from each."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from test_containers import COUCHBASE, HEX, ID_CPU, plant

from fleetmon.sources.cgrouplines import parse_cgroups
from fleetmon.sources.sections import ONCE_SECTIONS, SAMPLE_SECTIONS

AWKS = {"mawk": ["mawk"], "busybox": ["busybox", "awk"]}


def awk_dir(tmp: Path, name: str) -> Path:
    """A folder whose `awk` is that awk (first on PATH for the probe's command)."""
    argv = AWKS[name]
    if shutil.which(argv[0]) is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{argv[0]} is missing: tests/setup/system-deps.sh installs it")
        pytest.skip(f"{argv[0]} not installed")
    folder = tmp / f"awk-{name}"
    folder.mkdir(exist_ok=True)
    script = folder / "awk"
    script.write_text(f'#!/bin/sh\nexec {" ".join(argv)} "$@"\n')
    script.chmod(0o755)
    return folder


def tree(root: Path) -> Path:
    """A v2 tree (a Docker and a Kubernetes container, two io devices, a service) and a v1
    tree (cpu, cpuacct, memory, blkio) under root."""
    v2 = root / "v2"
    v2.mkdir(parents=True)
    (v2 / "cgroup.controllers").write_text("cpu io memory pids\n")
    files = COUCHBASE / "v2" / "sys" / "fs" / "cgroup"
    for cgroup in (f"system.slice/docker-{HEX}.scope", "system.slice/cron.service",
                   f"kubepods.slice/kubepods-pod0f0e0d0c_0000_4000_8000_000000000001.slice/"
                   f"cri-containerd-{ID_CPU}.scope"):  # fmt: skip
        plant(v2, cgroup, files)
    io = v2 / "system.slice" / f"docker-{HEX}.scope" / "io.stat"
    io.write_text(io.read_text() * 2)  # the same device line twice: summed
    v1 = root / "v1"
    for controller in ("cpu", "cpuacct", "memory"):
        plant(
            v1 / controller,
            f"docker/{HEX}",
            COUCHBASE / "v1" / "sys" / "fs" / "cgroup" / controller,
        )
    blkio = v1 / "blkio" / "docker" / HEX
    blkio.mkdir(parents=True)
    (blkio / "blkio.throttle.io_service_bytes").write_text("8:0 Read 7\n8:0 Write 9\nTotal 16\n")
    return root


def run(cmd: str, root: Path, path_first: Path) -> str:
    env = {**os.environ, "PATH": f"{path_first}:{os.environ['PATH']}"}
    proc = subprocess.run(
        ["sh", "-c", 'FM_CG="$1"; eval "$2"', "sh", str(root), cmd],
        capture_output=True, text=True, check=True, timeout=30, env=env,
    )  # fmt: skip
    return proc.stdout


@pytest.mark.parametrize("name", sorted(AWKS))
def test_every_awk_prints_the_same_lines(tmp_path: Path, name: str) -> None:
    roots = tree(tmp_path / "trees")
    mine, ref = awk_dir(tmp_path, name), awk_dir(tmp_path, "mawk")
    cmds = dict(SAMPLE_SECTIONS + ONCE_SECTIONS)
    for version in ("v2", "v1"):
        for section in ("cgroup", "cgroup_mem"):
            text = run(cmds[section], roots / version, mine)
            assert text == run(cmds[section], roots / version, ref)
            assert text.startswith(f"#cgroup keyed {version}\n")
            # PSI's 0.36 as 36, not 036 (busybox's `+ 0` would make it 30: octal)
            assert re.search(r"[ \t]0[0-9]", text) is None
            found = parse_cgroups(text, section)
            assert found  # every container read, none of the service's files
            assert not any("cron" in path for path in found)
    counters = parse_cgroups(run(cmds["cgroup"], roots / "v2", mine))
    docker = counters[f"system.slice/docker-{HEX}.scope"].values
    assert (docker["read_bytes"], docker["write_bytes"]) == (2 * 40824832, 2 * 824999936)
    v1 = parse_cgroups(run(cmds["cgroup"], roots / "v1", mine))[f"docker/{HEX}"].values
    assert (v1["read_bytes"], v1["write_bytes"], v1["cpuacct_ns"]) == (7, 9, 3321492315750)


def _unreadable(path: Path) -> None:
    """`path` opens but cannot be read: a directory in its place (EISDIR at the read, as a
    cgroup removed while read gives ENODEV, or a PSI file where PSI is off EOPNOTSUPP)."""
    path.unlink(missing_ok=True)
    path.mkdir()


@pytest.mark.parametrize("name", sorted(AWKS))
@pytest.mark.parametrize("version", ["v2", "v1"])
def test_a_file_that_cannot_be_read_costs_one_container(
    tmp_path: Path, name: str, version: str
) -> None:
    # mawk ends at a read error: before, every container after it was lost (and, on a host
    # whose PSI is off, every container at every sample). Now each directory is read again
    # by an awk of its own: the others' lines are as on a healthy host.
    cmds = dict(SAMPLE_SECTIONS + ONCE_SECTIONS)
    mine = awk_dir(tmp_path, name)
    roots = [tree(tmp_path / "ok") / version, tree(tmp_path / "bad") / version]
    if version == "v1":  # a second container beside docker/HEX
        for at in roots:
            shutil.copytree(at / "memory" / "docker" / HEX, at / "memory" / "docker" / ("f" * 64))
    healthy = parse_cgroups(run(cmds["cgroup_mem"], roots[0], mine))
    root = roots[1]
    bad = f"system.slice/docker-{HEX}.scope" if version == "v2" else f"docker/{HEX}"
    _unreadable(root / ("" if version == "v2" else "memory") / bad / "memory.stat")
    text = run(cmds["cgroup_mem"], root, mine)
    assert text.startswith(f"#cgroup keyed {version}\n")  # the head first, whatever awk says
    found = parse_cgroups(text, "cgroup_mem")
    others = {k: v for k, v in healthy.items() if k != bad}
    assert others
    assert {k: v for k, v in found.items() if k != bad} == others
    if name == "busybox":  # getline's -1: the file passed over, the rest of its line kept
        assert "mem_anon" not in found[bad].values
        assert found[bad].values["mem_usage"] == healthy[bad].values["mem_usage"]
    else:  # mawk: the container whose file failed has no line (its own awk ended too) ...
        assert bad not in found
        # ... and each other's awk printed its keys' line: a run each, joined by path.
        assert text.count("#k ") == sum(1 for line in text.splitlines() if "\t" in line)


def test_where_psi_is_off_no_cgroup_psi_file_is_read(tmp_path: Path) -> None:
    # PSI off (psi=0; RHEL's kernels by default): /proc/pressure is absent (or unreadable)
    # and every cgroup's *.pressure fails to read. Where this machine has PSI, stood in for
    # by a mount namespace whose /proc/pressure is an empty tmpfs; the PSI files of the
    # tree cannot be read either way.
    psi_here = Path("/proc/pressure/cpu").exists()
    if psi_here and (shutil.which("unshare") is None or os.geteuid() != 0):
        if os.environ.get("CI") == "true":
            pytest.fail("unshare as root is needed (util-linux, CI runs as root)")
        pytest.skip("needs unshare as root")
    cmds = dict(SAMPLE_SECTIONS + ONCE_SECTIONS)
    mine = awk_dir(tmp_path, "mawk")
    root = tree(tmp_path / "trees") / "v2"
    for psi in root.rglob("*.pressure"):
        _unreadable(psi)
    script = tmp_path / "cmd.sh"
    script.write_text(cmds["cgroup_mem"])
    run_it = 'FM_CG="$1" && . "$2"'
    # --propagation unchanged: a chroot's / is no mount point to make private (unshare's
    # default); /proc made private instead, so the tmpfs never shows outside.
    hide = "mount --make-private /proc && mount -t tmpfs none /proc/pressure && "
    argv = (
        ["unshare", "-m", "--propagation", "unchanged", "sh", "-c", hide + run_it]
        if psi_here
        else ["sh", "-c", run_it]
    )
    proc = subprocess.run(
        [*argv, "sh", str(root), str(script)], capture_output=True, text=True, timeout=60,
        env={**os.environ, "PATH": f"{mine}:{os.environ['PATH']}"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert Path("/proc/pressure/cpu").exists() == psi_here  # this namespace's untouched
    assert "read error" not in proc.stdout  # no PSI file opened: one awk, no failure
    found = parse_cgroups(proc.stdout, "cgroup_mem")
    assert len(found) == 2
    assert all(v.values["pids"] == 14 for v in found.values())
    assert not any(k.startswith("psi_") for v in found.values() for k in v.values)
