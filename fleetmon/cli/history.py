"""`fleetmon history status|show|export|prune` (I/O edge): what earlier runs recorded.

Readers open the file read-only and never block a run writing it (WAL); `prune` is a writer
and takes the run's history lock.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import time
from collections.abc import Iterator

from fleetmon.cli.common import check_history_spared
from fleetmon.cli.recording import Recorder
from fleetmon.errors import HistoryError, OptionError, did_you_mean, suggest
from fleetmon.history import open_history, query, resolve, retention
from fleetmon.history.store import History, failed, transaction
from fleetmon.io.atomic import check_output, to_terminal, write_output
from fleetmon.model import catalog
from fleetmon.model.durations import DurationError, parse_duration
from fleetmon.model.times import moment
from fleetmon.render.history import render_export, render_series, render_status

#: What `history show HOST` prints without METRIC arguments, per scope.
KEY_METRICS = {
    "host": ("cpu.busy_pct", "cpu.steal_pct", "mem.used_pct", "load.1m"),
    "vm": ("vm.cpu_pct", "vm.vcpu_delay_pct", "vm.mem_used_pct", "vm.state"),
    "disk": ("disk.util_pct", "disk.read_bytes_per_s", "disk.write_bytes_per_s"),
    "nic": ("nic.rx_bytes_per_s", "nic.tx_bytes_per_s", "nic.rx_drops_per_s"),
    "fs": ("fs.used_pct", "fs.free_bytes", "fs.inodes_used_pct"),
    "ctr": ("ctr.cpu_pct", "ctr.cpu_throttled_pct", "ctr.mem_bytes", "ctr.mem_limit_pct"),
    "guest": ("guest.steal_pct", "guest.vcpu_delay_pct", "guest.busy_pct", "guest.vm_cpu_pct"),
}


def _path(args: argparse.Namespace) -> str:
    path = resolve(args.history)
    if path is None:
        raise OptionError("--history none: there is no history to read")
    return path


def _when(text: str, what: str, now: int) -> int:
    """The time `text` names: a duration back from now (7d), or a date or time (2026-11-26,
    2026-11-26T03:00, UTC unless an offset is given); before 1970 is 1970 (100y: all of it)."""
    try:
        at = moment(text)
        return max(0, now - parse_duration(text) if at is None else at)
    except DurationError as exc:
        hint = " (or a date: 2026-11-26, 2026-11-26T03:00Z)" if str(exc).startswith("exp") else ""
        raise OptionError(f"{what}: {exc}{hint}") from None
    except ValueError as exc:
        raise OptionError(f"{what}: {exc}") from None


def _range(args: argparse.Namespace, now: int) -> tuple[int, int]:
    """--since and --until as times, [since, until); checked before the file is opened.
    Without --until, up to as far ahead of now as a run is recorded (retention.refusal: a
    `report DIR` of a run made where the clock is a few minutes fast)."""
    if args.history_command == "status":
        return 0, now + 1
    since = _when(args.since, "--since", now)
    if not args.until:
        until = now + retention.FUTURE_TOLERANCE_S + 1
        if since >= until:
            raise OptionError(f"--since {args.since} is in the future: an empty range")
        return since, until
    until = _when(args.until, "--until", now)
    if until <= since:
        raise OptionError(
            f"--until {args.until} is not after --since {args.since}: an empty range "
            "(a duration counts back from now: --since 7d --until 1d is the week to yesterday)"
        )
    return since, until


def command(args: argparse.Namespace) -> int:
    """Run one `fleetmon history` subcommand."""
    if args.history_command == "prune":
        return _prune(args)
    now = int(time.time())
    since, until = _range(args, now)
    path = _path(args)
    check_output(getattr(args, "output", None) or "-")  # status has no -o
    check_history_spared(args, path)
    hist = open_history(path, writable=False)
    try:
        if args.history_command == "status":
            status = query.status(hist)
            if args.check:
                status["integrity"] = query.integrity(hist)
            write_output("-", (render_status(status, args.format),))
            return 0 if status.get("integrity", "ok") == "ok" else 4
        tier = query.pick_tier(hist, since, now) if args.tier == "auto" else args.tier
        if args.history_command == "show":
            chunks = _show(args, hist, tier, since, until)
        else:
            scopes = list(dict.fromkeys(args.scope or hist.columns))  # each once
            rows = query.export_rows(hist, tier, since, until, scopes)
            chunks = render_export(
                args.format, tier, rows, terminal=to_terminal(args.output or "-")
            )
        write_output(args.output or "-", chunks)
    except sqlite3.Error as exc:
        raise failed(hist.path, exc, "cannot read it") from None
    finally:
        hist.close()
    return 0


def _scope_of(args: argparse.Namespace, metrics: list[str]) -> tuple[str, str | None]:
    named = [(s, getattr(args, s)) for s in KEY_METRICS if s != "host" and getattr(args, s)]
    if len(named) > 1:
        raise OptionError("give one of " + ", ".join(f"--{s}" for s in KEY_METRICS if s != "host"))
    fleet = next((m for m in metrics if m.startswith("fleet.")), None)
    if fleet is not None:
        raise OptionError(_not_kept(fleet))
    scopes = {catalog.scope_of(m) for m in metrics}
    if None in scopes:
        bad = next(m for m in metrics if catalog.scope_of(m) is None)
        kept = (n for n, m in catalog.ALL.items() if m.scope in KEY_METRICS)
        raise OptionError(f"unknown metric {bad!r}{did_you_mean(bad, kept)}")
    if len(scopes) > 1:
        shown = ", ".join(sorted(map(str, scopes)))
        raise OptionError(f"metrics of one scope at a time, got {shown}")
    scope = str(scopes.pop()) if scopes else (named[0][0] if named else "host")
    if named and named[0][0] != scope:
        raise OptionError(f"--{named[0][0]} takes {named[0][0]} metrics, got {scope} ones")
    return scope, str(named[0][1]) if named else None


def _not_kept(metric: str) -> str:
    """Why `history show` has no `fleet.*` statistic (they are computed over each run's
    hosts, not stored), and the host metric it summarises."""
    base = metric.removeprefix("fleet.").rpartition(".")[0]
    hosts = [m.name for m in catalog.HOST]
    near = base if base in hosts else suggest(base, hosts, 0.6)
    hint = f" (each host's {near} is: history show HOST {near})" if near else ""
    return f"{metric}: fleet statistics are not kept in the history{hint}"


def _show(
    args: argparse.Namespace, hist: History, tier: str, since: int, until: int
) -> Iterator[str]:
    scope, name = _scope_of(args, list(args.metrics))
    metrics = list(args.metrics) or [
        m for m in KEY_METRICS[scope] if tier == "raw" or catalog.ALL[m].unit != "state"
    ]
    if scope == "host":
        found = query.entities(hist, "host", args.host, args.host)
    else:
        found = query.entities(hist, scope, args.host, name)
        if not found and name is not None:  # a VM that moved keeps its history elsewhere
            found = query.entities(hist, scope, None, name)[:1]
    if not found:
        what = args.host if scope == "host" else f"{scope} {name or '*'} of {args.host}"
        # A typo: the host's (or the host's VM's...) likely intended name.
        wanted, near = (args.host, None) if scope == "host" else (name, args.host)
        known = {e.name for e in query.entities(hist, scope, near)} if wanted else set()
        hint = did_you_mean(wanted, known, cutoff=0.8) if wanted else ""
        raise HistoryError(f"history {hist.path}: nothing recorded for {what}{hint}")
    # A host's own runs, as asked by default: each one's status first (a run it missed is
    # `unreachable`, not a blank line); metrics named on the command line are just those.
    status = tier == "raw" and scope == "host" and not args.metrics
    points = query.series(
        hist, tier, scope, [e.id for e in found], metrics, since, until, stat=args.stat,
        status=status,
    )  # fmt: skip
    metrics = ["status", *metrics] if status else metrics
    head = {
        "schema": "fleetmon.history-series/1",
        "subject": found[0].name if len(found) == 1 else args.host,
        "host": args.host,
        "scope": scope,
        "tier": tier,
        "stat": args.stat if tier != "raw" else None,
        "since_t": since,
        "until_t": until if args.until else None,  # None: up to now
    }
    series = [(e.name, points[e.id]) for e in found]
    return render_series(
        args.format, head, metrics, series, terminal=to_terminal(args.output or "-")
    )


def _prune(args: argparse.Namespace) -> int:
    path = _path(args)
    if not os.path.exists(path):
        raise HistoryError(f"history {path}: no such file (fleetmon run writes it)")
    with Recorder(path, args.history_keep, lock=True, wait_s=args.lock_wait) as rec:
        if rec.error is not None:  # not opened (a full disk): a run goes on, prune cannot
            raise rec.error
        hist, keep = rec.hist, rec.keep
        assert hist is not None
        try:
            with transaction(hist.conn):
                if keep is not None:
                    retention.save(hist, keep)
                deleted = retention.apply(
                    hist, keep or retention.stored(hist), now=int(time.time())
                )
            if args.vacuum:
                hist.conn.execute("VACUUM")
        except sqlite3.Error as exc:
            raise failed(path, exc, "prune failed") from None
    total = sum(deleted.values())
    detail = ", ".join(f"{n} {t}" for t, n in sorted(deleted.items()) if n)
    write_output("-", (f"pruned {total} row(s){': ' + detail if detail else ''}\n",))
    return 0
