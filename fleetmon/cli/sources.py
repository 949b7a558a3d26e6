"""The inventory of a command (I/O edge): vault passwords, loading, warnings, the hosts to collect.

What `run`, `inventory` and `rules list` share: the vault secrets are read once (files,
scripts, the terminal), the inventory loaded with them, its warnings printed on stderr, and
for a run the selected hosts split into those collected and those skipped with a reason.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from fleetmon.inventory import Inventory, load_inventory
from fleetmon.inventory.connect import plan_hosts
from fleetmon.inventory.vault import Secret
from fleetmon.inventory.vaultpass import VaultOptions, load_secrets
from fleetmon.model import HostReport, HostSpec, RawResult, Status


def warn(message: str) -> None:
    """One warning line on stderr (the command goes on)."""
    sys.stderr.write(f"fleetmon: warning: {message}\n")


def vault_options(args: argparse.Namespace) -> VaultOptions:
    """The vault password sources of the command line and the environment."""
    env_ids = os.environ.get("ANSIBLE_VAULT_IDENTITY_LIST", "")
    return VaultOptions(
        vault_ids=tuple(getattr(args, "vault_ids", ()) or ()),
        password_files=tuple(getattr(args, "vault_password_files", ()) or ()),
        ask=bool(getattr(args, "ask_vault_pass", False)),
        config_ids=tuple(i.strip() for i in env_ids.split(",") if i.strip()),
        config_file=os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE") or None,
    )


@dataclass(frozen=True, slots=True)
class Opened:
    """A loaded inventory and the vault secrets that open its values."""

    inventory: Inventory
    secrets: Sequence[Secret] = field(default_factory=tuple)


def open_inventory(args: argparse.Namespace) -> Opened:
    """Read the vault passwords the options name, then load the inventory with them."""
    secrets = load_secrets(vault_options(args), warn=warn)
    return Opened(load_inventory(args.inventory, secrets), tuple(secrets))


def plan(opened: Opened, hosts: Sequence[HostSpec]) -> tuple[list[HostSpec], list[RawResult]]:
    """The hosts to collect (decrypted, rendered, checked) and those skipped, as results."""
    collect: list[HostSpec] = []
    skipped: list[RawResult] = []
    for p in plan_hosts(opened.inventory, hosts, opened.secrets):
        if p.skip is None:
            collect.append(p.spec)
        else:
            skipped.append(RawResult(p.spec, Status.SKIPPED, p.skip))
    return collect, skipped


def in_selection_order(selected: Sequence[HostSpec], reports: list[HostReport]) -> list[HostReport]:
    """The host reports (collected and skipped) in the order the hosts were selected."""
    order = {h.name: i for i, h in enumerate(selected)}
    return sorted(reports, key=lambda r: order.get(r.name, len(order)))
