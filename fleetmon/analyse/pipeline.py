"""From raw probe output to the report model (pure): split, parse, deltas, VMs, fleet stats.

A host whose output cannot be parsed becomes a `parse_error` host naming the section; it
never stops the run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence

from fleetmon.analyse.counters import all_counters, ctr_counters
from fleetmon.analyse.fleet import fleet_stats
from fleetmon.analyse.guests import link_guests
from fleetmon.analyse.host import compute_host
from fleetmon.analyse.vms import compute_vms, probe_meta
from fleetmon.errors import ProbeParseError
from fleetmon.model import (
    Finding,
    HostMetrics,
    HostReport,
    HostSpec,
    Metrics,
    MetricValue,
    RawResult,
    Report,
    Row,
    RunInfo,
    Status,
)
from fleetmon.model.virt import Virt
from fleetmon.sources.containers import compute_containers
from fleetmon.sources.ctrpaths import vm_cgroup
from fleetmon.sources.sections import PROBE_VERSION, ProbeOutput, split_output
from fleetmon.sources.uuids import parse_product_uuid, parse_virsh_uuids, parse_xl_uuids
from fleetmon.sources.virsh import ACTIVE_STATES
from fleetmon.sources.virt import detect_virt, parse_virt

log = logging.getLogger(__name__)

#: Probe CPU time above which the host's notes say how much it cost (issue 6).
PROBE_CPU_NOTE_MS = 50.0

_TIMES_RE = re.compile(r"(\d+)m([\d.]+)s")
#: json.dumps(v, separators=(",", ":")), without building an encoder per call.
_compact_json = json.JSONEncoder(separators=(",", ":")).encode


def probe_cpu_ms(out: ProbeOutput) -> float | None:
    """CPU time (user + system, shell and children) the probe used, from `times`."""
    text = out.text(0, "times")
    if text is None:
        return None
    parts = _TIMES_RE.findall(text)
    if len(parts) != 4:
        return None
    return sum(int(m) * 60_000 + float(s) * 1000 for m, s in parts)


def _label_vm_ports(nics: tuple[Row, ...], nic_vm: Mapping[str, str]) -> tuple[Row, ...]:
    if not nic_vm:
        return nics
    return tuple(
        _row(row, row.metrics, {**row.labels, "vm": nic_vm[row.name]})
        if row.name in nic_vm
        else row
        for row in nics
    )


def _vm_cgroup(vms: Mapping[str, Mapping[str, MetricValue]], row: Row) -> Metrics:
    """The QEMU cgroup's figures of a VM that has a QEMU (not a shut-off one, whose name
    may be a running one's cgroup name: `web01` off, `web_01` in `qemu-3-web01`)."""
    return vm_cgroup(vms, row.name) if row.metrics.get("vm.state") in ACTIVE_STATES else {}


def _row(row: Row, metrics: Metrics, labels: Mapping[str, str]) -> Row:
    """dataclasses.replace(row, metrics=..., labels=...) at a third of its cost (two per VM
    per host); Row's fields are these three."""
    return Row(row.name, metrics, labels)


def _uuids(out: ProbeOutput, hypervisor: str) -> dict[str, str]:
    """VM name -> domain UUID, when the probe could list them (else keyed by name)."""
    if not out.text(0, "vm_uuids"):
        return {}
    parser = parse_xl_uuids if hypervisor == "xen" else parse_virsh_uuids
    return out.parsed(0, "vm_uuids", parser) or {}


def _check_probe(out: ProbeOutput) -> None:
    """ProbeParseError for the output of another probe version (a raw folder saved by
    another fleetmon): its sections may mean other things, and are not guessed at."""
    version = probe_meta(out).get("probe")
    if version is not None and version != str(PROBE_VERSION):
        said = f"output of probe version {version[:20]!r}"
        raise ProbeParseError("meta", f"{said}; this fleetmon reads version {PROBE_VERSION}")


def _host_metrics(out: ProbeOutput) -> tuple[HostMetrics, str]:
    _check_probe(out)
    hm = compute_host(out)
    cpus = hm.metrics.get("cpu.count")
    mem = hm.metrics.get("mem.total_bytes")
    vm = compute_vms(
        out,
        host_cpus=cpus if isinstance(cpus, int) else None,
        host_mem_bytes=mem if isinstance(mem, int) else None,
        interval_s=hm.interval_s,
    )
    ctr = compute_containers(out, cpus if isinstance(cpus, int) else None, hm.interval_s)
    notes = list(hm.notes) + list(vm.notes) + list(ctr.notes)
    cost = probe_cpu_ms(out)
    if cost is not None and cost > PROBE_CPU_NOTE_MS:
        notes.append(f"the probe used {cost:.0f} ms of CPU on this host")
    uuids = _uuids(out, vm.hypervisor)
    vms = tuple(
        _row(
            row,
            # The QEMU process's cgroup: its host-side memory and I/O (libvirt VMs only).
            {**row.metrics, **_vm_cgroup(ctr.vm_metrics, row)},
            {**row.labels, "hypervisor": vm.hypervisor}
            | ({"uuid": uuids[row.name]} if row.name in uuids else {}),
        )
        for row in vm.vms
    )
    # A VM's tap or vif port is one of the host's NICs: labelled with the VM it serves.
    rows = {**hm.rows, "nic": _label_vm_ports(hm.rows_of("nic"), vm.nic_vm), "vm": vms}
    rows["ctr"] = ctr.rows
    merged = dataclasses.replace(
        hm, metrics={**hm.metrics, **vm.hv_metrics}, rows=rows, notes=tuple(notes)
    )
    return merged, vm.hypervisor


def vm_of(spec: HostSpec) -> str | None:
    """The host's `fleetmon_vm_of` (hypervisor/domain), None when it has none."""
    value = spec.vars.get("fleetmon_vm_of")
    return str(value) if value else None


def site_of(spec: HostSpec) -> str | None:
    """The host's `fleetmon_site` (checked by the inventory), None when it has none."""
    value = spec.vars.get("fleetmon_site")
    return str(value) if value else None


def declared_hypervisor(spec: HostSpec) -> str:
    """The inventory's `fleetmon_hypervisor` when it names one (kvm, xen), else none: what
    a host that was not collected is, so its `host_up` keeps the `hypervisor` label of its
    collected runs and a `{hypervisor="kvm"}` selector still sees it down."""
    value = spec.vars.get("fleetmon_hypervisor")
    return str(value) if value in ("kvm", "xen") else "none"


def host_base(
    spec: HostSpec,
    status: Status,
    error: str | None,
    address: str,
    collection_s: float | None = None,
) -> HostReport:
    """A host's report before its samples are analysed: its names and the inventory's
    `fleetmon_vm_of` and `fleetmon_site`, and the hypervisor it declares (run, top and serve
    alike; a collected host's is then what its probe found)."""
    return HostReport(
        name=spec.name,
        address=address,
        groups=spec.groups,
        status=status,
        error=error,
        vm_of=vm_of(spec),
        site=site_of(spec),
        collection_s=collection_s,
        hypervisor=declared_hypervisor(spec),
    )


def analyse_host(raw: RawResult, counters: bool = True) -> HostReport:
    """One host's report row from what collection got back; `counters` as analyse_output's."""
    spec = raw.host
    address = spec.address if spec.connection != "local" else "local"
    base = host_base(spec, raw.status, raw.reason, address, raw.elapsed_s)
    if raw.status is not Status.OK:
        return base
    try:
        out = split_output(raw.stdout, raw.nonce)
    except ProbeParseError as exc:
        return dataclasses.replace(base, status=Status.PARSE_ERROR, error=f"parse error: {exc}")
    return analyse_output(base, out, counters)


def analyse_output(base: HostReport, out: ProbeOutput, counters: bool = True) -> HostReport:
    """A collected host's report from its two samples, already split: `fleetmon run`'s
    probe output, or two consecutive samples of the streaming collector
    (sources.sections.pair_output). `base` names the host; its status is ok.

    `counters=False` leaves out the raw cumulative counters kept for the history: only a run
    that records one reads them (not the live modes, not `run --history none`)."""
    try:
        hm, hypervisor = _host_metrics(out)
        kept: dict[tuple[str, str], str] = {}
        if counters:
            names = {scope: tuple(r.name for r in rs) for scope, rs in hm.rows.items()}
            found = all_counters(out, names)  # the scopes that have counters (disk, nic, vm)
            for name, c in ctr_counters(hm.rows.get("ctr", ())).items():
                found["ctr", name] = c  # from the rows: memory.events is read once a run
            kept = {k: _compact_json(v) for k, v in found.items()}
    except ProbeParseError as exc:
        return dataclasses.replace(base, status=Status.PARSE_ERROR, error=f"parse error: {exc}")
    except Exception as exc:
        # Last resort: a parser bug (or an OverflowError, MemoryError...) must not take the
        # fleet run down: the host says what broke. BaseException (signals) is not caught.
        log.debug("internal error analysing %s", base.name, exc_info=True)
        return dataclasses.replace(
            base,
            status=Status.PARSE_ERROR,
            error=f"parse error: {type(exc).__name__}: {exc}",
        )
    return dataclasses.replace(
        base,
        interval_s=hm.interval_s,
        metrics=hm.metrics,
        rows=hm.rows,
        notes=hm.notes,
        hypervisor=hypervisor,
        counters=kept,
        product_uuid=parse_product_uuid(out.text(0, "product_uuid") or "")
        or parse_product_uuid(out.text(0, "xen_uuid") or ""),
        virt=_virt(out, hypervisor),
        sampled_at_ns=hm.sampled_at_ns,
    )


def _virt(out: ProbeOutput, hypervisor: str) -> Virt | None:
    """The host's virtualization, None when its probe printed no `virt` section."""
    facts = out.parsed(0, "virt", parse_virt)
    return None if facts is None else detect_virt(facts, hypervisor)


def _shown(names: Sequence[str]) -> str:
    return ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")


def host_key_notes(
    specs: Sequence[HostSpec], accept_new: bool, known_hosts: str | None = None
) -> tuple[str, ...]:
    """The run's host-key policy in words, when it is anything but strict checking; and
    the hosts `--known-hosts` is not used for: their inventory's UserKnownHostsFile wins,
    as `ssh -o` on the command line wins over ~/.ssh/config."""
    notes = []
    remote = [s for s in specs if s.connection != "local"]
    off = [s.name for s in remote if not s.host_key_checking]
    if off:
        notes.append(f"host key checking OFF for {len(off)} host(s): {_shown(off)}")
    if accept_new:
        notes.append("new host keys accepted and recorded (accept-new)")
    own = [s.name for s in remote if s.host_key_checking and s.known_hosts] if known_hosts else []
    if own:
        notes.append(
            f"--known-hosts {known_hosts} not used for {len(own)} host(s) whose inventory sets"
            f" UserKnownHostsFile (the inventory's wins, as ssh -o does): {_shown(own)}"
        )
    return tuple(notes)


def build_report(
    raws: Sequence[RawResult],
    run: RunInfo,
    evaluate: Callable[..., tuple[tuple[HostReport, ...], tuple[Finding, ...]]] | None = None,
    exit_code: Callable[[tuple[HostReport, ...], tuple[Finding, ...]], int] | None = None,
) -> Report:
    """The whole report: analyse each host, fleet statistics, rules, exit code."""
    return report_from_hosts(
        tuple(analyse_host(r) for r in raws), run, evaluate=evaluate, exit_code=exit_code
    )


def report_from_hosts(
    hosts: Sequence[HostReport],
    run: RunInfo,
    evaluate: Callable[..., tuple[tuple[HostReport, ...], tuple[Finding, ...]]] | None = None,
    exit_code: Callable[[tuple[HostReport, ...], tuple[Finding, ...]], int] | None = None,
) -> Report:
    """The whole report from hosts already analysed (analyse_host): fleet statistics,
    rules, exit code."""
    analysed = link_guests(tuple(hosts))  # a guest that is also a VM here: both sides
    fleet = fleet_stats(analysed)
    fleet_findings: tuple[Finding, ...] = ()
    if evaluate is not None:
        analysed, fleet_findings = evaluate(analysed, fleet)
    if exit_code is not None:
        code = exit_code(analysed, fleet_findings)
    else:
        code = 0 if all(h.collected for h in analysed) else 3
    return Report(run=run, hosts=analysed, fleet=fleet, exit_code=code, findings=fleet_findings)
