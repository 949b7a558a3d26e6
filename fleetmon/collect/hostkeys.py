"""Collect stage, host keys as OpenSSH checks them (I/O: reads known_hosts files, and
accept-new appends to the first user file).

The user files (UserKnownHostsFile, default ~/.ssh/known_hosts ~/.ssh/known_hosts2) and the
global ones (GlobalKnownHostsFile, default /etc/ssh/ssh_known_hosts and ..._known_hosts2)
form one set, as in OpenSSH's check_host_key(): a key pinned in any file is trusted; a host
pinned in any file with another key is refused, with accept-new too (sshconnect.c).
"""

from __future__ import annotations

import logging
import os
import shlex
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncssh
from asyncssh.public_key import get_default_certificate_algs, get_default_public_key_algs

log = logging.getLogger(__name__)

#: ssh_config(5) defaults.
USER_KNOWN_HOSTS = ("~/.ssh/known_hosts", "~/.ssh/known_hosts2")
GLOBAL_KNOWN_HOSTS = ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")


def host_pattern(host: str, port: int | None) -> str:
    """How known_hosts names a host: `host`, or `[host]:port` off port 22."""
    return host if port in (None, 22) else f"[{host}]:{port}"


@dataclass(frozen=True, slots=True)
class KnownHostsFiles:
    """Where a host's keys are looked up: the user files (accept-new appends to the first),
    then the global files (only read)."""

    user: tuple[str, ...]
    system: tuple[str, ...]


def _setting(config: Any, name: str, default: Sequence[str]) -> tuple[str, ...]:
    # asyncssh keeps a list option as given (first value wins, as in ssh); `none` is [].
    value = config.get(name) if config is not None else None
    files = default if value is None else value
    return tuple(os.path.expanduser(str(f)) for f in files)


def known_hosts_files(config: Any, run_file: str | None, host_files: str | None) -> KnownHostsFiles:
    """The files for one host. User files: the inventory's `-o UserKnownHostsFile`
    (`host_files`, whitespace-separated or `none`; it beats ssh_config as `ssh -o` does),
    else --known-hosts (`run_file`), else ssh_config's UserKnownHostsFile, else the default.
    Global files: ssh_config's GlobalKnownHostsFile, else the default. `config` is the
    asyncssh SSHClientConfig of the host (None: no ssh_config)."""
    if host_files is not None:
        # `~` expanded here: a cluster worker is sent the files as the inventory wrote them.
        words = () if host_files.lower() == "none" else host_files.split()
        user = tuple(os.path.expanduser(f) for f in words)
    elif run_file:
        user = (os.path.expanduser(run_file),)
    else:
        user = _setting(config, "UserKnownHostsFile", USER_KNOWN_HOSTS)
    return KnownHostsFiles(user, _setting(config, "GlobalKnownHostsFile", GLOBAL_KNOWN_HOSTS))


def clean_known_hosts(text: str, source: str) -> str:
    """`text` without the lines asyncssh cannot read (each logged with source:line): ssh
    skips a bad line, where asyncssh would refuse the whole file."""
    try:
        asyncssh.import_known_hosts(text)
        return text
    except ValueError:
        pass
    good = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            asyncssh.import_known_hosts(line)
        except ValueError:
            log.warning("%s:%d: not a known_hosts entry, skipped", source, number)
        else:
            good.append(line)
    return "\n".join(good) + "\n"


def read_known_hosts_file(path: str) -> str | None:
    """The readable entries of one known_hosts file; None when it is missing or unreadable
    (ssh ignores such a file). Only a regular file is read: /dev/null (Ansible's usual
    "no file") or a FIFO count as empty, so nothing can hang or flood the run."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return ""
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError as exc:
        log.debug("known_hosts %s not read: %s", path, exc.strerror or exc)
        return None
    return clean_known_hosts(text, path)


class KnownHosts:
    """The keys of one set of files, read once per run; judges a key asyncssh did not trust."""

    def __init__(self, files: KnownHostsFiles, texts: dict[str, str | None]) -> None:
        self.files = files
        #: The files that exist, in lookup order, with their entries.
        self.found = [
            (f, t) for f in (*files.user, *files.system) if (t := texts.get(f)) is not None
        ]
        self.hosts = asyncssh.import_known_hosts("\n".join(t for _, t in self.found))
        self.append_to = files.user[0] if files.user else None
        shown = [*files.user, *(f for f in files.system if f in texts and texts[f] is not None)]
        self.label = ", ".join(shown) if shown else "known_hosts (none configured)"
        self._by_file: dict[str, asyncssh.SSHKnownHosts] = {}

    def host_key_algs(self, host: str, port: int) -> list[str] | None:
        """The host key algorithms to offer, in the order of OpenSSH's order_hostkeyalgs():
        the certificate ones when a @cert-authority covers the host, then those of its pinned
        keys' types, then asyncssh's other plain-key defaults. So a host whose key is of
        another type than the pinned one still presents it, and verdict() judges it; asyncssh
        alone offers only the pinned types, and such a host drops the connection for want of
        a common algorithm. No certificate algorithm without a CA: asyncssh refuses such a
        certificate outright, where ssh retries with its plain key. None when nothing is
        pinned for the name (asyncssh's own choice: all its defaults, or the types it finds
        pinned for the address it connects to)."""
        keys, cas, *_ = self.hosts.match(host, "", None if port == 22 else port)
        if not keys and not cas:
            return None
        first = list(get_default_certificate_algs()) if cas else []
        for key in keys:
            first += key.sig_algorithms
        return [alg.decode("ascii") for alg in dict.fromkeys(first + get_default_public_key_algs())]

    def verdict(self, host: str, addr: str, port: int, key: Any, accept_new: bool) -> str:
        """The verdict on a key asyncssh's own lookup did not trust: "trusted", "unknown" or
        "mismatch". With accept_new an unknown host's key is added (and trusted); a host with
        a key pinned in any of the files is a mismatch, never added. A @cert-authority line
        does not pin a plain key: a host it covers that presents none is unknown, as in
        OpenSSH's check_host_key()."""
        found = self.hosts.match(host, addr, port)
        if key in found[0]:
            return "trusted"  # added by accept-new for another host of this run
        if found[0]:
            return "mismatch"
        if not accept_new:
            return "unknown"
        self._add(host, port, key)
        return "trusted"

    def _add(self, host: str, port: int, key: Any) -> None:
        line = f"{host_pattern(host, port)} {key.export_public_key().decode().strip()}\n"
        if self.append_to is not None:
            try:
                with open(self.append_to, "a", encoding="ascii") as fh:
                    fh.write(line)
            except OSError as exc:
                log.warning("cannot add host key to %s: %s", self.append_to, exc.strerror)
        self.hosts.load(line)
        where = self.append_to or "this run only (no UserKnownHostsFile)"
        log.info("added host key for %s to %s", host_pattern(host, port), where)

    def pinned_in(self, host: str, addr: str, port: int, ca: bool = False) -> list[str]:
        """The files that pin a key for this host (ca: that have a @cert-authority for it)."""
        out = []
        for path, text in self.found:
            if path not in self._by_file:
                self._by_file[path] = asyncssh.import_known_hosts(text)
            found = self._by_file[path].match(host, addr, port)
            if found[1 if ca else 0]:
                out.append(path)
        return out

    def unknown_reason(self, host: str, addr: str, port: int) -> str:
        """Why an unknown host is refused: said unknown, not changed (its status is
        hostkey_mismatch all the same: Ansible's "Host key verification failed")."""
        pat = host_pattern(host, port)
        cas = self.pinned_in(host, addr, port, ca=True)
        if cas:
            return (
                f"unknown host, not a changed key: no host key for {pat} in {self.label}, and no"
                " certificate from it: the host "
                f"presented a plain key, the @cert-authority in {', '.join(cas)} covers only "
                "certificates (use --accept-new-host-keys to pin the plain key)"
            )
        return (
            f"unknown host, not a changed key: no host key for {pat} in {self.label}"
            " (use --accept-new-host-keys)"
        )

    def mismatch_reason(self, host: str, addr: str, port: int) -> str:
        """Why a host whose key differs from a pinned one is refused, in OpenSSH's words."""
        pat = host_pattern(host, port)
        why = "REMOTE HOST IDENTIFICATION HAS CHANGED: a reinstalled host or a man-in-the-middle"
        where = self.pinned_in(host, addr, port)
        if not where:  # pinned by accept-new earlier in this run, by another connection
            return f"host key for {pat} does not match the one accepted earlier in this run ({why})"
        fix = f"ssh-keygen -f {shlex.quote(where[0])} -R {shlex.quote(pat)}"
        return (
            f"host key for {pat} does not match the one pinned in {', '.join(where)} "
            f"({why}; once checked: {fix})"
        )


class KnownHostsCache:
    """Known_hosts files and sets, each read and parsed once per run."""

    def __init__(self) -> None:
        self._texts: dict[str, str | None] = {}
        self._sets: dict[KnownHostsFiles, KnownHosts] = {}

    def get(self, files: KnownHostsFiles) -> KnownHosts:
        """The loaded set for these files."""
        if files not in self._sets:
            for path in (*files.user, *files.system):
                if path not in self._texts:
                    self._texts[path] = read_known_hosts_file(path)
            self._sets[files] = KnownHosts(files, self._texts)
        return self._sets[files]
