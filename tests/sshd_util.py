"""Test helper: start real OpenSSH sshd instances on 127.0.0.1 with their own keys.

Used by the `sshd` / `sshd_factory` fixtures in conftest.py. Each instance lives in its own
directory (mode 0755 so that test-only users can read authorized_keys), listens on a free
port of 127.0.0.1 and is killed by its pid on stop().
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SSHD = "/usr/sbin/sshd"
SSH_KEYGEN = "ssh-keygen"
LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port of `host` that was free a moment ago (nothing listens on it now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def keygen(path: Path, *, kind: str = "ed25519", passphrase: str = "", comment: str = "") -> Path:
    """Create a key pair at `path` (+ .pub) with ssh-keygen; returns `path`."""
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", kind, "-N", passphrase, "-C", comment, "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return path


#: Test users are `fmt<pid>-<4 hex>-<role>`: unique to one pytest process, so concurrent
#: sessions on one machine (several worktrees) never share, reuse or delete each other's.
_TEST_USER = re.compile(r"fmt(\d+)-[0-9a-f]{4}-[a-z][a-z-]*")
#: useradd/userdel exit codes: 10 "cannot lock /etc/passwd" (another one is running), 9
#: "username already in use", 8 "user currently used by a process".
_LOCKED, _IN_USE, _BUSY = 10, 9, 8


def _shadow_tool(argv: list[str], retry_on: tuple[int, ...], timeout_s: float = 30.0) -> int:
    """Run useradd/userdel, retrying while /etc/passwd is locked by a concurrent one."""
    deadline = time.monotonic() + timeout_s
    while True:
        res = subprocess.run(argv, capture_output=True, text=True, check=False)
        if res.returncode not in retry_on or time.monotonic() > deadline:
            return res.returncode
        time.sleep(0.1)


def create_user(role: str, *, shell: str = "/bin/sh", home: str = "/tmp") -> str:
    """A new local login user for this session only (home /tmp unless given, not locked):
    its name.

    Never an existing account: a user left by another run may have another shell, and one
    of a concurrent session may be deleted under us. Remove it with remove_user().
    """
    sweep_stale_users()
    while True:
        name = f"fmt{os.getpid()}-{secrets.token_hex(2)}-{role}"
        # "*" instead of useradd's "!": sshd (UsePAM no) refuses "!"-locked accounts.
        rc = _shadow_tool(
            ["useradd", "-M", "-d", home, "-s", shell, "-p", "*", name], retry_on=(_LOCKED,)
        )
        if rc == 0:
            return name
        if rc != _IN_USE:
            raise RuntimeError(f"useradd {name} exited {rc}")


def sweep_stale_users() -> None:
    """Remove test users whose pytest process is gone (a run that was killed)."""
    for entry in pwd.getpwall():
        m = _TEST_USER.fullmatch(entry.pw_name)
        if m is None:
            continue
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:
            remove_user(entry.pw_name)
        except PermissionError:
            pass  # alive


def kill_user_processes(name: str) -> None:
    """Kill, by pid, every process owned by test user `name` (a hung ForceCommand)."""
    uid = pwd.getpwnam(name).pw_uid
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if os.stat(entry.path).st_uid == uid:
                os.kill(int(entry.name), signal.SIGKILL)


def remove_user(name: str) -> None:
    """Delete a test user made by create_user (after killing its processes)."""
    if not _TEST_USER.fullmatch(name):
        raise ValueError(f"{name} is not a test user of create_user()")
    for _ in range(50):
        try:
            kill_user_processes(name)
        except KeyError:
            return  # already gone
        if _shadow_tool(["userdel", name], retry_on=(_LOCKED,)) != _BUSY:
            return
        time.sleep(0.1)  # a killed process not reaped yet


def changed_key_reason(port: int, *files: Path | str, host: str = LOOPBACK) -> str:
    """fleetmon's reason for a host whose key differs from the one pinned in `files`."""
    pat = f"[{host}]:{port}"
    return (
        f"host key for {pat} does not match the one pinned in {', '.join(map(str, files))} "
        "(REMOTE HOST IDENTIFICATION HAS CHANGED: a reinstalled host or a man-in-the-middle; "
        f"once checked: ssh-keygen -f {files[0]} -R '{pat}')"
    )


def _supports(option: str, workdir: Path, base: str) -> bool:
    """Whether this sshd accepts a config line (PerSourcePenalties appeared in 9.8)."""
    probe = workdir / "probe_config"
    probe.write_text(base + option + "\n")
    res = subprocess.run([SSHD, "-t", "-f", str(probe)], capture_output=True, check=False)
    probe.unlink()
    return res.returncode == 0


@dataclass
class Sshd:
    """A running sshd: where it listens and the files a client needs to reach it."""

    host: str
    port: int
    user: str
    client_key: Path
    known_hosts: Path
    host_key: Path
    workdir: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def host_key_pub(self) -> str:
        """The host public key line (`ssh-ed25519 AAAA...`)."""
        return self.host_key.with_suffix(".pub").read_text().strip()

    def inventory(
        self,
        n: int,
        directory: Path,
        *,
        prefix: str = "h",
        vars: Mapping[str, Any] | None = None,
        name: str = "inventory.yaml",
    ) -> Path:
        """Write an Ansible YAML inventory of `n` hosts (h01, h02...) all pointing at this sshd.

        Each host has ansible_host, ansible_port, ansible_user and
        ansible_ssh_private_key_file; `vars` go into `all.vars`.
        """
        width = max(2, len(str(n)))
        hosts = {
            f"{prefix}{i:0{width}d}": {
                "ansible_host": self.host,
                "ansible_port": self.port,
                "ansible_user": self.user,
                "ansible_ssh_private_key_file": str(self.client_key),
            }
            for i in range(1, n + 1)
        }
        doc: dict[str, Any] = {"all": {"hosts": hosts}}
        if vars:
            doc["all"]["vars"] = dict(vars)
        path = directory / name
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    def log_text(self) -> str:
        """What sshd logged so far (-E file), for failure messages."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        """Kill sshd by its pid and remove its directory."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_sshd(
    *,
    extra_config: str = "",
    user: str = "root",
    authorized_keys_extra: tuple[str, ...] = (),
    max_startups: str = "1000:30:1000",
) -> Sshd:
    """Start a fresh sshd on 127.0.0.1 with its own host key, client key and known_hosts.

    `extra_config` is appended to sshd_config (e.g. `Match User` blocks; sshd takes the first
    value of a global option, so `max_startups` sets MaxStartups). Needs root.
    """
    workdir = Path(tempfile.mkdtemp(prefix="fleetmon-sshd-"))
    workdir.chmod(0o755)
    host_key = keygen(workdir / "ssh_host_ed25519_key", comment="fleetmon-test-host")
    client_key = keygen(workdir / "client_ed25519", comment="fleetmon-test-client")
    auth = workdir / "authorized_keys"
    auth.write_text(
        "\n".join([client_key.with_suffix(".pub").read_text().strip(), *authorized_keys_extra])
        + "\n"
    )
    auth.chmod(0o644)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
    port = free_port()
    base = (
        f"ListenAddress {LOOPBACK}:{port}\n"
        f"HostKey {host_key}\n"
        f"AuthorizedKeysFile {auth}\n"
        "PidFile none\n"
        "UsePAM no\n"
        "StrictModes no\n"
        "PermitRootLogin yes\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        f"MaxStartups {max_startups}\n"
        "MaxSessions 100\n"
        "LoginGraceTime 30\n"
        "LogLevel VERBOSE\n"
    )
    # Failed logins are part of the tests: without this a 9.8+ sshd would block 127.0.0.1.
    if _supports("PerSourcePenalties no", workdir, base):
        base += "PerSourcePenalties no\n"
    config = workdir / "sshd_config"
    config.write_text(base + extra_config)
    known_hosts = workdir / "known_hosts"
    known_hosts.write_text(f"[{LOOPBACK}]:{port} {host_key.with_suffix('.pub').read_text()}")
    log = workdir / "sshd.log"
    sshd = Sshd(LOOPBACK, port, user, client_key, known_hosts, host_key, workdir, log)
    sshd.proc = subprocess.Popen(
        [SSHD, "-D", "-f", str(config), "-E", str(log)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_ready(sshd)
    except BaseException:
        sshd.stop()
        raise
    return sshd


def _wait_ready(sshd: Sshd, timeout_s: float = 10.0) -> None:
    """Wait until sshd sends its banner; raise with its log when it exits or stays silent."""
    assert sshd.proc is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if sshd.proc.poll() is not None:
            raise RuntimeError(f"sshd exited {sshd.proc.returncode}: {sshd.log_text()}")
        try:
            with socket.create_connection((sshd.host, sshd.port), timeout=1) as s:
                if s.recv(64).startswith(b"SSH-2.0-"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"sshd on port {sshd.port} not ready in {timeout_s} s: {sshd.log_text()}")
