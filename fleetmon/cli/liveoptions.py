"""The options of `fleetmon top` and `fleetmon serve` (edge): argparse only, as options.py.

options.py hands over its helpers (kept there, where every other subcommand uses them).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from fleetmon.cli.argtypes import output_cap
from fleetmon.cli.exportoptions import add_export_groups

Positive = Callable[..., Callable[[str], float | int]]  # argtypes.positive
Adder = Callable[..., None]


def _add_live_options(
    p: argparse.ArgumentParser, positive: Positive, inventory: Adder, rules: Adder, vault: Adder
) -> None:
    """What `top` and `serve` share: the inventory, the tick, the connections, the rules."""
    inventory(p, "-i")
    p.add_argument("-l", "--limit", metavar="PATTERN", help="Ansible host pattern")
    p.add_argument(
        "-d",
        "--delay",
        type=positive(float, "-d", 3600.0),
        default=2.0,
        metavar="SECONDS",
        help="seconds between two samples of a host (default 2, at most 3600)",
    )
    p.add_argument(
        "-f",
        "--forks",
        type=positive(int, "--forks"),
        default=None,
        metavar="N",
        help="connections opened at once (default: ansible.cfg forks, else 200)",
    )
    p.add_argument(
        "--connect-timeout",
        type=positive(float, "--connect-timeout"),
        default=None,
        metavar="S",
        help="TCP + SSH handshake limit (default: ansible.cfg timeout, else 10)",
    )
    p.add_argument(
        "--timeout",
        type=positive(float, "--timeout"),
        default=None,
        metavar="S",
        help="a host with no complete sample for this long is reconnected; more than the"
        " delay (default: delay + 30 s)",
    )
    p.add_argument(
        "--accept-new-host-keys",
        action="store_true",
        help="accept and record keys of hosts not yet in known_hosts (OpenSSH accept-new)",
    )
    p.add_argument("--known-hosts", metavar="FILE", help="known_hosts file to use")
    p.add_argument(
        "--output-cap",
        type=output_cap("--output-cap"),
        default=16 * 1024 * 1024,
        metavar="BYTES",
        help="largest sample accepted",
    )
    rules(p)
    p.add_argument("--no-rules", action="store_true", help="evaluate no rules")
    p.set_defaults(unreachable="unknown", fail_on="critical", history="none")
    vault(p)


def configure_live(
    sub: Any, positive: Positive, inventory: Adder, rules: Adder, vault: Adder
) -> None:
    """Add the `top` and `serve` subcommands to the parser's subparsers."""
    top = sub.add_parser("top", help="a live fleet-wide virt-top over kept-open connections")
    _add_live_options(top, positive, inventory, rules, vault)
    top.add_argument("-b", "--batch", action="store_true", help="plain text frames, like top -b")
    top.add_argument(
        "-n",
        "--count",
        type=positive(int, "-n"),
        default=None,
        metavar="COUNT",
        help="frames to print before exiting, with --batch (default: until killed)",
    )
    top.add_argument(
        "--view", choices=("hosts", "vms", "containers"), default="hosts", help="the first view"
    )
    top.add_argument(
        "-o",
        "--sort",
        metavar="COLUMN",
        help="the column to sort by, as top -o: its heading in any case, %% and / optional"
        " (RXPK, cpu, VBD_OO...), or virt-top's -o name (netrx, blockrdrq...); default: CPU",
    )

    serve = sub.add_parser("serve", help="an exporter and live report over kept-open connections")
    _add_live_options(serve, positive, inventory, rules, vault)
    serve.add_argument(
        "--listen",
        default="127.0.0.1:9712",
        metavar="ADDRESS:PORT",
        help="where to listen: 127.0.0.1:9712 (the default), [::1]:9712, or :9712 for every"
        " address (which needs --web-config-file or --insecure-listen)",
    )
    serve.add_argument(
        "--web-config-file",
        metavar="FILE",
        help="TLS and basic-auth settings (Prometheus exporter-toolkit format)",
    )
    serve.add_argument(
        "--insecure-listen",
        action="store_true",
        help="allow a non-loopback address without TLS and authentication",
    )
    add_export_groups(serve)  # /metrics labelled as run's exports (render.labels)
