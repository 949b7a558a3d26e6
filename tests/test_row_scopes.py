"""Rows keyed by scope: the catalogue's ROW_SCOPES is consistent, and a new scope is picked up
by the rules, the JSON writer and every renderer without an edit of theirs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import reportfactory as rf
from test_report_golden import RAW
from test_rules_util import host, spec

from fleetmon.analyse.pipeline import analyse_host
from fleetmon.errors import RuleError
from fleetmon.io.rawstore import load_raw
from fleetmon.model import Report, Row, Severity, catalog
from fleetmon.model.catalog import Column, MetricDef, Ranking, RowScope
from fleetmon.render.html import render_html
from fleetmon.render.json import render_json
from fleetmon.render.nagios import render_nagios
from fleetmon.render.text import render_text
from fleetmon.rules import evaluate, load_rules


def test_row_scopes_are_consistent_with_the_metrics() -> None:
    names = [s.name for s in catalog.ROW_SCOPES]
    assert names == ["disk", "nic", "fs", "vm", "ctr", "guest"]
    assert [s.key for s in catalog.ROW_SCOPES] == [
        "disks", "nics", "filesystems", "vms", "containers", "guests",
    ]  # fmt: skip
    assert ("host", *names, "fleet") == catalog.SCOPES
    row_metrics = {m.name for s in catalog.ROW_SCOPES for m in s.metrics}
    assert set(catalog.ALL) == {m.name for m in catalog.HOST} | row_metrics
    for s in catalog.ROW_SCOPES:
        assert all(m.scope == s.name and m.name.startswith(f"{s.name}.") for m in s.metrics)
        used = [*s.columns, *s.detail, *(r.by for r in s.rankings)]
        assert {m for c in used for m in c.metrics} <= {m.name for m in s.metrics}, s.name
        assert s.rankings, s.name
        assert s.echo is None or s.echo in catalog.ROW_SCOPE


def test_a_column_sums_metrics_of_one_unit_only() -> None:
    with pytest.raises(ValueError, match="a column sums metrics of one unit"):
        catalog._col("vm.cpu_pct", "vm.mem_current_bytes")


def test_analysis_gives_rows_of_known_scopes_only() -> None:
    _run, raws = load_raw(str(RAW))
    hosts = [analyse_host(r) for r in raws]
    # `guest` rows come from pairing hosts across the run (analyse/guests.py), not from one
    assert {s for h in hosts for s in h.rows} == set(catalog.ROW_SCOPE) - {"guest"}
    kvm = next(h for h in hosts if h.name == "kvm0004")
    assert all(r.labels["hypervisor"] == "kvm" for r in kvm.rows_of("vm"))
    ports = {r.name: r.labels["vm"] for r in kvm.rows_of("nic") if "vm" in r.labels}
    assert set(ports.values()) == {r.name for r in kvm.rows_of("vm")}
    assert kvm.rows_of("ctr") == ()


# --- a new scope, as adding one to the catalogue makes it (ctr came in this way) -----

POD_METRICS = (
    MetricDef("pod.state", "pod", "state", "state"),
    MetricDef("pod.cpu_pct", "pod", "%", "CPU"),
    MetricDef("pod.mem_bytes", "pod", "B", "memory"),
)
POD = RowScope(
    "pod", "pods", "Pods", "pod", "pod", POD_METRICS,
    rankings=(Ranking("Top pods by CPU", Column("CPU", ("pod.cpu_pct",), "%")),),
    columns=(Column("cpu", ("pod.cpu_pct",), "%"), Column("mem", ("pod.mem_bytes",), "B")),
    busiest="busiest pod",
)  # fmt: skip


@pytest.fixture
def with_pods(monkeypatch: pytest.MonkeyPatch) -> None:
    """The catalogue with a `pod` entry: what adding the scope to catalog.py does."""
    monkeypatch.setattr(catalog, "ROW_SCOPES", (*catalog.ROW_SCOPES, POD))
    monkeypatch.setattr(catalog, "ROW_SCOPE", {**catalog.ROW_SCOPE, "pod": POD})
    monkeypatch.setattr(catalog, "SCOPES", (*catalog.SCOPES, "pod"))
    monkeypatch.setattr(catalog, "ALL", {**catalog.ALL, **{m.name: m for m in POD_METRICS}})


def _report(tmp_path: Path) -> Report:
    rules = tmp_path / "pod.yaml"
    rules.write_text(
        "- name: pods\n  hosts: all\n  rules:\n"
        "    - name: pod-cpu\n      metric: pod.cpu_pct\n      warning: '> 90'\n",
        encoding="utf-8",
    )
    pods = (
        Row("web", {"pod.state": "running", "pod.cpu_pct": 97.5, "pod.mem_bytes": 3 << 30}),
        Row("cron", {"pod.state": "exited", "pod.cpu_pct": 0.0, "pod.mem_bytes": 0}),
    )
    disks = (Row("sda", {"disk.util_pct": 12.0}),)
    h = host("app01", ("web",), {"cpu.busy_pct": 40.0}, disk=disks, pod=pods)
    hosts, fleet = evaluate(load_rules([str(rules)]), [h], {"app01": spec("app01")}, {})
    return Report(rf.RUN, hosts, {}, 1, fleet)


@pytest.mark.usefixtures("with_pods")
def test_a_new_scope_is_judged_and_shown_by_every_output(tmp_path: Path) -> None:
    report = _report(tmp_path)
    (h,) = report.hosts
    assert [(f.scope, f.subject, f.severity) for f in h.findings] == [
        ("pod", "web", Severity.WARNING),
        ("pod", "cron", Severity.OK),
    ]
    doc = json.loads(render_json(report), object_pairs_hook=dict)
    keys = list(doc["hosts"][0])
    assert keys[keys.index("metrics") :] == [
        "metrics", "disks", "nics", "filesystems", "vms", "containers", "guests", "pods",
        "notes",
        "since_last_run", "findings", "checks_passed",
    ]  # fmt: skip
    assert doc["hosts"][0]["pods"][0] == {
        "name": "web",
        "metrics": {"pod.state": "running", "pod.cpu_pct": 97.5, "pod.mem_bytes": 3 << 30},
    }
    text = render_text(report)
    lines = text.splitlines()
    head = lines[lines.index("Hosts") + 1]
    assert head.index("FULLEST FS") < head.index("BUSIEST POD") < head.index("VMS")
    assert lines[lines.index("Hosts") + 3].split()[-7:] == [
        "sda",
        "12%",
        "-",
        "-",
        "web",
        "98%",
        "-",
    ]
    top = text[text.index("Top pods by CPU") :].splitlines()
    assert top[1].split() == ["HOST", "POD", "CPU%", "MEM"]
    assert top[3].split() == ["app01", "web", "97.5", "3.0", "GiB"]
    assert top[4].split() == ["app01", "cron", "0.0", "0", "B"]
    assert len(top) == 5  # the last table of the report
    page = render_html(report)
    assert "<th>fullest fs<th>busiest pod<th>VMs<th>" in page
    assert "name the device, interface, mount or pod." in page
    assert "<h4>Pods</h4>" in page
    # One unit a column, in its heading (GiB for the memory column).
    assert "<th>pod<th>state<th>CPU %<th>memory GiB\n<tr><td>web<td>running<td>97.5" in page
    assert "WARNING: app01 web pod-cpu: web: pod.cpu_pct = 97.5 (warning: > 90)" in (
        render_nagios(report)
    )


def test_a_scope_absent_from_the_catalogue_is_refused_by_the_rules(tmp_path: Path) -> None:
    with pytest.raises(RuleError) as exc:
        _report(tmp_path)
    # The loader's own tests pin the whole message; the point here is the scope's absence.
    assert "unknown metric 'pod.cpu_pct'" in str(exc.value)


def test_without_rows_a_scope_has_an_empty_list_and_no_table() -> None:
    report = rf.sample_report()
    bare = dataclasses.replace(report.hosts[0], rows={})
    doc = json.loads(render_json(dataclasses.replace(report, hosts=(bare,))))
    assert [doc["hosts"][0][s.key] for s in catalog.ROW_SCOPES] == [[], [], [], [], [], []]
