"""Inventory stage: what fleetmon reads of a host's ssh arguments (pure): ProxyJump (and the
one ProxyCommand form it can replace), UserKnownHostsFile, any `-o Name=value`, as ssh
takes them (the first value of an option wins), and `-F FILE`, the ssh_config file.
"""

from __future__ import annotations

import os.path
import re
import shlex
from collections.abc import Callable


def _proxy_command(command: str) -> str | None:
    """The jump host of the one ProxyCommand form ProxyJump can replace:
    `ssh [-q] [-l user] [-p port] -W %h:%p [user@]bastion`. ValueError for any other."""
    unsupported = ValueError(
        f"ProxyCommand {command!r} is not supported: use -o ProxyJump=[user@]bastion[:port] "
        "(or ProxyCommand='ssh -W %h:%p [user@]bastion')"
    )
    if command.strip().lower() == "none":
        return None
    try:
        tokens = shlex.split(command)
    except ValueError:
        raise unsupported from None
    if not tokens or os.path.basename(tokens[0]) != "ssh":
        raise unsupported
    forward = user = port = host = None
    it = iter(tokens[1:])
    for t in it:
        if t in ("-W", "-l", "-p"):
            value = next(it, None)
            if t == "-W":
                forward = value
            elif t == "-l":
                user = value
            else:
                port = value
        elif t.startswith("-W"):
            forward = t[2:]
        elif t in ("-q", "-T", "-x", "-a", "-C", "-4", "-6"):
            continue  # no effect on where the tunnel goes
        elif t.startswith("-") or host is not None:
            raise unsupported  # other options, or a remote command such as `nc %h %p`
        else:
            host = t
    if forward != "%h:%p" or host is None:
        raise unsupported
    if user and "@" not in host:
        host = f"{user}@{host}"
    return f"{host}:{port}" if port else host


def _options(args: list[str]) -> list[tuple[str, str]]:
    """(lower-case name, value) of each option in ssh arguments, in order: `-o Name=value`,
    `-oName=value`, `-o "Name value"`, and `-J X`/`-JX` as ProxyJump."""
    found: list[tuple[str, str]] = []
    it = iter(args)
    for arg in it:
        if arg == "-J":
            found.append(("proxyjump", next(it, "")))
        elif arg.startswith("-J"):
            found.append(("proxyjump", arg[2:]))
        elif arg.startswith("-o"):
            option = arg[2:] or next(it, "")
            key, sep, rest = option.partition("=")
            if not sep:
                key, _, rest = option.strip().partition(" ")
            found.append((key.strip().lower(), rest.strip()))
    return found


def ssh_option(args: list[str], name: str) -> str | None:
    """The value ssh takes for option `name` from its arguments: the first one given
    (ssh keeps the first value it obtains); None when the arguments do not set it."""
    return next((v for k, v in _options(args) if k == name.lower()), None)


def proxy_jump(args: list[str]) -> str | None:
    """The jump host of ssh arguments: `-J X`, `-JX`, `-o ProxyJump=X`, `-oProxyJump X`, or
    `-o ProxyCommand=ssh -W %h:%p X` (ValueError for another ProxyCommand).

    ssh keeps the first value it obtains for an option, so the first one found wins;
    `none` means none (ssh_config(5)).
    """
    for key, value in _options(args):
        if key == "proxycommand":
            return _proxy_command(value)
        if key == "proxyjump":
            return None if value.lower() == "none" or not value else _hops(value)
    return None


_HOP_PORT = re.compile(r"(?:\[[^\]]*\]|[^:\[\]]*):(.*)")


def _hops(value: str) -> str:
    """A ProxyJump value whose hops' ports are ports (ValueError naming the hop): a bad
    one failed only when connecting, as an unexpected error."""
    for hop in value.split(","):
        hostport = hop.strip().rpartition("@")[2]
        m = (
            _HOP_PORT.fullmatch(hostport)
            if hostport.count(":") == 1 or hostport.startswith("[")
            else None
        )
        if m is not None and not (m.group(1).isdigit() and 1 <= int(m.group(1)) <= 65535):
            raise ValueError(f"ProxyJump {hop.strip()!r}: expected a port from 1 to 65535")
    return value


def known_hosts_files(
    args: list[str], expand: Callable[[str], str] = os.path.expanduser
) -> str | None:
    """`-o UserKnownHostsFile=...` of ssh arguments, each file `~`-expanded (ssh_config(5):
    several files separated by whitespace, or `none`); None when not set."""
    value = ssh_option(args, "UserKnownHostsFile")
    if value is None or value.lower() == "none":
        return value
    return " ".join(expand(f) for f in value.split())


#: ssh's options that take a value (its getopt string), which may follow as the next word.
_WITH_VALUE = frozenset("bceilmopBDEFIJLOPQRSwW")


def config_file(args: list[str], expand: Callable[[str], str] = os.path.expanduser) -> str | None:
    """The ssh_config file of ssh arguments, `-F FILE` or `-FFILE` (`~`-expanded; `none`
    as it is: no file at all; "" for a `-F` without one); None when not given. As in
    ssh's getopt loop, the last one wins."""
    found: str | None = None
    it = iter(args)
    for arg in it:
        if len(arg) < 2 or arg[0] != "-" or arg[1] not in _WITH_VALUE:
            continue
        value = arg[2:] if len(arg) > 2 else next(it, None)
        if arg[1] == "F":
            found = value or ""
    if not found or found.lower() == "none":
        return found
    return expand(found)
