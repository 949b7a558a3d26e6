"""A libvirt VM's host-side figures (its QEMU cgroup's memory and I/O) when the cgroup is not
named after the domain: libvirt names it after the domain's machine name, which keeps only
a name's letters, digits and single `-`/`.` and is cut at 64 characters
(src/hypervisor/domain_driver.c virDomainMachineNameAppendValid). The lab capture's VMs are
renamed in the virsh sections and their cgroups as libvirt would have named them."""

from __future__ import annotations

import pytest
from test_guests import CAPTURE

from fleetmon.analyse.pipeline import analyse_host
from fleetmon.model import HostReport, HostSpec, RawResult, Status

RSS = {"fmlab1": 209719296, "fmlab2": 207679488, "fmctr-guest": 170610688}  # total_rss
SHUT_OFF = "  state.state=5\n  state.reason=1\n\n"


def _hypervisor(**renames: tuple[str, str]) -> HostReport:
    """The lab capture with domain `old` called `new` and its cgroup `qemu-<n>-<cgroup>`."""
    text = (CAPTURE / "hypervisor-probe.txt").read_text(encoding="utf-8")
    for old, (new, cgroup) in renames.items():
        old = old.replace("_", "-")
        text = text.replace(f"-{old}.libvirt-qemu", f"-{cgroup}.libvirt-qemu")
        text = text.replace(f"Domain: '{old}'", f"Domain: '{new}'")
        text = text.replace(f" {old}\n", f" {new}\n")  # `virsh list --uuid --name`
    raw = RawResult(HostSpec("kvm-lab", "127.0.0.1"), Status.OK, stdout=text,
                    nonce="1ab0c0ffee000014")  # fmt: skip
    hv = analyse_host(raw)
    assert hv.status is Status.OK, hv.error
    return hv


def _rss(hv: HostReport) -> dict[str, object]:
    return {r.name: r.metrics.get("vm.host_rss_bytes") for r in hv.rows_of("vm")}


def test_a_name_libvirt_cleans_for_the_machine_name_still_has_its_figures() -> None:
    hv = _hypervisor(fmctr_guest=("fmctr_guest", "fmctrguest"))
    assert _rss(hv)["fmctr_guest"] == RSS["fmctr-guest"]


def test_a_name_cut_in_the_machine_name_still_has_its_figures() -> None:
    long = "fmctr-guest-" + "x" * 60  # qemu-4- and 57 characters make 64
    hv = _hypervisor(fmctr_guest=(long, long[:57]))
    assert _rss(hv)[long] == RSS["fmctr-guest"]


def test_two_vms_in_cgroups_of_one_name_get_neither_s_figures() -> None:
    """`fmlab1` and `fm_lab1` both run in a `qemu-<n>-fmlab1`: fmlab1 had fm_lab1's."""
    hv = _hypervisor(fmlab2=("fm_lab1", "fmlab1"))
    rss = _rss(hv)
    assert rss["fmlab1"] is None  # not fm_lab1's 207679488
    assert rss["fm_lab1"] is None
    assert rss["fmctr-guest"] == RSS["fmctr-guest"]


def test_a_shut_off_vm_named_as_a_running_one_s_cgroup_has_no_qemu_figures() -> None:
    text = (CAPTURE / "hypervisor-probe.txt").read_text(encoding="utf-8")
    text = text.replace("-fmctr-guest.libvirt-qemu", "-fmctrguest.libvirt-qemu")
    text = text.replace("Domain: 'fmctr-guest'", "Domain: 'fmctrguest'\n" + SHUT_OFF
                        + "Domain: 'fmctr_guest'")  # fmt: skip
    raw = RawResult(HostSpec("kvm-lab", "127.0.0.1"), Status.OK, stdout=text,
                    nonce="1ab0c0ffee000014")  # fmt: skip
    hv = analyse_host(raw)
    assert hv.status is Status.OK, hv.error
    rss = _rss(hv)
    assert rss["fmctrguest"] is None  # shut off: no QEMU, whatever its name
    assert rss["fmctr_guest"] == RSS["fmctr-guest"]


@pytest.mark.parametrize(
    ("name", "part"),
    [
        ("web01", "web01"),
        ("web_01", "web01"),
        ("db prod", "dbprod"),
        ("a..b--c", "a.b-c"),
        ("-.lead", "lead"),
        ("trail-", "trail"),
        ("_-x", "x"),
        ("été-1", "t-1"),
    ],
)
def test_machine_name_part(name: str, part: str) -> None:
    from fleetmon.sources.ctrpaths import machine_name_part

    assert machine_name_part(name) == part
