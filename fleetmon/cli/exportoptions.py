"""The export options of `run`, `report DIR` and `merge` (edge): Prometheus textfile,
Pushgateway, InfluxDB, Alertmanager; `serve` takes `--export-groups` for its /metrics.
Standard library only, as options.py: `--help` stays fast."""

from __future__ import annotations

import argparse

from fleetmon.cli.argtypes import non_negative_int, path_text, positive


def add_export_options(p: argparse.ArgumentParser) -> None:
    """Prometheus, InfluxDB and Alertmanager: the textfile and the network sinks."""
    e = p.add_argument_group("exports (Prometheus, InfluxDB, Alertmanager)")
    e.add_argument(
        "--prom-textfile",
        type=path_text("--prom-textfile"),
        metavar="FILE.prom",
        help="also write Prometheus text for node_exporter's textfile collector",
    )
    e.add_argument(
        "--push",
        metavar="URL",
        help="push to this Prometheus Pushgateway (job fleetmon, grouped by the "
        "inventory's real path and --limit; replaces that group's last push)",
    )
    e.add_argument(
        "--influx-url",
        metavar="URL",
        help="write InfluxDB line protocol here: "
        "http://HOST:8086/write?db=NAME (1.x) or .../api/v2/write?org=O&bucket=B "
        "(2.x, token in $INFLUX_TOKEN)",
    )
    e.add_argument(
        "--alertmanager",
        action="append",
        default=[],
        metavar="URL",
        help="post warning and critical findings as alerts to this Alertmanager "
        "(repeatable, for an HA pair)",
    )
    e.add_argument(
        "--alert-ttl",
        default="15m",
        metavar="DURATION",
        help="how long a posted alert lasts unless a later run renews it "
        "(default 15m: a few times the cron interval)",
    )
    add_export_groups(e)
    e.add_argument(
        "--export-timeout",
        # Bounded: a sink silent for an hour is down, and far larger times overflow the
        # request's timer and socket (OverflowError).
        type=positive(float, "--export-timeout", 3600.0),
        default=None,
        metavar="S",
        help="time limit of each request to a sink, at most 3600 (default: 10, plus 1 "
        "per MB of the request: a large push takes the server longer to read)",
    )
    e.add_argument(
        "--export-retries",
        type=non_negative_int("--export-retries", 10),
        default=2,
        metavar="N",
        help="attempts after the first when a sink fails (default 2, at most 10; waits "
        "0.5 s doubling, 30 s at most)",
    )


def add_export_groups(p: argparse._ActionsContainer) -> None:
    """`--export-groups`, one option for every command that exports (run's and serve's)."""
    p.add_argument(
        "--export-groups",
        action="store_true",
        help="label every series and alert with the host's inventory groups",
    )
