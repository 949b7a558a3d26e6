"""Xen: rates over xentop's measured interval, and stub domains counted apart from the VMs.

The host is a stand-in (no Xen host here, and no licensed capture has a stub domain): its
`xl list` and xentop lines are SYNTHESIZED from xl_list.c's and xentop.c's printf formats
(tests/data/SOURCES.md), with the probe's `fm_uptime` stamps 1.25 s apart where xentop's
-d was 1 s. Every expected value below is worked out by hand from those files' numbers.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetmon.analyse.vms import VmResult, compute_vms
from fleetmon.sources.sections import ProbeOutput, Section
from fleetmon.sources.xen import parse_xentop, xentop_stamps

DATA = Path(__file__).parent / "data"
STANDIN = Path(__file__).parent / "bin" / "xen-standins" / "data"
SECTION = (DATA / "xen-stubdom" / "xentop-section.txt").read_text()
XL_LIST = (STANDIN / "stubdom-xl-list.txt").read_text()
MIB = 1024 * 1024


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
