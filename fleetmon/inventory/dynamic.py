"""Inventory stage: dynamic inventories, the JSON of `SCRIPT --list` and `ansible-inventory --list`.

As ansible-core's script plugin (plugins/inventory/script.py): the script is run with
`--list` (its stdout is the JSON, stderr shown only when it fails), `_meta.hostvars` gives
each host's variables, and without `_meta` the script is asked `--host NAME` per host. A
group is `{"hosts": [...], "vars": {...}, "children": [...]}`, or a bare list of hosts.
The same JSON saved to a file (`ansible-inventory -i ANY --list > inv.json`) is read
without running anything, so any inventory plugin's output can be given to fleetmon.
The script is run by scriptrun.py (bounded in time and output).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Mapping
from typing import Any

from fleetmon.errors import InventoryError
from fleetmon.inventory.data import Builder, Origin
from fleetmon.inventory.scriptrun import SCRIPT_TIMEOUT_S, run_script
from fleetmon.inventory.values import Unsafe, from_json
from fleetmon.model.yamlnodes import MAX_DEPTH, TOO_MANY_DIGITS

_SECTIONS = ("hosts", "vars", "children")


def is_inventory_json(text: str) -> bool:
    """Whether a text is inventory JSON in the script/`--list` shape (hosts as lists,
    `_meta`), not a YAML-shaped inventory that happens to be written as JSON."""
    if not text.lstrip().startswith("{"):
        return False
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # nested too deeply: the YAML loader says so
        return False
    if not isinstance(data, dict):
        return False
    if "_meta" in data:
        return True
    for group in data.values():
        if isinstance(group, list):
            return True
        if isinstance(group, dict) and any(
            isinstance(group.get(k), list) for k in ("hosts", "children")
        ):
            return True
    return False


def _load_json(text: str, what: str, file: str) -> Any:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InventoryError(
            f"{what} is not valid JSON: {e.msg}", file=file, line=e.lineno
        ) from None
    except ValueError:  # json's int() of a number past Python's limit on digits
        raise InventoryError(f"{what}: {TOO_MANY_DIGITS}", file=file) from None
    except RecursionError:
        data = _DEEP
    if data is _DEEP or _too_deep(data):
        # As a YAML inventory's (model.yamlnodes): the variables are walked recursively.
        raise InventoryError(
            f"{what}: nested too deeply (more than {MAX_DEPTH} levels of lists and objects)",
            file=file,
        )
    return data


_DEEP = object()


def _too_deep(data: Any) -> bool:
    """Whether lists and objects nest past MAX_DEPTH (walked without recursion)."""
    stack = [(data, 0)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict | list):
            if level >= MAX_DEPTH:
                return True
            items = value.values() if isinstance(value, dict) else value
            stack.extend((v, level + 1) for v in items)
    return False


def parse_inventory_json(
    text: str,
    file: str,
    b: Builder,
    host_vars: Callable[[str], Mapping[str, Any]] | None = None,
    what: str = "inventory",
) -> None:
    """Read `--list` JSON into the builder. `host_vars(name)` answers for hosts when there is
    no `_meta.hostvars` (a script's `--host`); without it such hosts have no variables."""
    data = _load_json(text, what, file)
    top = Origin(file, None)
    if not isinstance(data, dict):
        raise top.error(f"{what}: expected a JSON object of groups, got {type(data).__name__}")
    meta = data.get("_meta")
    hostvars: Mapping[str, Any] | None = None
    if meta is not None:
        hostvars = meta.get("hostvars") if isinstance(meta, dict) else None
        if not isinstance(hostvars, dict):
            raise top.error("_meta.hostvars: expected a JSON object of hosts")
    seen: dict[str, None] = {}
    for name, group in data.items():
        if name != "_meta":
            _group(b, str(name), group, top.child(str(name)), seen)
    for host in seen:
        values = hostvars.get(host, {}) if hostvars is not None else None
        if values is None:
            values = host_vars(host) if host_vars is not None else {}
        at = top.child(f"_meta.hostvars.{host}")
        if not isinstance(values, dict):
            raise at.error("expected a JSON object of variables")
        for key, value in values.items():
            b.set_host_var(b.hosts[host], key, from_json(value), at.child(str(key)))


def _unsafe(value: Any) -> Any:
    """A value with its text marked unsafe, lists and objects through (vault values kept)."""
    if isinstance(value, str):
        return value if isinstance(value, Unsafe) else Unsafe(value)
    if isinstance(value, dict):
        return {k: _unsafe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unsafe(v) for v in value]
    return value


def _legacy_value(value: Any) -> Any:
    return _unsafe(from_json(value))


def _group(b: Builder, name: str, data: Any, at: Origin, seen: dict[str, None]) -> None:
    b.group(name, at)
    convert: Callable[[Any], Any] = from_json
    if not isinstance(data, dict):
        data = {"hosts": data}  # a bare list of hosts, as Ansible still accepts
    elif not any(k in data for k in _SECTIONS):
        # Ansible's old shape: the group is one host of that name, the object its variables,
        # which "cannot be templated" (its decoder trusts only `vars` and `_meta.hostvars`).
        data = {"hosts": [name], "vars": data}
        convert = _legacy_value
    hosts, gvars, children = data.get("hosts", []), data.get("vars", {}), data.get("children", [])
    if not isinstance(hosts, list):
        raise at.error(f"hosts: expected a list of host names, got {type(hosts).__name__}")
    if not isinstance(gvars, dict):
        raise at.error(f"vars: expected a JSON object, got {type(gvars).__name__}")
    if not isinstance(children, list):
        raise at.error(f"children: expected a list of group names, got {type(children).__name__}")
    for host in hosts:
        if not isinstance(host, str) or not host:
            raise at.error(f"hosts: host names must be non-empty strings, got {host!r}")
        b.add_host(host, name, at.child(f"hosts.{host}"))
        seen[host] = None
    for key, value in gvars.items():
        b.set_group_var(name, key, convert(value), at.child(f"vars.{key}"))
    for child in children:
        if not isinstance(child, str) or not child:
            raise at.error(f"children: group names must be non-empty strings, got {child!r}")
        b.add_child(name, child, at.child(f"children.{child}"))


def read_script(path: str, b: Builder, timeout_s: float = SCRIPT_TIMEOUT_S) -> None:
    """Run an inventory script (`--list`, then `--host` per host without `_meta`)."""

    def warn(message: str) -> None:
        b.warnings.append(f"{path}: {message}")

    def host_vars(host: str) -> Mapping[str, Any]:
        text = run_script(path, ["--host", host], timeout_s, warn)
        if not text.strip():
            return {}
        values = _load_json(text, f"`--host {host}` output", path)
        return values if isinstance(values, dict) else {}

    text = run_script(path, ["--list"], timeout_s, warn)
    parse_inventory_json(text, path, b, host_vars, what="`--list` output")


def is_script(path: str) -> bool:
    """An executable file that starts with `#!`: run, not read (Ansible's script plugin)."""
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode) or not mode & 0o111:  # an executable FIFO: never opened
            return False
        with open(path, "rb") as f:
            return f.read(2) == b"#!"
    except OSError:
        return False
