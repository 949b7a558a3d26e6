"""Parse stage for Xen's toolstack output (pure): `xl list`, `xl info`, `xentop -b`.

Units: `xl list` Mem is MiB and Time(s) CPU seconds; `xl info` memory is MiB. xentop
(tools/xentop/xentop.c) prints in batch mode, per iteration, one header line then one line
per domain, no summary: MEM(k)/MAXMEM(k) in KiB (MAXMEM may be `no limit`), NETTX(k)/NETRX(k)
cumulative KiB (bytes/1024, truncated) of the domain's vifs as dom0 counts them (TX: sent
to the guest), VBD_* cumulative requests, 512-byte sectors and
out-of-request events (VBD_OO) (`-` when every VBD is in error), CPU(%) = 100·Δns/Δwall
since the previous iteration (0 in the first), over the time xentop measured (gettimeofday).
Without `-f` (older xentop) names are cut to 10 characters. The probe prints a `fm_uptime S`
line (dom0's /proc/uptime) as each iteration reaches it, before its header: the measured
seconds between the iterations, which the VBD_*/NET* rates divide by (xentop_stamps).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fleetmon.errors import ProbeParseError
from fleetmon.sources import to_float, to_int


@dataclass(frozen=True, slots=True)
class XlDomain:
    """One `xl list` line."""

    name: str
    domid: int
    mem_mib: int
    vcpus: int
    flags: str  # six state letters or dashes, xl order r b p s c d
    cpu_s: float


def xen_state(flags: str) -> str:
    """A domain's state in words from xl or xentop state letters (order differs: by letter).

    Dying and crashed win over shutdown and paused; `r` and `b` (running, or blocked
    waiting for an event) are both a running domain; all dashes is a runnable one.
    """
    for letter, state in (("d", "dying"), ("c", "crashed"), ("s", "shutdown"), ("p", "paused")):
        if letter in flags:
            return state
    return "running"


#: `xl list`'s first six headings (`xl claims` adds one).
_XL_HEADER = ["Name", "ID", "Mem", "VCPUs", "State", "Time(s)"]
#: A message of the toolstack's libraries (`libxl: error: libxl_utils.c:...: ...`,
#: `xc: error: ...`, `xenstore: ...`, xl's own `xl: ...`).
_MESSAGE_RE = re.compile(r"(libxl|libxc|xc|xl|xenstore|xencall|xenforeignmemory)\b[^:\s]*: ")


def parse_xl_list(text: str) -> tuple[XlDomain, ...]:
    """Every domain of `xl list` (the extra columns of `xl claims` are ignored).

    The probe merges xl's stderr into the section: lines before the header (`libxl:
    warning: ...`), and a message of the toolstack's among the domains (a domain going
    away while xl lists it), are passed over; any other line not shaped as a domain's is
    an error.
    """
    lines = [ln for ln in text.splitlines() if ln.strip()]
    start = next((i for i, ln in enumerate(lines) if ln.split()[:6] == _XL_HEADER), None)
    if start is None:
        named = [ln for ln in lines if ln.startswith("Name")]
        if named:
            raise ProbeParseError("xl_list", f"unexpected header {named[0][:80]!r}")
        raise ProbeParseError("xl_list", "no 'Name ID Mem VCPUs State Time(s)' header")
    header = lines[start].split()
    out = []
    for line in lines[start + 1 :]:
        # Names may hold spaces (a dying domain is "(null)"): split the numbers off the right.
        parts = line.rsplit(None, len(header) - 1)
        if len(parts) < 6 or not all(p.isascii() and p.isdigit() for p in parts[1:4]):
            if _MESSAGE_RE.match(line):
                continue
            raise ProbeParseError("xl_list", f"malformed line {line[:80]!r}")
        name, domid, mem, vcpus, flags, cpu = parts[:6]
        what = f"{name.strip()[:40]} "
        out.append(
            XlDomain(
                name.strip(),
                to_int("xl_list", domid, what + "ID"),
                to_int("xl_list", mem, what + "Mem"),
                to_int("xl_list", vcpus, what + "VCPUs"),
                flags,
                to_float("xl_list", cpu, what + "Time(s)"),
            )
        )
    return tuple(out)


@dataclass(frozen=True, slots=True)
class XlInfo:
    """The host as the hypervisor sees it (dom0's /proc sees only dom0)."""

    nr_cpus: int | None
    total_memory_bytes: int | None
    free_memory_bytes: int | None


def parse_xl_info(text: str) -> XlInfo:
    """`nr_cpus`, `total_memory`, `free_memory` (MiB) of `xl info`."""
    kv: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            kv.setdefault(key.strip(), value.strip())

    def num(key: str) -> int | None:
        value = kv.get(key, "")
        return to_int("xl_info", value, key) if value.isascii() and value.isdigit() else None

    cpus, total, free = num("nr_cpus"), num("total_memory"), num("free_memory")
    if cpus is None and total is None:
        raise ProbeParseError("xl_info", "no 'nr_cpus' or 'total_memory' line")
    mib = 1024 * 1024
    return XlInfo(
        cpus,
        total * mib if total is not None else None,
        free * mib if free is not None else None,
    )


@dataclass(frozen=True, slots=True)
class XentopRow:
    """One domain line of a xentop batch iteration; None for `-`, `no limit`, `n/a`."""

    name: str
    flags: str
    cpu_pct: float
    mem_kib: int | None
    maxmem_kib: int | None
    vcpus: int | None
    nets: int | None
    nettx_kib: int | None
    netrx_kib: int | None
    vbd_rd: int | None
    vbd_wr: int | None
    vbd_rsect: int | None
    vbd_wsect: int | None
    #: VBD_OO: times the domain's block backend ran out of request slots (blkback oo_req,
    #: summed over its VBDs); None with a `-`, or a xentop without the column.
    vbd_oo: int | None = None


_NUM_RE = re.compile(r"^[0-9]+(\.[0-9]+)?$")
#: A heading of xentop.c's batch mode: NAME, STATE, CPU(sec), CPU(%), MEM(k), VBD_OO...
_HEADING_RE = re.compile(r"[A-Z][A-Z_]*(\((k|%|sec)\))?")
#: A domain's state in xentop: six letters d s b c p r, a dash for each one not set.
_STATE_RE = re.compile(r"[-dsbcpr]{6}")


def _is_header(tokens: list[str]) -> bool:
    """Whether a line is xentop's header by its whole shape: NAME, STATE, then headings
    only, CPU(%) among them (a domain named NAME has state letters and numbers after it)."""
    return (
        tokens[:2] == ["NAME", "STATE"]
        and "CPU(%)" in tokens
        and all(_HEADING_RE.fullmatch(t) for t in tokens)
    )


def _row(header: list[str], line: str) -> XentopRow | None:
    """A domain line of the table; None for a line that is not one (too few cells, or no
    state letters where STATE is: a message of xentop's or libxl's, merged from stderr)."""
    tokens = line.split()
    if len(tokens) < len(header):
        return None
    values: dict[str, str] = {}
    for col in reversed(header[1:]):
        value = tokens.pop()
        # print_maxmem prints the two words "no limit" for an unlimited domain.
        if col == "MAXMEM(k)" and value == "limit" and tokens and tokens[-1] == "no":
            value = "no " + tokens.pop()
        values[col] = value
    if not tokens or not _STATE_RE.fullmatch(values["STATE"]):
        return None

    def num(col: str) -> int | None:
        value = values.get(col)
        if value is None or not value.isascii() or not value.isdigit():
            return None
        return to_int("xentop", value, col)

    cpu = values.get("CPU(%)", "")
    if not _NUM_RE.match(cpu):
        raise ProbeParseError("xentop", f"malformed line {line[:80]!r}")
    return XentopRow(
        name=tokens[0] if len(tokens) == 1 else _spaced(line, tokens),
        flags=values["STATE"],
        cpu_pct=to_float("xentop", cpu, "CPU(%)"),
        mem_kib=num("MEM(k)"),
        maxmem_kib=num("MAXMEM(k)"),
        vcpus=num("VCPUS"),
        nets=num("NETS"),
        nettx_kib=num("NETTX(k)"),
        netrx_kib=num("NETRX(k)"),
        vbd_rd=num("VBD_RD"),
        vbd_wr=num("VBD_WR"),
        vbd_rsect=num("VBD_RSECT"),
        vbd_wsect=num("VBD_WSECT"),
        vbd_oo=num("VBD_OO"),
    )


def _spaced(line: str, words: list[str]) -> str:
    """The name made of `words`, the line's first ones, with its own spacing (`my  dom`,
    as xl lists it: joined with one space it would match no xl name)."""
    start = end = len(line) - len(line.lstrip())
    for word in words:
        end = line.index(word, end) + len(word)
    return line[start:end]


def parse_xentop(text: str) -> tuple[tuple[XentopRow, ...], ...]:
    """The iterations of `xentop -b` output, each a tuple of domain rows.

    The probe merges xentop's stderr into the section: lines that are not part of its
    table (before the first header, or not shaped as a domain line) are passed over. A
    domain line with a CPU(%) that is not a number, or text without any header, is an error.
    """
    blocks: list[list[XentopRow]] = []
    header: list[str] | None = None
    first: str | None = None
    for line in text.splitlines():
        tokens = line.split()
        if not tokens:
            continue
        first = first if first is not None else line
        if _is_header(tokens):
            header = tokens
            blocks.append([])
        elif header is not None and (row := _row(header, line)) is not None:
            blocks[-1].append(row)
    if first is not None and header is None:
        raise ProbeParseError("xentop", f"no NAME STATE ... header in {first[:80]!r}")
    return tuple(tuple(b) for b in blocks)


#: The line the probe prints before each xentop iteration's header (collect/probe.py).
STAMP = "fm_uptime"


def xentop_stamps(text: str) -> tuple[float | None, ...]:
    """Per xentop iteration (header), dom0's /proc/uptime seconds on the `fm_uptime` line
    the probe printed just before its header; None for a header without one (an older
    probe, or a stamp not followed by a header: a domain line looking like one)."""
    stamps: list[float | None] = []
    pending: float | None = None
    for line in text.splitlines():
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) == 2 and tokens[0] == STAMP:
            pending = float(tokens[1]) if _NUM_RE.match(tokens[1]) else None
            continue
        if _is_header(tokens):
            stamps.append(pending)
        pending = None
    return tuple(stamps)
