"""`fleetmon rules lint` (I/O edge): rule files checked as a run loads them, without a host;
with an inventory or a --save-raw folder, what each rule would judge UNKNOWN."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection

from fleetmon.analyse.fleet import fleet_stats
from fleetmon.cli.common import match_from_specs, rule_files_of
from fleetmon.cli.report import analyse_replay, noting_specs
from fleetmon.cli.sources import open_inventory
from fleetmon.inventory import Inventory
from fleetmon.io.rawstore import DEFAULT_OUTPUT_CAP, iter_raw
from fleetmon.model import HostSpec
from fleetmon.rules import RuleSet, evaluate, load_rules
from fleetmon.rules import lint as checks

EXIT_INPUT = 4


def command(args: argparse.Namespace) -> int:
    """Print what lint finds; exit 4 when a rule would be UNKNOWN wherever it is judged, or
    could never fire."""
    # The files as a run loads them: on top of the shipped playbooks (history.yaml
    # included: a run keeps a history by default), so a file may tune a shipped rule.
    args.rules = args.files
    rs = load_rules(rule_files_of(args, history=True))
    problems = checks.check(rs.rules)
    inventory = open_inventory(args).inventory if args.inventories else None
    out: list[str] = []
    errors = warnings = 0
    if inventory is not None:
        specs = inventory.select(None)
        by_rule = {r.name: r for r in rs.rules}

        def select(pattern: str) -> Collection[str]:
            return [h.name for h in inventory.select_quiet(pattern)]

        for p, lacking, chosen in checks.with_inventory(problems, by_rule, specs, select):
            errors += 1
            unknown = f"; UNKNOWN on {lacking} of the {chosen} host(s) it selects"
            out.append(p.line() + (unknown if p.unknown else ""))
    else:
        for p in problems:
            errors += p.level == "error"
            warnings += p.level == "warning"
            out.append(p.line() + ("" if p.name is None else f"; {checks.UNLESS}"))
    if args.raw is not None:
        out += _raw_counts(rs, args.raw, inventory)
    if errors or warnings:
        out.append(
            f"{len(rs.rules)} rules in {len(rs.files)} file(s): "
            f"{errors} error(s), {warnings} warning(s)"
        )
    else:
        out.append(f"{len(rs.rules)} rules OK in {len(rs.files)} file(s)")
    sys.stdout.write("\n".join(out) + "\n")
    return EXIT_INPUT if errors else 0


def _raw_counts(rs: RuleSet, folder: str, inventory: Inventory | None) -> list[str]:
    """Each rule judged over a --save-raw folder, as `fleetmon report` would: its UNKNOWNs."""
    _saved, raws = iter_raw(folder, DEFAULT_OUTPUT_CAP)
    specs: dict[str, HostSpec] = {}
    hosts = analyse_replay(noting_specs(raws, specs))
    if inventory is not None:  # the inventory's variables, which a raw folder does not keep
        specs |= {h.name: h for h in inventory.select_quiet("all") if h.name in specs}
    # Rules over the history need earlier runs: a raw folder is one.
    now = RuleSet(tuple(r for r in rs.rules if not r.needs_history()), rs.files)
    later = [r.name for r in rs.rules if r.needs_history()]

    def match(pattern: str) -> set[str]:
        if inventory is not None:
            return {h.name for h in inventory.select_quiet(pattern)}
        return match_from_specs(pattern, list(specs.values()))

    judged, fleet = evaluate(now, hosts, specs, fleet_stats(hosts), match)
    counts = checks.unknown_counts(now.rules, judged, fleet)
    collected = sum(1 for h in hosts if h.collected)
    out = [f"{folder}: {collected} of {len(hosts)} host(s) collected; UNKNOWN per rule:"]
    width = max((len(c.rule) for c in counts), default=0)
    for c in counts:
        if c.unknown:
            out.append(f"  {c.rule:<{width}}  {c.unknown} of {c.judged} subject(s): {c.reason}")
    quiet = sum(1 for c in counts if not c.unknown)
    out.append(f"  ({quiet} rule(s) with no UNKNOWN subject)")
    if later:
        out.append(f"  (not judged, they need the history of earlier runs: {', '.join(later)})")
    return out
