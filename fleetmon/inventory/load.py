"""Inventory stage, input edge (I/O): read inventory sources and their group_vars/ host_vars/.

As ansible-core's InventoryManager: each source in order is a host list (`a,b,`), a folder
(its files read in name order, recursively, skipping Ansible's ignored names and
extensions), an inventory script (executable with `#!`: dynamic.py) or a file; all go into
one inventory. A file's format is chosen as Ansible's plugin chain would: .toml TOML,
`--list` JSON, .yaml/.yml/.json YAML, .ini/.cfg INI, anything else YAML when it is a YAML
mapping, else INI. Vars files are found beside each source (beside a folder source: inside it) as
Ansible's host_group_vars plugin does, and layered in source order.
"""

from __future__ import annotations

import gc
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from fleetmon.errors import InventoryError, OptionError
from fleetmon.inventory.connect import where
from fleetmon.inventory.data import Builder, Origin
from fleetmon.inventory.dynamic import (
    is_inventory_json,
    is_script,
    parse_inventory_json,
    read_script,
)
from fleetmon.inventory.inisrc import parse_ini_inventory
from fleetmon.inventory.inputfile import MAX_INVENTORY_BYTES, read_input
from fleetmon.inventory.ranges import MAX_HOSTS, RangeError, split_port
from fleetmon.inventory.resolve import Inventory, VarLayer, build_inventory
from fleetmon.inventory.scriptrun import SCRIPT_TIMEOUT_S
from fleetmon.inventory.tomlsrc import parse_toml_inventory
from fleetmon.inventory.values import is_encrypted
from fleetmon.inventory.yamlsrc import is_yaml_mapping, parse_vars_file, parse_yaml_inventory
from fleetmon.model import HostSpec

if TYPE_CHECKING:
    from fleetmon.inventory.vault import Secret

_YAML_EXTS = (".yaml", ".yml", ".json")
_VARS_EXTS = ("", ".yml", ".yaml", ".json")  # Ansible tries them in this order, first wins
_YAML_START = re.compile(r"^(---|[^\s\[#;=]+:\s*$)")
# Files of an inventory folder that Ansible never reads (inventory/manager.py IGNORED:
# hidden names, vars folders, REJECT_EXTS + INVENTORY_IGNORE_EXTS).
_IGNORED = re.compile(
    r"^\.|^host_vars$|^group_vars$|^vars_plugins$"
    r"|(?:\.pyc|\.pyo|\.swp|\.bak|~|\.rpm|\.md|\.txt|\.rst|\.orig|\.cfg|\.retry)$"
)
_PLUGIN = re.compile(r"^plugin:[ \t]*['\"]?([^\s'\"#]+)", re.MULTILINE)
MAX_HOSTS_VAR = "FLEETMON_MAX_HOSTS"


def read_text(
    path: str, secrets: Sequence[Secret] = (), what: str = "an inventory file", pipes: bool = False
) -> str:
    """A file's UTF-8 text (decrypted when vault-encrypted), or an InventoryError naming it;
    `pipes`: a pipe is read too (inputfile.read_input)."""
    try:
        data = read_input(path, what, MAX_INVENTORY_BYTES, InventoryError, pipes=pipes)
    except IsADirectoryError:
        raise InventoryError("is a directory, not an inventory file", file=path) from None
    except OSError as e:
        raise InventoryError(f"cannot read: {e.strerror}", file=path) from None
    try:
        text = data.decode("utf-8-sig")  # a BOM from a Windows editor is not a host name
    except UnicodeDecodeError as e:
        raise _not_text(path, data, e.start, what) from None
    if not is_encrypted(text):
        return text
    from fleetmon.inventory.vault import VaultError, decrypt_text  # cryptography: when needed

    try:
        # A vault file is read as its plaintext, never as hosts named after its hex lines.
        return decrypt_text(text, secrets)
    except VaultError as e:
        raise InventoryError(f"vault-encrypted file: {e}", file=path) from None


def _not_text(path: str, data: bytes, at: int, what: str) -> InventoryError:
    """Why a file is no UTF-8: a NUL byte among its first 8 KiB makes it a binary (such as
    a compiled inventory program, which Ansible would run), else the line of the bad byte."""
    if b"\0" not in data[:8192]:
        return InventoryError("not UTF-8 text", file=path, line=data[:at].count(b"\n") + 1)
    if what != "an inventory file":
        return InventoryError(f"not UTF-8 text: this looks like a binary, not {what}", file=path)
    return InventoryError(
        "not UTF-8 text: this looks like a binary, not an inventory file, nor an inventory "
        "script (fleetmon runs executables that start with a `#!` line only)",
        file=path,
    )


def detect_format(path: str, text: str) -> str:
    """ "yaml" or "ini" for an inventory file."""
    ext = os.path.splitext(path)[1].lower()
    if ext in _YAML_EXTS:
        return "yaml"
    if ext in (".ini", ".cfg"):
        return "ini"
    if is_yaml_mapping(text):
        return "yaml"
    first = next(
        (s for s in (ln.strip() for ln in text.splitlines()) if s and s[0] not in "#;"), ""
    )
    # A broken YAML file is still YAML: its own error beats a confusing INI one.
    return "yaml" if _YAML_START.match(first) else "ini"


def _files(path: str) -> list[str]:
    """A vars file, or the files of a vars folder (sorted, recursive, no hidden/backup files)."""
    if not os.path.isdir(path):
        return [path]
    found: list[str] = []
    for entry in sorted(os.listdir(path)):
        if entry.startswith(".") or entry.endswith("~"):
            continue
        full = os.path.join(path, entry)
        ext = os.path.splitext(entry)[1]
        if os.path.isdir(full) and not ext:
            found.extend(_files(full))
        elif os.path.isfile(full) and ext in _VARS_EXTS:
            found.append(full)
    return found


def load_vars_dir(
    folder: str,
    names: list[str],
    secrets: Sequence[Secret] = (),
    warnings: list[str] | None = None,
) -> dict[str, VarLayer]:
    """The variables group_vars/ or host_vars/ gives each of `names` that has a file there
    (what Ansible warns about in them added to `warnings`)."""
    try:
        entries = set(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return {}  # Ansible skips a missing (or non-folder) group_vars/host_vars
    except OSError as e:
        raise InventoryError(f"cannot read: {e.strerror}", file=folder) from None
    layers: dict[str, VarLayer] = {}
    for name in names:
        entry = next((name + ext for ext in _VARS_EXTS if name + ext in entries), None)
        if entry is None:
            continue
        values, origins = {}, {}
        for file in _files(os.path.join(folder, entry)):
            v, o = parse_vars_file(read_text(file, secrets, "a vars file"), file, warnings)
            values.update(v)
            origins.update(o)
        layers[name] = (values, origins)
    return layers


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: a big inventory makes millions of acyclic objects, and the
    collections they trigger cost 4x the parse itself (2.1 s -> 0.5 s for 50,000 hosts)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def max_hosts(environ: Mapping[str, str] = os.environ) -> int:
    """The most hosts an inventory may have: $FLEETMON_MAX_HOSTS, else ranges.MAX_HOSTS."""
    text = environ.get(MAX_HOSTS_VAR, "").strip()
    if not text:
        return MAX_HOSTS
    if not text.isdecimal() or int(text) < 1:
        raise OptionError(f"{MAX_HOSTS_VAR}={text!r}: expected a number of hosts (at least 1)")
    return int(text)


def load_inventory(
    sources: str | Sequence[str],
    secrets: Sequence[Secret] = (),
    script_timeout_s: float = SCRIPT_TIMEOUT_S,
    limit: int | None = None,
) -> Inventory:
    """Load inventory sources (files, folders, scripts, host lists) into one inventory, with
    the group_vars/ and host_vars/ beside each and those of the current folder (Ansible's
    playbook folder: above the sources' own); InventoryError on any problem, naming the
    file and line. `secrets` open vault-encrypted files. Past `limit` hosts in all (default:
    max_hosts()) the inventory is refused before more are built."""
    paths = [sources] if isinstance(sources, str) else list(sources)
    with _gc_paused():
        b = Builder(paths[0] if paths else "", max_hosts() if limit is None else limit)
        for source in paths:
            _read_source(b, source, secrets, script_timeout_s)
        b.reconcile()
        cache: dict[str, tuple[dict[str, VarLayer], dict[str, VarLayer]]] = {}

        def files_of(base: str) -> tuple[dict[str, VarLayer], dict[str, VarLayer]]:
            # One folder, however named ("" beside `inv.ini`, the cwd as playbook folder),
            # is read once: its layers still apply at each level, as in Ansible.
            key = os.path.realpath(base or os.curdir)
            if key not in cache:
                cache[key] = (
                    load_vars_dir(
                        os.path.join(base, "group_vars"), list(b.groups), secrets, b.warnings
                    ),
                    load_vars_dir(
                        os.path.join(base, "host_vars"), list(b.hosts), secrets, b.warnings
                    ),
                )
            return cache[key]

        bases = [files_of(base) for base in _vars_bases(paths)]
        play = _playbook_dir()
        return build_inventory(
            ",".join(paths),
            b,
            [g for g, _ in bases],
            [h for _, h in bases],
            files_of(play) if play is not None else ({}, {}),
        )


def _playbook_dir() -> str | None:
    """The folder whose group_vars/ and host_vars/ are Ansible's "playbook" ones: as for
    `ansible` and `ansible-inventory`, the current folder (None when it is gone)."""
    try:
        return os.getcwd()
    except OSError:
        return None


def _is_host_list(source: str) -> bool:
    return "," in source and not os.path.exists(source)


def _vars_bases(sources: Sequence[str]) -> list[str]:
    """Where each source's group_vars/ and host_vars/ are (vars/plugins.py): inside a folder
    source, beside a file; none for a host list."""
    return [s if os.path.isdir(s) else os.path.dirname(s) for s in sources if not _is_host_list(s)]


def _read_source(b: Builder, source: str, secrets: Sequence[Secret], timeout_s: float) -> None:
    if _is_host_list(source):
        _host_list(b, source)
    elif os.path.isdir(source):
        _read_folder(b, source, secrets, timeout_s)
    else:
        _read_file(b, source, secrets, timeout_s, explicit=True)


def _host_list(b: Builder, source: str) -> None:
    """`-i 'web1,web2:2222,'`: ungrouped hosts (Ansible's host_list plugin, no ranges)."""
    b.file = source
    at = Origin(source, None, "ungrouped.hosts")
    for item in (s.strip() for s in source.split(",")):
        if not item:
            continue
        try:
            name, port = split_port(item)
        except RangeError as e:
            raise at.error(str(e)) from None
        host = b.add_host(name, "ungrouped", at)
        if port is not None:
            b.set_host_var(host, "ansible_port", port, at.child(name))


def _read_folder(b: Builder, folder: str, secrets: Sequence[Secret], timeout_s: float) -> None:
    try:
        entries = sorted(os.listdir(folder))
    except OSError as e:
        raise InventoryError(f"cannot read: {e.strerror}", file=folder) from None
    for entry in entries:
        if _IGNORED.search(entry):
            continue
        path = os.path.join(folder, entry)
        if os.path.isdir(path):
            _read_folder(b, path, secrets, timeout_s)
        elif os.path.isfile(path):
            _read_file(b, path, secrets, timeout_s, explicit=False)


def _read_file(
    b: Builder, path: str, secrets: Sequence[Secret], timeout_s: float, *, explicit: bool
) -> None:
    b.file = path
    if is_script(path):
        read_script(path, b, timeout_s)
        return
    text = read_text(path, secrets, pipes=explicit)
    plugin = _PLUGIN.search(text) if path.endswith((".yml", ".yaml")) else None
    if plugin is not None:
        detail = (
            f"inventory plugin {plugin.group(1)!r} is not run by fleetmon: give it the JSON "
            f"of `ansible-inventory -i {path} --list > inventory.json` instead"
        )
        if explicit:
            raise Origin(path, text[: plugin.start()].count("\n") + 1, "plugin").error(detail)
        b.warnings.append(f"{path}: {detail} (skipped)")  # Ansible too goes on without it
        return
    if path.endswith(".toml"):
        parse_toml_inventory(text, path, b)
    elif is_inventory_json(text):
        parse_inventory_json(text, path, b)
    elif detect_format(path, text) == "yaml":
        parse_yaml_inventory(text, path, b)
    else:
        parse_ini_inventory(text, path, b)


#: The variables of a host's key file; the later one wins (vars._last).
KEY_FILE_VARS = ("ansible_private_key_file", "ansible_ssh_private_key_file")


def unreadable_key_files(inv: Inventory, hosts: Iterable[HostSpec]) -> dict[str, str]:
    """The hosts of `hosts` whose SSH key file cannot be read (before any connection is
    tried), each with the reason naming the variable and where it is set: such a host is
    skipped, as for any value fleetmon cannot use, and the others are collected.
    InventoryError for a key file of the run's own settings (ansible.cfg's private_key_file
    or ANSIBLE_PRIVATE_KEY_FILE, not an inventory variable): every host it serves fails."""
    why_not: dict[str, str | None] = {}  # key file -> why it cannot be read (None: it can)
    bad: dict[str, str] = {}
    for h in hosts:
        if h.connection != "ssh" or h.key_file is None:
            continue
        if h.key_file not in why_not:
            why_not[h.key_file] = _unreadable(h.key_file)
        why = why_not[h.key_file]
        if why is None:
            continue
        var = next((v for v in reversed(KEY_FILE_VARS) if v in h.vars), None)
        if var is None:
            raise InventoryError(
                f"{why} (private_key_file of ansible.cfg or ANSIBLE_PRIVATE_KEY_FILE)"
            )
        bad[h.name] = f"{where(inv, h.name, var)}: {why}"
    return bad


def _unreadable(path: str) -> str | None:
    try:
        with open(path, "rb"):
            return None
    except OSError as e:
        return f"cannot read key file {path!r}: {e.strerror}"
