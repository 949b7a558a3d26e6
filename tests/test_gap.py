"""Averages over the gap between two runs (analyse/counters.py, analyse/gap.py).

The invariant that checks every formula: when the "previous run" is the first sample and
"this run" the second, the averages over the gap are the spot metrics, exactly.
"""

from __future__ import annotations

import json

import pytest
from probetext import NONCE, probe_stdout

from fleetmon.analyse.counters import all_counters
from fleetmon.analyse.gap import since_last_run
from fleetmon.analyse.pipeline import analyse_host
from fleetmon.model import HostReport, HostSpec, RawResult, Status
from fleetmon.sources.sections import split_output


def _host(stdout: str) -> tuple[HostReport, dict, dict]:
    raw = RawResult(HostSpec("kvm01", "192.0.2.1"), Status.OK, stdout=stdout, nonce=NONCE)
    h = analyse_host(raw)
    out = split_output(stdout, NONCE)
    rows = {
        "disk": tuple(r.name for r in h.rows_of("disk")),
        "nic": tuple(r.name for r in h.rows_of("nic")),
        "vm": tuple(r.name for r in h.rows_of("vm")),
    }
    return h, all_counters(out, rows, 1), all_counters(out, rows, 2)


@pytest.mark.parametrize(
    "stdout",
    [probe_stdout(kvm=True), probe_stdout(("root2", "root3")), probe_stdout(("root6", "root7"))],
    # root6/7: no /proc/pressure, so no psi.* (not offered) over the gap either.
    ids=["sysstat-root1-root2-lab-kvm", "sysstat-root2-root3", "sysstat-root6-root7-no-psi"],
)
def test_the_gap_between_two_samples_is_the_spot_metrics(stdout: str) -> None:
    h, first, second = _host(stdout)
    # What the history keeps: the second sample's counters, as compact JSON.
    assert {k: json.loads(v) for k, v in h.counters.items()} == second
    cpus = h.metrics["cpu.count"]
    dt, gaps, note = since_last_run(first, second, cpus if isinstance(cpus, int) else None)
    assert (dt, note) == (h.interval_s, None)
    subjects = [("host", "", h.metrics)]
    subjects += [("disk", r.name, r.metrics) for r in h.rows_of("disk")]
    subjects += [("nic", r.name, r.metrics) for r in h.rows_of("nic")]
    subjects += [
        ("vm", r.name, r.metrics)
        for r in h.rows_of("vm")
        if r.metrics.get("vm.cpu_pct") is not None
    ]
    compared = 0
    for scope, name, metrics in subjects:
        gap = gaps[scope, name]
        for metric, value in gap.items():
            assert metric in metrics, (scope, name, metric)
            if value is None or metrics[metric] is None:
                assert value == metrics[metric], (scope, name, metric)
                continue
            assert value == pytest.approx(metrics[metric], rel=1e-12, abs=1e-12), (scope, metric)
            compared += 1
    assert compared > 60
    vm_gaps = [gaps[k] for k in gaps if k[0] == "vm" and gaps[k]]
    assert bool(vm_gaps) == ("virsh_domstats" in stdout)
    if vm_gaps:  # virt-top's packet rates too, not only bytes and drops
        assert all("vm.net_rx_packets_per_s" in g for g in vm_gaps)
        assert any(g["vm.net_tx_packets_per_s"] for g in vm_gaps)


def test_a_reboot_between_the_runs_gives_no_average() -> None:
    _, first, second = _host(probe_stdout(kvm=True))
    rebooted = {**second, ("host", ""): {**second["host", ""], "boot_id": "another"}}
    assert since_last_run(first, rebooted, 8) == (
        None, {}, "rebooted since the last run: no average over the gap"
    )  # fmt: skip
    back = {**second, ("host", ""): {**second["host", ""], "uptime_s": 1.0}}
    assert since_last_run(first, back, 8)[2] == (
        "uptime went back since the last run (a reboot): no average over the gap"
    )


def test_a_vm_restarted_in_the_gap_has_no_average() -> None:
    _, first, second = _host(probe_stdout(kvm=True))
    vm = next(k for k in second if k[0] == "vm")
    restarted = {**second, vm: {**second[vm], "cpu.time": 5}}
    _, gaps, _ = since_last_run(first, restarted, 8)
    assert gaps[vm] == {}


def test_rows_of_an_older_run_than_the_host_s_are_left_out() -> None:
    _, first, second = _host(probe_stdout(kvm=True))
    older = {k: {**v, "_t": 100 if k[0] == "disk" else 200} for k, v in first.items()}
    _, gaps, _ = since_last_run(older, second, 8)
    assert not [k for k in gaps if k[0] == "disk"]
    assert [k for k in gaps if k[0] == "nic"]


def test_a_vm_s_share_over_the_gap_is_capped_like_the_spot_sample_s() -> None:
    # Sampling jitter can put a busy VM's Δcpu.time a hair past vCPUs x Δt: the spot sample
    # says 100 % (analyse/hv.py share()), and so does the average over the gap (one formula).
    _, first, second = _host(probe_stdout(kvm=True))
    dt, _, _ = since_last_run(first, second, 1)
    assert dt
    vm = next(k for k in second if k[0] == "vm" and second[k].get("vcpu.current"))
    vcpus = second[vm]["vcpu.current"]
    assert isinstance(vcpus, int)
    over = int(vcpus * 1e9 * dt * 1.004)  # 100.4 % of its vCPUs
    hot = {**second, vm: {**second[vm], "cpu.time": first[vm]["cpu.time"] + over}}
    gap = since_last_run(first, hot, 10_000)[1][vm]
    assert gap["vm.cpu_pct"] == 100.0
    assert gap["vm.cpu_host_pct"] == pytest.approx(100.4 * vcpus / 10_000)


def test_a_container_s_oom_kills_over_the_gap_are_the_increase_of_its_count() -> None:
    _, first, second = _host(probe_stdout(kvm=True))
    prev = {**first, ("ctr", "api"): {"oom_kill": 3, "_t": first["host", ""].get("_t")}}
    cur = {**second, ("ctr", "api"): {"oom_kill": 5}, ("ctr", "new"): {"oom_kill": 2}}
    _, gaps, note = since_last_run(prev, cur, 8)
    assert gaps["ctr", "api"] == {"ctr.oom_kills": 2}
    assert ("ctr", "new") not in gaps  # no count of the last run: nothing to compare with
    assert note is None
    # Its count went down: the cgroup was made again (a restart), the kills before it lost.
    _, gaps, note = since_last_run(prev, {**cur, ("ctr", "api"): {"oom_kill": 1}}, 8)
    assert gaps["ctr", "api"] == {"ctr.oom_kills": None}
    assert note == (
        "1 container(s) restarted since the last run (OOM kill count went down): their OOM"
        " kills since the last run are not known"
    )
