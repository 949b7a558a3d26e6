"""From raw probe output to the JSON contract and the text report (captures, whole pipeline)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from probetext import NONCE, probe_stdout

from fleetmon.analyse.pipeline import _row, analyse_host, build_report
from fleetmon.model import HostReport, HostSpec, RawResult, Row, RunInfo, Status
from fleetmon.render.json import render_json
from fleetmon.render.text import render_text

RUN = RunInfo("0.1.0", "2026-11-26T03:00:00Z", 1.0, "fleet.yaml")
HOST_KEYS = {
    "name", "address", "groups", "status", "error", "hypervisor", "interval_s", "metrics",
    "disks", "nics", "filesystems", "vms", "containers", "guests", "notes", "findings",
    "product_uuid",
    "vm_of",  # the inventory's fleetmon_vm_of or null (merge pairs by it again)
    "site",  # the inventory's fleetmon_site or null (merge keeps it)
    "since_last_run",  # null without a history (issue 13)
    "checks_passed",  # the passes findings leaves out (merge counts them again)
    "sampled_at", "collection_s",  # the host's own time and cost (merge keeps them)
    "collected_by",  # run --cluster: the worker that collected the host, else null
    # What the host runs on (sources/virt.py), null when not read.
    "virtualization_type", "virtualization_role", "virtualization", "virtualization_product",
}  # fmt: skip


def _raw(
    name: str, stdout: str, status: Status = Status.OK, reason: str | None = None
) -> RawResult:
    spec = HostSpec(name=name, address=f"192.0.2.{len(name)}", groups=("kvm", "prod"))
    return RawResult(spec, status, reason, stdout=stdout, exit_status=0, nonce=NONCE)


def test_kvm_host_from_captures_has_host_vm_and_hypervisor_figures() -> None:
    host = analyse_host(_raw("kvm01", probe_stdout(kvm=True)))
    assert host.status is Status.OK, host.error
    assert host.hypervisor == "kvm"
    # Remote clock: sysstat root1 -> root2 uptimes 7192.55 -> 7223.72.
    assert host.interval_s == pytest.approx(31.17)
    assert host.metrics["cpu.count"] == 8
    assert {vm.name for vm in host.rows_of("vm")} == {"vm1", "vm2"}
    assert host.metrics["hv.vms_running"] == 2
    assert host.metrics["hv.vms_total"] == 2
    # Two 1-vCPU guests on the 8 CPUs of the sysstat host's /proc/stat.
    assert host.metrics["hv.vcpu_overcommit_ratio"] == pytest.approx(2 / 8)
    vm1 = next(vm for vm in host.rows_of("vm") if vm.name == "vm1")
    assert vm1.labels["hypervisor"] == "kvm"
    # vm1's cpu.time 4874849000 -> 5136834000 ns over the host's 31.17 s, 1 vCPU.
    assert vm1.metrics["vm.cpu_pct"] == pytest.approx(100 * 261985000 / (1e9 * 31.17), rel=1e-6)
    # The probe's own CPU time (10+20+30+40 ms) is above 50 ms: the host says so.
    assert "the probe used 100 ms of CPU on this host" in host.notes


def test_plain_host_has_no_vm_section() -> None:
    host = analyse_host(_raw("web01", probe_stdout(("root2", "root3"))))
    assert host.status is Status.OK
    assert host.hypervisor == "none"
    assert host.rows_of("vm") == ()
    assert not any(k.startswith("hv.") for k in host.metrics)


@pytest.mark.parametrize(
    ("stdout", "reason"),
    [
        ("\x00\x01garbage\xff" * 100, "parse error: section markers: no probe sections"),
        (probe_stdout()[:5000], "output ends inside the section"),
        (
            probe_stdout().replace(f"@@fleetmon-{NONCE}@@ end 1 stat 0", f"@@fleetmon-{NONCE}@@ x"),
            "parse error: section markers: malformed marker line",
        ),
    ],
)
def test_broken_output_is_a_parse_error_naming_the_section(stdout: str, reason: str) -> None:
    host = analyse_host(_raw("bad", stdout))
    assert host.status is Status.PARSE_ERROR
    assert host.error is not None
    assert reason in host.error
    assert host.metrics == {}


def test_json_follows_the_metrics_md_contract() -> None:
    raws = [
        _raw("kvm01", probe_stdout(kvm=True)),
        _raw("kvm02", "", Status.UNREACHABLE, "connect to 192.0.2.6:22 timed out after 10 s"),
    ]
    report = build_report(raws, RUN)
    doc = json.loads(render_json(report))
    assert doc["schema"] == "fleetmon.report/1"
    assert {"fleetmon_version", "started_at", "interval_s", "exit_code", "summary", "hosts"} <= set(
        doc
    )
    assert doc["exit_code"] == 3  # a host was not collected, no rules
    assert doc["summary"] == {
        "hosts": 2, "collected": 1, "failed": 1, "ok": 1, "warning": 0, "critical": 0,
        "unknown": 0,
    }  # fmt: skip
    ok, down = doc["hosts"]
    assert set(ok) == HOST_KEYS
    assert set(down) == HOST_KEYS
    assert down["status"] == "unreachable"
    assert down["error"] == "connect to 192.0.2.6:22 timed out after 10 s"
    assert down["metrics"] == {}
    assert down["vms"] == []
    assert ok["groups"] == ["kvm", "prod"]
    for key in ("disks", "nics", "filesystems", "vms"):
        assert ok[key], key
        assert all(set(row) <= {"name", "metrics", "labels"} for row in ok[key])
    vm = next(v for v in ok["vms"] if v["name"] == "vm1")
    assert vm["metrics"]["vm.state"] == "running"
    stat = doc["fleet"]["metrics"]["cpu.busy_pct"]
    assert set(stat) == {"count", "min", "median", "p95", "max", "mean", "stddev", "outliers"}
    assert stat["min"] == stat["max"] == ok["metrics"]["cpu.busy_pct"]


def test_text_report_lists_every_section_and_cleans_control_characters() -> None:
    hostile = "evil\x1b[2J\x07"
    raws = [
        _raw("kvm01", probe_stdout(kvm=True)),
        _raw(hostile, "", Status.AUTH_FAILED, "permission denied\x1b]0;pwned\x07"),
    ]
    text = render_text(build_report(raws, RUN))
    for title in ("Hosts", "Busiest disks", "Busiest NICs", "Fullest filesystems"):
        assert f"\n{title}\n" in text
    assert "Hypervisors" in text
    assert "Top VMs by CPU" in text
    assert "Not collected" in text
    assert "\x1b" not in text
    assert "\x07" not in text
    assert "evil\\x1b[2J\\x07" in text
    assert "auth_failed" in text
    assert text.splitlines()[1].startswith("2 hosts: 1 collected, 1 not collected")


def test_detected_kvm_host_gets_the_kvm_rules_and_json_lists_no_ok_findings() -> None:
    from pathlib import Path

    from fleetmon.rules import default_rule_files, evaluate, load_rules

    playbooks = Path(__file__).resolve().parent.parent / "fleetmon" / "playbooks"
    rules = load_rules(default_rule_files(str(playbooks)))
    raw = _raw("kvm01", probe_stdout(kvm=True))
    specs = {"kvm01": raw.host}

    def ev(hosts: tuple[HostReport, ...], fleet: Any) -> Any:
        return evaluate(rules, hosts, specs, fleet)

    report = build_report([raw], RUN, evaluate=ev)
    (host,) = report.hosts
    fired = {f.rule for f in host.findings if f.severity.value != "ok"}
    assert any(f.scope == "vm" for f in host.findings), fired
    assert any(f.rule.startswith("kvm-vm-") for f in host.findings)
    assert "hypervisor-unidentified" not in fired
    doc = json.loads(render_json(report))
    severities = {f["severity"] for f in doc["hosts"][0]["findings"]}
    assert "ok" not in severities
    assert len(doc["hosts"][0]["findings"]) == sum(
        1 for f in host.findings if f.severity.value != "ok"
    )


def _findings_section(text: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Findings: "))
    return lines[start + 1 : lines.index("", start)]


def test_text_findings_are_capped_worst_first_with_a_count_of_the_rest() -> None:
    from fleetmon.model import Finding, Report, Severity

    def finding(sev: Severity, i: int) -> Finding:
        return Finding(f"rule-{i:02d}", sev, "host", f"h{i:02d}", "cpu.busy_pct", 95.0, "> 90",
                       f"busy {i}")  # fmt: skip

    # 60 warnings first, then 3 criticals and 2 ok: the criticals must still be shown.
    found = [finding(Severity.WARNING, i) for i in range(60)]
    found += [finding(Severity.CRITICAL, i) for i in range(60, 63)]
    found += [finding(Severity.OK, i) for i in range(63, 65)]
    host = HostReport("h1", "192.0.2.1", ("g",), Status.OK, None, findings=tuple(found))
    report = Report(RUN, (host,), {}, exit_code=2)
    table = _findings_section(render_text(report))
    assert len(table) == 2 + 50 + 1  # header, rule, 50 rows, the count line
    assert [row.split()[0] for row in table[2:5]] == ["CRITICAL"] * 3
    assert all(row.split()[0] == "WARNING" for row in table[5:52])
    assert "busy 46" in table[51]  # warnings by rule: rule-00 .. rule-46 fit
    assert "busy 47" not in "\n".join(table)
    # 63 findings past ok, 50 shown.
    assert table[-1] == "… and 13 more lines of findings (see --format json or html)"
    # Within the cap: no count line; a caller may choose another cap.
    assert len(_findings_section(render_text(report, max_findings=63))) == 2 + 63
    assert _findings_section(render_text(report, max_findings=3))[-1] == (
        "… and 60 more lines of findings (see --format json or html)"
    )


def test_the_pipelines_row_copy_is_dataclasses_replace() -> None:
    # The pipeline relabels VM and NIC rows with Row(name, metrics, labels), not
    # dataclasses.replace (a third of its cost): a field Row gains must be added there too.
    row = Row("vm1", {"vm.cpu_pct": 5.0}, {"hypervisor": "kvm"})
    metrics, labels = {"vm.cpu_pct": 7.0}, {"vm": "web-1"}
    assert _row(row, metrics, labels) == dataclasses.replace(row, metrics=metrics, labels=labels)
    assert [f.name for f in dataclasses.fields(Row)] == ["name", "metrics", "labels"]


def test_the_hypervisors_table_says_a_xen_host_cpu_is_dom0_s() -> None:
    """Xen's dom0 sees its own vCPUs only: its CPU% beside the guests' share of the whole
    machine read as the guests using 10x the host. Each column says what it measures."""
    from fleetmon.render.texttables import hypervisors

    m = {"hv.vms_total": 7, "hv.vms_running": 7, "hv.vm_cpu_pct": 24.7, "cpu.busy_pct": 2.5}
    kvm = HostReport("kvm1", "a", (), Status.OK, None, 1.0, m, hypervisor="kvm")
    xen = dataclasses.replace(kvm, name="xen1", hypervisor="xen")
    lines = hypervisors([kvm, xen], None, None)
    assert lines[0] == "Hypervisors"
    header, _, *rows = lines[1].splitlines()
    assert header.split("  ")[-1] == "HOST CPU%"
    assert "GUEST CPU% OF MACHINE" in header
    got = {row.split()[0]: row.split("  ")[-1].strip() for row in rows}
    assert got == {"kvm1": "2.5", "xen1": "2.5 (dom0)"}
