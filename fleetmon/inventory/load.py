"""Inventory stage, input edge (I/O): read an inventory file and its group_vars/ host_vars/.

The format is chosen as Ansible's plugin chain would: .yaml/.yml/.json are YAML, .ini/.cfg
INI, anything else YAML when it is a YAML mapping, else INI. Vars files are found as
Ansible's host_group_vars plugin does (vars/manager find_vars_files).
"""

from __future__ import annotations

import gc
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from fleetmon.errors import InventoryError
from fleetmon.inventory.data import Builder
from fleetmon.inventory.inisrc import parse_ini_inventory
from fleetmon.inventory.resolve import Inventory, VarLayer, build_inventory
from fleetmon.inventory.values import is_encrypted
from fleetmon.inventory.yamlsrc import is_yaml_mapping, parse_vars_file, parse_yaml_inventory
from fleetmon.model import HostSpec

if TYPE_CHECKING:
    from fleetmon.inventory.vault import Secret

_YAML_EXTS = (".yaml", ".yml", ".json")
_VARS_EXTS = ("", ".yml", ".yaml", ".json")  # Ansible tries them in this order, first wins
_YAML_START = re.compile(r"^(---|[^\s\[#;=]+:\s*$)")


def read_text(path: str, secrets: Sequence[Secret] = ()) -> str:
    """A file's UTF-8 text (decrypted when vault-encrypted), or an InventoryError naming it."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except IsADirectoryError:
        raise InventoryError("is a directory, not an inventory file", file=path) from None
    except OSError as e:
        raise InventoryError(f"cannot read: {e.strerror}", file=path) from None
    try:
        text = data.decode("utf-8-sig")  # a BOM from a Windows editor is not a host name
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise InventoryError("not UTF-8 text", file=path, line=line) from None
    if not is_encrypted(text):
        return text
    from fleetmon.inventory.vault import VaultError, decrypt_text  # cryptography: when needed

    try:
        # A vault file is read as its plaintext, never as hosts named after its hex lines.
        return decrypt_text(text, secrets)
    except VaultError as e:
        raise InventoryError(f"vault-encrypted file: {e}", file=path) from None


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
    folder: str, names: list[str], secrets: Sequence[Secret] = ()
) -> dict[str, VarLayer]:
    """The variables group_vars/ or host_vars/ gives each of `names` that has a file there."""
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
            v, o = parse_vars_file(read_text(file, secrets), file)
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


def load_inventory(path: str, secrets: Sequence[Secret] = ()) -> Inventory:
    """Load a YAML or INI inventory with its group_vars/ and host_vars/; InventoryError on any
    problem, naming the file and line. `secrets` open vault-encrypted files."""
    with _gc_paused():
        return _load(path, secrets)


def _load(path: str, secrets: Sequence[Secret]) -> Inventory:
    text = read_text(path, secrets)
    if not text.strip():
        raise InventoryError("inventory is empty", file=path)
    b = Builder(path)
    if detect_format(path, text) == "yaml":
        parse_yaml_inventory(text, path, b)
    else:
        parse_ini_inventory(text, path, b)
    b.reconcile()
    if not b.hosts:
        raise InventoryError("inventory defines no hosts", file=path)
    base = os.path.dirname(path)
    group_files = load_vars_dir(os.path.join(base, "group_vars"), list(b.groups), secrets)
    host_files = load_vars_dir(os.path.join(base, "host_vars"), list(b.hosts), secrets)
    return build_inventory(path, b, group_files, host_files)


def check_key_files(inv: Inventory, hosts: Iterable[HostSpec]) -> None:
    """InventoryError at the variable's definition for the first SSH key file of `hosts`
    that cannot be read (before any connection is tried)."""
    seen: set[str] = set()
    for h in hosts:
        if h.connection != "ssh" or h.key_file is None or h.key_file in seen:
            continue
        seen.add(h.key_file)
        try:
            with open(h.key_file, "rb"):
                pass
        except OSError as e:
            detail = f"cannot read key file {h.key_file!r}: {e.strerror}"
            origin = inv.origin(h.name, "ansible_ssh_private_key_file") or inv.origin(
                h.name, "ansible_private_key_file"
            )
            raise (
                origin.error(detail) if origin else InventoryError(detail, file=inv.path)
            ) from None
