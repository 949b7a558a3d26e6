"""`fleetmon run --cluster` when the cluster misbehaves: a scheduler that never speaks or
stops answering, workers that leave, other runs on the same scheduler (real `dask
scheduler` and `dask worker` processes on loopback, the simulator as the fleet)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from clirun import fleetmon

pytestmark = pytest.mark.slow


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never says a word (a mistyped port,
    a stalled proxy: Dask's handshake never completes)."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        with server:
            while True:
                try:
                    accepted.append(server.accept()[0])
                except OSError:  # closed: the test is over
                    return

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    server.close()
    for conn in accepted:
        conn.close()


def test_bad_input_is_said_at_once_though_the_scheduler_never_answers(
    silent_port: int, tmp_path: Path
) -> None:
    """The run closed its session before saying the error, and that close waited for ever
    for a client stuck in Dask's handshake."""
    inv = tmp_path / "hosts.ini"
    inv.write_text("h1 ansible_host=127.0.0.1\n")
    # A bound of 2 * 20 + 5 s on the client's making: a run waiting for it takes 45 s.
    cluster = ("--cluster", f"tcp://127.0.0.1:{silent_port}", "--connect-timeout", "20")
    started = time.monotonic()
    missing = fleetmon("run", tmp_path / "nowhere.yaml", *cluster, timeout=120)
    missing_s = time.monotonic() - started
    nomatch = fleetmon("run", inv, "-l", "nomatch", "--history", "none", *cluster, timeout=120)
    nomatch_s = time.monotonic() - started - missing_s
    assert (missing.returncode, missing.stdout) == (4, "")
    assert missing.stderr == (
        f"fleetmon: error: {tmp_path}/nowhere.yaml: cannot read: No such file or directory\n"
    )
    assert (nomatch.returncode, nomatch.stdout) == (4, "")
    assert nomatch.stderr == (
        f"fleetmon: error: {inv}: --limit 'nomatch': 'nomatch' matches no host or group\n"
    )
    assert missing_s < 45
    assert nomatch_s < 45
