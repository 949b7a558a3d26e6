"""The exports of `run` and `report DIR` (I/O edge): options checked before the run, the
Prometheus textfile beside the other files, then the network sinks (Pushgateway, InfluxDB,
Alertmanager), each failure reported without losing another output (exit 4).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Iterable

from fleetmon.errors import ExportError, OptionError
from fleetmon.model import Report
from fleetmon.model.durations import DurationError, parse_duration
from fleetmon.rules import RuleSet

#: The Pushgateway job; the group is the inventory (one fleet, one group of series).
JOB = "fleetmon"


def check_exports(args: argparse.Namespace) -> None:
    """Refuse bad export options before any host is collected (OptionError, exit 4); the
    textfile's path is checked with the other outputs'."""
    from fleetmon.export.sinks import check_alertmanager_url, check_influx_url, check_push_url

    path = args.prom_textfile
    if path is not None and not path.endswith(".prom"):
        raise OptionError(
            f"--prom-textfile: node_exporter's textfile collector reads *.prom files only, "
            f"got {path!r}"
        )
    if args.push:
        check_push_url(args.push)
    if args.influx_url:
        check_influx_url(args.influx_url)
    for url in args.alertmanager:
        check_alertmanager_url(url)
    alert_ttl_s(args)


def alert_ttl_s(args: argparse.Namespace) -> int:
    """--alert-ttl in seconds."""
    try:
        return parse_duration(args.alert_ttl)
    except DurationError as exc:
        raise OptionError(f"--alert-ttl: {exc}") from None


def format_chunks(fmt: str, report: Report, args: argparse.Namespace) -> Iterable[str] | None:
    """The pieces of a Prometheus, OpenMetrics or InfluxDB main output (None: another)."""
    groups = args.export_groups
    if fmt in ("prometheus", "openmetrics"):
        from fleetmon.render.prom import prometheus_chunks

        return prometheus_chunks(report, openmetrics=fmt == "openmetrics", groups=groups)
    if fmt == "influx":
        from fleetmon.render.influx import influx_chunks

        return influx_chunks(report, groups=groups)
    return None


def file_exports(
    args: argparse.Namespace, report: Report
) -> list[tuple[str, Callable[[], Iterable[str]]]]:
    """The export written as a file: --prom-textfile (no timestamps, atomically renamed)."""
    if not args.prom_textfile:
        return []
    from fleetmon.render.prom import prometheus_chunks

    return [(args.prom_textfile, lambda: prometheus_chunks(report, groups=args.export_groups))]


def send_exports(args: argparse.Namespace, report: Report, rules: RuleSet | None) -> None:
    """Push, write and post to every sink asked for; one ExportError naming each failure
    after all were tried."""
    if not (args.push or args.influx_url or args.alertmanager):
        return
    from fleetmon.export.http import HttpOptions
    from fleetmon.export.sinks import influx_write, post_alerts, push

    options = HttpOptions(timeout_s=args.export_timeout, retries=args.export_retries)
    groups = args.export_groups
    failed: list[str] = []
    if args.push:
        from fleetmon.render.prom import prometheus_chunks

        chunks = list(prometheus_chunks(report, groups=groups))
        try:
            push(args.push, chunks, job=JOB, grouping={"inventory": report.run.inventory},
                 options=options)  # fmt: skip
        except ExportError as exc:
            failed.append(str(exc))
        del chunks
    if args.influx_url:
        from fleetmon.render.influx import influx_chunks

        token = os.environ.get("INFLUX_TOKEN") or None
        try:
            influx_write(args.influx_url, influx_chunks(report, groups=groups), token=token,
                         options=options)  # fmt: skip
        except ExportError as exc:
            failed.append(str(exc))
    if args.alertmanager:
        from fleetmon.render.alerts import render_alerts

        body = render_alerts(report, rules, now_s=time.time(), ttl_s=alert_ttl_s(args),
                             groups=groups)  # fmt: skip
        for url in args.alertmanager:
            try:
                post_alerts(url, body, options=options)
            except ExportError as exc:
                failed.append(str(exc))
    if failed:
        raise ExportError("; ".join(failed))
