"""Host keys as OpenSSH checks them (issue 16): the user and the global known_hosts files,
as ssh_config sets them, are one set; a key pinned in any of them is trusted, and a host
pinned in any of them with another key is refused, with --accept-new-host-keys too.

The global files are never written here: ssh_config's GlobalKnownHostsFile, or the module's
default list, point at files of the test's own folder.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
from collections.abc import Callable
from pathlib import Path

import asyncssh
import pytest
import sshd_util
from clirun import fleetmon

from fleetmon.collect import hostkeys
from fleetmon.collect.hostkeys import GLOBAL_KNOWN_HOSTS, KnownHostsFiles, clean_known_hosts
from fleetmon.collect.probe import ProbeOptions
from fleetmon.collect.runner import CollectOptions, collect
from fleetmon.collect.sshcontext import SshContext
from fleetmon.model import HostSpec, RawResult, Status


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty home of our own: ~/.ssh/known_hosts and ~/.ssh/config are not the machine's."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return home


def _files(
    home: Path, config: str | None = None, known_hosts: str | None = None
) -> KnownHostsFiles:
    path = None
    if config is not None:
        path = home / "ssh_config"
        path.write_text(config)
    ctx = SshContext(
        CollectOptions(ssh_config=str(path) if path else None, known_hosts=known_hosts)
    )
    return ctx.meta(HostSpec("h", "10.0.0.1")).known_hosts


def test_the_files_ssh_would_read(home: Path) -> None:
    ssh = home / ".ssh"
    defaults = KnownHostsFiles(
        (f"{ssh}/known_hosts", f"{ssh}/known_hosts2"),
        ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"),
    )
    assert _files(home) == defaults
    assert _files(
        home, "Host *\n  UserKnownHostsFile ~/a /b\n  GlobalKnownHostsFile /g1 ~/g2\n"
    ) == (KnownHostsFiles((f"{home}/a", "/b"), ("/g1", f"{home}/g2")))
    # `none` drops a list, not the other one (a global pin still counts).
    assert _files(home, "UserKnownHostsFile none\n") == KnownHostsFiles((), defaults.system)
    assert _files(home, "GlobalKnownHostsFile none\n") == KnownHostsFiles(defaults.user, ())
    # --known-hosts replaces the user files only, as `ssh -o UserKnownHostsFile=` does.
    assert _files(home, known_hosts="~/run") == KnownHostsFiles((f"{home}/run",), defaults.system)


def test_the_inventory_s_user_files_beat_the_run_s(home: Path) -> None:
    ctx = SshContext(CollectOptions(known_hosts="/run/kh"))
    meta = ctx.meta(HostSpec("h", "10.0.0.1", known_hosts="/inv/a /inv/b"))
    assert meta.known_hosts == KnownHostsFiles(("/inv/a", "/inv/b"), GLOBAL_KNOWN_HOSTS)
    meta = ctx.meta(HostSpec("h", "10.0.0.1", known_hosts="none"))
    assert meta.known_hosts == KnownHostsFiles((), GLOBAL_KNOWN_HOSTS)


def test_a_bad_line_is_skipped_not_the_whole_file(caplog: pytest.LogCaptureFixture) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    good = f"[10.0.0.1]:2222 {key}"
    text = f"# comment\njunk-without-a-key\n{good}\n@bogus x y\n"
    with caplog.at_level(logging.WARNING):
        assert clean_known_hosts(text, "/x/kh") == f"# comment\n{good}\n"
    assert [r.getMessage() for r in caplog.records] == [
        "/x/kh:2: not a known_hosts entry, skipped",
        "/x/kh:4: not a known_hosts entry, skipped",
    ]
    assert clean_known_hosts(f"{good}\n", "/x/kh") == f"{good}\n"


# --- against the real OpenSSH sshd -----------------------------------------------------------


def _run(server: sshd_util.Sshd, **kw: object) -> RawResult:
    spec = HostSpec("x", server.host, server.port, server.user, str(server.client_key))
    opts = CollectOptions(interval_s=0.2, connect_timeout_s=20, **kw)  # type: ignore[arg-type]
    [r] = asyncio.run(collect([spec], opts, lambda _: ProbeOptions(interval_s=0.2)))
    return r


def _wrong_pin(server: sshd_util.Sshd, tmp_path: Path) -> str:
    other = sshd_util.keygen(tmp_path / "other_host_key").with_suffix(".pub").read_text()
    return f"[{server.host}]:{server.port} {other}"


def _config(home: Path, text: str) -> str:
    path = home / "ssh_config"
    path.write_text(text)
    return str(path)


@pytest.mark.sshd
def test_a_host_pinned_only_in_the_global_file_is_accepted(
    sshd: sshd_util.Sshd, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    glob = tmp_path / "ssh_known_hosts"
    glob.write_text(sshd.known_hosts.read_text())
    # Set by ssh_config, with the user files empty or switched off.
    (home / ".ssh" / "known_hosts").write_text("")
    r = _run(sshd, ssh_config=_config(home, f"GlobalKnownHostsFile {glob}\n"))
    assert r.status is Status.OK, r.reason
    r = _run(
        sshd, ssh_config=_config(home, f"UserKnownHostsFile none\nGlobalKnownHostsFile {glob}\n")
    )
    assert r.status is Status.OK, r.reason
    # The default global list, its second file (/etc/ssh/ssh_known_hosts2) included.
    second = tmp_path / "ssh_known_hosts2"
    glob.rename(second)
    monkeypatch.setattr(hostkeys, "GLOBAL_KNOWN_HOSTS", (str(glob), str(second)))
    r = _run(sshd)
    assert r.status is Status.OK, r.reason
    # Nothing was added anywhere: the key was known.
    assert (home / ".ssh" / "known_hosts").read_text() == ""
    monkeypatch.setattr(hostkeys, "GLOBAL_KNOWN_HOSTS", ())
    r = _run(sshd)
    assert (r.status, r.reason) == (
        Status.HOSTKEY_MISMATCH,
        "unknown host, not a changed key: "
        f"no host key for [{sshd.host}]:{sshd.port} in {home}/.ssh/known_hosts, "
        f"{home}/.ssh/known_hosts2 (use --accept-new-host-keys)",
    )


@pytest.mark.sshd
@pytest.mark.parametrize("accept_new", [False, True])
def test_a_key_differing_from_the_global_pin_is_refused_even_with_accept_new(
    sshd: sshd_util.Sshd, home: Path, tmp_path: Path, accept_new: bool
) -> None:
    glob = tmp_path / "ssh_known_hosts"
    glob.write_text(_wrong_pin(sshd, tmp_path))
    user = home / ".ssh" / "known_hosts"
    user.write_text("")
    config = _config(home, f"GlobalKnownHostsFile {glob}\n")
    r = _run(sshd, ssh_config=config, accept_new_host_keys=accept_new)
    # OpenSSH's "WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!", naming the offending file.
    assert (r.status, r.reason) == (
        Status.HOSTKEY_MISMATCH,
        f"host key for [127.0.0.1]:{sshd.port} does not match the one pinned in {glob} "
        "(REMOTE HOST IDENTIFICATION HAS CHANGED: a reinstalled host or a man-in-the-middle; "
        f"once checked: ssh-keygen -f {glob} -R '[127.0.0.1]:{sshd.port}')",
    )
    assert user.read_text() == ""  # the man in the middle was not recorded either


@pytest.mark.sshd
def test_a_pin_in_the_second_user_file_counts_too(
    sshd: sshd_util.Sshd, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hostkeys, "GLOBAL_KNOWN_HOSTS", ())
    second = home / ".ssh" / "known_hosts2"
    second.write_text(_wrong_pin(sshd, tmp_path))
    r = _run(sshd, accept_new_host_keys=True)
    assert (r.status, r.reason) == (
        Status.HOSTKEY_MISMATCH,
        sshd_util.changed_key_reason(sshd.port, second),
    )
    assert not (home / ".ssh" / "known_hosts").exists()
    # With the right key there instead, the host is accepted and nothing is written.
    second.write_text(sshd.known_hosts.read_text())
    assert _run(sshd, accept_new_host_keys=True).status is Status.OK
    assert not (home / ".ssh" / "known_hosts").exists()


@pytest.mark.sshd
def test_a_pin_in_both_kinds_of_file_names_both(
    sshd: sshd_util.Sshd, home: Path, tmp_path: Path
) -> None:
    glob = tmp_path / "ssh_known_hosts"
    pin = _wrong_pin(sshd, tmp_path)
    glob.write_text(pin)
    user = home / ".ssh" / "known_hosts"
    user.write_text(pin)
    r = _run(sshd, ssh_config=_config(home, f"GlobalKnownHostsFile {glob}\n"))
    assert r.reason == sshd_util.changed_key_reason(sshd.port, user, glob)


@pytest.mark.sshd
def test_run_with_accept_new_refuses_a_host_whose_global_pin_differs(
    sshd: sshd_util.Sshd, home: Path, tmp_path: Path
) -> None:
    """The command line as an operator runs it: ~/.ssh/config names the global file."""
    glob = tmp_path / "ssh_known_hosts"
    glob.write_text(_wrong_pin(sshd, tmp_path))
    (home / ".ssh" / "config").write_text(f"GlobalKnownHostsFile {glob}\n")
    inv = sshd.inventory(1, tmp_path)
    r = fleetmon(
        "run", inv, "--interval", "0.2", "--accept-new-host-keys", "--format", "json",
        env={"HOME": str(home)},
    )  # fmt: skip
    assert r.returncode == 3, r.stderr
    (host,) = json.loads(r.stdout)["hosts"]
    assert (host["status"], host["error"]) == (
        "hostkey_mismatch",
        sshd_util.changed_key_reason(sshd.port, glob),
    )
    assert not (home / ".ssh" / "known_hosts").exists()
    # And accepted when the global file pins the right key, with nothing added.
    glob.write_text(sshd.known_hosts.read_text())
    r = fleetmon("run", inv, "--interval", "0.2", "--accept-new-host-keys", "--format", "json",
                 env={"HOME": str(home)})  # fmt: skip
    (host,) = json.loads(r.stdout)["hosts"]
    assert host["status"] == "ok", host["error"]
    assert not (home / ".ssh" / "known_hosts").exists()


# --- a key of another type than the pinned one, a @cert-authority (issue: hunt-ssh 1) ------


def _sign_host_key(ca: Path, key: Path, principal: str) -> None:
    """KEY-cert.pub beside `key`: a host certificate for `principal` signed by `ca`."""
    subprocess.run(
        [sshd_util.SSH_KEYGEN, "-q", "-s", str(ca), "-I", "fleetmon-test-host", "-h",
         "-n", principal, str(key.with_suffix(".pub"))],
        check=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.mark.sshd
@pytest.mark.parametrize("accept_new", [False, True])
def test_a_host_key_of_another_type_than_the_pinned_one_is_a_changed_key(
    sshd: sshd_util.Sshd, home: Path, tmp_path: Path, accept_new: bool
) -> None:
    # The host has only an ed25519 key; an ECDSA one is pinned. asyncssh offered only
    # ECDSA, the server dropped the connection ("unreachable: Connection reset by peer").
    other = sshd_util.keygen(tmp_path / "other", kind="ecdsa").with_suffix(".pub").read_text()
    kh = home / ".ssh" / "known_hosts"
    kh.write_text(f"[{sshd.host}]:{sshd.port} {other}")
    r = _run(sshd, known_hosts=str(kh), accept_new_host_keys=accept_new)
    assert (r.status, r.reason) == (
        Status.HOSTKEY_MISMATCH,
        sshd_util.changed_key_reason(sshd.port, kh),
    )
    assert kh.read_text() == f"[{sshd.host}]:{sshd.port} {other}"


@pytest.mark.sshd
def test_a_cert_authority_alone_does_not_pin_a_plain_host_key(
    sshd: sshd_util.Sshd, home: Path, tmp_path: Path
) -> None:
    # OpenSSH's check_host_key() reads a plain key from a host covered only by a
    # @cert-authority as a new host: unknown, and pinned by accept-new.
    ca = sshd_util.keygen(tmp_path / "ca").with_suffix(".pub").read_text()
    kh = home / ".ssh" / "known_hosts"
    kh.write_text(f"@cert-authority [{sshd.host}]:{sshd.port} {ca}")
    r = _run(sshd, known_hosts=str(kh))
    assert (r.status, r.reason) == (
        Status.HOSTKEY_MISMATCH,
        "unknown host, not a changed key: "
        f"no host key for [127.0.0.1]:{sshd.port} in {kh}, and no certificate from it: the "
        f"host presented a plain key, the @cert-authority in {kh} covers only certificates "
        "(use --accept-new-host-keys to pin the plain key)",
    )
    r = _run(sshd, known_hosts=str(kh), accept_new_host_keys=True)
    assert r.status is Status.OK, r.reason
    assert kh.read_text().splitlines()[1].split()[:3] == [
        f"[{sshd.host}]:{sshd.port}",
        *sshd.host_key_pub.split()[:2],
    ]


@pytest.mark.sshd
def test_a_host_with_several_keys_presents_the_pinned_type_or_its_certificate(
    sshd_factory: Callable[..., sshd_util.Sshd], home: Path, tmp_path: Path
) -> None:
    """OpenSSH's order_hostkeyalgs(): certificates first when a CA covers the host, then the
    pinned types, then the rest. asyncssh's own default order puts RSA, then ed25519 before
    ECDSA: offered in that order, this host would present ed25519 and look changed."""
    ca = sshd_util.keygen(tmp_path / "ca")
    ecdsa = sshd_util.keygen(tmp_path / "host_ecdsa", kind="ecdsa")
    _sign_host_key(ca, ecdsa, sshd_util.LOOPBACK)
    cert = tmp_path / "host_ecdsa-cert.pub"
    server = sshd_factory(extra_config=f"HostKey {ecdsa}\nHostCertificate {cert}\n")
    pat = f"[{server.host}]:{server.port}"
    kh = home / ".ssh" / "known_hosts"
    pins = {
        "ecdsa": f"{pat} {ecdsa.with_suffix('.pub').read_text()}",
        "ed25519": server.known_hosts.read_text(),
        "ca": f"@cert-authority {pat} {ca.with_suffix('.pub').read_text()}",
    }
    # Not accepted as new (no accept-new): each was the pinned key, or for the CA-only file
    # the certificate (the plain keys are unknown there).
    for name, line in pins.items():
        kh.write_text(line)
        r = _run(server, known_hosts=str(kh))
        assert r.status is Status.OK, (name, r.reason)
    # A type it lacks: its plain key is judged (changed), not its certificate refused for
    # want of a CA (ssh too retries a certificate without a CA as the plain key).
    rsa = sshd_util.keygen(tmp_path / "other_rsa", kind="rsa").with_suffix(".pub").read_text()
    kh.write_text(f"{pat} {rsa}")
    r = _run(server, known_hosts=str(kh))
    assert (r.status, r.reason) == (
        Status.HOSTKEY_MISMATCH,
        sshd_util.changed_key_reason(server.port, kh),
    )
