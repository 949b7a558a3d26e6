"""The container reader's two paths agree: a line as the probe's awk prints it, read with a
few C calls, gives what the token-by-token reading gives, and an edited line the fast path
must not take is left to it (same values, or the same error)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fleetmon.errors import ProbeParseError
from fleetmon.sim.containers import render_counters, render_gauges, with_containers
from fleetmon.sim.hosts import endpoints, make_fleet
from fleetmon.sources.cgroups import _PLAIN_RE, read_compact

HEX = "0123456789abcdef" * 4


def _sim_sections() -> list[str]:
    """Both sections of a v2 host (Docker, PSI) and a v1 host (Podman, one line a mount)."""
    hosts = with_containers(make_fleet(2, "linux", 1, {}, endpoints("127.0.1.1", 2, 22, 1)), 8, 1)
    return [
        f(h)
        for h in hosts
        for f in (lambda h: render_counters(h, h.uptime_at_start_s + 10), render_gauges)
    ]


TEXTS = [
    *_sim_sections(),
    "#cgroup v1\n"
    f"docker/{HEX}\tnp=5 nt=1 tn=7\n"
    f"docker/{HEX}\tca=9\n"
    f"docker/{HEX}\tr=10+1 w=20+2\n"  # two devices
    f"docker/{HEX}\tl=9223372036854771712 m=4\n"  # no limit (v1)
    f"docker/{HEX}\tr=0 w=0\n",  # blkio's Total line alone
    "#cgroup v2\n"
    f"system.slice/docker-{HEX}.scope\tm=7 l=max zz=5 pcs=105 pcf=0 r=1+2+3 w=4\n"
    "lxc.payload.a b=c\tp=3\n"  # a path is whatever comes before the tab
    "sh: 1: awk: not found\n",
]

#: Edits of the first value line: each must be read as the token-by-token path reads it.
EDITS: tuple[Callable[[str], str], ...] = (
    lambda t: t,
    lambda t: t.replace("\n", "\r\n"),
    lambda t: t.replace("\n", "\n\n", 2),
    lambda t: t.replace(" ", "  ", 1),
    lambda t: t.replace("=", "==", 1),
    lambda t: t.replace("=", "=-", 1),
    lambda t: t.replace("=", "=+", 1),
    lambda t: t.replace("=", "= ", 1),
    lambda t: t.replace("=", "=_", 1),
    lambda t: t.replace("=", "=1_", 1),
    lambda t: t.replace("=", "=\u0661", 1),  # ARABIC-INDIC DIGIT ONE: a digit int() reads
    lambda t: t.replace("=", "=\u00b2", 1),  # SUPERSCRIPT TWO: isdigit(), not int()
    lambda t: t.replace("=", "=" + "9" * 20, 1),
    lambda t: t.replace("=", "=" + "9" * 21, 1),
    lambda t: t.replace("=", "=max", 1),
    lambda t: t.replace("=", "=1+", 1),
    lambda t: t.replace(" ", " x ", 1),  # a token without `=`
    lambda t: t.replace(" ", " x=1=2 ", 1),
    lambda t: t.replace(" ", " u 5=u=9 ", 1),  # pieces that pair up if misread
    lambda t: t.replace(" ", " X=5 ", 1),
    lambda t: t.replace(" ", " =5 ", 1),
    lambda t: t.replace(" ", " ", 1) + "\n",
    lambda t: t.rstrip("\n") + " ",
    lambda t: t.replace("\t", "\t ", 1),
    lambda t: t.replace("\t", "\t\t", 1),
)


def _read(text: str, fast: bool) -> object:
    try:
        return read_compact(text, "cgroup", fast=fast)
    except ProbeParseError as exc:
        return str(exc)


@pytest.mark.parametrize("edit", range(len(EDITS)))
@pytest.mark.parametrize("text", range(len(TEXTS)))
def test_the_fast_path_reads_what_the_token_path_reads(text: int, edit: int) -> None:
    edited = EDITS[edit](TEXTS[text])
    assert _read(edited, fast=True) == _read(edited, fast=False)


def test_the_lines_the_awk_prints_take_the_fast_path() -> None:
    lines = [line for t in TEXTS for line in t.split("\n")[1:] if "\t" in line]
    taken = [line for line in lines if _PLAIN_RE.fullmatch(line.partition("\t")[2])]
    assert len(lines) == 8 * 2 + 8 * (3 + 2) + 5 + 2  # v2: a line a section; v1: a mount
    assert taken == lines


def test_values_of_the_fast_path() -> None:
    version, found = read_compact(TEXTS[-1])
    assert version == 2
    assert found == {
        f"system.slice/docker-{HEX}.scope": {
            "m": 7, "l": None, "zz": 5, "pcs": 105, "pcf": 0, "r": 6, "w": 4,
        },
        "lxc.payload.a b=c": {"p": 3},
    }  # fmt: skip
