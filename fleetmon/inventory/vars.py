"""Inventory stage: the variables fleetmon understands, checked and resolved into HostSpec (pure).

Each known variable's value is checked for each host on the value it ends up with (a bad one
skips that host, naming the file and line: resolve.py, connect.py), as Ansible uses a value
only when connecting; `resolve_host` then only converts. fleetmon_thresholds is the rules'
to check (rules/overrides.py). Unknown `fleetmon_*` names are typos by definition, refused
where they are written.
"""

from __future__ import annotations

import os.path
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from fleetmon.errors import did_you_mean, suggest
from fleetmon.inventory.sshargs import config_file, known_hosts_files, proxy_jump, ssh_option
from fleetmon.model import HYPERVISOR_MODES, HostSpec
from fleetmon.model.sites import parse_site

_T = TypeVar("_T")

#: Our own inventory variables; any other `fleetmon_*` name is rejected.
FLEETMON_VARS: frozenset[str] = frozenset(
    {
        "fleetmon_hypervisor",
        "fleetmon_virsh_uri",
        "fleetmon_host_key_checking",
        "fleetmon_thresholds",
        "fleetmon_connect_timeout",
        "fleetmon_timeout",
        "fleetmon_output_cap",
        "fleetmon_site",
        "fleetmon_vm_of",
    }
)

# Ansible's module_utils/parsing/convert_bool.py sets.
_TRUE = frozenset({"y", "yes", "on", "1", "true", "t"})
_FALSE = frozenset({"n", "no", "off", "0", "false", "f"})
_CONNECTIONS = {
    "ssh": "ssh",
    "smart": "ssh",
    "paramiko": "ssh",
    "paramiko_ssh": "ssh",
    "local": "local",
}
_SIZE = re.compile(r"^\s*(\d+)\s*([KMG]i?B?|B)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
#: ssh_config(5) StrictHostKeyChecking values.
_STRICT_VALUES = ("yes", "no", "ask", "accept-new", "off")
#: C0, DEL and C1 control characters: never part of a host, user, file name or URI, and
#: refused by SSH for a user name (RFC 4013); ssh arguments may still be split by whitespace.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_BUT_SPACE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")


def parse_bool(value: Any) -> bool:
    """Ansible's `boolean()`: yes/no, true/false, on/off, 1/0, y/n, t/f; ValueError otherwise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
    raise ValueError(f"expected a boolean (true/false, yes/no), got {value!r}")


def parse_port(value: Any) -> int:
    """An integer port 1-65535 (a string of digits is accepted, as Ansible's int option)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"expected an integer, got {value!r}")
    if isinstance(value, str):
        if not value.strip().isdecimal():
            raise ValueError(f"expected an integer, got {value!r}")
        value = int(value)
    port: int = value
    if not 1 <= port <= 65535:
        raise ValueError(f"expected a port number 1-65535, got {port}")
    return port


def parse_seconds(value: Any) -> float:
    """A positive number of seconds."""
    if not isinstance(value, bool):
        try:
            seconds = float(value) if isinstance(value, int | float | str) else -1.0
        except ValueError:
            seconds = -1.0
        if seconds > 0 and seconds != float("inf"):
            return seconds
    raise ValueError(f"expected a positive number of seconds, got {value!r}")


def parse_size(value: Any) -> int:
    """A positive byte count: an integer, or a string such as "16MiB", "512K", "1G"."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    m = _SIZE.match(value) if isinstance(value, str) else None
    if m and int(m.group(1)) > 0:
        return int(m.group(1)) * _SIZE_UNITS[(m.group(2) or "")[:1].upper()]
    raise ValueError(f"expected a positive size in bytes (e.g. 16777216 or '16MiB'), got {value!r}")


def _text(value: Any, control: re.Pattern[str]) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a non-empty string, got {value!r}")
    if control.search(value):
        raise ValueError(f"control characters are not allowed, got {value!r}")
    return value


def _string(value: Any) -> str:
    return _text(value, CONTROL)


def connection_kind(name: str) -> str:
    """`ssh` or `local` for a connection fleetmon can use (`smart`, `paramiko`, the long forms
    `ansible.builtin.ssh`...), else the name as given (that host is skipped when collecting)."""
    short = name.removeprefix("ansible.builtin.").removeprefix("ansible.legacy.")
    return _CONNECTIONS.get(short, name)


def unusable_connection(name: str) -> str:
    """Why a host with this `ansible_connection` is not collected."""
    hint = did_you_mean(name, _CONNECTIONS)
    return f"connection {name!r}: fleetmon collects over ssh or local only{hint}"


def _connection(value: Any) -> str:
    # Any plugin name loads (docker, winrm, community.*...): such hosts are skipped when run.
    return connection_kind(_string(value))


def _ssh_args(value: Any) -> str | None:
    text = _text(value, _CONTROL_BUT_SPACE)
    try:
        args = shlex.split(text)
    except ValueError as e:
        raise ValueError(f"cannot split into arguments ({e}): {value!r}") from None
    strict = ssh_option(args, "StrictHostKeyChecking")
    if strict is not None and strict.lower() not in _STRICT_VALUES:
        raise ValueError(
            f"StrictHostKeyChecking={strict}: expected one of {', '.join(_STRICT_VALUES)}"
        )
    if ssh_option(args, "UserKnownHostsFile") == "":
        raise ValueError(f"UserKnownHostsFile without a file name: {value!r}")
    if config_file(args) == "":
        raise ValueError(f"-F without a file name: {value!r}")
    return proxy_jump(args)  # a ProxyCommand it cannot honour: ValueError (the host skipped)


def _hypervisor(value: Any) -> str:
    if value not in HYPERVISOR_MODES:
        hint = did_you_mean(str(value), HYPERVISOR_MODES)
        raise ValueError(f"expected one of {', '.join(HYPERVISOR_MODES)}, got {value!r}{hint}")
    return str(value)


def _vm_of(value: Any) -> str:
    """`fleetmon_vm_of`: `hypervisor/domain`, the inventory host running this guest and its
    libvirt or Xen domain name (analyse/guests.py splits it at the first `/`)."""
    hv, sep, dom = _string(value).partition("/")
    if not sep or not hv.strip() or not dom.strip():
        raise ValueError(
            f"expected hypervisor/domain (a host of the inventory, its VM), got {value!r}"
        )
    return str(value)


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"expected an integer, got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"expected an integer, got {value!r}") from None


_CHECKS: dict[str, Callable[[Any], object]] = {
    "ansible_host": _string,
    "ansible_ssh_host": _string,
    "ansible_port": parse_port,
    "ansible_ssh_port": parse_port,
    "ansible_user": _string,
    "ansible_ssh_user": _string,
    "ansible_ssh_private_key_file": _string,
    "ansible_private_key_file": _string,
    "ansible_connection": _connection,
    "ansible_ssh_args": _ssh_args,  # [ssh_connection] ssh_args as a variable
    "ansible_ssh_common_args": _ssh_args,
    "ansible_ssh_extra_args": _ssh_args,
    "ansible_become": parse_bool,
    "ansible_become_user": _string,
    "ansible_host_key_checking": parse_bool,
    "ansible_ssh_host_key_checking": parse_bool,  # the ssh plugin's alias: the later wins
    "ansible_group_priority": _integer,
    # The ssh connection plugin's `timeout` (Ansible 2.11+): fleetmon_connect_timeout wins.
    "ansible_ssh_timeout": parse_seconds,
    "fleetmon_hypervisor": _hypervisor,
    "fleetmon_virsh_uri": _string,
    "fleetmon_host_key_checking": parse_bool,
    # Checked by the rules (rules/overrides.py): a malformed override is an input error at
    # its file:line (exit 4), never a host skipped (and no longer monitored) over a typo.
    "fleetmon_thresholds": lambda value: value,
    "fleetmon_connect_timeout": parse_seconds,
    "fleetmon_timeout": parse_seconds,
    "fleetmon_output_cap": parse_size,
    "fleetmon_site": parse_site,
    "fleetmon_vm_of": _vm_of,
}


#: The variables fleetmon reads (and checks); the others are anyone's.
KNOWN_VARS: frozenset[str] = frozenset(_CHECKS)
#: Those checked for each host, in a fixed order: all but ansible_group_priority, a group's
#: setting checked as its group is read (data.py), any other variable in vars files.
HOST_VARS: tuple[str, ...] = tuple(k for k in _CHECKS if k != "ansible_group_priority")


def check_var(name: str, value: Any) -> None:
    """Raise ValueError (the message without the key) when a known variable's value is wrong."""
    check = _CHECKS.get(name)
    if check is not None:
        check(value)
    elif name.startswith("fleetmon_"):
        # Compare what follows the shared prefix, or every short typo looks close to something.
        best = suggest(name[9:], [v[9:] for v in FLEETMON_VARS])
        hint = f" (did you mean 'fleetmon_{best}'?)" if best else ""
        known = f" (known: {', '.join(sorted(FLEETMON_VARS))})"
        raise ValueError(f"unknown fleetmon variable{hint or known}")


def _last(vars_: Mapping[str, Any], *names: str) -> Any:
    """The value of the last of `names` that is set: Ansible's ssh plugin lets the later
    alias win (ansible_ssh_host over ansible_host)."""
    found = None
    for name in names:
        if name in vars_:
            found = vars_[name]
    return found


#: The ssh arguments of a host, in the order Ansible's ssh plugin puts them on ssh's
#: command line (its own `-o StrictHostKeyChecking=no` goes between the first and the rest).
_SSH_ARG_VARS = ("ansible_ssh_args", "ansible_ssh_common_args", "ansible_ssh_extra_args")


def _host_key_checking(vars_: Mapping[str, Any], split: Mapping[str, list[str]]) -> bool:
    """Whether the host's key is checked: fleetmon_host_key_checking when set, else what
    ssh does with Ansible's command line. That is `ssh_args`, then `-o
    StrictHostKeyChecking=no` when host_key_checking (ansible_host_key_checking,
    ansible_ssh_host_key_checking: the later wins; ansible.cfg, the environment) is off,
    then the common and extra args; ssh keeps the first value it is given. Any value but
    no/off (yes, ask, accept-new) checks the key: fleetmon never adds one unasked."""
    if "fleetmon_host_key_checking" in vars_:
        return parse_bool(vars_["fleetmon_host_key_checking"])
    setting = _last(vars_, "ansible_host_key_checking", "ansible_ssh_host_key_checking")
    args = list(split["ansible_ssh_args"])
    if setting is not None and not parse_bool(setting):
        args += ["-o", "StrictHostKeyChecking=no"]  # Ansible's own, after ssh_args
    args += [*split["ansible_ssh_common_args"], *split["ansible_ssh_extra_args"]]
    strict = (ssh_option(args, "StrictHostKeyChecking") or "yes").lower()
    return strict not in ("no", "off")


def resolve_host(
    name: str,
    vars_: Mapping[str, Any],
    groups: tuple[str, ...],
    expand: Callable[[str], str] = os.path.expanduser,
) -> HostSpec:
    """The HostSpec of a host from its merged (already validated) variables; its key,
    known_hosts and ssh_config files passed through `expand` (`~` is this user's home)."""
    port = _last(vars_, "ansible_port", "ansible_ssh_port")
    key_file = _last(vars_, "ansible_private_key_file", "ansible_ssh_private_key_file")
    connection = vars_.get("ansible_connection")
    become = vars_.get("ansible_become")
    split = {var: shlex.split(vars_[var]) if var in vars_ else [] for var in _SSH_ARG_VARS}
    ssh_args = [arg for var in _SSH_ARG_VARS for arg in split[var]]
    return HostSpec(
        name=name,
        address=_last(vars_, "ansible_host", "ansible_ssh_host") or name,
        port=parse_port(port) if port is not None else 22,
        port_given=port is not None,
        user=_last(vars_, "ansible_user", "ansible_ssh_user"),
        key_file=expand(key_file) if key_file is not None else None,
        connection=connection_kind(connection) if connection is not None else "ssh",
        proxy_jump=proxy_jump(ssh_args) if ssh_args else None,
        become=parse_bool(become) if become is not None else False,
        become_user=vars_.get("ansible_become_user"),
        host_key_checking=_host_key_checking(vars_, split),
        known_hosts=known_hosts_files(ssh_args, expand) if ssh_args else None,
        ssh_config=(config_file(ssh_args, expand) or None) if ssh_args else None,
        groups=groups,
        vars=vars_,
    )


#: The HostSpec fields that name files on the machine that collects the host.
PATH_FIELDS = ("key_file", "known_hosts", "ssh_config")


def as_written(spec: HostSpec) -> HostSpec:
    """The host with its key, known_hosts and ssh_config files as its variables write them,
    `~` not expanded: for a cluster worker, where `~` is the home of the worker's user, not
    of the client's (collect expands it there). A file not named by the host's variables
    as they stand (ansible.cfg's key file, a templated value) is kept as resolved."""
    try:
        here = resolve_host(spec.name, spec.vars, spec.groups)
        written = resolve_host(spec.name, spec.vars, spec.groups, expand=str)
    except (ValueError, TypeError, AttributeError):  # variables templated, not plain
        return spec
    kept = {f: getattr(written, f) for f in PATH_FIELDS if getattr(here, f) == getattr(spec, f)}
    return replace(spec, **kept)


@dataclass(frozen=True, slots=True)
class FleetmonVars:
    """A host's `fleetmon_*` settings, typed; None where the inventory does not set one."""

    hypervisor: str = "auto"
    virsh_uri: str | None = None
    thresholds: Any = None  # as written: rules/overrides.py checks it
    connect_timeout_s: float | None = None
    timeout_s: float | None = None
    output_cap_bytes: int | None = None
    site: str | None = None


def fleetmon_vars(spec: HostSpec) -> FleetmonVars:
    """The typed `fleetmon_*` settings of a resolved host."""
    v = spec.vars
    return FleetmonVars(
        hypervisor=_hypervisor(v.get("fleetmon_hypervisor", "auto")),
        virsh_uri=v.get("fleetmon_virsh_uri"),
        thresholds=v.get("fleetmon_thresholds"),
        connect_timeout_s=_opt(v, "fleetmon_connect_timeout", parse_seconds)
        or _opt(v, "ansible_ssh_timeout", parse_seconds),
        timeout_s=_opt(v, "fleetmon_timeout", parse_seconds),
        output_cap_bytes=_opt(v, "fleetmon_output_cap", parse_size),
        site=_opt(v, "fleetmon_site", parse_site),
    )


def _opt(v: Mapping[str, Any], name: str, parse: Callable[[Any], _T]) -> _T | None:
    return parse(v[name]) if name in v else None
