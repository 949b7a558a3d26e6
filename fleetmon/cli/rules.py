"""`fleetmon rules lint|list` (I/O edge): check rule files, show which apply where."""

from __future__ import annotations

import argparse
import sys

from fleetmon.cli.common import playbooks_dir
from fleetmon.cli.sources import open_inventory, warn
from fleetmon.rules import default_rule_files, load_rules, render_rule_list


def command(args: argparse.Namespace) -> int:
    """`fleetmon rules lint FILE...` and `fleetmon rules list INVENTORY`."""
    if args.rules_command == "lint":
        rs = load_rules(args.files)
        sys.stdout.write(f"{len(rs.rules)} rules OK in {len(rs.files)} file(s)\n")
        return 0
    inventory = open_inventory(args).inventory
    hosts = inventory.select(args.limit, warn=warn)
    files = args.rules or default_rule_files(str(playbooks_dir()))
    sys.stdout.write(
        render_rule_list(
            load_rules(files), hosts, lambda p: {h.name for h in inventory.select_quiet(p)}
        )
    )
    return 0
