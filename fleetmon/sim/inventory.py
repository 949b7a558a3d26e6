"""Simulator (edge): the Ansible YAML inventory that matches a simulated fleet (pure text).

Groups: the host's kind (kvm, xen, linux), its rack (20 hosts each) and, with `--sites`, its
site (`site_NAME`, and `fleetmon_site: NAME` on the host). A faulty host carries `sim_fault` so
a reader of the report can tell a scripted failure from a real one.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import Any

import yaml

from fleetmon.sim.hosts import HostProfile


def render_inventory(
    hosts: Sequence[HostProfile],
    *,
    user: str,
    key_file: str,
    known_hosts_file: str,
    inventory_file: str,
) -> str:
    """The inventory as YAML text, with a comment saying how to collect it."""
    kinds: dict[str, dict[str, Any]] = {}
    racks: dict[str, dict[str, None]] = {}
    for h in hosts:
        entry: dict[str, Any] = {"ansible_host": h.address, "ansible_port": h.port}
        if h.fault:
            entry["sim_fault"] = h.fault
        if h.site:
            entry["fleetmon_site"] = h.site
            racks.setdefault(f"site_{h.site}", {})[h.name] = None
        kinds.setdefault(h.kind, {})[h.name] = entry
        racks.setdefault(h.rack, {})[h.name] = None
    children: dict[str, Any] = {k: {"hosts": v} for k, v in sorted(kinds.items())}
    children |= {r: {"hosts": v} for r, v in sorted(racks.items())}
    # The hosts' keys are in the simulator's own known_hosts file, named here as Ansible
    # would pass it to ssh, so `fleetmon run` (and ansible) verify them without options.
    ssh_args = f"-o UserKnownHostsFile={shlex.quote(known_hosts_file)}"
    doc = {
        "all": {
            "vars": {
                "ansible_user": user,
                "ansible_ssh_private_key_file": key_file,
                "ansible_ssh_common_args": ssh_args,
            },
            "children": children,
        }
    }
    head = (
        f"# {len(hosts)} hosts played by `fleetmon simulate` on loopback. Collect them with:\n"
        f"#   fleetmon run {inventory_file}\n"
    )
    return head + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)
