"""Inventory stage (reads files: an input edge): Ansible-compatible YAML and INI inventories.

load.py      files, format detection, group_vars/ host_vars/        (I/O)
yamlsrc.py   inisrc.py   ranges.py   -> data.Builder                  (pure)
resolve.py   precedence, HostSpec, host order; vars.py the variables  (pure)
patterns.py  --limit host patterns;  show.py --graph/--list/--host    (pure)
addresses.py what is one host address (IPv6...) in a pattern      (pure)
"""

from __future__ import annotations

from fleetmon.inventory.data import Origin
from fleetmon.inventory.load import load_inventory, unreadable_key_files
from fleetmon.inventory.resolve import Group, Inventory
from fleetmon.inventory.show import render_graph, render_host, render_list
from fleetmon.inventory.vars import FLEETMON_VARS, FleetmonVars, fleetmon_vars, parse_bool

__all__ = [
    "FLEETMON_VARS",
    "FleetmonVars",
    "Group",
    "Inventory",
    "Origin",
    "fleetmon_vars",
    "load_inventory",
    "parse_bool",
    "render_graph",
    "render_host",
    "render_list",
    "unreadable_key_files",
]
