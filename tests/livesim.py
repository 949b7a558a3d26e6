"""Test helper: `fleetmon simulate` in a subprocess on a random 127.x.y.0/24 block, with the
YAML inventory it writes (for the live modes' end-to-end tests)."""

from __future__ import annotations

import contextlib
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

FLEETMON = str(Path(sys.executable).with_name("fleetmon"))
HOSTILESIM = str(Path(__file__).with_name("hostilesim.py"))


@contextlib.contextmanager
def simulated_fleet(
    tmp: Path, hosts: int = 12, kind: str = "mixed", faults: str = "", seed: int = 5,
    extra: tuple[str, ...] = (), hostile: str = "",
) -> Iterator[Path]:  # fmt: skip
    """Yields the inventory of a running simulator; stops it after. `hostile`: "nic" or
    "stderr", the hosts sending terminal escapes there (tests/hostilesim.py)."""
    with simulator(tmp, hosts, kind, faults, seed, extra, hostile) as (inv, _):
        yield inv


@contextlib.contextmanager
def simulator(
    tmp: Path, hosts: int = 12, kind: str = "mixed", faults: str = "", seed: int = 5,
    extra: tuple[str, ...] = (), hostile: str = "",
) -> Iterator[tuple[Path, subprocess.Popen[str]]]:  # fmt: skip
    """simulated_fleet's inventory, and the simulator's process (to stop it with SIGSTOP)."""
    inv = tmp / "fleet.yaml"
    block = f"127.{random.randint(100, 250)}.{random.randint(0, 255)}"
    cmd = [sys.executable, HOSTILESIM, hostile] if hostile else [FLEETMON, "simulate"]
    cmd += ["--hosts", str(hosts), "--kind", kind, "--seed", str(seed)]
    cmd += ["--base-address", block + ".1", "--port", "0", "--inventory-out", str(inv), *extra]
    if faults:
        cmd += ["--faults", faults]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        assert ready.startswith("fleetmon simulate: ready:"), ready + (
            proc.stderr.read() if proc.stderr else ""
        )
        proc.stdout.readline()
        yield inv, proc
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.terminate()
        proc.communicate(timeout=20)
