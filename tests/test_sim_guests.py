"""`fleetmon simulate --guests N`: Linux hosts that are guests of the fleet's KVM VMs, each
matched to its VM by the domain UUID and seen from both sides with consistent figures."""

from __future__ import annotations

import pytest
from test_simulate import _analyse, _fleet

from fleetmon.analyse.guests import link_guests
from fleetmon.errors import OptionError
from fleetmon.sim.guests import with_guests
from fleetmon.sim.hosts import endpoints, make_fleet
from fleetmon.sim.render import vm_uuid
from fleetmon.sources.virsh import parse_domstats


def test_no_option_no_guests_and_the_fleet_unchanged() -> None:
    assert with_guests(_fleet("mixed"), 0) == _fleet("mixed")


def test_guests_are_linux_hosts_spread_over_the_kvm_hosts() -> None:
    fleet = with_guests(_fleet("mixed"), 3)
    guests = [h for h in fleet if h.guest_of]
    assert len(guests) == 3
    assert all(h.kind == "linux" for h in guests)
    vms = {vm.name: (hv, vm) for hv in fleet for vm in hv.vms}
    hypervisors = {vms[h.guest_of][0].name for h in guests if h.guest_of}
    assert len(hypervisors) == 3  # one VM of each of three KVM hosts, not three of one
    for h in guests:
        assert h.guest_of is not None
        vm = vms[h.guest_of][1]
        assert vm.running
        assert (h.cpus, h.mem_kib, h.steal_share) == (vm.vcpus, vm.mem_kib, vm.delay_share)
    # Nothing else of the fleet moved.
    others = [h for h in fleet if not h.guest_of]
    assert others == [h for h in _fleet("mixed") if h.name in {o.name for o in others}]


def test_no_guest_of_a_hypervisor_that_does_not_answer() -> None:
    # A faulty KVM host is never collected: its VMs' guests would have no pair.
    faults = {"unreachable": 3, "cmdfail": 3}
    fleet = make_fleet(40, "mixed", 3, faults, endpoints("127.0.1.1", 40, 2222, 1))
    guests = with_guests(fleet, 4)
    on = {vm.name: hv for hv in guests for vm in hv.vms}
    chosen = [on[h.guest_of] for h in guests if h.guest_of]
    assert len(chosen) == 4
    assert all(hv.fault is None for hv in chosen)
    assert any(hv.kind == "kvm" and hv.fault for hv in fleet)  # the case is there


@pytest.mark.parametrize("kind", ["kvm", "linux"])
def test_a_fleet_without_both_kinds_is_refused(kind: str) -> None:
    with pytest.raises(OptionError, match=r"^--guests 2: the fleet has \d+ Linux hosts"):
        with_guests(_fleet(kind, 10), 2)


def test_each_guest_is_seen_from_both_sides() -> None:
    fleet = with_guests(_fleet("mixed"), 6)
    guests = [h for h in fleet if h.guest_of]
    hvs = [hv for hv in fleet if any(vm.name in {g.guest_of for g in guests} for vm in hv.vms)]
    reports = link_guests([_analyse(h)[1] for h in (*guests, *hvs)])
    for g, report in zip(guests, reports, strict=False):
        assert g.guest_of is not None
        assert report.product_uuid == vm_uuid(g.guest_of)
        (row,) = report.rows_of("guest")
        assert row.labels["vm"] == g.guest_of
        assert row.labels["matched_by"] == "uuid"
        m = row.metrics
        # What the guest counts as steal is what the hypervisor counts as vCPU delay (to
        # the guest's 1/100 s ticks); its busy CPU, steal included (100 - idle - iowait),
        # the VM's CPU and that delay: the profile's numbers from both sides.
        assert m["guest.steal_pct"] == pytest.approx(m["guest.vcpu_delay_pct"], abs=0.06)
        assert m["guest.vcpu_delay_pct"] == pytest.approx(100 * g.steal_share, abs=0.01)
        busy = m["guest.vm_cpu_pct"] + m["guest.steal_pct"]
        assert m["guest.busy_pct"] == pytest.approx(busy, abs=0.6)
        assert m["guest.mem_total_bytes"] == m["guest.balloon_bytes"]
        # The QEMU process's RSS, from the VM's cgroup on the hypervisor.
        assert 0 < m["guest.host_rss_bytes"] <= m["guest.balloon_bytes"]
    labelled = {
        r.labels["guest_host"] for h in reports for r in h.rows_of("vm") if "guest_host" in r.labels
    }
    assert labelled == {g.name for g in guests}
    assert sum(g.steal_share for g in guests) > 0.03  # delays large enough to tell apart


@pytest.mark.parametrize("parity", [0, 1], ids=["cgroup-v2-systemd", "cgroup-v1-cgroupfs"])
def test_a_kvm_host_s_guests_have_their_qemu_cgroup(parity: int) -> None:
    # libvirt puts each running guest's QEMU process in a machine cgroup, containers or
    # not: its host-side memory and I/O are on the VM's row, and agree with domstats.
    # Hosts of even index run cgroup v2; one with a shut-off guest besides running ones.
    host = next(
        h for h in _fleet("kvm") if h.index % 2 == parity and not all(v.running for v in h.vms)
    )
    assert not host.containers
    out, report = _analyse(host)
    section = out.get(2, "cgroup")
    assert section is not None
    assert ("machine/qemu-" if parity else "machine.slice/machine-qemu\\x2d") in section.text
    domstats = {d.name: d for d in parse_domstats(out.sections[2, "virsh_domstats"].text)}
    rows = report.rows_of("vm")
    running = [r for r in rows if r.metrics["vm.state"] == "running"]
    assert running
    assert not report.rows_of("ctr")  # a VM's cgroup is not a container
    for r in running:
        m = r.metrics
        assert m["vm.host_rss_bytes"] == domstats[r.name].num("balloon.rss") * 1024  # type: ignore[operator]
        assert m["vm.host_read_bytes_per_s"] == pytest.approx(m["vm.disk_read_bytes_per_s"])
        assert m["vm.host_write_bytes_per_s"] == pytest.approx(m["vm.disk_write_bytes_per_s"])
    # A shut-off guest has no QEMU process, hence no cgroup.
    assert len(running) < len(rows)
    assert all(r.metrics.get("vm.host_rss_bytes") is None for r in rows if r not in running)
