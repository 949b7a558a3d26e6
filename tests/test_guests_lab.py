"""Live on the lab hypervisor: a stand-in guest (tests/lab/guest.py) reads its SMBIOS UUID, its
`virt` section and its /proc inside a real QEMU guest; the real probe reads the hypervisor;
the report pairs them by that UUID, which is the one libvirt gave the domain, and the guest
says it is a QEMU guest."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import pytest
from probetext import section
from test_guests import RUN

from fleetmon.analyse.pipeline import analyse_host, report_from_hosts
from fleetmon.collect.probe import REMOTE_COMMAND, ProbeOptions, build_script
from fleetmon.model import HostSpec, RawResult, Status

if TYPE_CHECKING:
    from lab.conftest_lab import Lab

pytest_plugins = ["lab.conftest_lab"]
pytestmark = [pytest.mark.lab, pytest.mark.slow]


def test_a_real_guest_is_paired_with_its_vm_by_its_own_smbios_uuid(lab_hypervisor: Lab) -> None:
    from lab.guest import NAME, console_sections, stand_in_guest
    from podman_util import require_podman

    require_podman()  # the guest's busybox comes from the containers' cached rootfs
    with stand_in_guest(lab_hypervisor.uri) as (uuid, console):
        opts = ProbeOptions(interval_s=1.0, hypervisor="kvm")
        # Decoded as the runner decodes (collect/runner.py): a mount point's name may be
        # any bytes, and df prints it as it is.
        proc = subprocess.run(REMOTE_COMMAND.split(), input=build_script(opts),
                              capture_output=True, encoding="utf-8", errors="replace",
                              timeout=60, check=True)  # fmt: skip
    hv = analyse_host(RawResult(HostSpec("lab-hv", "local", connection="local"), Status.OK,
                                stdout=proc.stdout, nonce=opts.nonce))  # fmt: skip
    secs = console_sections(console)
    assert secs[0, "product_uuid"].strip() == uuid  # what the guest read is libvirt's UUID
    nonce = "00000000000000aa"
    text = "".join(section(s, n, t, nonce=nonce) for (s, n), t in secs.items())
    guest = analyse_host(RawResult(HostSpec("guest-x", "192.0.2.99"), Status.OK, stdout=text,
                                   nonce=nonce))  # fmt: skip
    assert guest.status is Status.OK, guest.error
    # The guest knows it is one: its DMI is QEMU's, and the lab runs QEMU without KVM (TCG,
    # ../shared/lab/README.md), which systemd-detect-virt calls qemu (CPUID "TCGTCGTCGTCG").
    assert guest.virt is not None, secs.get((0, "virt"))
    assert (guest.virt.type, guest.virt.role) == ("qemu", "guest"), secs[0, "virt"]
    assert guest.virt.words() == "qemu guest"
    # QEMU's DMI for the `pc` machine type that tests/lab/guest.py asks for.
    assert guest.virt.product == "QEMU Standard PC (i440FX + PIIX, 1996)", secs[0, "virt"]
    # The hypervisor's own probe: a KVM host, said after what this machine itself runs in,
    # if anything (nested: "container: docker, kvm host").
    assert hv.virt is not None
    assert hv.virt.words(hv.hypervisor).endswith("kvm host"), hv.virt
    hv2, g2 = report_from_hosts([hv, guest], RUN).hosts
    vm = next(r for r in hv2.rows_of("vm") if r.name == NAME)
    assert vm.labels["uuid"] == uuid
    assert vm.labels["guest_host"] == "guest-x"
    (pair,) = g2.rows_of("guest")
    assert pair.name == f"lab-hv/{NAME}"
    assert pair.labels["matched_by"] == "uuid"
    assert pair.metrics["guest.vcpu_delay_pct"] == vm.metrics["vm.vcpu_delay_pct"]
    assert pair.metrics["guest.steal_pct"] == guest.metrics["cpu.steal_pct"]
    assert pair.metrics["guest.host_rss_bytes"] == vm.metrics["vm.host_rss_bytes"]
    assert isinstance(vm.metrics["vm.host_rss_bytes"], int)  # its QEMU's cgroup was read
    assert vm.metrics["vm.host_rss_bytes"] > 0
