"""Parse stage for container cgroups (pure): a cgroup section, as awk_read's columns or
as the probes before it printed it, as each cgroup's values.

The probes before awk_read's columns printed a line a cgroup, `<path>\t<key>=<value> ...`
(read_compact); those before them ran `grep -s -H -E RE <files>` under the cgroup root:
one line per kept line of every file, `[./]<cgroup path>/<file>:<line>`, cgroup v1 paths
starting with the controller's mount (`memory/docker/<id>/memory.stat`), which the parser
strips. Raw folders saved then (`--save-raw`) and the captures made with them are read
here; units as in sources/cgroups.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping

from fleetmon.errors import ProbeParseError
from fleetmon.sources import MAX_DIGITS
from fleetmon.sources.cgroupcols import read_columns
from fleetmon.sources.cgroups import (
    COMPACT_HEAD,
    COUNTER_FILES,
    FILE_OF,
    GAUGE_FILES,
    KEYED_FIELDS,
    KEYED_HEAD,
    SHORT_OF,
    SINGLE_FIELDS,
    SUMMED,
    TOKENS,
    UNLIMITED,
    CgroupValues,
    named,
)

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
    elif file == "freezer.state":  # THAWED, FREEZING, FROZEN (cgroups.py _AWK_FREEZER)
        if line not in ("THAWED", "FREEZING", "FROZEN"):
            raise ValueError(line)
        yield "frozen", int(line != "THAWED"), False
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


def _keyed(section: str, file: str, key: str, value: str) -> Iterator[tuple[str, int, bool]]:
    found = KEYED_FIELDS.get(key)
    if found is not None:
        field, scale = found
        yield field, _int(section, value, f"{file} {key}") * scale, False


#: Files of `key value` lines, read through KEYED_FIELDS (single-number files through
#: SINGLE_FIELDS: most lines of the gauges' section).
_KEYED = frozenset(
    {"cpu.stat", "memory.stat", "memory.events", "memory.oom_control", "cgroup.events"}
)
_FILES = frozenset(COUNTER_FILES + GAUGE_FILES)


def _number(token: str) -> int:
    if not token.isdigit() or len(token) > MAX_DIGITS:
        raise ValueError(token)
    return int(token)


def _store(values: dict[str, int | None], section: str, file: str, line: str) -> None:
    """One kept line of `file` into its cgroup's values (ValueError when malformed)."""
    if file in _KEYED:
        key, _, token = line.partition(" ")
        hit = KEYED_FIELDS.get(key)
        if hit is not None:
            values[hit[0]] = _number(token) * hit[1]
        return
    single = SINGLE_FIELDS.get(file)
    if single is not None:
        values[single] = _number(line)
        return
    for field, value, summed in _fields(section, file, line):
        if summed and value is not None:
            values[field] = value + (values.get(field) or 0)
        else:
            values[field] = value


def parse_cgroup_lines(text: str, section: str = "cgroup") -> dict[str, CgroupValues]:
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


def compact(values: Mapping[str, int | None]) -> dict[str, int | None]:
    """One cgroup's values as read_compact keeps them (the short keys, the files' units)."""
    out: dict[str, int | None] = {}
    for field, v in values.items():
        key, scale = SHORT_OF[field]
        out[key] = v if v is None or scale == 1 else v // scale
    return out


def _tokens(rest: str, path: str, section: str) -> dict[str, int | None]:
    """One line's `key=value` tokens, one by one: per-device sums added up, a limit of `max`
    None, a key of a later probe kept when its value is a number and else passed over
    (ProbeParseError naming the file when a known key's value is malformed)."""
    values: dict[str, int | None] = {}
    for token in rest.split(" "):
        key, _, value = token.partition("=")
        try:
            if key in TOKENS:
                values[key] = _number(value)
            elif key in SUMMED:  # one device: a number; more: joined by +
                values[key] = sum(_number(t) for t in value.split("+"))
            elif key == "l":
                values[key] = None if value == "max" else _number(value)
            elif value.isdigit() and len(value) <= MAX_DIGITS:
                values[key] = int(value)
        except ValueError:
            file = FILE_OF.get(key, "?")
            raise ProbeParseError(
                section, f"{file}: malformed value {token[:80]!r} of {path[:120]!r}"
            ) from None
    return values


def read_compact(
    text: str, section: str = "cgroup"
) -> tuple[int, dict[str, dict[str, int | None]]]:
    """The cgroup version and every cgroup's values by its path below the root, from the
    lines of the probes before awk_read's columns (`<path>\t<key>=<value> ...`, a raw
    folder saved then), keyed by the short keys in the files' own units (`u` and `tu` µs,
    `ca` and `tn` ns; `l` None for no limit, a v1 limit at or above UNLIMITED as printed;
    `r`, `w` summed over the devices). A v1 container's mounts give one line each, merged
    here. Lines without a tab (a shell's error) are passed over; a malformed value of a
    known key is a ProbeParseError naming its file (_tokens)."""
    lines = text.split("\n")
    version = 1 if lines[0] == COMPACT_HEAD + "1" else 2
    paths: list[str] = []
    lined: list[dict[str, int | None]] = []
    for line in lines[1:]:
        path, tab, rest = line.partition("\t")
        if tab:
            paths.append(path)
            lined.append(_tokens(rest, path, section))
    return version, _merged(paths, lined)


def _merged(
    paths: list[str], lined: Iterable[dict[str, int | None]]
) -> dict[str, dict[str, int | None]]:
    """Each line's values by its path, a path's later lines (a v1 container's next mounts)
    merged in."""
    found: dict[str, dict[str, int | None]] = {}
    for path, values in zip(paths, lined, strict=True):
        old = found.get(path)
        if old is None:
            found[path] = values
        else:
            old.update(values)
    return found


#: One cgroup's values by the awk's short keys, in the files' units (sources/cgroups.py).
Values = Mapping[str, int | None]


def section_values(text: str, section: str) -> tuple[dict[str, Values], dict[str, int]]:
    """Each cgroup's values (short keys; no key for a value it lacks) and cgroup version,
    by its path: from awk_read's columns, or an earlier probe's lines (a raw folder saved
    then)."""
    if text.startswith(KEYED_HEAD):
        cols = read_columns(text, section)
        values = cols.values.items()
        found: dict[str, Values] = {
            path: {k: v[i] for k, v in values if v[i] is not None}
            for i, path in enumerate(cols.paths)
        }
        return found, dict.fromkeys(found, cols.version)
    if not text or text.startswith(COMPACT_HEAD):
        version, lined = read_compact(text, section)
        return dict(lined), dict.fromkeys(lined, version)
    parsed = parse_cgroup_lines(text, section)
    return (
        {path: compact(v.values) for path, v in parsed.items()},
        {path: v.version for path, v in parsed.items()},
    )


def parse_cgroups(text: str, section: str = "cgroup") -> dict[str, CgroupValues]:
    """Every cgroup's values by its path below the root, by field name (section_values)."""
    found, versions = section_values(text, section)
    return {k: CgroupValues(versions[k], named(v)) for k, v in found.items()}
