"""Fuzzing every parser with random and truncated bytes: a ProbeParseError or a result, never
an unhandled exception (issue 6). Truncations start from real captures, so the fuzzer
explores the neighbourhood of real output, where parser bugs live."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from probetext import NONCE, probe_stdout

from fleetmon.analyse.host import compute_host
from fleetmon.analyse.pipeline import analyse_host, build_report
from fleetmon.analyse.vms import compute_vms
from fleetmon.errors import ProbeParseError
from fleetmon.model import HostSpec, RawResult, RunInfo, Status
from fleetmon.render.json import render_json
from fleetmon.render.junit import render_junit
from fleetmon.render.nagios import render_nagios
from fleetmon.render.text import render_text
from fleetmon.sources.df import parse_df
from fleetmon.sources.diskstats import parse_diskstats
from fleetmon.sources.loadavg import parse_loadavg
from fleetmon.sources.meminfo import parse_meminfo
from fleetmon.sources.netdev import parse_net_dev
from fleetmon.sources.pressure import parse_pressure
from fleetmon.sources.sections import split_output
from fleetmon.sources.stat import parse_stat
from fleetmon.sources.uptime import parse_boot_id, parse_uptime
from fleetmon.sources.virsh import parse_domstats, parse_nodeinfo
from fleetmon.sources.vmstat import parse_vmstat
from fleetmon.sources.xen import parse_xentop, parse_xl_info, parse_xl_list

DATA = Path(__file__).parent / "data"
ROOT1 = DATA / "sysstat" / "root1" / "proc"
LAB = DATA / "lab-libvirt9-qemu7-tcg" / "sample1"
GANETI = DATA / "ganeti" / "test" / "data"
# Synthesized from xentop.c's formats (no real capture exists): see tests/data/SOURCES.md.
XENTOP = Path(__file__).parent / "bin" / "xen-standins" / "data" / "ganeti-xentop-1.txt"

PARSERS: list[tuple[str, Callable[[str], Any], Path]] = [
    ("stat", parse_stat, ROOT1 / "stat"),
    ("meminfo", parse_meminfo, ROOT1 / "meminfo"),
    ("vmstat", parse_vmstat, ROOT1 / "vmstat"),
    ("loadavg", parse_loadavg, ROOT1 / "loadavg"),
    ("diskstats", parse_diskstats, ROOT1 / "diskstats"),
    ("net_dev", parse_net_dev, ROOT1 / "net" / "dev"),
    ("pressure", parse_pressure, ROOT1 / "pressure" / "io"),
    ("uptime", parse_uptime, ROOT1 / "uptime"),
    ("boot_id", parse_boot_id, Path("/proc/sys/kernel/random/boot_id")),  # this machine's
    ("df", parse_df, DATA / "fleetmon-capture" / "df-P-k.txt"),
    ("domstats", parse_domstats, LAB / "domstats--raw.txt"),
    ("nodeinfo", parse_nodeinfo, LAB / "nodeinfo.txt"),
    ("xl_list", parse_xl_list, GANETI / "xen-xl-list-4.0.1-four-instances.txt"),
    ("xl_info", parse_xl_info, GANETI / "xen-xl-info-4.0.1.txt"),
    ("xentop", parse_xentop, XENTOP),
]

RUN = RunInfo("0.1.0", "2026-11-26T03:00:00Z", 1.0, "inv.yaml")
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _only_parse_errors(parse: Callable[[str], Any], text: str) -> None:
    with contextlib.suppress(ProbeParseError):
        parse(text)


@pytest.mark.parametrize(("name", "parse", "capture"), PARSERS, ids=[p[0] for p in PARSERS])
def test_real_capture_parses(name: str, parse: Callable[[str], Any], capture: Path) -> None:
    assert parse(capture.read_text(encoding="utf-8")) is not None


@pytest.mark.parametrize(("name", "parse", "capture"), PARSERS, ids=[p[0] for p in PARSERS])
@FUZZ
@given(data=st.data())
def test_random_and_truncated_input(
    name: str, parse: Callable[[str], Any], capture: Path, data: st.DataObject
) -> None:
    real = capture.read_text(encoding="utf-8")
    how = data.draw(st.sampled_from(["random", "truncated", "mutated"]))
    if how == "random":
        text = data.draw(st.binary(max_size=2000)).decode("utf-8", "replace")
    elif how == "truncated":
        text = real[: data.draw(st.integers(0, len(real)))]
    else:
        pos = data.draw(st.integers(0, max(0, len(real) - 1)))
        junk = data.draw(st.text(max_size=20))
        text = real[:pos] + junk + real[pos + data.draw(st.integers(0, 30)) :]
    _only_parse_errors(parse, text)


@FUZZ
@given(cut=st.integers(0, 200_000), junk=st.binary(max_size=200), kvm=st.booleans())
def test_whole_probe_output_cut_or_spliced(cut: int, junk: bytes, kvm: bool) -> None:
    real = probe_stdout(kvm=kvm)
    text = real[: cut % (len(real) + 1)] + junk.decode("utf-8", "replace")
    try:
        out = split_output(text, NONCE)
        hm = compute_host(out)
        compute_vms(out, host_cpus=8, host_mem_bytes=8 << 30, interval_s=hm.interval_s)
    except ProbeParseError:
        pass
    spec = HostSpec(name="h", address="h")
    host = analyse_host(RawResult(spec, Status.OK, stdout=text, nonce=NONCE))
    assert host.status in (Status.OK, Status.PARSE_ERROR)
    if host.status is Status.PARSE_ERROR:
        assert host.error is not None
        assert host.error.startswith("parse error: section ")


#: Absurd magnitudes a hostile target can print where a number belongs (issue 16).
ABSURD = st.one_of(
    st.integers(min_value=2**63, max_value=10**600).map(str),
    st.integers(max_value=-1, min_value=-(10**400)).map(str),
    st.sampled_from(["1e308", "-1e308", "1e999", "inf", "-inf", "nan", "NaN", "Infinity"]),
    st.sampled_from(["18446744073709551615", "18446744073709551616", "9" * 4301, "0" * 500]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
_NUMBER = re.compile(r"(?<![\w.])[0-9]+(?:\.[0-9]+)?(?![\w.])")


def _with_absurd_numbers(text: str, data: st.DataObject) -> str:
    """`text` with a few of its numbers replaced by absurd ones."""
    spans = [m.span() for m in _NUMBER.finditer(text)]
    if not spans:
        return text + data.draw(ABSURD)
    chosen = sorted(
        set(data.draw(st.lists(st.sampled_from(spans), min_size=1, max_size=4))), reverse=True
    )
    for start, end in chosen:
        text = text[:start] + data.draw(ABSURD) + text[end:]
    return text


@pytest.mark.parametrize(("name", "parse", "capture"), PARSERS, ids=[p[0] for p in PARSERS])
@FUZZ
@given(data=st.data())
def test_absurd_magnitudes(
    name: str, parse: Callable[[str], Any], capture: Path, data: st.DataObject
) -> None:
    _only_parse_errors(parse, _with_absurd_numbers(capture.read_text(encoding="utf-8"), data))


@FUZZ
@given(data=st.data(), kvm=st.booleans())
def test_whole_probe_output_with_absurd_magnitudes(data: st.DataObject, kvm: bool) -> None:
    # Numbers of the sections only: a marker's sample or status changed is another test.
    lines = probe_stdout(kvm=kvm).split("\n")
    body = [i for i, line in enumerate(lines) if not line.startswith("@@fleetmon-")]
    for i in set(data.draw(st.lists(st.sampled_from(body), min_size=1, max_size=3))):
        lines[i] = _with_absurd_numbers(lines[i], data)
    text = "\n".join(lines)
    spec = HostSpec(name="h", address="h")
    report = build_report([RawResult(spec, Status.OK, stdout=text, nonce=NONCE)], RUN)
    (host,) = report.hosts
    assert host.status in (Status.OK, Status.PARSE_ERROR)
    if host.status is Status.PARSE_ERROR:
        assert host.error is not None
        assert host.error.startswith("parse error: section "), host.error
    # The byte formatter and every other renderer take whatever analysis let through.
    for render in (render_text, render_nagios, render_json, render_junit):
        assert render(report)
