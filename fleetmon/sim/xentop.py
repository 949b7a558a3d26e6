# ruff: noqa: UP031 -- printf-style on purpose: each cell mirrors a format of xentop.c
"""Simulator (pure): `xentop -b -f -i 2 -d D` of a simulated Xen host.

No capture of a real xentop exists to clone (tests/bin/xen-standins/synth_xentop.py says
why): the lines follow the printf formats of xen-project/xen tools/xentop/xentop.c in batch
mode (a header per iteration, rows sorted by name, CPU(%) 0 in the first iteration, then
100·Δns/Δwall). A guest's disk and network counters (and VBD_OO, from its writes) grow at the
rates of the lab domain its KVM twin is cloned from (times its io_scale), so Xen and KVM
guests look alike.
"""

from __future__ import annotations

import math

from fleetmon.sim.captures import Captures
from fleetmon.sim.hosts import HostProfile, VmProfile
from fleetmon.sim.render import Moment
from fleetmon.sources.xen import STAMP

FIELDS = (
    ("NAME", 10), ("STATE", 6), ("CPU(sec)", 10), ("CPU(%)", 6), ("MEM(k)", 10),
    ("MEM(%)", 6), ("MAXMEM(k)", 10), ("MAXMEM(%)", 9), ("VCPUS", 5), ("NETS", 4),
    ("NETTX(k)", 8), ("NETRX(k)", 8), ("VBDS", 4), ("VBD_OO", 8), ("VBD_RD", 8),
    ("VBD_WR", 8), ("VBD_RSECT", 10), ("VBD_WSECT", 10), ("SSID", 4),
)  # fmt: skip
#: The lab capture's counters each xentop column is grown from: (column, key, scale).
_IO = (
    # libvirt's net.N counts are the guest's; xentop's are its vifs' in dom0: swapped.
    ("NETTX(k)", "net.0.rx.bytes", 1 / 1024),
    ("NETRX(k)", "net.0.tx.bytes", 1 / 1024),
    ("VBD_RD", "block.0.rd.reqs", 1.0),
    ("VBD_WR", "block.0.wr.reqs", 1.0),
    ("VBD_RSECT", "block.0.rd.bytes", 1 / 512),
    ("VBD_WSECT", "block.0.wr.bytes", 1 / 512),
    # blkback runs out of request slots (VBD_OO) under bursts of writes: one time in four
    # writes here, so that the column moves like the others.
    ("VBD_OO", "block.0.wr.reqs", 1 / 4),
)


def _io(cap: Captures, vm: VmProfile, t_vm: float) -> dict[str, int]:
    """A guest's cumulative network KiB, disk requests and sectors after `t_vm` seconds."""
    fields = {k: (v1, v2) for k, v1, v2 in cap.domains[vm.template % len(cap.domains)].fields}
    out = {}
    for col, key, scale in _IO:
        v1, v2 = fields.get(key, ("0", "0"))
        rate = max(0, int(v2) - int(v1)) / cap.domstats_dt_s * vm.io_scale
        out[col] = int((int(v2) + rate * t_vm) * scale)
    return out


def _width(n: int) -> int:
    return int(math.log10(max(n, 1)) + 1)  # xentop.c INT_FIELD_WIDTH


def _block(host: HostProfile, cap: Captures, at: Moment, dt: float | None) -> str:
    """One iteration; `dt` is the seconds since the previous one (None: the first)."""
    total_k = host.hv_mem_mib * 1024
    t = at.uptime(host)
    dom0 = host.busy_share + 0.02  # as the xl list of the same host says
    rows: list[tuple[str, str, float, int, int, int | None, int, dict[str, int], int, float]]
    rows = [("Domain-0", "-----r", t * host.cpus * dom0, host.cpus, host.mem_kib, None, 0,
             dict.fromkeys((col for col, _k, _s in _IO), 0), 0, dom0)]  # fmt: skip
    for vm in host.vms:
        if vm.running:
            state = "-----r" if vm.cpu_share > 0.5 else "--b---"
            t_vm = vm.age_s + at.since_start_s
            cpu_s = t_vm * vm.vcpus * vm.cpu_share
            io = _io(cap, vm, t_vm)
            rows.append((vm.name, state, cpu_s, vm.vcpus, vm.mem_kib, vm.mem_kib + 1024, 1, io, 1,
                         vm.cpu_share))  # fmt: skip
    widths = dict(FIELDS)
    widths["NAME"] = max(widths["NAME"], *(len(r[0]) for r in rows))
    for r in rows:
        for col in r[7]:
            widths[col] = max(widths[col], _width(r[7][col] + 1))
    lines = [" ".join("%*s" % (widths[h], h) for h, _ in FIELDS)]
    for row in sorted(rows, key=lambda r: r[0].lower()):
        name, st, cpu_s, vcpus, mem, maxm, nets, io, vbds, share = row
        pct = 0.0 if dt is None else 100.0 * vcpus * share
        cells = [
            "%*s" % (widths["NAME"], name), st, "%10d" % cpu_s, "%6.1f" % pct, "%10d" % mem,
            "%6.1f" % (mem / total_k * 100),
            "%10s" % "no limit" if maxm is None else "%10d" % maxm,
            "%9s" % "n/a" if maxm is None else "%9.1f" % (maxm / total_k * 100),
            "%5d" % vcpus, "%4d" % nets,
            *("%*d" % (widths[c], io[c]) for c in ("NETTX(k)", "NETRX(k)")),
            "%4d" % vbds, "%*d" % (widths["VBD_OO"], io["VBD_OO"]),
            *("%*d" % (widths[c], io[c]) for c in ("VBD_RD", "VBD_WR", "VBD_RSECT", "VBD_WSECT")),
            "%4d" % 0,
        ]  # fmt: skip
        lines.append(" ".join(cells))
    return "\n".join(lines)


def render_xentop(cap: Captures, host: HostProfile, at: Moment, delay_s: int) -> str:
    """Both iterations: at `at`, and `delay_s` seconds later, each after the `fm_uptime`
    line the probe stamps it with (its /proc/uptime then, as the simulated uptime shows)."""
    later = Moment(at.since_start_s + delay_s, at.epoch_s + delay_s)
    return "".join(
        f"{STAMP} {moment.uptime(host):.2f}\n{_block(host, cap, moment, dt)}\n"
        for moment, dt in ((at, None), (later, float(delay_s)))
    )
