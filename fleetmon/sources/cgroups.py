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

#: Files read at each of the two samples (counters), and once after the second (gauges).
COUNTER_FILES = (
    "cpu.stat", "cpuacct.usage", "io.stat", "blkio.throttle.io_service_bytes",
    "memory.events", "memory.oom_control", "cpu.pressure", "memory.pressure", "io.pressure",
)  # fmt: skip
GAUGE_FILES = (
    "memory.current", "memory.max", "memory.stat", "pids.current",
    "memory.usage_in_bytes", "memory.limit_in_bytes",
)  # fmt: skip

#: Where runtimes put their containers' cgroups (a glob on the file's path): Docker
#: (docker-<id>.scope, docker/<id>), Podman (libpod-<id>), Kubernetes (kubepods…), LXC
#: (lxc.payload.<name>, lxc/<name>), systemd-nspawn and libvirt (machine.slice, machine/).
PATH_GLOBS = ("*/docker*", "*/libpod-*", "*/kubepods*", "*/lxc*", "*/machine*")
#: libvirt's per-vCPU and emulator sub-cgroups (libvirt 1.0+): the domain's own totals suffice.
SKIP_GLOB = "*/machine*/*/*/*"

#: The lines kept of those files (grep -E, so the probe sends no more than the parser
#: reads): single numbers and `max`, the named keys, `maj:min` device lines, PSI lines.
KEEP_RE = (
    "^([0-9]+|max)$"
    "|^(usage_usec|nr_periods|nr_throttled|throttled_usec|throttled_time|oom_kill"
    "|anon|file|inactive_file|total_rss|total_cache|total_inactive_file) "
    "|^[0-9]+:[0-9]+ (rbytes|Read|Write)|^Total "
    "|^(some|full) "
)


def find_command(files: tuple[str, ...]) -> str:
    """The sh command reading `files` of every container cgroup under $FM_CG in one pass."""
    names = " -o ".join(f"-name {f}" for f in files)
    paths = " -o ".join(f"-path '{g}'" for g in PATH_GLOBS)
    # `true`: grep exits 1 when a batch has no line to keep; only a missing root fails.
    return (
        f'(cd "$FM_CG" 2>/dev/null && {{ find . -maxdepth 7 -type f \\( {names} \\)'
        f" \\( {paths} \\) ! -path '{SKIP_GLOB}'"
        f" -exec grep -H -E '{KEEP_RE}' {{}} + 2>/dev/null; true; }})"
    )


#: Names without a daemon call: Docker's config.v2.json ("Name":"/web") and Podman's
#: container storage (containers.json: "id":"…","names":["web"], in that key order).
NAMES_COMMAND = (
    'grep -H -o \'"Name":"/[^"]*"\' /var/lib/docker/containers/*/config.v2.json'
    ' 2>/dev/null; grep -o \'"id":"[0-9a-f]*","names":\\["[^"]*"\''
    " /var/lib/containers/storage/overlay-containers/containers.json 2>/dev/null; true"
)

#: cgroup v1 controller mounts as the first path component (`cpu,cpuacct` is one mount).
_V1_MOUNTS = frozenset(
    {"cpu", "cpuacct", "cpu,cpuacct", "cpuacct,cpu", "memory", "blkio", "pids", "cpuset",
     "devices", "freezer", "net_cls", "net_prio", "net_cls,net_prio", "perf_event",
     "hugetlb", "rdma", "misc", "systemd", "unified", "name=systemd"}
)  # fmt: skip
_LINE_RE = re.compile(
    r"^\./(.*)/(" + "|".join(re.escape(f) for f in COUNTER_FILES + GAUGE_FILES) + r"):(.*)$",
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
    elif file.endswith(".pressure"):
        kind, _, rest = line.partition(" ")
        total = rest.rpartition("total=")[2]
        yield f"psi_{file[: -len('.pressure')]}_{kind}_us", _int(section, total, file), False
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


def parse_cgroups(text: str, section: str = "cgroup") -> dict[str, CgroupValues]:
    """Every cgroup's values by its path below the root (v1 controller mount stripped)."""
    found: dict[str, dict[str, int | None]] = {}
    version: dict[str, int] = {}
    for m in _LINE_RE.finditer(text):
        path, file, line = m.group(1), m.group(2), m.group(3).rstrip("\r")
        mount, _, rest = path.partition("/")
        v = 1 if mount in _V1_MOUNTS and rest else 2
        key = rest if v == 1 else path
        values = found.get(key)
        if values is None:
            values = found[key] = {}
            version[key] = v
        elif v == 2:
            version[key] = 2
        try:
            for field, value, summed in _fields(section, file, line):
                if summed and value is not None:
                    prev = values.get(field)
                    values[field] = value + (prev or 0)
                else:
                    values[field] = value
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
