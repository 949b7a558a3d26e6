"""Builders of HostReport test objects for the rules tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fleetmon.model import HostReport, HostSpec, MetricValue, Row, Status


def host(
    name: str,
    groups: tuple[str, ...] = (),
    metrics: Mapping[str, MetricValue] | None = None,
    *,
    status: Status = Status.OK,
    error: str | None = None,
    **rows: tuple[Row, ...],
) -> HostReport:
    """A host; its rows by scope name as keywords (`vm=(Row(...),)`)."""
    return HostReport(
        name=name,
        address=f"{name}.example",
        groups=groups,
        status=status,
        error=error,
        interval_s=1.0 if status is Status.OK else None,
        metrics=dict(metrics or {}),
        rows=rows,
    )


def spec(name: str, groups: tuple[str, ...] = (), **host_vars: Any) -> HostSpec:
    return HostSpec(name=name, address=f"{name}.example", groups=groups, vars=host_vars)
