"""Prometheus and OpenMetrics exposition (render.prom): the catalogue's names, the bytes
prometheus_client's own writers make of the same families, hostile names that parse back
as they were, no stale series, and a new row scope exported without an edit."""

from __future__ import annotations

import dataclasses
import re

import pytest
import reportfactory as rf
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics import exposition as om
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse
from prometheus_client.parser import text_string_to_metric_families as text_parse
from test_row_scopes import with_pods  # noqa: F401 (a fixture)

from fleetmon.analyse.pipeline import build_report
from fleetmon.model import HostSpec, RawResult, Report, Row, Status, catalog
from fleetmon.model.series import RESERVED, prom_metric
from fleetmon.render.prom import ReportCollector, render_prometheus
from fleetmon.render.promfamilies import metric_families, scaled

REPORTS = {
    "sample": rf.sample_report,
    "hostile": rf.hostile_report,
    "captured": rf.captured_report,
    "sited": rf.sited_report,
}
NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def _series(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of one family, parsed by prometheus_client: labels -> value."""
    out = {}
    for fam in text_parse(text):
        for s in fam.samples:
            if s.name == name:
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


def test_every_catalogue_metric_has_a_legal_distinct_name() -> None:
    names = [prom_metric(m).name for m in catalog.ALL.values()]
    assert len(set(names)) == len(names)
    for m in catalog.ALL.values():
        p = prom_metric(m)
        assert NAME.fullmatch(p.name), p.name
        assert p.name.startswith(f"fleetmon_{m.scope}_")
        assert not p.name.endswith(RESERVED), p.name
        assert not p.unit or p.name.endswith(f"_{p.unit}")
        assert "_pct" not in p.name, p.name
        assert not p.name.endswith("_ms"), p.name
        assert p.help
        assert f"(fleetmon {m.name})" in p.help


@pytest.mark.parametrize(
    ("metric", "name", "unit", "exp10"),
    [
        ("cpu.busy_pct", "fleetmon_host_cpu_busy_ratio", "ratio", -2),
        ("cpu.count", "fleetmon_host_cpus", "", 0),
        ("hv.vms_total", "fleetmon_host_hv_vms", "", 0),
        ("uptime_s", "fleetmon_host_uptime_seconds", "seconds", 0),
        ("host.rebooted", "fleetmon_host_rebooted", "", 0),
        ("disk.r_await_ms", "fleetmon_disk_r_await_seconds", "seconds", -3),
        ("disk.read_bytes_per_s", "fleetmon_disk_read_bytes_per_second", "", 0),
        ("fs.free_bytes", "fleetmon_fs_free_bytes", "bytes", 0),
        ("vm.vcpu_delay_pct", "fleetmon_vm_vcpu_delay_ratio", "ratio", -2),
        ("vm.state", "fleetmon_vm_state", "", 0),
    ],
)
def test_names_follow_the_prometheus_conventions(
    metric: str, name: str, unit: str, exp10: int
) -> None:
    p = prom_metric(catalog.ALL[metric])
    assert (p.name, p.unit, p.exp10) == (name, unit, exp10)


def test_scaling_is_decimal() -> None:
    assert scaled(41.2, -2) == 0.412  # 41.2 / 100 is 0.41200000000000003
    assert scaled(3.5, -3) == 0.0035
    assert scaled(1e-05, -2) == 1e-07
    assert scaled(7, -2) == 0.07
    assert scaled(True, 0) == 1.0
    assert scaled(float("nan"), 0) is None
    assert scaled("running", 0) is None


@pytest.mark.parametrize("which", sorted(REPORTS))
@pytest.mark.parametrize("groups", [False, True])
def test_the_text_is_prometheus_clients_own(which: str, groups: bool) -> None:
    report = REPORTS[which]()
    collector = ReportCollector(lambda: report, groups=groups)
    assert render_prometheus(report, groups=groups).encode() == generate_latest(collector)
    assert render_prometheus(report, openmetrics=True, groups=groups).encode() == (
        om.generate_latest(collector, escaping=om.ALLOWUTF8)
    )


def test_hostile_names_parse_back_as_they_were() -> None:
    report = rf.hostile_report()
    for openmetrics in (False, True):
        text = render_prometheus(report, openmetrics=openmetrics, groups=True)
        families = list((om_parse if openmetrics else text_parse)(text))
        values = {v for f in families for s in f.samples for v in s.labels.values()}
        for name in (rf.HOSTILE_QUOTE, rf.HOSTILE_COMMA, rf.HOSTILE_BACKSLASH, rf.HOSTILE_VM):
            assert name in values
        assert f",kvm,{rf.HOSTILE_QUOTE}," in values  # the groups label
    cpu = _series(render_prometheus(report), "fleetmon_vm_cpu_ratio")
    key = (("host", rf.HOSTILE_COMMA), ("hypervisor", "kvm"), ("vm", rf.HOSTILE_QUOTE))
    assert cpu[key] == 0.412


def test_what_a_host_runs_on_is_an_info_family() -> None:
    """node_exporter's node_dmi_info, for sources/virt.py: one series worth 1 per host that
    said, joined on `host`; its DMI product is the host's text, escaped and parsed back."""
    report = rf.hostile_report()
    for openmetrics in (False, True):
        text = render_prometheus(report, openmetrics=openmetrics)
        kind = "info" if openmetrics else "gauge"
        name = "fleetmon_host_virtualization" + ("" if openmetrics else "_info")
        assert f"# TYPE {name} {kind}\n" in text
        (fam,) = (f for f in (om_parse if openmetrics else text_parse)(text)
                  if f.name == name)  # fmt: skip
        (sample,) = fam.samples  # the one host with a virt; the others said nothing
        assert sample.name == "fleetmon_host_virtualization_info"
        assert sample.value == 1
        assert sample.labels == {"host": rf.HOSTILE_COMMA, "hypervisor": "kvm", "role": "guest",
                                 "type": "qemu",
                                 "product": rf.HOSTILE_QUOTE + rf.HOSTILE_BACKSLASH}  # fmt: skip
    assert "fleetmon_host_virtualization" not in render_prometheus(rf.sample_report())


def test_the_run_and_every_hosts_status() -> None:
    report = dataclasses.replace(
        rf.sample_report(), run=dataclasses.replace(rf.RUN, duration_s=12.5)
    )
    text = render_prometheus(report)
    assert _series(text, "fleetmon_run_timestamp_seconds") == {(): 1795662000.0}
    assert _series(text, "fleetmon_run_duration_seconds") == {(): 12.5}
    assert _series(text, "fleetmon_run_exit_code") == {(): 2.0}
    hosts = _series(text, "fleetmon_hosts")
    assert hosts[(("status", "ok"),)] == 6
    assert hosts[(("status", "unreachable"),)] == 1
    assert hosts[(("status", "timeout"),)] == 0
    assert sum(hosts.values()) == len(report.hosts)
    up = _series(text, "fleetmon_host_up")
    assert up[(("host", "kvm03"), ("status", "unreachable"))] == 0
    assert up[(("host", "kvm01"), ("status", "ok"))] == 1
    assert len(up) == len(report.hosts)
    findings = _series(text, "fleetmon_finding")
    assert findings[(("host", "kvm01"), ("rule", "vm-cpu-saturated"), ("scope", "vm"),
                     ("severity", "critical"), ("subject", "vm1"))] == 1  # fmt: skip
    assert findings[(("rule", "fleet-busy"), ("scope", "fleet"), ("severity", "warning"),
                     ("subject", "kvm"))] == 1  # fmt: skip


def test_a_host_not_collected_keeps_only_its_up_series() -> None:
    text = render_prometheus(rf.sample_report())
    lines = [line for line in text.splitlines() if 'host="kvm03"' in line]
    assert lines == ['fleetmon_host_up{host="kvm03",status="unreachable"} 0.0']


def test_a_host_not_collected_keeps_the_hypervisor_its_inventory_declares() -> None:
    """An unreachable KVM host's `host_up` keeps `hypervisor="kvm"` when the inventory says
    so (`fleetmon_hypervisor`), so a `{hypervisor="kvm"} == 0` alert sees it down; with
    `auto` nothing is known of it and it has no such label."""
    declared = HostSpec("kvm9", "127.0.0.1", vars={"fleetmon_hypervisor": "kvm"})
    detected = HostSpec("kvm8", "127.0.0.1", vars={"fleetmon_hypervisor": "auto"})
    plain = HostSpec("web9", "127.0.0.1", vars={"fleetmon_hypervisor": "none"})
    raws = [
        RawResult(s, Status.UNREACHABLE, "connection refused") for s in (declared, detected, plain)
    ]
    report = build_report(raws, rf.RUN)
    assert [h.hypervisor for h in report.hosts] == ["kvm", "none", "none"]
    up = _series(render_prometheus(report), "fleetmon_host_up")
    assert up == {
        (("host", "kvm9"), ("hypervisor", "kvm"), ("status", "unreachable")): 0,
        (("host", "kvm8"), ("status", "unreachable")): 0,
        (("host", "web9"), ("status", "unreachable")): 0,
    }


def test_rows_are_labelled_by_their_scope() -> None:
    text = render_prometheus(rf.sample_report())
    assert 'fleetmon_disk_util_ratio{host="kvm01",hypervisor="kvm",disk="nvme0n1"}' not in text
    assert re.search(r'fleetmon_disk_util_ratio\{disk="nvme0n1",host="kvm01"\} ', text)
    assert re.search(r'fleetmon_fs_used_ratio\{host="web01",mountpoint="/"\} 0\.88\n', text)
    # A VM's tap port names its VM; a host's own NIC has no vm label.
    assert re.search(r'fleetmon_nic_rx_bytes_per_second\{host="kvm01",nic="vnet2",vm="vm1"\}', text)
    assert re.search(r'fleetmon_nic_rx_bytes_per_second\{host="kvm01",nic="enp6s0"\}', text)
    assert 'fleetmon_vm_state{host="kvm01",state="shutoff",vm="build-7"} 1.0' in text
    # A host without a hypervisor has no hypervisor label.
    assert re.search(r'fleetmon_host_cpu_busy_ratio\{host="web01"\} ', text)


def test_groups_are_opt_in() -> None:
    report = rf.sample_report()
    assert "groups=" not in render_prometheus(report)
    text = render_prometheus(report, groups=True)
    assert 'fleetmon_host_up{groups=",kvm,prod,",host="kvm01",status="ok"} 1.0' in text


def test_site_and_hypervisor_label_every_series_of_a_host() -> None:
    """`site` (the inventory's fleetmon_site) and `hypervisor` on a host's metrics, rows,
    host_up, collection time and findings alike: one selector narrows them all."""
    ctrs = (Row("web", {"ctr.cpu_pct": 150.0}),)
    report = rf.sited_report()
    kvm01 = dataclasses.replace(report.hosts[0], rows={**report.hosts[0].rows, "ctr": ctrs},
                                collection_s=1.5)  # fmt: skip
    report = dataclasses.replace(report, hosts=(kvm01, *report.hosts[1:]))
    text = render_prometheus(report)
    assert 'fleetmon_host_up{host="kvm01",hypervisor="kvm",site="paris",status="ok"} 1.0\n' in text
    assert 'fleetmon_host_collection_seconds{host="kvm01",hypervisor="kvm",site="paris"} 1.5\n' in (
        text
    )
    assert 'fleetmon_host_cpus{host="kvm01",hypervisor="kvm",site="paris"} 32.0\n' in text
    assert 'fleetmon_vm_cpu_ratio{host="kvm01",hypervisor="kvm",site="paris",vm="vm1"} 0.974\n' in (
        text
    )
    assert ('fleetmon_ctr_cpu_ratio{container="web",host="kvm01",hypervisor="kvm",site="paris"} '
            "1.5\n") in text  # fmt: skip
    # A host not collected keeps its site (its hypervisor is not known): an unreachable site
    # shows in its own panel.
    assert 'fleetmon_host_up{host="kvm03",site="paris",status="unreachable"} 0.0\n' in text
    for line in text.splitlines():
        if 'host="kvm01"' in line:
            assert 'hypervisor="kvm"' in line, line
            assert 'site="paris"' in line, line
        if 'host="web01"' in line:  # no site, no hypervisor: no label
            assert "site=" not in line, line
            assert "hypervisor=" not in line, line
    findings = _series(text, "fleetmon_finding")
    assert findings[(("host", "kvm01"), ("hypervisor", "kvm"), ("rule", "vm-cpu-saturated"),
                     ("scope", "vm"), ("severity", "critical"), ("site", "paris"),
                     ("subject", "vm1"))] == 1  # fmt: skip
    assert findings[(("host", "web01"), ("rule", "fs-full"), ("scope", "fs"),
                     ("severity", "warning"), ("subject", "/"))] == 1  # fmt: skip
    assert findings[(("rule", "fleet-busy"), ("scope", "fleet"), ("severity", "warning"),
                     ("subject", "kvm"))] == 1  # fmt: skip
    # The hostile host's labels parse back beside its site and hypervisor.
    for openmetrics in (False, True):
        rendered = render_prometheus(report, openmetrics=openmetrics)
        up = [s for f in (om_parse if openmetrics else text_parse)(rendered)
              for s in f.samples if s.name == "fleetmon_host_up"]  # fmt: skip
        evil = [s.labels for s in up if s.labels["host"] == rf.HOSTILE_HOST]
        assert evil == [{"host": rf.HOSTILE_HOST, "hypervisor": "xen", "site": "lyon",
                         "status": "ok"}]  # fmt: skip
    grouped = render_prometheus(report, groups=True)
    assert ('fleetmon_host_up{groups=",kvm,prod,",host="kvm01",hypervisor="kvm",site="paris",'
            'status="ok"} 1.0\n') in grouped  # fmt: skip


def test_no_timestamps() -> None:
    for line in render_prometheus(rf.sample_report(), openmetrics=True).splitlines():
        if not line.startswith("#"):
            assert len(line.rsplit("} ", 1)[-1].split()) in (1, 2), line  # value only


@pytest.mark.usefixtures("with_pods")
def test_a_new_scope_is_exported_without_an_edit() -> None:
    pods = (Row("web", {"pod.state": "running", "pod.cpu_pct": 97.5, "pod.mem_bytes": 3 << 30}),)
    h = dataclasses.replace(rf.sample_report().hosts[0], rows={"pod": pods}, hypervisor="kvm")
    text = render_prometheus(Report(rf.RUN, (h,), {}, 0))
    assert 'fleetmon_pod_cpu_ratio{host="kvm01",hypervisor="kvm",pod="web"} 0.975' in text
    assert 'fleetmon_pod_mem_bytes{host="kvm01",hypervisor="kvm",pod="web"} 3.221225472e+09' in (
        text
    )
    assert 'fleetmon_pod_state{host="kvm01",hypervisor="kvm",pod="web",state="running"} 1.0' in (
        text
    )


def test_containers_are_labelled_and_their_oom_kills_are_a_counter() -> None:
    ctrs = (Row("web", {"ctr.cpu_pct": 150.0, "ctr.oom_kills": 3, "ctr.pids": 12}),)
    h = dataclasses.replace(rf.sample_report().hosts[0], rows={"ctr": ctrs})
    report = Report(rf.RUN, (h,), {}, 0)
    text = render_prometheus(report)
    assert 'fleetmon_ctr_cpu_ratio{container="web",host="kvm01"} 1.5\n' in text  # 1.5 CPUs
    assert 'fleetmon_ctr_pids{container="web",host="kvm01"} 12.0\n' in text
    # Cumulative since the cgroup was created (METRICS.md): a counter, named so.
    assert "# TYPE fleetmon_ctr_oom_kills_total counter\n" in text
    assert 'fleetmon_ctr_oom_kills_total{container="web",host="kvm01"} 3.0\n' in text
    omtext = render_prometheus(report, openmetrics=True)
    assert "# TYPE fleetmon_ctr_oom_kills counter\n" in omtext
    assert 'fleetmon_ctr_oom_kills_total{container="web",host="kvm01"} 3.0\n' in omtext
    collector = ReportCollector(lambda: report)
    assert text.encode() == generate_latest(collector)
    assert omtext.encode() == om.generate_latest(collector, escaping=om.ALLOWUTF8)
    check = [f for f in text_parse(text) if f.name == "fleetmon_ctr_oom_kills"]
    assert check[0].type == "counter"


def test_families_are_what_a_long_running_exporter_needs() -> None:
    """`metric_families` takes a Report and nothing else: no file, no option, no clock."""
    families = list(metric_families(rf.sample_report()))
    names = [f.name for f in families]
    assert len(names) == len(set(names))
    assert names[:5] == [
        "fleetmon_run_timestamp_seconds",
        "fleetmon_run_exit_code",
        "fleetmon_hosts",
        "fleetmon_host_up",
        "fleetmon_finding",
    ]
    assert list(ReportCollector(lambda: None).collect()) == []


def test_an_empty_fleet() -> None:
    report = Report(rf.RUN, (), {}, 3)
    text = render_prometheus(report)
    assert _series(text, "fleetmon_hosts")[(("status", "ok"),)] == 0
    failed = rf.failed("kvm9", Status.TIMEOUT, "timed out")
    assert "fleetmon_host_cpus" not in render_prometheus(Report(rf.RUN, (failed,), {}, 3))


def test_a_registry_serves_the_latest_report() -> None:
    """What a long-running exporter does: register the collector, let the library write."""
    latest: list[Report] = []
    registry = CollectorRegistry()
    registry.register(ReportCollector(lambda: latest[-1] if latest else None))
    assert generate_latest(registry) == b""
    latest.append(rf.sample_report())
    assert generate_latest(registry) == render_prometheus(latest[-1]).encode()
