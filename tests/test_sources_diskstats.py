"""/proc/diskstats parser, device selection and iostat -x maths."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetmon.errors import ProbeParseError
from fleetmon.sources.diskstats import (
    DiskStat,
    disk_rates,
    is_partition,
    is_virtual_excluded,
    parse_diskstats,
)

DATA = Path(__file__).parent / "data"


def read(rel: str) -> str:
    return (DATA / rel).read_text(encoding="utf-8")


def whole_devices(rel: str) -> list[str]:
    devs = parse_diskstats(read(rel)).devices
    names = {d.name for d in devs}
    return [
        d.name for d in devs if not is_partition(d.name, names) and not is_virtual_excluded(d.name)
    ]


def test_twenty_field_nvme_line() -> None:
    devs = {
        d.name: d for d in parse_diskstats(read("jamescun-procfs/testdata/proc/diskstats")).devices
    }
    nvme = devs["nvme1n1"]
    assert (nvme.major, nvme.minor, nvme.reads, nvme.sectors_read) == (
        259,
        0,
        389347453,
        52501372594,
    )
    assert (nvme.ms_io, nvme.weighted_ms, nvme.discards, nvme.flushes) == (
        9630357,
        444432805,
        91084,
        0,
    )
    assert devs["md0"].reads == 100


def test_fourteen_field_ganeti() -> None:
    ds = parse_diskstats(read("ganeti/test/data/proc_diskstats.txt"))
    sda = next(d for d in ds.devices if d.name == "sda")
    assert (sda.reads, sda.writes, sda.ms_io, sda.weighted_ms) == (89502, 519115, 149148, 554564)
    assert (sda.discards, sda.flushes) == (None, None)
    assert len(ds.devices) == 32


def test_sysstat_seventeen_field_line_reads_like_sysstat() -> None:
    devs = {d.name: d for d in parse_diskstats(read("sysstat/root1/proc/diskstats")).devices}
    sds = devs["sds"]
    assert (sds.reads, sds.sectors_read, sds.writes, sds.weighted_ms) == (386, 8554, 727, 7902)
    assert sds.discards is None  # 3 of the 4 discard fields only: ignored
    assert devs["sdq"].discards == 8638


@pytest.mark.parametrize(
    ("rel", "expected"),
    [
        (
            "jamescun-procfs/testdata/proc/diskstats",
            ["nvme1n1", "nvme0n1", "md0", "md2", "md1"],
        ),
        (
            "prometheus-procfs/proc/diskstats",
            [
                "sda",
                "dm-0",
                "dm-1",
                "dm-2",
                "dm-3",
                "dm-4",
                "dm-5",
                "mmcblk0",
                "vda",
                "nvme0n1",
                "sdb",
                "sdc",
            ],
        ),
        ("ganeti/test/data/proc_diskstats.txt", ["sda", "dm-0", "dm-1", "dm-2", "sdb"]),
        (
            "sysstat/root1/proc/diskstats",
            ["sda", "sdb", "sde", "sdc", "sdd", "sdq", "sdr", "sds", "dm-2"],
        ),
    ],
)
def test_whole_devices(rel: str, expected: list[str]) -> None:
    assert whole_devices(rel) == expected


BASE = DiskStat(8, 0, "sda", 100, 0, 800, 50, 10, 0, 80, 20, 0, 60, 70)


def test_ms_fields_wrap_at_32_bits() -> None:
    prev = BASE._replace(ms_reading=2**32 - 10, ms_io=2**32 - 100, weighted_ms=2**32 - 1)
    cur = BASE._replace(reads=110, ms_reading=30, ms_io=400, weighted_ms=999)
    r = disk_rates(prev, cur, 2.0)
    assert r.r_await_ms == 4.0  # (10 + 30) ms over 10 reads
    assert r.util_pct == 25.0  # 500 ms busy in 2 s
    assert r.queue_depth == 0.5  # 1000 weighted ms over 2 s
    assert r.w_await_ms is None  # no write completed
    assert not r.reregistered


def test_counts_going_down_count_from_zero_like_sysstat() -> None:
    cur = BASE._replace(reads=21, sectors_read=1412, ms_reading=987, writes=0, sectors_written=0)
    r = disk_rates(BASE._replace(reads=51, sectors_read=4216), cur, 1.0)
    assert r.reregistered
    assert (r.reads_per_s, r.read_bytes_per_s, r.r_await_ms) == (21.0, 1412 * 512.0, 47.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "   8 0 sda 1 2 3\n",
            "section diskstats: expected 14, 18 or 20 fields, got '8 0 sda 1 2 3'",
        ),
        (
            "8 0 sda 1 2 3 4 5 6 7 8 9 10 -11\n",
            "section diskstats: sda field 14: expected an unsigned integer, got '-11'",
        ),
        (
            "x 0 sda 1 2 3 4 5 6 7 8 9 10 11\n",
            "section diskstats: sda major: expected an unsigned integer, got 'x'",
        ),
    ],
)
def test_garbled_diskstats(text: str, message: str) -> None:
    with pytest.raises(ProbeParseError) as err:
        parse_diskstats(text)
    assert str(err.value) == message


def test_old_kernel_partition_lines_are_skipped() -> None:
    # Linux < 2.6.25 printed partitions with 4 counters: "3 1 hda1 35486 38030 38030 38030".
    ds = parse_diskstats("   3    1 hda1 35486 38030 38030 38030\n")
    assert (ds.devices, ds.old_partitions) == ((), ("hda1",))
