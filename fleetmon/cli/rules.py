"""`fleetmon rules lint|list` (I/O edge): check rule files, show which apply where."""

from __future__ import annotations

import argparse
import sys

from fleetmon.cli.common import rule_set
from fleetmon.cli.sources import open_inventory, warn
from fleetmon.rules import render_rule_list
from fleetmon.rules.overrides import check_overrides


def command(args: argparse.Namespace) -> int:
    """`fleetmon rules lint FILE...` and `fleetmon rules list INVENTORY`."""
    if args.rules_command == "lint":
        from fleetmon.cli import lint

        return lint.command(args)
    inventory = open_inventory(args).inventory
    hosts = inventory.select(args.limit, warn=warn)
    rs, _ = rule_set(args)  # history.yaml too when a run would keep a history
    assert rs is not None  # `rules list` has no --no-rules
    check_overrides(rs, hosts, inventory.origin)
    sys.stdout.write(
        render_rule_list(rs, hosts, lambda p: {h.name for h in inventory.select_quiet(p)})
    )
    return 0
