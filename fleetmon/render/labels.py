"""What every export says of a host, a row and a finding (pure): the Prometheus labels and
InfluxDB tags (`host`, `hypervisor`, `site`, opt-in `groups`, the row's own label and the VM
a NIC serves), the findings with their host, and the report's times as Unix seconds.

`hypervisor` and `site` are on every series of a host, its `host_up` and its findings
alike, so one selector (`{site="paris",hypervisor="kvm"}`) narrows them all. Both are the
host's, not the run's: `site` is the inventory's `fleetmon_site` (letters, digits, `_ . -`,
model.sites.parse_site), `hypervisor` what the probe found or the inventory declared.

An empty value is no label (Prometheus reads it so; InfluxDB refuses empty tags). A name
that came as bytes that are not UTF-8 is written with its escapes (`web\\udcff1`), as the
text report shows it: neither format can carry a lone surrogate.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime

from fleetmon.model import Finding, HostReport, Report, Row, Severity, notable
from fleetmon.model.catalog import RowScope
from fleetmon.model.series import row_label
from fleetmon.model.utf8 import utf8_safe


def epoch_s(iso: str) -> float | None:
    """The report's ISO 8601 UTC time ("2026-11-26T03:00:00Z") as Unix seconds."""
    try:
        return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def groups_label(groups: Iterable[str]) -> str:
    """A host's groups as one label value: `,kvm,prod,` (match with =~".*,prod,.*")."""
    names = [utf8_safe(g) for g in groups]
    return f",{','.join(names)}," if names else ""


def host_labels(h: HostReport, *, groups: bool = False) -> dict[str, str]:
    """`host`, `hypervisor` (kvm or xen; a plain host has none), `site` (the inventory's
    `fleetmon_site`; none without) and, if asked, `groups`."""
    labels = {
        "host": utf8_safe(h.name),
        "hypervisor": "" if h.hypervisor == "none" else h.hypervisor,
        "site": h.site or "",
    }
    if groups:
        labels["groups"] = groups_label(h.groups)
    return labels


def status_labels(h: HostReport, *, groups: bool = False) -> dict[str, str]:
    """A host's `host_up` labels: its host_labels and `status` (ok, unreachable...)."""
    return {**host_labels(h, groups=groups), "status": h.status.value}


def row_label_names(scope: RowScope) -> tuple[str, ...]:
    """The labels a row of the scope adds to its host's: its own (`vm`, `disk`, `nic`,
    `mountpoint`), then the one naming the row it serves (a NIC's `vm`), if any."""
    own = row_label(scope.name)
    return (own, row_label(scope.echo)) if scope.echo else (own,)


def row_labels(scope: RowScope, base: Mapping[str, str], row: Row) -> dict[str, str]:
    """A row's labels: its host's, its name, and the row it serves (RowScope.echo)."""
    labels = {**base, row_label(scope.name): utf8_safe(row.name)}
    if scope.echo is not None:
        labels[row_label(scope.echo)] = utf8_safe(row.labels.get(scope.echo, ""))
    return labels


def report_findings(report: Report) -> Iterator[tuple[HostReport | None, Finding]]:
    """Every finding that is not a plain pass (model.notable) with its host, hosts first,
    then the fleet's (no host): what alerts and problem labels are made of."""
    for h in report.hosts:
        for f in notable(h.findings):
            yield h, f
    for f in report.findings:
        yield None, f


def problem_labels(
    report: Report, *, groups: bool = False
) -> Iterator[tuple[HostReport | None, Finding, dict[str, str]]]:
    """Each finding that is not OK with its labels: its host's host_labels (`host`,
    `hypervisor`, `site`, `groups`; none for the fleet's), `rule`, `scope`, `severity`,
    `subject`."""
    for h, f in report_findings(report):
        if f.severity is Severity.OK:
            continue
        labels = host_labels(h, groups=groups) if h is not None else {"host": ""}
        labels |= {"rule": utf8_safe(f.rule), "scope": f.scope, "severity": f.severity.value,
                   "subject": utf8_safe(f.subject)}  # fmt: skip
        yield h, f, labels
