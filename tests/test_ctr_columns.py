"""Containers a column at a time (sources/ctrcolumns.py): the rows and VM figures the
container-by-container way gives, to the last bit, and that way left to what it cannot take
(containers started or gone between the sections, an older probe's lines)."""

from __future__ import annotations

import pytest
from probetext import NONCE, section

from fleetmon.sim.containers import (
    as_keyed,
    render_counters,
    render_gauges,
    render_names,
    with_containers,
)
from fleetmon.sim.hosts import endpoints, make_fleet
from fleetmon.sources import containers
from fleetmon.sources.containers import CtrResult, compute_containers
from fleetmon.sources.sections import ProbeOutput, split_output

HEX = "0123456789abcdef" * 4
OTHER = "fedcba9876543210" * 4


def _output(c1: str, c2: str, gauges: str, names: str = "") -> ProbeOutput:
    text = "".join(
        [
            section(1, "uptime", "100.00 1.00\n"),
            section(1, "cgroup", c1),
            section(2, "uptime", "101.00 2.00\n"),
            section(2, "cgroup", c2),
            section(0, "cgroup_mem", gauges),
            section(0, "ctr_names", names),
        ]
    )
    return split_output(text, NONCE)


def _both(
    out: ProbeOutput, monkeypatch: pytest.MonkeyPatch, cpus: int | None, dt: float | None
) -> tuple[CtrResult, CtrResult]:
    quick = compute_containers(out, cpus, dt)
    with monkeypatch.context() as m:
        m.setattr(containers, "_columns", lambda _out: None)
        slow = compute_containers(out, cpus, dt)
    return quick, slow


def _sim() -> list[ProbeOutput]:
    """Simulated hosts: v2 (Docker) and v1 (Podman, a block of lines a mount), each with
    its containers' counters 1 s apart."""
    fleet = with_containers(make_fleet(2, "linux", 1, {}, endpoints("127.0.1.1", 2, 22, 1)), 60, 1)
    return [
        _output(
            render_counters(h, h.uptime_at_start_s + 10),
            render_counters(h, h.uptime_at_start_s + 11),
            render_gauges(h),
            render_names(h),
        )
        for h in fleet
    ]


@pytest.mark.parametrize(("cpus", "dt"), [(8, 1.0), (None, 1.003), (4, 0.0), (2, None)])
@pytest.mark.parametrize("host", [0, 1])
def test_simulated_hosts_a_column_at_a_time(
    monkeypatch: pytest.MonkeyPatch, host: int, cpus: int | None, dt: float | None
) -> None:
    out = _sim()[host]
    assert containers._columns(out) is not None  # the columns' way is the one taken
    quick, slow = _both(out, monkeypatch, cpus, dt)
    assert len(quick.rows) == 60
    assert quick == slow
    assert [list(r.metrics) for r in quick.rows] == [list(r.metrics) for r in slow.rows]


V2_DIRS = (
    f"system.slice/docker-{HEX}.scope",
    f"system.slice/docker-{OTHER}.scope",
    "machine.slice/machine-qemu\\x2d1\\x2dweb.scope",  # a libvirt VM: its host-side figures
    "lxc.payload.db",
    "system.slice/sshd.service",  # not a container
)


def _v2(values: list[str]) -> str:
    return as_keyed(2, [f"{d}\t{v}" for d, v in zip(V2_DIRS, values, strict=True)])


def _v1(*mounts: list[str]) -> str:
    """v1 as the awk prints it: a mount's directories after the other's, one column entry
    a container."""
    return as_keyed(
        1, [f"{d}\t{v}" for block in mounts for d, v in zip(V2_DIRS[:2], block, strict=True)]
    )


def _lines(values: list[str]) -> str:
    """The lines of the probes before the columns (a raw folder saved then)."""
    return "#cgroup v2\n" + "".join(f"{d}\t{v}\n" for d, v in zip(V2_DIRS, values, strict=True))


CASES = {
    "limits, no limit, a counter gone down": (
        _v2([f"u={5 * i} np=10 nt={i} r={i} w=7+{i}" for i in range(5)]),
        _v2([f"u={10 * i + 3} np={10 + i} nt={2 * i} r={i} w={6 + i}" for i in range(5)]),
        _v2(["m=100 l=max i=5 a=1 o=0", "m=100 l=50 i=200 a=2 o=1",
             "m=9 l=9223372036854771712 i=0 a=3 o=0", "m=0 l=0 i=0 a=0 o=2",
             "m=7 l=1 i=9 a=12 o=0"]),
    ),
    "cpuacct (hybrid v1) over usage_usec, PSI": (
        _v2([f"ca={i} u=9" for i in range(5)]),
        _v2([f"ca={i * 1000} u=1" for i in range(5)]),
        _v2([f"pcs={i} pms=3 pmf=1 pis=0 pif=9 p=4" for i in range(5)]),
    ),
    "lines of two layouts: a container without I/O, one without a limit": (
        _v2(["u=1 r=1 w=1"] * 4 + ["u=1"]),
        _v2(["u=2 r=2 w=2"] * 3 + ["u=2", "u=3"]),
        _v2(["m=1 l=5 i=0"] * 2 + ["m=4 i=1 a=2", "m=1 l=max", "m=1"]),
    ),
    "a key the first sample lacks": (
        _v2(["np=1"] * 5),
        _v2(["np=2 nt=1 u=4"] * 5),
        _v2(["m=1"] * 5),
    ),
    "cpuacct.usage on some, not on others: each container's own counter": (
        _v2(["ca=1 u=1"] * 4 + ["u=1"]),
        _v2(["ca=2 u=2"] * 4 + ["u=2"]),
        _v2(["m=1"] * 5),
    ),
    "a value the awk would not print, of a key of a later probe": (
        _v2(["u=1"] * 5),
        _v2(["u=2"] * 4 + ["u=2 zz=x"]),
        _v2(["m=1"] * 5),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_edges_a_column_at_a_time(monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    c1, c2, gauges = CASES[case]
    out = _output(c1, c2, gauges, f'"id":"{HEX}","names":["web"]\n"id":"{OTHER}","names":["web"]\n')
    assert containers._columns(out) is not None
    for cpus, dt in ((4, 1.0), (None, 0.5), (4, 0.0)):
        quick, slow = _both(out, monkeypatch, cpus, dt)
        assert quick == slow
        assert [r.name for r in quick.rows] == ["db", f"web ({HEX[:12]})", f"web ({OTHER[:12]})"]
        assert set(quick.vm_metrics) == {"web"}


@pytest.mark.parametrize(
    ("c1", "c2", "gauges"),
    [
        # A container started between the samples: not in the first.
        (_v2(["u=1"] * 5).replace(f"docker-{OTHER}", f"docker-{'1' * 64}"), _v2(["u=2"] * 5),
         _v2(["m=1"] * 5)),
        # The gauges in another order.
        (_v2(["u=1"] * 5), _v2(["u=2"] * 5),
         as_keyed(2, [f"{d}\tm=1" for d in reversed(V2_DIRS)])),
        # An older probe's lines (a raw folder saved then).
        (_lines(["u=1"] * 5), _lines(["u=2"] * 5), _lines(["m=1 l=max"] * 5)),
    ],
)  # fmt: skip
def test_what_columns_do_not_take_goes_container_by_container(
    monkeypatch: pytest.MonkeyPatch, c1: str, c2: str, gauges: str
) -> None:
    out = _output(c1, c2, gauges)
    assert containers._columns(out) is None
    quick, slow = _both(out, monkeypatch, 4, 1.0)
    assert quick == slow


def test_v1_mounts_of_two_layouts_a_column_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """v1: a mount's directories (cpu/) with keys the other's (cpuacct/) lacks, merged by
    the awk into one entry a container."""
    c1 = _v1(["np=1", "np=1"], ["ca=1", "ca=1"])
    out = _output(c1, _v1(["np=2 nt=1", "np=2"], ["ca=3", "ca=3"]), _v1(["m=1", "m=1"]))
    assert containers._columns(out) is not None
    quick, slow = _both(out, monkeypatch, 4, 1.0)
    assert quick == slow
    assert [r.metrics["ctr.cpu_pct"] for r in quick.rows] == [2e-07, 2e-07]


def test_a_streamed_host_s_heads_are_made_again_for_new_names_or_version() -> None:
    """The rows' names and labels are kept with the cgroup_mem columns between ticks, and
    made again when the names lookup (a new read of ctr_names) or the version is another."""
    c1, c2, gauges = CASES["limits, no limit, a counter gone down"]
    out = _output(c1, c2, gauges, f'"id":"{HEX}","names":["web"]\n')
    cols = containers._columns(out)
    assert cols is not None
    g = cols[2]
    names = containers._names_of(f'"id":"{HEX}","names":["web"]\n')
    first, _vms, _reset = containers._from_columns(*cols, names, 4, 1.0)
    assert first == list(compute_containers(out, 4, 1.0).rows)
    assert [r.name for r in first] == ["db", "fedcba987654", "web"]
    kept = g.heads[0][2]
    assert containers._from_columns(*cols, names, 4, 1.0)[0] == first
    assert g.heads[0][2] is kept  # not made again
    renamed = containers._names_of(f'"id":"{HEX}","names":["api"]\n"id":"{OTHER}","names":["db"]\n')
    heads = g.heads_for(renamed, 2)
    assert heads is not kept
    assert [name for _i, name, _labels in heads.rows] == [
        "api", "db (db)", f"db ({OTHER[:12]})",
    ]  # fmt: skip
    assert g.heads_for(renamed, 2) is heads
    v1 = g.heads_for(renamed, 1)
    assert {labels["cgroup"] for _i, _n, labels in v1.rows} == {"v1"}
    assert [i for i, _vm in v1.vms] == [i for i, _vm in heads.vms] == [V2_DIRS.index(
        "machine.slice/machine-qemu\\x2d1\\x2dweb.scope")]  # fmt: skip
