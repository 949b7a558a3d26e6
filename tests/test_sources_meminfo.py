"""/proc/meminfo parser and mem.* figures on real captures."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetmon.errors import ProbeParseError
from fleetmon.sources.meminfo import AVAILABLE_ESTIMATED_NOTE, memory_metrics, parse_meminfo

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize(
    ("rel", "total_kb", "avail_kb", "swap_used_pct", "commit_pct", "estimated"),
    [
        ("sysstat/root1/proc/meminfo", 8144960, 4389516, 0.0, 48.5425, False),
        ("sysstat/root3/proc/meminfo", 8144960, 4389516, 0.0, 120.7674, False),
        ("jamescun-procfs/testdata/proc/meminfo", 65429972, 63242600, 0.0, 2.1204, False),
        ("ganeti/test/data/proc_meminfo.txt", 32263108, 21604764, 1.9629, 115.3464, False),
        # Linux 2.4 layout: byte table first, then the Key: value lines.
        (
            "gopsutil/mem/testdata/linux/virtualmemory/issue1002/proc/meminfo",
            254472,
            210156,
            None,
            9.8117,
            False,
        ),
        # MemAvailable removed: psutil's fallback MemFree + Cached = 3547792 + 298624.
        ("facter/spec/fixtures/meminfo_missing_available", 4036680, 3846416, 0.0, 4.4760, True),
        # A 4-line excerpt: no swap or commit lines at all.
        (
            "gopsutil/mem/testdata/linux/virtualmemory/anonhugepages/proc/meminfo",
            260799420,
            127880216,
            None,
            None,
            False,
        ),
    ],
)
def test_memory_metrics(
    rel: str,
    total_kb: int,
    avail_kb: int,
    swap_used_pct: float | None,
    commit_pct: float | None,
    estimated: bool,
) -> None:
    values, notes = memory_metrics(parse_meminfo((DATA / rel).read_text(encoding="utf-8")))
    assert values["mem.total_bytes"] == total_kb * 1024
    assert values["mem.available_bytes"] == avail_kb * 1024
    assert values["mem.used_pct"] == pytest.approx(100 * (total_kb - avail_kb) / total_kb)
    assert values["mem.swap_used_pct"] == pytest.approx(swap_used_pct, abs=5e-5)
    assert values["mem.commit_pct"] == pytest.approx(commit_pct, abs=5e-5)
    assert values["mem.hugepages_free_pct"] is None  # no huge pages reserved anywhere here
    assert notes == ([AVAILABLE_ESTIMATED_NOTE] if estimated else [])


@pytest.mark.parametrize(
    "rel",
    [
        "facter/spec/fixtures/meminfo",
        "facter/spec/fixtures/meminfo2",
        "facter/facter2-2015/spec/fixtures/unit/memory/linux-proc_meminfo",
        "go-sysinfo/providers/linux/testdata/ubuntu1710/proc/meminfo",
        "gopsutil/mem/testdata/linux/virtualmemory/intelcorei5/proc/meminfo",
        "insights-core/meminfo-MEMINFO.txt",
        "kerub/src/test/resources/com/github/kerubistan/kerub/utils/junix/procfs/linux-meminfo.txt",
        "prometheus-procfs/proc/meminfo",
        "prometheus-node_exporter/proc/meminfo",
        "elastic-beats/metricbeat/module/linux/memory/_meta/testdata/proc/meminfo",
    ],
)
def test_every_capture_gives_bounded_figures(rel: str) -> None:
    values, _ = memory_metrics(parse_meminfo((DATA / rel).read_text(encoding="utf-8")))
    used = values["mem.used_pct"]
    assert isinstance(used, float)
    assert 0.0 <= used <= 100.0


def test_hugepages_counts_are_pages_not_kb() -> None:
    mem = parse_meminfo("MemTotal: 100 kB\nHugePages_Total:     512\nHugePages_Free:      128\n")
    values, _ = memory_metrics(mem)
    assert values["mem.hugepages_free_pct"] == 25.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "section meminfo: no MemTotal line"),
        ("MemTotal 5 kB\n", "section meminfo: expected 'Key: value', got 'MemTotal 5 kB'"),
        ("MemTotal: 5 MB\n", "section meminfo: unexpected value in 'MemTotal: 5 MB'"),
        ("MemTotal: x kB\n", "section meminfo: MemTotal: expected an unsigned integer, got 'x'"),
    ],
)
def test_garbled_meminfo(text: str, message: str) -> None:
    with pytest.raises(ProbeParseError) as err:
        parse_meminfo(text)
    assert str(err.value) == message
