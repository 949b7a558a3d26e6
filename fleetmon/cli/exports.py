"""The exports of `run`, `report DIR` and `merge` (I/O edge): options checked before the
run, the Prometheus textfile beside the other files, then the network sinks (Pushgateway,
InfluxDB, Alertmanager), each failure reported without losing another output (exit 4).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from fleetmon.errors import ExportError, OptionError, OutputError
from fleetmon.model import Report, RunInfo
from fleetmon.model.durations import DurationError, parse_duration
from fleetmon.rules import RuleSet

if TYPE_CHECKING:
    from fleetmon.export.http import HttpOptions

#: The Pushgateway job; the group is the inventory and the --limit (push_grouping).
JOB = "fleetmon"
#: Where InfluxDB 2's token is read.
TOKEN_VAR = "INFLUX_TOKEN"


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
    # '' too: `--push "$PUSHGATEWAY"` with the variable unset is refused, not ignored.
    if args.push is not None:
        check_push_url(args.push)
    if args.influx_url is not None:
        check_influx_url(args.influx_url)
        influx_token()
    for url in args.alertmanager:
        check_alertmanager_url(url)
    alert_ttl_s(args)


def influx_token() -> str | None:
    """$INFLUX_TOKEN (None: unset or empty); an OptionError, never quoting it, when it
    cannot be an HTTP header's value (a newline from the file it was read from, a
    character that is not ASCII)."""
    token = os.environ.get(TOKEN_VAR) or None
    if token is not None and not (token.isascii() and token.isprintable()):
        raise OptionError(
            f"${TOKEN_VAR}: a token is printable ASCII, this one is not "
            "(a trailing newline? a character that is not ASCII?)"
        )
    return token


def push_grouping(run: RunInfo) -> dict[str, str]:
    """The Pushgateway group of a run, whose push replaces the group's last one: the
    inventory by its real path (the same file named otherwise is the same group) and the
    --limit when given (runs of one inventory's parts, a site's each, do not replace one
    another)."""
    grouping = {"inventory": real_sources(run.inventory)}
    if run.limit:
        grouping["limit"] = run.limit
    return grouping


def real_sources(inventory: str) -> str:
    """An inventory's sources (joined by `,`) each by its real path when it names a file or
    folder here; a host list (`a,b,`) and what is not found are kept as written."""
    if os.path.exists(inventory):
        return os.path.realpath(inventory)
    parts = inventory.split(",")
    return ",".join(os.path.realpath(p) if p and os.path.exists(p) else p for p in parts)


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


def http_options(args: argparse.Namespace) -> HttpOptions:
    """--export-timeout and --export-retries as the sinks' HttpOptions: a time limit given
    is the limit of every request whatever its size; the default grows with the body."""
    from fleetmon.export.http import DEFAULT_PER_MB_S, DEFAULT_TIMEOUT_S, HttpOptions

    fixed = args.export_timeout
    return HttpOptions(
        timeout_s=DEFAULT_TIMEOUT_S if fixed is None else fixed,
        per_mb_s=DEFAULT_PER_MB_S if fixed is None else 0.0,
        retries=args.export_retries,
    )


def send_exports(args: argparse.Namespace, report: Report, rules: RuleSet | None) -> None:
    """Push, write and post to every sink asked for; one ExportError naming each failure
    after all were tried."""
    if args.push is None and args.influx_url is None and not args.alertmanager:
        return
    options = http_options(args)
    failed: list[str] = []
    if args.push is not None:
        _push(args, report, options, failed)
    if args.influx_url is not None:
        from fleetmon.export.sinks import influx_write
        from fleetmon.render.influx import influx_chunks

        chunks = influx_chunks(report, groups=args.export_groups)
        try:
            influx_write(args.influx_url, chunks, token=influx_token(), options=options)
        except ExportError as exc:
            failed.append(str(exc))
    if args.alertmanager:
        from fleetmon.export.sinks import post_alerts
        from fleetmon.render.alerts import render_alerts

        body = render_alerts(report, rules, now_s=time.time(), ttl_s=alert_ttl_s(args),
                             groups=args.export_groups,
                             fleet=push_grouping(report.run))  # fmt: skip
        for url in args.alertmanager:
            try:
                post_alerts(url, body, options=options)
            except ExportError as exc:
                failed.append(str(exc))
    if failed:
        raise ExportError("; ".join(failed))


def _push(
    args: argparse.Namespace, report: Report, options: HttpOptions, failed: list[str]
) -> None:
    from fleetmon.export.sinks import push
    from fleetmon.render.prom import prometheus_chunks

    chunks = list(prometheus_chunks(report, groups=args.export_groups))
    try:
        push(args.push, chunks, job=JOB, grouping=push_grouping(report.run), options=options)
    except ExportError as exc:
        failed.append(str(exc))


def export_after(
    args: argparse.Namespace,
    report: Report,
    rules: RuleSet | None,
    failure: OutputError | None = None,
) -> OutputError | None:
    """send_exports once the outputs are written (`failure`: what of them was not): the
    error to raise for both, None when all went well."""
    try:
        send_exports(args, report, rules)
    except ExportError as exc:
        return exc if failure is None else OutputError(f"{failure}; {exc}")
    return failure
