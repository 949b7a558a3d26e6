"""`fleetmon merge A.json B.json ...` (I/O edge): the JSON reports of several runs (one per
site's bastion) made one report: hosts deduplicated (fleetmon.analyse.merge), each with the
findings its own run gave it; the fleet statistics and the fleet-scope rules computed again
over the merged fleet, the guest-scope rules on the guests paired anew; every output
written, and every export sent, as `run` does."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from collections.abc import Mapping, Sequence

from fleetmon import __version__
from fleetmon.analyse.merge import (
    ReadReport,
    merge_hosts,
    report_from_json,
    stale_notes,
)
from fleetmon.analyse.pipeline import report_from_hosts
from fleetmon.cli.common import (
    check_outputs,
    check_outputs_spare,
    playbooks_dir,
    printable_run,
    rule_set,
    write_outputs,
)
from fleetmon.cli.exports import check_exports, export_after
from fleetmon.cli.inputs import rule_reads
from fleetmon.cli.runtime import utc_now
from fleetmon.errors import InputError, OptionError, OutputError
from fleetmon.inventory.inputfile import read_input
from fleetmon.io.files import strict_json
from fleetmon.model import Finding, FleetStat, HostReport, HostSpec, RunInfo
from fleetmon.rules import RuleSet, evaluate
from fleetmon.rules.verdict import exit_code

#: A JSON report of 10,000 hosts is ~100 MB; past this a file is not one of ours.
MAX_BYTES = 2 * 1024 * 1024 * 1024


def read_report(path: str) -> ReadReport:
    """One JSON report from a file; InputError naming the file (and line) when it is not.

    As an inventory or a rule file: a regular file, symlinks followed (`latest.json`), or a
    pipe (`<(ssh site cat paris.json)`, /dev/stdin); never a device."""
    try:
        data = read_input(path, "a JSON report", MAX_BYTES, InputError, pipes=True)
    except FileNotFoundError as exc:
        hint = " (standard input is /dev/stdin)" if path == "-" else ""
        raise InputError(f"cannot read: {exc.strerror}{hint}", file=path) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", file=path) from None
    try:
        doc = strict_json(data)
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text: {exc.reason}", file=path) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON: {exc.msg}", file=path, line=exc.lineno) from None
    except ValueError as exc:  # NaN, 1e400, nested too deeply: no report of ours
        raise InputError(f"not a fleetmon report: {exc}", file=path) from None
    try:
        return report_from_json(doc, path)
    except InputError as exc:
        if str(exc).startswith(f"{path}: "):
            raise
        raise InputError(str(exc), file=path) from None


def _run_info(
    reports: Sequence[ReadReport], rule_files: tuple[str, ...], notes: list[str]
) -> RunInfo:
    sources = "; ".join(
        f"{r.source} ({len(r.hosts)} hosts, started {r.started_at}"
        + (f", limit {r.limit}" if r.limit else "")
        + ")"
        for r in reports
    )
    intervals = sorted({r.interval_s for r in reports})
    if len(intervals) > 1:
        notes.append(f"the reports' intervals differ: {', '.join(f'{i:g} s' for i in intervals)}")
    return RunInfo(
        fleetmon_version=__version__,
        started_at=min(r.started_at for r in reports),
        interval_s=reports[0].interval_s,
        inventory=", ".join(dict.fromkeys(r.inventory for r in reports)),
        # its own (fleet rules) and, unless --no-rules, its inputs': hosts keep their findings
        rule_files=tuple(dict.fromkeys([*rule_files, *(f for r in reports for f in r.rule_files)]))
        if rule_files
        else (),
        # Each run's own warning, whose report it is: a merged site may be the one unchecked.
        host_key_notes=tuple(f"{r.source}: {n}" for r in reports for n in r.host_key_notes),
        notes=(f"merged at {utc_now()} from {len(reports)} reports: {sources}", *notes),
    )


def _version_notes(reports: Sequence[ReadReport], merging: str) -> list[str]:
    """A note when the reports come from fleetmon versions other than the merging one's (a
    fleet mid-upgrade): each host keeps the findings its own run's fleetmon gave it."""
    by: dict[str, list[str]] = {}
    for r in reports:
        by.setdefault(r.fleetmon_version or "unknown", []).append(r.source)
    if set(by) == {merging}:
        return []
    which = "; ".join(f"fleetmon {v}: {', '.join(srcs)}" for v, srcs in by.items())
    return [
        f"the reports come from other fleetmon versions than this merge's ({merging}): {which};"
        " each host keeps the findings its own run's fleetmon gave it"
    ]


def _host_rules_note(rules: RuleSet, given: Sequence[str]) -> list[str]:
    """What merge says of the -r files' rules it does not judge: only the fleet-scope ones
    are, over the merged fleet, and the guest-scope ones on the pairs the merge makes
    (judge_new_guests); each host keeps the findings of its own run's rules."""
    folders = tuple(os.path.join(os.path.abspath(g), "") for g in given)
    files = {os.path.abspath(g) for g in given}
    skipped = [
        r.name
        for r in rules.rules
        if r.scope not in ("fleet", "guest")
        and ((path := os.path.abspath(r.origin.rpartition(":")[0])) in files
             or path.startswith(folders))
    ]  # fmt: skip
    if not skipped:
        return []
    return [
        f"merge judges fleet-scope rules (and guest-scope ones on the pairs it makes) only,"
        f" not the -r files' {len(skipped)} of other"
        f" scopes ({', '.join(skipped[:5])}{', ...' if len(skipped) > 5 else ''}):"
        " each host keeps the findings of its own run's rules"
    ]


def judge_new_guests(
    rules: RuleSet,
    merged: tuple[HostReport, ...],
    had: Mapping[str, set[str]],
    specs: Mapping[str, HostSpec],
    fleet: Mapping[str, FleetStat],
) -> tuple[HostReport, ...]:
    """The guest-scope rules judged on the guest rows the merge paired anew (a guest in one
    report, its VM's host in another: link_guests, over the merged fleet), which no run
    judged; a pair its own run had keeps that run's findings. Without the inventory, as
    for the fleet rules: a host's fleetmon_thresholds do not tune them."""
    guest_rules = RuleSet(tuple(r for r in rules.rules if r.scope == "guest"), rules.files)
    fresh = {
        h.name: tuple(r for r in h.rows_of("guest") if r.name not in had.get(h.name, ()))
        for h in merged
    }
    only_new = [
        dataclasses.replace(h, rows={"guest": fresh[h.name]}) for h in merged if fresh[h.name]
    ]
    if not only_new or not guest_rules.rules:
        return merged
    judged = {h.name: h for h in evaluate(guest_rules, only_new, specs, fleet)[0]}
    return tuple(
        dataclasses.replace(h, findings=judged[h.name].findings, notes=judged[h.name].notes)
        if h.name in judged
        else h
        for h in merged
    )


def command(args: argparse.Namespace) -> int:
    """`fleetmon merge`: one report from several JSON reports."""
    if args.junit and args.junit_passes == "all":
        raise OptionError(
            "--junit-passes all: a JSON report counts each host's passed checks but does not"
            " list them, so merge cannot give a case for each: use summary (the default) or none"
        )
    check_outputs(args)
    check_outputs_spare(args, [*args.reports, *rule_reads(args, str(playbooks_dir()))])
    check_exports(args)
    reports = [read_report(p) for p in args.reports]
    hosts, notes = merge_hosts(reports)
    notes = [*_version_notes(reports, __version__), *stale_notes(reports, hosts), *notes]
    rules, rule_files = rule_set(args)
    if rules is None:  # --no-rules: no finding at all, its runs' neither
        hosts = [dataclasses.replace(h, findings=()) for h in hosts]
    else:
        notes += _host_rules_note(rules, args.rules or ())
    run = _run_info(reports, rule_files, notes)
    specs = {h.name: HostSpec(h.name, h.address, groups=h.groups) for h in hosts}
    fleet_rules = (
        None
        if rules is None
        else RuleSet(tuple(r for r in rules.rules if r.scope == "fleet"), rules.files)
    )

    had = {h.name: {r.name for r in h.rows_of("guest")} for h in hosts}

    def fleet_only(
        merged: tuple[HostReport, ...], fleet: Mapping[str, FleetStat]
    ) -> tuple[tuple[HostReport, ...], tuple[Finding, ...]]:
        if fleet_rules is None or rules is None:
            return merged, ()
        merged = judge_new_guests(rules, merged, had, specs, fleet)
        _, fleet_findings = evaluate(fleet_rules, merged, specs, fleet)
        return merged, fleet_findings  # each host keeps its own run's findings

    def code(merged: tuple[HostReport, ...], fleet_findings: tuple[Finding, ...]) -> int:
        return exit_code(merged, fleet_findings, unreachable=args.unreachable, fail_on=args.fail_on)

    report = report_from_hosts(hosts, printable_run(run), evaluate=fleet_only, exit_code=code)
    failure: OutputError | None = None
    try:
        write_outputs(args, report)
    except OutputError as exc:
        failure = exc
    # `rules`, not fleet_rules: an alert's reason and source are its rule's, a host's too.
    failure = export_after(args, report, rules, failure)
    if failure is not None:
        raise failure
    return report.exit_code
