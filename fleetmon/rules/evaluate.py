"""Rules applied to collected hosts and fleet statistics (pure): findings per rule x subject.

Every rule that applies yields a finding per subject, OK included (JUnit needs the passes);
renderers show the non-OK ones. A null metric is UNKNOWN, never a silent pass; an absent one
(not offered by the host) is not judged (judge.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, MutableMapping, Sequence
from typing import Any

from fleetmon.inventory.patterns import Matcher, matcher
from fleetmon.model import (
    Finding,
    Findings,
    FleetStat,
    HostReport,
    HostSpec,
    MetricValue,
    Row,
    catalog,
)
from fleetmon.rules.expr import EvalError, mangle
from fleetmon.rules.historical import Past, RuleState, StateKey, layer
from fleetmon.rules.judge import Judge, Judges
from fleetmon.rules.overrides import Tuner
from fleetmon.rules.ruleset import Rule, RuleSet
from fleetmon.rules.states import advance_all


def groups_of(hosts: Sequence[HostReport], specs: Mapping[str, HostSpec]) -> dict[str, list[str]]:
    """Ansible's `groups`: group name -> its hosts, `all` included."""
    out: dict[str, list[str]] = {"all": [h.name for h in hosts]}
    for h in hosts:
        spec = specs.get(h.name)
        for g in spec.groups if spec else h.groups:
            out.setdefault(g, []).append(h.name)
    return out


def hypervisor_of(host: HostReport, host_vars: Mapping[str, Any]) -> str:
    """kvm, xen, none or unknown: the `hypervisor` name that gates kvm.yaml and xen.yaml.

    The inventory's `fleetmon_hypervisor` wins; else the `hypervisor` label of the VM rows
    (set by collection from the probe's detection); else `none` without hv.* metrics.
    """
    declared = host_vars.get("fleetmon_hypervisor")
    if declared in ("kvm", "xen", "none"):
        return str(declared)
    if host.hypervisor in ("kvm", "xen"):
        return host.hypervisor
    vms = host.rows_of("vm")
    for row in vms:
        label = row.labels.get("hypervisor")
        if label:
            return label
    if not vms and not any(k.startswith("hv.") for k in host.metrics):
        return "none"
    return "unknown"


def _metrics(metrics: Mapping[str, MetricValue]) -> dict[str, MetricValue]:
    return {mangle(k): v for k, v in metrics.items()}


def fleet_context(fleet: Mapping[str, FleetStat]) -> dict[str, float]:
    """`fleet.<metric>.<stat>` values under their expression names."""
    out: dict[str, float] = {}
    for metric, stat in fleet.items():
        for name in catalog.FLEET_STATS:
            out[mangle(f"fleet.{metric}.{name}")] = getattr(stat, name)
    return out


def _flat(reads: Collection[str], maps: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The names rules read, each from the first map that has it (a ChainMap, flattened)."""
    out: dict[str, Any] = {}
    for n in reads:
        for m in maps:
            if n in m:
                out[n] = m[n]
                break
    return out


def _host_findings(
    rules: Sequence[Rule],
    host: HostReport,
    base: Sequence[Mapping[str, Any]],
    judges: Judges,
    past: Past | None = None,
) -> list[object]:
    """The host's findings as the items of a Findings (passes packed). `base`: the host's
    own names (evaluate's `own`: hypervisor, vars...), the fleet's, its variables."""
    out: list[object] = []
    name = host.name
    judged = [(rule, judges(rule)) for rule in rules]
    # Expressions and messages read only the names they were compiled with: each judgment
    # gets a small dict of those its scope's rules read (copied, as judge() writes `value`
    # into it), looked up once per subject, instead of a ChainMap over hundreds of names.
    reads: dict[str, set[str]] = {}
    for rule, judge in judged:
        reads.setdefault(rule.scope, set()).update(judge.reads)
    tail: tuple[Mapping[str, Any], ...] = (
        {"subject": name, "labels": {}},
        _metrics(host.metrics),
        *base,
    )
    host_flat: dict[str, Any] | None = None
    # Per row: its flat context, and its metrics over the host's (row first), merged once.
    row_layers: dict[str, list[tuple[Row, dict[str, Any], dict[str, MetricValue]]]] = {}
    own = base[0]
    for rule, judge in judged:
        conds = judge.conds
        if judge.host_cond is not None:
            try:
                if not judge.host_cond.truth(own):
                    continue  # the play is not for this host: none of its subjects
                conds = judge.subject_conds
            except EvalError:
                pass  # each subject tries it, and words its own finding
        if rule.scope == "host":
            if host_flat is None:
                host_flat = _flat(reads["host"], ({"scope": "host"}, *tail))
                host_flat |= layer(past, "host", name, name, host.metrics, reads["host"])
            judge.judge(name, name, host.metrics, dict(host_flat), out, conds)
            continue
        layers = row_layers.get(rule.scope)
        if layers is None:
            layers = row_layers[rule.scope] = [
                (
                    row,
                    _flat(
                        reads[rule.scope],
                        (
                            {
                                **_metrics(row.metrics),
                                "subject": row.name,
                                "labels": dict(row.labels),
                                "scope": rule.scope,
                            },
                            *tail,
                        ),
                    ),
                    {**host.metrics, **row.metrics},
                )
                for row in host.rows_of(rule.scope)
            ]
            for row, flat, metrics in layers:
                flat |= layer(past, rule.scope, name, row.name, metrics, reads[rule.scope])
        for row, flat, metrics in layers:
            judge.judge(name, row.name, metrics, dict(flat), out, conds)
    return out


def evaluate(
    rs: RuleSet,
    hosts: Sequence[HostReport],
    specs: Mapping[str, HostSpec],
    fleet: Mapping[str, FleetStat],
    match: Matcher | None = None,
    *,
    all_groups: Mapping[str, Collection[str]] | None = None,
    past: Past | None = None,
    states_out: MutableMapping[StateKey, RuleState | None] | None = None,
) -> tuple[tuple[HostReport, ...], tuple[Finding, ...]]:
    """Hosts with their findings filled in, and the fleet-scope findings.

    With `past` (the history), the rules' history functions have their points and each
    finding its state across runs; the states to record go into `states_out`.

    `match` resolves a play's `hosts:` pattern to host names (the inventory's matcher);
    without it a built-in Ansible-style matcher over `specs`/`hosts` groups is used.
    InventoryError when a host's `fleetmon_thresholds` is malformed.
    """
    groups = {g: list(m) for g, m in (all_groups or groups_of(hosts, specs)).items()}
    resolve = match or matcher([h.name for h in hosts], groups)
    selected: dict[str, set[str]] = {}
    fleet_ctx = fleet_context(fleet)
    out: list[HostReport] = []
    judges = Judges(rs.rules)
    tune = Tuner(rs.names())
    for host in hosts:
        spec = specs.get(host.name)
        host_vars: Mapping[str, Any] = spec.vars if spec else {}
        if not host.collected:
            out.append(host)
            continue
        applicable = []
        for rule in rs.rules:
            if rule.scope == "fleet":
                continue
            if rule.hosts not in selected:
                selected[rule.hosts] = set(resolve(rule.hosts))
            if host.name in selected[rule.hosts]:
                applicable.append(rule)
        tuned, notes = tune(host.name, host_vars, applicable)
        own = {
            "vars": dict(host_vars),
            "host": host.name,
            "groups": groups,
            "group_names": list(spec.groups if spec else host.groups),
            "hypervisor": hypervisor_of(host, host_vars),
        }
        base = (own, fleet_ctx, host_vars)  # first wins, as in {**host_vars, **fleet, **own}
        enabled = [r for r in tuned if r.enabled]
        items = [*host.findings, *_host_findings(enabled, host, base, judges, past)]
        findings = Findings(host.name, items)
        if past is not None and states_out is not None:
            by_name = {r.name: r for r in enabled}
            now = int(past.now_t)
            findings = advance_all(by_name, findings, past.states, now, states_out)
        out.append(dataclasses.replace(host, findings=findings, notes=(*host.notes, *notes)))
    return tuple(out), tuple(_fleet_findings(rs, fleet, fleet_ctx, groups))


def _fleet_findings(
    rs: RuleSet,
    fleet: Mapping[str, FleetStat],
    fleet_ctx: Mapping[str, float],
    groups: Mapping[str, Collection[str]],
) -> list[Finding]:
    values: dict[str, MetricValue] = {}
    for metric, stat in fleet.items():
        for name in catalog.FLEET_STATS:
            values[f"fleet.{metric}.{name}"] = getattr(stat, name)
    out: list[object] = []
    for rule in rs.rules:
        if rule.scope != "fleet" or not rule.enabled:
            continue
        subject = rule.metric or rule.name
        ctx = {**fleet_ctx, "host": "fleet", "subject": subject, "groups": groups, "scope": "fleet"}
        Judge(rule).judge("fleet", subject, values, ctx, out)
    return list(Findings("fleet", out))
