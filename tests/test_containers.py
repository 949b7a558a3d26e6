"""Containers (scope ctr): the probe's cgroup read on recorded trees, path identification, and
the deltas on a capture of real Podman containers."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from probetext import NONCE, section

from fleetmon.errors import ProbeParseError
from fleetmon.sources import ctrnames
from fleetmon.sources.cgrouplines import parse_cgroup_lines, parse_cgroups
from fleetmon.sources.containers import compute_containers
from fleetmon.sources.ctrnames import DOCKER_CONFIGS, NAMES_COMMAND, name_lookup, parse_names
from fleetmon.sources.ctrpaths import Ident, identify
from fleetmon.sources.sections import ONCE_SECTIONS, SAMPLE_SECTIONS, ProbeOutput, split_output

DATA = Path(__file__).parent / "data"
PODMAN = DATA / "fleetmon-capture" / "cgroup-podman-v1-hybrid"
COUCHBASE = DATA / "couchbase-platform" / "cgroup" / "test"
ID_CPU = "d4d7575bd79ab04f9aa1c8d08f469ebbaf4f9f1f199e2c8e47baa546efa1bc70"
ID_MEM = "68256371ce8d26236510da2c168bf76451984387ae9915e15e7f4e9cedf41205"
HEX = "0123456789abcdef" * 4


def read_tree(root: Path, name: str) -> str:
    """The probe's own command for section `name` run on a cgroup tree at `root`."""
    cmd = dict(SAMPLE_SECTIONS + ONCE_SECTIONS)[name]
    proc = subprocess.run(
        ["sh", "-c", 'FM_CG="$1"; eval "$2"', "sh", str(root), cmd],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    return proc.stdout


def plant(root: Path, cgroup: str, files: Path) -> None:
    """The recorded files of `files` as the cgroup `cgroup` under `root`."""
    dest = root / cgroup
    dest.mkdir(parents=True, exist_ok=True)
    for f in files.iterdir():
        if f.is_file():
            shutil.copyfile(f, dest / f.name)


def output(samples: tuple[str, str], mem: str, names: str = "", uptimes: str = "") -> str:
    up = uptimes.split("|") if uptimes else ["100.00 1.00\n", "101.00 2.00\n"]
    return "".join(
        [
            section(1, "uptime", up[0]),
            section(1, "cgroup", samples[0]),
            section(2, "uptime", up[1]),
            section(2, "cgroup", samples[1]),
            section(0, "cgroup_mem", mem),
            section(0, "ctr_names", names),
        ]
    )


# --- cgroup v2: the recorded tree of a Docker container (Ubuntu 22.04), in two layouts --


@pytest.mark.parametrize(
    ("cgroup", "ident"),
    [
        (f"system.slice/docker-{HEX}.scope", Ident("docker", HEX)),
        (
            "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
            f"0f0e0d0c_0000_4000_8000_000000000001.slice/cri-containerd-{HEX}.scope",
            Ident("containerd", HEX, pod="0f0e0d0c-0000-4000-8000-000000000001", qos="Burstable"),
        ),
    ],
)
def test_v2_recorded_tree_read_by_the_probe_command(
    tmp_path: Path, cgroup: str, ident: Ident
) -> None:
    # A v2 root has cgroup.controllers (written here: the recording's is its container's).
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    plant(tmp_path, cgroup, COUCHBASE / "v2" / "sys" / "fs" / "cgroup")
    plant(tmp_path, "system.slice/cron.service", COUCHBASE / "v2" / "sys" / "fs" / "cgroup")
    counters, gauges = read_tree(tmp_path, "cgroup"), read_tree(tmp_path, "cgroup_mem")
    assert "cron.service" not in counters + gauges  # not a container's cgroup: not read
    assert "kernel_stack" not in gauges  # grep keeps the lines the parser reads only
    assert identify(cgroup) == ident
    (values,) = parse_cgroups(counters).values()
    assert values.version == 2
    assert dict(values.values) == {
        "cpu_ns": 528946079000,
        "nr_periods": 2914,
        "nr_throttled": 222,
        "throttled_ns": 2261444000,
        "read_bytes": 40824832,
        "write_bytes": 824999936,
    }
    (mem,) = parse_cgroups(gauges).values()
    assert dict(mem.values) == {
        "mem_usage": 2766684160,
        "mem_limit": 8589934592,
        "mem_anon": 2147508224,
        "mem_file": 590389248,
        "inactive_file": 42106880,
        "pids": 14,
        "oom_kills": 0,
        "psi_cpu_some_avg10_x100": 6595,  # avg10=65.95
        "psi_cpu_full_avg10_x100": 3286,
        "psi_memory_some_avg10_x100": 105,
        "psi_memory_full_avg10_x100": 36,
        "psi_io_some_avg10_x100": 60,
        "psi_io_full_avg10_x100": 60,
    }
    text = output((counters, counters), gauges)
    (row,) = compute_containers(split_output(text, NONCE), 4, 1.0).rows
    assert row.name == HEX[:12]  # no name readable: the short id
    assert row.labels["runtime"] == ident.kind
    assert row.labels["cgroup"] == "v2"
    m = row.metrics
    assert m["ctr.mem_bytes"] == 2766684160 - 42106880  # working set: usage - inactive file
    assert m["ctr.mem_limit_pct"] == pytest.approx((2766684160 - 42106880) / 8589934592 * 100)
    assert m["ctr.cpu_pct"] == 0.0  # the same tree twice: nothing happened between
    assert m["ctr.cpu_throttled_pct"] == 0.0
    assert m["ctr.pids"] == 14
    assert m["ctr.psi_cpu_some_pct"] == 65.95


def test_v1_recorded_tree_read_by_the_probe_command(tmp_path: Path) -> None:
    """Couchbase's v1 files (Ubuntu 20.04), each controller's own, as Docker's cgroupfs
    layout `<controller>/docker/<id>`."""
    v1 = COUCHBASE / "v1" / "sys" / "fs" / "cgroup"
    for controller in ("cpu", "cpuacct", "memory"):
        plant(tmp_path / controller, f"docker/{HEX}", v1 / controller)
    (values,) = parse_cgroups(read_tree(tmp_path, "cgroup")).values()
    assert values.version == 1
    assert dict(values.values) == {
        "cpuacct_ns": 3321492315750,
        "nr_periods": 13498,
        "nr_throttled": 12651,
        "throttled_ns": 6807531343393,
    }
    (mem,) = parse_cgroups(read_tree(tmp_path, "cgroup_mem")).values()
    assert dict(mem.values) == {
        "mem_usage": 6852075520,
        "mem_limit": 17179869184,
        "mem_anon": 863055872,  # total_rss
        "mem_file": 5943459840,  # total_cache
        "inactive_file": 4192505856,  # total_inactive_file
        "oom_kills": 0,
    }
    assert identify(f"docker/{HEX}") == Ident("docker", HEX)


def test_devices_add_up_and_blkio_total_alone_is_zero(tmp_path: Path) -> None:
    """The probe's awk on io.stat of two devices (the recorded line, and again as 8:48),
    and on blkio files of a v1 host: device lines, or the `Total 0` alone of a container
    that did no I/O (as in the Podman capture)."""
    (tmp_path / "cgroup.controllers").write_text("cpu io memory pids\n")
    plant(tmp_path, f"system.slice/docker-{HEX}.scope", COUCHBASE / "v2" / "sys" / "fs" / "cgroup")
    io = tmp_path / "system.slice" / f"docker-{HEX}.scope" / "io.stat"
    line = io.read_text()
    io.write_text(line + line.replace("8:32", "8:48"))
    (values,) = parse_cgroups(read_tree(tmp_path, "cgroup")).values()
    assert (values.values["read_bytes"], values.values["write_bytes"]) == (
        2 * 40824832, 2 * 824999936,
    )  # fmt: skip
    v1 = tmp_path / "v1"
    blkio = v1 / "blkio" / "docker"
    (blkio / HEX).mkdir(parents=True)
    (blkio / HEX / "blkio.throttle.io_service_bytes").write_text(
        "8:0 Read 4096\n8:0 Write 512\n8:0 Sync 4608\n8:16 Read 1\nTotal 4609\n"
    )
    (blkio / ID_CPU).mkdir()
    (blkio / ID_CPU / "blkio.throttle.io_service_bytes").write_text("Total 0\n")
    found = parse_cgroups(read_tree(v1, "cgroup"))
    assert {k: dict(v.values) for k, v in found.items()} == {
        f"docker/{HEX}": {"read_bytes": 4097, "write_bytes": 512},
        f"docker/{ID_CPU}": {"read_bytes": 0, "write_bytes": 0},
    }


def test_a_tab_or_newline_in_a_cgroup_name_keeps_one_line_per_container(tmp_path: Path) -> None:
    """An LXC container may be called anything: its directory's tab and newline are
    printed as `?`, so a name cannot split a line or fake another container's values."""
    (tmp_path / "cgroup.controllers").write_text("cpu io memory pids\n")
    v2 = COUCHBASE / "v2" / "sys" / "fs" / "cgroup"
    plant(tmp_path, "lxc.payload.we\nird\tm=1 p=999", v2)
    plant(tmp_path, f"system.slice/docker-{HEX}.scope", v2)
    text = read_tree(tmp_path, "cgroup_mem")
    lines = text.splitlines()
    # The head, the keys' line, and a line a container (its path, a tab, its values).
    assert len(lines) == 4
    assert sorted(line.split("\t")[0] for line in lines[2:]) == [
        "lxc.payload.we?ird?m=1 p=999", f"system.slice/docker-{HEX}.scope",
    ]  # fmt: skip
    found = parse_cgroups(text)
    assert set(found) == {"lxc.payload.we?ird?m=1 p=999", f"system.slice/docker-{HEX}.scope"}
    assert all(v.values["pids"] == 14 for v in found.values())
    rows = compute_containers(split_output(output(("", ""), text), NONCE), 4, 1.0).rows
    assert sorted(r.name for r in rows) == [HEX[:12], "we?ird?m=1 p=999"]


def test_a_missing_cgroup_root_fails_the_section(tmp_path: Path) -> None:
    cmd = dict(SAMPLE_SECTIONS)["cgroup"]
    proc = subprocess.run(
        ["sh", "-c", 'FM_CG="$1"; eval "$2"', "sh", str(tmp_path / "nope"), cmd],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert proc.stdout == ""


# --- cgroup v1 (hybrid) live capture: two Podman containers ------------------------------


def _podman_capture() -> str:
    parts = [(PODMAN / f).read_text(encoding="utf-8") for f in (
        "sample1-uptime.txt", "sample2-uptime.txt", "sample1-cgroup.txt",
        "sample2-cgroup.txt", "cgroup_mem.txt", "ctr_names.txt",
    )]  # fmt: skip
    return output((parts[2], parts[3]), parts[4], parts[5], f"{parts[0]}|{parts[1]}")


def test_podman_capture_gives_what_podman_stats_said() -> None:
    """Exact figures from the capture's counters; `podman stats` around it said fmcap-cpu
    44.33 % / 42.46 % CPU (since its start, under a 0.5 CPU quota), fmcap-mem 30.69 MB and
    30.61 MB of 67.11 MB (45.73 % / 45.61 %)."""
    result = compute_containers(split_output(_podman_capture(), NONCE), 2, 1.0)
    rows = {r.name: r for r in result.rows}
    assert set(rows) == {"fmcap-cpu", "fmcap-mem"}  # named from containers.json
    cpu, mem = rows["fmcap-cpu"].metrics, rows["fmcap-mem"].metrics
    assert rows["fmcap-cpu"].labels == {
        "runtime": "podman",
        "id": ID_CPU,
        "cgroup": "v1",
    }
    assert cpu["ctr.cpu_pct"] == pytest.approx((1850534922 - 1481326929) / 1e9 * 100)
    assert cpu["ctr.cpu_host_pct"] == pytest.approx(cpu["ctr.cpu_pct"] / 2)  # type: ignore[operator]
    # 10 periods, none throttled: the busy machine gave it less than its quota that second
    assert cpu["ctr.cpu_throttled_pct"] == 0.0
    assert cpu["ctr.psi_cpu_some_pct"] == 13.67  # unified/…/cpu.pressure avg10
    assert cpu["ctr.mem_limit_bytes"] is None  # 9223372036854771712: no limit
    assert cpu["ctr.mem_limit_pct"] is None
    assert mem["ctr.mem_bytes"] == 30605312
    assert mem["ctr.mem_limit_bytes"] == 67108864
    assert mem["ctr.mem_limit_pct"] == pytest.approx(30605312 / 67108864 * 100)  # 45.61 %
    assert mem["ctr.mem_anon_bytes"] == 30199808
    assert mem["ctr.pids"] == 2
    assert mem["ctr.oom_kills"] == 0
    assert mem["ctr.cpu_throttled_pct"] == 0.0  # no quota: no periods, never throttled
    assert (mem["ctr.disk_read_bytes_per_s"], mem["ctr.disk_write_bytes_per_s"]) == (0.0, 0.0)
    # The lab's two libvirt guests ran then (another session's): their QEMU cgroups give
    # their VM rows host-side figures (~203 MB of anonymous memory each; no I/O counted).
    assert result.vm_metrics == {
        vm: {
            "vm.host_rss_bytes": rss,
            "vm.host_read_bytes_per_s": 0.0,
            "vm.host_write_bytes_per_s": 0.0,
        }
        for vm, rss in (("fmlab1", 202731520), ("fmlab2", 202915840))
    }
    assert result.notes == ()


def test_a_container_started_between_the_samples_has_no_rates() -> None:
    text = _podman_capture()
    first, rest = text.split("begin 2 cgroup", 1)
    first = "\n".join(line for line in first.split("\n") if ID_MEM not in line)
    result = compute_containers(split_output(first + "begin 2 cgroup" + rest, NONCE), 2, 1.01)
    mem = next(r for r in result.rows if r.name == "fmcap-mem").metrics
    assert mem["ctr.cpu_pct"] is None
    assert mem["ctr.mem_bytes"] == 30605312
    assert result.notes == ("1 container(s) started between the two samples: no rates for them",)


def _keyed(lines: dict[str, str], keys: str) -> str:
    return f"#cgroup keyed v2\n#k {keys}\n" + "".join(f"{p}\t{v}\n" for p, v in lines.items())


@pytest.mark.parametrize("with_newcomer", [False, True])  # columns, or one at a time
def test_a_container_restarted_between_the_samples_has_no_rates_and_a_note(
    with_newcomer: bool,
) -> None:
    """`podman restart` between the samples makes its cgroup again: the CPU counter went
    down (here 6.25 s -> 0.99 s of usage): no rate, as for a container started between
    them, and a note says why its CPU is blank."""
    old, new = f"system.slice/docker-{HEX}.scope", f"system.slice/docker-{ID_CPU}.scope"
    first = {old: "6254626 0 0", f"system.slice/docker-{ID_MEM}.scope": "100 0 0"}
    second = {old: "993338 0 0", f"system.slice/docker-{ID_MEM}.scope": "200 0 0"}
    if with_newcomer:
        second[new] = "5 0 0"
    mem = _keyed(dict.fromkeys(second, "1000 1"), "m p")
    text = output((_keyed(first, "u np nt"), _keyed(second, "u np nt")), mem)
    result = compute_containers(split_output(text, NONCE), 2, 1.0)
    cpu = {r.labels["id"]: r.metrics["ctr.cpu_pct"] for r in result.rows}
    assert cpu[HEX] is None
    assert cpu[ID_MEM] == pytest.approx(0.01)
    assert (
        "1 container(s) restarted between the two samples (CPU counter went down):"
        " no rates for them" in result.notes
    )
    assert len([n for n in result.notes if " started between" in n]) == with_newcomer


def test_a_container_stopped_before_the_second_sample_has_no_row() -> None:
    """Its cgroup gone from sample 2's counters, it has no row, even where cgroup_mem still
    lists it: a streamed host's (top, serve) is read every ONCE_EVERY_TICKS ticks, and the
    row stood for up to 30 ticks with the memory and pids it had before it stopped."""
    text = _podman_capture()
    head, rest = text.split("begin 2 cgroup", 1)
    second, tail = rest.split("begin 0 cgroup_mem", 1)
    second = "\n".join(line for line in second.split("\n") if ID_MEM not in line)
    out = split_output(head + "begin 2 cgroup" + second + "begin 0 cgroup_mem" + tail, NONCE)
    assert ID_MEM in (out.text(0, "cgroup_mem") or "")
    for pair in (out, _without(out, 1)):  # the pair it stopped in, and each one after
        result = compute_containers(pair, 2, 1.01)
        assert [r.name for r in result.rows] == ["fmcap-cpu"]
        assert result.rows[0].metrics["ctr.cpu_pct"] is not None
        assert not [n for n in result.notes if "started" in n]
    # A container whose gauges alone were read (sample 2's counters failed, or no section
    # read at all): still shown.
    for rc in (1, 0):
        failed = compute_containers(_without(out, 2, rc), 2, 1.01)
        assert {r.name for r in failed.rows} == {"fmcap-cpu", "fmcap-mem"}


def _without(out: ProbeOutput, sample: int, rc: int = 1) -> ProbeOutput:
    """`out` with sample 2's cgroup section as sample 1's (sample=1: the next pair of a
    streamed host, whose cgroup_mem was not read again), or empty with status `rc`
    (sample=2)."""
    sections = dict(out.sections)
    s2 = sections[(2, "cgroup")]
    if sample == 1:
        sections[(1, "cgroup")] = s2._replace(sample=1)
    else:
        sections[(2, "cgroup")] = s2._replace(text="", rc=rc)
    return ProbeOutput(sections)


def test_no_cgroup_sections_no_rows() -> None:
    text = section(1, "uptime", "1.0 1.0\n") + section(2, "cgroup", "", rc=1)
    assert compute_containers(split_output(text, NONCE), 2, 1.0).rows == ()


# --- identification, names, bad input ----------------------------------------------------


@pytest.mark.parametrize(
    ("path", "ident"),
    [
        (f"docker/{HEX}", Ident("docker", HEX)),
        (f"system.slice/docker-{HEX}.scope", Ident("docker", HEX)),
        (f"machine.slice/libpod-{HEX}.scope", Ident("podman", HEX)),
        (f"libpod_parent/libpod-{HEX}", Ident("podman", HEX)),
        (f"libpod_parent/libpod-conmon-{HEX}", None),
        (f"kubepods/besteffort/pod49ccade5-8a0b-4389-99ae-0c74a2533472/{HEX}",
         Ident("k8s", HEX, pod="49ccade5-8a0b-4389-99ae-0c74a2533472", qos="BestEffort")),
        (f"kubepods/pod49ccade5-8a0b-4389-99ae-0c74a2533472/{HEX}",
         Ident("k8s", HEX, pod="49ccade5-8a0b-4389-99ae-0c74a2533472", qos="Guaranteed")),
        ("kubepods.slice/kubepods-pod49ccade5_8a0b_4389_99ae_0c74a2533472.slice/"
         f"crio-{HEX}.scope",
         Ident("cri-o", HEX, pod="49ccade5-8a0b-4389-99ae-0c74a2533472", qos="Guaranteed")),
        ("kubepods.slice/kubepods-burstable.slice", None),
        ("lxc.payload.web01", Ident("lxc", "web01", "web01")),
        ("lxc/db", Ident("lxc", "db", "db")),
        ("machine/shell.libvirt-lxc", Ident("lxc", "shell", "shell")),
        ("machine.slice/systemd-nspawn@build\\x2d1.service", Ident("nspawn", "build-1", "build-1")),
        ("machine.slice/machine-arch.scope", Ident("nspawn", "arch", "arch")),
        ("machine.slice/machine-qemu\\x2d3\\x2dweb\\x2d1.scope", Ident("qemu", "web-1", "web-1")),
        ("machine/qemu-1-lab-a.libvirt-qemu", Ident("qemu", "lab-a", "lab-a")),
        ("machine/old.libvirt-qemu", Ident("qemu", "old", "old")),
        ("system.slice/docker.service", None),
        (f"system.slice/docker-{HEX}.scope/init", None),
    ],
)  # fmt: skip
def test_identify(path: str, ident: Ident | None) -> None:
    assert identify(path) == ident


#: Real projects' path strings (each noted): cAdvisor's CRI-O factory test (google/cadvisor
#: lib/container/crio/factory_test.go @ 6a0c4f25, Apache-2.0): a container's `.scope`, and
#: the same id without it or as `crio-conmon-`, `.mount`, which are not containers;
#: a public Rust project's test of rootless Podman (`/proc/PID/cgroup` of a container on
#: Gentoo and openSUSE: the leading `0::/` and trailing `/container` dropped, the scope is
#: the container's own cgroup); kubelet's rootless patch (containerd under the user's systemd,
#: rootlesskit); the rest built by the formats of podman's libpod/util_linux.go and
#: libpod/container.go (@ c6580b4a), nerdctl's pkg/cmd/container/run_cgroup_linux.go
#: (@ 8da50408) through runc's slice:prefix:name, and containerd's pkg/oci/spec.go
#: (@ 301026e5, `/<namespace>/<id>`).
CRIO_ID = "81e5c2990803c383229c9680ce964738d5e566d97f5bd436ac34808d2ec75d5f"
CRIO_POD = "kubepods/pod068e8fa0-9213-11e7-a01f-507b9d4141fa"
ROOTLESS_ID = "3f084b4c7b789c1a0f174da3fcd339e31125d3096b3ff46a0bef4fad71d09362"
KUBELET_ID = "6938564e754ad86269a536ed19172af0eff5f7ff0a41eefc5b433a76f1f38f16"
USER_1000 = "user.slice/user-1000.slice/user@1000.service/user.slice"
CGROUPFS_POD_ID = "9a" * 32


@pytest.mark.parametrize(
    ("path", "ident"),
    [
        (f"{CRIO_POD}/crio-{CRIO_ID}.scope",
         Ident("cri-o", CRIO_ID, pod="068e8fa0-9213-11e7-a01f-507b9d4141fa", qos="Guaranteed")),
        (f"{CRIO_POD}/crio-{CRIO_ID}", None),
        (f"{CRIO_POD}/crio-conmon-{CRIO_ID}", None),
        (f"{CRIO_POD}/crio-{CRIO_ID}.mount", None),
        (f"system.slice/crio-{CRIO_ID}.scope", Ident("cri-o", CRIO_ID)),
        (f"system.slice/crio-conmon-{CRIO_ID}.scope", None),
        (f"{USER_1000}/libpod-{ROOTLESS_ID}.scope", Ident("podman", ROOTLESS_ID)),
        (f"{USER_1000}/libpod-{ROOTLESS_ID}.scope/container", None),
        (f"{USER_1000}/user-libpod_pod_{HEX}.slice/libpod-{ROOTLESS_ID}.scope",
         Ident("podman", ROOTLESS_ID, pod=HEX)),
        (f"machine.slice/machine-libpod_pod_{HEX}.slice/libpod-{ROOTLESS_ID}.scope",
         Ident("podman", ROOTLESS_ID, pod=HEX)),
        # a pod with cgroupfs (libpod/runtime_pod_linux.go: the pod's id below the parent)
        (f"libpod_parent/{HEX}/libpod-{ROOTLESS_ID}", Ident("podman", ROOTLESS_ID, pod=HEX)),
        (f"libpod_parent/{HEX}/conmon", None),
        (f"libpod_parent/web/libpod-{ROOTLESS_ID}", Ident("podman", ROOTLESS_ID)),
        ("user.slice/user-1001.slice/user@1001.service/user.slice/"
         f"cri-containerd-{KUBELET_ID}.scope", Ident("containerd", KUBELET_ID)),
        (f"system.slice/nerdctl-{HEX}.scope", Ident("containerd", HEX)),
        (f"{USER_1000}/nerdctl-{HEX}.scope", Ident("containerd", HEX)),
        (f"default/{HEX}", Ident("containerd", HEX)),
        ("default/redis", Ident("containerd", "redis", "redis")),  # `ctr run IMAGE redis`
        ("system.slice/containerd.service", None),
    ],
)  # fmt: skip
def test_identify_rootless_pods_and_runtimes_outside_kubernetes(
    path: str, ident: Ident | None
) -> None:
    assert identify(path) == ident


def test_the_probe_finds_rootless_pod_and_plain_containerd_cgroups(tmp_path: Path) -> None:
    """The recorded v2 files planted at those paths: the probe's globs find each container
    (and no sub-cgroup or daemon), the rows say which runtime."""
    (tmp_path / "cgroup.controllers").write_text("cpu io memory pids\n")
    v2 = COUCHBASE / "v2" / "sys" / "fs" / "cgroup"
    planted = {
        f"{USER_1000}/libpod-{ROOTLESS_ID}.scope": "podman",
        f"{USER_1000}/user-libpod_pod_{HEX}.slice/libpod-{ID_CPU}.scope": "podman",
        f"machine.slice/machine-libpod_pod_{HEX}.slice/libpod-{ID_MEM}.scope": "podman",
        f"libpod_parent/{HEX}/libpod-{CGROUPFS_POD_ID}": "podman",  # a pod with cgroupfs
        f"system.slice/nerdctl-{KUBELET_ID}.scope": "containerd",
        "default/redis": "containerd",
        f"system.slice/crio-{CRIO_ID}.scope": "cri-o",
    }
    for cgroup in (*planted, f"{USER_1000}/libpod-{ROOTLESS_ID}.scope/container",
                   "system.slice/containerd.service", f"libpod_parent/{HEX}/conmon"):  # fmt: skip
        plant(tmp_path, cgroup, v2)
    text = output((read_tree(tmp_path, "cgroup"),) * 2, read_tree(tmp_path, "cgroup_mem"))
    rows = compute_containers(split_output(text, NONCE), 4, 1.0).rows
    assert sorted((r.labels["runtime"], r.labels["id"]) for r in rows) == sorted(
        (kind, identify(path).id)
        for path, kind in planted.items()  # type: ignore[union-attr]
    )
    assert all(r.metrics["ctr.pids"] == 14 for r in rows)  # each read in full
    (in_pod,) = (r for r in rows if r.labels["id"] == CGROUPFS_POD_ID)
    assert in_pod.labels["pod"] == HEX


def test_the_probe_finds_rootless_docker_and_kubelet_cgroups(tmp_path: Path) -> None:
    """Rootless Docker with systemd puts its containers below the user's systemd as Podman
    does (moby daemon/oci_linux.go WithCgroups: parent `user.slice` when rootless, then
    `user.slice:docker:<id>`), and the rootless kubelet its containerd ones (kubelet's
    rootless patch): the probe reads them, as identify() knows them."""
    (tmp_path / "cgroup.controllers").write_text("cpu io memory pids\n")
    v2 = COUCHBASE / "v2" / "sys" / "fs" / "cgroup"
    planted = {
        f"{USER_1000}/docker-{ROOTLESS_ID}.scope": "docker",
        f"user.slice/user-1001.slice/user@1001.service/user.slice/cri-containerd-{KUBELET_ID}"
        ".scope": "containerd",
    }
    for cgroup in planted:
        plant(tmp_path, cgroup, v2)
    text = output((read_tree(tmp_path, "cgroup"),) * 2, read_tree(tmp_path, "cgroup_mem"))
    rows = compute_containers(split_output(text, NONCE), 4, 1.0).rows
    assert sorted((r.labels["runtime"], r.labels["id"]) for r in rows) == [
        ("containerd", KUBELET_ID), ("docker", ROOTLESS_ID),
    ]  # fmt: skip
    assert all(r.metrics["ctr.pids"] == 14 and r.metrics["ctr.cpu_pct"] == 0 for r in rows)


def test_names_from_docker_and_podman_storage() -> None:
    text = (
        f'/var/lib/docker/containers/{HEX}/config.v2.json:"Name":"/web"\n'
        f'"id":"{ID_CPU}","names":["fmcap-cpu"\n'
    )
    assert parse_names(text) == {HEX: "web", ID_CPU: "fmcap-cpu"}


@pytest.mark.parametrize(
    "text",
    [
        f'/var/lib/docker/containers/{HEX}/config.v2.json:"Name":"/web"\n'
        f'/var/lib/docker/containers/{ID_CPU}/config.v2.json:"Name":"/db"\n',
        f'"id":"{HEX}","names":["web"\n"id":"{ID_CPU}","names":["db"\n',
        f'/var/lib/docker/containers/{HEX}/config.v2.json:"Name":"/we"b"\n',
        f'"id":"{HEX}","names":["web\n"id":"{ID_CPU}","names":["db"\n',
        f'/var/lib/docker/containers/{HEX}/config.v2.json:"Name":"/web"\r\n',
        f'/var/lib/docker/containers/{HEX}/config.v2.json:"Name":"/web"\n'
        f"/var/log/containers/a_b_c-{ID_CPU}.log\n",
        # Ids not hex (read by the pattern of any 64 characters, then checked): a capital,
        # a slash, a quote, one too short before a hex one on its line.
        f'/var/lib/docker/containers/{HEX.upper()}/config.v2.json:"Name":"/web"\n'
        f'/var/lib/docker/containers/{ID_CPU}/config.v2.json:"Name":"/db"\n',
        f'/var/lib/docker/containers/{HEX[:-1]}//config.v2.json:"Name":"/web"\n',
        f'/var/lib/docker/containers/{HEX[:-2]}"x/config.v2.json:"Name":"/web"\n',
        f'/var/lib/docker/containers/{HEX[1:]}/config.v2.json:"Name":"/a/{ID_CPU}'
        f'/config.v2.json:"Name":"/db"\n',
        f'"id":"{HEX[:-1]}g","names":["web"\n"id":"{ID_CPU}","names":["db"\n',
        f'"id":"{HEX[:-3]}","n","names":["web"\n',
    ],
)
def test_one_runtime_s_names_by_one_pattern_as_line_by_line(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A section of one runtime's lines, with the kubelet glob a host without links prints
    (a real host's section always ends with it) is read by one pattern; the same names as
    line by line, and anything else left to that."""
    for names in (text, text + "/var/log/containers/*.log\n"):
        fast = parse_names(names)
        with monkeypatch.context() as m:
            m.setattr(ctrnames, "_kinds", lambda _text: "")
            assert fast == parse_names(names)
    assert ctrnames._kinds(text + "/var/log/containers/*.log\n") in {"docker", "podman", ""}
    assert ctrnames._kinds(f'"id":"{HEX}","names":["web"\n/var/log/containers/*.log\n') == "podman"


K8S_ID = "5b8e1f0c" * 8


def test_kubernetes_names_from_the_kubelet_log_links(tmp_path: Path) -> None:
    """The kubelet links each container's log as /var/log/containers/<pod>_<namespace>_
    <container>-<id>.log: a Kubernetes container's row is `<namespace>/<pod>/<container>`;
    a glob that matched nothing (printf prints it as it is) names nothing."""
    cgroup = (
        "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
        f"0f0e0d0c_0000_4000_8000_000000000001.slice/cri-containerd-{K8S_ID}.scope"
    )
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    plant(tmp_path, cgroup, COUCHBASE / "v2" / "sys" / "fs" / "cgroup")
    names = (
        f"/var/log/containers/web-7d4b9c6f5-x2x9q_shop_nginx-{K8S_ID}.log\n"
        f"/var/log/containers/db-0_shop_postgres-{HEX}.log\n"
        "/var/log/containers/*.log\n"
    )
    assert parse_names(names) == {
        K8S_ID: "shop/web-7d4b9c6f5-x2x9q/nginx",
        HEX: "shop/db-0/postgres",
    }
    text = output((read_tree(tmp_path, "cgroup"),) * 2, read_tree(tmp_path, "cgroup_mem"), names)
    (row,) = compute_containers(split_output(text, NONCE), 4, 1.0).rows
    assert row.name == "shop/web-7d4b9c6f5-x2x9q/nginx"
    assert row.labels["pod"] == "0f0e0d0c-0000-4000-8000-000000000001"
    # The probe's command under sh: the links' glob printed (as it is where there are none).
    done = subprocess.run(["sh", "-c", NAMES_COMMAND], capture_output=True, text=True)
    assert done.returncode == 0
    assert "/var/log/containers/" in done.stdout


def test_a_kubelet_log_link_cut_at_255_bytes_still_names_its_container(tmp_path: Path) -> None:
    # legacyLogSymlink cuts `<pod>_<namespace>_<container>-<id>` to 251 bytes (+ ".log"):
    # with a long pod name the id loses its end, and its prefix still tells the container.
    pod = "ingest-" + "a" * 180
    cut = f"{pod}_shop_nginx-{K8S_ID}"[:251] + ".log"
    assert len(cut) == 255
    assert K8S_ID not in cut
    other = "0123456789ab" + "c" * 52
    # A cut that leaves fewer than a short id's 12 digits: too few to tell.
    short = f"{'b' * 231}_shop_nginx-{K8S_ID}"[:251] + ".log"
    assert short.endswith(f"-{K8S_ID[:8]}.log")
    text = "".join(f"/var/log/containers/{n}\n" for n in (cut, short))
    names = parse_names(text)
    assert len(names) == 1
    get = name_lookup(names)
    assert get(K8S_ID) == f"shop/{pod}/nginx"
    assert get(other) is None
    # Two cut links whose prefixes both start the id: neither is taken.
    twice = name_lookup({**names, K8S_ID[:20]: "shop/other/nginx"})
    assert twice(K8S_ID) is None
    # Many cut links (a hostile host's): each container still looks up a handful.
    many = {f"{i:012x}{'0' * 20}": f"ns/p{i}/c" for i in range(50_000)}
    lookup = name_lookup({**names, **many})
    assert lookup(K8S_ID) == f"shop/{pod}/nginx"
    assert lookup(f"{7:012x}" + "0" * 52) == "ns/p7/c"
    # A link of fewer bytes is never cut: its id must be whole.
    assert parse_names(f"/var/log/containers/web_shop_nginx-{K8S_ID[:40]}.log\n") == {}
    # The container's row: named by the cut link.
    cgroup = (
        "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
        f"0f0e0d0c_0000_4000_8000_000000000001.slice/cri-containerd-{K8S_ID}.scope"
    )
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    plant(tmp_path, cgroup, COUCHBASE / "v2" / "sys" / "fs" / "cgroup")
    out = output((read_tree(tmp_path, "cgroup"),) * 2, read_tree(tmp_path, "cgroup_mem"), text)
    (row,) = compute_containers(split_output(out, NONCE), 4, 1.0).rows
    assert row.name == f"shop/{pod}/nginx"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (f"docker/{HEX}\tca=12x4", f"cpuacct.usage: malformed value 'ca=12x4' of 'docker/{HEX}'"),
        (f"docker/{HEX}\tnp=-3", "cpu.stat: malformed value 'np=-3'"),
        (f"docker/{HEX}\tca=" + "9" * 21, "cpuacct.usage: malformed value 'ca=999"),
        (f"docker/{HEX}\tpcs=1.5", "cpu.pressure: malformed value 'pcs=1.5'"),
        (f"docker/{HEX}\tr=1 r=", "io.stat: malformed value 'r='"),
        (f"docker/{HEX}\tl=maxi", "memory.max: malformed value 'l=maxi'"),
    ],
)
def test_a_garbled_value_names_the_section_and_file(line: str, message: str) -> None:
    with pytest.raises(ProbeParseError) as exc:
        parse_cgroups("#cgroup v1\n" + line + "\n", "cgroup")
    assert str(exc.value).startswith(f"section cgroup: {message}")


def test_unknown_keys_lines_without_a_tab_and_hostile_paths() -> None:
    text = (
        "#cgroup v2\n"
        f"docker/{HEX}\tzz=5 m=7\n"  # a key of a later probe: passed over
        "lxc.payload.a:b c\tp=3\n"  # a path is whatever comes before the tab
        "sh: 1: awk: not found\n"
    )
    assert {k: dict(v.values) for k, v in parse_cgroups(text).items()} == {
        f"docker/{HEX}": {"mem_usage": 7},
        "lxc.payload.a:b c": {"pids": 3},
    }


def test_a_v1_container_s_mounts_merge_and_devices_add_up() -> None:
    text = (
        "#cgroup v1\n"
        f"docker/{HEX}\tnp=5 nt=1 tn=7\n"  # cpu/
        f"docker/{HEX}\tca=9\n"  # cpuacct/
        f"docker/{HEX}\tr=10+1 w=20+2\n"  # blkio/: two devices
        f"docker/{HEX}\tl=9223372036854771712 m=4\n"  # memory/: no limit
    )
    (values,) = parse_cgroups(text).values()
    assert values.version == 1
    assert dict(values.values) == {
        "nr_periods": 5, "nr_throttled": 1, "throttled_ns": 7, "cpuacct_ns": 9,
        "read_bytes": 11, "write_bytes": 22, "mem_limit": None, "mem_usage": 4,
    }  # fmt: skip


# --- the grep lines of probes before the awk reader (raw folders saved then) -------------


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (f"./docker/{HEX}/cpuacct.usage:12x4", "cpuacct.usage: malformed line '12x4'"),
        (f"./docker/{HEX}/cpu.stat:nr_periods -3", "cpu.stat: malformed line 'nr_periods -3'"),
        (f"./docker/{HEX}/cpuacct.usage:" + "9" * 21, "cpuacct.usage: malformed line '999"),
        (f"./docker/{HEX}/cpu.pressure:some avg10=1.5 total=3", "cpu.pressure: malformed line"),
    ],
)
def test_a_garbled_grep_line_names_the_section_and_file(line: str, message: str) -> None:
    with pytest.raises(ProbeParseError) as exc:
        parse_cgroup_lines(line + "\n", "cgroup")
    assert str(exc.value).startswith(f"section cgroup: {message}")


def test_grep_lines_of_other_files_and_hostile_paths_are_ignored() -> None:
    text = (
        f"./docker/{HEX}/memory.swap.current:5\n"
        "./lxc.payload.a:b/pids.current:3\n"  # a ':' in an LXC name: the file decides
        "garbage without a path\n"
    )
    assert {k: dict(v.values) for k, v in parse_cgroup_lines(text).items()} == {
        "lxc.payload.a:b": {"pids": 3}
    }


def test_probe_command_runs_on_this_machine() -> None:
    text = read_tree(Path("/sys/fs/cgroup"), "cgroup")
    parse_cgroups(text)  # whatever runs here parses


def _past_arg_max(tmp_path: Path, path: str) -> subprocess.CompletedProcess[str]:
    """The probe's cgroup_mem command on 1,600 container directories under a stack limit
    of 256 KiB: ARG_MAX is a quarter of it (at least 128 KiB), and their paths (~90 bytes)
    no longer fit on one awk's command line. `path`: the command's PATH."""
    (tmp_path / "cgroup.controllers").write_text("cpu io memory pids\n")
    for i in range(1600):
        d = tmp_path / "system.slice" / f"docker-{i:064x}.scope"
        d.mkdir(parents=True)
        (d / "pids.current").write_text(f"{i}\n")
    cmd = dict(ONCE_SECTIONS)["cgroup_mem"]
    return subprocess.run(
        ["sh", "-c", 'ulimit -s 256; FM_CG="$1"; PATH="$2"; eval "$3"', "sh", str(tmp_path),
         path, cmd],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip


def test_past_arg_max_xargs_passes_the_directories_in_batches(tmp_path: Path) -> None:
    proc = _past_arg_max(tmp_path, os.environ["PATH"])
    assert "Argument list too long" not in proc.stdout
    found = parse_cgroups(proc.stdout)
    assert len(found) == 1600
    # In the directories' order; an awk a batch, each printing its keys' line first.
    assert proc.stdout.count("#k ") > 1
    paths = [line.split("\t")[0] for line in proc.stdout.splitlines() if "\t" in line]
    assert paths == sorted(paths) == list(found)
    assert {dict(v.values)["pids"] for v in found.values()} == set(range(1600))


def test_past_arg_max_docker_names_are_read_in_batches(tmp_path: Path) -> None:
    # The probe's ctr_names command with Docker's folder moved to a temporary one: 1,200
    # config.v2.json files (paths of ~120 bytes) under a 256 KiB stack, past ARG_MAX.
    docker = tmp_path / "var-lib-docker-containers"
    ids = [f"{i:064x}" for i in range(1200)]
    for i, cid in enumerate(ids):
        (docker / cid).mkdir(parents=True)
        (docker / cid / "config.v2.json").write_text(f'{{"ID":"{cid}","Name":"/web-{i}"}}')
    cmd = NAMES_COMMAND.replace(DOCKER_CONFIGS, f"{docker}/*/config.v2.json")
    # Podman's and the kubelet's names too: this machine's own containers are not the test's.
    for real in ("/var/lib/containers/storage/", "/home/", "/var/log/containers/"):
        assert real in cmd
        cmd = cmd.replace(real, f"{tmp_path}/none{real}")
    assert cmd != NAMES_COMMAND
    proc = subprocess.run(
        ["sh", "-c", f"ulimit -s 256; {cmd}"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0
    assert parse_names(proc.stdout) == {cid: f"web-{i}" for i, cid in enumerate(ids)}


def test_past_arg_max_without_xargs_no_containers_and_a_note(tmp_path: Path) -> None:
    bin_ = tmp_path / "bin"  # awk, and no xargs
    bin_.mkdir()
    awk = shutil.which("awk")
    assert awk is not None
    (bin_ / "awk").symlink_to(awk)
    (tmp_path / "cg").mkdir()
    proc = _past_arg_max(tmp_path / "cg", str(bin_))
    assert "Argument list too long" in proc.stdout
    assert parse_cgroups(proc.stdout) == {}
    text = output(("", ""), proc.stdout)
    result = compute_containers(split_output(text, NONCE), 4, 1.0)
    assert result.rows == ()
    assert result.notes == (
        "too many containers for the probe's one awk (ARG_MAX): containers not reported",
    )


def test_a_cgroup_named_like_the_probe_s_too_many_line_hides_nothing(tmp_path: Path) -> None:
    """The probe says `Argument list too long` on a line of its own; an LXC container may
    be called so, and the others are still reported (itself too)."""
    (tmp_path / "cgroup.controllers").write_text("cpu io memory pids\n")
    v2 = COUCHBASE / "v2" / "sys" / "fs" / "cgroup"
    plant(tmp_path, "lxc.payload.Argument list too long", v2)
    plant(tmp_path, f"system.slice/docker-{HEX}.scope", v2)
    counters, gauges = read_tree(tmp_path, "cgroup"), read_tree(tmp_path, "cgroup_mem")
    result = compute_containers(split_output(output((counters, counters), gauges), NONCE), 4, 1.0)
    assert sorted(r.name for r in result.rows) == sorted(["Argument list too long", HEX[:12]])
    assert result.notes == ()
