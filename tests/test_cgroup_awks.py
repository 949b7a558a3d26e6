"""The probe's cgroup reader (sources/cgroups.py awk_read) under each awk a host may have:
mawk (Debian, Ubuntu), gawk (RHEL, Fedora, Arch, SUSE), busybox (Alpine, embedded); the
same lines from each."""

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

AWKS = {"mawk": ["mawk"], "gawk": ["gawk"], "busybox": ["busybox", "awk"]}


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


#: Files as the kernel prints them (6.x unless said) and some as it does not: the awk takes a
#: file whole and finds its keys by index() in the kernel's order (sources/cgroups.py
#: _KEYS_IN_ORDER), so that keys before, between and after them (cpu.stat's
#: core_sched.force_idle_usec and bursts, memory.stat's kernel, memory.events'
#: oom_group_kill, io.stat's cost.vrate) change nothing.
KERNEL_V2 = {
    "cpu.stat": "usage_usec 5\nuser_usec 3\nsystem_usec 2\ncore_sched.force_idle_usec 0\n"
    "nr_periods 7\nnr_throttled 1\nthrottled_usec 9\nnr_bursts 0\nburst_usec 0\n",
    "memory.stat": "anon 1\nfile 2\nkernel 3\nkernel_stack 4\nsock 0\nfile_mapped 7\n"
    "inactive_anon 8\nactive_anon 9\ninactive_file 10\nactive_file 11\nunevictable 0\n",
    "memory.events": "low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\noom_group_kill 0\n",
    "io.stat": "259:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0\n"
    "8:0 rbytes=10 wbytes=20 rios=3 wios=4 dbytes=0 dios=0 cost.vrate=100.00\n",
    "memory.current": "4096\n",
    "memory.max": "max\n",
    "pids.current": "3\n",
    "cpu.pressure": "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",  # 4.20-5.12: no full
    "memory.pressure": "some avg10=0.06 avg60=0.01 avg300=0.00 total=5\n"
    "full avg10=100.00 avg60=0.00 avg300=0.00 total=5\n",
    "io.pressure": "some avg10=12.50 avg60=0.00 avg300=0.00 total=5\n"
    "full avg10=1.5 avg60=0.00 avg300=0.00 total=5\n",  # not the kernel's: left for the parser
}
#: cgroup v1 on a hybrid host: `unified` has v2's cpu.stat (no cpu controller there) and PSI.
KERNEL_V1 = {
    "cpu": {"cpu.stat": "nr_periods 4\nnr_throttled 2\nthrottled_time 600\nnr_bursts 0\n"},
    "cpuacct": {"cpuacct.usage": "123456\n"},
    "blkio": {
        "blkio.throttle.io_service_bytes": "8:16 Read 7\n8:16 Write 9\n8:16 Sync 16\n"
        "8:16 Async 0\n8:16 Discard 0\n8:16 Total 16\n8:0 Read 70\n8:0 Write 90\n"
        "8:0 Total 160\nTotal 176\n"
    },
    "memory": {
        "memory.stat": "cache 5\nrss 6\nshmem 0\npgpgin 1\ninactive_anon 0\nactive_anon 6\n"
        "inactive_file 4\nactive_file 1\nhierarchical_memory_limit 9\ntotal_cache 50\n"
        "total_rss 60\ntotal_inactive_file 40\ntotal_active_file 10\n",
        "memory.usage_in_bytes": "8192\n",
        "memory.limit_in_bytes": "9223372036854771712\n",
        "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
    },
    "pids": {"pids.current": "5\n"},
    "unified": {
        "cpu.stat": "usage_usec 11\nuser_usec 6\nsystem_usec 5\nnice_usec 0\n",
        "cpu.pressure": "some avg10=0.50 avg60=0.00 avg300=0.00 total=9\n"
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
        "memory.pressure": "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
        "io.pressure": "some avg10=3.04 avg60=0.00 avg300=0.00 total=9\n"
        "full avg10=0.10 avg60=0.00 avg300=0.00 total=9\n",
    },
}
_D = f"docker/{HEX}"
_K8S = "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/crio-1.scope"
#: What the reader printed of them before it read files whole (the same bytes).
KERNEL_LINES = {
    ("v2", "cgroup"): f"#cgroup keyed v2\n#k u np nt tu r w\nsystem.slice/docker-{HEX}.scope"
    f"\t5 7 1 9 1+10 2+20\n#k u np nt tu\n{_K8S}\t5 7 1 9\n",
    ("v2", "cgroup_mem"): "#cgroup keyed v2\n#k m l a f i p o pcs pms pmf pis pif\n"
    f"system.slice/docker-{HEX}.scope\t4096 max 1 2 10 3 1 0 6 10000 1250 1.5\n"
    f"#k m a f i p o pcs pms pmf pis pif\n{_K8S}\t4096 1 2 10 3 1 0 6 10000 1250 1.5\n",
    ("v1", "cgroup"): f"#cgroup keyed v1\n#k np nt tn\n{_D}\t4 2 600\n#k u\n{_D}\t11\n"
    f"#k ca\n{_D}\t123456\n#k r w\n{_D}\t7+70 9+90\n",
    ("v1", "cgroup_mem"): f"#cgroup keyed v1\n#k i f a i m l o\n{_D}\t4 50 60 40 8192"
    f" 9223372036854771712 2\n#k p\n{_D}\t5\n#k pcs pcf pms pmf pis pif\n{_D}\t50 0 0 0 304 10\n",
}


def kernel_trees(root: Path) -> Path:
    """KERNEL_V2 as a Docker container's cgroup, and as a CRI-O one's without final
    newlines, memory.max or a device in io.stat; KERNEL_V1 as a Docker container's."""
    odd = {k: v.rstrip("\n") for k, v in KERNEL_V2.items() if k != "memory.max"}
    for cgroup, files in ((f"system.slice/docker-{HEX}.scope", KERNEL_V2), (_K8S, odd)):
        (root / "v2" / cgroup).mkdir(parents=True)
        for name, text in (files | {"io.stat": ""} if files is odd else files).items():
            (root / "v2" / cgroup / name).write_text(text)
    (root / "v2" / "cgroup.controllers").write_text("cpu io memory pids\n")
    for mount, v1_files in KERNEL_V1.items():
        (root / "v1" / mount / _D).mkdir(parents=True)
        for name, text in v1_files.items():
            (root / "v1" / mount / _D / name).write_text(text)
    return root


@pytest.mark.parametrize("name", sorted(AWKS))
def test_every_awk_reads_the_kernels_files_as_before(tmp_path: Path, name: str) -> None:
    roots = kernel_trees(tmp_path / "trees")
    mine = awk_dir(tmp_path, name)
    cmds = dict(SAMPLE_SECTIONS + ONCE_SECTIONS)
    for (version, section), expected in KERNEL_LINES.items():
        assert run(cmds[section], roots / version, mine) == expected, (version, section)


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
    if name != "mawk":  # getline's -1: the file passed over, the rest of its line kept
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
