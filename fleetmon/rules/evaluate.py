"""Rules applied to collected hosts and fleet statistics (pure): findings per rule x subject.

Every rule that applies yields a finding per subject, OK included (JUnit needs the passes);
renderers show the non-OK ones (model.notable), so a plain pass is kept packed in the host's
Findings and made only if read. A null metric is UNKNOWN, never a silent pass; an absent one
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
    catalog,
)
from fleetmon.model.stubs import stub_name
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


def fleet_context(fleet: Mapping[str, FleetStat]) -> dict[str, float]:
    """`fleet.<metric>.<stat>` values under their expression names."""
    out: dict[str, float] = {}
    for metric, stat in fleet.items():
        for name in catalog.FLEET_STATS:
            out[mangle(f"fleet.{metric}.{name}")] = getattr(stat, name)
    return out


#: Rule lists worked out at most (hosts with thresholds of their own each have one).
MAX_PLANS = 64
#: The names a subject's own layer sets (row first), over the host's metrics and the rest.
_OWN = ("subject", "labels", "scope")


class _Plan:
    """What one list of rules reads, worked out once for every host judged by that list."""

    __slots__ = ("judged", "names", "own", "reads")

    def __init__(self, rules: Sequence[Rule], judges: Judges) -> None:
        self.judged = [(rule, judges(rule)) for rule in rules]
        reads: dict[str, set[str]] = {}
        for rule, judge in self.judged:
            reads.setdefault(rule.scope, set()).update(judge.reads)
        #: Per scope: the names read, each with the metric it names (expr.mangle reversed:
        #: no metric name holds "__"), subject/labels/scope apart.
        self.names = {
            scope: tuple((n, n.replace("__", ".")) for n in sorted(names) if n not in _OWN)
            for scope, names in reads.items()
        }
        self.own = {scope: tuple(n for n in _OWN if n in names) for scope, names in reads.items()}
        self.reads = {scope: frozenset(names) for scope, names in reads.items()}


def _under(
    names: Sequence[tuple[str, str]],
    metrics: Mapping[str, MetricValue],
    base: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The names read from the host's metrics, else from the first of `base` that has it."""
    out: dict[str, Any] = {}
    for n, metric in names:
        if metric in metrics:
            out[n] = metrics[metric]
            continue
        for m in base:
            if n in m:
                out[n] = m[n]
                break
    return out


def _host_findings(
    plan: _Plan,
    host: HostReport,
    base: Sequence[Mapping[str, Any]],
    past: Past | None = None,
) -> list[object]:
    """The host's findings as the items of a Findings (passes packed). `base`: the host's
    own names (evaluate's `own`: hypervisor, vars...), the fleet's, its variables."""
    out: list[object] = []
    name = host.name
    hm = host.metrics
    # Expressions and messages read only the names they were compiled with: each judgment
    # gets a small dict of those its scope's rules read (copied, as judge() writes `value`
    # into it), looked up once per subject: a row's metrics, the host's, then `base`.
    host_flat: dict[str, Any] | None = None
    row_layers: dict[str, _RowLayers] = {}
    own = base[0]
    for rule, judge in plan.judged:
        conds = judge.conds
        if judge.host_cond is not None:
            try:
                if not judge.host_cond.truth(own):
                    continue  # the play is not for this host: none of its subjects
                conds = judge.subject_conds
            except EvalError:
                pass  # each subject tries it, and words its own finding
        scope = rule.scope
        if scope == "host":
            if host_flat is None:
                host_flat = _under(plan.names["host"], hm, base)
                mine = {"subject": name, "labels": {}, "scope": "host"}
                host_flat |= {n: mine[n] for n in plan.own["host"]}
                host_flat |= layer(past, "host", name, name, hm, plan.reads["host"])
            judge.judge(name, name, hm, dict(host_flat), out, conds)
            continue
        layers = row_layers.get(scope)
        if layers is None:
            layers = row_layers[scope] = _RowLayers(plan, scope, host, base, past)
        judge.judge_rows(name, layers.rows, layers.flat, out, conds, hm)
    return out


class _RowLayers:
    """A scope's rows, each with its flat context (its own metrics over the host's), made
    when a judgment first needs it: Judge.judge_rows decides most container rows without."""

    def __init__(
        self,
        plan: _Plan,
        scope: str,
        host: HostReport,
        base: Sequence[Mapping[str, Any]],
        past: Past | None,
    ) -> None:
        self.plan, self.scope, self.host, self.base, self.past = plan, scope, host, base, past
        self.rows = host.rows_of(scope)
        self._flats: list[dict[str, Any] | None] = [None] * len(self.rows)
        self._common: dict[str, Any] | None = None

    def flat(self, i: int) -> dict[str, Any]:
        """Row i's flat context."""
        found = self._flats[i]
        if found is not None:
            return found
        plan, scope, host = self.plan, self.scope, self.host
        names = plan.names[scope]
        if self._common is None:
            self._common = _under(names, host.metrics, self.base)
        row = self.rows[i]
        rm = row.metrics
        flat = dict(self._common)
        for n, metric in names:
            if metric in rm:
                flat[n] = rm[metric]
        # A stub domain's subject says what it is, as its findings do (judge_rows).
        mine = {"subject": stub_name(row) if scope == "vm" else row.name, "labels": row.labels,
                "scope": scope}  # fmt: skip
        for n in plan.own[scope]:
            flat[n] = dict(row.labels) if n == "labels" else mine[n]
        if self.past is not None:
            metrics = {**host.metrics, **rm}
            flat |= layer(self.past, scope, host.name, row.name, metrics, plan.reads[scope])
        self._flats[i] = flat
        return flat


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
    plans: dict[tuple[int, ...], _Plan] = {}
    tune = Tuner(rs.names())
    held = _held(past)
    for host in hosts:
        spec = specs.get(host.name)
        host_vars: Mapping[str, Any] = spec.vars if spec else {}
        if not host.collected:
            out.append(host)
            continue
        tuned, notes = tune(host.name, host_vars, _applicable(rs, host.name, selected, resolve))
        own = {
            "vars": dict(host_vars),
            "host": host.name,
            "groups": groups,
            "group_names": list(spec.groups if spec else host.groups),
            "hypervisor": hypervisor_of(host, host_vars),
        }
        base = (own, fleet_ctx, host_vars)  # first wins, as in {**host_vars, **fleet, **own}
        enabled = [r for r in tuned if r.enabled]
        plan = _plan_of(enabled, plans, judges)
        items = [*host.findings, *_host_findings(plan, host, base, past)]
        findings = Findings(host.name, items)
        if past is not None and states_out is not None:
            by_name = {r.name: r for r in enabled}
            now = int(past.now_t)
            mine = held.get(host.name, set())
            findings = advance_all(by_name, findings, past.states, now, states_out, mine)
        out.append(dataclasses.replace(host, findings=findings, notes=(*host.notes, *notes)))
    fleet_findings = _fleet_findings(rs, fleet, fleet_ctx, groups)
    if past is not None and states_out is not None:  # keyed by host "fleet", scope fleet
        by_name = {r.name: r for r in rs.rules if r.scope == "fleet"}
        now = int(past.now_t)
        fleet_findings = advance_all(by_name, fleet_findings, past.states, now, states_out)
    return tuple(out), tuple(fleet_findings)


def _held(past: Past | None) -> dict[str, set[str]]:
    """Each host's subjects with a rule state from earlier runs (advance_all's `held`)."""
    out: dict[str, set[str]] = {}
    for _, _, host, subject in past.states if past is not None else ():
        out.setdefault(host, set()).add(subject)
    return out


def _applicable(
    rs: RuleSet, name: str, selected: dict[str, set[str]], resolve: Matcher
) -> list[Rule]:
    """The host rules whose play's `hosts:` pattern selects the host (each pattern resolved
    once a run, into `selected`)."""
    applicable = []
    for rule in rs.rules:
        if rule.scope == "fleet":
            continue
        if rule.hosts not in selected:
            selected[rule.hosts] = set(resolve(rule.hosts))
        if name in selected[rule.hosts]:
            applicable.append(rule)
    return applicable


def _plan_of(enabled: list[Rule], plans: dict[tuple[int, ...], _Plan], judges: Judges) -> _Plan:
    """The plan of these rules, shared by the hosts they all apply to (by the rules' ids:
    the plan keeps them alive)."""
    key = tuple(map(id, enabled))
    plan = plans.get(key)
    if plan is None:
        plan = _Plan(enabled, judges)
        if len(plans) < MAX_PLANS:  # a host's own thresholds make rules of its own
            plans[key] = plan
    return plan


def _fleet_findings(
    rs: RuleSet,
    fleet: Mapping[str, FleetStat],
    fleet_ctx: Mapping[str, float],
    groups: Mapping[str, Collection[str]],
) -> Findings:
    """The fleet-scope rules' findings (their states across runs are the caller's)."""
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
    return Findings("fleet", out)
