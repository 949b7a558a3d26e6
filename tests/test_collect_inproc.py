"""collect() against an in-process asyncssh server: SSH-contract cases OpenSSH cannot play.

The user name picks the behaviour: a refused session, a session that never opens, a probe
killed by a signal, a channel closed without an exit status.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from fleetmon.collect.probe import ProbeOptions
from fleetmon.collect.runner import CollectOptions, collect
from fleetmon.model import HostSpec, RawResult, Status


class _Server(asyncssh.SSHServer):
    def __init__(self) -> None:
        self.conn: Any = None
        self.user = ""

    def connection_made(self, conn: Any) -> None:
        self.conn = conn

    def begin_auth(self, username: str) -> bool:
        self.user = username
        return False  # no authentication needed: the behaviour is what is under test

    def session_requested(self) -> Any:
        if self.user == "refuse":
            return False
        if self.user == "stall":

            async def never() -> Any:
                await asyncio.sleep(3600)

            return self.conn.create_server_channel(), never()
        return self._handle

    async def _handle(self, stdin: Any, stdout: Any, stderr: Any) -> None:
        if self.user == "slam":  # closes at once, reads nothing, no exit status
            stdout.channel.close()
            return
        await stdin.read()  # the whole script, up to EOF
        if self.user == "signal":
            stderr.write(b"killed\n")
            stdout.channel.exit_with_signal("KILL")
        else:  # "vanish": close without an exit status
            stdout.channel.close()


async def _run(users: list[str], tmp_path: Path) -> tuple[list[RawResult], int]:
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    server = await asyncssh.create_server(
        _Server, "127.0.0.1", 0, server_host_keys=[host_key], encoding=None
    )
    port = server.sockets[0].getsockname()[1]
    kh = tmp_path / "known_hosts"
    kh.write_text(f"[127.0.0.1]:{port} {host_key.export_public_key().decode()}")
    client_key = tmp_path / "id"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(client_key))
    client_key.chmod(0o600)  # as ssh-keygen makes it: ssh refuses a key others may read
    hosts = [HostSpec(u, "127.0.0.1", port, u, str(client_key)) for u in users]
    opts = CollectOptions(interval_s=0.1, timeout_s=2.0, known_hosts=str(kh))
    try:
        results = await collect(hosts, opts, lambda _: ProbeOptions(interval_s=0.1))
    finally:
        server.close()
        await server.wait_closed()
    return results, port


def test_session_level_failures_are_reasons(tmp_path: Path) -> None:
    results, port = asyncio.run(_run(["refuse", "stall", "signal", "vanish"], tmp_path))
    assert [(r.status, r.reason) for r in results] == [
        (Status.COMMAND_FAILED, "cannot open a session channel: Session refused"),
        (
            Status.TIMEOUT,
            f"deadline: logged in to 127.0.0.1:{port} but no session opened within 2 s",
        ),
        (Status.COMMAND_FAILED, "probe killed by signal KILL: killed"),
        (Status.COMMAND_FAILED, "probe ended without an exit status with no error output"),
    ]
    assert results[2].exit_status is None


def test_a_session_closed_before_the_probe_is_sent_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The write is held until the server has closed the channel: the race lost every time.
    real = asyncssh.SSHClientConnection.create_process

    async def late(self: asyncssh.SSHClientConnection, *args: Any, **kw: Any) -> Any:
        proc = await real(self, *args, **kw)
        await asyncio.wait_for(proc.channel.wait_closed(), 10)
        return proc

    monkeypatch.setattr(asyncssh.SSHClientConnection, "create_process", late)
    [r], _ = asyncio.run(_run(["slam"], tmp_path))
    assert (r.status, r.reason) == (
        Status.COMMAND_FAILED,
        "probe ended without an exit status (the session closed before the probe was sent) "
        "with no error output",
    )
