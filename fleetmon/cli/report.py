"""`fleetmon report DIR` (I/O edge): the reports again from a --save-raw folder."""

from __future__ import annotations

import argparse
import gc
import itertools
import os
from collections.abc import Iterator, Sequence

from fleetmon import __version__
from fleetmon.analyse.executor import AHEAD, CHUNK, analyse_iter
from fleetmon.cli.common import (
    build_report,
    check_history_spared,
    check_outputs,
    check_outputs_spare,
    lean_gc,
    playbooks_dir,
    rule_set,
)
from fleetmon.cli.exports import check_exports
from fleetmon.cli.inputs import rule_reads
from fleetmon.cli.pool import default_workers, process_pool
from fleetmon.cli.recording import finish, recorder
from fleetmon.errors import InputError
from fleetmon.history import resolve
from fleetmon.io.rawstore import iter_raw
from fleetmon.model import HostReport, HostSpec, RawResult, RunInfo
from fleetmon.rules import RuleSet
from fleetmon.rules.overrides import OverrideError, Tuner

#: Below this many hosts a pool of workers costs more (start-up, pickling) than it saves.
MIN_HOSTS = 400


def command(args: argparse.Namespace) -> int:
    """`fleetmon report DIR`: recompute the reports from saved raw output."""
    check_outputs(args)
    check_history_spared(args, resolve(args.history))
    # What --save-raw wrote: run.json and raw/ (a report beside them harms neither).
    check_outputs_spare(args, [os.path.join(args.raw_dir, n) for n in ("run.json", "raw")])
    check_outputs_spare(args, rule_reads(args, str(playbooks_dir())))
    check_exports(args)
    saved, raws = iter_raw(args.raw_dir, args.output_cap)
    rules, rule_files = rule_set(args)
    if rules is not None:
        check_thresholds(rules, raws.specs, os.path.join(args.raw_dir, "run.json"))
    rec = recorder(args, rules, replay=True)
    with rec, lean_gc():
        run = _replay_info(saved, rule_files, rec.notes)
        specs: dict[str, HostSpec] = {}
        hosts = analyse_replay(noting_specs(raws, specs))
        # The analysed fleet lives until exit: no collection needs to walk it again.
        gc.freeze()
        hosts, past, run = rec.prepare(rules, hosts, run)
        report = build_report(args, hosts, specs, run, rules, None, past, rec.states)
        finish(args, report, rec, rules)  # the outputs, the history, then the exports
    return report.exit_code


def _replay_info(saved: RunInfo, rule_files: tuple[str, ...], notes: tuple[str, ...]) -> RunInfo:
    """The saved run's facts, with this fleetmon, these rule files and this history's notes."""
    return RunInfo(
        fleetmon_version=__version__,
        started_at=saved.started_at,
        interval_s=saved.interval_s,
        inventory=saved.inventory,
        rule_files=rule_files,
        limit=saved.limit,
        host_key_notes=saved.host_key_notes,
        notes=notes,
        duration_s=saved.duration_s,
    )


def check_thresholds(rules: RuleSet, specs: Sequence[HostSpec], index: str) -> None:
    """Refuse a malformed `fleetmon_thresholds` kept in run.json (an edited file: the run
    checked its inventory's) before the history is opened: one line naming run.json and
    the key, as for any other malformed entry of it."""
    tune = Tuner(rules.names())
    host_rules = [r for r in rules.rules if r.scope != "fleet"]  # as check_overrides
    for i, spec in enumerate(specs):
        try:
            tune(spec.name, spec.vars, host_rules)
        except OverrideError as exc:
            raise InputError(
                f"malformed entry: hosts[{i}].spec.vars.{exc.key}: {exc.reason}", file=index
            ) from None


def noting_specs(raws: Iterator[RawResult], specs: dict[str, HostSpec]) -> Iterator[RawResult]:
    """The raw results, each host's spec noted in `specs` as it goes by."""
    for raw in raws:
        specs[raw.host.name] = raw.host
        yield raw


def analyse_replay(raws: Iterator[RawResult]) -> list[HostReport]:
    """Every host analysed, in order, over worker processes when there are enough to pay.

    Hosts are read as the workers take them: the raw text held at once (~40 KB a host) is
    bounded by the tasks in flight (AHEAD * CHUNK hosts), not by the fleet.
    """
    head = list(itertools.islice(raws, MIN_HOSTS))
    enough = len(head) >= MIN_HOSTS
    # The head's list is dropped once read (a list iterator lets go of it when exhausted).
    rest = itertools.chain(iter(head), raws)
    del head
    workers = default_workers()
    if not enough or workers < 2:
        return list(analyse_iter(rest))
    with process_pool(workers) as pool:
        return list(analyse_iter(rest, pool, chunk=CHUNK, ahead=AHEAD))
