"""Collect stage, SSH transport (I/O): one asyncssh connection and one exec channel per host.

Honours ~/.ssh/config, ssh-agent and the user and global known_hosts files (hostkeys.py;
verified by default, accept-new on request). Every failure becomes a HostFailure with a
reason in words; key material is never put in one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncssh

from fleetmon.collect.base import HostFailure, Outcome, read_both
from fleetmon.collect.hostkeys import KnownHosts
from fleetmon.collect.probe import REMOTE_COMMAND
from fleetmon.collect.sshcontext import ClientKeys, HostMeta
from fleetmon.collect.sshcontext import SshContext as SshContext  # the collectors' import
from fleetmon.collect.sshlogin import Client, closed_reason, denied_reason, host_key_failure
from fleetmon.model import HostSpec, Status

log = logging.getLogger(__name__)


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


def _parse_hop(spec: str) -> tuple[str | None, str, int]:
    """`user@host:port` (or `[v6]:port`) of one ProxyJump hop; port 0 when it gives none
    (ssh_config's `Port` for that host then, else 22)."""
    user, _, hostport = spec.rpartition("@")
    port = 0
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
    port = (meta.port if ctx.has_config(host) else host.port) or 22
    if port != host.port:
        host = dataclasses.replace(host, port=port)
    target = f"{host.address}:{host.port}"
    kh = ctx.known_hosts.get(meta.known_hosts) if host.host_key_checking else None
    client = Client(progress, kh, ctx.opts.accept_new_host_keys)
    kwargs = _options(meta, host, kh, tunnel, client_keys)
    progress.stage = "connecting"
    try:
        return await asyncssh.connect(
            host.address,
            host.port,
            username=user,
            known_hosts=kh.hosts if kh is not None else None,
            config=ctx.config_for(host),
            connect_timeout=ctx.opts.connect_timeout_s,
            client_factory=lambda: client,
            request_pty=False,
            **kwargs,
        )
    except asyncssh.HostKeyNotVerifiable as exc:
        assert kh is not None
        raise host_key_failure(kh, client, host, exc.reason) from None
    except asyncssh.PermissionDenied:
        how = (
            "publickey" if client_keys.from_key_file else "publickey via ssh-agent and default keys"
        )
        why = denied_reason(user, target, how, client, host)
        raise HostFailure(Status.AUTH_FAILED, why) from None
    except asyncssh.DisconnectError as exc:
        raise HostFailure(Status.UNREACHABLE, closed_reason(exc, target, progress.conn)) from None
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
        if progress.conn is not None:  # TCP was up: the host (or a middlebox) closed it
            raise HostFailure(
                Status.UNREACHABLE, closed_reason(exc, target, progress.conn)
            ) from None
        why = exc.strerror or str(exc) or type(exc).__name__
        raise HostFailure(Status.UNREACHABLE, f"connect to {target} failed: {why}") from None


def _options(
    meta: HostMeta, host: HostSpec, kh: KnownHosts | None, tunnel: Any, client_keys: ClientKeys
) -> dict[str, Any]:
    """asyncssh.connect's keyword arguments beyond the address, user and host-key policy."""
    # Never () (asyncssh's "ssh_config's ProxyJump"): asyncssh would open those hops itself,
    # with its own known_hosts, none of the run's host-key policy (_open_jumps opens them).
    kwargs: dict[str, Any] = {"tunnel": tunnel}
    if client_keys.keys:
        kwargs.update(client_keys=client_keys.keys, ignore_encrypted=client_keys.ignore_encrypted)
    if meta.ciphers is not None:
        kwargs["encryption_algs"] = meta.ciphers
    if kh is not None and not meta.own_host_key_algs:
        algs = kh.host_key_algs(meta.key_host or host.address, host.port)
        if algs is not None:
            kwargs["server_host_key_algs"] = algs
    return kwargs


async def _open_jumps(
    ctx: SshContext, host: HostSpec, progress: Progress, keys: ClientKeys
) -> list[Any]:
    """Connections to each ProxyJump hop in order (the last one carries the target)."""
    conns: list[Any] = []
    # The inventory's (-J, ProxyJump in the ssh args), else ssh_config's for this host.
    hops = host.proxy_jump or ctx.meta(host).proxy_jump
    if not hops:
        return conns
    for spec in hops.split(","):
        user, addr, port = _parse_hop(spec.strip())
        hop = HostSpec(
            name=spec, address=addr, port=port, user=user,
            host_key_checking=host.host_key_checking, ssh_config=host.ssh_config,
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
    keys = ctx.client_keys(host.key_file or None, ctx.has_config(host))
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


async def open_probe(conn: Any, progress: Progress) -> Any:
    """The probe's `sh -s` process on a connection (the one-shot probe's and the looping
    one's); HostFailure when the host refuses a session channel."""
    progress.stage = "opening"
    try:
        proc = await conn.create_process(REMOTE_COMMAND, encoding=None)
    except asyncssh.ChannelOpenError as exc:
        raise HostFailure(
            Status.COMMAND_FAILED, f"cannot open a session channel: {exc.reason}"
        ) from None
    progress.stage = "running"
    return proc


async def _run(conn: Any, script: str, cap_bytes: int, progress: Progress) -> Outcome:
    proc = await open_probe(conn, progress)

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
