"""A login that fails, and the reason saying why and who ended it.

Refused logins, as a real OpenSSH sshd refuses them: what the server asked for (a key, a
password, keyboard-interactive, a password after the key), not only "(publickey)" whatever
the server wanted; each server policy is a test user of this session with its own
`Match User` block. Logins cut short: a real sshd past MaxStartups, plain listeners that
close, reset or send a bad greeting, an in-process asyncssh server with no common key
exchange algorithm.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncssh
import pytest
import sshd_util

from fleetmon.collect.probe import ProbeOptions
from fleetmon.collect.runner import CollectOptions, collect
from fleetmon.model import HostSpec, RawResult, Status

#: Role -> its sshd_config lines (the base config allows keys only).
POLICIES = {
    "pw": "AuthenticationMethods password\n PasswordAuthentication yes\n PubkeyAuthentication no",
    "kbd": (
        "AuthenticationMethods keyboard-interactive\n KbdInteractiveAuthentication yes\n"
        " PubkeyAuthentication no"
    ),
    "twofa": "AuthenticationMethods publickey,password\n PasswordAuthentication yes",
    "either": "PasswordAuthentication yes\n KbdInteractiveAuthentication yes",
}
USERS: dict[str, str] = {}


@pytest.fixture(scope="module")
def login_sshd(sshd_factory: Callable[..., sshd_util.Sshd]) -> Iterator[sshd_util.Sshd]:
    """An sshd whose users (one per POLICIES role, made for this session) log in as it says."""
    try:
        for role in POLICIES:
            USERS[role] = sshd_util.create_user(role)
        blocks = "".join(f"Match User {USERS[r]}\n {lines}\n" for r, lines in POLICIES.items())
        yield sshd_factory(extra_config=blocks)
    finally:
        for user in USERS.values():
            sshd_util.remove_user(user)
        USERS.clear()


def _run(server: sshd_util.Sshd, hosts: list[HostSpec]) -> list[RawResult]:
    opts = CollectOptions(interval_s=0.2, connect_timeout_s=20, known_hosts=str(server.known_hosts))
    probe = ProbeOptions(interval_s=0.2, hypervisor="none")
    return asyncio.run(collect(hosts, opts, lambda _: probe))


def _host(server: sshd_util.Sshd, role: str, key: Path | None = None, **vars: str) -> HostSpec:
    return HostSpec(
        role, server.host, server.port, USERS[role], str(key or server.client_key), vars=vars
    )


@pytest.mark.sshd
def test_the_reason_says_what_the_server_asked_for(
    login_sshd: sshd_util.Sshd, tmp_path: Path
) -> None:
    stranger = sshd_util.keygen(tmp_path / "stranger")
    hosts = [
        _host(login_sshd, "pw"),
        _host(login_sshd, "kbd"),
        _host(login_sshd, "twofa"),
        _host(login_sshd, "either", key=stranger),
        _host(login_sshd, "either"),
    ]
    results = _run(login_sshd, hosts)
    at = f"at 127.0.0.1:{login_sshd.port}"
    assert [(r.status, r.reason) for r in results] == [
        (
            Status.AUTH_FAILED,
            f"permission denied for user {USERS['pw']} {at}: server accepts only password; "
            "fleetmon logs in with keys only",
        ),
        (
            Status.AUTH_FAILED,
            f"permission denied for user {USERS['kbd']} {at}: server accepts only "
            "keyboard-interactive; fleetmon logs in with keys only",
        ),
        (
            Status.AUTH_FAILED,
            f"permission denied for user {USERS['twofa']} {at}: key accepted, server then "
            "requires password; fleetmon logs in with keys only",
        ),
        (
            Status.AUTH_FAILED,
            f"permission denied for user {USERS['either']} {at} (publickey); the server also "
            "accepts password, keyboard-interactive: fleetmon logs in with keys only",
        ),
        (Status.OK, None),
    ]
    log = login_sshd.log_text()
    assert f"Partial publickey for {USERS['twofa']}" in log  # sshd's side of the 2FA case
    assert f"Failed password for {USERS['pw']}" not in log  # no password was ever sent


@pytest.mark.sshd
def test_a_password_variable_is_named_as_unused(
    login_sshd: sshd_util.Sshd, sshd: sshd_util.Sshd, tmp_path: Path
) -> None:
    secret = "fm-Secret-0c1d"
    [pw] = _run(login_sshd, [_host(login_sshd, "pw", ansible_password=secret)])
    assert pw.reason == (
        f"permission denied for user {USERS['pw']} at 127.0.0.1:{login_sshd.port}: server "
        "accepts only password; fleetmon logs in with keys only (ansible_password is not used)"
    )
    # A keys-only server that refuses the key: the variable is named too, never its value.
    stranger = sshd_util.keygen(tmp_path / "stranger")
    spec = HostSpec(
        "k", sshd.host, sshd.port, "root", str(stranger), vars={"ansible_ssh_pass": secret}
    )
    [key] = _run(sshd, [spec])
    assert key.reason == (
        f"permission denied for user root at 127.0.0.1:{sshd.port} (publickey); "
        "fleetmon logs in with keys only (ansible_ssh_pass is not used)"
    )


# --- a login cut short: before the banner, a bad greeting, no common algorithm -------------


def _hold_a_startup(server: sshd_util.Sshd, timeout_s: float = 20.0) -> socket.socket:
    """A connection that got sshd's banner and stays unauthenticated: with `MaxStartups 1`
    sshd drops every other new one. Retried while the readiness probe's child still counts."""
    deadline = time.monotonic() + timeout_s
    while True:
        s = socket.create_connection((server.host, server.port), timeout=5)
        with contextlib.suppress(OSError):
            if s.recv(64).startswith(b"SSH-2.0-"):
                return s
        s.close()
        assert time.monotonic() < deadline, server.log_text()
        time.sleep(0.1)


@pytest.mark.sshd
def test_a_host_that_drops_the_connection_before_its_banner_says_so(
    sshd_factory: Callable[..., sshd_util.Sshd],
) -> None:
    server = sshd_factory(max_startups="1")
    held = _hold_a_startup(server)
    try:
        [r] = _run(
            server, [HostSpec("h", server.host, server.port, "root", str(server.client_key))]
        )
    finally:
        held.close()
    assert (r.status, r.reason) == (
        Status.UNREACHABLE,
        f"127.0.0.1:{server.port} closed the connection before its SSH banner "
        "(sshd MaxStartups throttling, TCP wrappers or a ban?)",
    )
    assert "past MaxStartups" in server.log_text()


async def _greeter(handle: Callable[[socket.socket], None]) -> asyncio.Server:
    """A TCP listener on 127.0.0.1 that hands each accepted socket to `handle` (blocking calls
    run in a thread: the event loop is the client's)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket").dup()
        writer.transport.abort()  # the duplicate is the only one left
        await asyncio.to_thread(handle, sock)

    return await asyncio.start_server(serve, "127.0.0.1", 0)


def _close_now(sock: socket.socket) -> None:
    # The client's version line read first: nothing is left unread, so close() sends a FIN
    # (an end of file for the client), not a reset.
    sock.settimeout(10)
    with contextlib.suppress(OSError):
        sock.recv(256)
    sock.close()


def _reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _long_line(sock: socket.socket) -> None:
    # More than asyncssh's 8192-byte limit for one line before the version line.
    with contextlib.suppress(OSError):
        sock.sendall(b"x" * 20000)
        sock.settimeout(10)
        sock.recv(65536)  # until the client gives up
    sock.close()


def _ssh1(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.sendall(b"SSH-1.5-OpenSSH_2.1\r\n")
        sock.settimeout(10)
        sock.recv(65536)
    sock.close()


def test_who_ended_a_login_before_the_banner(tmp_path: Path) -> None:
    kh = tmp_path / "known_hosts"
    kh.write_text("")

    async def run() -> list[tuple[str, RawResult]]:
        out = []
        for handle in (_close_now, _reset, _long_line, _ssh1):
            server = await _greeter(handle)
            port = server.sockets[0].getsockname()[1]
            opts = CollectOptions(interval_s=0.2, connect_timeout_s=20, known_hosts=str(kh))
            try:
                [r] = await collect(
                    [HostSpec(handle.__name__, "127.0.0.1", port, "root")],
                    opts,
                    lambda _: ProbeOptions(interval_s=0.2, hypervisor="none"),
                )
            finally:
                server.close()
                await server.wait_closed()
            out.append((f"127.0.0.1:{port}", r))
        return out

    (eof_at, eof), (rst_at, rst), (long_at, long), (v1_at, v1) = asyncio.run(run())
    dropped = "closed the connection before its SSH banner (sshd MaxStartups throttling, TCP "
    assert (eof.status, eof.reason) == (
        Status.UNREACHABLE,
        f"{eof_at} {dropped}wrappers or a ban?)",
    )
    assert (rst.status, rst.reason) == (
        Status.UNREACHABLE,
        f"{rst_at} {dropped}wrappers or a ban?)",
    )
    assert (long.status, long.reason) == (
        Status.UNREACHABLE,
        f"{long_at} sent an invalid SSH greeting: Banner line too long; "
        "fleetmon closed the connection",
    )
    assert (v1.status, v1.reason) == (
        Status.UNREACHABLE,
        f"{v1_at} sent an invalid SSH greeting: Unsupported SSH version; "
        "fleetmon closed the connection",
    )


def test_no_common_key_exchange_algorithm_names_what_the_host_offers(tmp_path: Path) -> None:
    kh = tmp_path / "known_hosts"
    kh.write_text("")

    async def run() -> tuple[int, RawResult]:
        # An old device's sshd: only diffie-hellman-group1-sha1, which asyncssh no longer
        # offers by default.
        server = await asyncssh.create_server(
            asyncssh.SSHServer,
            "127.0.0.1",
            0,
            server_host_keys=[asyncssh.generate_private_key("ssh-ed25519")],
            kex_algs=["diffie-hellman-group1-sha1"],
        )
        port: int = server.sockets[0].getsockname()[1]
        opts = CollectOptions(interval_s=0.2, connect_timeout_s=20, known_hosts=str(kh))
        try:
            [r] = await collect(
                [HostSpec("old", "127.0.0.1", port, "root")],
                opts,
                lambda _: ProbeOptions(interval_s=0.2, hypervisor="none"),
            )
        finally:
            server.close()
            await server.wait_closed()
        return port, r

    port, r = asyncio.run(run())
    assert (r.status, r.reason) == (
        Status.UNREACHABLE,
        f"no common key exchange algorithm with 127.0.0.1:{port} (it offers "
        "diffie-hellman-group1-sha1); fleetmon closed the connection",
    )
