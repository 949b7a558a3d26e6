"""collect() against a real OpenSSH sshd on 127.0.0.1 and the local connection."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncssh
import pytest
import sshd_util
import yaml

from fleetmon.collect.base import Outcome
from fleetmon.collect.local import run_local
from fleetmon.collect.probe import ProbeOptions
from fleetmon.collect.runner import CollectOptions, collect, usable_forks
from fleetmon.collect.sshcontext import encryption_algs
from fleetmon.model import HostSpec, RawResult, Status
from fleetmon.sources.sections import SAMPLE_SECTIONS, split_output

INTERVAL_S = 0.5


def _probe(_: HostSpec) -> ProbeOptions:
    return ProbeOptions(interval_s=INTERVAL_S, hypervisor="none")


def _spec(server: sshd_util.Sshd, name: str, **kw: object) -> HostSpec:
    fields: dict[str, object] = {
        "address": server.host,
        "port": server.port,
        "user": server.user,
        "key_file": str(server.client_key),
    }
    fields.update(kw)
    return HostSpec(name=name, **fields)  # type: ignore[arg-type]


def _run(hosts: list[HostSpec], **kw: object) -> list[RawResult]:
    opts = CollectOptions(interval_s=INTERVAL_S, **kw)  # type: ignore[arg-type]
    return asyncio.run(collect(hosts, opts, _probe))


def _uptime_s(stdout: str, nonce: str, sample: int) -> float:
    text = split_output(stdout, nonce).text(sample, "uptime")
    assert text is not None
    return float(text.split()[0])


def _assert_real_probe(r: RawResult) -> None:
    """The probe ran for real on this machine: every sample section, a plausible interval."""
    assert r.status is Status.OK, r.reason
    assert r.exit_status == 0
    out = split_output(r.stdout, r.nonce)
    for sample in (1, 2):
        for name, _cmd in SAMPLE_SECTIONS:
            assert out.get(sample, name) is not None, (sample, name)
        for name in ("stat", "meminfo", "loadavg", "net_dev", "uptime", "boot_id"):
            assert out.text(sample, name), (sample, name)
    assert out.text(1, "boot_id") == out.text(2, "boot_id")
    assert out.text(0, "df_k") is not None
    assert out.text(0, "times") is not None
    measured = _uptime_s(r.stdout, r.nonce, 2) - _uptime_s(r.stdout, r.nonce, 1)
    # The probe runs at nice 19: on a busy machine its samples may come seconds apart, but
    # never further apart than the whole collection of the host took (+ uptime's 0.01 s).
    assert r.elapsed_s is not None
    assert INTERVAL_S - 0.02 <= measured <= r.elapsed_s + 0.01


@pytest.mark.sshd
def test_twenty_two_hosts_and_an_unreachable_one(sshd: sshd_util.Sshd) -> None:
    closed = sshd_util.free_port("127.0.0.2")
    hosts = [_spec(sshd, f"h{i:02d}") for i in range(1, 23)]
    hosts.insert(7, HostSpec(name="down", address="127.0.0.2", port=closed))
    done: list[str] = []
    opts = CollectOptions(interval_s=INTERVAL_S, known_hosts=str(sshd.known_hosts))
    results = asyncio.run(collect(hosts, opts, _probe, on_done=lambda r: done.append(r.host.name)))
    assert [r.host.name for r in results] == [h.name for h in hosts]
    assert sorted(done) == sorted(h.name for h in hosts)
    down = results[7]
    assert down.status is Status.UNREACHABLE
    assert down.reason == f"connect to 127.0.0.2:{closed} refused"
    assert down.stdout == ""
    for r in results[:7] + results[8:]:
        _assert_real_probe(r)
    # Concurrent, not one after another: in series the 22 probes (each at least 0.5 s long)
    # would read this machine's uptime at least 10.5 s apart. Not a wall-clock bound, which
    # a busy machine stretches.
    ups = [_uptime_s(r.stdout, r.nonce, 2) for r in results[:7] + results[8:]]
    assert max(ups) - min(ups) < 21 * INTERVAL_S


@pytest.mark.sshd
def test_inventory_helper_points_at_the_sshd(sshd: sshd_util.Sshd, tmp_path: Path) -> None:
    path = sshd.inventory(20, tmp_path, vars={"fleetmon_interval": 1})
    doc = yaml.safe_load(path.read_text())
    hosts = doc["all"]["hosts"]
    assert list(hosts)[:2] == ["h01", "h02"]
    assert len(hosts) == 20
    assert hosts["h20"] == {
        "ansible_host": "127.0.0.1",
        "ansible_port": sshd.port,
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(sshd.client_key),
    }
    assert doc["all"]["vars"] == {"fleetmon_interval": 1}


def test_local_connection_runs_the_same_probe() -> None:
    [r] = _run([HostSpec(name="me", address="localhost", connection="local")])
    _assert_real_probe(r)
    assert r.elapsed_s is not None
    assert r.elapsed_s >= INTERVAL_S


@pytest.mark.parametrize("exited_before_write", [False, True])
def test_local_probe_that_exits_at_once_reports_its_own_reason(
    monkeypatch: pytest.MonkeyPatch, exited_before_write: bool
) -> None:
    """sh closes its stdin and fails before fleetmon has written the script (issue 11): the
    failed write is not the reason, the exit status and stderr are."""
    monkeypatch.setattr("fleetmon.collect.local.REMOTE_COMMAND", "exec 0<&-; echo boom >&2; exit 3")
    if exited_before_write:  # the race lost every time: write only once sh has gone
        real = asyncio.create_subprocess_exec

        async def late(*args: Any, **kw: Any) -> asyncio.subprocess.Process:
            proc = await real(*args, **kw)
            await proc.wait()  # its output waits in the pipes' buffers
            return proc

        monkeypatch.setattr(asyncio, "create_subprocess_exec", late)
    # Twenty at once, each script far beyond a pipe's 64 KiB: every write meets EPIPE.
    outcomes = asyncio.run(_many_local(20, "x" * (1 << 20)))
    assert {(o.stdout, o.stderr, o.exit_status, o.exit_note) for o in outcomes} == {
        (b"", b"boom\n", 3, None)
    }
    [r] = _run([HostSpec(name="me", address="localhost", connection="local")])
    assert (r.status, r.reason, r.exit_status) == (Status.COMMAND_FAILED, "probe exited 3: boom", 3)


async def _many_local(n: int, script: str) -> list[Outcome]:
    return list(await asyncio.gather(*(run_local(script, 1 << 20) for _ in range(n))))


def test_a_user_name_ssh_cannot_carry_is_a_reason() -> None:
    # Not "unexpected error: SASLPrepError" (issue 16). The inventory refuses control
    # characters at load time; what else RFC 4013 prohibits is caught per host.
    [r] = _run([HostSpec(name="bidi", address="127.0.0.1", port=1, user="ro\u202eot")])
    assert (r.status, r.reason) == (
        Status.AUTH_FAILED,
        "user name 'ro\\u202eot' cannot be used over SSH: Prohibited character: '\\u202e'",
    )


@pytest.mark.sshd
def test_changed_host_key_is_refused_before_any_command(
    sshd_factory: object, tmp_path: Path
) -> None:
    server = sshd_factory()  # type: ignore[operator]
    other = sshd_util.keygen(tmp_path / "other_host_key")
    kh = tmp_path / "known_hosts"
    kh.write_text(f"[127.0.0.1]:{server.port} {other.with_suffix('.pub').read_text()}")
    [r] = _run([_spec(server, "x")], known_hosts=str(kh))
    assert r.status is Status.HOSTKEY_MISMATCH, r.reason
    assert r.reason == sshd_util.changed_key_reason(server.port, kh)
    # The key exchange failed, so the client never authenticated nor opened a session.
    deadline = time.monotonic() + 5
    while "[preauth]" not in server.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    log = server.log_text()
    assert "Host key is not trusted for host 127.0.0.1 [preauth]" in log
    assert "Accepted publickey" not in log
    assert "Starting session" not in log


@pytest.mark.sshd
def test_unknown_host_refused_then_accepted_with_accept_new(
    sshd: sshd_util.Sshd, tmp_path: Path
) -> None:
    kh = tmp_path / "known_hosts"
    kh.write_text("")
    hosts = [_spec(sshd, "a"), _spec(sshd, "b")]
    refused = _run(hosts, known_hosts=str(kh))
    assert [r.status for r in refused] == [Status.HOSTKEY_MISMATCH] * 2
    assert refused[0].reason == (
        "unknown host, not a changed key: "
        f"no host key for [127.0.0.1]:{sshd.port} in {kh} (use --accept-new-host-keys)"
    )
    accepted = _run(hosts, known_hosts=str(kh), accept_new_host_keys=True)
    assert [r.status for r in accepted] == [Status.OK] * 2
    # Added once (not once per host), in OpenSSH's [host]:port form, with the real key.
    key_type, key_b64 = sshd.host_key_pub.split()[:2]
    lines = kh.read_text().splitlines()
    assert len(lines) == 1
    assert lines[0].split()[:3] == [f"[127.0.0.1]:{sshd.port}", key_type, key_b64]
    again = _run(hosts, known_hosts=str(kh))
    assert [r.status for r in again] == [Status.OK] * 2


@pytest.mark.sshd
def test_accept_new_still_refuses_a_changed_key(sshd: sshd_util.Sshd, tmp_path: Path) -> None:
    other = sshd_util.keygen(tmp_path / "other_host_key")
    kh = tmp_path / "known_hosts"
    kh.write_text(f"[127.0.0.1]:{sshd.port} {other.with_suffix('.pub').read_text()}")
    before = kh.read_text()
    [r] = _run([_spec(sshd, "x")], known_hosts=str(kh), accept_new_host_keys=True)
    assert r.status is Status.HOSTKEY_MISMATCH
    assert kh.read_text() == before


@pytest.mark.sshd
def test_host_key_checking_off_connects_despite_a_wrong_key(
    sshd: sshd_util.Sshd, tmp_path: Path
) -> None:
    other = sshd_util.keygen(tmp_path / "other_host_key")
    kh = tmp_path / "known_hosts"
    kh.write_text(f"[127.0.0.1]:{sshd.port} {other.with_suffix('.pub').read_text()}")
    [r] = _run([_spec(sshd, "x", host_key_checking=False)], known_hosts=str(kh))
    assert r.status is Status.OK, r.reason


@pytest.mark.sshd
def test_refused_key_is_auth_failed(sshd: sshd_util.Sshd, tmp_path: Path) -> None:
    stranger = sshd_util.keygen(tmp_path / "stranger")
    [r] = _run([_spec(sshd, "x", key_file=str(stranger))], known_hosts=str(sshd.known_hosts))
    assert r.status is Status.AUTH_FAILED
    assert r.reason == f"permission denied for user root at 127.0.0.1:{sshd.port} (publickey)"


@pytest.mark.sshd
def test_missing_and_encrypted_key_files_are_reasons(
    sshd: sshd_util.Sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    locked = sshd_util.keygen(tmp_path / "locked", passphrase="correct horse battery")
    garbage = tmp_path / "garbage"
    garbage.write_text("not a key\n")
    missing = tmp_path / "missing"
    hosts = [
        _spec(sshd, "missing", key_file=str(missing)),
        _spec(sshd, "locked", key_file=str(locked)),
        _spec(sshd, "garbage", key_file=str(garbage)),
        _spec(sshd, "good"),
    ]
    results = _run(hosts, known_hosts=str(sshd.known_hosts))
    assert [(r.status, r.reason) for r in results[:3]] == [
        (Status.AUTH_FAILED, f"cannot read key file {missing}: No such file or directory"),
        (
            Status.AUTH_FAILED,
            f"key file {locked} is encrypted and no ssh-agent is running to use it",
        ),
        (Status.AUTH_FAILED, f"key file {garbage} is not a usable private key"),
    ]
    assert results[3].status is Status.OK


@pytest.mark.sshd
def test_a_key_file_open_to_others_is_refused_and_a_user_certificate_beside_it_used(
    sshd_factory: object, tmp_path: Path
) -> None:
    """ssh ignores a private key others may read ("UNPROTECTED PRIVATE KEY FILE!"): it was
    used without a word. And ssh takes KEY-cert.pub beside -i KEY: it was dropped, and a
    server trusting only its CA refused the login."""
    ca = sshd_util.keygen(tmp_path / "ca")
    server = sshd_factory(  # type: ignore[operator]
        extra_config=f"TrustedUserCAKeys {ca.with_suffix('.pub')}\n"
    )
    open_key = tmp_path / "open_key"
    open_key.write_bytes(server.client_key.read_bytes())
    open_key.chmod(0o644)
    user = sshd_util.keygen(tmp_path / "user")  # not in authorized_keys: its certificate is
    subprocess.run(
        ["ssh-keygen", "-q", "-s", str(ca), "-I", "fleetmon-test", "-n", server.user,
         str(user.with_suffix(".pub"))],
        check=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert (tmp_path / "user-cert.pub").exists()
    hosts = [
        _spec(server, "open", key_file=str(open_key)),
        _spec(server, "cert", key_file=str(user)),
    ]
    results = _run(hosts, known_hosts=str(server.known_hosts))
    assert (results[0].status, results[0].reason) == (
        Status.AUTH_FAILED,
        f"key file {open_key} is open to others (mode 0644): ssh refuses such a key;"
        f" chmod 600 {open_key}",
    )
    _assert_real_probe(results[1])


@pytest.mark.sshd
def test_ssh_config_s_port_decides_when_the_inventory_gives_none(
    sshd: sshd_util.Sshd, tmp_path: Path
) -> None:
    """As ssh does (Ansible passes -o Port only for an ansible_port): a host whose port is
    in ~/.ssh/config was connected on 22 ("connect to alias:22 refused")."""
    config = tmp_path / "ssh_config"
    config.write_text(f"Host alias\n  HostName 127.0.0.1\n  Port {sshd.port}\n")
    unset = _spec(sshd, "x", address="alias", port=22, port_given=False)
    given = _spec(sshd, "y", address="alias", port=22)  # an ansible_port of 22: it wins
    results = _run([unset, given], known_hosts=str(sshd.known_hosts), ssh_config=str(config))
    _assert_real_probe(results[0])
    assert results[1].status is not Status.OK  # port 22: no sshd of ours there
    assert ":22" in (results[1].reason or "")


@pytest.mark.sshd
def test_a_host_s_own_ssh_config_file_is_read_instead_of_the_default(
    sshd: sshd_util.Sshd, tmp_path: Path
) -> None:
    """`-F FILE` in ansible_ssh_common_args (common with bastions) was ignored: the host
    was looked up in ~/.ssh/config. As ssh: that file alone gives its HostName, Port,
    User and IdentityFile; a missing or malformed one fails the host, saying so."""
    config = tmp_path / "fleet.cfg"
    config.write_text(
        f"Host alias\n  HostName {sshd.host}\n  Port {sshd.port}\n  User {sshd.user}\n"
        f"  IdentityFile {sshd.client_key}\n"
    )
    own = HostSpec("own", "alias", port=22, port_given=False, ssh_config=str(config))
    missing = dataclasses.replace(own, name="missing", ssh_config=str(tmp_path / "nope"))
    bad = tmp_path / "bad.cfg"
    bad.write_text("Host alias\n  Port many\n")
    broken = dataclasses.replace(own, name="broken", ssh_config=str(bad))
    results = _run([own, missing, broken], known_hosts=str(sshd.known_hosts))
    _assert_real_probe(results[0])
    assert [(r.status, r.reason) for r in results[1:]] == [
        (
            Status.UNREACHABLE,
            f"cannot read ssh config {tmp_path / 'nope'}: No such file or directory",
        ),
        (Status.UNREACHABLE, f"ssh config {bad} line 2: Invalid Port integer value: many"),
    ]


@pytest.mark.sshd
def test_proxy_jump_goes_through_the_jump_host(sshd: sshd_util.Sshd) -> None:
    # Jump through the sshd to itself: the jump connection uses the same known_hosts and key.
    spec = _spec(sshd, "x", proxy_jump=f"root@127.0.0.1:{sshd.port}")
    [r] = _run([spec], known_hosts=str(sshd.known_hosts))
    _assert_real_probe(r)
    bad = _spec(sshd, "y", proxy_jump="root@127.0.0.2:1")
    [r] = _run([bad], known_hosts=str(sshd.known_hosts))
    assert r.status is Status.UNREACHABLE
    assert r.reason == "via jump host root@127.0.0.2:1: connect to 127.0.0.2:1 refused"


@pytest.mark.sshd
def test_an_ssh_config_jump_host_is_held_to_the_run_s_host_key_policy(
    sshd: sshd_util.Sshd, tmp_path: Path
) -> None:
    """A ProxyJump from ssh_config was opened by asyncssh itself, with its own known_hosts:
    a jump host whose key had changed (or was in no file, or `UserKnownHostsFile none`) was
    used without a word. Now fleetmon opens it as an inventory's -J, checked, and takes its
    Port from ssh_config as ssh does."""
    other = sshd_util.keygen(tmp_path / "other")
    pinned_wrong = tmp_path / "wrong_known_hosts"
    pinned_wrong.write_text(
        f"[127.0.0.1]:{sshd.port} {other.with_suffix('.pub').read_text().split(' ', 1)[1]}"
    )
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host bastion\n  HostName 127.0.0.1\n  Port {sshd.port}\n  User {sshd.user}\n"
        f"  IdentityFile {sshd.client_key}\n  UserKnownHostsFile {{kh}}\n"
        f"Host target\n  HostName 127.0.0.1\n  ProxyJump bastion\n"
        f"  UserKnownHostsFile {sshd.known_hosts}\n"
    )
    spec = _spec(sshd, "x", address="target")
    for kh, status in ((sshd.known_hosts, Status.OK), (pinned_wrong, Status.HOSTKEY_MISMATCH)):
        config.write_text(config.read_text().replace("{kh}", str(kh)))
        [r] = _run([spec], ssh_config=str(config))
        assert r.status is status, r.reason
        config.write_text(config.read_text().replace(str(kh), "{kh}"))
    assert r.reason is not None
    assert r.reason.startswith("via jump host bastion: ")
    assert str(pinned_wrong) in r.reason


def test_forks_are_lowered_to_what_file_descriptors_allow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda _: (164, 164))
    assert usable_forks(100) == 25  # (164 - 64 reserved) // 4 per host
    assert usable_forks(10) == 10
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft > 0


def test_forks_one_runs_hosts_one_after_another() -> None:
    hosts = [HostSpec(name=f"l{i}", address="localhost", connection="local") for i in range(3)]
    started = time.monotonic()
    results = _run(hosts, forks=1)
    assert [r.status for r in results] == [Status.OK] * 3
    assert time.monotonic() - started >= 3 * INTERVAL_S


def test_forks_budget_follows_the_connection_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    # ulimit -n 256: 192 descriptors after the reserve.
    monkeypatch.setattr(resource, "getrlimit", lambda _: (256, 256))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    ssh = HostSpec(name="s", address="127.0.0.1")
    local = HostSpec(name="l", address="localhost", connection="local")
    jump = HostSpec(name="j", address="127.0.0.1", proxy_jump="a@127.0.0.2,b@127.0.0.3")
    assert usable_forks(400, [ssh, ssh]) == 192  # one socket per host
    assert usable_forks(400, [ssh, local]) == 48  # the hungriest host sets the budget
    assert usable_forks(400, [ssh, jump]) == 192  # the hops after the first are tunnelled
    assert usable_forks(400) == 48  # hosts unknown: the local budget
    monkeypatch.setenv("SSH_AUTH_SOCK", "/nonexistent/agent.sock")
    assert usable_forks(400, [ssh]) == 96  # plus asyncssh's ssh-agent socket
    assert usable_forks(400, [ssh, jump]) == 48  # an agent socket per connection of the chain


_FD_CHILD = """
import asyncio, json, resource, socket
from fleetmon.collect.runner import CollectOptions, collect, usable_forks
from fleetmon.model import HostSpec
from fleetmon.collect.base import Outcome
from fleetmon.collect.local import run_local
from fleetmon.collect.probe import ProbeOptions

resource.setrlimit(resource.RLIMIT_NOFILE, (80, 80))
# Accepts TCP connections (kernel backlog) and never says a word: each host holds its
# socket until its connect timeout.
mute = socket.socket()
mute.bind(("127.0.0.1", 0))
mute.listen(200)
port = mute.getsockname()[1]
hosts = [HostSpec(name=f"h{i}", address="127.0.0.1", port=port) for i in range(100)]
opts = CollectOptions(interval_s=0.1, connect_timeout_s=0.3, known_hosts="/dev/null")
results = asyncio.run(collect(hosts, opts, lambda _: ProbeOptions(interval_s=0.1)))
print(json.dumps({"forks": usable_forks(200, hosts), "port": port,
                  "results": sorted({f"{r.status.value}: {r.reason}" for r in results})}))
"""


def test_more_ssh_hosts_than_descriptors_queue_instead_of_emfile() -> None:
    """Under a real open-file limit of 80 (16 hosts after the reserve), 100 SSH hosts that
    hold their socket until the connect timeout all time out; none gets EMFILE."""
    child = subprocess.run(
        [sys.executable, "-c", _FD_CHILD], capture_output=True, text=True, timeout=60, check=True
    )
    doc = json.loads(child.stdout)
    assert doc["forks"] == 16
    assert doc["results"] == [
        f"timeout: connect timeout: no SSH banner from 127.0.0.1:{doc['port']} within 0.3 s"
    ]


def test_aes_gcm_is_offered_first_then_asyncssh_defaults() -> None:
    assert encryption_algs() == [
        "aes128-gcm@openssh.com",
        "aes256-gcm@openssh.com",
        "chacha20-poly1305@openssh.com",
        "aes256-ctr",
        "aes192-ctr",
        "aes128-ctr",
    ]


def _negotiated(
    caplog: pytest.LogCaptureFixture, hosts: list[HostSpec], **kw: object
) -> tuple[list[RawResult], set[str]]:
    """Collect, and the ciphers the connections chose (from asyncssh's level-2 debug log)."""
    caplog.set_level(logging.DEBUG, logger="asyncssh")
    asyncssh.set_debug_level(2)
    try:
        results = _run(hosts, **kw)
    finally:
        asyncssh.set_debug_level(1)
    chosen = {
        m.split("Encryption alg: ", 1)[1]
        for m in caplog.messages
        if "Encryption alg: " in m and "algs" not in m
    }
    return results, chosen


@pytest.mark.sshd
def test_openssh_negotiates_aes128_gcm(
    sshd: sshd_util.Sshd, caplog: pytest.LogCaptureFixture
) -> None:
    [r], chosen = _negotiated(caplog, [_spec(sshd, "x")], known_hosts=str(sshd.known_hosts))
    _assert_real_probe(r)
    assert chosen == {"aes128-gcm@openssh.com"}


@pytest.mark.sshd
@pytest.mark.parametrize(
    "ciphers", ["chacha20-poly1305@openssh.com", "aes128-ctr", "aes256-ctr,aes192-ctr"]
)
def test_hosts_without_aes_gcm_still_connect(
    sshd_factory: object, caplog: pytest.LogCaptureFixture, ciphers: str
) -> None:
    server = sshd_factory(extra_config=f"Ciphers {ciphers}\n")  # type: ignore[operator]
    [r], chosen = _negotiated(caplog, [_spec(server, "x")], known_hosts=str(server.known_hosts))
    _assert_real_probe(r)
    assert chosen == {ciphers.split(",")[0]}


@pytest.mark.sshd
def test_ssh_config_ciphers_line_wins(
    sshd: sshd_util.Sshd, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    config = tmp_path / "ssh_config"
    config.write_text("Host *\n  Ciphers aes256-ctr\n")
    [r], chosen = _negotiated(
        caplog, [_spec(sshd, "x")], known_hosts=str(sshd.known_hosts), ssh_config=str(config)
    )
    assert r.status is Status.OK, r.reason
    assert chosen == {"aes256-ctr"}


@pytest.mark.sshd
def test_default_keys_are_read_once_per_run(
    sshd_factory: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No key file in the inventory and no ssh_config: ~/.ssh/id_ed25519 is what logs in,
    read once for the run rather than once per connection."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    key = sshd_util.keygen(home / ".ssh" / "id_ed25519")
    server = sshd_factory(  # type: ignore[operator]
        authorized_keys_extra=(key.with_suffix(".pub").read_text().strip(),)
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    calls = {"ours": 0, "asyncssh": 0}

    def counting(who: str, real: Any) -> Any:
        def load(*args: Any, **kw: Any) -> Any:
            calls[who] += 1
            return real(*args, **kw)

        return load

    real = asyncssh.public_key.load_default_keypairs
    monkeypatch.setattr("fleetmon.collect.sshcontext.load_default_keypairs", counting("ours", real))
    monkeypatch.setattr("asyncssh.connection.load_default_keypairs", counting("asyncssh", real))
    hosts = [_spec(server, f"d{i}", key_file=None) for i in range(3)]
    results = _run(hosts, known_hosts=str(server.known_hosts))
    assert [r.status for r in results] == [Status.OK] * 3, results[0].reason
    assert calls == {"ours": 1, "asyncssh": 0}
