"""`fleetmon inventory INVENTORY` (I/O edge): what an inventory resolves to."""

from __future__ import annotations

import argparse
import os
import sys

from fleetmon.cli.sources import open_inventory
from fleetmon.inventory import render_graph, render_host, render_list


def command(args: argparse.Namespace) -> int:
    """`fleetmon inventory INVENTORY --graph [GROUP]|--list|--host NAME`."""
    group = args.graph or "all"
    if group != "all" and not (args.inventory or args.inventories) and os.path.exists(group):
        # `fleetmon inventory --graph hosts.ini`: the option took the inventory for a group.
        args.inventory, group = [group], "all"
    inventory = open_inventory(args).inventory
    if args.host:
        text = render_host(inventory, args.host, args.show_secrets)
    elif args.list:
        text = render_list(inventory, args.show_secrets)
    else:
        text = render_graph(inventory, group)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0
