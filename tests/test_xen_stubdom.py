"""Xen: rates over xentop's measured interval, and stub domains counted apart from the VMs.

The host is a stand-in (no Xen host here, and no licensed capture has a stub domain): its
`xl list` and xentop lines are SYNTHESIZED from xl_list.c's and xentop.c's printf formats
(tests/data/SOURCES.md), with the probe's `fm_uptime` stamps 1.25 s apart where xentop's
-d was 1 s. Every expected value below is worked out by hand from those files' numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import fleetmon
from fleetmon.analyse.hv import hv_metrics
from fleetmon.analyse.vms import VmResult, compute_vms
from fleetmon.model import HostReport, HostSpec, Report, Row, RunInfo, Severity, Status
from fleetmon.render.html import render_html
from fleetmon.render.json import render_json
from fleetmon.render.text import render_text
from fleetmon.render.top import ViewState, table
from fleetmon.rules import evaluate, load_rules
from fleetmon.sources.sections import ProbeOutput, Section
from fleetmon.sources.xen import parse_xentop, xentop_stamps

DATA = Path(__file__).parent / "data"
STANDIN = Path(__file__).parent / "bin" / "xen-standins" / "data"
SECTION = (DATA / "xen-stubdom" / "xentop-section.txt").read_text()
XL_LIST = (STANDIN / "stubdom-xl-list.txt").read_text()
MIB = 1024 * 1024
RUN = RunInfo(
    fleetmon_version="0.1.0",
    started_at="2026-12-02T15:00:00Z",
    interval_s=1.0,
    inventory="fleet.yaml",
    rule_files=(),
)


def stubdom(top: str = SECTION, xl_list: str = XL_LIST) -> VmResult:
    """compute_vms of the stub-domain host: xentop run with -d 1 between the samples."""
    sections = [
        (0, "meta", "probe=1\nhypervisor=xen\nxentop_delay_s=1\n", 0),
        (1, "xl_list", xl_list, 0),
        (2, "xl_list", xl_list, 0),
        (0, "xentop", top, 0),
        (0, "xl_info", (DATA / "xen-docs" / "xl-info-example.txt").read_text(), 0),
    ]
    out = ProbeOutput({(s, n): Section(s, n, text, rc) for s, n, text, rc in sections})
    # The samples' own Δt (/proc/uptime) is longer than xentop's: it holds both samples too.
    return compute_vms(out, host_cpus=1, host_mem_bytes=None, interval_s=1.4)


def test_the_stamps_are_read_per_iteration_and_the_table_is_unchanged() -> None:
    assert xentop_stamps(SECTION) == (5000.0, 5001.25)
    bare = SECTION.replace("fm_uptime 5000.00\n", "").replace("fm_uptime 5001.25\n", "")
    assert parse_xentop(SECTION) == parse_xentop(bare)
    assert xentop_stamps(bare) == (None, None)


def test_a_stamp_not_right_before_a_header_is_not_its_stamp() -> None:
    lines = SECTION.splitlines(keepends=True)
    # A stamp followed by a domain line (one that looks like the header to the shell).
    text = "".join([*lines[:3], "fm_uptime 5000.50\n", *lines[3:]])
    assert xentop_stamps(text) == (5000.0, 5001.25)
    assert xentop_stamps(SECTION.replace("fm_uptime 5001.25", "fm_uptime x")) == (5000.0, None)


def test_counter_rates_divide_by_the_measured_interval_not_the_nominal_delay() -> None:
    vms = {r.name: r.metrics for r in stubdom().vms}
    hvm1 = vms["hvm1"]
    # Stamps 5000.00 → 5001.25: 1.25 s between the two iterations (-d said 1 s).
    assert hvm1["vm.disk_reads_per_s"] == 50 / 1.25 == 40.0  # VBD_RD 1000 → 1050
    assert hvm1["vm.disk_writes_per_s"] == 25 / 1.25  # VBD_WR 400 → 425
    assert hvm1["vm.disk_read_bytes_per_s"] == 800 * 512 / 1.25  # VBD_RSECT 8000 → 8800
    assert hvm1["vm.disk_write_bytes_per_s"] == 200 * 512 / 1.25  # VBD_WSECT 3000 → 3200
    assert hvm1["vm.net_rx_bytes_per_s"] == 125 * 1024 / 1.25  # NETTX(k) 500 → 625
    assert hvm1["vm.net_tx_bytes_per_s"] == 25 * 1024 / 1.25  # NETRX(k) 200 → 225
    assert hvm1["vm.disk_oo_per_s"] == 5 / 1.25  # VBD_OO 0 → 5
    # CPU(%) is xentop's own, already over the time it measured: divided by vCPUs only.
    assert hvm1["vm.cpu_pct"] == 60.0 / 2
    assert hvm1["vm.cpu_host_pct"] == 60.0 / 4


def test_without_stamps_the_nominal_delay_is_used() -> None:
    bare = SECTION.replace("fm_uptime 5000.00\n", "").replace("fm_uptime 5001.25\n", "")
    hvm1 = {r.name: r.metrics for r in stubdom(top=bare).vms}["hvm1"]
    assert hvm1["vm.disk_reads_per_s"] == 50.0  # an older probe's output: -d 1
    assert hvm1["vm.net_rx_bytes_per_s"] == 125 * 1024


def test_stub_domains_are_listed_labelled_and_not_counted_as_vms() -> None:
    result = stubdom()
    rows = {r.name: r for r in result.vms}
    assert list(rows) == ["Xenstore", "hvm1", "hvm1-dm", "pv1"]  # xl's order, xentop lists them
    assert rows["hvm1-dm"].labels == {"stub_of": "hvm1"}
    assert rows["Xenstore"].labels == {"service": "xenstore"}
    assert rows["hvm1"].labels == {}
    assert rows["pv1"].labels == {}
    assert rows["hvm1-dm"].metrics["vm.cpu_pct"] == 25.0  # its own row keeps its figures
    hv = result.hv_metrics
    assert (hv["hv.vms_total"], hv["hv.vms_running"]) == (2, 2)  # hvm1 and pv1
    # Their vCPUs, memory and CPU are spent on the guests: in the sums.
    assert hv["hv.vcpu_overcommit_ratio"] == (1 + 2 + 1 + 1) / 4
    assert hv["hv.mem_overcommit_ratio"] == pytest.approx(
        (33792 + 2098176 + 132096 + 1049600) * 1024 / (6141 * MIB)
    )
    assert hv["hv.vm_cpu_pct"] == pytest.approx((0.5 + 60.0 + 25.0 + 10.0) / 4)
    assert (
        "2 stub domain(s) not counted as VMs, their CPU, vCPUs and memory counted in hv.* as"
        " their guests' cost: Xenstore (xenstore), hvm1-dm (device model of hvm1)"
    ) in result.notes


def test_a_dm_name_without_its_guest_is_a_vm() -> None:
    # hvm1 gone: `hvm1-dm` alone cannot be told from a guest so named.
    xl_list = "".join(ln for ln in XL_LIST.splitlines(keepends=True) if not ln.startswith("hvm1 "))
    result = stubdom(xl_list=xl_list)
    rows = {r.name: r for r in result.vms}
    assert rows["hvm1-dm"].labels == {}
    assert result.hv_metrics["hv.vms_total"] == 2  # hvm1-dm and pv1, not Xenstore


def test_the_cpu_notes_count_vms_as_hv_vms_running_does_and_stub_domains_apart() -> None:
    # xentop without a line for hvm1 and Xenstore in its last iteration: no CPU figure.
    lines = SECTION.splitlines(keepends=True)
    cut = [ln for i, ln in enumerate(lines) if i < 8 or ln.split()[0] not in ("hvm1", "Xenstore")]
    result = stubdom(top="".join(cut))
    hv = result.hv_metrics
    assert hv["hv.vms_running"] == 2
    # hvm1's CPU missing (1 of 2 VMs has one), Xenstore's too (1 of 2 stub domains).
    assert (
        "guest CPU counts 1 of 2 running VMs and 1 of 2 stub domains: no CPU figure for"
        " Xenstore, hvm1"
    ) in result.notes
    assert hv["hv.vm_cpu_pct"] == pytest.approx((25.0 + 10.0) / 4)


def test_without_stub_domains_the_notes_are_as_before() -> None:
    rows = [
        Row("a", {"vm.state": "running", "vm.cpu_host_pct": 5.0}),
        Row("b", {"vm.state": "running", "vm.cpu_host_pct": None}),
    ]
    _out, notes = hv_metrics(rows, 4, 1024, "xentop unavailable")
    assert notes == [
        "memory overcommit not reported: the maximum memory of 2 of 2 running VMs is not known"
        " (xentop unavailable)",
        "guest CPU counts 1 of 2 running VMs: no CPU figure for b",
    ]


#: A guest named with HTML's characters: hvm1 renamed, its stub domain with it.
HOSTILE = "<b>&1"


def _hostile_report(stub_cpu: str = "25.0") -> Report:
    """The stub-domain host through compute_vms and the shipped Xen rules, hvm1 renamed
    HOSTILE and its stub domain's CPU(%) in xentop's last iteration `stub_cpu`."""
    head, last = SECTION.split("fm_uptime 5001.25\n")
    last = last.replace("   95   25.0 ", f"   95 {stub_cpu:>6} ")
    top = (head + "fm_uptime 5001.25\n" + last).replace("hvm1", HOSTILE)
    result = stubdom(top=top, xl_list=XL_LIST.replace("hvm1", HOSTILE))
    host = HostReport(
        "xen1", "127.0.0.1", ("xen",), Status.OK, None, 1.4,
        metrics=dict(result.hv_metrics), rows={"vm": result.vms}, notes=tuple(result.notes),
    )  # fmt: skip
    rules = load_rules([str(Path(fleetmon.__file__).parent / "playbooks" / "xen.yaml")])
    spec = HostSpec("xen1", "127.0.0.1", vars={"fleetmon_hypervisor": "xen"})
    hosts, _ = evaluate(rules, [host], {"xen1": spec}, {})
    return Report(RUN, hosts, {}, 0)


def test_the_reports_and_top_say_which_rows_are_stub_domains_escaped() -> None:
    report = _hostile_report()
    text = render_text(report)
    assert f"{HOSTILE}-dm (stub of {HOSTILE})" in text
    assert "Xenstore (xenstore)" in text
    assert f"{HOSTILE} (" not in text.replace(f"{HOSTILE} (stub", "")  # the guest is plain
    page = render_html(report)
    assert "&lt;b&gt;&amp;1-dm <i>stub of &lt;b&gt;&amp;1</i>" in page
    assert "Xenstore <i>xenstore</i>" in page
    assert HOSTILE not in page
    lines = [ln.text for ln in table(report, ViewState(view="vms", sort="%CPU"), 200, 20)]
    (stub,) = [ln for ln in lines if "-dm" in ln]
    assert stub.startswith(f"{HOSTILE}-dm (stub of {HOSTILE})")
    assert any(ln.startswith("Xenstore (xenstore)") for ln in lines)


def test_a_vm_rule_judges_a_stub_domain_and_its_finding_says_whose_it_is() -> None:
    (host,) = _hostile_report(stub_cpu="99.0").hosts
    cpu = {f.subject: f for f in host.findings if f.rule == "xen-vm-cpu-saturated"}
    stub = cpu[f"{HOSTILE}-dm (stub of {HOSTILE})"]
    assert stub.severity is Severity.CRITICAL  # 99 % of its one vCPU: its guest's emulation
    assert stub.message == (
        f"domain {HOSTILE}-dm (stub of {HOSTILE}) on xen1: every vCPU 99.0% busy"
    )
    assert set(cpu) == {"Xenstore (xenstore)", HOSTILE, f"{HOSTILE}-dm (stub of {HOSTILE})", "pv1"}
    doc = json.loads(render_json(Report(RUN, (host,), {}, 2)))
    (listed,) = [f for f in doc["hosts"][0]["findings"] if f["rule"] == "xen-vm-cpu-saturated"]
    assert listed["subject"] == f"{HOSTILE}-dm (stub of {HOSTILE})"
