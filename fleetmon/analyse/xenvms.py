"""Deltas stage for Xen guests (pure): VM rows and hv.* figures from `xl list` (both samples),
`xl info` and two xentop iterations, else VM CPU from xl list's Time(s); stub domains are rows,
not VMs. Formulas of METRICS.md; a failed Xen tool costs the VMs, never the host.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from fleetmon.analyse.hv import RUNNING, few, hv_metrics, share
from fleetmon.analyse.vmcommon import (
    MIB,
    XEN_VM_METRICS,
    VmResult,
    failed,
    not_reported,
    probe_meta,
    rate,
)
from fleetmon.errors import ProbeParseError
from fleetmon.model import MetricValue, Row
from fleetmon.model.stubs import STUB_OF, STUB_SERVICE
from fleetmon.sources import virsh, xen
from fleetmon.sources.sections import ProbeOutput


def compute_xen(
    out: ProbeOutput, host_cpus: int | None, host_mem_bytes: int | None, dt: float | None
) -> VmResult:
    """The Xen guests of a dom0's probe output (`host_cpus` and `host_mem_bytes` are
    dom0's own, used only where xl info is missing)."""
    reason = failed(out, 2, "xl_list")
    if reason:
        return not_reported("xen", reason)
    info, note = _xl_info(out)
    cpus = info.nr_cpus or host_cpus
    mem = info.total_memory_bytes or host_mem_bytes
    # None: sample 1's xl list failed, so nobody can say which guests are new.
    before = out.parsed(1, "xl_list", xen.parse_xl_list)
    # Domain 0 is the host itself (its figures are the host's), not a guest.
    guests = [d for d in out.parsed(2, "xl_list", xen.parse_xl_list) or () if d.domid != 0]
    blocks, top_fail, top_notes = _xentop(out, before is not None and bool(dt))
    # Without xentop, xl list's Time(s) in both samples still gives each guest's CPU over
    # the probe's Δt (the script sleeps instead), but nothing gives disk or network.
    list_cpu = bool(top_fail) and before is not None and bool(dt)
    rows, nic_vm, notes, untopped = _guest_rows(out, guests, before, blocks, list_cpu, cpus, dt)
    max_from = "xentop unavailable" if top_fail else _max_from(rows, untopped)
    hv, hv_notes = hv_metrics(rows, cpus, mem, max_from)
    return VmResult(
        vms=tuple(rows),
        hv_metrics=hv,
        nic_vm=nic_vm,
        notes=(note, *top_notes, *notes, *hv_notes),
        hypervisor="xen",
        host_cpus=info.nr_cpus,
        host_mem_bytes=info.total_memory_bytes,
    )


def _max_from(rows: list[Row], untopped: set[str]) -> str:
    """Why running guests' maximum memory is unknown, xentop having run: its MAXMEM
    says no limit, or it has no line for them."""
    unknown = [
        r.name
        for r in rows
        if r.metrics.get("vm.state") in RUNNING and r.metrics.get("vm.mem_max_bytes") is None
    ]
    missing = [n for n in unknown if n in untopped]
    causes = ["xentop's MAXMEM says no limit"] if len(missing) < len(unknown) else []
    if missing:
        causes.append(f"no line for {few(missing)} in xentop's last iteration")
    return "; ".join(causes)


def _xl_info(out: ProbeOutput) -> tuple[xen.XlInfo, str]:
    """The machine's capacity from xl info (dom0's /proc describes dom0 only), and a note."""
    info_text = out.text(0, "xl_info")
    if not info_text:
        note = f"Xen dom0: /proc describes dom0 only, and {failed(out, 0, 'xl_info')}"
        return xen.XlInfo(None, None, None), note
    info = xen.parse_xl_info(info_text)
    return info, (
        "Xen dom0: /proc describes dom0 only; host capacity from xl info "
        f"({info.nr_cpus} CPUs, {(info.total_memory_bytes or 0) // MIB} MiB)"
    )


def _xentop(
    out: ProbeOutput, list_cpu_possible: bool
) -> tuple[tuple[tuple[xen.XentopRow, ...], ...], str | None, list[str]]:
    """xentop's iterations, why they cannot be used (None: they can), and the notes."""
    top_fail = failed(out, 0, "xentop")
    blocks: tuple[tuple[xen.XentopRow, ...], ...] = ()
    if top_fail is None:
        try:
            blocks = xen.parse_xentop(out.text(0, "xentop") or "")
        except ProbeParseError as exc:  # xl list still lists the guests: lose only xentop
            top_fail = f"xentop output unreadable: {str(exc).removeprefix('section xentop: ')}"
    if top_fail is None and len(blocks) < 2:
        top_fail = f"xentop printed {len(blocks)} iteration(s), 2 needed"
    if not top_fail:
        return blocks, None, []
    if list_cpu_possible:
        return (
            blocks,
            top_fail,
            [
                "VM CPU figures from xl list's Time(s) (0.1 s resolution) because xentop was"
                f" unavailable ({top_fail}); VM disk and network rates not reported"
            ],
        )
    why = [top_fail]
    if out.parsed(1, "xl_list", xen.parse_xl_list) is None:
        why.append(failed(out, 1, "xl_list") or "")
    return blocks, top_fail, ["VM rates not reported: " + ", and ".join(why)]


def _guest_rows(
    out: ProbeOutput,
    guests: list[xen.XlDomain],
    before: tuple[xen.XlDomain, ...] | None,
    blocks: tuple[tuple[xen.XentopRow, ...], ...],
    list_cpu: bool,
    cpus: int | None,
    dt: float | None,
) -> tuple[list[Row], dict[str, str], list[str], set[str]]:
    """Each guest's row, the host's vif ports -> guest, the notes on guests, and the
    guests xentop (having run) has no line for in its last iteration."""
    top_dt = _top_interval(out, dt)
    top = len(blocks) >= 2
    first, unclear = _match(blocks[-2], guests) if top else ({}, set())
    second, unclear2 = _match(blocks[-1], guests) if top else ({}, set())
    unclear |= unclear2
    untopped: set[str] = set()
    olds, gone = _pairs(before, guests)
    subject = _subjects(guests)
    stubs = _stubs(guests, subject)
    rows: list[Row] = []
    nic_vm: dict[str, str] = {}
    notes: list[str] = []
    for d in guests:
        name, old = subject[d.domid], olds.get(d.domid)
        t1, t2 = first.get(d.domid), second.get(d.domid)
        if before is not None and old is None:
            notes.append(f"VM {name} started between the samples: no rates for it")
            t1 = None
        elif old is not None and (old.domid != d.domid or d.cpu_s < old.cpu_s):
            # Xen gives a new domain a new ID; its Time(s) starts again from 0.
            notes.append(f"VM {name} restarted between the samples: no rates for it")
            t1 = old = None
        elif top and (t1 is None or t2 is None) and xen.xen_state(d.flags) == "running":
            notes.append(_top_gap(name, t1, t2, d.domid in unclear))
        if top and t2 is None:
            untopped.add(name)
        # Time(s) is printed with one decimal: round the Δ back to it (5626.7 - 5624.2).
        cpu_s = round(d.cpu_s - old.cpu_s, 1) if list_cpu and old is not None else None
        m, back = _xen_vm(d, t1, t2, cpus, top_dt)
        if back:
            notes.append(
                f"VM {name}: xentop's {', '.join(back)} went down between its two"
                f" iterations: no rate from {'it' if len(back) == 1 else 'them'}"
            )
        if cpu_s is not None and dt:
            # A guest cannot run longer than VCPUS·Δt: any excess is Time(s)'s rounding.
            cpu_s = min(cpu_s, d.vcpus * dt)
            m["vm.cpu_pct"] = share(100.0 * cpu_s / (d.vcpus * dt)) if d.vcpus else None
            m["vm.cpu_host_pct"] = share(100.0 * cpu_s / (cpus * dt)) if cpus else None
        rows.append(Row(name, m, stubs.get(d.domid, {})))
        # NETS is the host's word: never more ports than a domain can have (MAX_DEVICES).
        nets = min(t2.nets, virsh.MAX_DEVICES) if t2 and t2.nets is not None else 1
        for i in range(nets):  # netback names a guest's ports vif<domid>.<n> (-emu for HVM)
            nic_vm[f"vif{d.domid}.{i}"] = nic_vm[f"vif{d.domid}.{i}-emu"] = name
    notes += [f"VM {n} disappeared between the samples" for n in gone]
    if stubs:
        notes.append(_stub_note([(subject[i], labels) for i, labels in stubs.items()]))
    return rows, nic_vm, notes, untopped


#: The Xenstore stub domain's name: tools/helpers/init-xenstore-domain.c names the domain it
#: builds "Xenstore" (and no guest can hold a name a running domain has: xl refuses it).
XENSTORE_STUBDOM = "Xenstore"


def _stubs(guests: Sequence[xen.XlDomain], subject: dict[int, str]) -> dict[int, dict[str, str]]:
    """The labels of the stub domains among `guests`, by ID: `stub_of` the guest whose
    device model it runs (libxl names an HVM guest's stub domain `<guest>-dm`,
    libxl__stub_dm_name; only where that guest is listed too: `db-dm` alone is a guest
    of its own), `service` for Xen's own service domain (the Xenstore stub domain).
    xl list and xentop list them as domains like any other; they are not guests."""
    by_name = {d.name: d for d in guests}
    out: dict[int, dict[str, str]] = {}
    for d in guests:
        served = by_name.get(d.name.removesuffix("-dm")) if d.name.endswith("-dm") else None
        if d.name == XENSTORE_STUBDOM:
            out[d.domid] = {STUB_SERVICE: "xenstore"}
        elif served is not None and served.domid != d.domid:
            out[d.domid] = {STUB_OF: subject[served.domid]}
    return out


def _stub_note(stubs: list[tuple[str, dict[str, str]]]) -> str:
    """The note naming the stub domains counted apart from the VMs."""
    named = [
        f"{name} (device model of {labels[STUB_OF]})" if STUB_OF in labels else f"{name} (xenstore)"
        for name, labels in stubs
    ]
    return (
        f"{len(named)} stub domain(s) not counted as VMs, their CPU, vCPUs and memory counted"
        f" in hv.* as their guests' cost: {few(named)}"
    )


def _top_interval(out: ProbeOutput, dt: float | None) -> float | None:
    """The seconds between xentop's last two iterations, which its counters' rates divide by:
    as measured (the probe's /proc/uptime stamps of the two), else its nominal `-d` (an
    older probe's output, or no stamps), else the samples' Δt.

    Not the samples' Δt: xentop runs between the samples. Not `-d` where a measured one
    exists: xentop sleeps -d seconds after reading the counters, so the reads are -d plus
    the first read's own time apart (xentop.c's CPU(%) divides by that measured time too).
    """
    stamps = xen.xentop_stamps(out.text(0, "xentop") or "")
    if len(stamps) >= 2 and stamps[-2] is not None and stamps[-1] is not None:
        measured = round(stamps[-1] - stamps[-2], 6)
        if measured > 0:
            return measured
    delay = probe_meta(out).get("xentop_delay_s", "")
    return float(delay) if delay.replace(".", "", 1).isdigit() else dt


def _top_gap(name: str, t1: xen.XentopRow | None, t2: xen.XentopRow | None, unclear: bool) -> str:
    """The note on a running guest xentop has no line for in one iteration or both."""
    if unclear:
        why = "not told apart from another domain in xentop's output (names cut to 10"
        return f"VM {name} {why} characters, or the same name): no rates for it"
    if t1 is None and t2 is None:
        return f"VM {name} not in xentop's output: no rates for it"
    return f"VM {name} in one of xentop's two iterations only: no rates for it"


def _subjects(domains: Sequence[xen.XlDomain]) -> dict[int, str]:
    """Each domain's name by its ID, with `#ID` after a name several domains share (every
    dying domain is `(null)`), so each has its own row and findings."""
    count = Counter(d.name for d in domains)
    return {d.domid: f"{d.name}#{d.domid}" if count[d.name] > 1 else d.name for d in domains}


def _pairs(
    before: tuple[xen.XlDomain, ...] | None, guests: list[xen.XlDomain]
) -> tuple[dict[int, xen.XlDomain], list[str]]:
    """Each guest's domain in sample 1, by the guest's ID, and the names of the sample-1
    guests gone by sample 2.

    A domain is its name and ID (names repeat: `(null)`); a name whose one domain has a
    new ID is that domain destroyed and created again (a restart, noted by the caller).
    """
    if before is None:
        return {}, []
    left = {(d.name, d.domid): d for d in before if d.domid != 0}
    olds = {d.domid: o for d in guests if (o := left.pop((d.name, d.domid), None)) is not None}
    new = Counter(d.name for d in guests if d.domid not in olds)
    old = Counter(o.name for o in left.values())
    for d in guests:
        if d.domid not in olds and new[d.name] == 1 and old[d.name] == 1:
            olds[d.domid] = next(o for o in left.values() if o.name == d.name)
    kept = {(o.name, o.domid) for o in olds.values()}
    names = _subjects(before)
    return olds, [names[o.domid] for key, o in left.items() if key not in kept]


def _match(
    rows: tuple[xen.XentopRow, ...], guests: list[xen.XlDomain]
) -> tuple[dict[int, xen.XentopRow], set[int]]:
    """xentop rows by the ID of the one xl guest of their name (xentop prints no ID), and
    the IDs of guests a row's name fits with another. Names are compared with their own
    spacing; a name xentop cut to 10 characters (without -f) matches one xl name only,
    and a line of a 10-character name is then also the cut of any longer one it begins."""
    exact: dict[str, list[int]] = {}
    cut: dict[str, list[int]] = {}
    for g in guests:
        exact.setdefault(g.name, []).append(g.domid)
        if len(g.name) > 10:  # the cut name as parsed: its trailing spaces stripped
            cut.setdefault(g.name[:10].rstrip(), []).append(g.domid)
    # With -f (Xen 4.6+) a longer name is printed whole: no line is anyone's cut.
    if any(len(row.name) > 10 for row in rows):
        cut = {}
    out: dict[int, xen.XentopRow] = {}
    unclear: set[int] = set()
    for row in rows:
        ids = exact.get(row.name, []) + cut.get(row.name, [])
        if len(ids) == 1:
            out[ids[0]] = row
        else:
            unclear.update(ids)
    return out, unclear


def _xen_vm(
    d: xen.XlDomain,
    t1: xen.XentopRow | None,
    t2: xen.XentopRow | None,
    host_cpus: int | None,
    dt: float | None,
) -> tuple[dict[str, MetricValue], list[str]]:
    """A guest's metrics, and the xentop columns whose counter went down (no rate)."""
    m: dict[str, MetricValue] = dict.fromkeys(XEN_VM_METRICS)
    m["vm.state"] = xen.xen_state(d.flags)
    m["vm.vcpus"] = d.vcpus
    cur_kib = t2.mem_kib if t2 is not None else None
    m["vm.mem_current_bytes"] = cur_kib * 1024 if cur_kib is not None else d.mem_mib * MIB
    if t2 is not None and t2.maxmem_kib is not None:  # None: "no limit"
        m["vm.mem_max_bytes"] = t2.maxmem_kib * 1024
    if t1 is None or t2 is None:
        return m, []
    back: list[str] = []

    def diff(col: str, a: int | None, b: int | None) -> int | None:
        if a is not None and b is not None and b < a:
            back.append(col)
        return None if a is None or b is None or b < a else b - a

    # CPU(%) is already 100·Δns/Δwall over the last xentop interval: only divide.
    m["vm.cpu_pct"] = share(t2.cpu_pct / d.vcpus) if d.vcpus else None
    m["vm.cpu_host_pct"] = share(t2.cpu_pct / host_cpus) if host_cpus else None
    m["vm.disk_reads_per_s"] = rate(diff("VBD_RD", t1.vbd_rd, t2.vbd_rd), dt)
    m["vm.disk_writes_per_s"] = rate(diff("VBD_WR", t1.vbd_wr, t2.vbd_wr), dt)
    m["vm.disk_read_bytes_per_s"] = rate(diff("VBD_RSECT", t1.vbd_rsect, t2.vbd_rsect), dt, 512)
    m["vm.disk_write_bytes_per_s"] = rate(diff("VBD_WSECT", t1.vbd_wsect, t2.vbd_wsect), dt, 512)
    # xentop counts at dom0's end of the guest's vifs (libxenstat reads their /proc/net/dev
    # lines as they are): NETTX is what dom0 sent the guest, the guest's receive, and NETRX
    # its transmit. vm.net_* are the guest's own, as libvirt's (which swaps them) on KVM.
    m["vm.net_rx_bytes_per_s"] = rate(diff("NETTX(k)", t1.nettx_kib, t2.nettx_kib), dt, 1024)
    m["vm.net_tx_bytes_per_s"] = rate(diff("NETRX(k)", t1.netrx_kib, t2.netrx_kib), dt, 1024)
    # xentop counts no packets: vm.net_*_packets_per_s are not offered on Xen (NOT_ON).
    m["vm.disk_oo_per_s"] = rate(diff("VBD_OO", t1.vbd_oo, t2.vbd_oo), dt)
    return m, back
