"""Simulator (edge, network): one asyncssh server process answering for every simulated host.

A connection's local address and port say which host it reached. Waits are asyncio sleeps,
so thousands of hosts share one process; faults are scripted per host.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import re
import resource
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

import asyncssh

from fleetmon.collect.probe import ONCE_EVERY_TICKS, REMOTE_COMMAND
from fleetmon.sim.answer import Answer, parse_script
from fleetmon.sim.captures import load_captures, read_capture
from fleetmon.sim.containers import with_containers
from fleetmon.sim.guests import with_guests
from fleetmon.sim.hosts import HostProfile, make_fleet, site_endpoints
from fleetmon.sim.render import Moment, machine_df

log = logging.getLogger(__name__)

#: Commands that read a script on stdin (`sh -s`, `bash -s`): the probe may come that way.
_READS_STDIN_RE = re.compile(r"\bsh -s\b")

#: Pending connections per host: a client opening many sessions at once is not refused.
LISTEN_BACKLOG = 128

#: The line a `cmdfail` host writes on stderr before exiting 1.
CMDFAIL_STDERR = "sh: 1: cannot open /proc/stat: Permission denied (fleetmon simulate: cmdfail)\n"


@dataclass(frozen=True, slots=True)
class SimConfig:
    """What to simulate (the `fleetmon simulate` options)."""

    hosts: int = 200
    kind: str = "kvm"
    base_address: str = "127.0.1.1"
    port: int = 2222  # 0: any free port per address (tests)
    ports_per_address: int = 1
    latency_ms: float = 0.0
    faults: Mapping[str, int] = field(default_factory=dict)
    seed: int = 0
    #: Containers on each Linux and KVM host (fleetmon.sim.containers).
    containers: int = 0
    #: Linux hosts that are guests of the fleet's KVM VMs (fleetmon.sim.guests).
    guests: int = 0
    #: Accept any client key (else only the simulator's client key).
    accept_any_key: bool = False
    #: Simulated seconds per real second for the streaming loop: at 10, a 2 s tick is
    #: answered every 0.2 s with the hosts' clocks moved on by 2 s (long runs in less time).
    time_scale: float = 1.0
    #: Site names: the hosts dealt into them, each site on its own /16 of loopback.
    sites: tuple[str, ...] = ()


def raise_fd_limit() -> int:
    """Raise the soft open-files limit to the hard one; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def local_df(flag: str) -> str:
    """`df -P <flag>` (-k or -i) of this machine, which every simulated host shares (the only
    real df we have); a recorded one (fleetmon/sim/data/fleetmon-capture) when this machine's
    shows no root filesystem, as in a chroot, whose mounts are outside its view. A mount
    point's bytes that are no UTF-8 come out as U+FFFD: one such mount on this machine made
    every `fleetmon simulate` die with a UnicodeDecodeError."""
    try:
        out = subprocess.run(
            ["df", "-P", flag], capture_output=True, check=False, timeout=10
        ).stdout.decode("utf-8", "replace")
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    text = machine_df(out)
    if any(line.split()[-1:] == ["/"] for line in text.splitlines()[1:]):
        return text
    return read_capture(f"fleetmon-capture/df-P-{flag.lstrip('-')}.txt")


def _listening_socket(address: str, port: int) -> socket.socket:
    # Bound here rather than by asyncssh: its getaddrinfo per listener in a thread made
    # starting 1,000 hosts take seconds.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        port: int = s.getsockname()[1]
        return port


class Simulator:
    """The running fleet: start(), then hosts/known_hosts(), then close()."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        where, sites = site_endpoints(
            config.base_address, config.hosts, config.port, config.ports_per_address, config.sites
        )
        fleet = make_fleet(config.hosts, config.kind, config.seed, config.faults, where)
        self.hosts: tuple[HostProfile, ...] = with_containers(
            with_guests(
                [
                    dataclasses.replace(h, site=site) if site else h
                    for h, site in zip(fleet, sites, strict=True)
                ],
                config.guests,
            ),
            config.containers,
            config.seed,
        )
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key = asyncssh.generate_private_key("ssh-ed25519")
        self._client_pub = self.client_key.public_data
        self._by_endpoint: dict[tuple[str, int], HostProfile] = {}
        self._acceptors: list[asyncssh.SSHAcceptor] = []
        self._conns: set[asyncssh.SSHServerConnection] = set()
        self._cap = load_captures()
        self._df_k = ""
        self._df_i = ""
        self._start_mono = time.monotonic()
        self.answers = 0

    async def start(self) -> None:
        """Listen on every reachable host's address and port."""
        self._df_k, self._df_i = local_df("-k"), local_df("-i")
        options = asyncssh.SSHServerConnectionOptions(
            server_host_keys=[self.host_key],
            server_factory=lambda: _Server(self),
            process_factory=self._handle,
            encoding=None,
            allow_scp=False,
            agent_forwarding=False,
        )
        hosts = []
        for host in self.hosts:
            port = host.port
            if host.fault == "unreachable":
                # Nothing listens there: connections are refused.
                port = port or _free_port(host.address)
            else:
                try:
                    sock = _listening_socket(host.address, port)
                except OSError as exc:
                    where = f"{host.address}:{port}"
                    raise OSError(exc.errno, f"cannot listen on {where}: {exc.strerror}") from exc
                acceptor = await asyncssh.listen(sock=sock, options=options)
                self._acceptors.append(acceptor)
                port = sock.getsockname()[1]
            host = _with_port(host, port)
            self._by_endpoint[(host.address, port)] = host
            hosts.append(host)
        self.hosts = tuple(hosts)
        self._start_mono = time.monotonic()

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        for acceptor in self._acceptors:
            acceptor.close()
        for conn in list(self._conns):
            conn.close()
        for acceptor in self._acceptors:
            await acceptor.wait_closed()
        self._acceptors.clear()

    def known_hosts(self) -> str:
        """A known_hosts file naming every host with the simulator's host key."""
        key = self.host_key.export_public_key("openssh").decode().strip()
        lines = []
        for h in self.hosts:
            name = h.address if h.port == 22 else f"[{h.address}]:{h.port}"
            lines.append(f"{name} {key}\n")
        return "".join(lines)

    def host_of(self, sockname: tuple[str, int]) -> HostProfile | None:
        return self._by_endpoint.get((sockname[0], sockname[1]))

    def moment(self) -> Moment:
        return Moment(time.monotonic() - self._start_mono, time.time())

    def key_ok(self, host: HostProfile | None, key: asyncssh.SSHKey) -> bool:
        if host is None or host.fault == "auth":
            return False
        return self.config.accept_any_key or key.public_data == self._client_pub

    async def latency(self) -> None:
        if self.config.latency_ms > 0:
            await asyncio.sleep(self.config.latency_ms / 1000)

    async def _handle(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        host = self.host_of(process.get_extra_info("sockname"))
        try:
            if host is None:
                process.exit(255)
            else:
                await self._serve(host, process)
        except (asyncssh.Error, OSError) as exc:  # the client went away: nothing to answer
            log.debug("%s: %s", host.name if host else "?", exc)

    async def _serve(self, host: HostProfile, process: asyncssh.SSHServerProcess[bytes]) -> None:
        if host.fault == "timeout":
            await process.wait_closed()
            return
        command = process.command or ""
        script = command if "@@fleetmon-" in command else ""
        if not script and (command == REMOTE_COMMAND or _READS_STDIN_RE.search(command)):
            script = (await process.stdin.read()).decode("utf-8", "replace")
        info = parse_script(script)
        await self.latency()
        if info is None:
            process.exit(0)
            return
        if host.fault == "garbage":
            process.stdout.write(random.Random(f"{host.index}").randbytes(4096))
            process.exit(0)
            return
        if host.fault == "cmdfail":
            process.stderr.write(CMDFAIL_STDERR.encode())
            process.exit(1)
            return
        answer = Answer(self._cap, host, info, self._df_k, self._df_i)
        if info.stream:
            await self._stream(answer, process)
            return
        process.stdout.write(answer.first(self.moment()).encode())
        await asyncio.sleep(answer.wait_s)
        process.stdout.write(answer.second(self.moment()).encode())
        self.answers += 1
        process.exit(0)

    async def _stream(self, answer: Answer, process: asyncssh.SSHServerProcess[bytes]) -> None:
        """The looping script: one tick every wait (the interval, or xentop's -d on Xen) on a
        simulated clock that starts at the connection and moves on by exactly the wait per
        tick (time_scale faster than real time), until the client goes away or the script's
        tick limit."""
        info = answer.info
        start = self.moment()
        # The loop's wait: the sleep, or on Xen xentop's whole seconds in its place.
        real_wait_s = answer.wait_s / self.config.time_scale
        number = 1
        while info.ticks is None or number <= info.ticks:
            virtual_s = (number - 1) * answer.wait_s
            at = Moment(start.since_start_s + virtual_s, start.epoch_s + virtual_s)
            once = (number - 1) % ONCE_EVERY_TICKS == 0
            process.stdout.write(answer.tick(number, at, once).encode())
            # Backpressure: a client that stops reading does not grow this server's buffers.
            await process.stdout.drain()
            self.answers += 1
            number += 1
            if info.ticks is None or number <= info.ticks:
                await asyncio.sleep(real_wait_s)
        process.exit(0)


def _with_port(host: HostProfile, port: int) -> HostProfile:
    if host.port == port:
        return host
    from dataclasses import replace

    return replace(host, port=port)


class _Server(asyncssh.SSHServer):
    """Per connection: public-key auth only, decided by the host the client reached."""

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim
        self._host: HostProfile | None = None
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._sim._conns.add(conn)
        self._host = self._sim.host_of(conn.get_extra_info("sockname"))

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._sim._conns.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    async def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        await self._sim.latency()
        return self._sim.key_ok(self._host, key)


@contextlib.asynccontextmanager
async def serve(config: SimConfig) -> AsyncIterator[Simulator]:
    """`async with serve(cfg) as sim:` a started simulator, closed on exit."""
    sim = Simulator(config)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.close()
