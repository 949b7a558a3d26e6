"""`fleetmon simulate` (edge): serve N simulated hosts on loopback until SIGINT/SIGTERM.

Imported when the CLI parser is built, so only argparse and the standard library are
imported at module level; asyncssh and the simulator load inside `command`.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from fleetmon.cli.argtypes import non_negative, non_negative_int, positive

if TYPE_CHECKING:
    from fleetmon.sim.server import Simulator

DEFAULT_PORT = 2222


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, got {text!r}")
    return value


#: `--fill-history`'s --days and --every when not given.
FILL_DAYS = 7.0
FILL_EVERY = "5m"
#: Each mode's own options, ignored by the other: given there, they are refused (exit 4).
FILL_ONLY = (("days", "--days"), ("every", "--every"), ("history_keep", "--history-keep"))
SERVE_ONLY = (
    ("inventory_out", "--inventory-out"),
    ("client_key_out", "--client-key-out"),
    ("known_hosts_out", "--known-hosts-out"),
)


def mode_error(args: argparse.Namespace) -> str | None:
    """Why an option cannot be used in this mode (None: every one can): --fill-history
    serves no host and writes nothing but the history; without it there is no history."""
    if args.fill_history:
        for dest, flag in SERVE_ONLY:
            if getattr(args, dest):
                return f"{flag} does nothing with --fill-history: no host is served"
        return None
    for dest, flag in FILL_ONLY:
        if getattr(args, dest) is not None:
            return f"{flag} does nothing without --fill-history"
    return None


def _add_output_options(p: argparse.ArgumentParser) -> None:
    """What `simulate` writes: the inventory, its key and known_hosts, or a history."""
    p.add_argument("--user", default="sim", help="ansible_user written to the inventory")
    p.add_argument("--inventory-out", metavar="FILE", help="write the matching YAML inventory")
    p.add_argument(
        "--client-key-out",
        metavar="FILE",
        help="write the client key the hosts accept (default: INVENTORY.key)",
    )
    p.add_argument(
        "--fill-history",
        metavar="PATH",
        help="no server: write --days of runs of the fleet, every --every, into this history "
        "(a simulated clock, trends built in) and exit",
    )
    # Defaults None, filled in by command(): given without --fill-history they are refused.
    p.add_argument(
        "--days",
        type=positive(float, "--days"),
        metavar="N",
        help=f"with --fill-history: days of runs (default: {FILL_DAYS})",
    )
    p.add_argument(
        "--every",
        metavar="DURATION",
        help=f"with --fill-history: between runs (default: {FILL_EVERY})",
    )
    p.add_argument("--history-keep", metavar="SPEC", help="with --fill-history (see run)")
    p.add_argument(
        "--known-hosts-out",
        metavar="FILE",
        help="write the hosts' known_hosts (default: INVENTORY.known_hosts)",
    )


def _add_guest_options(p: argparse.ArgumentParser) -> None:
    """What runs on the simulated hosts: containers, guests of the KVM VMs."""
    p.add_argument(
        "--containers",
        type=non_negative_int("--containers", 10_000),
        default=0,
        metavar="N",
        help="containers on each Linux and KVM host (cgroup v2 on even hosts, v1 on odd; "
        "at most 10000)",
    )
    p.add_argument(
        "--guests",
        type=non_negative_int("--guests"),
        default=0,
        metavar="N",
        help="Linux hosts that are guests of the fleet's KVM VMs (their SMBIOS UUID the"
        " domain's): each guest seen from both sides (--kind mixed)",
    )


class _Defaults(argparse.HelpFormatter):
    """--help says each option's default (a value's, not none or off), as README does."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        none = action.default is None or action.default is False  # 0 is a default
        if none or action.default == argparse.SUPPRESS or "default" in text:
            return text
        return f"{text} (default: %(default)s)".lstrip()


def configure_parser(p: argparse.ArgumentParser) -> None:
    """Add the `simulate` options to its subparser."""
    p.formatter_class = _Defaults
    p.add_argument("--hosts", type=_count, default=200, metavar="N", help="hosts to play")
    p.add_argument(
        "--kind",
        choices=("kvm", "xen", "linux", "mixed"),
        default="kvm",
        help="what the hosts are (mixed: some of each)",
    )
    p.add_argument(
        "--base-address",
        default="127.0.1.1",
        metavar="ADDR",
        help="first loopback address (127.0.0.0/8 only); one address per host by default",
    )
    p.add_argument("--port", type=_port, default=DEFAULT_PORT, help="first port of each address")
    p.add_argument(
        "--ports-per-address", type=_count, default=1, metavar="N", help="hosts per address"
    )
    p.add_argument(
        "--latency-ms",
        type=non_negative("--latency-ms"),
        default=0.0,
        metavar="MS",
        help="added per reply",
    )
    p.add_argument(
        "--faults",
        metavar="SPEC",
        help="scripted faults, e.g. unreachable=2,timeout=1,garbage=1,auth=1,cmdfail=1",
    )
    p.add_argument(
        "--sites",
        metavar="NAME,NAME",
        help="deal the hosts into these sites (fleetmon_site in the inventory), each site on "
        "its own /16 of loopback from --base-address on (site 2: 65,536 addresses further)",
    )
    p.add_argument("--seed", type=int, default=0, help="same seed, same fleet")
    p.add_argument(
        "--time-scale",
        type=positive(float, "--time-scale"),
        default=1.0,
        metavar="X",
        help="simulated seconds per real second for streaming (top/serve) connections",
    )
    _add_guest_options(p)
    _add_output_options(p)


def write_files(sim: Simulator, args: argparse.Namespace) -> tuple[Path | None, Path | None]:
    """Write the key, known_hosts and inventory asked for; return (inventory, known_hosts)."""
    from fleetmon.io.atomic import write_output, write_text
    from fleetmon.sim.inventory import render_inventory

    # Absolute (the inventory names the other two) but not resolved: write_output decides
    # how a symlink is followed, as it does for the reports.
    inv = Path(args.inventory_out).absolute() if args.inventory_out else None
    key = Path(args.client_key_out).absolute() if args.client_key_out else None
    known = Path(args.known_hosts_out).absolute() if args.known_hosts_out else None
    if inv is not None:
        key = key or inv.with_name(inv.name + ".key")
        known = known or inv.with_name(inv.name + ".known_hosts")
    if key is not None:
        private = sim.client_key.export_private_key("openssh").decode("ascii")
        write_output(key, (private,), mode=0o600)
    if known is not None:
        write_text(known, sim.known_hosts())
    if inv is not None and key is not None and known is not None:
        text = render_inventory(
            sim.hosts,
            user=args.user,
            key_file=str(key),
            known_hosts_file=str(known),
            inventory_file=str(inv),
        )
        write_text(inv, text)
    return inv, known


def ready_lines(sim: Simulator, inv: Path | None) -> str:
    """What `fleetmon simulate` prints once every host is listening."""
    hosts = sim.hosts
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(Counter(h.kind for h in hosts).items()))
    faults = Counter(h.fault for h in hosts if h.fault)
    fault_text = ", ".join(f"{n} {f}" for f, n in sorted(faults.items())) or "none"
    first, last = hosts[0], hosts[-1]
    out = (
        f"fleetmon simulate: ready: {len(hosts)} hosts ({kinds}) on "
        f"{first.address}:{first.port} .. {last.address}:{last.port}; faults: {fault_text}\n"
    )
    for site in sim.config.sites:
        mine = [h for h in hosts if h.site == site]
        if mine:
            out += (
                f"fleetmon simulate: site {site}: {len(mine)} hosts on "
                f"{mine[0].address}:{mine[0].port} .. {mine[-1].address}:{mine[-1].port}\n"
            )
    if inv is not None:
        out += f"fleetmon simulate: collect them with: fleetmon run {inv}\n"
    if sim.config.accept_any_key:
        out += "fleetmon simulate: no key written (--client-key-out): any client key is accepted\n"
    return out


def _fill(args: argparse.Namespace) -> int:
    """`--fill-history`: write the history, with --days and --every defaulted; exit 0."""
    from fleetmon.cli.simhistory import fill_history

    args.days = FILL_DAYS if args.days is None else args.days
    args.every = args.every or FILL_EVERY
    return fill_history(args)


def command(args: argparse.Namespace) -> int:
    """Serve the simulated fleet until SIGINT or SIGTERM; exit 0."""
    from fleetmon.errors import OptionError

    if (why := mode_error(args)) is not None:
        raise OptionError(why)
    if args.fill_history:
        return _fill(args)
    import asyncio
    import signal

    from fleetmon.sim.hosts import parse_faults, parse_sites
    from fleetmon.sim.server import SimConfig, Simulator, raise_fd_limit

    config = SimConfig(
        hosts=args.hosts,
        kind=args.kind,
        base_address=args.base_address,
        port=args.port,
        ports_per_address=args.ports_per_address,
        latency_ms=args.latency_ms,
        faults=parse_faults(args.faults),
        seed=args.seed,
        containers=args.containers,
        guests=args.guests,
        accept_any_key=not (args.inventory_out or args.client_key_out),
        time_scale=args.time_scale,
        sites=parse_sites(args.sites),
    )
    limit = raise_fd_limit()
    if limit < config.hosts + 64:
        sys.stderr.write(
            f"fleetmon simulate: warning: open-files limit {limit} is below"
            f" {config.hosts} listeners plus their connections\n"
        )
    sim = Simulator(config)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await sim.start()
        except OSError as exc:
            await sim.close()
            raise OptionError(exc.strerror or str(exc)) from exc
        try:
            inv, _ = write_files(sim, args)
            sys.stdout.write(ready_lines(sim, inv))
            sys.stdout.flush()
            await stop.wait()
        finally:
            await sim.close()

    asyncio.run(main())
    sys.stderr.write(f"fleetmon simulate: stopped after {sim.answers} probe answers\n")
    return 0
