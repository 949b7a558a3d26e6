"""The parsers' two paths agree: the fast one (C-speed passes over the usual file) gives what
the line-by-line one gives, on every real capture and on edited ones it must pass back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fleetmon.sources import device_lines
from fleetmon.sources.diskstats import _diskstats_fast, _diskstats_lines
from fleetmon.sources.meminfo import _parse_meminfo_fast, _parse_meminfo_lines
from fleetmon.sources.netdev import _net_dev_fast, _net_dev_lines
from fleetmon.sources.pressure import _parse_pressure_fast, _parse_pressure_lines
from fleetmon.sources.stat import _stat_fast, _stat_lines
from fleetmon.sources.virsh import _domstats_fast, _domstats_lines
from fleetmon.sources.vmstat import _parse_vmstat_fast, _parse_vmstat_lines

DATA = Path(__file__).parent / "data"


def _netdev_lines(text: str) -> list[str]:
    return [line for line in device_lines("net_dev", text) if "|" not in line]


#: (files, fast path or None when it passes, line-by-line path)
PATHS: dict[str, tuple[str, Callable[[str], Any], Callable[[str], Any]]] = {
    "stat": ("**/proc/stat", _stat_fast, _stat_lines),
    "diskstats": (
        "**/proc/diskstats",
        lambda t: _diskstats_fast(device_lines("diskstats", t)),
        lambda t: _diskstats_lines(device_lines("diskstats", t)),
    ),
    "net_dev": (
        "**/proc/net/dev",
        lambda t: _net_dev_fast([line.rpartition(":") for line in _netdev_lines(t)]),
        lambda t: _net_dev_lines(_netdev_lines(t)),
    ),
    "domstats": ("**/domstats*.txt", _domstats_fast, _domstats_lines),
    "meminfo": ("**/proc/meminfo", _parse_meminfo_fast, _parse_meminfo_lines),
    "pressure": (
        "**/proc/pressure/*",
        _parse_pressure_fast,
        lambda t: _parse_pressure_lines(t, "p"),
    ),
    "vmstat": ("**/proc/vmstat", _parse_vmstat_fast, _parse_vmstat_lines),
}

#: Edits that a fast path must either read as the line-by-line path does or leave to it.
EDITS: tuple[Callable[[str], str], ...] = (
    lambda t: t,
    lambda t: t.replace("\n", "\r\n"),
    lambda t: t.replace("\n", "\n\n", 2),
    lambda t: t.replace(" ", "  ", 3),
    lambda t: t.replace("=", "=-", 1),
    lambda t: t.rstrip("\n"),
    lambda t: "\n" + t,
    lambda t: t.replace("1", "1" * 21, 1),
    lambda t: t.replace("0", "\u0660", 1),
    lambda t: t.replace(" ", "\t", 1),
)


def _outcome(parse: Callable[[str], Any], text: str) -> Any:
    try:
        return parse(text)
    except Exception as exc:  # the same error from both paths counts as agreement
        return (type(exc).__name__, str(exc))


@pytest.mark.parametrize("kind", sorted(PATHS))
def test_the_fast_path_reads_every_capture_as_the_line_by_line_path(kind: str) -> None:
    pattern, fast, lines = PATHS[kind]
    files = sorted(p for p in DATA.glob(pattern) if p.is_file())
    assert files, pattern
    taken = 0
    for path in files:
        original = path.read_text(encoding="utf-8")
        for edit in EDITS:
            text = edit(original)
            got = _outcome(fast, text)
            if got is None:
                continue  # left to the line-by-line path
            taken += 1
            assert got == _outcome(lines, text), (path, text[:200])
    assert taken >= len(files) // 2  # the captures are the usual files: most go the fast way
