"""Command-line options of the reports (edge): the outputs, the rule files, what the
report shows; shared by `run`, `report` and `merge`. Standard library only."""

from __future__ import annotations

import argparse

from fleetmon.cli.argtypes import at_least as _at_least
from fleetmon.cli.argtypes import non_negative_int as _non_negative_int
from fleetmon.cli.argtypes import path_text as _path_text
from fleetmon.cli.argtypes import positive as _positive
from fleetmon.cli.exportoptions import add_export_options

FORMATS = ("text", "json", "html", "nagios", "prometheus", "openmetrics", "influx")
#: Nagios Core keeps 8 KiB of a plugin's output (MAX_PLUGIN_OUTPUT_LENGTH, 8192 bytes):
#: 8,000 leaves room for the line ends and a transport's framing (NRPE, check_by_ssh).
NAGIOS_MAX_BYTES = 8000
#: The status line with its counts and perfdata, no names (render.nagios.MIN_BYTES).
NAGIOS_MIN_BYTES = 512


def add_output_files(p: argparse.ArgumentParser) -> None:
    """--format and the files the report goes to (-o, --html, --json, --junit)."""
    p.add_argument("--format", choices=FORMATS, default="text", help="main output format")
    p.add_argument(
        "-o", "--output", type=_path_text("-o"), metavar="FILE", help="write the main output here"
    )
    p.add_argument(
        "--html", type=_path_text("--html"), metavar="FILE", help="also write the HTML report"
    )
    p.add_argument(
        "--json",
        type=_path_text("--json"),
        metavar="FILE",
        dest="json_out",
        help="also write the JSON report",
    )
    p.add_argument(
        "--junit",
        type=_path_text("--junit"),
        metavar="FILE",
        help="also write JUnit XML (one suite per host)",
    )


def add_render_options(p: argparse.ArgumentParser) -> None:
    """Every report option: the outputs, the rule files, the text, Nagios and JUnit
    settings, the exports."""
    add_output_files(p)
    add_rule_files(p)
    p.add_argument("--no-rules", action="store_true", help="evaluate no rules")
    p.add_argument(
        "--unreachable",
        choices=("critical", "unknown", "ignore"),
        default="unknown",
        help="how hosts that were not collected count in the exit code (default: unknown)",
    )
    p.add_argument(
        "--fail-on",
        choices=("warning", "critical"),
        default="critical",
        help="the least severity that JUnit counts as a failed test (default: critical)",
    )
    p.add_argument(
        "--problems",
        action="store_true",
        help="text report: only hosts with findings or not collected in its host tables",
    )
    p.add_argument(
        "--top",
        type=_positive(int, "--top"),
        default=None,
        metavar="N",
        help="text report: at most N rows in each table of hosts, VMs, disks... (default: "
        "every host, 10 in the top tables)",
    )
    p.add_argument(
        "--width",
        type=_non_negative_int("--width"),
        default=None,
        metavar="COLUMNS",
        help="text report: no line wider (default, when standard output is a terminal: "
        "$COLUMNS, else its width; to a file or a pipe: no limit, even with $COLUMNS set; "
        "0: no limit)",
    )
    p.add_argument(
        "--nagios-max-bytes",
        type=_at_least("--nagios-max-bytes", NAGIOS_MIN_BYTES),
        default=NAGIOS_MAX_BYTES,
        metavar="BYTES",
        help=f"nagios format: the most the whole output takes; the long output is cut, worst "
        f"first, and host names on the status line shortened, never the perfdata (default "
        f"{NAGIOS_MAX_BYTES}: under Nagios Core's 8 KiB plugin output limit; at least "
        f"{NAGIOS_MIN_BYTES})",
    )
    p.add_argument(
        "--junit-passes",
        choices=("none", "summary", "all"),
        default="summary",
        help="JUnit: passed checks as no test case, one per host (default), or one each",
    )
    add_export_options(p)


def add_rule_files(p: argparse.ArgumentParser) -> None:
    """-r (on top of the shipped playbooks) and --no-default-rules."""
    p.add_argument(
        "-r",
        "--rules",
        action="append",
        default=None,
        metavar="FILE",
        help="rule file or folder, loaded after the shipped playbooks (repeatable; a later "
        "rule of the same name replaces or tunes the earlier one)",
    )
    p.add_argument(
        "--no-default-rules",
        action="store_true",
        help="do not load the shipped playbooks: only the -r files",
    )
