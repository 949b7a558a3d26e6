"""Collect stage, SSH transport (I/O): one asyncssh connection and one exec channel per host.

Honours ~/.ssh/config, ssh-agent and the user and global known_hosts files (hostkeys.py;
verified by default, accept-new on request). Every failure becomes a HostFailure with a
reason in words; key material is never put in one.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
from asyncssh.encryption import get_default_encryption_algs
from asyncssh.public_key import load_default_keypairs
from asyncssh.saslprep import SASLPrepError

from fleetmon.collect.base import CollectOptions, HostFailure, Outcome, read_both
from fleetmon.collect.hostkeys import (
    KnownHosts,
    KnownHostsCache,
    KnownHostsFiles,
    host_pattern,
    known_hosts_files,
)
from fleetmon.collect.probe import REMOTE_COMMAND
from fleetmon.model import HostSpec, Status

log = logging.getLogger(__name__)

#: Ciphers offered first. AES-GCM is one OpenSSL AEAD call per packet, where asyncssh
#: builds chacha20-poly1305 from two cipher contexts per packet: the bare asyncssh loop went
#: from 4.8 to 3.7 ms of client CPU per host (benchmarks/README.md). 128 before 256 bits, as
#: OpenSSH orders them.
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


def encryption_algs() -> list[str]:
    """PREFERRED_CIPHERS, then asyncssh's defaults in their order: a host that offers only
    chacha20-poly1305 or aes-ctr still finds a common cipher."""
    defaults = [alg.decode("ascii") for alg in get_default_encryption_algs()]
    first = [alg for alg in PREFERRED_CIPHERS if alg in defaults]
    return first + [alg for alg in defaults if alg not in first]


_CIPHERS = encryption_algs()


@dataclass(slots=True)
class Progress:
    """How far one host got: turns a deadline into words ("no SSH banner", "0 bytes")."""

    target: str
    stage: str = "waiting"  # waiting → connecting → opening (logged in) → running
    conn: Any = None  # the SSHClientConnection once TCP is up
    output_bytes: int = 0

    def stalled(self, limit_s: float, what: str) -> str:
        """Why nothing completed within limit_s seconds."""
        secs = f"{limit_s:g} s"
        if self.stage == "opening":
            return f"{what}: logged in to {self.target} but no session opened within {secs}"
        if self.stage == "running":
            return (
                f"{what}: probe gave no complete result within {secs} "
                f"({self.output_bytes} bytes of output so far)"
            )
        if self.conn is None:
            return f"{what}: no TCP connection to {self.target} within {secs}"
        if not self.conn.get_extra_info("server_version"):
            return f"{what}: no SSH banner from {self.target} within {secs}"
        return f"{what}: SSH login to {self.target} not complete within {secs}"


@dataclass(frozen=True, slots=True)
class _HostMeta:
    """What ssh_config and the inventory make of one host's connection settings."""

    user: str
    known_hosts: KnownHostsFiles
    #: encryption_algs for asyncssh; None: leave them to ssh_config's `Ciphers`.
    ciphers: list[str] | None


@dataclass(frozen=True, slots=True)
class ClientKeys:
    """What a host authenticates with: asyncssh's client_keys, and where they came from."""

    keys: list[Any]
    ignore_encrypted: bool = False
    #: True: the inventory's key file; False: ssh-agent and the default ~/.ssh/id_* keys.
    from_key_file: bool = True


class SshContext:
    """Per-run caches shared by all hosts: key files, known_hosts sets, ssh_config lookups."""

    def __init__(self, opts: CollectOptions) -> None:
        self.opts = opts
        self.config: list[str] | tuple[()] = [opts.ssh_config] if opts.ssh_config else ()
        self._keys: dict[str, ClientKeys] = {}
        self._default_keys: ClientKeys | None = None
        self.known_hosts = KnownHostsCache()
        self._meta: dict[tuple[str, int, str | None, str | None], _HostMeta] = {}
        # asyncssh reads ~/.ssh/config when no config is given (as ssh does).
        default_config = Path("~/.ssh/config").expanduser()
        self.any_config = bool(self.config) or os.access(default_config, os.R_OK)

    def with_opts(self, opts: CollectOptions) -> SshContext:
        """The same caches with one host's own options (fleetmon_connect_timeout...)."""
        if opts is self.opts:
            return self
        other: SshContext = copy.copy(self)
        other.opts = opts
        return other

    def client_keys(self, key_file: str | None) -> ClientKeys:
        """The keys for a host's key file (None: the defaults), loaded once per run;
        HostFailure when the file is unusable."""
        if key_file is None:
            if self._default_keys is None:
                self._default_keys = self._load_default_keys()
            return self._default_keys
        if key_file not in self._keys:
            self._keys[key_file] = self._load_key(key_file)
        return self._keys[key_file]

    def _load_default_keys(self) -> ClientKeys:
        if self.any_config:
            # ssh_config may name an IdentityFile per host: asyncssh reads it per connection.
            return ClientKeys([], from_key_file=False)
        # Else asyncssh would read and parse every ~/.ssh/id_* file again for each host
        # (milliseconds of CPU for an RSA key): the same keys, loaded once. Encrypted ones
        # are skipped, as asyncssh's own default loading does; the agent still signs.
        return ClientKeys(list(load_default_keypairs()), False, from_key_file=False)

    @staticmethod
    def _load_key(key_file: str) -> ClientKeys:
        path = os.path.expanduser(key_file)
        try:
            return ClientKeys([asyncssh.read_private_key(path)])
        except OSError as exc:
            why = exc.strerror or type(exc).__name__
            raise HostFailure(
                Status.AUTH_FAILED, f"cannot read key file {key_file}: {why}"
            ) from None
        except asyncssh.KeyImportError as exc:
            # asyncssh's messages name the problem, never the key bytes.
            if "assphrase" not in str(exc):
                raise HostFailure(
                    Status.AUTH_FAILED, f"key file {key_file} is not a usable private key"
                ) from None
        if os.environ.get("SSH_AUTH_SOCK"):
            # Encrypted: let ssh-agent (which may hold it) do the signing, as ssh would.
            return ClientKeys([path], ignore_encrypted=True)
        raise HostFailure(
            Status.AUTH_FAILED,
            f"key file {key_file} is encrypted and no ssh-agent is running to use it",
        )

    def meta(self, host: HostSpec) -> _HostMeta:
        """User, known_hosts files and ciphers for a host (known_hosts_files says which
        files). Ciphers: ssh_config's `Ciphers` when it sets one, else ours. HostFailure for
        a user name SSH cannot carry (RFC 4013 SASLprep, as asyncssh applies it)."""
        # Without an ssh_config nothing here depends on the address: one lookup per user
        # instead of one per host (building asyncssh's options costs a getpwuid each).
        address, port = (host.address, host.port) if self.any_config else ("", 0)
        key = (address, port, host.user, host.known_hosts)
        if key not in self._meta:
            try:
                o = asyncssh.SSHClientConnectionOptions(
                    config=self.config,
                    host=host.address,
                    port=host.port,
                    username=host.user if host.user else (),
                    client_keys=None,
                    agent_path=None,
                )
            except SASLPrepError as exc:
                raise HostFailure(
                    Status.AUTH_FAILED, f"user name {host.user!r} cannot be used over SSH: {exc}"
                ) from None
            files = known_hosts_files(o.config, self.opts.known_hosts, host.known_hosts)
            # Options differing from asyncssh's defaults can only come from a Ciphers line.
            own_ciphers = list(o.encryption_algs) != get_default_encryption_algs()
            self._meta[key] = _HostMeta(o.username, files, None if own_ciphers else _CIPHERS)
        return self._meta[key]


class _Client(asyncssh.SSHClient):
    """Tracks connection progress and applies the unknown/changed host-key policy."""

    def __init__(self, progress: Progress, kh: KnownHosts | None, accept_new: bool) -> None:
        self.progress = progress
        self.kh = kh
        self.accept_new = accept_new
        self.verdict: str | None = None
        self.addr = ""

    def connection_made(self, conn: Any) -> None:
        self.progress.conn = conn

    def validate_host_public_key(self, host: str, addr: str, port: int, key: Any) -> bool:
        # asyncssh calls this only for a key that known_hosts does not already trust.
        assert self.kh is not None
        self.addr = addr
        self.verdict = self.kh.verdict(host, addr, port, key, self.accept_new)
        return self.verdict == "trusted"


def _parse_hop(spec: str) -> tuple[str | None, str, int]:
    """`user@host:port` (or `[v6]:port`) of one ProxyJump hop."""
    user, _, hostport = spec.rpartition("@")
    port = 22
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        if rest.startswith(":"):
            port = int(rest[1:])
    elif hostport.count(":") == 1:
        host, _, p = hostport.partition(":")
        port = int(p)
    else:
        host = hostport
    return user or None, host, port


async def _connect(
    ctx: SshContext, host: HostSpec, progress: Progress, tunnel: Any, client_keys: ClientKeys
) -> Any:
    """One SSH connection with the host-key policy; HostFailure when it cannot be made."""
    meta = ctx.meta(host)
    user = meta.user
    target = f"{host.address}:{host.port}"
    kh = ctx.known_hosts.get(meta.known_hosts) if host.host_key_checking else None
    client = _Client(progress, kh, ctx.opts.accept_new_host_keys)
    kwargs: dict[str, Any] = {}
    if client_keys.keys:
        kwargs.update(client_keys=client_keys.keys, ignore_encrypted=client_keys.ignore_encrypted)
    if tunnel is not None:
        kwargs["tunnel"] = tunnel
    if meta.ciphers is not None:
        kwargs["encryption_algs"] = meta.ciphers
    progress.stage = "connecting"
    try:
        return await asyncssh.connect(
            host.address,
            host.port,
            username=user,
            known_hosts=kh.hosts if kh is not None else None,
            config=ctx.config,
            connect_timeout=ctx.opts.connect_timeout_s,
            client_factory=lambda: client,
            request_pty=False,
            **kwargs,
        )
    except asyncssh.HostKeyNotVerifiable as exc:
        assert kh is not None
        raise _host_key_failure(kh, client, host, exc.reason) from None
    except asyncssh.PermissionDenied:
        how = (
            "publickey" if client_keys.from_key_file else "publickey via ssh-agent and default keys"
        )
        raise HostFailure(
            Status.AUTH_FAILED, f"permission denied for user {user} at {target} ({how})"
        ) from None
    except asyncssh.DisconnectError as exc:
        raise HostFailure(
            Status.UNREACHABLE, f"{target} closed the connection during login: {exc.reason}"
        ) from None
    except TimeoutError:
        raise HostFailure(
            Status.TIMEOUT, progress.stalled(ctx.opts.connect_timeout_s, "connect timeout")
        ) from None
    except socket.gaierror as exc:
        raise HostFailure(
            Status.UNREACHABLE, f"cannot resolve {host.address}: {exc.strerror}"
        ) from None
    except ConnectionRefusedError:
        raise HostFailure(Status.UNREACHABLE, f"connect to {target} refused") from None
    except OSError as exc:
        why = exc.strerror or str(exc) or type(exc).__name__
        raise HostFailure(Status.UNREACHABLE, f"connect to {target} failed: {why}") from None


def _host_key_failure(kh: KnownHosts, client: _Client, host: HostSpec, reason: str) -> HostFailure:
    """Why the host's key was not accepted: unknown, changed, or refused by asyncssh itself
    (a @revoked key, a bad certificate)."""
    if client.verdict == "unknown":
        why = kh.unknown_reason(host.address, host.port)
    elif client.verdict == "mismatch":
        why = kh.mismatch_reason(host.address, client.addr, host.port)
    else:
        pat = host_pattern(host.address, host.port)
        why = f"host key for {pat} refused: {reason} ({kh.label})"
    return HostFailure(Status.HOSTKEY_MISMATCH, why)


async def _open_jumps(
    ctx: SshContext, host: HostSpec, progress: Progress, keys: ClientKeys
) -> list[Any]:
    """Connections to each ProxyJump hop in order (the last one carries the target)."""
    conns: list[Any] = []
    if not host.proxy_jump:
        return conns
    for spec in host.proxy_jump.split(","):
        user, addr, port = _parse_hop(spec.strip())
        hop = HostSpec(
            name=spec, address=addr, port=port, user=user,
            host_key_checking=host.host_key_checking,
        )  # fmt: skip
        hop_progress = Progress(f"{addr}:{port}")
        try:
            conns.append(await _connect(ctx, hop, hop_progress, conns[-1] if conns else None, keys))
        except HostFailure as exc:
            for c in reversed(conns):
                c.close()
            raise HostFailure(exc.status, f"via jump host {spec.strip()}: {exc.reason}") from None
    return conns


@contextlib.asynccontextmanager
async def ssh_connection(ctx: SshContext, host: HostSpec, progress: Progress) -> AsyncIterator[Any]:
    """`async with ssh_connection(...) as conn:` one logged-in connection to `host` (through
    its ProxyJump hops) with the run's host-key policy; HostFailure when it cannot be made.
    The streaming collector keeps it open; run_ssh uses it for one probe."""
    keys = ctx.client_keys(host.key_file or None)
    jumps = await _open_jumps(ctx, host, progress, keys)
    try:
        conn = await _connect(ctx, host, progress, jumps[-1] if jumps else None, keys)
        async with conn:
            yield conn
    finally:
        for c in reversed(jumps):
            c.close()
            await c.wait_closed()


async def run_ssh(ctx: SshContext, host: HostSpec, script: str, progress: Progress) -> Outcome:
    """Run the probe on `host` over SSH; raise HostFailure on any failure."""
    async with ssh_connection(ctx, host, progress) as conn:
        return await _run(conn, script, ctx.opts.output_cap_bytes, progress)


async def _run(conn: Any, script: str, cap_bytes: int, progress: Progress) -> Outcome:
    progress.stage = "opening"
    try:
        proc = await conn.create_process(REMOTE_COMMAND, encoding=None)
    except asyncssh.ChannelOpenError as exc:
        raise HostFailure(
            Status.COMMAND_FAILED, f"cannot open a session channel: {exc.reason}"
        ) from None
    progress.stage = "running"

    async def read_out(n: int) -> bytes:
        data: bytes = await proc.stdout.read(n)
        progress.output_bytes += len(data)
        return data

    sent = True
    try:
        try:
            proc.stdin.write(script.encode())
            proc.stdin.write_eof()
        except BrokenPipeError:
            # The remote side closed first (a forced command, a /bin/false or nologin
            # shell): what it printed and its exit status say why, so read them still.
            sent = False
        out, err = await read_both(read_out, proc.stderr.read, cap_bytes)
        await proc.wait_closed()
    except asyncssh.DisconnectError as exc:
        raise HostFailure(
            Status.COMMAND_FAILED, f"connection lost while the probe ran: {exc.reason}"
        ) from None
    finally:
        proc.close()
    if proc.exit_signal is not None:
        return Outcome(out, err, None, f"killed by signal {proc.exit_signal[0]}")
    if proc.exit_status is None:
        unsent = "" if sent else " (the session closed before the probe was sent)"
        return Outcome(out, err, None, f"ended without an exit status{unsent}")
    return Outcome(out, err, int(proc.exit_status))
