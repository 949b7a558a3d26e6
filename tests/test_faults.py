"""Fault matrix (issue 6 items 1, 6, 7; issue 11): misbehaving hosts played by a real sshd.

A test-only sshd gives each fault its own user (created for this session) through
`Match User` + `ForceCommand`, or a login shell that fails; a plain TCP listener that never
speaks plays the silent host. Every bad host must end as a status with a reason, the good
host must still be collected, and the run must end within the deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import resource
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncssh
import proctree
import pytest
import sshd_util

from fleetmon.collect.probe import REMOTE_COMMAND, ProbeOptions
from fleetmon.collect.runner import CollectOptions, collect
from fleetmon.errors import ProbeParseError
from fleetmon.model import HostSpec, RawResult, Status
from fleetmon.sources.sections import split_output

pytestmark = pytest.mark.sshd

FAULTS = {
    "fm-hang": "sleep 600",
    "fm-fail": "echo boom >&2; echo second line >&2; exit 3",
    "fm-garbage": "head -c 100000 /dev/urandom",
    "fm-flood": "head -c 300000000 /dev/zero",
    # A forced command that ignores the one asked for, and exits 0.
    "fm-echo": 'echo "This account is restricted to file transfers"',
    "fm-sftp": "internal-sftp",
}
#: Accounts whose login shell ends the session at once, before reading the probe; bash
#: reads BASHRC (sshd sets SSH_CLIENT) and stops at its failing `tty -s` under `set -e`.
SHELLS = {"fm-false": "/bin/false", "fm-nologin": "/usr/sbin/nologin", "fm-bashrc": "/bin/bash"}
BASHRC = 'echo "bashrc: welcome"\nset -e\ntty -s\n'
#: What a host that fails fast must report, every time (issue 11).
FAST_FAILURES = {
    "fm-fail": (Status.COMMAND_FAILED, "probe exited 3: boom"),
    "fm-false": (Status.COMMAND_FAILED, "probe exited 1 with no error output"),
    "fm-nologin": (
        Status.COMMAND_FAILED,
        "probe exited 1: This account is currently not available.",
    ),
    "fm-sftp": (
        Status.COMMAND_FAILED,
        "probe exited 1: This service allows sftp connections only.",
    ),
    # Its greeting is quoted as what it printed, not as the error.
    "fm-bashrc": (
        Status.COMMAND_FAILED,
        "the login shell (or a forced command) exited 1 before the probe started "
        "(no probe output; it printed: 'bashrc: welcome')",
    ),
}
DEADLINE_S = 4.0
CONNECT_TIMEOUT_S = 2.0


#: Role ("fm-hang"...) -> the login made for it in this session.
USERS: dict[str, str] = {}


@pytest.fixture(scope="module")
def fault_sshd(sshd_factory: Callable[..., sshd_util.Sshd]) -> Iterator[sshd_util.Sshd]:
    """An sshd where each fault role has its own new user: a misbehaving ForceCommand, or a
    login shell that fails."""
    # A home of their own (the others' is /tmp), readable by the shell users.
    home = Path(tempfile.mkdtemp(prefix="fleetmon-faults-home-", dir="/tmp"))
    home.chmod(0o755)
    (home / ".bashrc").write_text(BASHRC)
    (home / ".bashrc").chmod(0o644)
    try:
        for role in FAULTS:
            USERS[role] = sshd_util.create_user(role.removeprefix("fm-"))
        for role, shell in SHELLS.items():
            name = role.removeprefix("fm-")
            USERS[role] = sshd_util.create_user(name, shell=shell, home=str(home))
        blocks = "".join(
            f"Match User {USERS[role]}\n    ForceCommand {cmd}\n" for role, cmd in FAULTS.items()
        )
        yield sshd_factory(extra_config=blocks)
    finally:
        for user in USERS.values():
            sshd_util.remove_user(user)
        USERS.clear()
        shutil.rmtree(home, ignore_errors=True)


def _host(
    server: sshd_util.Sshd, role: str, *, name: str | None = None, key_file: Path | None = None
) -> HostSpec:
    """A host that logs in as `role` (a FAULTS or SHELLS role, or root), named after it."""
    return HostSpec(
        name=name or role,
        address=server.host,
        port=server.port,
        user=USERS.get(role, role),
        key_file=str(key_file or server.client_key),
    )


def _probe(_: HostSpec) -> ProbeOptions:
    return ProbeOptions(interval_s=0.2, hypervisor="none")


async def _silent_listener() -> asyncio.Server:
    """Accepts TCP connections and never sends a byte (not even an SSH banner)."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up
        writer.close()

    return await asyncio.start_server(hold, "127.0.0.1", 0)


def test_fault_matrix(fault_sshd: sshd_util.Sshd, sshd: sshd_util.Sshd, tmp_path: Path) -> None:
    wrong = sshd_util.keygen(tmp_path / "wrong_host_key").with_suffix(".pub").read_text()
    kh = tmp_path / "known_hosts"
    kh.write_text(fault_sshd.known_hosts.read_text() + f"[127.0.0.1]:{sshd.port} {wrong}")
    stranger = sshd_util.keygen(tmp_path / "stranger")
    refused_port = sshd_util.free_port("127.0.0.3")

    async def run() -> tuple[list[RawResult], float, int]:
        server = await _silent_listener()
        silent_port = server.sockets[0].getsockname()[1]
        hosts = [
            _host(fault_sshd, "root"),
            *(_host(fault_sshd, role) for role in (*FAULTS, *SHELLS)),
            HostSpec(name="silent", address="127.0.0.1", port=silent_port),
            HostSpec(name="refused", address="127.0.0.3", port=refused_port),
            _host(fault_sshd, "root", name="stranger", key_file=stranger),
            _host(sshd, "root", name="changed-key"),
        ]
        opts = CollectOptions(
            interval_s=0.2,
            timeout_s=DEADLINE_S,
            connect_timeout_s=CONNECT_TIMEOUT_S,
            known_hosts=str(kh),
        )
        started = time.monotonic()
        try:
            results = await collect(hosts, opts, _probe)
        finally:
            server.close()
            await server.wait_closed()
        return results, time.monotonic() - started, silent_port

    results, wall_s, silent_port = asyncio.run(run())
    by = {r.host.name: r for r in results}
    port = fault_sshd.port

    assert by["root"].status is Status.OK, by["root"].reason
    split_output(by["root"].stdout, by["root"].nonce)

    got = {name: (r.status, r.reason) for name, r in by.items() if name != "root"}
    assert got == {
        "fm-hang": (
            Status.TIMEOUT,
            "deadline: probe gave no complete result within 4 s (0 bytes of output so far)",
        ),
        **FAST_FAILURES,
        "fm-garbage": (Status.OK, None),
        "fm-echo": (Status.OK, None),
        "fm-flood": (
            Status.COMMAND_FAILED,
            "probe output exceeded the 16 MiB cap; stopped reading and closed the channel",
        ),
        "silent": (
            Status.TIMEOUT,
            f"connect timeout: no SSH banner from 127.0.0.1:{silent_port} within 2 s",
        ),
        "refused": (Status.UNREACHABLE, f"connect to 127.0.0.3:{refused_port} refused"),
        "stranger": (
            Status.AUTH_FAILED,
            f"permission denied for user root at 127.0.0.1:{port} (publickey)",
        ),
        "changed-key": (Status.HOSTKEY_MISMATCH, sshd_util.changed_key_reason(sshd.port, kh)),
    }
    assert by["fm-fail"].exit_status == 3
    assert by["fm-fail"].stderr == "boom\nsecond line\n"
    # Random bytes come back as data; the splitter turns them into a parse error.
    garbage = by["fm-garbage"]
    assert len(garbage.stdout) > 50_000
    with pytest.raises(ProbeParseError, match="no probe sections in the output") as err:
        split_output(garbage.stdout, garbage.nonce)
    assert err.value.section == "markers"
    # A forced command's own words, with the likely cause (was: "no probe sections" alone).
    echo = by["fm-echo"]
    with pytest.raises(ProbeParseError) as err:
        split_output(echo.stdout, echo.nonce)
    assert str(err.value) == (
        "section markers: no probe sections in the output; the host printed: 'This account "
        "is restricted to file transfers' (a ForceCommand or an authorized_keys command= "
        "restriction?)"
    )
    # Within the deadline plus a few seconds, although one host sleeps for 600 s.
    assert wall_s < DEADLINE_S + 3.0
    assert by["fm-hang"].elapsed_s is not None
    assert DEADLINE_S <= by["fm-hang"].elapsed_s < DEADLINE_S + 1.0


@pytest.fixture
def write_after_close(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Hold every probe channel until the remote side has closed it, then let fleetmon write
    the script: the race a fast-failing host wins under load, forced every time. The list
    says, per channel, whether it was closed before the write."""
    real = asyncssh.SSHClientConnection.create_process
    closed_first: list[bool] = []

    async def late(self: asyncssh.SSHClientConnection, *args: Any, **kw: Any) -> Any:
        proc = await real(self, *args, **kw)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.channel.wait_closed(), 10)
        closed_first.append(proc.channel.is_closing())
        return proc

    monkeypatch.setattr(asyncssh.SSHClientConnection, "create_process", late)
    return closed_first


def _fast_failures(server: sshd_util.Sshd, copies: int) -> dict[str, set[tuple[Status, str]]]:
    hosts = [
        _host(server, role, name=f"{role}-{i}") for role in FAST_FAILURES for i in range(copies)
    ]
    opts = CollectOptions(
        interval_s=0.2, timeout_s=30, connect_timeout_s=20, known_hosts=str(server.known_hosts)
    )
    results = asyncio.run(collect(hosts, opts, _probe))
    got: dict[str, set[tuple[Status, str]]] = {}
    for r in results:
        assert r.reason is not None
        got.setdefault(r.host.name.rsplit("-", 1)[0], set()).add((r.status, r.reason))
    return got


def test_a_host_closed_before_the_probe_is_sent_reports_its_own_reason(
    fault_sshd: sshd_util.Sshd, write_after_close: list[bool]
) -> None:
    # Not "unexpected error: BrokenPipeError: Channel not open for sending" (issue 11).
    got = _fast_failures(fault_sshd, copies=3)
    assert write_after_close == [True] * 3 * len(FAST_FAILURES)
    assert got == {role: {expected} for role, expected in FAST_FAILURES.items()}


def test_fast_failing_hosts_get_their_reason_every_time(fault_sshd: sshd_util.Sshd) -> None:
    # The same without holding the write back: twenty of each at once, racing for real.
    got = _fast_failures(fault_sshd, copies=20)
    assert got == {role: {expected} for role, expected in FAST_FAILURES.items()}


def test_flood_keeps_memory_bounded(fault_sshd: sshd_util.Sshd) -> None:
    before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    hosts = [_host(fault_sshd, "fm-flood") for _ in range(3)]
    opts = CollectOptions(known_hosts=str(fault_sshd.known_hosts), timeout_s=30)
    results = asyncio.run(collect(hosts, opts, _probe))
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_kib) / 1024
    assert {r.status for r in results} == {Status.COMMAND_FAILED}
    # Three floods of 300 MB each, read with a 16 MiB cap: at most a few caps are held.
    assert grown_mib < 100, f"peak RSS grew by {grown_mib:.0f} MiB"
    small = CollectOptions(known_hosts=str(fault_sshd.known_hosts), output_cap_bytes=1000)
    [r] = asyncio.run(collect(hosts[:1], small, _probe))
    assert r.reason == (
        "probe output exceeded the 1000 bytes cap; stopped reading and closed the channel"
    )


def _established_to(port: int) -> int:
    """How many ESTABLISHED TCP connections of this machine have remote port `port`."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "01" and int(fields[2].split(":")[1], 16) == port:
            count += 1
    return count


def test_cancel_closes_connections_and_kills_local_probes(fault_sshd: sshd_util.Sshd) -> None:
    interval = "29.713"  # the local probe's `sleep 29.713`, looked for under this process only
    sleep_argv = ("sleep", interval)

    def probe(h: HostSpec) -> ProbeOptions:
        return ProbeOptions(
            interval_s=float(interval) if h.connection == "local" else 0.2, hypervisor="none"
        )

    hosts = [_host(fault_sshd, "fm-hang") for _ in range(5)]
    hosts.append(HostSpec(name="local", address="localhost", connection="local"))
    opts = CollectOptions(known_hosts=str(fault_sshd.known_hosts), timeout_s=600)

    async def run() -> tuple[float, list[int]]:
        task = asyncio.create_task(collect(hosts, opts, probe))
        deadline = time.monotonic() + 30  # generous: the machine may be busy
        sleepers: list[int] = []
        while time.monotonic() < deadline:
            sleepers = proctree.descendants_running(os.getpid(), sleep_argv)
            if _established_to(fault_sshd.port) >= 5 and sleepers:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        assert _established_to(fault_sshd.port) >= 5
        assert sleepers, "the local probe never reached its sleep"
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - started, sleepers

    cancel_s, sleepers = asyncio.run(run())
    assert cancel_s < 2.0
    # Polled for up to 5 s, not read once after 0.3 s: at load 16 on two cores one
    # connection was once still counted then (a connection never closed still fails).
    deadline = time.monotonic() + 5
    while _established_to(fault_sshd.port) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _established_to(fault_sshd.port) == 0
    assert proctree.still_running(sleepers, sleep_argv) == []


def test_no_secret_reaches_reasons_or_debug_logs(
    sshd: sshd_util.Sshd,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    passphrase = "fm-Pass-9f3c2e71"
    locked = sshd_util.keygen(tmp_path / "locked", passphrase=passphrase)
    stranger = sshd_util.keygen(tmp_path / "stranger")
    broken = tmp_path / "broken"
    # A private key with its last line cut: unparseable, and its body must not be echoed.
    broken.write_text("".join(stranger.read_text().splitlines(keepends=True)[:-1]))
    keys = [sshd.client_key, locked, stranger, broken]
    hosts = [
        HostSpec(
            name=f"k{i}",
            address=sshd.host,
            port=sshd.port,
            user="root",
            key_file=str(k),
        )
        for i, k in enumerate(keys)
    ]
    opts = CollectOptions(interval_s=0.2, known_hosts=str(sshd.known_hosts))
    asyncssh.set_debug_level(2)
    try:
        with caplog.at_level(logging.DEBUG):
            results = asyncio.run(collect(hosts, opts, _probe))
    finally:
        asyncssh.set_debug_level(1)
    assert [r.status for r in results] == [Status.OK] + [Status.AUTH_FAILED] * 3
    text = caplog.text + "\n".join(f"{r.reason} {r.stderr}" for r in results)
    assert "permission denied for user root" in text  # the haystack is the real one
    secrets = [passphrase]
    for key in keys:
        body = [ln for ln in key.read_text().splitlines() if ln and not ln.startswith("-----")]
        secrets += body
    for secret in secrets:
        assert secret not in text


def test_probe_runs_at_lowest_priority_and_reports_its_cpu_time(sshd: sshd_util.Sshd) -> None:
    assert re.search(r"\bnice -n 19 sh -s$", REMOTE_COMMAND)

    async def niceness() -> str:
        async with asyncssh.connect(
            sshd.host,
            sshd.port,
            username="root",
            client_keys=[str(sshd.client_key)],
            known_hosts=str(sshd.known_hosts),
        ) as conn:
            # Field 19 of /proc/self/stat is the nice value of the reading process.
            done = await conn.run(REMOTE_COMMAND, input="cut -d' ' -f19 /proc/self/stat\n")
            return str(done.stdout)

    assert asyncio.run(niceness()) == "19\n"
    opts = CollectOptions(interval_s=0.2, known_hosts=str(sshd.known_hosts))
    spec = HostSpec("me", sshd.host, sshd.port, "root", str(sshd.client_key))
    [r] = asyncio.run(collect([spec], opts, _probe))
    times = split_output(r.stdout, r.nonce).text(0, "times")
    assert times is not None
    # POSIX `times`: shell user/sys, then children user/sys, as "NmS.SSSs".
    assert re.fullmatch(r"(\d+m\d+\.\d+s \d+m\d+\.\d+s\n){2}", times)
