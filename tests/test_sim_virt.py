"""The simulator answers the probe's `virt` section: hypervisors on server hardware, a Xen
dom0 as Xen's, plain Linux hosts bare metal, KVM guests or VMware guests, drawn from the seed.

Read back through the real parser and decision (sources/virt.py), and end to end: `fleetmon
run --format json` against `fleetmon simulate`.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from test_simulate import FLEETMON, _analyse, _block, _fleet

from fleetmon.sim.guests import with_guests
from fleetmon.sim.hosts import HostProfile
from fleetmon.sim.virt import KVM_GUEST, SERVERS, VMWARE_GUEST, platform, render_virt
from fleetmon.sources.virt import detect_virt, parse_virt

SERVER_PRODUCTS = {f"{vendor} {product}" for vendor, product, _board, _bios in SERVERS}
#: What each platform reads as: (virtualization_type, _role, a product check).
EXPECTED = {
    "kvm-host": ("kvm", "host"),
    "xen-dom0": ("xen", "host"),
    "metal": ("none", "none"),
    "kvm": ("kvm", "guest"),
    "vmware": ("vmware", "guest"),
}
PRODUCT = {
    "kvm": f"{KVM_GUEST[0]} {KVM_GUEST[1]}",  # QEMU Standard PC (Q35 + ICH9, 2009)
    "vmware": f"{VMWARE_GUEST[0]} {VMWARE_GUEST[1]}",
}


def _check(host: HostProfile, virt: tuple[str | None, str | None, str | None]) -> str:
    """Asserts `virt` (type, role, product) is what the host's platform should read as."""
    kind = platform(host)
    assert virt[:2] == EXPECTED[kind], (host.name, kind, virt)
    if kind in PRODUCT:
        assert virt[2] == PRODUCT[kind], (host.name, virt)
    else:
        assert virt[2] in SERVER_PRODUCTS, (host.name, virt)
    return kind


def test_each_kind_reads_as_what_it_runs_on_through_the_real_analysis() -> None:
    seen: dict[str, set[str]] = {}
    for host in (*_fleet("mixed", 30), *_fleet("linux", 40)):
        out, report = _analyse(host, 1.0)
        assert out.sections[0, "virt"].rc == 0
        v = report.virt
        assert v is not None, host.name
        kind = _check(host, (v.type, v.role, v.product))
        seen.setdefault(host.kind, set()).add(kind)
        if host.kind == "xen":
            assert v.words(report.hypervisor) == "xen host (dom0)"
        if host.steal_share > 0 and host.kind == "linux":
            assert v.role == "guest"  # steal is time a hypervisor gave elsewhere
    assert seen == {"kvm": {"kvm-host"}, "xen": {"xen-dom0"}, "linux": {"metal", "kvm", "vmware"}}


def test_the_answer_is_the_seed_s_and_cached() -> None:
    a, b = _fleet("linux", 30), _fleet("linux", 30)
    assert [render_virt(h) for h in a] == [render_virt(h) for h in b]
    assert render_virt(a[0]) is render_virt(a[0])  # once per profile, as the other caches
    other = [platform(h) for h in a]
    assert len(set(other)) > 1


def test_a_guest_of_a_simulated_vm_is_a_kvm_guest_of_qemu() -> None:
    fleet = with_guests(_fleet("mixed", 40), 5)
    guests = [h for h in fleet if h.guest_of]
    assert len(guests) == 5
    for h in guests:
        v = detect_virt(parse_virt(render_virt(h)))
        assert (v.type, v.role, v.product) == ("kvm", "guest", PRODUCT["kvm"])


@pytest.mark.slow
def test_a_simulated_fleet_s_json_report_says_what_each_host_runs_on(tmp_path: Path) -> None:
    inv = tmp_path / "fleet.yaml"
    cmd = [FLEETMON, "simulate", "--hosts", "12", "--kind", "mixed", "--seed", "7"]
    cmd += ["--base-address", _block() + ".1", "--port", "0", "--inventory-out", str(inv)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("fleetmon simulate: ready: 12 hosts (")
        proc.stdout.readline()
        run = [FLEETMON, "run", str(inv), "--format", "json", "--interval", "0.5"]
        run += ["--timeout", "12", "--no-lock", "--history", "none"]
        out = subprocess.run(run, capture_output=True, text=True, timeout=120, check=False)
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    assert out.returncode in (0, 1, 2, 3), out.stderr
    report = json.loads(out.stdout)
    profiles = {h.name: h for h in _fleet_of(inv)}
    kinds = set()
    for h in report["hosts"]:
        assert h["status"] == "ok", (h["name"], h["error"])
        virt = (h["virtualization_type"], h["virtualization_role"], h["virtualization_product"])
        kinds.add(_check(profiles[h["name"]], virt))
    assert len(report["hosts"]) == 12
    assert {"kvm-host", "xen-dom0"} <= kinds


def _fleet_of(inv: Path) -> tuple[HostProfile, ...]:
    """The simulator's profiles of `inv`'s hosts (the same seed and count give the same)."""
    from fleetmon.sim.hosts import endpoints, make_fleet

    groups = yaml.safe_load(inv.read_text())["all"]["children"].values()
    n = sum(len(g.get("hosts", {})) for g in groups)
    return make_fleet(n, "mixed", 7, {}, endpoints("127.0.0.1", n, 0, 1))
