"""The files a command reads (I/O edge): what no output of it may be written over or into.

`fleetmon run inv.yaml --html inv.yaml` replaced the inventory with the report, and the next
run failed on it; so did an output naming a group_vars file, a rule file or a key file.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Sequence

from fleetmon.inventory.ansiblecfg import AnsibleConfig
from fleetmon.inventory.vaultpass import VaultOptions, expand_path, split_vault_id
from fleetmon.model import HostSpec

#: Vault "sources" that are the terminal, not a file (inventory.vaultpass).
_PROMPTS = ("prompt", "prompt_ask_vault_pass")


def inventory_reads(
    cfg: AnsibleConfig, vault: VaultOptions, sources: Sequence[str]
) -> tuple[str, ...]:
    """What opening the inventory reads: ansible.cfg, the vault password files, the
    inventory sources (a folder: every file in it), and the group_vars/ and host_vars/
    folders beside each source and in the current folder (Ansible's playbook folder)."""
    read = [cfg.file] if cfg.file else []
    slugs = [*vault.config_ids, *vault.vault_ids, *vault.password_files]
    slugs += [vault.config_file] if vault.config_file else []
    for slug in slugs:
        source = split_vault_id(slug)[1]
        if source not in _PROMPTS:
            read.append(expand_path(source))  # `~/f`, `$HOME/f`: the file it opens
    # As inventory.load: a source that names no file but holds a comma is a host list.
    files = [s for s in sources if os.path.exists(s) or "," not in s]
    read += files
    bases = [s if os.path.isdir(s) else os.path.dirname(s) for s in files]
    for base in dict.fromkeys([*bases, ""]):  # "": the current folder
        for vars_dir in ("group_vars", "host_vars"):
            folder = os.path.join(base, vars_dir)
            if os.path.isdir(folder):
                read.append(folder)
    return tuple(read)


def host_reads(args: argparse.Namespace, hosts: Iterable[HostSpec]) -> list[str]:
    """What connecting to `hosts` reads: their SSH key files, ssh_config files (`-F` in
    their ssh args) and known_hosts files (the inventory's, --known-hosts, else OpenSSH's
    defaults; with --accept-new-host-keys a run writes to them too)."""
    from fleetmon.collect.hostkeys import known_hosts_files

    read: dict[str, None] = {}
    for h in hosts:
        if h.connection != "ssh":
            continue
        if h.key_file:
            read[os.path.expanduser(h.key_file)] = None
        if h.ssh_config and h.ssh_config.lower() != "none":
            read[h.ssh_config] = None
        files = known_hosts_files(None, getattr(args, "known_hosts", None), h.known_hosts)
        read.update(dict.fromkeys([*files.user, *files.system]))
    if getattr(args, "known_hosts", None):
        read[os.path.expanduser(args.known_hosts)] = None
    return list(read)


def rule_reads(args: argparse.Namespace, playbooks: str) -> list[str]:
    """The -r rule files and folders, and the shipped playbooks' folder when it is loaded."""
    read = list(getattr(args, "rules", None) or [])
    default = not getattr(args, "no_default_rules", False)
    if default and not getattr(args, "no_rules", False):
        read.append(playbooks)
    return read
