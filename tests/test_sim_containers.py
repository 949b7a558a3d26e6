"""The simulator's container hosts: cgroup v2 and v1 answers that the real parser reads back
as the profiles' numbers."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_simulate import _analyse, _fleet

from fleetmon.sim.containers import with_containers
from fleetmon.sim.hosts import HostProfile
from fleetmon.sources.ctrcolumns import NO_PSI_NOTE


def _hosts(n: int = 4, per_host: int = 30) -> tuple[HostProfile, ...]:
    return with_containers(_fleet("linux", n), per_host, 3)


def test_no_option_no_containers_and_the_fleet_unchanged() -> None:
    assert with_containers(_fleet("mixed", 10), 0, 3) == _fleet("mixed", 10)
    xen = with_containers(_fleet("xen", 3), 5, 3)
    assert all(h.containers == () for h in xen)  # dom0s run no containers here


@pytest.mark.parametrize(("index", "version"), [(0, "v2"), (1, "v1")])
def test_container_rows_are_the_profiles_numbers(index: int, version: str) -> None:
    host = _hosts()[index]
    _, report = _analyse(host)
    rows = {r.name: r for r in report.rows_of("ctr")}
    assert len(rows) == len(host.containers) == 30
    assert [c.name for c in host.containers if c.paused] == [host.containers[11].name]
    for c in host.containers:
        row = rows[c.name]
        assert row.labels["cgroup"] == version
        assert row.labels["runtime"] == ("docker" if version == "v2" else "podman")
        assert row.labels["id"] == c.id
        m = row.metrics
        # its cgroup frozen (v2 cgroup.events, v1 freezer.state): paused, its counters still
        assert m["ctr.state"] == ("paused" if c.paused else "running")
        # cpu counters are whole ns (v1) or µs (v2) of a share over 10 s
        assert m["ctr.cpu_pct"] == (0.0 if c.paused else pytest.approx(100 * c.cpu_share, abs=0.01))
        assert m["ctr.mem_bytes"] == c.mem_bytes
        assert m["ctr.mem_limit_bytes"] == c.limit_bytes
        if c.limit_bytes:
            assert m["ctr.mem_limit_pct"] == pytest.approx(100 * c.mem_bytes / c.limit_bytes)
        assert m["ctr.oom_kills"] == c.oom_kills
        assert m["ctr.pids"] == c.pids
        write = 0.0 if c.paused else pytest.approx(c.write_bytes_per_s, rel=0.01)
        assert m["ctr.disk_write_bytes_per_s"] == write
        throttled = m["ctr.cpu_throttled_pct"]
        full = not c.paused and c.quota_cpus is not None and c.cpu_share >= 0.95 * c.quota_cpus
        assert throttled == (80.0 if full else 0.0)
        # PSI files are v2's: on v1 not offered (absent, the host noted), not null
        assert ("ctr.psi_cpu_some_pct" in m) == (version == "v2")
        assert m.get("ctr.psi_cpu_some_pct", 0) is not None
    assert (NO_PSI_NOTE in report.notes) == (version == "v1")


def test_a_container_heavy_host_trips_the_shipped_rules() -> None:
    from test_rules_util import spec

    import fleetmon
    from fleetmon.rules import evaluate, load_rules

    shipped = Path(fleetmon.__file__).parent / "playbooks" / "containers.yaml"
    host = _hosts(2, 200)[0]
    _, report = _analyse(host)
    hosts, _ = evaluate(load_rules([str(shipped)]), [report], {report.name: spec(report.name)}, {})
    fired = {f.rule for f in hosts[0].findings if f.severity.rank > 0}
    assert fired == {"ctr-mem-near-limit", "ctr-cpu-throttled", "ctr-oom-kills"}
