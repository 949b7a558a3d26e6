"""`fleetmon report DIR` (I/O edge): the reports again from a --save-raw folder."""

from __future__ import annotations

import argparse
import dataclasses
import gc

from fleetmon import __version__
from fleetmon.analyse.executor import analyse_many
from fleetmon.cli.common import build_report, lean_gc, rule_set
from fleetmon.cli.recording import finish, recorder
from fleetmon.io.rawstore import iter_raw
from fleetmon.model import HostReport, HostSpec, RawResult, RunInfo

#: Hosts read from a --save-raw folder per analysis batch (~40 KB of raw text each).
REPORT_BATCH = 2000


def command(args: argparse.Namespace) -> int:
    """`fleetmon report DIR`: recompute the reports from saved raw output."""
    run, raws = iter_raw(args.raw_dir, args.output_cap)
    rules, rule_files = rule_set(args)
    rec = recorder(args, rules)
    run = RunInfo(
        fleetmon_version=__version__,
        started_at=run.started_at,
        interval_s=run.interval_s,
        inventory=run.inventory,
        rule_files=rule_files,
        limit=run.limit,
        host_key_notes=run.host_key_notes,
    )
    with rec, lean_gc():
        run = dataclasses.replace(run, notes=rec.notes)
        # Raw text a batch at a time: read, analysed over every core (forked workers inherit
        # the batch), dropped. Memory stays bounded by the batch, not the fleet.
        specs: dict[str, HostSpec] = {}
        hosts: list[HostReport] = []
        batch: list[RawResult] = []
        for raw in raws:
            specs[raw.host.name] = raw.host
            batch.append(raw)
            if len(batch) >= REPORT_BATCH:
                hosts.extend(analyse_many(batch))
                batch = []
        hosts.extend(analyse_many(batch))
        del batch
        # The analysed fleet lives until exit: no collection needs to walk it again.
        gc.freeze()
        hosts, past = rec.prepare(rules, hosts, run.started_at)
        report = build_report(args, hosts, specs, run, rules, None, past, rec.states)
        finish(args, report, rec)  # the outputs, then the history
    return report.exit_code
