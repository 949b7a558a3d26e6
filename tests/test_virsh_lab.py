"""The real probe against the lab hypervisor (real libvirt 9 + QEMU, two busy guests).

Run through a local `sh`, as `ansible_connection: local` does; the SSH path is in
test_e2e_lab.py. Figures are live, so the tests check invariants: every counter the guests
move is positive, and each VM's CPU use fits inside virsh's own reading taken around it.
The machine may run other libvirt domains besides the lab's: the tests judge the lab's own
guests, and check the hypervisor totals against whatever domains the probe saw.
"""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING

import pytest

from fleetmon.analyse.vms import compute_vms
from fleetmon.collect.probe import REMOTE_COMMAND, ProbeOptions, build_script
from fleetmon.sources.sections import split_output

if TYPE_CHECKING:
    from lab.conftest_lab import Lab

pytest_plugins = ["lab.conftest_lab"]
pytestmark = [pytest.mark.lab, pytest.mark.slow]

INTERVAL_S = 2.5  # longer than one turn of the guests' work loop (work + 1 s sleep)


def probe(opts: ProbeOptions, user: int | None = None) -> tuple[object, float]:
    proc = subprocess.run(
        ["sh", "-c", REMOTE_COMMAND],
        input=build_script(opts),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        user=user,
        cwd="/",
    )
    out = split_output(proc.stdout, opts.nonce)
    up1, up2 = (float((out.text(s, "uptime") or "").split()[0]) for s in (1, 2))
    return out, up2 - up1


def test_lab_guests_every_counter_moves_and_cpu_fits_virsh(lab_hypervisor: Lab) -> None:
    before = lab_hypervisor.domstats()
    out, dt = probe(ProbeOptions(interval_s=INTERVAL_S))
    after = lab_hypervisor.domstats()
    host_cpus = os.cpu_count() or 1
    res = compute_vms(out, host_cpus, None, dt)  # type: ignore[arg-type]
    assert res.hypervisor == "kvm"
    # A note on another domain ("VM x started between the samples") is not the lab's concern;
    # one on a lab guest, or on the whole hypervisor, is.
    mine = [f"VM {d} " for d in lab_hypervisor.domains]
    assert [n for n in res.notes if not n.startswith("VM ") or n.startswith(tuple(mine))] == []
    vms = {r.name: r.metrics for r in res.vms}
    assert set(lab_hypervisor.domains) <= set(vms)
    for name in lab_hypervisor.domains:
        m = vms[name]
        assert (m["vm.state"], m["vm.vcpus"], m["vm.mem_max_bytes"]) == ("running", 1, 128 << 20)
        for key in (
            "vm.cpu_pct", "vm.vcpu_delay_pct", "vm.disk_reads_per_s", "vm.disk_writes_per_s",
            "vm.disk_read_bytes_per_s", "vm.disk_write_bytes_per_s", "vm.net_rx_bytes_per_s",
            "vm.net_tx_bytes_per_s", "vm.disk_r_await_ms", "vm.disk_w_await_ms",
        ):  # fmt: skip
            value = m[key]
            assert isinstance(value, float), (name, key, value)
            assert value > 0, (name, key)
        assert 0 < m["vm.mem_used_pct"] < 100  # type: ignore[operator]
        # The probe's window lies inside [before, after]: its CPU time cannot exceed virsh's.
        used_ns = m["vm.cpu_pct"] * 1 * 1e9 * dt / 100  # type: ignore[operator]
        outer_ns = after[name].num("cpu.time") - before[name].num("cpu.time")  # type: ignore[operator]
        assert 0 < used_ns <= outer_ns * 1.0001
        assert m["vm.cpu_host_pct"] == pytest.approx(m["vm.cpu_pct"] / host_cpus)  # type: ignore[operator]
    lab_nics = {nic: vm for nic, vm in res.nic_vm.items() if vm in lab_hypervisor.domains}
    assert lab_nics == lab_hypervisor.taps
    # The totals cover every domain the probe saw, the lab's and any other.
    running = [m for m in vms.values() if m["vm.state"] in ("running", "blocked")]
    assert res.hv_metrics["hv.vms_running"] == len(running)
    vcpus = sum(v for m in running if isinstance(v := m["vm.vcpus"], int))
    assert res.hv_metrics["hv.vcpu_overcommit_ratio"] == pytest.approx(vcpus / host_cpus)
    total = sum(m["vm.cpu_host_pct"] for m in running if m["vm.cpu_host_pct"] is not None)
    assert res.hv_metrics["hv.vm_cpu_pct"] == pytest.approx(total)


def test_lab_unprivileged_user_keeps_host_metrics_and_gets_a_note(lab_hypervisor: Lab) -> None:
    out, _ = probe(ProbeOptions(interval_s=0.2, hypervisor="kvm"), user=65534)
    assert out.text(2, "stat")  # type: ignore[attr-defined]
    res = compute_vms(out, 2, None, 0.2)  # type: ignore[arg-type]
    assert res.vms == ()
    (note,) = res.notes
    assert note.startswith(
        "VMs not reported: virsh domstats failed: failed to connect to the hypervisor; "
    )
