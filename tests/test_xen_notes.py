"""Xen guests when xentop or xl print something unexpected: what is kept, and the notes.

The `xl list`/`xl info` texts are real (the xl man page's examples, ganeti's captures); the
xentop texts are the stand-in's, SYNTHESIZED from xentop.c's printf formats
(tests/bin/xen-standins/). Each test edits them the way the case at hand would.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from fleetmon.analyse.vms import VmResult, compute_vms
from fleetmon.sources.sections import ProbeOutput, Section

DATA = Path(__file__).parent / "data"
STANDIN = Path(__file__).parent / "bin" / "xen-standins" / "data"
XEN_DOCS = DATA / "xen-docs"
GANETI_INFO = DATA / "ganeti" / "test" / "data" / "xen-xl-info-4.0.1.txt"
DOM0_NOTE = "Xen dom0: /proc describes dom0 only; host capacity from xl info (4 CPUs, 6141 MiB)"
Edit = Callable[[str], str]


def keep(text: str) -> str:
    return text


def xen(
    list1: str, list2: str, top: str, top_rc: int = 0, info: Path = XEN_DOCS / "xl-info-example.txt"
) -> VmResult:
    """compute_vms of a Xen host's two xl lists and xentop's output (its exit status)."""
    sections = [
        (0, "meta", "probe=1\nhypervisor=xen\nxentop_delay_s=1\n", 0),
        (1, "xl_list", list1, 0),
        (2, "xl_list", list2, 0),
        (0, "xentop", top, top_rc),
        (0, "xl_info", info.read_text(), 0),
    ]
    out = ProbeOutput({(s, n): Section(s, n, text, rc) for s, n, text, rc in sections})
    return compute_vms(out, host_cpus=1, host_mem_bytes=None, interval_s=1.0)


def docs(top: Edit = keep, list1: Edit = keep, list2: Edit = keep) -> VmResult:
    """The xl man page's host (win, linux) with two xentop iterations, each text passed
    through its edit first."""
    xl_list = (XEN_DOCS / "xl-list-example.txt").read_text()
    xentop = "".join((STANDIN / f"docs-xentop-f-{i}.txt").read_text() for i in (1, 2))
    return xen(list1(xl_list), list2(xl_list), top(xentop))


def second_block(edit: Edit) -> Edit:
    """`edit` applied to xentop's second iteration only."""

    def apply(text: str) -> str:
        at = text.index("      NAME", 1)
        return text[:at] + edit(text[at:])

    return apply


def cell(name: str, column: int, value: str) -> Edit:
    """The `column`th cell (0: the name) of domain `name`'s lines set to `value`."""

    def apply(text: str) -> str:
        def repl(m: re.Match[str]) -> str:
            cells = m.group(0).split()
            cells[column] = value
            return " ".join(cells)

        return re.sub(rf"(?m)^ *{re.escape(name)} .*$", repl, text)

    return apply


def test_xentop_warnings_merged_from_stderr_lose_nothing() -> None:
    clean = docs()
    warned = docs(
        top=lambda t: (
            "xentop: warning: Failed to retrieve VBD statistics\n"
            + t.replace("\n      NAME", "\nlibxl: warning: something\n      NAME", 1)
        ),
        list2=lambda t: "libxl: warning: libxl_utils.c: something\n" + t,
    )
    assert warned == clean
    assert [r.name for r in warned.vms] == ["win", "linux"]
    assert warned.vms[1].metrics["vm.cpu_pct"] == 150.4 / 2


def test_unreadable_xentop_falls_back_to_xl_list_with_a_note() -> None:
    res = docs(top=second_block(cell("linux", 3, "n/a")))
    assert [(r.name, r.metrics["vm.state"]) for r in res.vms] == [
        ("win", "running"),
        ("linux", "running"),
    ]
    # Both xl lists are one capture: Time(s) did not move, CPU 0 (xl list's figure).
    assert [r.metrics["vm.cpu_pct"] for r in res.vms] == [0.0, 0.0]
    assert res.vms[1].metrics["vm.disk_reads_per_s"] is None
    assert res.notes == (
        DOM0_NOTE,
        "VM CPU figures from xl list's Time(s) (0.1 s resolution) because xentop was"
        " unavailable (xentop output unreadable: malformed line 'linux -----r 5626 n/a"
        " 2097152 33.3 2098176 33.4 2 1 6024 302 2 14 4030 940 68096');"  # cut at 80
        " VM disk and network rates not reported",
        "memory overcommit not reported: the maximum memory of 2 of 2 running VMs is not"
        " known (xentop unavailable)",
    )
    assert res.hv_metrics["hv.vms_running"] == 2


@pytest.mark.parametrize(
    "top",
    [
        lambda t: "\x00\x01garbage\n",  # no header at all
        second_block(cell("linux", 3, "n/a")),
    ],
)
def test_unreadable_xentop_never_costs_the_guests(top: Edit) -> None:
    res = docs(top=top)
    assert not any(n.startswith("VMs not reported") for n in res.notes)
    assert len(res.vms) == 2


def drop(name: str) -> Edit:
    """The lines of domain `name` left out."""
    return lambda text: re.sub(rf"(?m)^ *{re.escape(name)} .*\n", "", text)


def test_a_domain_gone_by_the_second_xl_list_is_noted() -> None:
    res = docs(list2=drop("win"))
    assert [r.name for r in res.vms] == ["linux"]
    assert res.notes == (DOM0_NOTE, "VM win disappeared between the samples")


def test_a_counter_going_down_in_xentop_is_noted() -> None:
    res = docs(top=second_block(cell("linux", 14, "5")))  # VBD_RD 4000 -> 5
    linux = res.vms[1].metrics
    assert linux["vm.disk_reads_per_s"] is None
    assert linux["vm.disk_writes_per_s"] == 40.0  # the other counters keep their rates
    assert res.notes == (
        DOM0_NOTE,
        "VM linux: xentop's VBD_RD went down between its two iterations: no rate from it",
    )


def test_dying_domains_all_named_null_are_told_apart_by_id() -> None:
    # A real xl list with a dying (null) domain (28441); its other dying one, 28448,
    # renamed (null) too: xl prints every dying domain's name so.
    text = DATA / "ganeti" / "test" / "data" / "xen-xl-list-4.4-crashed-instances.txt"
    both = text.read_text().replace("alsodying.example.com", "(null)               ")
    res = xen(both, both, "sh: 1: xentop: not found\n", 127, GANETI_INFO)
    assert [(r.name, r.metrics["vm.state"]) for r in res.vms] == [
        ("server01.example.com", "running"),
        ("(null)#28441", "crashed"),
        ("(null)#28448", "crashed"),
    ]
    assert not any("restarted" in n or "started" in n or "disappeared" in n for n in res.notes)
    assert res.nic_vm["vif28448.0"] == "(null)#28448"


def first_block(edit: Edit) -> Edit:
    """`edit` applied to xentop's first iteration only."""

    def apply(text: str) -> str:
        at = text.index("      NAME", 1)
        return edit(text[:at]) + text[at:]

    return apply


def test_a_running_domain_missing_from_xentop_is_noted() -> None:
    res = docs(top=drop("linux"))
    assert [r.metrics["vm.cpu_pct"] for r in res.vms] == [0.8, None]
    assert res.notes == (
        DOM0_NOTE,
        "VM linux not in xentop's output: no rates for it",
        "memory overcommit not reported: the maximum memory of 1 of 2 running VMs is not"
        " known (no line for linux in xentop's last iteration)",  # not "says no limit"
        "guest CPU counts 1 of 2 running VMs: no CPU figure for linux",
    )
    assert res.hv_metrics["hv.vm_cpu_pct"] == 0.8 / 4  # win's alone, and said so


def test_a_domain_in_one_xentop_iteration_only_is_noted() -> None:
    res = docs(top=first_block(drop("linux")))
    assert res.vms[1].metrics["vm.cpu_pct"] is None
    assert res.vms[1].metrics["vm.mem_max_bytes"] == 2098176 * 1024  # the last iteration's
    assert res.notes == (
        DOM0_NOTE,
        "VM linux in one of xentop's two iterations only: no rates for it",
        "guest CPU counts 1 of 2 running VMs: no CPU figure for linux",
    )


def test_a_name_with_two_spaces_matches_its_xl_name() -> None:
    def rename(text: str) -> str:
        return re.sub(r"(?m)^( *)linux ", r"\1my  dom ", text)

    res = docs(top=rename, list1=rename, list2=rename)
    assert [r.name for r in res.vms] == ["win", "my  dom"]
    assert res.vms[1].metrics["vm.cpu_pct"] == 150.4 / 2
    assert res.notes == (DOM0_NOTE,)


def test_names_xentop_cut_alike_are_noted_not_guessed() -> None:
    # ganeti's real xl list, one guest renamed so that two share xentop's 10-character
    # cut (`testinstan`): neither row can be told to be whose.
    xl_list = DATA / "ganeti" / "test" / "data" / "xen-xl-list-4.0.1-four-instances.txt"
    text = xl_list.read_text().replace("server01.example.com", "testinstance.other.c")
    xentop = "".join((STANDIN / f"ganeti-xentop-{i}.txt").read_text() for i in (1, 2))
    res = xen(text, text, xentop, info=GANETI_INFO)
    cpu = {r.name: r.metrics["vm.cpu_pct"] for r in res.vms}
    assert cpu == {
        "testinstance.other.c": None,
        "web3106215069.example.com": 0.4,
        "testinstance.example.com": None,
    }
    assert res.notes[1:3] == tuple(
        f"VM {n} not told apart from another domain in xentop's output (names cut to 10"
        " characters, or the same name): no rates for it"
        for n in ("testinstance.other.c", "testinstance.example.com")
    )


def test_a_ten_character_name_is_not_given_a_longer_names_cut_line() -> None:
    # ganeti's real xl list, server01 renamed `testinstan`: ten characters, the cut an old
    # xentop (no -f) prints for testinstance.example.com too. Both lines read `testinstan`:
    # the 1-vCPU guest was given the 2-vCPU one's line (the last by name), CPU 199.9 % of
    # one vCPU, and testinstance.example.com was said not to be in xentop's output.
    xl_list = DATA / "ganeti" / "test" / "data" / "xen-xl-list-4.0.1-four-instances.txt"
    text = xl_list.read_text().replace("server01.example.com", "testinstan          ")
    xentop = "".join((STANDIN / f"ganeti-xentop-{i}.txt").read_text() for i in (1, 2))
    res = xen(text, text, xentop.replace("server01.e", "testinstan"), info=GANETI_INFO)
    cpu = {r.name: r.metrics["vm.cpu_pct"] for r in res.vms}
    assert cpu == {
        "testinstan": None,
        "web3106215069.example.com": 0.4,
        "testinstance.example.com": None,
    }
    assert res.notes[1:3] == tuple(
        f"VM {n} not told apart from another domain in xentop's output (names cut to 10"
        " characters, or the same name): no rates for it"
        for n in ("testinstan", "testinstance.example.com")
    )


def test_full_names_match_exactly_beside_a_longer_name() -> None:
    # The same guests with xentop's -f (Xen 4.6+): the full names are told apart.
    xl_list = DATA / "ganeti" / "test" / "data" / "xen-xl-list-4.0.1-four-instances.txt"
    text = xl_list.read_text().replace("server01.example.com", "testinstan          ")
    xentop = "".join((STANDIN / f"ganeti-xentop-f-{i}.txt").read_text() for i in (1, 2))
    res = xen(text, text, xentop.replace("server01.example.com", "testinstan"), info=GANETI_INFO)
    cpu = {r.name: r.metrics["vm.cpu_pct"] for r in res.vms}
    assert cpu == {
        "testinstan": 1.2,
        "web3106215069.example.com": 0.4,
        "testinstance.example.com": 199.9 / 2,
    }
    assert not any("told apart" in n for n in res.notes)
