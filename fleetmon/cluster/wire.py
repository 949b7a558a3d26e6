"""Cluster runs: analysed hosts as a shard's task returns them (pure).

Pickled as dataclasses, each host and each of its ~25 rows goes through the dataclasses
module's Python-level `__setstate__` (0.17 ms a host to load, 0.12 to dump); as tuples of
plain values pickle handles them in C, and the client builds the records from them (0.09
and 0.06 ms). The field names travel once per shard: a worker whose fleetmon has other
fields is refused in words rather than misread.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from operator import attrgetter
from typing import Any

from fleetmon.model import HostReport, Row, Status

HOST_FIELDS = tuple(f.name for f in dataclasses.fields(HostReport))
ROW_FIELDS = tuple(f.name for f in dataclasses.fields(Row))
_STATUS = HOST_FIELDS.index("status")
_ROWS = HOST_FIELDS.index("rows")
_ERROR = HOST_FIELDS.index("error")
_BY = HOST_FIELDS.index("collected_by")
_host_values = attrgetter(*HOST_FIELDS)
_row_values = attrgetter(*ROW_FIELDS)

#: What a shard sends back: the field names of a host and of a row, then one tuple a host.
Packed = tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[Any, ...], ...]]


class WireError(ValueError):
    """A shard's hosts came from a fleetmon whose records differ from this one's."""


SAME_VERSION = "run the same fleetmon version on the workers and the client"
MISMATCH = (
    f"the worker's fleetmon sends host reports with other fields than this one's: {SAME_VERSION}"
)


def unloadable(exc: BaseException) -> str:
    """Why a shard's result could not be loaded by the client (Dask unpickles it there: a
    class of the worker's fleetmon that this one lacks)."""
    return f"its result cannot be loaded here ({type(exc).__name__}: {exc}): {SAME_VERSION}"


def pack(hosts: Sequence[HostReport], by: str | None = None) -> Packed:
    """The hosts as tuples of plain values (a shard of a run that records no history analyses
    them without their counters, 8 KB of a host's 12: see Shard.counters), each stamped
    `collected_by` the worker `by` when given, a failure's reason naming it (`from_worker`):
    here rather than by dataclasses.replace of each host, which tripled the worker's pack
    and pickle of a 500-host shard (12 -> 35 ms, medians at load 6; 9.5 -> 11.6 ms here)."""
    out = []
    for h in hosts:
        values = list(_host_values(h))
        if by is not None:
            values[_BY] = by
            if not h.collected:
                values[_ERROR] = from_worker(h.status.value, by, h.error)
        values[_STATUS] = h.status.value
        values[_ROWS] = {scope: tuple(map(_row_values, rows)) for scope, rows in h.rows.items()}
        out.append(tuple(values))
    return HOST_FIELDS, ROW_FIELDS, tuple(out)


def from_worker(status: str, worker: str, error: str | None) -> str:
    """A failed host's reason, saying which worker it failed from: a host down reads apart
    from a worker that cannot reach it (no route from there, its key file absent there).
    The status is said beside it in every report (`unreachable  from worker ...: connect to
    ... refused`); it words the reason only when there is no other."""
    said = f"from worker {worker}"
    return f"{status} {said}" if error is None else f"{said}: {error}"


def unpack(packed: Packed) -> list[HostReport]:
    """The hosts `pack` was given (WireError when the worker's records differ)."""
    try:
        host_fields, row_fields, hosts = packed
    except (TypeError, ValueError):  # not three items: another fleetmon's packing
        raise WireError(MISMATCH) from None
    if host_fields != HOST_FIELDS or row_fields != ROW_FIELDS:
        raise WireError(MISMATCH)
    out = []
    for values in hosts:
        v = list(values)
        v[_STATUS] = Status(v[_STATUS])
        v[_ROWS] = {scope: tuple(Row(*r) for r in rows) for scope, rows in v[_ROWS].items()}
        out.append(HostReport(*v))
    return out
