"""The inventory of a command (I/O edge): ansible.cfg, vault passwords, loading, warnings.

What `run`, `inventory` and `rules list` share: ansible.cfg (and its environment variables)
fills what the command line leaves unset, the vault secrets are read once (files, scripts,
the terminal), the inventory sources are loaded with them, every warning is printed on
stderr, and for a run the selected hosts are split into those collected and those skipped.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fleetmon.cli.inputs import inventory_reads
from fleetmon.errors import OptionError
from fleetmon.inventory import Inventory, load_inventory, unreadable_key_files
from fleetmon.inventory.ansiblecfg import AnsibleConfig, load_config
from fleetmon.inventory.connect import deadline_skip, plan_hosts
from fleetmon.inventory.template import Renderer
from fleetmon.inventory.vault import Secret
from fleetmon.inventory.vaultpass import VaultOptions, load_secrets
from fleetmon.model import HostReport, HostSpec, RawResult, Status
from fleetmon.render.textfit import clean

#: Ansible's inventory when none is given or configured (DEFAULT_HOST_LIST).
DEFAULT_INVENTORY = "/etc/ansible/hosts"
DEFAULT_FORKS = 200  # benchmarks/defaults.py: 1,000 sim hosts 16.7 s at 100 -> 11.3 s
DEFAULT_CONNECT_TIMEOUT_S = 10.0


def warn(message: str) -> None:
    """One warning line on stderr (the command goes on), control characters escaped."""
    sys.stderr.write(f"fleetmon: warning: {clean(message)}\n")


def vault_options(args: argparse.Namespace, cfg: AnsibleConfig) -> VaultOptions:
    """The vault password sources of the command line, then ansible.cfg/the environment."""
    return VaultOptions(
        vault_ids=tuple(getattr(args, "vault_ids", ()) or ()),
        password_files=tuple(getattr(args, "vault_password_files", ()) or ()),
        ask=bool(getattr(args, "ask_vault_pass", False)),
        config_ids=cfg.vault_identity_list,
        config_file=cfg.vault_password_file,
    )


def inventory_sources(args: argparse.Namespace, cfg: AnsibleConfig) -> list[str]:
    """The inventory sources: the command line's, else the configured ones, else Ansible's
    /etc/ansible/hosts."""
    given = [*getattr(args, "inventory", ()), *getattr(args, "inventories", ())]
    if given:
        return given
    if cfg.inventory:
        return list(cfg.inventory)
    if os.path.exists(DEFAULT_INVENTORY):
        return [DEFAULT_INVENTORY]
    raise OptionError(
        "no inventory: name one (fleetmon run INVENTORY), or set ANSIBLE_INVENTORY or "
        f"[defaults] inventory in ansible.cfg ({DEFAULT_INVENTORY} does not exist)"
    )


def _positive(value: int | None, name: str, where: str | None) -> int | None:
    if value is not None and value <= 0:
        raise OptionError(f"{where or 'ansible.cfg'}: {name} must be greater than 0, got {value}")
    return value


def apply_config(args: argparse.Namespace, cfg: AnsibleConfig) -> None:
    """Fill the run options the command line left unset from ansible.cfg, else defaults."""
    if hasattr(args, "forks") and args.forks is None:
        args.forks = _positive(cfg.forks, "forks", cfg.file) or DEFAULT_FORKS
    if hasattr(args, "connect_timeout") and args.connect_timeout is None:
        timeout = _positive(cfg.timeout, "timeout", cfg.file)
        args.connect_timeout = float(timeout) if timeout else DEFAULT_CONNECT_TIMEOUT_S


@dataclass(frozen=True, slots=True)
class Opened:
    """A loaded inventory, the vault secrets that open its values, the host defaults, and
    the files and folders read to get them (cli.inputs.inventory_reads)."""

    inventory: Inventory
    secrets: Sequence[Secret] = field(default_factory=tuple)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    read: tuple[str, ...] = ()


def open_inventory(args: argparse.Namespace) -> Opened:
    """ansible.cfg, the vault passwords, then the inventory; warnings printed on stderr."""
    cfg = load_config()
    for message in cfg.warnings:
        warn(message)
    apply_config(args, cfg)
    sources = inventory_sources(args, cfg)
    vault = vault_options(args, cfg)
    secrets = load_secrets(vault, warn=warn)
    inventory = load_inventory(sources, secrets)
    for message in inventory.warnings:
        warn(message)
    read = inventory_reads(cfg, vault, sources)
    return Opened(inventory, tuple(secrets), cfg.host_defaults(), read)


def plan(
    opened: Opened, hosts: Sequence[HostSpec], interval_s: float
) -> tuple[list[HostSpec], list[RawResult]]:
    """The hosts to collect (decrypted, rendered, checked) and those skipped, as results;
    `interval_s`: the wait between a host's samples, which its own deadline must exceed."""
    collect: list[HostSpec] = []
    skipped: list[RawResult] = []
    inv = opened.inventory
    render = Renderer(inv, opened.secrets, os.getcwd(), os.environ)
    for p in plan_hosts(inv, hosts, opened.secrets, render, opened.defaults):
        skip = p.skip or deadline_skip(inv, p.spec, interval_s)
        if skip is None:
            collect.append(p.spec)
        else:
            skipped.append(RawResult(p.spec, Status.SKIPPED, skip))
    return collect, skipped


def skip_unreadable_keys(
    inv: Inventory, hosts: list[HostSpec], skipped: list[RawResult]
) -> tuple[list[HostSpec], list[RawResult]]:
    """`plan`'s hosts and skipped hosts, a host whose key file cannot be read moved to the
    skipped (InventoryError for ansible.cfg's key file: unreadable_key_files)."""
    bad = unreadable_key_files(inv, hosts)
    if not bad:
        return hosts, skipped
    gone = [RawResult(h, Status.SKIPPED, bad[h.name]) for h in hosts if h.name in bad]
    return [h for h in hosts if h.name not in bad], [*skipped, *gone]


def in_selection_order(selected: Sequence[HostSpec], reports: list[HostReport]) -> list[HostReport]:
    """The host reports (collected and skipped) in the order the hosts were selected."""
    order = {h.name: i for i, h in enumerate(selected)}
    return sorted(reports, key=lambda r: order.get(r.name, len(order)))
