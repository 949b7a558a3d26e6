"""compute_vms: exact METRICS.md figures from real captures, and what happens when it fails."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from test_rules_util import host, spec

from fleetmon.analyse.vmcommon import NOT_ON, XEN_VM_METRICS
from fleetmon.analyse.vms import HV_METRICS, VM_METRICS, compute_vms
from fleetmon.model import Severity
from fleetmon.rules import evaluate, load_rules
from fleetmon.sources.sections import ProbeOutput, Section

DATA = Path(__file__).parent / "data"
LAB = DATA / "lab-libvirt9-qemu7-tcg"
KERUB = DATA / "kerub" / "virsh" / "domstats-2domains.txt"
STANDIN = Path(__file__).parent / "bin" / "xen-standins" / "data"
GANETI = DATA / "ganeti" / "test" / "data"
XEN_DOCS = DATA / "xen-docs"
MIB = 1024 * 1024

#: The lab samples' interval: the difference of their timestamp.txt (capture times).
DT = 2.728612977


def output(*sections: tuple[int, str, str, int]) -> ProbeOutput:
    return ProbeOutput({(s, n): Section(s, n, text, rc) for s, n, text, rc in sections})


def kvm(s1: str, s2: str, *extra: tuple[int, str, str, int]) -> ProbeOutput:
    return output(
        (0, "meta", "probe=1\nhypervisor=kvm\nvirsh=/usr/bin/virsh\n", 0),
        (1, "virsh_domstats", s1, 0),
        (2, "virsh_domstats", s2, 0),
        *extra,
    )


def lab() -> ProbeOutput:
    return kvm(
        (LAB / "sample1" / "domstats--raw.txt").read_text(),
        (LAB / "sample2" / "domstats--raw.txt").read_text(),
        (0, "virsh_nodeinfo", (LAB / "sample2" / "nodeinfo.txt").read_text(), 0),
    )


def test_lab_interval_is_the_timestamp_difference() -> None:
    t1 = Decimal((LAB / "sample1" / "timestamp.txt").read_text())
    t2 = Decimal((LAB / "sample2" / "timestamp.txt").read_text())
    assert float(t2 - t1) == DT


def test_lab_vm1_every_metric_from_the_formulas() -> None:
    res = compute_vms(lab(), host_cpus=2, host_mem_bytes=None, interval_s=DT)
    assert res.hypervisor == "kvm"
    assert [r.name for r in res.vms] == ["vm2", "vm1"]
    vm1 = dict(res.vms[1].metrics)
    # every vm.* metric of a running VM, in order, but xentop's VBD_OO: not offered by KVM
    assert list(vm1) == [m for m in VM_METRICS if m != "vm.disk_oo_per_s"]
    assert vm1.pop("vm.state") == "running"
    expected = {
        "vm.vcpus": 1,
        "vm.cpu_pct": 100 * 261985000 / (1e9 * DT),  # Δcpu.time 5136834000 - 4874849000
        "vm.cpu_host_pct": 100 * 261985000 / (2e9 * DT),
        "vm.vcpu_delay_pct": 100 * (787821139 - 767481935) / (1e9 * DT),
        "vm.mem_max_bytes": 131072 * 1024,
        "vm.mem_current_bytes": 131072 * 1024,
        "vm.mem_used_pct": 100 * (94912 - 65608) / 94912,  # sample 2's available/usable
        "vm.swap_in_bytes_per_s": 0.0,
        "vm.major_faults_per_s": 0.0,
        "vm.disk_reads_per_s": 12 / DT,  # rd.reqs 46 → 58
        "vm.disk_writes_per_s": 6 / DT,  # wr.reqs 22 → 28
        "vm.disk_read_bytes_per_s": (3674624 - 2888192) / DT,
        "vm.disk_write_bytes_per_s": (114688 - 90112) / DT,
        "vm.disk_r_await_ms": (3180866 - 2994789) / 12 / 1e6,
        "vm.disk_w_await_ms": (6732745 - 6279699) / 6 / 1e6,
        "vm.net_rx_bytes_per_s": (4194 - 3536) / DT,
        "vm.net_tx_bytes_per_s": (3484 - 2826) / DT,
        "vm.net_rx_packets_per_s": (47 - 40) / DT,  # net.0.rx.pkts
        "vm.net_tx_packets_per_s": (38 - 31) / DT,  # net.0.tx.pkts
        "vm.net_rx_drops_per_s": 0.0,
        "vm.net_tx_drops_per_s": 0.0,
    }
    # The QEMU cgroup's figures come with the containers' (sources/containers.py), later.
    host_side = ("vm.host_rss_bytes", "vm.host_read_bytes_per_s", "vm.host_write_bytes_per_s")
    assert [vm1.pop(k) for k in host_side] == [None, None, None]
    assert "vm.disk_oo_per_s" not in vm1  # xentop's VBD_OO: no KVM counterpart, not offered
    assert vm1 == pytest.approx(expected, rel=1e-12)
    # The same figures as plain literals, so a formula slip shows up twice.
    assert vm1["vm.cpu_pct"] == pytest.approx(9.601398300467, rel=1e-12)
    assert vm1["vm.vcpu_delay_pct"] == pytest.approx(0.745404502999987, rel=1e-12)
    assert vm1["vm.disk_read_bytes_per_s"] == pytest.approx(288216.7631060123, rel=1e-12)
    assert vm1["vm.net_rx_packets_per_s"] == pytest.approx(2.565405962298185, rel=1e-12)


def test_lab_host_figures_overcommit_and_tap_ports() -> None:
    res = compute_vms(lab(), host_cpus=2, host_mem_bytes=4 * 1024 * MIB, interval_s=DT)
    vm2 = res.vms[0].metrics
    assert vm2["vm.cpu_pct"] == pytest.approx(8.945753833816791, rel=1e-12)
    assert res.hv_metrics == pytest.approx(
        {
            "hv.vms_running": 2,
            "hv.vms_total": 2,
            "hv.vcpu_overcommit_ratio": 1.0,
            "hv.mem_overcommit_ratio": 2 * 128 / 4096,
            "hv.vm_cpu_pct": 100 * (261985000 + 244095000) / (2e9 * DT),
        },
        rel=1e-12,
    )
    assert res.nic_vm == {"tap-vm1": "vm1", "tap-vm2": "vm2"}
    assert res.notes == ()


def test_host_capacity_falls_back_to_nodeinfo() -> None:
    res = compute_vms(lab(), host_cpus=None, host_mem_bytes=None, interval_s=DT)
    assert res.hv_metrics["hv.mem_overcommit_ratio"] == pytest.approx(2 * 131072 / 6252760)
    assert res.hv_metrics["hv.vcpu_overcommit_ratio"] == 1.0


def test_no_interval_means_no_rates_but_the_levels_stay() -> None:
    res = compute_vms(lab(), host_cpus=2, host_mem_bytes=None, interval_s=None)
    vm1 = res.vms[1].metrics
    assert vm1["vm.cpu_pct"] is None
    assert vm1["vm.disk_r_await_ms"] is None
    assert vm1["vm.mem_current_bytes"] == 134217728
    assert res.hv_metrics["hv.vm_cpu_pct"] is None


def test_kerub_shut_off_domain_is_listed_with_state_only() -> None:
    text = KERUB.read_text()
    res = compute_vms(kvm(text, text), host_cpus=4, host_mem_bytes=16 * 1024 * MIB, interval_s=1.0)
    running, off = res.vms
    assert off.name == "kerub.hosts.fedora20"
    assert off.metrics == {"vm.state": "shutoff"}
    assert running.metrics["vm.cpu_pct"] == 0.0  # the same capture twice: nothing moved
    assert running.metrics["vm.vcpu_delay_pct"] is None  # libvirt 1.2 has no vcpu.N.delay
    assert running.metrics["vm.mem_used_pct"] is None  # no balloon.usable/available
    assert running.metrics["vm.disk_r_await_ms"] is None  # no request in the interval
    assert res.hv_metrics["hv.vms_running"] == 1
    assert res.hv_metrics["hv.vms_total"] == 2
    assert res.hv_metrics["hv.vcpu_overcommit_ratio"] == 0.5  # 2 vCPUs of the running VM / 4
    assert res.hv_metrics["hv.mem_overcommit_ratio"] == 1 / 16
    assert res.nic_vm == {"vnet0": "kerub.hosts.opensuse13"}


def test_vms_started_stopped_and_gone_between_the_samples() -> None:
    kerub, lab2 = KERUB.read_text(), (LAB / "sample2" / "domstats--raw.txt").read_text()
    res = compute_vms(kvm(kerub, lab2), host_cpus=2, host_mem_bytes=None, interval_s=1.0)
    assert [r.name for r in res.vms] == ["vm2", "vm1"]
    assert res.vms[0].metrics["vm.cpu_pct"] is None
    assert res.vms[0].metrics["vm.mem_used_pct"] == pytest.approx(100 * (94912 - 67648) / 94912)
    assert res.notes == (
        "VM vm2 started between the samples: no rates for it",
        "VM vm1 started between the samples: no rates for it",
        "VM kerub.hosts.opensuse13 disappeared between the samples",
        "VM kerub.hosts.fedora20 disappeared between the samples",
    )


def test_a_vm_whose_cpu_time_went_down_was_restarted() -> None:
    s1, s2 = ((LAB / s / "domstats--raw.txt").read_text() for s in ("sample1", "sample2"))
    res = compute_vms(kvm(s2, s1), host_cpus=2, host_mem_bytes=None, interval_s=DT)
    assert all(r.metrics["vm.cpu_pct"] is None for r in res.vms)
    assert res.notes == (
        "VM vm2 restarted between the samples: no rates for it",
        "VM vm1 restarted between the samples: no rates for it",
    )


def test_a_vm_shut_down_between_the_samples() -> None:
    kerub = KERUB.read_text()
    # The running domain of the kerub capture, renamed to the shut-off one, as sample 1.
    s1 = kerub.split("\n\n")[0].replace("opensuse13", "fedora20") + "\n\n"
    res = compute_vms(kvm(s1, kerub), host_cpus=2, host_mem_bytes=None, interval_s=1.0)
    assert res.vms[1].metrics == {"vm.state": "shutoff"}
    assert "VM kerub.hosts.fedora20 stopped between the samples" in res.notes


@pytest.mark.parametrize(
    ("text", "rc", "note"),
    [
        (
            "sudo: a password is required\n",
            1,
            "VMs not reported: virsh domstats failed: sudo: a password is required",
        ),
        (
            "error: failed to connect to the hypervisor\n"
            "error: Operation not supported: Cannot use direct socket mode if no URI is set\n",
            1,
            "VMs not reported: virsh domstats failed: failed to connect to the hypervisor; "
            "Operation not supported: Cannot use direct socket mode if no URI is set",
        ),
    ],
)
def test_virsh_failure_costs_the_vms_with_a_note(text: str, rc: int, note: str) -> None:
    out = output(
        (0, "meta", "hypervisor=kvm\n", 0),
        (1, "virsh_domstats", text, rc),
        (2, "virsh_domstats", text, rc),
    )
    res = compute_vms(out, host_cpus=2, host_mem_bytes=None, interval_s=1.0)
    assert res.vms == ()
    # A hypervisor whose VMs could not be listed: its figures are not computable this run
    # (null, so its rules say UNKNOWN), not absent as on a host without a hypervisor.
    assert res.hv_metrics == dict.fromkeys(HV_METRICS)
    assert res.notes == (note,)


def test_unreadable_domstats_is_a_note_not_a_host_failure() -> None:
    text = (DATA / "glances" / "virsh-domstats-win11-trimmed.txt").read_text()
    res = compute_vms(kvm(text, text), host_cpus=2, host_mem_bytes=None, interval_s=1.0)
    assert res.vms == ()
    assert res.hv_metrics == dict.fromkeys(HV_METRICS)
    assert res.notes == (
        "VMs not reported: kvm output unreadable: section virsh_domstats: line 62: expected "
        "\"Domain: '<name>'\" or 'key=value', got '  vcpu.1...'",
    )


def test_no_hypervisor() -> None:
    res = compute_vms(output((0, "meta", "hypervisor=none\n", 0)), 2, None, 1.0)
    assert (res.hypervisor, res.vms, res.hv_metrics, res.notes) == ("none", (), {}, ())


# ------------------------------------------------------------------------------ Xen


def xen_out(kind: str, full: str, xl_list: Path, xl_info: Path) -> ProbeOutput:
    top = "".join((STANDIN / f"{kind}-xentop{full}-{i}.txt").read_text() for i in (1, 2))
    return output(
        (0, "meta", "probe=1\nhypervisor=xen\nxentop_delay_s=1\n", 0),
        (1, "xl_list", xl_list.read_text(), 0),
        (2, "xl_list", xl_list.read_text(), 0),
        (0, "xentop", top, 0),
        (0, "xl_info", xl_info.read_text(), 0),
    )


def test_xen_guests_from_xentop_and_capacity_from_xl_info() -> None:
    out = xen_out("docs", "-f", XEN_DOCS / "xl-list-example.txt", XEN_DOCS / "xl-info-example.txt")
    res = compute_vms(out, host_cpus=1, host_mem_bytes=750 * MIB, interval_s=1.2)
    assert res.hypervisor == "xen"
    assert (res.host_cpus, res.host_mem_bytes) == (4, 6141 * MIB)
    assert [r.name for r in res.vms] == ["win", "linux"]  # Domain-0 is the host
    linux = res.vms[1].metrics
    assert linux == {
        **dict.fromkeys(XEN_VM_METRICS),
        "vm.state": "running",
        "vm.vcpus": 2,
        "vm.cpu_pct": 150.4 / 2,  # xentop CPU(%) / VCPUS
        "vm.cpu_host_pct": 150.4 / 4,  # / nr_cpus of xl info, not dom0's 1 CPU
        "vm.mem_max_bytes": 2098176 * 1024,
        "vm.mem_current_bytes": 2097152 * 1024,
        "vm.disk_reads_per_s": 30.0,  # ΔVBD_RD over xentop's -d 1, not the /proc Δt
        "vm.disk_writes_per_s": 40.0,
        "vm.disk_read_bytes_per_s": 4096 * 512.0,
        "vm.disk_write_bytes_per_s": 512 * 512.0,
        # xentop counts at dom0's end of the vif: NETTX (5000 -> 6024 KiB) is what the
        # guest received, NETRX (300 -> 302) what it sent
        "vm.net_rx_bytes_per_s": 1024 * 1024.0,
        "vm.net_tx_bytes_per_s": 2 * 1024.0,
        "vm.disk_oo_per_s": 12.0,  # VBD_OO 2 → 14 over xentop's -d 1
    }
    # not offered by xentop (packets, drops, vCPU wait...): absent, not null
    assert not linux.keys() & NOT_ON["xen"]
    assert len(linux) == len(VM_METRICS) - len(NOT_ON["xen"])

    assert res.vms[0].metrics["vm.disk_oo_per_s"] == 0.0
    assert res.vms[0].metrics["vm.state"] == "running"  # "--b---" blocked = idle, running
    assert res.hv_metrics == pytest.approx(
        {
            "hv.vms_running": 2,
            "hv.vms_total": 2,
            "hv.vcpu_overcommit_ratio": 3 / 4,
            "hv.mem_overcommit_ratio": (1044480 + 2098176) * 1024 / (6141 * MIB),
            "hv.vm_cpu_pct": (0.8 + 150.4) / 4,
        }
    )
    assert res.nic_vm == {
        "vif1.0": "win",
        "vif1.0-emu": "win",
        "vif2.0": "linux",
        "vif2.0-emu": "linux",
    }
    assert res.notes == (
        "Xen dom0: /proc describes dom0 only; host capacity from xl info (4 CPUs, 6141 MiB)",
    )


def test_a_rule_on_what_a_hypervisor_does_not_offer_is_not_judged(tmp_path: Path) -> None:
    """A site rule on a KVM-only or Xen-only metric, on a mixed fleet: OK "not judged" on the
    other hypervisor's VMs, not UNKNOWN on every run."""
    (tmp_path / "site.yaml").write_text(RULES)
    rules = load_rules([str(tmp_path / "site.yaml")])
    xen = compute_vms(
        xen_out("docs", "-f", XEN_DOCS / "xl-list-example.txt", XEN_DOCS / "xl-info-example.txt"),
        host_cpus=1, host_mem_bytes=750 * MIB, interval_s=1.2,
    )  # fmt: skip
    kvm = compute_vms(lab(), host_cpus=2, host_mem_bytes=None, interval_s=DT)
    hosts = [host("xen0", (), {}, vm=xen.vms), host("kvm0", (), {}, vm=kvm.vms)]
    out, _ = evaluate(rules, hosts, {h.name: spec(h.name, ()) for h in hosts}, {})
    got = {(h.name, f.rule, f.subject): (f.severity, f.judged) for h in out for f in h.findings}
    assert got[("xen0", "packets", "linux")] == (Severity.OK, False)
    assert got[("xen0", "oo", "linux")] == (Severity.WARNING, True)  # 12/s
    assert got[("kvm0", "packets", "vm1")] == (Severity.OK, True)
    assert got[("kvm0", "oo", "vm1")] == (Severity.OK, False)
    assert Severity.UNKNOWN not in {sev for sev, _ in got.values()}


RULES = """
- hosts: all
  rules:
    - {name: packets, scope: vm, metric: vm.net_rx_packets_per_s, warning: "> 100000"}
    - {name: oo, scope: vm, metric: vm.disk_oo_per_s, warning: "> 1"}
"""


def test_xen_old_xentop_cut_names_match_their_xl_names() -> None:
    out = xen_out(
        "ganeti",
        "",
        GANETI / "xen-xl-list-4.0.1-four-instances.txt",
        GANETI / "xen-xl-info-4.0.1.txt",
    )
    res = compute_vms(out, host_cpus=1, host_mem_bytes=None, interval_s=1.0)
    by_name = {r.name: r.metrics for r in res.vms}
    assert list(by_name) == [
        "server01.example.com",
        "web3106215069.example.com",
        "testinstance.example.com",
    ]
    assert by_name["testinstance.example.com"]["vm.cpu_pct"] == pytest.approx(199.9 / 2)
    assert by_name["server01.example.com"]["vm.net_rx_bytes_per_s"] == 2 * 1024.0  # NETTX
    assert by_name["server01.example.com"]["vm.net_tx_bytes_per_s"] == 4 * 1024.0  # NETRX
    assert by_name["web3106215069.example.com"]["vm.disk_reads_per_s"] == 0.0
    assert res.nic_vm["vif3.1"] == "web3106215069.example.com"  # NETS 2


def test_xen_without_xentop_or_interval_lists_the_guests_without_rates() -> None:
    list_text = (XEN_DOCS / "xl-list-example.txt").read_text()
    out = output(
        (0, "meta", "hypervisor=xen\nxentop_delay_s=1\n", 0),
        (1, "xl_list", list_text, 0),
        (2, "xl_list", list_text, 0),
        (0, "xentop", "sudo: a password is required\n", 1),
        (0, "xl_info", "sudo: a password is required\n", 1),
    )
    res = compute_vms(out, host_cpus=2, host_mem_bytes=8192 * MIB, interval_s=None)
    assert [(r.name, r.metrics["vm.cpu_pct"]) for r in res.vms] == [("win", None), ("linux", None)]
    assert res.vms[1].metrics["vm.mem_current_bytes"] == 2048 * MIB  # xl list Mem (MiB)
    assert res.notes == (
        "Xen dom0: /proc describes dom0 only, and xl info failed: sudo: a password is required",
        "VM rates not reported: xentop failed: sudo: a password is required",
        "memory overcommit not reported: the maximum memory of 2 of 2 running VMs is not"
        " known (xentop unavailable)",
    )
    # Absent, not a sum of nothing (it was 0.00): no rule judges it.
    assert "hv.mem_overcommit_ratio" not in res.hv_metrics
    assert res.hv_metrics["hv.vcpu_overcommit_ratio"] == 3 / 2  # dom0's view: no xl info
    assert res.hv_metrics["hv.vm_cpu_pct"] is None  # running guests, none with a rate


_XL_ROW = re.compile(r"^(?P<name>.*?)(?P<id>\s+\d+)(\s+\d+){2}\s+\S+(?P<time>\s+[\d.]+)$")


def derived_xl_list(capture: Path, changes: dict[str, tuple[int, float]]) -> str:
    """DERIVED, NOT A CAPTURE: a real `xl list` capture with the ID and Time(s) of the named
    domains replaced, each right-aligned in its captured column width (one decimal, as xl).

    No two consecutive `xl list` captures of one host exist in any licensed source, so the
    second sample of these tests is built from the first; every other byte is the capture's.
    """
    lines = capture.read_text().splitlines(keepends=True)
    for i, line in enumerate(lines[1:], start=1):
        m = _XL_ROW.match(line.rstrip("\n"))
        assert m is not None, line
        if m["name"] in changes:
            new_id, time_s = changes[m["name"]]
            id_w, time_w = len(m["id"]), len(m["time"])
            row = f"{m['name']}{new_id:>{id_w}}{line[m.end('id') : m.start('time')]}"
            lines[i] = f"{row}{time_s:>{time_w}.1f}\n"
            assert len(lines[i]) == len(line)  # same layout as the captured row
    return "".join(lines)


def xen_no_top(
    list1: str, list2: str, xl_info: Path, *top: tuple[int, str, str, int]
) -> ProbeOutput:
    return output(
        (0, "meta", "probe=1\nhypervisor=xen\nxentop=\nxentop_delay_s=1\n", 0),
        (1, "xl_list", list1, 0),
        (2, "xl_list", list2, 0),
        *top,
        (0, "xl_info", xl_info.read_text(), 0),
    )


@pytest.mark.parametrize(
    ("top", "why"),
    [
        (
            (0, "xentop", "sh: 1: xentop: not found\n", 127),
            "xentop failed: sh: 1: xentop: not found",
        ),
        (None, "no xentop section in the probe output"),  # an older probe, or a replay
    ],
)
def test_xen_without_xentop_cpu_from_xl_list_time(
    top: tuple[int, str, str, int] | None, why: str
) -> None:
    first = XEN_DOCS / "xl-list-example.txt"  # Domain-0 11794.3, win 0.3, linux 5624.2
    second = derived_xl_list(
        first, {"Domain-0": (0, 11794.9), "win": (1, 0.4), "linux": (2, 5626.7)}
    )
    out = xen_no_top(
        first.read_text(),
        second,
        XEN_DOCS / "xl-info-example.txt",
        *([top] if top is not None else []),
    )
    res = compute_vms(out, host_cpus=1, host_mem_bytes=None, interval_s=1.25)
    win, linux = (r.metrics for r in res.vms)
    # 100·ΔTime/(VCPUS·Δt) and 100·ΔTime/(nr_cpus·Δt), xl info's 4 CPUs, Δt = 1.25 s.
    assert (linux["vm.cpu_pct"], linux["vm.cpu_host_pct"]) == pytest.approx((100.0, 50.0))
    assert (win["vm.cpu_pct"], win["vm.cpu_host_pct"]) == pytest.approx((8.0, 2.0))
    assert linux == {
        **dict.fromkeys(XEN_VM_METRICS),
        "vm.state": "running",
        "vm.vcpus": 2,
        "vm.cpu_pct": linux["vm.cpu_pct"],
        "vm.cpu_host_pct": linux["vm.cpu_host_pct"],
        "vm.mem_current_bytes": 2048 * MIB,
    }  # nothing else without xentop: disk and network stay unknown
    assert res.hv_metrics["hv.vm_cpu_pct"] == pytest.approx(52.0)
    assert res.notes == (
        "Xen dom0: /proc describes dom0 only; host capacity from xl info (4 CPUs, 6141 MiB)",
        "VM CPU figures from xl list's Time(s) (0.1 s resolution) because xentop was"
        f" unavailable ({why}); VM disk and network rates not reported",
        "memory overcommit not reported: the maximum memory of 2 of 2 running VMs is not"
        " known (xentop unavailable)",
    )


def test_xen_without_xentop_rounding_past_full_is_capped() -> None:
    first = XEN_DOCS / "xl-list-example.txt"
    # linux (2 vCPUs) +2.6 s over 1.25 s: 104 % of its vCPUs, which only rounding can give.
    second = derived_xl_list(first, {"linux": (2, 5626.8)})
    out = xen_no_top(first.read_text(), second, XEN_DOCS / "xl-info-example.txt")
    res = compute_vms(out, host_cpus=1, host_mem_bytes=None, interval_s=1.25)
    linux = res.vms[1].metrics
    assert (linux["vm.cpu_pct"], linux["vm.cpu_host_pct"]) == pytest.approx((100.0, 50.0))
    assert res.vms[0].metrics["vm.cpu_pct"] == 0.0  # win's Time(s) unchanged


def test_xen_without_xentop_two_real_ganeti_lists() -> None:
    # Two real captures of one host (ganeti's test data; not taken one interval apart):
    # server01 kept its ID and Time(s), two guests went, two dying ones came.
    out = xen_no_top(
        (GANETI / "xen-xl-list-4.0.1-four-instances.txt").read_text(),
        (GANETI / "xen-xl-list-4.4-crashed-instances.txt").read_text(),
        GANETI / "xen-xl-info-4.0.1.txt",
        (0, "xentop", "sh: 1: xentop: not found\n", 127),
    )
    res = compute_vms(out, host_cpus=1, host_mem_bytes=None, interval_s=1.0)
    by_name = {r.name: r.metrics for r in res.vms}
    assert {n: (m["vm.state"], m["vm.cpu_pct"]) for n, m in by_name.items()} == {
        "server01.example.com": ("running", 0.0),  # ΔTime 0: idle, a true 0
        "(null)": ("crashed", None),
        "alsodying.example.com": ("crashed", None),
    }
    assert by_name["server01.example.com"]["vm.cpu_host_pct"] == 0.0
    assert res.notes[2:] == (
        "VM (null) started between the samples: no rates for it",
        "VM alsodying.example.com started between the samples: no rates for it",
        "VM web3106215069.example.com disappeared between the samples",
        "VM testinstance.example.com disappeared between the samples",
        "memory overcommit not reported: the maximum memory of 1 of 1 running VMs is not"
        " known (xentop unavailable)",
    )


def test_xen_without_xentop_a_restarted_domain_gets_no_rates() -> None:
    first = GANETI / "xen-xl-list-4.0.1-four-instances.txt"
    second = derived_xl_list(
        first,
        {
            "server01.example.com": (1, 167644.0),  # +0.8 s
            "testinstance.example.com": (5, 3.0),  # a new domain ID: destroyed, created again
            "web3106215069.example.com": (3, 466690.0),  # Time(s) went down: not the same run
        },
    )
    out = xen_no_top(
        first.read_text(), second, GANETI / "xen-xl-info-4.0.1.txt", (0, "xentop", "", 127)
    )
    res = compute_vms(out, host_cpus=1, host_mem_bytes=None, interval_s=2.0)
    cpu = {r.name: (r.metrics["vm.cpu_pct"], r.metrics["vm.cpu_host_pct"]) for r in res.vms}
    assert cpu == {
        "server01.example.com": pytest.approx((40.0, 10.0)),  # 100·0.8/(1·2), /(4·2)
        "web3106215069.example.com": (None, None),
        "testinstance.example.com": (None, None),
    }
    assert res.notes[2:] == (
        "VM web3106215069.example.com restarted between the samples: no rates for it",
        "VM testinstance.example.com restarted between the samples: no rates for it",
        "memory overcommit not reported: the maximum memory of 3 of 3 running VMs is not"
        " known (xentop unavailable)",
        "guest CPU counts 1 of 3 running VMs: no CPU figure for web3106215069.example.com,"
        " testinstance.example.com",
    )
    assert res.hv_metrics["hv.vm_cpu_pct"] == pytest.approx(10.0)  # server01's alone


def test_xen_without_xentop_or_first_xl_list() -> None:
    list_text = (XEN_DOCS / "xl-list-example.txt").read_text()
    out = output(
        (0, "meta", "hypervisor=xen\n", 0),
        (1, "xl_list", "xl: timed out\n", 124),
        (2, "xl_list", list_text, 0),
        (0, "xentop", "sh: 1: xentop: not found\n", 127),
        (0, "xl_info", (XEN_DOCS / "xl-info-example.txt").read_text(), 0),
    )
    res = compute_vms(out, host_cpus=1, host_mem_bytes=None, interval_s=1.0)
    assert [(r.name, r.metrics["vm.cpu_pct"]) for r in res.vms] == [("win", None), ("linux", None)]
    assert res.notes[1:] == (
        "VM rates not reported: xentop failed: sh: 1: xentop: not found,"
        " and xl list failed: no answer within the probe's time limit (timed out)",
        "memory overcommit not reported: the maximum memory of 2 of 2 running VMs is not"
        " known (xentop unavailable)",
    )


def test_xen_xl_list_failure() -> None:
    out = output(
        (0, "meta", "hypervisor=xen\n", 0),
        (1, "xl_list", "", 127),
        (2, "xl_list", "sh: 1: xl: not found\n", 127),
    )
    res = compute_vms(out, host_cpus=2, host_mem_bytes=None, interval_s=1.0)
    assert res.notes == ("VMs not reported: xl list failed: sh: 1: xl: not found",)


def test_guest_cpu_past_the_machine_is_null_with_a_note_and_rounding_is_capped() -> None:
    from fleetmon.analyse.hv import hv_metrics
    from fleetmon.model import Row

    def vm(name: str, host_pct: float) -> Row:
        return Row(name, {"vm.state": "running", "vm.vcpus": 8, "vm.cpu_host_pct": host_pct,
                          "vm.mem_max_bytes": 4 * MIB})  # fmt: skip

    over, notes = hv_metrics([vm("a", 70.0), vm("b", 55.6)], 16, 64 * MIB, "-")
    assert over["hv.vm_cpu_pct"] is None
    assert notes == [
        "guest CPU not reported: the VMs' figures add up to 125.6 % of the machine's 16 CPUs,"
        " more than it has"
    ]
    near, notes = hv_metrics([vm("a", 70.0), vm("b", 30.4)], 16, 64 * MIB, "-")
    assert (near["hv.vm_cpu_pct"], notes) == (100.0, [])
    assert near["hv.mem_overcommit_ratio"] == 8 / 64


def test_kvm_guest_cpu_of_some_running_vms_says_so() -> None:
    """A VM started between the samples has no CPU rate: hv.vm_cpu_pct sums the other
    one, and a note says it is a part, as on Xen."""
    s1, s2 = ((LAB / s / "domstats--raw.txt").read_text() for s in ("sample1", "sample2"))
    only_vm2 = "Domain: 'vm2'" + s1.split("Domain: 'vm2'", 1)[1].split("Domain: 'vm1'")[0]
    res = compute_vms(kvm(only_vm2, s2), host_cpus=2, host_mem_bytes=None, interval_s=DT)
    assert res.hv_metrics["hv.vm_cpu_pct"] == pytest.approx(
        res.vms[0].metrics["vm.cpu_host_pct"], rel=1e-12
    )
    assert res.notes == (
        "VM vm1 started between the samples: no rates for it",
        "guest CPU counts 1 of 2 running VMs: no CPU figure for vm1",
    )
