"""`fleetmon top`'s containers view (render/top.py, pure): `podman stats`' columns across the
fleet, over the simulator's container hosts (Docker on cgroup v2, Podman on v1) analysed by
the real pipeline: every container of every host, sorted like the other views, narrowed
to what fits, and its heading never cut."""

from __future__ import annotations

import argparse

import pytest
from test_simulate import _analyse
from test_top_vms import RUN

from fleetmon.cli.top import first_state
from fleetmon.errors import OptionError
from fleetmon.model import HostReport, Report, Status
from fleetmon.render.text import human_bytes, num
from fleetmon.render.top import CTR_COLUMNS, VIEWS, ViewState, fit, items, table, title
from fleetmon.sim.containers import with_containers
from fleetmon.sim.hosts import endpoints, make_fleet


def _report(per_host: int = 5) -> Report:
    fleet = make_fleet(4, "linux", 3, {}, endpoints("127.0.1.1", 4, 2222, 1))
    hosts = tuple(_analyse(h)[1] for h in with_containers(fleet, per_host, 3))
    return Report(RUN, hosts, {}, 0)


def _rows(report: Report, state: ViewState, width: int = 200) -> list[dict[str, str]]:
    lines = table(report, state, width, 100)
    head = lines[0].text.split()
    rows = []
    for ln in lines[1:]:
        cells = ln.text.split()
        assert len(cells) == len(head), ln.text  # one word a cell: nothing wrapped or merged
        rows.append(dict(zip(head, cells, strict=True)))
    return rows


def test_every_container_of_every_host_with_podman_stats_figures() -> None:
    report = _report()
    rows = _rows(report, ViewState(view="containers"))
    ctrs = {(r.name, h.name): r for h in report.hosts for r in h.rows_of("ctr")}
    assert len(rows) == len(ctrs) == 20
    assert {r["RUNTIME"] for r in rows} == {"docker", "podman"}  # v2 and v1 hosts
    for shown in rows:
        m = ctrs[shown["CONTAINER"], shown["HOST"]].metrics
        assert shown["CPU%"] == num(m["ctr.cpu_pct"])
        assert shown["MEM"] == human_bytes(m["ctr.mem_bytes"]).replace(" ", "")  # type: ignore[arg-type]
        limit = m["ctr.mem_limit_bytes"]
        assert shown["LIMIT"] == ("-" if limit is None else human_bytes(limit).replace(" ", ""))  # type: ignore[arg-type]
        assert shown["PIDS"] == num(m["ctr.pids"], 0)
    # top's default: the busiest first.
    cpus = [float(r["CPU%"]) for r in rows]
    assert cpus == sorted(cpus, reverse=True)
    assert cpus[0] > cpus[-1]
    assert title(report, ViewState(view="containers"), "08:00:00")[1].text.endswith(
        "VMs 0  containers 20"
    )


@pytest.mark.parametrize("sort", ["MEM", "PIDS", "WRBY", "LIMIT"])
def test_each_figure_column_sorts_largest_first_and_back(sort: str) -> None:
    report = _report()
    col = next(c for c in CTR_COLUMNS if c.head == sort)
    down = items(report, ViewState(view="containers", sort=sort))
    keys = [col.key(it) for it in down]
    assert keys == sorted(keys, reverse=True)  # type: ignore[type-var]
    assert len(set(keys)) > 1
    up = items(report, ViewState(view="containers", sort=sort, ascending=True))
    assert [col.key(it) for it in up] == sorted(keys)  # type: ignore[type-var]


def test_the_filter_matches_a_container_or_its_host() -> None:
    report = _report()
    some = report.hosts[1]
    shown = items(report, ViewState(view="containers", pattern=some.name))
    assert {it.host.name for it in shown} == {some.name}
    name = some.rows_of("ctr")[0].name
    assert [it.name for it in items(report, ViewState(view="containers", pattern=name))] == [name]


def test_80_columns_keep_the_key_ones_and_the_heading_is_never_cut() -> None:
    rows = _rows(_report(), ViewState(view="containers"), 80)
    heads = list(rows[0])
    assert {"CONTAINER", "HOST", "CPU%", "MEM"} <= set(heads)
    assert len(heads) < len(CTR_COLUMNS)  # the least needed left out
    assert heads == [c.head for c in CTR_COLUMNS if c.head in heads]  # in their order
    narrow = [c.head for c in fit(CTR_COLUMNS, 40)]
    assert narrow == [c.head for c in CTR_COLUMNS if c.keep == 0]
    # A fleet without containers (or a filter that matches none): the heading whole.
    empty = Report(RUN, (HostReport("h", "127.0.0.1", (), Status.OK, None, 2.0),), {}, 0)
    for view, first in (("containers", "CONTAINER"), ("vms", "VM"), ("hosts", "HOST")):
        state = ViewState(view=view, pattern="nothing-matches")
        head = table(empty, state, 80, 10)[0].text
        assert head.split()[0] == first, head


def _args(view: str, sort: str | None) -> argparse.Namespace:
    return argparse.Namespace(view=view, sort=sort)


@pytest.mark.parametrize(
    ("typed", "column", "ascending"),
    [("cpu", "CPU%", False), ("mem", "MEM", False), ("mem%", "MEM%", False),
     ("throttled", "THR%", False), ("pids", "PIDS", False), ("blockwrite", "WRBY", False),
     ("name", "CONTAINER", True), ("runtime", "RUNTIME", True), (None, "CPU%", False)],
)  # fmt: skip
def test_sort_option_of_the_containers_view(
    typed: str | None, column: str, ascending: bool
) -> None:
    state = first_state(_args("containers", typed))
    assert state == ViewState(view="containers", sort=column, ascending=ascending)


def test_sort_option_refuses_a_vm_column_in_the_containers_view() -> None:
    with pytest.raises(OptionError, match=r"the containers view has no column 'rxpk'"):
        first_state(_args("containers", "rxpk"))


def test_v_steps_through_three_views() -> None:
    assert VIEWS == ("hosts", "vms", "containers")


def test_the_hosts_view_counts_each_host_s_containers() -> None:
    report = _report(per_host=3)
    lines = table(report, ViewState(view="hosts", sort="CTRS"), 200, 20)
    assert lines[0].text.split()[-1] == "CTRS"  # after the busiest disk and NIC
    assert [ln.text.split()[-1] for ln in lines[1:]] == ["3"] * len(report.hosts)
    # 80 columns: the busiest disk and NIC keep their room before the count.
    narrow = table(report, ViewState(view="hosts"), 80, 20)[0].text.split()
    assert "CTRS" not in narrow or {"DISK", "NIC"} <= set(narrow)


def test_a_paused_container_says_so_in_the_state_column() -> None:
    """As `podman ps` (and virt-top's state for a VM): the simulator's paused containers
    (cgroup v2 and v1 hosts) are `paused`, the others `running`."""
    report = _report(12)  # the simulator pauses each host's 12th container
    rows = _rows(report, ViewState(view="containers"))
    paused = {(r["CONTAINER"], r["HOST"]) for r in rows if r["STATE"] == "paused"}
    assert {r["STATE"] for r in rows} == {"running", "paused"}
    assert len(paused) == 4  # one a host, of 4
    assert all(r["CPU%"] == "0.0" for r in rows if r["STATE"] == "paused")
