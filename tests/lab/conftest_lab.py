"""pytest plugin: the lab hypervisor, a real libvirt + QEMU with two busy guests (session).

`lab_hypervisor` runs tests/lab/setup.sh once per session (about 20 s on a machine without
the packages, a few seconds with them) and tests/lab/teardown.sh at the end. It needs root
and the Debian package registry. Outside CI a machine that cannot run it skips the lab
tests, saying why; in CI (CI=true) that is a failure, never a silent skip.
FLEETMON_LAB_KEEP=1 leaves the lab running after the session (for a quicker next run).
Concurrent sessions share the lab: the last one out tears it down (a lock and one file
per session under /run/fleetmon-lab/users).

Load it with `pytest_plugins = ["lab.conftest_lab"]` (tests/ is on sys.path).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fleetmon.sources.virsh import DomainStats, parse_domstats

LAB_DIR = Path(__file__).parent
URI = "qemu:///system"
DOMAINS = ("fmlab1", "fmlab2")
TAPS = {"tap-fmlab1": "fmlab1", "tap-fmlab2": "fmlab2"}
STATE = Path(os.environ.get("FMLAB_STATE", "/run/fleetmon-lab"))


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _cannot(why: str) -> None:
    if _in_ci():
        pytest.fail(f"lab hypervisor: {why}")
    pytest.skip(f"lab hypervisor: {why}")


@dataclass(frozen=True, slots=True)
class Lab:
    """The running lab: its libvirt URI, guest names and their tap ports."""

    uri: str
    domains: tuple[str, ...]
    taps: dict[str, str]

    def domstats(self) -> dict[str, DomainStats]:
        """`virsh domstats` read now, independently of fleetmon's probe."""
        proc = subprocess.run(
            ["virsh", "-q", "-c", self.uri, "domstats", "--raw", "--state", "--cpu-total",
             "--vcpu", "--block", "--interface", *self.domains],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        return {d.name: d for d in parse_domstats(proc.stdout)}


#: Counters each guest's work loop moves on every turn (about one turn a second).
_LOOP_COUNTERS = ("block.0.rd.reqs", "block.0.wr.reqs", "net.0.tx.pkts", "net.0.rx.pkts")


def _wait_until_busy(lab: Lab, timeout_s: float = 60.0) -> None:
    """Wait until every guest's loop has turned twice, so tests see steady work."""
    first = lab.domstats()
    deadline = time.monotonic() + timeout_s
    seen: dict[tuple[str, str], set[int | None]] = {}
    while time.monotonic() < deadline:
        now = lab.domstats()
        for name in lab.domains:
            for key in _LOOP_COUNTERS:
                seen.setdefault((name, key), {first[name].num(key)}).add(now[name].num(key))
        if all(len(values - {None}) >= 3 for values in seen.values()):
            return
        time.sleep(0.5)
    idle = sorted(f"{n} {k}" for (n, k), v in seen.items() if len(v - {None}) < 3)
    _cannot(f"guests not busy after {timeout_s:.0f} s: {', '.join(idle)}")


@contextlib.contextmanager
def _lab_lock() -> Iterator[None]:
    """Serialise setup and teardown between concurrent pytest sessions on this machine."""
    STATE.mkdir(parents=True, exist_ok=True)
    with (STATE / "lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _live_users() -> list[Path]:
    """Sessions still using the lab (one file per pytest pid); dead ones are dropped."""
    live = []
    for f in (STATE / "users").glob("*"):
        try:
            os.kill(int(f.name), 0)
            live.append(f)
        except (ValueError, ProcessLookupError):
            f.unlink(missing_ok=True)
    return live


@pytest.fixture(scope="session")
def lab_hypervisor() -> Iterator[Lab]:
    """Bring the lab up for the session and tear it down after, unless another session
    (another pytest on this machine) still uses it: the lab is shared, not restarted."""
    if os.geteuid() != 0:
        _cannot("needs root (apt-get, libvirtd, a bridge)")
    me = STATE / "users" / str(os.getpid())
    with _lab_lock():
        try:
            proc = subprocess.run(
                ["bash", str(LAB_DIR / "setup.sh")],
                capture_output=True,
                text=True,
                timeout=900,
                env={**os.environ, "GUESTS": str(len(DOMAINS)), "FMLAB_STATE": str(STATE)},
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            _cannot(f"setup.sh did not finish: {exc}")
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-15:])
            _cannot(f"setup.sh exited {proc.returncode}:\n{tail}")
        me.parent.mkdir(exist_ok=True)
        me.touch()
    lab = Lab(URI, DOMAINS, dict(TAPS))
    try:
        _wait_until_busy(lab)
        yield lab
    finally:
        with _lab_lock():
            me.unlink(missing_ok=True)
            if not _live_users() and os.environ.get("FLEETMON_LAB_KEEP") != "1":
                subprocess.run(
                    ["bash", str(LAB_DIR / "teardown.sh")],
                    capture_output=True,
                    timeout=120,
                    env={**os.environ, "FMLAB_STATE": str(STATE)},
                )
