"""`fleetmon top`'s VMs view (render/top.py, pure) over real figures: the lab's KVM capture and
the Xen stand-in's xentop, analysed by compute_vms. virt-top's packet columns (RXPK, TXPK)
and xentop's VBD_OO are shown and sortable, null where the hypervisor has no such counter,
and a narrow terminal keeps what fits."""

from __future__ import annotations

import argparse
import re

import pytest
from test_vmmetrics import DT, MIB, XEN_DOCS, lab, xen_out

from fleetmon.analyse.vms import compute_vms
from fleetmon.cli.live import link_words
from fleetmon.cli.top import first_state
from fleetmon.collect.stream import Link
from fleetmon.errors import OptionError
from fleetmon.model import HostReport, HostSpec, Report, RunInfo, Status
from fleetmon.render.top import VM_COLUMNS, ViewState, fit, items, table, title

RUN = RunInfo(
    fleetmon_version="0.1.0",
    started_at="2026-11-30T08:00:00Z",
    interval_s=2.0,
    inventory="fleet.yaml",
    rule_files=(),
)


def _report() -> Report:
    kvm = compute_vms(lab(), host_cpus=2, host_mem_bytes=None, interval_s=DT)
    xen = compute_vms(
        xen_out("docs", "-f", XEN_DOCS / "xl-list-example.txt", XEN_DOCS / "xl-info-example.txt"),
        host_cpus=1,
        host_mem_bytes=750 * MIB,
        interval_s=1.2,
    )
    hosts = (
        HostReport("kvm-lab", "127.0.0.1", ("kvm",), Status.OK, None, DT, rows={"vm": kvm.vms}),
        HostReport("xen-docs", "127.0.0.2", ("xen",), Status.OK, None, 1.0, rows={"vm": xen.vms}),
    )
    return Report(RUN, hosts, {}, 0)


def _cells(width: int, sort: str) -> tuple[list[str], dict[str, dict[str, str]]]:
    """The heading and each VM's cells by heading, at `width` columns."""
    lines = table(_report(), ViewState(view="vms", sort=sort), width, 20)
    assert all(len(ln.text) <= width for ln in lines)
    head = lines[0].text.split()
    rows = {}
    for ln in lines[1:]:
        cells = ln.text.split()
        assert len(cells) == len(head), ln.text  # one word per cell: nothing wrapped or merged
        rows[cells[0]] = dict(zip(head, cells, strict=True))
    return head, rows


def test_packets_and_vbd_oo_columns_with_hand_checked_figures() -> None:
    head, rows = _cells(200, "%CPU")
    assert head[-3:] == ["RXPK", "TXPK", "VBD_OO"]
    # Lab vm1 and vm2: net.0.rx.pkts 40 -> 47 and tx.pkts 31 -> 38 over 2.7286 s: 2.57/s.
    for name in ("vm1", "vm2"):
        assert (rows[name]["RXPK"], rows[name]["TXPK"], rows[name]["VBD_OO"]) == ("3", "3", "-")
    # The stand-in's linux: VBD_OO 2 -> 14 over xentop's -d 1; win's stays 0. No packets.
    assert (rows["linux"]["RXPK"], rows["linux"]["TXPK"], rows["linux"]["VBD_OO"]) == (
        "-",
        "-",
        "12.0",
    )
    assert rows["win"]["VBD_OO"] == "0.0"


@pytest.mark.parametrize(
    ("sort", "order"),
    [
        # Unknown (KVM has no VBD_OO) sorts below any figure.
        ("VBD_OO", ["linux", "win", "vm2", "vm1"]),
        ("RXPK", ["vm2", "vm1", "win", "linux"]),
    ],
)
def test_the_new_columns_sort_like_the_others(sort: str, order: list[str]) -> None:
    state = ViewState(view="vms", sort=sort)
    assert [it.name for it in items(_report(), state)] == order
    up = ViewState(view="vms", sort=sort, ascending=True)
    assert [it.name for it in items(_report(), up)] == order[::-1]


def test_80_columns_show_what_fits() -> None:
    head, rows = _cells(80, "%CPU")
    # Every column that is never dropped, and an I/O column in the room left (VM names are
    # short here, so the name column shrinks to them).
    assert head[:7] == ["VM", "HOST", "STATE", "%CPU", "%VCPU", "DELAY%", "MEM"]
    assert len(head) > 7
    assert len(rows) == 4
    line = table(_report(), ViewState(view="vms"), 80, 20)[0].text
    assert 72 < len(line.rstrip()) <= 80


def test_fit_keeps_every_column_when_there_is_room_and_never_drops_the_key_ones() -> None:
    assert fit(VM_COLUMNS, 400) == list(VM_COLUMNS)
    narrow = [c.head for c in fit(VM_COLUMNS, 40)]
    assert narrow == [c.head for c in VM_COLUMNS if c.keep == 0]
    # A wider terminal never shows fewer columns.
    widths = [len(fit(VM_COLUMNS, w)) for w in range(40, 200)]
    assert widths == sorted(widths)


def _args(view: str, sort: str | None) -> argparse.Namespace:
    return argparse.Namespace(view=view, sort=sort)


def test_sort_option_names_a_column_in_any_case() -> None:
    assert first_state(_args("vms", "rxpk")) == ViewState(view="vms", sort="RXPK")
    assert first_state(_args("vms", None)) == ViewState(view="vms", sort="%CPU")
    assert first_state(_args("hosts", None)) == ViewState(view="hosts", sort="CPU%")


@pytest.mark.parametrize(
    ("view", "typed", "column"),
    [
        # top's and virt-top's users type names, not headings: cpu, mem, netrx...
        ("vms", "cpu", "%CPU"), ("vms", "%cpu", "%CPU"), ("vms", "mem", "MEM"),
        ("vms", "netrx", "RXBY"), ("vms", "nettx", "TXBY"), ("vms", "blockrdrq", "RDRQ"),
        ("vms", "BlockWrRq", "WRRQ"), ("vms", "delay", "DELAY%"), ("vms", "vbd_oo", "VBD_OO"),
        ("hosts", "cpu", "CPU%"), ("hosts", "steal", "STEAL%"), ("hosts", "load/c", "LOAD/C"),
        ("hosts", "load", "LOAD/C"), ("hosts", "iowait", "IOW%"), ("hosts", "mem", "MEM%"),
    ],
)  # fmt: skip
def test_sort_option_takes_top_and_virt_top_names(view: str, typed: str, column: str) -> None:
    assert first_state(_args(view, typed)) == ViewState(view=view, sort=column)


def test_sort_by_a_name_starts_a_to_z() -> None:
    assert first_state(_args("vms", "name")) == ViewState(view="vms", sort="VM", ascending=True)
    assert first_state(_args("hosts", "host")).ascending
    with pytest.raises(OptionError):  # virt-top's `time` and `id`: no such column here
        first_state(_args("vms", "time"))


def test_sort_option_refuses_a_column_of_the_other_view() -> None:
    with pytest.raises(OptionError) as exc:
        first_state(_args("hosts", "VBD_OO"))
    assert re.fullmatch(
        r"--sort: the hosts view has no column 'VBD_OO' \(columns: HOST, HEALTH, CPU%, .*, CTRS\)",
        str(exc.value),
    )


@pytest.mark.parametrize("sort", ["VBD_OO", "RXPK", "TXPK"])
def test_a_narrow_terminal_still_shows_the_column_sorted_by(sort: str) -> None:
    head, rows = _cells(80, sort)
    assert sort in head
    assert head[:7] == ["VM", "HOST", "STATE", "%CPU", "%VCPU", "DELAY%", "MEM"]
    assert rows["vm1"][sort] == ("-" if sort == "VBD_OO" else "3")


@pytest.mark.parametrize(
    ("intervals", "shown"),
    [
        ((0.5, 0.52), "0.5 s  hosts"),  # the hosts tick as asked
        ((0.5, 1.0), "0.5 s (ticks 0.5-1.0 s)  hosts"),  # a Xen host: xentop's whole seconds
        ((1.0, 1.01), "0.5 s (ticks 1.0 s)  hosts"),
        ((0.034, 0.052), "0.5 s (ticks 0.034-0.052 s)  hosts"),  # two figures under a second
        ((), "0.5 s  hosts"),  # no pair yet
    ],
)
def test_the_title_shows_the_hosts_own_ticks_where_they_stray_from_d(
    intervals: tuple[float, ...], shown: str
) -> None:
    run = RunInfo("0.1.0", "2026-11-30T08:00:00Z", 0.5, "fleet.yaml", ())
    hosts = tuple(
        HostReport(f"h{i}", "127.0.0.1", (), Status.OK, None, dt) for i, dt in enumerate(intervals)
    )
    first = title(Report(run, hosts, {}, 0), ViewState(), "12:00:00")[0].text
    assert f"12:00:00  {shown}" in first


def test_the_title_tells_waiting_hosts_from_skipped_and_down_ones() -> None:
    """A host not live is waiting for its first samples, skipped (the inventory says why;
    past the open-file limit) or down: before, all that was not down was "waiting", and
    hosts that never would be (a winrm host, one not watched) were counted as such."""
    run = RunInfo("0.1.0", "2026-11-30T08:00:00Z", 2.0, "fleet.yaml", ())
    connecting = Link(HostSpec("new", "127.0.0.2"), since=1_796_000_000.0)
    hosts = (
        HostReport("live", "127.0.0.1", (), Status.OK, None, 2.0),
        HostReport("new", "127.0.0.2", (), Status.SKIPPED, link_words(connecting, 0.0)),
        HostReport("winrm", "127.0.0.3", (), Status.SKIPPED, "ansible_connection winrm"),
        HostReport("gone", "127.0.0.4", (), Status.UNREACHABLE, "connection refused"),
    )
    first = title(Report(run, hosts, {}, 0), ViewState(), "12:00:00")[0].text
    assert first.endswith("hosts 4: 1 live, 1 waiting, 1 skipped, 1 down")


def test_each_waiting_word_is_one_a_waiting_host_shows() -> None:
    """WAITING_WORDS are the words of a host on its first try (SKIPPED, counted waiting):
    every state a link goes through, as LiveFleet reports it, shows each of them on a SKIPPED
    host. "reconnecting since " was listed too, but a retry keeps its failure's status
    (counted down), so no SKIPPED host ever showed it."""
    from fleetmon.cli.live import LiveFleet, Plan
    from fleetmon.render.top import WAITING_WORDS

    specs = tuple(HostSpec(f"h{i}", "127.0.0.1") for i in range(2))
    fleet = LiveFleet(argparse.Namespace(delay=2.0), Plan(None, specs, (), specs, None, ()))  # type: ignore[arg-type]
    shown: list[tuple[Status, str]] = []
    steps = [("connecting", None, None), ("live", None, None),
             ("down", Status.TIMEOUT, "no output within 32 s"), ("connecting", None, None),
             ("live", None, None), ("stopped", Status.SKIPPED, "past the open-file limit"),
             ("stopped", Status.HOSTKEY_MISMATCH, "host key changed")]  # fmt: skip
    link = Link(specs[1])  # one host's life (its retries keep its failure's status)
    for state, status, reason in steps:
        link = Link(specs[1]) if state == "stopped" else link  # then two stopped ones
        link.enter(state, status, reason)
        fleet.on_change(1, link)
        shown += [(h.status, h.error or "") for h in fleet.host_reports()]
    waiting = {
        w for w in WAITING_WORDS for st, e in shown if st is Status.SKIPPED and e.startswith(w)
    }
    assert waiting == set(WAITING_WORDS)
    assert any(e.startswith("reconnecting since ") and st is Status.TIMEOUT for st, e in shown)


def test_the_title_counts_hosts_by_their_worst_finding_and_says_so() -> None:
    """The second line counts hosts (as top's "Tasks:" line counts tasks), not findings: a
    host with three critical findings is one critical host; unknown hosts are counted too.
    Before, it read "findings: 1 critical" for a host with 3 critical findings."""
    from reportfactory import finding

    from fleetmon.model import Severity

    run = RunInfo("0.1.0", "2026-11-30T08:00:00Z", 2.0, "fleet.yaml", ())
    crit = [
        finding(f"r{i}", Severity.CRITICAL, "host", "a", "cpu.busy_pct", 99.0, "> 90")
        for i in range(3)
    ]
    unk = [finding("u", Severity.UNKNOWN, "host", "c", "mem.swap_used_pct", None, "> 50")]
    hosts = (
        HostReport("a", "127.0.0.1", (), Status.OK, None, 2.0, findings=crit),
        HostReport("b", "127.0.0.2", (), Status.OK, None, 2.0),
        HostReport("c", "127.0.0.3", (), Status.OK, None, 2.0, findings=unk),
    )
    second = title(Report(run, hosts, {}, 0), ViewState(), "12:00:00")[1].text
    assert second.startswith("hosts: 1 critical, 0 warning, 1 unknown  ")
    quiet = title(Report(run, hosts[1:2], {}, 0), ViewState(), "12:00:00")[1].text
    assert quiet.startswith("hosts: 0 critical, 0 warning  hosts by")
