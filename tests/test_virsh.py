"""virsh parsers against real captures: libvirt 9 lab samples, kerub (shut-off), glances."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetmon.errors import ProbeParseError
from fleetmon.sources.virsh import NodeInfo, failure_reason, parse_domstats, parse_nodeinfo

DATA = Path(__file__).parent / "data"
LAB = DATA / "lab-libvirt9-qemu7-tcg"


def read(path: Path) -> str:
    return path.read_text()


def test_lab_sample_has_both_domains_with_typed_fields() -> None:
    doms = parse_domstats(read(LAB / "sample1" / "domstats--raw.txt"))
    assert [d.name for d in doms] == ["vm2", "vm1"]
    vm1 = doms[1]
    assert vm1.state == "running"
    assert vm1.num("cpu.time") == 4874849000
    assert vm1.num("vcpu.0.delay") == 767481935
    assert vm1.num("balloon.usable") == 69700
    assert vm1.text("dirtyrate.calc_mode") == "page-sampling"
    assert vm1.num("dirtyrate.calc_mode") is None
    assert vm1.num("no.such.key") is None
    assert vm1.vcpu_indices() == [0]
    assert list(vm1.indexed("net")) == ["tap-vm1"]
    assert vm1.indexed("net")["tap-vm1"]["rx.bytes"] == 3536
    assert vm1.indexed("block")["vda"]["wr.times"] == 6279699
    assert len(vm1.fields) == 57


def test_kerub_shut_off_domain_has_no_counters() -> None:
    running, off = parse_domstats(read(DATA / "kerub" / "virsh" / "domstats-2domains.txt"))
    assert (running.name, running.state) == ("kerub.hosts.opensuse13", "running")
    assert running.vcpu_indices() == [0, 1]
    assert running.num("vcpu.1.delay") is None  # libvirt 1.2: no vcpu.N.delay yet
    assert (off.name, off.state) == ("kerub.hosts.fedora20", "shutoff")
    assert off.num("cpu.time") is None
    assert off.num("balloon.maximum") == 1048576
    assert off.indexed("net") == {}
    assert list(off.indexed("block")) == ["vda"]


def test_glances_trimmed_capture_elision_line_is_a_parse_error() -> None:
    text = read(DATA / "glances" / "virsh-domstats-win11-trimmed.txt")
    with pytest.raises(ProbeParseError) as exc:
        parse_domstats(text)
    assert str(exc.value) == (
        "section virsh_domstats: line 62: expected \"Domain: '<name>'\" or 'key=value', "
        "got '  vcpu.1...'"
    )


def test_glances_capture_without_its_elision_lines() -> None:
    text = read(DATA / "glances" / "virsh-domstats-win11-trimmed.txt")
    kept = "\n".join(ln for ln in text.splitlines() if not ln.endswith("..."))
    (win11,) = parse_domstats(kept)
    assert win11.num("vcpu.current") == 4
    assert win11.vcpu_indices() == [0]
    assert win11.text("vcpu.0.guest_mode.cur") == "no"
    assert win11.num("vm.pages_2m.cur") == 859  # libvirt 10's per-VM KVM stats, ignored later
    assert win11.indexed("net")["vnet3"]["rx.drop"] == 7
    # block.count=2 but block.1.* was cut from the capture: the entry is there, empty.
    assert win11.indexed("block")["#1"] == {}
    assert win11.indexed("block")["sda"]["rd.times"] == 83676206416


def test_empty_output_is_no_domains() -> None:
    assert parse_domstats("") == ()


def test_text_before_the_first_domain_is_a_parse_error() -> None:
    with pytest.raises(ProbeParseError, match=r"line 1: expected"):
        parse_domstats("state.state=1\n")


@pytest.mark.parametrize("sample", ["sample1", "sample2"])
def test_nodeinfo_of_the_lab(sample: str) -> None:
    assert parse_nodeinfo(read(LAB / sample / "nodeinfo.txt")) == NodeInfo(2, 6252760 * 1024)


def test_nodeinfo_garbage() -> None:
    with pytest.raises(ProbeParseError) as exc:
        parse_nodeinfo("error: failed to connect to the hypervisor\n")
    assert str(exc.value) == "section virsh_nodeinfo: no 'CPU(s):' or 'Memory size:' line"


@pytest.mark.parametrize(
    ("text", "rc", "reason"),
    [
        ("sudo: a password is required\n", 1, "sudo: a password is required"),
        (
            "sudo: unable to resolve host vm: Name or service not known\n"
            "sudo: a password is required\n",
            1,
            "sudo: a password is required",
        ),
        ("sh: 1: virsh: not found\n", 127, "sh: 1: virsh: not found"),
        ("", 124, "no answer within the probe's time limit (timed out)"),
        ("", 1, "exit status 1 and no output"),
        (
            "error: failed to connect to the hypervisor\n"
            "error: Failed to connect socket to '/var/run/libvirt/libvirt-sock': "
            "Permission denied\n",
            1,
            "failed to connect to the hypervisor; Failed to connect socket to "
            "'/var/run/libvirt/libvirt-sock': Permission denied",
        ),
    ],
)
def test_failure_reason(text: str, rc: int, reason: str) -> None:
    assert failure_reason(text, rc) == reason
