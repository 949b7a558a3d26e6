"""The report as Prometheus metric families (pure): what a textfile, a push, OpenMetrics or
a long-running exporter's scrape show, independent of any file or command line.

Series of a host that was not collected are left out, so a scraper sees no stale value:
such a host keeps only `fleetmon_host_up{status=...} 0` (and its collection time). Labels:
`host`, the row's own (`vm`, `disk`, `nic`, `mountpoint`: series.row_label), the
VM a NIC serves (`vm`, RowScope.echo), `hypervisor` (kvm, xen; none is no label), `site`
(the inventory's `fleetmon_site`) and, when asked, `groups` (",kvm,prod,", the Prometheus
service-discovery convention for lists): `host_up`, the collection time and a host's
findings carry the same host labels as its metrics (render.labels). An empty label value is
no label, as Prometheus reads it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from fleetmon.model import HostReport, MetricValue, Report, Status, catalog
from fleetmon.model.catalog import MetricDef, RowScope
from fleetmon.model.series import PREFIX, PromMetric, prom_metric
from fleetmon.model.utf8 import utf8_safe
from fleetmon.render.labels import (
    epoch_s,
    host_labels,
    problem_labels,
    row_label_names,
    row_labels,
    status_labels,
)

#: One series: its label values (in the family's label order), its value.
Sample = tuple[tuple[str, ...], float]


@dataclass(frozen=True, slots=True)
class Family:
    """A metric family: every series of one name, with its HELP, TYPE and UNIT."""

    name: str
    help: str
    labels: tuple[str, ...]  # label names, sorted as the exposition writes them
    samples: Sequence[Sample]
    unit: str = ""  # OpenMetrics UNIT, a suffix of the name
    #: or "counter", whose samples are named `<name>_total`, or "info", `<name>_info` worth 1
    #: (the text format 0.0.4 calls it a gauge, as prometheus_client writes it)
    kind: str = "gauge"

    @property
    def sample_name(self) -> str:
        """The name of the family's samples (a counter's end in `_total`, an info's `_info`)."""
        return self.name + _SUFFIX.get(self.kind, "")


_SUFFIX = {"counter": "_total", "info": "_info"}


def scaled(v: MetricValue, exp10: int) -> float | None:
    """A catalogue value as a Prometheus sample: None when unknown or not a number, times
    10**exp10 as decimal arithmetic would give it (41.2 % is 0.412, not 0.41200000000000003)."""
    if v is None or isinstance(v, str):
        return None
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    f = float(v)
    if not math.isfinite(f):
        return None
    if exp10 == 0:
        return f
    mantissa, _, exp = repr(f).partition("e")
    return float(f"{mantissa}e{int(exp or 0) + exp10}")


def _ordered(names: Iterable[str], labels: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(labels.get(n, "") for n in names)


def metric_families(report: Report, *, groups: bool = False) -> Iterator[Family]:
    """Every family of the report: the run, each host's status, the findings, then the
    catalogue's metrics scope by scope (catalog.ROW_SCOPES, so a new scope comes along)."""
    yield from run_families(report)
    yield from host_status_families(report, groups=groups)
    virt = virtualization_family(report, groups=groups)
    if virt.samples:
        yield virt
    yield finding_family(report, groups=groups)
    collected = [h for h in report.hosts if h.collected]
    bases = [host_labels(h, groups=groups) for h in collected]
    names = tuple(sorted(bases[0])) if bases else ("host",)
    host_rows = [(_ordered(names, b), h.metrics) for h, b in zip(collected, bases, strict=True)]
    for m in catalog.HOST:
        yield from _metric_family(m, names, host_rows)
    for scope in catalog.ROW_SCOPES:
        yield from scope_families(scope, collected, bases)


def run_families(report: Report) -> Iterator[Family]:
    """When the run started, how long it took, its exit code and its hosts by status."""
    started = epoch_s(report.run.started_at)
    if started is not None:
        yield Family(f"{PREFIX}_run_timestamp_seconds", "when the run started, Unix time",
                     (), [((), started)], "seconds")  # fmt: skip
    if report.run.duration_s is not None:
        yield Family(f"{PREFIX}_run_duration_seconds",
                     "from the run's start until its last host was collected and analysed",
                     (), [((), report.run.duration_s)], "seconds")  # fmt: skip
    yield Family(f"{PREFIX}_run_exit_code", "the run's exit code: 0 OK, 1 warning, 2 critical, "
                 "3 unknown", (), [((), float(report.exit_code))])  # fmt: skip
    counts = dict.fromkeys(Status, 0)
    for h in report.hosts:
        counts[h.status] += 1
    yield Family(f"{PREFIX}_hosts", "hosts of the run by how their collection ended",
                 ("status",), [((s.value,), float(n)) for s, n in counts.items()])  # fmt: skip


def host_status_families(report: Report, *, groups: bool = False) -> Iterator[Family]:
    """`fleetmon_host_up{host,hypervisor,site,status}` for every host, and each one's
    collection time (without `status`)."""
    names = ("groups", "host", "hypervisor", "site", "status")[0 if groups else 1 :]
    up: list[Sample] = []
    took: list[Sample] = []
    for h in report.hosts:
        labels = status_labels(h, groups=groups)
        up.append((_ordered(names, labels), 1.0 if h.collected else 0.0))
        if h.collection_s is not None:
            took.append((_ordered(names[:-1], labels), h.collection_s))
    yield Family(f"{PREFIX}_host_up", "1 when the host was collected; status says how it "
                 "ended (ok, unreachable, auth_failed, timeout...)", names, up)  # fmt: skip
    if took:
        yield Family(f"{PREFIX}_host_collection_seconds", "time taken to collect the host",
                     names[:-1], took, "seconds")  # fmt: skip


def virtualization_family(report: Report, *, groups: bool = False) -> Family:
    """`fleetmon_host_virtualization_info{host,hypervisor,site,type,role,product} 1` for each
    host that said what it runs on (sources/virt.py: systemd-detect-virt's `type`, Ansible's
    `role`; `product` its DMI vendor and name), as node_exporter's node_dmi_info: joined on
    `host` in PromQL (`* on(host) group_left(type)`)."""
    every = ("groups", "host", "hypervisor", "product", "role", "site", "type")
    names = every[0 if groups else 1 :]
    samples: list[Sample] = []
    for h in report.hosts:
        if h.virt is None:
            continue
        labels = {**host_labels(h, groups=groups), "type": h.virt.type, "role": h.virt.role,
                  "product": utf8_safe(h.virt.product or "")}  # fmt: skip
        samples.append((_ordered(names, labels), 1.0))
    text = ("what the host runs on: type as systemd-detect-virt names it (kvm, xen, docker... "
            "none), role guest, host or none, product its DMI vendor and name")  # fmt: skip
    return Family(f"{PREFIX}_host_virtualization", text, names, samples, kind="info")


def finding_family(report: Report, *, groups: bool = False) -> Family:
    """`fleetmon_finding{host,hypervisor,rule,scope,severity,site,subject} 1` for each
    finding that is not OK (fleet findings have no host, hypervisor or site)."""
    names: tuple[str, ...] = ("host", "hypervisor", "rule", "scope", "severity", "site",
                              "subject")  # fmt: skip
    if groups:
        names = ("groups", *names)
    samples = [
        (_ordered(names, labels), 1.0) for _h, _f, labels in problem_labels(report, groups=groups)
    ]
    return Family(f"{PREFIX}_finding", "a rule's finding that is not OK, worth 1", names, samples)


def scope_families(
    scope: RowScope, hosts: Sequence[HostReport], bases: Sequence[Mapping[str, str]]
) -> Iterator[Family]:
    """The families of one row scope over the hosts (with their base labels)."""
    names = tuple(sorted({*(bases[0] if bases else ("host",)), *row_label_names(scope)}))
    rows = [
        (_ordered(names, row_labels(scope, base, row)), row.metrics)
        for h, base in zip(hosts, bases, strict=True)
        for row in h.rows_of(scope.name)
    ]
    if not rows:
        return
    for m in scope.metrics:
        yield from _metric_family(m, names, rows)


def _metric_family(
    m: MetricDef,
    names: tuple[str, ...],
    rows: Sequence[tuple[tuple[str, ...], Mapping[str, MetricValue]]],
) -> Iterator[Family]:
    p: PromMetric = prom_metric(m)
    key, exp10 = m.name, p.exp10
    samples: list[Sample] = []
    add = samples.append
    if p.state_label is not None:
        state_names = tuple(sorted((*names, p.state_label)))
        at = state_names.index(p.state_label)
        for values, metrics in rows:
            v = metrics.get(key)
            if isinstance(v, str) and v:
                add(((*values[:at], utf8_safe(v), *values[at:]), 1.0))
        if samples:
            yield Family(p.name, p.help, state_names, samples, p.unit, p.kind)
        return
    for values, metrics in rows:
        v = metrics.get(key)
        if v is None:
            continue
        if exp10 == 0 and type(v) is float and math.isfinite(v):
            add((values, v))  # the common case, without the general conversion
            continue
        f = scaled(v, exp10)
        if f is not None:
            add((values, f))
    if samples:
        yield Family(p.name, p.help, names, samples, p.unit, p.kind)
