"""`fleetmon rules list`: which rules apply to which inventory hosts (pure, text out)."""

from __future__ import annotations

from collections.abc import Sequence

from tabulate import tabulate

from fleetmon.inventory.patterns import Matcher, matcher
from fleetmon.model import HostSpec
from fleetmon.rules.overrides import VAR
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


def render_rule_list(
    rs: RuleSet, inventory_hosts: Sequence[HostSpec], match: Matcher | None = None
) -> str:
    """A table of rules and the hosts their play selects, then per-host overrides.

    `when:` conditions depend on collected metrics, so they are shown, not resolved.
    """
    order = [h.name for h in inventory_hosts]
    if match is None:
        groups: dict[str, list[str]] = {"all": list(order)}
        for h in inventory_hosts:
            for g in h.groups:
                groups.setdefault(g, []).append(h.name)
        match = matcher(order, groups)
    rows = []
    for r in rs.rules:
        hosts = (
            "(fleet)"
            if r.scope == "fleet"
            else _names([n for n in order if n in set(match(r.hosts))])
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
    tuned = [(h.name, h.vars[VAR]) for h in inventory_hosts if h.vars.get(VAR)]
    if tuned:
        out += ["", f"Per-host overrides ({VAR}):"]
        out += [f"  {name}: {value}" for name, value in tuned]
    return "\n".join(out) + "\n"
