"""Which rows the reports single out (pure): one definition of a host's busiest row of a kind,
read by the text and HTML reports alike, so both name the same disk, NIC or filesystem.

Busiest is the largest figure of the scope's first ranking (RowScope.rankings[0]); rows that
echo another scope's (a VM's tap port, which the VM tables already show) are passed over,
unless every row of the host is one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from fleetmon.model import HostReport, MetricValue, Row
from fleetmon.model.catalog import Column, RowScope


def figure(v: MetricValue) -> float | None:
    """A finite number to rank by; None for unknown, text, booleans, NaN and infinities."""
    cls = v.__class__
    if cls is float:  # the usual case first: ~50 a host for each report
        return v if math.isfinite(v) else None  # type: ignore[arg-type,return-value]
    if v is None or cls is str or isinstance(v, bool) or not isinstance(v, int | float):
        return None
    x = float(v)
    return x if math.isfinite(x) else None


def column_figure(row: Row, col: Column) -> float | None:
    """A row's figure in a column: its one metric, or the sum of those known (None if none)."""
    metrics = row.metrics
    names = col.metrics
    if len(names) == 1:
        return figure(metrics.get(names[0]))
    total: float | None = None
    for name in names:
        x = figure(metrics.get(name))
        if x is not None:
            total = x + 0.0 if total is None else total + x  # -0.0 + 0.0: 0.0, as sum()
    return total


def own_rows(rows: Sequence[Row], scope: RowScope) -> Sequence[Row]:
    """The rows that are not an echo of another scope's (a VM's port), or all if none is."""
    if scope.echo is None:
        return rows
    return [r for r in rows if scope.echo not in r.labels] or rows


def busiest(host: HostReport, scope: RowScope) -> tuple[Row, float] | None:
    """A host's busiest row of `scope` and its figure; None when no row has one.

    Ties go to the first row in the host's order, so every renderer names the same one.
    """
    by = scope.rankings[0].by
    best: tuple[Row, float] | None = None
    for row in own_rows(host.rows_of(scope.name), scope):
        x = column_figure(row, by)
        if x is not None and (best is None or x > best[1]):
            best = (row, x)
    return best
