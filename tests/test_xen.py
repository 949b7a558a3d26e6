"""Xen parsers: real `xl list`/`xl info` (ganeti, xl man page) and the xentop stand-in output.

No real `xentop -b` capture exists in any licensed source: the xentop texts here are the
stand-in's, SYNTHESIZED from xentop.c's printf formats (tests/bin/xen-standins/).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from fleetmon.errors import ProbeParseError
from fleetmon.sources.xen import (
    XentopRow,
    XlDomain,
    XlInfo,
    parse_xentop,
    parse_xl_info,
    parse_xl_list,
    xen_state,
)

DATA = Path(__file__).parent / "data"
GANETI = DATA / "ganeti" / "test" / "data"
STANDIN = Path(__file__).parent / "bin" / "xen-standins" / "data"
MIB = 1024 * 1024


def test_xl_list_dom0_only() -> None:
    assert parse_xl_list((GANETI / "xen-xl-list-4.0.1-dom0-only.txt").read_text()) == (
        XlDomain("Domain-0", 0, 1023, 1, "r-----", 121152.6),
    )


def test_xl_list_four_instances() -> None:
    doms = parse_xl_list((GANETI / "xen-xl-list-4.0.1-four-instances.txt").read_text())
    assert [(d.name, d.domid, d.mem_mib, d.vcpus) for d in doms] == [
        ("Domain-0", 0, 1023, 1),
        ("server01.example.com", 1, 1024, 1),
        ("web3106215069.example.com", 3, 4096, 1),
        ("testinstance.example.com", 2, 2048, 2),
    ]
    assert doms[3].cpu_s == 244443.0


def test_xl_list_crashed_instances_keep_the_null_name() -> None:
    doms = parse_xl_list((GANETI / "xen-xl-list-4.4-crashed-instances.txt").read_text())
    assert doms[2] == XlDomain("(null)", 28441, 789, 1, "--psc-", 1.2)
    assert [xen_state(d.flags) for d in doms] == ["running", "running", "crashed", "crashed"]


def test_xl_list_man_page_example() -> None:
    doms = parse_xl_list((DATA / "xen-docs" / "xl-list-example.txt").read_text())
    assert [(d.name, d.domid, d.vcpus, d.cpu_s) for d in doms] == [
        ("Domain-0", 0, 4, 11794.3),
        ("win", 1, 1, 0.3),
        ("linux", 2, 2, 5624.2),
    ]


def test_xl_claims_extra_column_is_ignored() -> None:
    doms = parse_xl_list((DATA / "xen-docs" / "xl-claims-example.txt").read_text())
    assert [(d.name, xen_state(d.flags)) for d in doms] == [
        ("Domain-0", "running"),
        ("OL5", "paused"),
        ("OL6", "running"),
        ("Windows_XP", "paused"),
    ]


def test_xl_list_passes_over_a_toolstack_message_among_the_domains() -> None:
    """libxl reports a domain that went away while xl listed it on stderr, which the probe
    merges: the other domains stay, and a domain named like a message is still one."""
    text = (DATA / "xen-docs" / "xl-list-example.txt").read_text().splitlines()
    text[2:2] = [
        "libxl: error: libxl_utils.c:821:libxl_cpu_bitmap_alloc: failed to retrieve the"
        " maximum number of cpus",
        "xc: error: Could not get domain info (3 = No such process): Internal error",
    ]
    text.append("libxl: 7  512  1  -b----  2.0")
    doms = parse_xl_list("\n".join(text) + "\n")
    assert [d.name for d in doms] == ["Domain-0", "win", "linux", "libxl:"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "section xl_list: no 'Name ID Mem VCPUs State Time(s)' header"),
        ("Name  ID\n", "section xl_list: unexpected header 'Name  ID'"),
        (
            "Name ID Mem VCPUs State Time(s)\nvm1 x 1 1 r----- 1.0\n",
            "section xl_list: malformed line 'vm1 x 1 1 r----- 1.0'",
        ),
        (
            "Name ID Mem VCPUs State Time(s)\nWarning: something else\n",
            "section xl_list: malformed line 'Warning: something else'",
        ),
    ],
)
def test_xl_list_errors(text: str, message: str) -> None:
    with pytest.raises(ProbeParseError) as exc:
        parse_xl_list(text)
    assert str(exc.value) == message


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (GANETI / "xen-xl-info-4.0.1.txt", XlInfo(4, 16378 * MIB, 8004 * MIB)),
        (DATA / "xen-docs" / "xl-info-example.txt", XlInfo(4, 6141 * MIB, 4274 * MIB)),
    ],
)
def test_xl_info(path: Path, expected: XlInfo) -> None:
    assert parse_xl_info(path.read_text()) == expected


def test_xl_info_garbage() -> None:
    with pytest.raises(ProbeParseError) as exc:
        parse_xl_info("ERROR:  Can't open xenctrl handle\n")
    assert str(exc.value) == "section xl_info: no 'nr_cpus' or 'total_memory' line"


def test_xentop_two_iterations_full_names() -> None:
    text = (STANDIN / "docs-xentop-f-1.txt").read_text() + (
        STANDIN / "docs-xentop-f-2.txt"
    ).read_text()
    first, second = parse_xentop(text)
    assert [r.name for r in second] == ["Domain-0", "linux", "win"]
    assert all(r.cpu_pct == 0.0 for r in first)  # no previous sample in the first iteration
    assert second[0] == XentopRow(
        "Domain-0", "-----r", 12.5, 768000, None, 4, 0, 0, 0, 0, 0, 0, 0, 0
    )  # MAXMEM "no limit"
    assert second[1] == XentopRow(
        "linux", "-----r", 150.4, 2097152, 2098176, 2, 1, 6024, 302, 4030, 940, 68096, 7712, 14
    )


def test_xentop_names_cut_to_ten_characters_without_f() -> None:
    (block,) = parse_xentop((STANDIN / "ganeti-xentop-2.txt").read_text())
    assert [r.name for r in block] == ["Domain-0", "server01.e", "testinstan", "web3106215"]
    assert block[2].cpu_pct == 199.9


def test_xentop_vbd_columns_in_error_print_a_dash() -> None:
    header = (STANDIN / "docs-xentop-f-1.txt").read_text().splitlines()[0]
    line = "  broken --b---  1  0.0  1024  0.1  2048  0.1  1  0  0  0  1  -  -  -  -  -  0"
    ((row,),) = parse_xentop(header + "\n" + line + "\n")
    assert (row.name, row.vbd_rd, row.vbd_wsect, row.maxmem_kib) == ("broken", None, None, 2048)
    assert row.vbd_oo is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "Failed to initialize xenstat library\n",
            "section xentop: no NAME STATE ... header in 'Failed to initialize xenstat library'",
        ),
        ("NAME STATE CPU(%)\nvm1 -----r x\n", "section xentop: malformed line 'vm1 -----r x'"),
        (
            "NAME STATE CPU(%)\nvm1 -----r 1.0\nvm2 --b--- n/a\n",
            "section xentop: malformed line 'vm2 --b--- n/a'",
        ),
    ],
)
def test_xentop_errors(text: str, message: str) -> None:
    with pytest.raises(ProbeParseError) as exc:
        parse_xentop(text)
    assert str(exc.value) == message


@pytest.mark.parametrize(
    ("flags", "state"),
    [
        ("r-----", "running"),
        ("-b----", "running"),
        ("------", "running"),
        ("--p---", "paused"),
        ("---s--", "shutdown"),
        ("--psc-", "crashed"),
        ("-----d", "dying"),
        ("d-----", "dying"),  # xentop's letter order (d s b c p r) differs from xl's
    ],
)
def test_xen_state(flags: str, state: str) -> None:
    assert xen_state(flags) == state


def docs_xentop() -> str:
    return "".join((STANDIN / f"docs-xentop-f-{i}.txt").read_text() for i in (1, 2))


@pytest.mark.parametrize(
    "edit",
    [
        # xentop's and libxl's messages reach the section through the probe's 2>&1.
        lambda t: "xentop: warning: Failed to retrieve VBD statistics\n" + t,
        lambda t: t.replace("\n      NAME", "\nlibxl: warning: something\n      NAME", 1),
        # -n style lines under a domain, and lines too short to be a domain's.
        lambda t: t.replace("\n       win", "\nNet0 RX: 1234bytes 5pkts 0err 0drop\n       win", 1),
        lambda t: t + "vm1\n-----r 1.0\n",
    ],
)
def test_xentop_lines_outside_its_table_are_passed_over(edit: Callable[[str], str]) -> None:
    text = docs_xentop()
    assert edit(text) != text
    assert parse_xentop(edit(text)) == parse_xentop(text)


def test_xentop_a_domain_named_name_is_a_domain_not_a_header() -> None:
    text = re.sub(r"(?m)^     linux ", "      NAME ", docs_xentop())
    first, second = parse_xentop(text)
    assert [r.name for r in first] == [r.name for r in second] == ["Domain-0", "NAME", "win"]
    assert second[1].cpu_pct == 150.4


def test_xl_list_a_warning_before_the_header_is_passed_over() -> None:
    text = (DATA / "xen-docs" / "xl-list-example.txt").read_text()
    warned = "libxl: warning: libxl_utils.c: something\n" + text
    assert parse_xl_list(warned) == parse_xl_list(text)
    assert len(parse_xl_list(warned)) == 3


def test_xentop_a_name_keeps_its_own_spacing() -> None:
    text = re.sub(r"(?m)^     linux ", "   my  dom ", docs_xentop())
    _, second = parse_xentop(text)
    assert [r.name for r in second] == ["Domain-0", "my  dom", "win"]
