"""The subjects a run stores (pure): a host and its rows of each row scope."""

from __future__ import annotations

import re

from fleetmon.model import HostReport, Row

_RUNTIME_ID = re.compile(r"[0-9a-f]{64}")


def rows_of(host: HostReport, scope: str) -> tuple[Row, ...]:
    """A host's rows of one row scope."""
    return host.rows_of(scope)


def identity(scope: str, row: Row) -> str | None:
    """What names a row's entity across runs, beyond (host, name): a VM's or guest pair's
    domain UUID (renames, migrations); a container's runtime id (a renamed container keeps
    its history, a recreated one starts anew). An LXC or nspawn container's id is its name,
    unique on its host only: known by (host, name) like a disk."""
    if scope != "ctr":
        return row.labels.get("uuid")
    cid = row.labels.get("id")
    return cid if cid and _RUNTIME_ID.fullmatch(cid) else None
