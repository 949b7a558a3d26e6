"""The `virt` section: what a host runs on, decided in systemd-detect-virt's order
(sources/virt.py), from captures, from DMI strings real kernels logged, and in every report."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from probetext import NONCE, probe_stdout, section

from fleetmon.analyse.merge import host_from_json
from fleetmon.analyse.pipeline import analyse_host, report_from_hosts
from fleetmon.collect.probe import ProbeOptions, build_stream_script
from fleetmon.errors import InputError
from fleetmon.model import HostSpec, RawResult, RunInfo, Status
from fleetmon.model.virt import Virt
from fleetmon.render.html import render_html
from fleetmon.render.json import render_json
from fleetmon.render.text import render_text
from fleetmon.sources.sections import ONCE_SECTIONS
from fleetmon.sources.virt import (
    COMMAND,
    CPU_HYPERVISOR,
    VirtFacts,
    detect_virt,
    detect_vm,
    parse_virt,
)

DATA = Path(__file__).parent / "data" / "virt"
DMI = "/sys/class/dmi/id/"
RUN = RunInfo("0.1.0", "2026-11-26T03:00:00Z", 1.0, "fleet.yaml")


def _dmi(sys_vendor: str, product_name: str, **more: str) -> VirtFacts:
    files = {DMI + "sys_vendor": sys_vendor, DMI + "product_name": product_name}
    files.update({DMI + k: v for k, v in more.items()})
    return VirtFacts(files)


def test_the_development_machine_is_a_docker_container_on_kvm() -> None:
    """Captured here (tests/data/SOURCES.md): no DMI at all, /.dockerenv, kvm-clock and the
    cpuinfo `hypervisor` flag. systemd-detect-virt asks for a container first and finds
    /.dockerenv: docker; its VM (systemd-detect-virt --vm) is KVM, by the clock source
    that only KVM's CPUID signature gives."""
    facts = parse_virt((DATA / "dev-machine-docker-on-kvm.txt").read_text())
    assert "/.dockerenv" in facts.exists
    assert CPU_HYPERVISOR in facts.exists
    assert facts.files["/sys/devices/system/clocksource/clocksource0/available_clocksource"] == (
        "tsc kvm-clock"
    )  # stripped of the kernel's trailing space
    assert len(facts.pid1_cgroup) == 10
    assert detect_virt(facts) == Virt("docker", "guest", None)
    assert detect_virt(facts).words() == "container: docker"
    assert detect_vm(facts) == ("kvm", False)


def test_the_lab_guest_is_a_qemu_guest() -> None:
    """Captured in the lab's TCG guest (tests/lab/guest.py, its busybox sh running the probe's
    command): QEMU's DMI, no kvm-clock (no KVM: systemd-detect-virt says qemu there)."""
    facts = parse_virt((DATA / "lab-guest-qemu-tcg.txt").read_text())
    assert facts.files[DMI + "sys_vendor"] == "QEMU"
    v = detect_virt(facts)
    assert (v.type, v.role) == ("qemu", "guest")
    assert v.product == "QEMU Standard PC (i440FX + PIIX, 1996)"
    assert facts.files[DMI + "product_version"] == "pc-i440fx-7.2"  # QEMU 7.2's `pc`
    assert (
        "kvm-clock"
        not in facts.files["/sys/devices/system/clocksource/clocksource0/available_clocksource"]
    )
    assert v.words() == "qemu guest"


# DMI strings from real kernels' "Hardware name:" lines (dmi_setup: `sys_vendor product_name/
# board_name, BIOS bios_version date`), as quoted in public bug reports and mailing-list
# threads found by code search: "VMware, Inc. VMware Virtual Platform/440BX Desktop Reference
# Platform, BIOS 6.00 05/19/2017", "Microsoft Corporation Virtual Machine/Virtual Machine,
# BIOS Hyper-V UEFI Release v4.1 09/28/2024", "Xen HVM domU, BIOS 4.11.amazon 08/24/2006".
@pytest.mark.parametrize(
    ("facts", "virt", "words"),
    [
        (_dmi("VMware, Inc.", "VMware Virtual Platform", board_vendor="Intel Corporation"),
         Virt("vmware", "guest", "VMware, Inc. VMware Virtual Platform"), "vmware guest"),
        (_dmi("Microsoft Corporation", "Virtual Machine"),
         Virt("microsoft", "guest", "Microsoft Corporation Virtual Machine"),
         "microsoft (hyper-v) guest"),
        (_dmi("Xen", "HVM domU"), Virt("xen", "guest", "Xen HVM domU"), "xen guest (domU)"),
        # The lab's QEMU with KVM (its clock source): kvm, as systemd's CPUID says.
        (dataclasses.replace(_dmi("QEMU", "Standard PC (i440FX + PIIX, 1996)"), files={
            DMI + "sys_vendor": "QEMU", DMI + "product_name": "Standard PC (i440FX + PIIX, 1996)",
            "/sys/devices/system/clocksource/clocksource0/available_clocksource":
                "kvm-clock tsc acpi_pm"}),
         Virt("kvm", "guest", "QEMU Standard PC (i440FX + PIIX, 1996)"), "kvm guest"),
    ],
)  # fmt: skip
def test_dmi_strings_of_real_vms(facts: VirtFacts, virt: Virt, words: str) -> None:
    assert detect_virt(facts) == virt
    assert virt.words() == words


def test_amazon_metal_is_bare_metal_and_the_rest_of_ec2_a_vm() -> None:
    """virt.c: EC2's DMI is its VMs' and its metal instances'; `.metal` tells them apart."""
    metal = _dmi("Amazon EC2", "m5.metal", bios_vendor="Amazon EC2")
    assert detect_virt(metal) == Virt("none", "none", "Amazon EC2 m5.metal")
    assert detect_virt(_dmi("Amazon EC2", "t3.micro")).type == "amazon"


def test_xen_dom0_is_a_host_and_a_domu_a_guest() -> None:
    """virt.c detect_vm_xen_dom0: XENFEAT_dom0 (bit 11) of the features first, then
    control_d in /proc/xen/capabilities (Ansible's only test)."""
    xen = frozenset({"/proc/xen"})
    dom0 = VirtFacts({"/proc/xen/capabilities": "control_d"}, xen)
    assert detect_virt(dom0, "xen") == Virt("xen", "host")
    assert detect_virt(dom0, "xen").words("xen") == "xen host (dom0)"
    domu = VirtFacts({"/proc/xen/capabilities": ""}, xen)
    assert detect_virt(domu).words() == "xen guest (domU)"
    feats = "/sys/hypervisor/properties/features"
    assert detect_virt(VirtFacts({feats: "00000801"}, xen)).role == "host"  # bit 11 set
    assert detect_virt(VirtFacts({feats: "00000001"}, xen)).role == "guest"
    # No xenfs mounted: /sys/hypervisor/type still says Xen, and dom0 is not its own guest.
    bare = VirtFacts({"/sys/hypervisor/type": "xen", feats: "00000800"})
    assert detect_virt(bare, "xen") == Virt("xen", "host")


@pytest.mark.parametrize(
    ("facts", "kind"),
    [
        (VirtFacts({"/run/systemd/container": "podman"}), "podman"),
        (VirtFacts({"/run/host/container-manager": "systemd-nspawn"}), "systemd-nspawn"),
        (VirtFacts({"/run/systemd/container": "oci"}, frozenset({"/run/.containerenv"})), "podman"),
        (VirtFacts({"/run/systemd/container": "oci"}), "container-other"),
        (VirtFacts({"/run/systemd/container": "<b>x</b>"}), "container-other"),
        (VirtFacts(pid1_cgroup=("12:cpu:/docker/4f1c0a",)), "docker"),
        (VirtFacts(pid1_cgroup=("1:name=systemd:/lxc/web1",)), "lxc"),
        # podman leaves /.dockerenv too in some versions: /run/.containerenv first (virt.c).
        (VirtFacts(exists=frozenset({"/run/.containerenv", "/.dockerenv"})), "podman"),
        (VirtFacts(exists=frozenset({"/proc/vz"})), "openvz"),
        (VirtFacts(exists=frozenset({"/proc/vz", "/proc/bc"})), "none"),  # OpenVZ's host
        (VirtFacts({"/proc/sys/kernel/osrelease": "5.15.167.4-microsoft-standard-WSL2"}), "wsl"),
    ],
)  # fmt: skip
def test_containers_in_systemds_order(facts: VirtFacts, kind: str) -> None:
    v = detect_virt(facts)
    assert v.type == kind
    assert v.words() == ("none" if kind == "none" else f"container: {kind}")


def test_a_hypervisor_is_a_host_and_a_nested_one_says_both() -> None:
    assert detect_virt(VirtFacts(), "kvm").words("kvm") == "kvm host"
    assert detect_virt(VirtFacts(), "none").words() == "none"
    nested = _dmi("QEMU", "Standard PC (Q35 + ICH9, 2009)")
    assert detect_virt(nested, "kvm").words("kvm") == "qemu guest, kvm host"
    # The hypervisor flag alone: some VM, which one unknown (virt.c's vm-other).
    other = detect_virt(VirtFacts(exists=frozenset({CPU_HYPERVISOR})))
    assert other.words() == "unidentified hypervisor's guest"


def test_parse_virt_passes_over_what_it_does_not_know() -> None:
    text = (
        "junk\n/etc/passwd=root\n" + DMI + "sys_vendor=QEMU  \n/.dockerenv\n/proc/1/cgroup=0::/\n"
    )
    facts = parse_virt(text)
    assert facts == VirtFacts({DMI + "sys_vendor": "QEMU"}, frozenset({"/.dockerenv"}), ("0::/",))
    assert parse_virt("") == VirtFacts()


@pytest.mark.parametrize("shell", ["dash", "busybox"])
def test_the_command_under_dash_and_busybox_reads_this_machine_alike(shell: str) -> None:
    """The probe's command, with no awk or grep of the host's but busybox's own where asked."""
    path = shutil.which(shell)
    if path is None:
        pytest.skip(f"no {shell} here")
    argv = [path, "sh", "-c", COMMAND] if shell == "busybox" else [path, "-c", COMMAND]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30)
    assert out.stderr == ""
    facts = parse_virt(out.stdout)
    assert "/proc/sys/kernel/osrelease" in facts.files  # world-readable everywhere
    ref = parse_virt(subprocess.run(["sh", "-c", COMMAND], capture_output=True, text=True,
                                    check=True, timeout=30).stdout)  # fmt: skip
    assert facts == ref


def test_the_section_is_read_once_a_run_and_once_a_minute_live() -> None:
    assert ("virt", COMMAND) in ONCE_SECTIONS
    script = build_stream_script(ProbeOptions(nonce="00aa00aa00aa00aa"))
    once = script[script.index("fm_once() {") : script.index("fm_wait()")]
    assert "fm 0 virt " in once


def _host(virt_text: str | None, name: str = "vm7") -> RawResult:
    stdout = probe_stdout(("root2", "root3"))
    if virt_text is not None:
        stdout += section(0, "virt", virt_text)
    return RawResult(HostSpec(name, "192.0.2.7"), Status.OK, stdout=stdout, nonce=NONCE)


HOSTILE = "QEMU\x1b[2J<script>alert(1)</script>"


def test_every_report_shows_it_and_escapes_the_hosts_dmi() -> None:
    text = f"{DMI}sys_vendor={HOSTILE}\n{DMI}product_name=Standard PC\n"
    host = analyse_host(_host(text))
    assert host.virt == Virt("qemu", "guest", f"{HOSTILE} Standard PC")
    old = analyse_host(_host(None, "old"))  # a probe before the section: not read
    assert old.virt is None
    report = report_from_hosts([host, old], RUN)
    doc = json.loads(render_json(report))
    h, o = doc["hosts"]
    assert (h["virtualization_type"], h["virtualization_role"]) == ("qemu", "guest")
    assert h["virtualization"] == "qemu guest"
    assert h["virtualization_product"] == f"{HOSTILE} Standard PC"
    assert [o[k] for k in ("virtualization_type", "virtualization_role")] == [None, None]
    out = render_text(report)
    assert "VIRT" in out
    line = next(ln for ln in out.splitlines() if ln.startswith("vm7"))
    assert line.rstrip().endswith("qemu guest")
    html = render_html(report)
    shown = "· qemu guest (QEMU\\x1b[2J&lt;script&gt;alert(1)&lt;/script&gt; Standard PC) ·"
    assert shown in html
    assert "<script>alert(1)" not in html
    assert "\x1b" not in html


def test_merge_reads_it_back_and_refuses_a_bad_role() -> None:
    host = analyse_host(_host(f"{DMI}sys_vendor=QEMU\n"))
    doc = json.loads(render_json(report_from_hosts([host], RUN)))["hosts"][0]
    assert host_from_json(doc, "hosts[0].").virt == Virt("qemu", "guest", "QEMU")
    before = {k: v for k, v in doc.items() if not k.startswith("virtualization")}
    assert host_from_json(before, "hosts[0].").virt is None
    with pytest.raises(InputError) as err:
        host_from_json(dict(doc, virtualization_role="root"), "hosts[0].")
    assert str(err.value) == (
        "hosts[0].virtualization_role: expected one of ('guest', 'host', 'none'), got 'root'"
    )
