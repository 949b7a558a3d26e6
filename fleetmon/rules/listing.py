"""`fleetmon rules list`: which rules apply to which inventory hosts (pure, text out)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tabulate import tabulate

from fleetmon.inventory.patterns import Matcher, matcher
from fleetmon.inventory.values import is_deferred
from fleetmon.model import HostSpec
from fleetmon.rules.overrides import VAR, Tuner
from fleetmon.rules.ruleset import Rule, RuleSet

MAX_NAMES = 6


def _names(names: Sequence[str]) -> str:
    if not names:
        return "(none)"
    shown = ", ".join(names[:MAX_NAMES])
    more = len(names) - MAX_NAMES
    return f"{shown}, … (+{more})" if more > 0 else shown


def _check(rule: Rule) -> str:
    return rule.metric or (f"expr: {rule.expr.source}" if rule.expr else "")


def _when(rule: Rule) -> str:
    parts = [c.source for c in (rule.play_when, rule.when) if c is not None]
    return " and ".join(f"({p})" if len(parts) > 1 else p for p in parts)


def _levels(rule: Rule) -> str:
    """A tuned rule's effect on one host, for the overrides section."""
    if not rule.enabled:
        return f"{rule.name} disabled"
    w = rule.warning.text if rule.warning else "-"
    c = rule.critical.text if rule.critical else "-"
    return f"{rule.name} warning {w}, critical {c}"


class _Tuned:
    """Each host's rules as its `fleetmon_thresholds` tunes them (as a run does): by rule
    name, the hosts it is off on and those it is tuned on, and each host's effective rules."""

    def __init__(self, rs: RuleSet, hosts: Sequence[HostSpec]) -> None:
        tune = Tuner(rs.names())
        rules = [r for r in rs.rules if r.scope != "fleet"]
        self.off: dict[str, set[str]] = {}
        self.tuned: dict[str, set[str]] = {}
        self.lines: list[str] = []
        for h in hosts:
            raw: Any = h.vars.get(VAR)
            if not raw:
                continue
            if is_deferred(raw):  # a template or vault value: shown as written
                self.lines.append(f"  {h.name}: {raw} (rendered at run time)")
                continue
            mine, notes = tune(h.name, h.vars, rules)
            changed = [t for r, t in zip(rules, mine, strict=True) if t is not r]
            for t in changed:
                (self.tuned if t.enabled else self.off).setdefault(t.name, set()).add(h.name)
            effect = [_levels(t) for t in changed] + notes
            self.lines.append(f"  {h.name}: {'; '.join(effect) or '(no change)'}")

    def hosts(self, rule: Rule, names: Sequence[str]) -> str:
        """The hosts the rule judges, then those an override turns it off or tunes it on."""
        off = self.off.get(rule.name, set())
        on = self.tuned.get(rule.name, set())
        text = _names([n for n in names if n not in off])
        for what, which in (("tuned", on), ("disabled", off)):
            hit = [n for n in names if n in which]
            if hit:
                text += f"; {what} on {len(hit)}: {_names(hit)}"
        return text


def render_rule_list(
    rs: RuleSet, inventory_hosts: Sequence[HostSpec], match: Matcher | None = None
) -> str:
    """A table of rules and the hosts their play selects, then per-host overrides: each
    host's effective thresholds (`fleetmon_thresholds`, applied as a run applies them).

    `when:` conditions depend on collected metrics, so they are shown, not resolved.
    """
    order = [h.name for h in inventory_hosts]
    if match is None:
        groups: dict[str, list[str]] = {"all": list(order)}
        for h in inventory_hosts:
            for g in h.groups:
                groups.setdefault(g, []).append(h.name)
        match = matcher(order, groups)
    tuned = _Tuned(rs, inventory_hosts)
    rows = []
    for r in rs.rules:
        hosts = (
            "(fleet)"
            if r.scope == "fleet"
            else tuned.hosts(r, [n for n in order if n in set(match(r.hosts))])
        )
        severity = r.severity.value if r.severity else ""
        rows.append(
            (
                r.name + ("" if r.enabled else " (disabled)"),
                r.scope,
                _check(r),
                r.warning.text if r.warning else severity if severity == "warning" else "",
                r.critical.text if r.critical else severity if severity == "critical" else "",
                _when(r),
                f"{r.hosts}: {hosts}",
            )
        )
    headers = ("rule", "scope", "check", "warning", "critical", "when", "hosts")
    out = [f"{len(rs.rules)} rules from {', '.join(rs.files) or '(no files)'}", ""]
    out.append(tabulate(rows, headers=headers, tablefmt="simple") if rows else "(no rules)")
    if tuned.lines:
        out += ["", f"Per-host overrides ({VAR}), as a run applies them:", *tuned.lines]
    return "\n".join(out) + "\n"
