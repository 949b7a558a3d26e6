"""Inventory stage: TOML inventories, text to builder (pure).

As ansible-core's toml plugin (plugins/inventory/toml.py): top-level tables are groups, each
with `hosts` (a table of host patterns to their variables), `children` (a list of group
names) and `vars` (a table). tomllib keeps no line numbers: errors name the key path.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

from fleetmon.errors import InventoryError, did_you_mean
from fleetmon.inventory.data import Builder, Origin
from fleetmon.inventory.ranges import RangeError, expand_host_pattern
from fleetmon.model.yamlnodes import TOO_MANY_DIGITS

_SECTIONS = ("vars", "children", "hosts")
_AT = re.compile(r" \(at line (\d+), column \d+\)")


def parse_toml_inventory(text: str, file: str, b: Builder) -> None:
    """Read a TOML inventory into the builder; InventoryError naming the file and key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = _AT.search(str(e))
        line = int(m.group(1)) if m else None
        raise InventoryError(f"invalid TOML: {_AT.sub('', str(e))}", file=file, line=line) from None
    except ValueError:  # tomllib's int() of a number past Python's limit on digits
        raise InventoryError(f"invalid TOML: {TOO_MANY_DIGITS}", file=file) from None
    top = Origin(file, None)
    for name, group in data.items():
        _group(b, name, group, top.child(name))


def _group(b: Builder, name: str, data: Any, at: Origin) -> None:
    if data is not None and not isinstance(data, dict):
        b.warn(
            at, "not a group (a table with hosts, children or vars): skipped, as Ansible skips it"
        )
        return
    b.group(name, at)
    for key, value in (data or {}).items():
        here = at.child(key)
        if key == "vars":
            if not isinstance(value, dict):
                raise here.error(f"expected a table of variables, got {value!r}")
            for var, v in value.items():
                b.set_group_var(name, var, v, here.child(var))
        elif key == "children":
            if not isinstance(value, list):
                raise here.error(f"expected a list of group names, got {value!r}")
            for child in value:
                if not isinstance(child, str) or not child:
                    raise here.error(f"group names must be non-empty strings, got {child!r}")
                b.group(child, here.child(child))
                b.add_child(name, child, here.child(child))
        elif key == "hosts":
            if not isinstance(value, dict):
                raise here.error(f"expected a table of hosts, got {value!r}")
            for pattern, hvars in value.items():
                _hosts(b, name, pattern, hvars, here.child(pattern))
        else:
            b.warn(here, f"unknown key: skipped, as Ansible skips it{did_you_mean(key, _SECTIONS)}")


def _hosts(b: Builder, group: str, pattern: str, hvars: Any, at: Origin) -> None:
    if not isinstance(hvars, dict):
        raise at.error(f"expected a table of variables, got {hvars!r}")
    try:
        names, port = expand_host_pattern(pattern, b.max_hosts)
    except RangeError as e:
        raise at.error(str(e)) from None
    for host_name in names:
        host = b.add_host(host_name, group, at)
        if port is not None:
            b.set_host_var(host, "ansible_port", port, at)
        for var, value in hvars.items():
            b.set_host_var(host, var, value, at.child(var))
