"""Inventory stage: `fleetmon inventory --graph/--list/--host` texts, as ansible-inventory (pure).

Same shapes as lib/ansible/cli/inventory.py (definition order, JSON with sorted keys and an
indent of 4), except that text in variables whose names look secret (pass, secret, token,
vault, private_key) is masked unless the caller asks to show secrets.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Mapping
from typing import Any

from fleetmon.errors import InventoryError, did_you_mean
from fleetmon.inventory.resolve import Inventory
from fleetmon.inventory.values import to_json

#: Variable names whose values are never printed (same rule as the raw store's).
SECRET_VAR = re.compile(r"pass|secret|token|vault|private_key(?!_file)", re.IGNORECASE)
MASK = "********"


def _graph_group(inv: Inventory, name: str, depth: int, out: list[str]) -> None:
    prefix = "  |" * depth + "--" if depth else ""
    out.append(f"{prefix}@{name}:")
    group = inv.groups[name]
    for kid in group.children:
        _graph_group(inv, kid, depth + 1, out)
    if name != "all":  # hosts of `all` itself are shown under `ungrouped`
        out.extend("  |" * (depth + 1) + "--" + h for h in group.hosts)


def render_graph(inv: Inventory, group: str = "all") -> str:
    """The group tree like `ansible-inventory --graph` (`@all:` / `  |--@ungrouped:` ...)."""
    if group not in inv.groups:
        raise InventoryError(f"no group {group!r}{did_you_mean(group, inv.groups)}", file=inv.path)
    out: list[str] = []
    _graph_group(inv, group, 0, out)
    return "\n".join(out) + "\n"


def public_vars(
    values: Mapping[str, Any], show_secrets: bool = False, unsafe: bool = True
) -> dict[str, Any]:
    """The variables as ansible-inventory prints them, secret-looking text masked (a vault
    value is shown as its ciphertext, a boolean or a number as itself); `unsafe`: `!unsafe`
    text as `--list` marks it, else as `--host` prints it, plain."""
    out: dict[str, Any] = to_json(values, unsafe)
    if not show_secrets:
        for k, v in values.items():
            if isinstance(v, str) and SECRET_VAR.search(k):
                out[k] = MASK
    return out


def _json_default(value: object) -> object:
    # YAML gives dates and bytes; ansible-inventory prints them as text too.
    if isinstance(value, datetime.date | datetime.datetime):
        return value.isoformat()
    return str(value)


def _dumps(data: object) -> str:
    return json.dumps(data, sort_keys=True, indent=4, ensure_ascii=False, default=_json_default)


def render_list(inv: Inventory, show_secrets: bool = False) -> str:
    """JSON like `ansible-inventory --list`: groups with hosts/children, `_meta.hostvars`."""
    result: dict[str, Any] = {}
    seen: set[str] = set()

    def group(name: str) -> None:
        g = inv.groups[name]
        entry: dict[str, Any] = {}
        if name != "all" and g.hosts:
            entry["hosts"] = list(g.hosts)
        if g.children:
            entry["children"] = list(g.children)
        for kid in g.children:
            if kid not in seen:
                seen.add(kid)
                group(kid)
        if entry:  # ansible-inventory drops empty groups (`ungrouped` usually)
            result[name] = entry

    group("all")
    hostvars = {n: public_vars(h.vars, show_secrets) for n, h in inv.hosts.items() if h.vars}
    result["_meta"] = {"hostvars": hostvars, "profile": "inventory_legacy"}
    return _dumps(result) + "\n"


def render_host(inv: Inventory, name: str, show_secrets: bool = False) -> str:
    """JSON of one host's merged variables, like `ansible-inventory --host NAME`."""
    spec = inv.hosts.get(name)
    if spec is None:
        hint = did_you_mean(name, inv.hosts)
        raise InventoryError(f"no host {name!r} in the inventory{hint}", file=inv.path)
    return _dumps(public_vars(spec.vars, show_secrets, unsafe=False)) + "\n"
