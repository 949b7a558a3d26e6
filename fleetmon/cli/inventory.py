"""`fleetmon inventory INVENTORY` (I/O edge): what an inventory resolves to."""

from __future__ import annotations

import argparse
import sys

from fleetmon.cli.sources import open_inventory
from fleetmon.inventory import render_graph, render_host, render_list


def command(args: argparse.Namespace) -> int:
    """`fleetmon inventory INVENTORY --graph|--list|--host NAME`."""
    inventory = open_inventory(args).inventory
    if args.host:
        text = render_host(inventory, args.host, args.show_secrets)
    elif args.list:
        text = render_list(inventory, args.show_secrets)
    else:
        text = render_graph(inventory)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0
