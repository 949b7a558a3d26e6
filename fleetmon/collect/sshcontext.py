"""Collect stage, SSH transport (I/O): what one run's SSH connections share: ciphers, key
files, known_hosts sets and each host's ssh_config settings, read once (ssh.py connects).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
from asyncssh.encryption import get_default_encryption_algs
from asyncssh.public_key import load_default_keypairs
from asyncssh.saslprep import SASLPrepError

from fleetmon.collect.base import CollectOptions, HostFailure
from fleetmon.collect.hostkeys import KnownHostsCache, KnownHostsFiles, known_hosts_files
from fleetmon.model import HostSpec, Status

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


@dataclass(frozen=True, slots=True)
class HostMeta:
    """What ssh_config and the inventory make of one host's connection settings."""

    user: str
    known_hosts: KnownHostsFiles
    #: encryption_algs for asyncssh; None: leave them to ssh_config's `Ciphers`.
    ciphers: list[str] | None
    #: ssh_config's ProxyJump for the host (None: none, or `none`).
    proxy_jump: str | None = None
    #: With an ssh_config: the port, the inventory's or, for a hop that gives none, its
    #: `Port` (else 22). 0 without one (the entry is then shared by every address).
    port: int = 0
    #: The name asyncssh looks the host up by in known_hosts (ssh_config's HostKeyAlias,
    #: else its HostName); "" without an ssh_config (then the inventory's address).
    key_host: str = ""
    #: Whether ssh_config sets HostKeyAlgorithms (then asyncssh offers those, not ours).
    own_host_key_algs: bool = False


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
        self._meta: dict[tuple[str, int, bool, str | None, str | None, str | None], HostMeta] = {}
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

    def config_for(self, host: HostSpec) -> list[str] | tuple[()]:
        """asyncssh's `config` for a host: its own `-F` file (none for `-F none`), else the
        run's (CollectOptions.ssh_config, else () for ~/.ssh/config)."""
        if host.ssh_config is None:
            return self.config
        # `~` as the inventory wrote it on a cluster worker's: this user's home.
        return [] if host.ssh_config.lower() == "none" else [os.path.expanduser(host.ssh_config)]

    def has_config(self, host: HostSpec) -> bool:
        """Whether an ssh_config file applies to the host."""
        if host.ssh_config is None:
            return self.any_config
        return host.ssh_config.lower() != "none"

    def client_keys(self, key_file: str | None, configured: bool | None = None) -> ClientKeys:
        """The keys for a host's key file (None: the defaults), loaded once per run;
        HostFailure when the file is unusable. `configured`: whether an ssh_config applies
        to the host (default: the run's)."""
        if key_file is None:
            if configured is None:
                configured = self.any_config
            if configured:
                # ssh_config may name an IdentityFile per host: asyncssh reads it per connection.
                return ClientKeys([], from_key_file=False)
            if self._default_keys is None:
                self._default_keys = self._load_default_keys()
            return self._default_keys
        if key_file not in self._keys:
            self._keys[key_file] = self._load_key(key_file)
        return self._keys[key_file]

    @staticmethod
    def _load_default_keys() -> ClientKeys:
        # Without an ssh_config asyncssh would read and parse every ~/.ssh/id_* file again
        # for each host (milliseconds of CPU for an RSA key): the same keys, loaded once.
        # Encrypted ones are skipped, as asyncssh's own default loading does; the agent
        # still signs.
        return ClientKeys(list(load_default_keypairs()), False, from_key_file=False)

    @staticmethod
    def _load_key(key_file: str) -> ClientKeys:
        """The key file's key, with the certificate ssh takes beside it (KEY-cert.pub)."""
        path = os.path.expanduser(key_file)
        try:
            keys = list(asyncssh.load_keypairs(path))
            _check_private(key_file, path)  # a key, which ssh would not use
            return ClientKeys(keys)
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
            _check_private(key_file, path)
            return ClientKeys([path], ignore_encrypted=True)
        raise HostFailure(
            Status.AUTH_FAILED,
            f"key file {key_file} is encrypted and no ssh-agent is running to use it",
        )

    def meta(self, host: HostSpec) -> HostMeta:
        """User, known_hosts files and ciphers for a host (known_hosts_files says which
        files). Ciphers: ssh_config's `Ciphers` when it sets one, else ours. HostFailure for
        a user name SSH cannot carry (RFC 4013 SASLprep, as asyncssh applies it)."""
        # Without an ssh_config nothing here depends on the address: one lookup per user
        # instead of one per host (building asyncssh's options costs a getpwuid each).
        configured = self.has_config(host)
        address, port = (host.address, host.port) if configured else ("", 0)
        key = (address, port, host.port_given, host.user, host.known_hosts, host.ssh_config)
        if key not in self._meta:
            try:
                o = asyncssh.SSHClientConnectionOptions(
                    config=self.config_for(host),
                    host=host.address,
                    # None given (a hop's 0): ssh_config's Port for the host, else 22.
                    port=host.port if host.port and host.port_given else (),
                    username=host.user if host.user else (),
                    client_keys=None,
                    agent_path=None,
                )
            except SASLPrepError as exc:
                raise HostFailure(
                    Status.AUTH_FAILED, f"user name {host.user!r} cannot be used over SSH: {exc}"
                ) from None
            except OSError as exc:  # as ssh: "Can't open user config file"
                why = exc.strerror or type(exc).__name__
                raise HostFailure(
                    Status.UNREACHABLE, f"cannot read ssh config {exc.filename}: {why}"
                ) from None
            except asyncssh.ConfigParseError as exc:  # its message names the file and line
                raise HostFailure(Status.UNREACHABLE, f"ssh config {exc}") from None
            files = known_hosts_files(o.config, self.opts.known_hosts, host.known_hosts)
            # Options differing from asyncssh's defaults can only come from a Ciphers line.
            own_ciphers = list(o.encryption_algs) != get_default_encryption_algs()
            jump = o.config.get("ProxyJump") if configured else None
            self._meta[key] = HostMeta(
                o.username,
                files,
                None if own_ciphers else _CIPHERS,
                jump if isinstance(jump, str) and jump.lower() != "none" else None,
                int(o.port) if configured else 0,
                (o.host_key_alias or o.host) if configured else "",
                o.config.get("HostKeyAlgorithms") is not None,
            )
        return self._meta[key]


def _check_private(key_file: str, path: str) -> None:
    """HostFailure for a key file of ours others may read, as ssh refuses it ("UNPROTECTED
    PRIVATE KEY FILE!", sshkey_perm_ok): the key is not used, the host not logged into."""
    st = os.stat(path)
    if st.st_uid == os.getuid() and st.st_mode & 0o077:
        raise HostFailure(
            Status.AUTH_FAILED,
            f"key file {key_file} is open to others (mode {st.st_mode & 0o777:04o}):"
            f" ssh refuses such a key; chmod 600 {key_file}",
        )
