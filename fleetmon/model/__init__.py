"""The model (pure): the records every stage passes on, severities and the metric catalogue.

records.py   hosts, probe results, rows keyed by scope, findings, reports, Severity's order
catalog.py   the one source of metric names, scopes, units and help text; the row scopes
yamlnodes.py YAML text to nodes that keep their lines, for the inventory and rule loaders
"""

from __future__ import annotations

from fleetmon.model.records import (
    HYPERVISOR_MODES,
    SEVERITIES_LISTED,
    SEVERITIES_WORST_FIRST,
    Finding,
    Findings,
    FleetStat,
    HostMetrics,
    HostReport,
    HostSpec,
    Metrics,
    MetricValue,
    RawResult,
    Report,
    Row,
    Rows,
    RunInfo,
    Severity,
    Status,
    Trend,
    checks_passed,
    notable,
    worst,
)

__all__ = [
    "HYPERVISOR_MODES",
    "SEVERITIES_LISTED",
    "SEVERITIES_WORST_FIRST",
    "Finding",
    "Findings",
    "FleetStat",
    "HostMetrics",
    "HostReport",
    "HostSpec",
    "MetricValue",
    "Metrics",
    "RawResult",
    "Report",
    "Row",
    "Rows",
    "RunInfo",
    "Severity",
    "Status",
    "Trend",
    "checks_passed",
    "notable",
    "worst",
]
