"""A refused SSH login, as a real OpenSSH sshd refuses it: the reason says what the server
asked for (a key, a password, keyboard-interactive, a password after the key), not only
"(publickey)" whatever the server wanted.

Each server policy is a test user of this session with its own `Match User` block.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sshd_util

from fleetmon.collect.probe import ProbeOptions
from fleetmon.collect.runner import CollectOptions, collect
from fleetmon.model import HostSpec, RawResult, Status

pytestmark = pytest.mark.sshd

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
