"""Simulator (edge, reads package data): the real captures every simulated host is built from.

A pair of consecutive captures becomes a `CounterText`: the second capture's layout with, for
each integer field, its per-second rate, so a host's file can be advanced to any uptime.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources

#: A rendered text part: literal text, or (value in the capture, rate per second).
Part = str | tuple[int, float]

_FIELD_RE = re.compile(r"(\s+)")
_INT_FIELD_RE = re.compile(r"^([A-Za-z_]\w*=)?(\d+)$")

#: sysstat root1 -> root2: `/proc/uptime` went from 7192.55 to 7223.72.
SYSSTAT_UPTIME_S = 7223.72
SYSSTAT_DT_S = 7223.72 - 7192.55

#: /proc/diskstats fields (1-based) the kernel prints as 32-bit and that therefore wrap:
#: the millisecond times (Documentation/ABI/testing/procfs-diskstats).
DISKSTATS_WRAP_FIELDS = frozenset({7, 11, 13, 14, 18, 20})


def read_capture(path: str) -> str:
    """A capture file shipped in fleetmon/sim/data, as text."""
    return (resources.files("fleetmon.sim") / "data" / path).read_text(encoding="utf-8")


def _key(line: str) -> str:
    for fld in line.split():
        if any(c.isalpha() for c in fld):
            return fld
    return line


@dataclass(frozen=True, slots=True)
class CounterText:
    """A /proc-style file as two real samples: its layout and each integer field's rate."""

    lines: tuple[tuple[tuple[Part, ...], frozenset[int]], ...]

    def render(self, scale: float, since_s: float) -> str:
        """The file `since_s` seconds after the second capture, rates multiplied by `scale`."""
        out: list[str] = []
        factor = scale * since_s
        for parts, wrap in self.lines:
            text: list[str] = []
            for i, part in enumerate(parts):
                if isinstance(part, str):
                    text.append(part)
                    continue
                value = part[0] + int(part[1] * factor)
                text.append(str(value % 2**32 if i in wrap else value))
            out.append("".join(text))
        return "".join(out)


def _fields(line: str) -> list[str]:
    return _FIELD_RE.split(line)


def counter_text(
    first: str,
    second: str,
    dt_s: float,
    *,
    keep: Callable[[str], bool] = lambda line: True,
    wrap_fields: Iterable[int] = (),
) -> CounterText:
    """Pair the lines of two captures by their first word with a letter; rates are >= 0."""
    before = {_key(line): _fields(line) for line in first.splitlines()}
    wrap_set = frozenset(wrap_fields)
    lines = []
    for line in second.splitlines(keepends=True):
        if not keep(line):
            continue
        body = line.rstrip("\n")
        fields = _fields(body)
        old = before.get(_key(body))
        same_shape = old is not None and len(old) == len(fields)
        parts: list[Part] = []
        wrap_idx: set[int] = set()
        field_no = 0
        for idx, fld in enumerate(fields):
            if fld == "" or fld.isspace():
                parts.append(fld)
                continue
            field_no += 1
            m = _INT_FIELD_RE.match(fld)
            if m is None:
                parts.append(fld)
                continue
            if m.group(1):
                parts.append(m.group(1))
            v2 = int(m.group(2))
            rate = 0.0
            if same_shape and old is not None:
                m1 = _INT_FIELD_RE.match(old[idx])
                if m1 is not None:
                    # A counter that went down in the capture is an edit or a gauge: hold it.
                    rate = max(0, v2 - int(m1.group(2))) / dt_s
            if field_no in wrap_set:
                wrap_idx.add(len(parts))
            parts.append((v2, rate))
        parts.append(line[len(body) :])
        lines.append(_fold(parts, wrap_idx))
    return CounterText(tuple(lines))


def _fold(parts: list[Part], wrap: set[int]) -> tuple[tuple[Part, ...], frozenset[int]]:
    # Fields that do not move become text, and neighbouring text is joined: the long
    # all-zero `intr` line then renders as a few parts.
    out: list[Part] = []
    out_wrap: set[int] = set()
    for i, part in enumerate(parts):
        if not isinstance(part, str) and part[1] == 0.0:
            part = str(part[0])
        if isinstance(part, str):
            if out and isinstance(out[-1], str):
                out[-1] += part
            else:
                out.append(part)
            continue
        if i in wrap:
            out_wrap.add(len(out))
        out.append(part)
    return tuple(out), frozenset(out_wrap)


@dataclass(frozen=True, slots=True)
class Domain:
    """One `virsh domstats --raw` record of the lab capture: (key, sample-1, sample-2) text."""

    name: str
    fields: tuple[tuple[str, str, str], ...]


#: The probe's `virsh domstats` options (collect/probe.py FM_STATS) and the fields each gives.
DOMSTATS_GROUPS = {"--state": "state.", "--cpu-total": "cpu.", "--balloon": "balloon.",
                   "--vcpu": "vcpu.", "--interface": "net.", "--block": "block."}  # fmt: skip


def parse_domstats_pair(first: str, second: str) -> tuple[Domain, ...]:
    """Pair the records of two `domstats --raw` captures by domain name, with the fields of
    the groups the probe asks for: the lab's captures have every group (dirtyrate.*...)."""
    asked = tuple(DOMSTATS_GROUPS.values())

    def records(text: str) -> dict[str, list[tuple[str, str]]]:
        out: dict[str, list[tuple[str, str]]] = {}
        current: list[tuple[str, str]] = []
        for line in text.splitlines():
            if line.startswith("Domain: '"):
                current = out.setdefault(line[len("Domain: '") : -1], [])
            elif "=" in line:
                key, _, value = line.strip().partition("=")
                if key.startswith(asked):
                    current.append((key, value))
        return out

    one, two = records(first), records(second)
    domains = []
    for name, fields in two.items():
        old = dict(one.get(name, []))
        domains.append(Domain(name, tuple((k, old.get(k, v), v) for k, v in fields)))
    return tuple(domains)


@dataclass(frozen=True, slots=True, eq=False)
class Captures:
    """Everything the simulator renders hosts from."""

    stat: CounterText  # the non-CPU lines of /proc/stat (intr, ctxt, processes, softirq...)
    meminfo: str
    vmstat: CounterText
    diskstats: CounterText
    net_dev: CounterText
    pressure: tuple[tuple[str, CounterText], ...]  # (cpu|io|memory, its counters)
    domains: tuple[Domain, ...]
    domstats_dt_s: float
    nodeinfo: str
    xl_list: str
    xl_info: str


def _sysstat_pair(
    name: str,
    *,
    keep: Callable[[str], bool] = lambda line: True,
    wrap_fields: Iterable[int] = (),
) -> CounterText:
    return counter_text(
        read_capture(f"sysstat/root1/proc/{name}"),
        read_capture(f"sysstat/root2/proc/{name}"),
        SYSSTAT_DT_S,
        keep=keep,
        wrap_fields=wrap_fields,
    )


@cache
def load_captures() -> Captures:
    """Read and pair the shipped captures (once per process)."""
    lab = "lab-libvirt9-qemu7-tcg"
    t1 = float(read_capture(f"{lab}/sample1/timestamp.txt"))
    t2 = float(read_capture(f"{lab}/sample2/timestamp.txt"))
    return Captures(
        # The per-CPU lines are generated from each host's load; cpuN lines come and go in
        # sysstat's edit (hotplug tests), so only the other lines are taken.
        stat=_sysstat_pair("stat", keep=lambda line: not line.startswith(("cpu", "procs_"))),
        meminfo=read_capture("sysstat/root2/proc/meminfo"),
        vmstat=_sysstat_pair("vmstat"),
        # sysstat's `sds` line has 17 fields on purpose (a malformed-line test): left out.
        diskstats=_sysstat_pair(
            "diskstats",
            keep=lambda line: len(line.split()) != 17,
            wrap_fields=DISKSTATS_WRAP_FIELDS,
        ),
        net_dev=_sysstat_pair("net/dev"),
        pressure=tuple((k, _sysstat_pair(f"pressure/{k}")) for k in ("cpu", "io", "memory")),
        domains=parse_domstats_pair(
            read_capture(f"{lab}/sample1/domstats--raw.txt"),
            read_capture(f"{lab}/sample2/domstats--raw.txt"),
        ),
        domstats_dt_s=t2 - t1,
        nodeinfo=read_capture(f"{lab}/sample2/nodeinfo.txt"),
        xl_list=read_capture("ganeti/test/data/xen-xl-list-4.0.1-four-instances.txt"),
        xl_info=read_capture("ganeti/test/data/xen-xl-info-4.0.1.txt"),
    )
