"""Inventory stage, input edge (I/O): the ansible.cfg settings a fleet user relies on.

As ansible-core's ConfigManager: the first readable file of `ANSIBLE_CONFIG` (a folder means
its ansible.cfg), `./ansible.cfg` (not in a world-writable folder), `~/.ansible.cfg`,
`/etc/ansible/ansible.cfg` is the one used; values are raw INI (`;` starts an inline
comment, no `%` interpolation), a text value in the file unquoted (`"ops"` is ops, as
ensure_type); an environment variable beats the file; relative paths in the file are
relative to the file's folder. Only the settings fleetmon acts on are read.
"""

from __future__ import annotations

import configparser
import dataclasses
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field

from fleetmon.errors import InventoryError
from fleetmon.inventory.vars import check_var, parse_bool


@dataclass(frozen=True, slots=True)
class _Setting:
    """Where a setting comes from, as ansible-core's definition of it: the environment
    variables (the last one set wins), else the file's entries (the last one present wins)."""

    kind: str  # str, int, bool, list, path, pathlist (ansible.config.manager.ensure_type)
    ini: tuple[tuple[str, str], ...]  # (section, key)
    env: tuple[str, ...]


def _defaults(key: str, env: str, kind: str) -> _Setting:
    return _Setting(kind, (("defaults", key),), (env,))


def _ssh(key: str, env: str) -> _Setting:
    return _Setting("str", (("ssh_connection", key),), (env,))


#: The settings fleetmon reads. host_key_checking and timeout are the ssh connection
#: plugin's options (plugins/connection/ssh.py): two ini entries and two environment
#: variables each.
_SETTINGS: dict[str, _Setting] = {
    "inventory": _defaults("inventory", "ANSIBLE_INVENTORY", "pathlist"),
    "remote_user": _defaults("remote_user", "ANSIBLE_REMOTE_USER", "str"),
    "remote_port": _defaults("remote_port", "ANSIBLE_REMOTE_PORT", "int"),
    "private_key_file": _defaults("private_key_file", "ANSIBLE_PRIVATE_KEY_FILE", "path"),
    "host_key_checking": _Setting(
        "bool",
        (("defaults", "host_key_checking"), ("ssh_connection", "host_key_checking")),
        ("ANSIBLE_HOST_KEY_CHECKING", "ANSIBLE_SSH_HOST_KEY_CHECKING"),
    ),
    "forks": _defaults("forks", "ANSIBLE_FORKS", "int"),
    "timeout": _Setting(
        "int",
        (("defaults", "timeout"), ("ssh_connection", "timeout")),
        ("ANSIBLE_TIMEOUT", "ANSIBLE_SSH_TIMEOUT"),
    ),
    "vault_password_file": _defaults("vault_password_file", "ANSIBLE_VAULT_PASSWORD_FILE", "path"),
    "vault_identity_list": _defaults("vault_identity_list", "ANSIBLE_VAULT_IDENTITY_LIST", "list"),
    "ssh_args": _ssh("ssh_args", "ANSIBLE_SSH_ARGS"),
    "ssh_common_args": _ssh("ssh_common_args", "ANSIBLE_SSH_COMMON_ARGS"),
    "ssh_extra_args": _ssh("ssh_extra_args", "ANSIBLE_SSH_EXTRA_ARGS"),
    "become": _Setting("bool", (("privilege_escalation", "become"),), ("ANSIBLE_BECOME",)),
    "become_user": _Setting(
        "str", (("privilege_escalation", "become_user"),), ("ANSIBLE_BECOME_USER",)
    ),
}


@dataclass(frozen=True, slots=True)
class AnsibleConfig:
    """The settings found (None where neither the file nor the environment sets one)."""

    file: str | None = None
    inventory: tuple[str, ...] = ()
    remote_user: str | None = None
    remote_port: int | None = None
    private_key_file: str | None = None
    host_key_checking: bool | None = None
    forks: int | None = None
    timeout: int | None = None
    vault_password_file: str | None = None
    vault_identity_list: tuple[str, ...] = ()
    ssh_args: str | None = None
    ssh_common_args: str | None = None
    ssh_extra_args: str | None = None
    become: bool | None = None
    become_user: str | None = None
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def host_defaults(self) -> dict[str, object]:
        """The settings that are host variables' defaults, as those variables."""
        pairs = {var: getattr(self, name) for name, var in _AS_VARIABLE.items()}
        return {k: v for k, v in pairs.items() if v is not None}


#: Settings that are the defaults of host variables (a host's own variable wins).
_AS_VARIABLE = {
    "remote_user": "ansible_user",
    "remote_port": "ansible_port",
    "private_key_file": "ansible_private_key_file",
    "host_key_checking": "ansible_host_key_checking",
    "ssh_args": "ansible_ssh_args",
    "ssh_common_args": "ansible_ssh_common_args",
    "ssh_extra_args": "ansible_ssh_extra_args",
    "become": "ansible_become",
    "become_user": "ansible_become_user",
}


def find_config(env: Mapping[str, str], cwd: str) -> tuple[str | None, list[str]]:
    """The ansible.cfg Ansible would use, and a warning when ./ansible.cfg was skipped."""
    candidates: list[str] = []
    env_path = None
    if "ANSIBLE_CONFIG" in env:
        env_path = os.path.expanduser(env["ANSIBLE_CONFIG"])
        if os.path.isdir(env_path):
            env_path = os.path.join(env_path, "ansible.cfg")
        candidates.append(env_path)
    here = os.path.join(cwd, "ansible.cfg")
    warnings: list[str] = []
    try:
        public = bool(os.stat(cwd).st_mode & stat.S_IWOTH)
    except OSError:
        public = False
    if public:
        if os.path.exists(here):
            warnings.append(
                f"{here}: ignored: the folder is world-writable (anyone could have written it)"
            )
    else:
        candidates.append(here)
    home = env.get("HOME") or os.path.expanduser("~")
    candidates += [os.path.join(home, ".ansible.cfg"), "/etc/ansible/ansible.cfg"]
    for path in candidates:
        if os.path.exists(path) and os.access(path, os.R_OK):
            return path, (warnings if path != env_path else [])
    return None, warnings


def _line(text: str, section: str, key: str) -> int | None:
    """The line of `key` in `[section]` (configparser keeps none)."""
    current = None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        m = re.match(r"^\[([^\]]+)\]", line)
        if m:
            current = m.group(1).strip()
        elif current == section and re.match(rf"^{re.escape(key)}\s*[=:]", line, re.I):
            return n
    return None


def unquote(text: str) -> str:
    """ansible.parsing.quoting.unquote: one pair of matching outer quotes removed."""
    quoted = len(text) > 1 and text[0] == text[-1] and text[0] in "\"'" and text[-2] != "\\"
    return text[1:-1] if quoted else text


def _convert(kind: str, value: str, base: str | None, from_file: bool) -> object:
    """A setting's value as ansible.config.manager.ensure_type makes it: a file's text
    setting is unquoted (`remote_user = "ops"` is ops), a list's items always are; a path,
    a number or a boolean is not (`"22"` is no port, Ansible refuses it too)."""
    if kind == "bool":
        try:
            return parse_bool(value)
        except ValueError as e:
            if from_file and unquote(value.strip()) != value.strip():
                # Ansible reads any quoted text as false: refused rather than guessed.
                raise ValueError(f"{e}: write it without quotes") from None
            raise
    if kind == "int":
        try:
            return int(value.strip())
        except ValueError:
            raise ValueError(f"expected an integer, got {value!r}") from None
    if kind == "list":
        return tuple(unquote(v.strip()) for v in value.split(",") if unquote(v.strip()))
    if kind in ("path", "pathlist"):
        paths = [value] if kind == "path" else [v for v in value.split(",") if v.strip()]
        resolved = []
        for p in (os.path.expandvars(os.path.expanduser(p.strip())) for p in paths):
            # Ansible's resolve_path: relative to the config file's folder (a host list
            # with commas is not a path, but it was split above like Ansible does).
            resolved.append(os.path.join(base, p) if base and not os.path.isabs(p) else p)
        return resolved[0] if kind == "path" else tuple(resolved)
    return unquote(value) if from_file else value


def _lookup(
    setting: _Setting, parser: configparser.ConfigParser, env: Mapping[str, str]
) -> tuple[str, str | None, tuple[str, str]] | None:
    """(raw value, the environment variable it came from or None for the file, the file's
    (section, key) it came from); None when neither sets it."""
    found = [var for var in setting.env if var in env]
    if found:
        return env[found[-1]], found[-1], setting.ini[-1]
    present = [(sec, key) for sec, key in setting.ini if parser.has_option(sec, key)]
    if present:
        section, key = present[-1]
        return parser.get(section, key, raw=True), None, (section, key)
    return None


def parse_config(
    text: str | None, file: str | None, env: Mapping[str, str], cwd: str
) -> AnsibleConfig:
    """The settings of an ansible.cfg text (None: no file) under this environment."""
    parser = configparser.ConfigParser(inline_comment_prefixes=(";",), interpolation=None)
    if text is not None:
        try:
            parser.read_string(text, source=file or "ansible.cfg")
        except configparser.Error as e:
            line = getattr(e, "lineno", None)
            message = str(e).splitlines()[0].rstrip(".")
            raise InventoryError(f"invalid ansible.cfg: {message}", file=file, line=line) from None
    found: dict[str, object] = {}
    base = os.path.dirname(os.path.abspath(file)) if file else None
    for name, setting in _SETTINGS.items():
        got = _lookup(setting, parser, env)
        if got is None or not got[0].strip():
            continue
        raw, var, (section, key) = got
        try:
            value = _convert(setting.kind, raw, cwd if var else base, not var)
            if value == "":
                continue  # `remote_user = ""`: no value, as an empty one
            found[name] = value
            if name in _AS_VARIABLE:
                check_var(_AS_VARIABLE[name], value)  # e.g. a ProxyCommand fleetmon cannot use
        except ValueError as e:
            if var is not None:
                raise InventoryError(f"environment variable {var}: {e}") from None
            line = _line(text or "", section, key)
            raise InventoryError(f"[{section}] {key}: {e}", file=file, line=line) from None
    return AnsibleConfig(file=file, **found)  # type: ignore[arg-type]


def load_config(env: Mapping[str, str] | None = None, cwd: str | None = None) -> AnsibleConfig:
    """Find and read the ansible.cfg in use (and the environment's overrides)."""
    env = os.environ if env is None else env
    cwd = os.getcwd() if cwd is None else cwd
    path, warnings = find_config(env, cwd)
    text = None
    if path is not None:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
            raise InventoryError(f"cannot read: {reason}", file=path) from None
    return dataclasses.replace(parse_config(text, path, env, cwd), warnings=tuple(warnings))
