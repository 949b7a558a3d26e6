"""Deltas stage for a hypervisor's own figures (pure): METRICS.md `hv.*` from its VMs' rows.

A figure is never made up from missing parts: memory overcommit needs every running VM's
maximum memory, which a Xen host offers only through xentop (and not for a domain without a
limit); without it the ratio is absent (not offered: rules do not judge it), with a note,
where it used to be a sum of nothing, 0.00. No share of the machine exceeds 100 %.
"""

from __future__ import annotations

from collections.abc import Sequence

from fleetmon.model import MetricValue, Row
from fleetmon.model.stubs import is_stub

#: vm.state values counted as running for hv.* (libvirt "blocked" is a running VM waiting).
RUNNING = frozenset({"running", "blocked"})
#: How far summed guest CPU may pass 100 % of the machine and still be rounding (xl list's
#: Time(s) has 0.1 s steps; samples are not taken at one instant): capped at 100 then.
ROUNDING_PCT = 1.0


def share(pct: float | None) -> float | None:
    """A share of CPUs, in percent, capped at 100: sampling jitter can put a Δ a hair past
    its Δt, and a share of a machine cannot be more than all of it."""
    return None if pct is None else min(pct, 100.0)


def _number(v: MetricValue) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def hv_metrics(
    rows: Sequence[Row], host_cpus: int | None, host_mem_bytes: int | None, max_mem_from: str
) -> tuple[dict[str, MetricValue], list[str]]:
    """`hv.*` (counts, overcommit over the running VMs, summed guest CPU) and the notes that
    say why one is null. `max_mem_from` names where the VMs' maximum memory comes from."""
    running = [r for r in rows if r.metrics.get("vm.state") in RUNNING]
    notes: list[str] = []
    # Each figure of the running VMs read once (a number, or None), for its sum and for
    # the VMs that lack it.
    vcpus, max_mem, cpu = (
        [_number(r.metrics.get(key)) for r in running]
        for key in ("vm.vcpus", "vm.mem_max_bytes", "vm.cpu_host_pct")
    )

    def total(values: list[float | None]) -> float:
        return sum(x for x in values if x is not None)

    # Stub domains are not VMs of their own in the counts; their vCPUs, memory and CPU,
    # which the machine spends on their guests, are in the sums.
    out: dict[str, MetricValue] = {
        "hv.vms_running": sum(not is_stub(r) for r in running),
        "hv.vms_total": sum(not is_stub(r) for r in rows),
        "hv.vcpu_overcommit_ratio": total(vcpus) / host_cpus if host_cpus else None,
    }
    no_max = [r for r, x in zip(running, max_mem, strict=True) if x is None]
    if no_max:
        notes.append(
            f"memory overcommit not reported: the maximum memory of {_of(no_max, running)}"
            f" is not known ({max_mem_from})"
        )
    else:
        out["hv.mem_overcommit_ratio"] = total(max_mem) / host_mem_bytes if host_mem_bytes else None
    no_cpu = [r for r, x in zip(running, cpu, strict=True) if x is None]
    # No running VM is a true 0; running VMs none of which has a rate is unknown.
    guest: float | None = total(cpu) if len(no_cpu) < len(running) or not running else None
    if guest is not None and guest > 100.0 + ROUNDING_PCT:
        notes.append(
            f"guest CPU not reported: the VMs' figures add up to {guest:.1f} % of the "
            f"machine's {host_cpus} CPUs, more than it has"
        )
        guest = None
    out["hv.vm_cpu_pct"] = share(guest)
    if no_cpu and guest is not None:
        # A part is not passed off as the whole.
        have = [r for r, x in zip(running, cpu, strict=True) if x is not None]
        notes.append(
            f"guest CPU counts {_of(have, running)}: no CPU figure for"
            f" {few([r.name for r in no_cpu])}"
        )
    return out, notes


def _of(part: Sequence[Row], running: Sequence[Row]) -> str:
    """How many of the running VMs ("2 of 3 running VMs"), stub domains apart ("... and 1 of 2
    stub domains"): the VMs' count agrees with hv.vms_running, which stub domains are not in."""
    vms = [sum(not is_stub(r) for r in rows) for rows in (part, running)]
    stubs = [len(rows) - n for rows, n in zip((part, running), vms, strict=True)]
    text = f"{vms[0]} of {vms[1]} running VMs"
    return text + (f" and {stubs[0]} of {stubs[1]} stub domains" if stubs[1] else "")


def few(names: Sequence[str]) -> str:
    """Up to three names, and how many more."""
    more = f" and {len(names) - 3} more" if len(names) > 3 else ""
    return ", ".join(names[:3]) + more
