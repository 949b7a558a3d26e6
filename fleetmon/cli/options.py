"""The command line's options (edge): one argparse parser for every subcommand.

Only argparse and the standard library are imported here, so `--help` and `--version` stay
fast; each subcommand's module is imported when it runs.
"""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from fleetmon import __version__
from fleetmon.cli.argtypes import InventoryOrOldInterval
from fleetmon.cli.argtypes import non_negative as _non_negative
from fleetmon.cli.argtypes import output_cap as _output_cap
from fleetmon.cli.argtypes import path_text as _path_text
from fleetmon.cli.argtypes import positive as _positive
from fleetmon.cli.clusteropts import add_cluster_options, add_merge_parser
from fleetmon.cli.renderoptions import add_render_options as _add_render_options
from fleetmon.cli.renderoptions import add_rule_files as _add_rule_files
from fleetmon.errors import EXIT_INPUT, did_you_mean

#: The longest -i: an hour between a run's two samples (1e9 was a run of 31 years).
MAX_INTERVAL_S = 3600.0
#: `run --timeout` default: the interval plus this. It holds the probe's worst case with one
#: hung command of each kind a host runs (sources/sections.py WORST_GUARDED_S: 25 s on a
#: KVM host with become, df 5 + virsh 10 + its re-ask 5 + sudo's read 5), so that a stuck
#: libvirtd or a hung NFS mount costs the host those figures, with a note, not all of them
#: (at interval + 10 the probe's own limits never fired: the host timed out first), and
#: 5 s more for the rest: benchmarks/timeout_bench.py measured a host's time past the
#: interval, connect to the probe's exit, at 0.14-0.28 s for this machine's own probe, median
#: 1.6 s and at most 3.5 s for 200 simulated hosts connecting at once (50 ms added per
#: reply, 2 shared cores). A host that never answers holds a run interval + 30 s.
TIMEOUT_MARGIN_S = 30.0

DESCRIPTION = """\
Agentless performance monitoring of KVM and Xen hypervisor fleets over SSH. fleetmon reads
your Ansible inventory, runs one read-only shell probe per host (nothing is installed on the
targets), computes CPU, memory, disk, network and per-VM rates the way sysstat and virt-top
do, checks them against rule files and writes one report with a Nagios-style exit code."""

EPILOG = """\
examples:
  fleetmon run inventory.yaml                       text report of every host
  fleetmon run hosts.ini -l 'kvm:!kvm07' --html fleet.html
  fleetmon run inventory.yaml --format nagios       one status line for Nagios/Icinga
  fleetmon inventory inventory.yaml --graph         what the inventory resolves to
  fleetmon rules lint site-rules.yaml               check rule files
  fleetmon history show kvm01 cpu.busy_pct --since 1d   a host's CPU over the last day

exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, 4 invalid input, 70 internal error,
130/143 interrupted. 'fleetmon COMMAND --help' shows each command's options."""


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad options; 2 means CRITICAL here, so bad input is 4."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_INPUT, f"fleetmon: error: {message} (see '{self.prog} --help')\n")

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        """argparse's check of a choice (a subcommand, --format...), with the choice a typo
        meant (`hsitory`: history), which Python 3.11's argparse does not name."""
        try:
            super()._check_value(action, value)
        except argparse.ArgumentError as exc:
            hint = did_you_mean(str(value), [str(c) for c in action.choices or ()])
            raise argparse.ArgumentError(action, f"{exc.message}{hint}") from None


def _add_inventory_args(p: argparse.ArgumentParser, *flags: str, **action: object) -> None:
    """Inventory sources: positional, and repeatable `--inventory` as in Ansible (`action`:
    another argparse action than append, and its own keywords)."""
    p.add_argument(
        "inventory",
        nargs="*",
        metavar="INVENTORY",
        help="inventory file, folder, script or host list 'a,b,' (several are merged; "
        "default: ANSIBLE_INVENTORY or ansible.cfg [defaults] inventory)",
    )
    p.add_argument(
        *flags,
        "--inventory",
        "--inventory-file",
        default=[],
        dest="inventories",
        metavar="SOURCE",
        help="another inventory source (repeatable)",
        **({"action": "append"} | action),  # type: ignore[arg-type]
    )


def _add_vault_options(p: argparse.ArgumentParser) -> None:
    """Ansible's vault options: where the passwords of vault-encrypted values come from."""
    p.add_argument(
        "--vault-password-file",
        "--vault-pass-file",
        action="append",
        default=[],
        dest="vault_password_files",
        metavar="FILE",
        help="vault password file, or an executable that prints it (repeatable)",
    )
    p.add_argument(
        "--vault-id",
        action="append",
        default=[],
        dest="vault_ids",
        metavar="ID@SOURCE",
        help="vault id and its password source: a file, an executable or 'prompt' (repeatable)",
    )
    p.add_argument(
        "-J",
        "--ask-vault-pass",
        "--ask-vault-password",
        action="store_true",
        dest="ask_vault_pass",
        help="ask for the vault password on the terminal",
    )


def _add_history_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--history",
        type=_path_text("--history"),
        metavar="PATH|none",
        help="the history file (default: $FLEETMON_HISTORY, else "
        "$XDG_STATE_HOME/fleetmon/history.sqlite; root: /var/lib/fleetmon/history.sqlite); "
        "'none': no history",
    )


def _add_keep_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--history-keep",
        metavar="SPEC",
        help="how long each tier keeps its rows, saved in the file: raw=8d,hourly=90d,daily=2y "
        "(the defaults; any of the three)",
    )


def _add_history_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    hist = sub.add_parser("history", help="what earlier runs recorded: status, show, export")
    hsub = hist.add_subparsers(dest="history_command", required=True, parser_class=_Parser)
    status = hsub.add_parser("status", help="the file, its size, runs and tiers")
    status.add_argument("--check", action="store_true", help="also run PRAGMA quick_check")
    status.add_argument("--format", choices=("text", "json"), default="text", help="default: text")
    show = hsub.add_parser("show", help="one host's (or VM's, disk's...) metrics over time")
    show.add_argument("host", metavar="HOST")
    # default=[]: without one, argparse 3.11 calls a "*" positional required in its error.
    show.add_argument(
        "metrics", nargs="*", default=[], metavar="METRIC", help="default: the key metrics"
    )
    for scope, what in (
        ("vm", "VM"),
        ("disk", "disk"),
        ("nic", "NIC"),
        ("fs", "mount point"),
        ("ctr", "container"),
        ("guest", "guest pair (HYPERVISOR/VM)"),
    ):
        show.add_argument(f"--{scope}", metavar="NAME", help=f"this {what} of HOST")
    show.add_argument("--stat", choices=("avg", "min", "max"), default="avg",
                      help="which statistic of the hourly and daily tiers")  # fmt: skip
    export = hsub.add_parser("export", help="every value in a time range, as CSV or JSON")
    export.add_argument("--scope", action="append", help="only this scope (repeatable)",
                        choices=("host", "disk", "nic", "fs", "vm", "ctr", "guest"))  # fmt: skip
    prune = hsub.add_parser("prune", help="apply the retention now (rollups, old rows deleted)")
    _add_keep_option(prune)
    prune.add_argument("--vacuum", action="store_true", help="then give freed space back")
    _add_lock_wait(prune)
    for p, formats in ((show, ("text", "csv", "json")), (export, ("csv", "json"))):
        kept = "7d" if p is show else "all that is kept"
        p.add_argument(
            "--since",
            default="7d" if p is show else "100y",
            metavar="WHEN",
            help=f"start this long ago: 30m, 1d, 2w... (default: {kept}), or at this date or "
            "time: 2026-11-26, 2026-11-26T03:00 (UTC unless an offset is given: +01:00)",
        )
        p.add_argument(
            "--until",
            metavar="WHEN",
            help="end this long ago or at this date or time (default: now, and the 10 "
            "minutes ahead a run may start and be recorded)",
        )
        p.add_argument(
            "--tier",
            choices=("auto", "raw", "hourly", "daily") if p is show else ("raw", "hourly", "daily"),
            default="auto" if p is show else "raw",
            help="per-run rows, or hourly/daily summaries (show's auto: the finest that "
            "holds all that is kept of the range)",
        )
        p.add_argument("--format", choices=formats, default=formats[0], help="default: %(default)s")
        p.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    for p in (status, show, export, prune):
        _add_history_option(p)


def _add_lock_options(run: argparse.ArgumentParser) -> None:
    """--lock, --no-lock, --lock-wait: overlapping cron runs."""
    run.add_argument(
        "--lock",
        metavar="FILE",
        help="lock file (default: beside the first output that is a regular file)",
    )
    run.add_argument("--no-lock", action="store_true", help="do not take the lock")
    _add_lock_wait(run)


def _add_lock_wait(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--lock-wait",
        type=_non_negative("--lock-wait"),
        default=0.0,
        metavar="S",
        help="wait this long for another run's lock before giving up (default 0: at once)",
    )


def _add_time_limits(run: argparse.ArgumentParser) -> None:
    """--connect-timeout and --timeout: how long a host may take."""
    run.add_argument(
        "--connect-timeout",
        type=_positive(float, "--connect-timeout"),
        default=None,
        metavar="S",
        help="TCP + SSH handshake limit (default: ansible.cfg timeout, else 10)",
    )
    run.add_argument(
        "--timeout",
        type=_positive(float, "--timeout"),
        default=None,
        metavar="S",
        help=f"per-host deadline, connect to the probe's exit, more than the interval "
        f"(default: interval + {TIMEOUT_MARGIN_S:g} s)",
    )


def _add_run_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`fleetmon run` and its options."""
    run = sub.add_parser("run", help="collect the fleet and report")
    interval = _positive(float, "--interval", MAX_INTERVAL_S)
    # -i was --interval before; a number naming no file still is, with a warning.
    _add_inventory_args(run, "-i", action=InventoryOrOldInterval, interval=interval)
    run.add_argument("-l", "--limit", metavar="PATTERN", help="Ansible host pattern")
    run.add_argument(
        "--interval",
        type=interval,
        default=1.0,
        metavar="S",
        help="seconds between the probe's two samples; rates are averages over it (default 1, "
        "at most 3600)",
    )
    # 200: benchmarks/defaults.py sweep, 1,000 sim hosts 16.7 s at 100 -> 11.3 s; sshd 8.6 -> 8.3
    run.add_argument(
        "-f",
        "--forks",
        type=_positive(int, "--forks"),
        default=None,
        metavar="N",
        help="hosts collected at once (default: ansible.cfg forks, else 200; lowered to what "
        "the open-file limit allows)",
    )
    _add_time_limits(run)
    run.add_argument(
        "--accept-new-host-keys",
        action="store_true",
        help="accept and record keys of hosts not yet in known_hosts (OpenSSH accept-new)",
    )
    run.add_argument("--known-hosts", metavar="FILE", help="known_hosts file to use")
    run.add_argument(
        "--output-cap",
        type=_output_cap("--output-cap"),
        default=16 * 1024 * 1024,
        metavar="BYTES",
        help="largest probe output accepted from one host (default 16 MiB)",
    )
    _add_lock_options(run)
    run.add_argument("--save-raw", metavar="DIR", help="keep every host's raw probe output")
    add_cluster_options(run, _positive)
    run.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    _add_history_option(run)
    _add_keep_option(run)
    _add_vault_options(run)
    _add_render_options(run)


def _add_rules_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`fleetmon rules lint` and `fleetmon rules list`."""
    rules = sub.add_parser("rules", help="check rule files, or show which apply where")
    rsub = rules.add_subparsers(dest="rules_command", required=True, parser_class=_Parser)
    lint = rsub.add_parser("lint", help="check rule files (on top of the shipped playbooks)")
    lint.add_argument("files", nargs="+", metavar="FILE", help="rule file or folder")
    lint.add_argument("--no-default-rules", action="store_true", help="check the files alone")
    lint.add_argument(
        *("-i", "--inventory"), action="append", default=[], dest="inventories",
        metavar="SOURCE", help="count the hosts each problem makes UNKNOWN (their variables)",
    )  # fmt: skip
    lint.add_argument(
        "--raw", metavar="DIR", help="a --save-raw folder: count each rule's UNKNOWN subjects"
    )
    lst = rsub.add_parser("list", help="print the rules that apply to each host")
    _add_inventory_args(lst, "-i")
    _add_rule_files(lst)
    lst.add_argument("-l", "--limit", metavar="PATTERN", help="Ansible host pattern")
    _add_history_option(lst)  # a run with a history loads history.yaml: list it then
    _add_vault_options(lst)


def _add_inventory_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`fleetmon inventory` and its options (as ansible-inventory's)."""
    inv = sub.add_parser("inventory", help="show what an inventory resolves to")
    _add_inventory_args(inv, "-i")
    mode = inv.add_mutually_exclusive_group()
    mode.add_argument(
        "--graph",
        nargs="?",
        const="all",
        metavar="GROUP",
        help="the group tree, of all or of GROUP (as ansible-inventory --graph [GROUP])",
    )
    mode.add_argument(
        "--list",
        action="store_true",
        help="the groups and every host's merged variables, as JSON (ansible-inventory --list)",
    )
    mode.add_argument(
        "--host", metavar="NAME", help="one host's merged variables (ansible-inventory --host)"
    )
    inv.add_argument(
        "--show-secrets",
        action="store_true",
        help="print the text of variables named like pass, secret, token, vault, private_key",
    )
    _add_vault_options(inv)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = _Parser(
        prog="fleetmon",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"fleetmon {__version__}")
    parser.add_argument("--debug", action="store_true", help="log details and show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_run_parser(sub)

    rep = sub.add_parser("report", help="recompute the reports from a --save-raw folder")
    rep.add_argument("raw_dir", metavar="DIR")
    rep.add_argument(
        "--output-cap",
        type=_output_cap("--output-cap"),
        default=16 * 1024 * 1024,
        metavar="BYTES",
        help="the run's --output-cap: a larger raw file in DIR is refused (default 16 MiB)",
    )
    _add_history_option(rep)
    _add_keep_option(rep)
    _add_render_options(rep)

    add_merge_parser(sub, _add_render_options)

    _add_inventory_parser(sub)

    sim = sub.add_parser("simulate", help="play a fleet of N simulated hosts on loopback")
    from fleetmon.cli.simulate import configure_parser

    configure_parser(sim)

    _add_history_parser(sub)

    from fleetmon.cli.liveoptions import configure_live

    configure_live(sub, _positive, _add_inventory_args, _add_rule_files, _add_vault_options)

    _add_rules_parser(sub)
    _add_debug_everywhere(parser)
    return parser


def _add_debug_everywhere(parser: argparse.ArgumentParser) -> None:
    """`--debug` after the command too (`fleetmon run ... --debug`), as before it: unset
    unless given (SUPPRESS), so the one before the command still counts."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                child.add_argument(
                    "--debug",
                    action="store_true",
                    default=argparse.SUPPRESS,
                    help="log details and show tracebacks (as `fleetmon --debug COMMAND`)",
                )
                _add_debug_everywhere(child)
