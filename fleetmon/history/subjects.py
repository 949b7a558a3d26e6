"""The subjects a run stores (pure): a host and its rows of each row scope."""

from __future__ import annotations

import re
from collections.abc import Sequence

from fleetmon.model import HostReport, Row

_RUNTIME_ID = re.compile(r"[0-9a-f]{64}")
#: Runtime ids, each followed by a newline: a host's container ids checked by one match.
_RUNTIME_IDS = re.compile(r"(?:[0-9a-f]{64}\n)*")


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


def identities(scope: str, rows: Sequence[Row]) -> list[str | None]:
    """identity() of each row: a host's container ids checked at once when each is a
    runtime id (one regular expression over them all, not one a container), else one by
    one. Each is 64 characters long, so the match cannot straddle two of them."""
    if scope == "ctr" and rows:
        ids = [row.labels.get("id") for row in rows]
        if (
            set(map(type, ids)) == {str}
            and set(map(len, ids)) == {64}  # type: ignore[arg-type]
            and _RUNTIME_IDS.fullmatch("\n".join(ids) + "\n")  # type: ignore[arg-type]
        ):
            return ids
    return [identity(scope, row) for row in rows]
