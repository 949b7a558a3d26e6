"""loadavg, vmstat, uptime/boot id and pressure parsers on real captures."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetmon.errors import ProbeParseError
from fleetmon.sources.loadavg import LoadAvg, parse_loadavg
from fleetmon.sources.pressure import PressureLine, parse_pressure
from fleetmon.sources.uptime import Uptime, parse_boot_id, parse_uptime
from fleetmon.sources.vmstat import parse_vmstat

DATA = Path(__file__).parent / "data"


def read(rel: str) -> str:
    return (DATA / rel).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("rel", "expected"),
    [
        ("sysstat/root1/proc/loadavg", LoadAvg(3.16, 3.24, 3.43, 4, 956, 27015)),
        ("facter/spec/fixtures/loadavg", LoadAvg(0.0, 0.03, 0.03, 1, 165, 21302)),
        ("prometheus-procfs/proc/loadavg", LoadAvg(0.02, 0.04, 0.05, 1, 497, 11947)),
        ("prometheus-node_exporter/proc/loadavg", LoadAvg(0.21, 0.37, 0.39, 1, 719, 19737)),
        ("jamescun-procfs/testdata/proc/loadavg", LoadAvg(0.10, 0.07, 0.01, 1, 458, 1558584)),
        (
            "go-sysinfo/providers/linux/testdata/ubuntu1710/proc/loadavg",
            LoadAvg(1.55, 1.74, 1.73, 2, 1318, 46377),
        ),
    ],
)
def test_loadavg(rel: str, expected: LoadAvg) -> None:
    assert parse_loadavg(read(rel)) == expected


def test_facter_loadavg_has_no_final_newline() -> None:
    assert not read("facter/spec/fixtures/loadavg").endswith("\n")


@pytest.mark.parametrize(
    ("rel", "count", "oom_kill", "pgmajfault"),
    [
        ("sysstat/root1/proc/vmstat", 142, 0, 10715),
        ("sysstat/root7/proc/vmstat", 140, 0, 10715),
        ("jamescun-procfs/testdata/proc/vmstat", 159, 0, 932938),
        ("prometheus-node_exporter/proc/vmstat", 120, 0, 507162),
        ("go-sysinfo/providers/linux/testdata/ubuntu1710/proc/vmstat", 133, 0, 19204),
        ("elastic-beats/metricbeat/module/linux/memory/_meta/testdata/proc/vmstat", 162, 0, 16885),
    ],
)
def test_vmstat(rel: str, count: int, oom_kill: int, pgmajfault: int) -> None:
    vm = parse_vmstat(read(rel))
    assert len(vm.counters) == count
    assert (vm.get("oom_kill"), vm.get("pgmajfault")) == (oom_kill, pgmajfault)
    assert vm.get("no_such_counter") is None


@pytest.mark.parametrize(
    ("rel", "expected"),
    [
        ("sysstat/root1/proc/uptime", Uptime(7192.55, 29212.05)),
        ("sermon/proc/uptime", Uptime(793195.34, 6066024.70)),
        ("jamescun-procfs/testdata/proc/uptime", Uptime(16072645.20, 192637915.46)),
    ],
)
def test_uptime(rel: str, expected: Uptime) -> None:
    assert parse_uptime(read(rel)) == expected


def test_boot_id() -> None:
    assert parse_boot_id("0F2E3B1C-5D6E-4F70-8192-A3B4C5D6E7F8\n") == (
        "0f2e3b1c-5d6e-4f70-8192-a3b4c5d6e7f8"
    )


@pytest.mark.parametrize(
    ("rel", "some", "full"),
    [
        ("sysstat/root1/proc/pressure/cpu", PressureLine(0.0, 0.0, 0.0, 1473177), None),
        (
            "sysstat/root2/proc/pressure/io",
            PressureLine(3.19, 1.14, 0.43, 96968324),
            PressureLine(3.19, 1.14, 0.42, 93434041),
        ),
        (
            "prometheus-node_exporter/proc/pressure/cpu",
            PressureLine(0.0, 0.0, 0.0, 14036781),
            PressureLine(0.0, 0.0, 0.0, 0),
        ),
        (
            "nodevitals/testdata/proc/pressure/cpu",
            PressureLine(3.08, 2.03, 1.91, 98649890575),
            PressureLine(0.0, 0.0, 0.0, 0),
        ),
    ],
)
def test_pressure(rel: str, some: PressureLine, full: PressureLine | None) -> None:
    p = parse_pressure(read(rel), "pressure_cpu")
    assert (p.some, p.full) == (some, full)


@pytest.mark.parametrize(
    ("func", "text", "message"),
    [
        (
            parse_loadavg,
            "0.1 0.2 0.3\n",
            "section loadavg: expected 'l1 l5 l15 r/t pid', got '0.1 0.2 0.3'",
        ),
        (
            parse_loadavg,
            "a 0.2 0.3 1/2 3\n",
            "section loadavg: load 1m: expected a number, got 'a'",
        ),
        (parse_loadavg, "", "section loadavg: expected one line, got 0"),
        (
            parse_vmstat,
            "nr_free_pages\n",
            "section vmstat: expected 'name value', got 'nr_free_pages'",
        ),
        (parse_uptime, "abc 1.0\n", "section uptime: uptime: expected a number, got 'abc'"),
        (parse_uptime, "nan 1.0\n", "section uptime: uptime: expected a finite number, got 'nan'"),
        (parse_boot_id, "not-a-uuid\n", "section boot_id: not a UUID: 'not-a-uuid'"),
        (
            parse_pressure,
            "some avg10=0.00 avg60=0.00 avg300=0.00\n",
            "section pressure: expected 'some|full avg10=... total=...':"
            " 'some avg10=0.00 avg60=0.00 avg300=0.00'",
        ),
        (
            parse_pressure,
            "some avg10=0.00 avg60=0.00 avg300=0.00 tot=5\n",
            "section pressure: some: missing total",
        ),
    ],
)
def test_garbled(func: object, text: str, message: str) -> None:
    assert callable(func)
    with pytest.raises(ProbeParseError) as err:
        func(text)
    assert str(err.value) == message
