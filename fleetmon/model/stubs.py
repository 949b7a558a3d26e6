"""Xen stub domains among a host's VM rows (pure): which rows are one, and how each is named
where a person reads it ("hvm1-dm (stub of hvm1)", "Xenstore (xenstore)").

analyse/xenvms.py labels them; hv.* does not count them as VMs; the reports, `fleetmon top`
and the findings of `vm.*` rules name them with what they serve (METRICS.md, Xen).
"""

from __future__ import annotations

from collections.abc import Sequence

from fleetmon.model.records import Row

#: The label of a device-model stub domain: the guest whose device model it runs.
STUB_OF = "stub_of"
#: The label of a Xen service's stub domain: the service (`xenstore`).
STUB_SERVICE = "service"


def is_stub(row: Row) -> bool:
    """Whether a VM row is a stub domain (a device model's or a Xen service's), not a guest."""
    return STUB_OF in row.labels or STUB_SERVICE in row.labels


def stub_role(row: Row) -> str | None:
    """What a stub domain is, in xentop users' words ("stub of hvm1", "xenstore"); None for
    a guest. The guest's name is the host's text: escape or clean it where it is shown."""
    served = row.labels.get(STUB_OF)
    if served is not None:
        return f"stub of {served}"
    return row.labels.get(STUB_SERVICE)


def stub_name(row: Row) -> str:
    """A VM row's name with what it is if it is a stub domain: "hvm1-dm (stub of hvm1)"."""
    role = stub_role(row)
    return row.name if role is None else f"{row.name} ({role})"


def subjects(scope: str, rows: Sequence[Row]) -> list[str]:
    """The finding subjects of a scope's rows: their names, a stub domain's with what it is
    (a `vm.*` finding on one is its guest's device emulation, or Xen's own service)."""
    if scope != "vm":
        return [r.name for r in rows]
    return [stub_name(r) for r in rows]
