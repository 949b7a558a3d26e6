"""Live on the lab hypervisor: a domain whose name libvirt cleans for its machine name (an
`_`) runs in a cgroup of that cleaned name, and the report still gives the VM its QEMU's
host-side figures, equal to what that cgroup's own files say."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from fleetmon.analyse.pipeline import analyse_host
from fleetmon.collect.probe import REMOTE_COMMAND, ProbeOptions, build_script
from fleetmon.model import HostSpec, RawResult, Status

if TYPE_CHECKING:
    from lab.conftest_lab import Lab

pytest_plugins = ["lab.conftest_lab"]
pytestmark = [pytest.mark.lab, pytest.mark.slow]

NAME = "fm_under_score"
#: No disk, no kernel: SeaBIOS finds nothing to boot and QEMU idles; its cgroup is real.
DOMAIN = f"""<domain type='qemu'>
  <name>{NAME}</name>
  <memory unit='MiB'>32</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices><emulator>/usr/bin/qemu-system-x86_64</emulator></devices>
</domain>
"""


def _virsh(uri: str, *args: str, check: bool = True) -> str:
    return subprocess.run(["virsh", "-q", "-c", uri, *args], capture_output=True, text=True,
                          check=check, timeout=60).stdout  # fmt: skip


def test_a_vm_named_with_an_underscore_has_its_qemu_cgroup_figures(lab_hypervisor: Lab) -> None:
    uri = lab_hypervisor.uri
    _virsh(uri, "destroy", NAME, check=False)
    with tempfile.TemporaryDirectory(prefix="fm-under-") as tmp:
        xml = Path(tmp) / "d.xml"
        xml.write_text(DOMAIN)
        _virsh(uri, "create", str(xml))
    try:
        dom_id = _virsh(uri, "domid", NAME).strip()
        cgroups = list(Path("/sys/fs/cgroup").glob(f"**/qemu-{dom_id}-fmunderscore.libvirt-qemu"))
        cgroups += Path("/sys/fs/cgroup").glob(
            f"**/machine-qemu\\x2d{dom_id}\\x2dfmunderscore.scope"
        )
        assert cgroups, "libvirt named the cgroup otherwise"
        opts = ProbeOptions(interval_s=1.0, hypervisor="kvm")
        proc = subprocess.run(REMOTE_COMMAND.split(), input=build_script(opts),
                              capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
        stat = _memory_stat(cgroups)
    finally:
        _virsh(uri, "destroy", NAME, check=False)
    hv = analyse_host(RawResult(HostSpec("lab-hv", "local", connection="local"), Status.OK,
                                stdout=proc.stdout, nonce=opts.nonce))  # fmt: skip
    vm = next(r for r in hv.rows_of("vm") if r.name == NAME)
    rss = vm.metrics.get("vm.host_rss_bytes")
    assert isinstance(rss, int)
    assert rss > 0
    # What the cgroup's memory.stat said just after (v1 total_rss, v2 anon); an idle QEMU's
    # moves by a few pages at most.
    assert abs(rss - stat) <= stat * 0.02, (rss, stat)


def _memory_stat(cgroups: list[Path]) -> int:
    """The QEMU cgroup's resident anonymous memory, as the probe reads it."""
    for cg in cgroups:
        text = (cg / "memory.stat").read_text() if (cg / "memory.stat").exists() else ""
        fields = dict(line.split() for line in text.splitlines() if line.count(" ") == 1)
        value = fields.get("total_rss", fields.get("anon"))
        if value is not None:
            return int(value)
    raise AssertionError(f"no memory.stat in {cgroups}")
