"""The JSON report, schema `fleetmon.report/1` of ../shared/METRICS.md (pure).

The shape only grows by adding keys: other tools and CI jobs read it.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

from fleetmon.model import Finding, HostReport, MetricValue, Report, Row, Severity

SCHEMA = "fleetmon.report/1"


def _value(v: MetricValue) -> MetricValue:
    # JSON has no NaN or infinity: an unknown figure is null.
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _row(row: Row) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": row.name,
        "metrics": {k: _value(v) for k, v in row.metrics.items()},
    }
    if row.labels:
        out["labels"] = dict(row.labels)
    return out


def finding_dict(f: Finding) -> dict[str, Any]:
    """One finding as METRICS.md shows it (plus its threshold text)."""
    return {
        "rule": f.rule,
        "severity": f.severity.value,
        "scope": f.scope,
        "subject": f.subject,
        "metric": f.metric,
        "value": _value(f.value),
        "threshold": f.threshold,
        "message": f.message,
    }


def host_verdict(host: HostReport) -> str:
    """A host's worst finding: ok, warning, critical or unknown."""
    sev = {f.severity for f in host.findings}
    for s in (Severity.CRITICAL, Severity.WARNING, Severity.UNKNOWN):
        if s in sev:
            return s.value
    return "ok"


def summary(report: Report) -> dict[str, int]:
    """Host counts: all, collected, failed, and collected hosts by worst finding."""
    collected = [h for h in report.hosts if h.collected]
    verdicts = Counter(host_verdict(h) for h in collected)
    return {
        "hosts": len(report.hosts),
        "collected": len(collected),
        "failed": len(report.hosts) - len(collected),
        "ok": verdicts["ok"],
        "warning": verdicts["warning"],
        "critical": verdicts["critical"],
        "unknown": verdicts["unknown"],
    }


def _host(h: HostReport) -> dict[str, Any]:
    return {
        "name": h.name,
        "address": h.address,
        "groups": list(h.groups),
        "status": h.status.value,
        "error": h.error,
        "hypervisor": h.hypervisor,
        "interval_s": h.interval_s,
        "metrics": {k: _value(v) for k, v in h.metrics.items()},
        "disks": [_row(r) for r in h.disks],
        "nics": [_row(r) for r in h.nics],
        "filesystems": [_row(r) for r in h.filesystems],
        "vms": [_row(r) for r in h.vms],
        "notes": list(h.notes),
        # OK verdicts are kept in the model for JUnit's passed test cases; the report lists
        # what is wrong or unknown.
        "findings": [finding_dict(f) for f in h.findings if f.severity is not Severity.OK],
    }


def report_dict(report: Report) -> dict[str, Any]:
    """The report as plain JSON-able data."""
    run = report.run
    fleet_metrics = {
        name: {
            "count": s.count,
            "min": s.min,
            "median": s.median,
            "p95": s.p95,
            "max": s.max,
            "mean": s.mean,
            "stddev": s.stddev,
            "outliers": list(s.outliers),
        }
        for name, s in report.fleet.items()
    }
    return {
        "schema": SCHEMA,
        "fleetmon_version": run.fleetmon_version,
        "started_at": run.started_at,
        "interval_s": run.interval_s,
        "exit_code": report.exit_code,
        "inventory": run.inventory,
        "limit": run.limit,
        "rule_files": list(run.rule_files),
        "host_key_notes": list(run.host_key_notes),
        "summary": summary(report),
        "hosts": [_host(h) for h in report.hosts],
        "fleet": {
            "metrics": fleet_metrics,
            "findings": [finding_dict(f) for f in report.findings if f.severity is not Severity.OK],
        },
    }


def render_json(report: Report) -> str:
    """The JSON report text (indented, final newline)."""
    return json.dumps(report_dict(report), indent=2, allow_nan=False) + "\n"
