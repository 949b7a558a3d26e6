"""Parse stage for container cgroups (pure): the probe's one-pass read of the cgroup tree.

The probe runs one `find … -exec grep -H -E RE {} +` under the cgroup root (sections.py):
one line per kept line of every matching file, `./<cgroup path>/<file>:<line>`. cgroup v2
(kernel 4.5+; PSI files 4.20+, `memory.events` oom_kill 4.13+) puts every controller's
files in one directory; cgroup v1 has one tree per controller, so the path starts with the
controller's mount (`./memory/docker/<id>/memory.stat`), which the parser strips. Units:
v2 cpu.stat in µs, v1 cpuacct.usage and cpu.stat throttled_time in ns, memory in bytes,
PSI totals in µs (Documentation/admin-guide/cgroup-v2.rst, cgroup-v1/{cpuacct,memory}.rst).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from fleetmon.errors import ProbeParseError
from fleetmon.sources import MAX_DIGITS

#: Files read at each of the two samples (counters), and once after the second (gauges;
#: the OOM kill count as it stands; PSI as the kernel's own 10 s averages, which spares
#: reading three files per container twice: 200 containers cost ~4 µs a file).
COUNTER_FILES = ("cpu.stat", "cpuacct.usage", "io.stat", "blkio.throttle.io_service_bytes")
GAUGE_FILES = (
    "memory.current", "memory.max", "memory.stat", "pids.current", "memory.events",
    "memory.usage_in_bytes", "memory.limit_in_bytes", "memory.oom_control",
    "cpu.pressure", "memory.pressure", "io.pressure",
)  # fmt: skip

#: Where runtimes put their containers' cgroups, as globs below a hierarchy's root:
#: Docker (systemd, cgroupfs), Podman (systemd, cgroupfs), Kubernetes (systemd: Guaranteed
#: pods, then Burstable/BestEffort; cgroupfs the same), LXC 4+ and older, systemd-nspawn
#: and machinectl, libvirt QEMU and LXC with systemd (machine.slice) and without (machine/).
CONTAINER_GLOBS = (
    "system.slice/docker-*.scope", "docker/*",
    "machine.slice/libpod-*.scope", "libpod_parent/libpod-*",
    "kubepods.slice/kubepods-pod*.slice/*.scope",
    "kubepods.slice/kubepods-*.slice/kubepods-*-pod*.slice/*.scope",
    "kubepods/pod*/*", "kubepods/*/pod*/*",
    "lxc.payload.*", "lxc/*",
    "machine.slice/machine-*.scope", "machine.slice/systemd-nspawn@*.service",
    "machine/*.libvirt-qemu", "machine/*.libvirt-lxc",
)  # fmt: skip
#: cgroup v1: the hierarchy (mount) each file lives in; `unified` is a hybrid host's cgroup2
#: mount without controllers, which still has cpu.stat's usage and the PSI files (5.2+).
V1_MOUNTS_OF = {
    "cpu.stat": ("cpu", "unified"), "cpuacct.usage": ("cpuacct",),
    "blkio.throttle.io_service_bytes": ("blkio",),
    "cpu.pressure": ("unified",), "memory.pressure": ("unified",), "io.pressure": ("unified",),
    "memory.usage_in_bytes": ("memory",), "memory.limit_in_bytes": ("memory",),
    "memory.stat": ("memory",), "memory.oom_control": ("memory",), "pids.current": ("pids",),
}  # fmt: skip

#: The lines kept of those files (grep -E, so the probe sends no more than the parser
#: reads): single numbers and `max`, the named keys, `maj:min` device lines and blkio's
#: Total, PSI lines.
KEEP_RE = (
    "^([0-9]+|max)$"
    "|^(usage_usec|nr_periods|nr_throttled|throttled_usec|throttled_time|oom_kill"
    "|anon|file|inactive_file|total_rss|total_cache|total_inactive_file) "
    "|^[0-9]+:[0-9]+ (rbytes|Read|Write)|^Total "
    "|^(some|full) "
)


def _globs(files: tuple[str, ...], v1: bool) -> str:
    words = []
    for f in files:
        mounts = V1_MOUNTS_OF.get(f, ()) if v1 else ("",)
        words += [f"{m}/{d}/{f}" if m else f"{d}/{f}" for m in mounts for d in CONTAINER_GLOBS]
    return " ".join(words)


def find_command(files: tuple[str, ...]) -> str:
    """The sh command reading `files` of every container cgroup under $FM_CG in one grep.

    The shell's globs find the containers' directories (a readdir of a few parent folders;
    no walk of the whole tree, no process per container); a glob that matches nothing stays
    as written and grep -s passes over it. cgroup v2 has cgroup.controllers at its root.
    The files are grep's arguments: 1,000-2,000 containers (8 gauge files each, paths of
    100-200 bytes) reach ARG_MAX's 2 MiB; the shell's "Argument list too long" is then the
    section's text (grep -s keeps its own file errors quiet), which TOO_MANY detects.
    """
    # `true`: grep exits 1 or 2 when nothing matched; only a missing root fails the section.
    return (
        '(cd "$FM_CG" 2>/dev/null || exit 1; if [ -f cgroup.controllers ];'
        f" then set -- {_globs(files, False)}; else set -- {_globs(files, True)}; fi;"
        f" grep -s -H -E '{KEEP_RE}' \"$@\" 2>&1; true)"
    )


#: Names without a daemon call: Docker's config.v2.json ("Name":"/web") and Podman's
#: container storage (containers.json: "id":"…","names":["web"], in that key order).
NAMES_COMMAND = (
    'grep -H -o \'"Name":"/[^"]*"\' /var/lib/docker/containers/*/config.v2.json'
    ' 2>/dev/null; grep -o \'"id":"[0-9a-f]*","names":\\["[^"]*"\''
    " /var/lib/containers/storage/overlay-containers/containers.json 2>/dev/null; true"
)

#: What sh prints when the files passed to grep exceed ARG_MAX (E2BIG's strerror).
TOO_MANY = "Argument list too long"

#: cgroup v1 controller mounts as the first path component (`cpu,cpuacct` is one mount).
_V1_MOUNTS = frozenset(
    {"cpu", "cpuacct", "cpu,cpuacct", "cpuacct,cpu", "memory", "blkio", "pids", "cpuset",
     "devices", "freezer", "net_cls", "net_prio", "net_cls,net_prio", "perf_event",
     "hugetlb", "rdma", "misc", "systemd", "unified", "name=systemd"}
)  # fmt: skip
_LINE_RE = re.compile(
    r"^(?:\./)?(.*)/(" + "|".join(re.escape(f) for f in COUNTER_FILES + GAUGE_FILES) + r"):(.*)$",
    re.MULTILINE,
)
#: Values at or above this are "no limit" (v1 prints PAGE_COUNTER_MAX pages in bytes).
UNLIMITED = 1 << 62


@dataclass(frozen=True, slots=True)
class CgroupValues:
    """What one cgroup's files said: field -> value (ns, bytes, µs, counts)."""

    version: int  # 1 or 2
    values: Mapping[str, int | None]


def _int(section: str, token: str, what: str) -> int:
    if not token.isdigit() or len(token) > MAX_DIGITS:
        raise ProbeParseError(section, f"{what}: expected an unsigned integer, got {token[:40]!r}")
    return int(token)


def _fields(section: str, file: str, line: str) -> Iterator[tuple[str, int | None, bool]]:
    """(field, value, summed) pairs of one kept line of `file`."""
    if file in ("memory.max", "memory.limit_in_bytes"):
        v = None if line == "max" else _int(section, line, file)
        yield "mem_limit", None if v is not None and v >= UNLIMITED else v, False
    elif file in ("memory.current", "memory.usage_in_bytes"):
        yield "mem_usage", _int(section, line, file), False
    elif file == "cpuacct.usage":  # ns; preferred to a hybrid host's unified usage_usec
        yield "cpuacct_ns", _int(section, line, file), False
    elif file == "pids.current":
        yield "pids", _int(section, line, file), False
    elif file.endswith(".pressure"):  # "some avg10=1.05 avg60=0.29 avg300=0.06 total=446327"
        kind, _, rest = line.partition(" ")
        key, _, avg = rest.partition(" ")[0].partition("=")
        whole, _, frac = avg.partition(".")
        if key != "avg10" or len(frac) != 2:  # the kernel prints %lu.%02lu
            raise ValueError(line)
        avg_x100 = _int(section, whole, file) * 100 + _int(section, frac, file)
        yield f"psi_{file[: -len('.pressure')]}_{kind}_avg10_x100", avg_x100, False
    elif file == "io.stat":  # "8:0 rbytes=1 wbytes=2 rios=3 …", one line per device
        for pair in line.split()[1:]:
            key, _, value = pair.partition("=")
            if key in ("rbytes", "wbytes"):
                yield (
                    ("read_bytes" if key == "rbytes" else "write_bytes"),
                    _int(section, value, f"{file} {key}"),
                    True,
                )
    elif file == "blkio.throttle.io_service_bytes":  # "8:0 Read 4096" per device, "Total 0"
        _dev, op, value = line.split(" ", 2) if line[0].isdigit() else ("", "", "0")
        if not op:  # the Total line: the file exists, so no line means no I/O
            yield "read_bytes", 0, True
            yield "write_bytes", 0, True
            return
        yield ("read_bytes" if op == "Read" else "write_bytes"), _int(section, value, file), True
    else:
        key, _, value = line.partition(" ")
        yield from _keyed(section, file, key, value)


#: Keys of cpu.stat, memory.stat, memory.events and memory.oom_control -> (field, scale).
_KEYS = {
    "usage_usec": ("cpu_ns", 1000),
    "nr_periods": ("nr_periods", 1),
    "nr_throttled": ("nr_throttled", 1),
    "throttled_usec": ("throttled_ns", 1000),
    "throttled_time": ("throttled_ns", 1),
    "oom_kill": ("oom_kills", 1),
    # v1 memory.stat: the total_ keys count the whole subtree (`use_hierarchy`), and follow
    # the local ones, so they win.
    "anon": ("mem_anon", 1),
    "total_rss": ("mem_anon", 1),
    "file": ("mem_file", 1),
    "total_cache": ("mem_file", 1),
    "inactive_file": ("inactive_file", 1),
    "total_inactive_file": ("inactive_file", 1),
}


def _keyed(section: str, file: str, key: str, value: str) -> Iterator[tuple[str, int, bool]]:
    found = _KEYS.get(key)
    if found is not None:
        field, scale = found
        yield field, _int(section, value, f"{file} {key}") * scale, False


#: Files of one number, and the field each gives (most lines of the gauges' section).
_SINGLE = {
    "memory.current": "mem_usage", "memory.usage_in_bytes": "mem_usage",
    "cpuacct.usage": "cpuacct_ns", "pids.current": "pids",
}  # fmt: skip
#: Files of `key value` lines, read through _KEYS.
_KEYED = frozenset({"cpu.stat", "memory.stat", "memory.events", "memory.oom_control"})
_FILES = frozenset(COUNTER_FILES + GAUGE_FILES)


def _number(token: str) -> int:
    if not token.isdigit() or len(token) > MAX_DIGITS:
        raise ValueError(token)
    return int(token)


def _store(values: dict[str, int | None], section: str, file: str, line: str) -> None:
    """One kept line of `file` into its cgroup's values (ValueError when malformed)."""
    if file in _KEYED:
        key, _, token = line.partition(" ")
        hit = _KEYS.get(key)
        if hit is not None:
            values[hit[0]] = _number(token) * hit[1]
        return
    single = _SINGLE.get(file)
    if single is not None:
        values[single] = _number(line)
        return
    for field, value, summed in _fields(section, file, line):
        if summed and value is not None:
            values[field] = value + (values.get(field) or 0)
        else:
            values[field] = value


def parse_cgroups(text: str, section: str = "cgroup") -> dict[str, CgroupValues]:
    """Every cgroup's values by its path below the root (v1 controller mount stripped)."""
    found: dict[str, dict[str, int | None]] = {}
    version: dict[str, int] = {}
    by_path: dict[str, dict[str, int | None]] = {}  # as printed, mount included
    for raw in text.split("\n"):
        # `path/file:line`; a path with a ':' in it (an LXC name) takes the slow way.
        head, sep, line = raw.partition(":")
        path, _, file = head.rpartition("/")
        if not sep or file not in _FILES:
            m = _LINE_RE.match(raw)
            if m is None:
                continue
            path, file, line = m.group(1), m.group(2), m.group(3)
        values = by_path.get(path)
        if values is None:
            key = path[2:] if path.startswith("./") else path
            mount, _, rest = key.partition("/")
            v1 = mount in _V1_MOUNTS and bool(rest)
            key = rest if v1 else key
            values = found.get(key)
            if values is None:
                values = found[key] = {}
                version[key] = 1 if v1 else 2
            by_path[path] = values
        try:
            _store(values, section, file, line.rstrip("\r"))
        except ValueError:
            raise ProbeParseError(section, f"{file}: malformed line {line[:80]!r}") from None
    return {k: CgroupValues(version[k], v) for k, v in found.items()}


_DOCKER_NAME_RE = re.compile(r'/([0-9a-f]{64})/config\.v2\.json:"Name":"/([^"]*)"$')
_PODMAN_NAME_RE = re.compile(r'"id":"([0-9a-f]{64})","names":\["([^"]*)"')


def parse_names(text: str) -> dict[str, str]:
    """Container id -> name from Docker's config.v2.json and Podman's containers.json."""
    names: dict[str, str] = {}
    for line in text.splitlines():
        m = _DOCKER_NAME_RE.search(line)
        if m is not None:
            names[m.group(1)] = m.group(2)
            continue
        for pm in _PODMAN_NAME_RE.finditer(line):
            names[pm.group(1)] = pm.group(2)
    return names
