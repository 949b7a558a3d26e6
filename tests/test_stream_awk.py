"""The streaming loop through each awk a host may have (mawk: Debian, Ubuntu; busybox):
each tick reaches the reader when it is sampled, not one interval later.

mawk reads its input a whole buffer at a time (fin.c fillbuff: read() until its 4 KB are
full), so without the lines the loop writes after each tick (probe.PAD_LINES, passed over
by the awk) the tick's last sections waited in the pipe for the next tick's output."""

from __future__ import annotations

import os
import selectors
import subprocess
import time
from pathlib import Path

import pytest
from test_cgroup_awks import AWKS, awk_dir

from fleetmon.collect.probe import REMOTE_COMMAND, ProbeOptions, build_stream_script
from fleetmon.sources.sections import TICK_END_SECTION, marker

#: The wait between the two ticks: the tick's end must come this much before the next tick.
INTERVAL_S = 6.0


def _arrivals(proc: subprocess.Popen[bytes], timeout_s: float) -> list[tuple[float, bytes]]:
    """Each chunk the script's stdout gives and when (monotonic seconds), until it ends."""
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    out: list[tuple[float, bytes]] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not sel.select(deadline - time.monotonic()):
            continue
        chunk = os.read(proc.stdout.fileno(), 1 << 16)
        if not chunk:
            break
        out.append((time.monotonic(), chunk))
    return out


@pytest.mark.parametrize("name", sorted(AWKS))
def test_each_tick_reaches_the_reader_when_it_is_sampled(tmp_path: Path, name: str) -> None:
    opts = ProbeOptions(interval_s=INTERVAL_S, hypervisor="none")
    env = {**os.environ, "PATH": f"{awk_dir(tmp_path, name)}:{os.environ['PATH']}"}
    proc = subprocess.Popen(
        ["sh", "-c", REMOTE_COMMAND], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    assert proc.stdin is not None
    proc.stdin.write(build_stream_script(opts, ticks=2).encode())
    proc.stdin.close()
    try:
        chunks = _arrivals(proc, 120)
    finally:
        proc.kill()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
    data = b"".join(c for _, c in chunks)
    end1 = f"{marker(opts.nonce)} end 1 {TICK_END_SECTION} ".encode()
    begin2 = f"{marker(opts.nonce)} begin 2 ".encode()
    assert end1 in data, data[-300:]
    assert begin2 in data, data[-300:]
    assert b" pad " not in data  # the padding is the awk's, never the reader's

    def when(needle: bytes) -> float:
        seen = b""
        for t, chunk in chunks:
            seen += chunk
            if needle in seen:
                return t
        raise AssertionError(needle)

    # Tick 1's end came with tick 1, the interval before tick 2 began (mawk: with it).
    assert when(begin2) - when(end1) >= INTERVAL_S / 2
