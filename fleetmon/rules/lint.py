"""`fleetmon rules lint` (pure): what loaded rules say that no host could answer.

Loading a file already refuses what can never compile (file:line). This finds what compiles
but makes a rule UNKNOWN on every subject it judges: a metric of another scope (`vm.state`
in a rule of scope host, which has no VM row to read it from), and a bare name that is
nothing a rule can read (`vm.state == running` for `'running'`); and a state compared with
a word it never is (`vm.state == 'runnning'`), which makes the rule never fire (a metric
rule's `== crashd` the loader refuses). A bare name may be an
inventory variable: without the inventory it is a warning, with it an error for the hosts
that lack it. `unknown_counts` counts, from an evaluated fleet, what each rule judged UNKNOWN.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fleetmon.errors import did_you_mean
from fleetmon.model import Finding, HostReport, HostSpec, Severity, catalog
from fleetmon.rules.expr import mangle
from fleetmon.rules.historical import FUNCTIONS
from fleetmon.rules.ruleset import Rule

#: Context names of every host and row judgement (evaluate.py), and of a message's.
HOST_NAMES = frozenset(
    {"host", "subject", "scope", "labels", "vars", "groups", "group_names", "hypervisor"}
)
FLEET_NAMES = frozenset({"host", "subject", "groups", "scope"})
MESSAGE_NAMES = frozenset({"severity", "threshold", "rule", "metric", "loop"})
#: What `vm.state` can be: written bare, one of these is a string someone forgot to quote;
#: quoted, any other word is one it never equals.
STATE_WORDS = catalog.STATE_WORDS
_METRICS = {mangle(n): n for n in catalog.names()}
_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing lint found: where, how bad (error or warning), what."""

    origin: str  # file:line of the rule
    rule: str
    level: str  # "error" or "warning"
    key: str  # what says it: when, expr, message...
    text: str
    #: A bare name an inventory variable could define (None for the other problems).
    name: str | None = None
    #: Whether the rule is UNKNOWN where it judges (False: it judges, but never fires).
    unknown: bool = True

    def line(self) -> str:
        """The problem as lint prints it."""
        return f"{self.origin}: {self.level}: rule '{self.rule}': {self.key}: {self.text}"


def _readers(rule: Rule) -> list[tuple[str, Any]]:
    parts = [
        ("play when", rule.play_when),
        ("when", rule.when),
        ("expr", rule.expr),
        ("apply", rule.apply),
        ("message", rule.message),
    ]
    return [(key, x) for key, x in parts if x is not None]


def _scopes(rule: Rule) -> set[str]:
    """The scopes whose metrics a subject of this rule has: its own, its host's, the fleet's."""
    return {"fleet"} if rule.scope == "fleet" else {rule.scope, "host", "fleet"}


def where(rule: Rule, key: str) -> str:
    """file:line of a rule's key (of the rule, for a play's when: or a tuned rule)."""
    if ", " in rule.origin:  # tuned by a later file: the tune's line
        return rule.origin.rsplit(", ", 1)[1]
    line = dict(rule.key_lines).get(key)
    return rule.origin if line is None else f"{rule.origin.rsplit(':', 1)[0]}:{line}"


def _wrong_scope(rule: Rule, key: str, metric: str, scope: str) -> Problem:
    if rule.metric is None and rule.scope == "host" and scope in catalog.ROW_SCOPE:
        fix = f" (add `scope: {scope}` to judge each {catalog.ROW_SCOPE[scope].noun})"
    else:
        fix = f" (a rule of scope {rule.scope} cannot read {scope} metrics)"
    return Problem(
        where(rule, key),
        rule.name,
        "error",
        key,
        f"{metric} is a {scope} metric and the rule's scope is {rule.scope}: "
        f"undefined for every subject, so UNKNOWN everywhere{fix}",
    )


#: What a bare name that an inventory variable could define costs, said without inventory.
UNLESS = "undefined (UNKNOWN) on every host without an inventory variable of that name"


def _bare(rule: Rule, key: str, name: str, known: Collection[str]) -> Problem:
    if name in STATE_WORDS:
        text = f"'{name}' is not defined: did you mean the string '{name}' (quoted)?"
        return Problem(where(rule, key), rule.name, "error", key, text)
    if name == "value":
        text = "'value' is for metric rules only"
        return Problem(where(rule, key), rule.name, "error", key, text)
    hint = did_you_mean(name, known)
    text = f"'{name}' is not a metric or a name rules have{hint}"
    return Problem(where(rule, key), rule.name, "warning", key, text, name=name)


def check(rules: Iterable[Rule]) -> list[Problem]:
    """The problems of each enabled rule's expressions and message, in rule order."""
    out: list[Problem] = []
    for rule in rules:
        if not rule.enabled:
            continue
        scopes = _scopes(rule)
        base = FLEET_NAMES if rule.scope == "fleet" else HOST_NAMES
        for key, reader in _readers(rule):
            out += _states(rule, key, reader)
            known = base | set(FUNCTIONS) | (MESSAGE_NAMES if key == "message" else set())
            if rule.metric is not None:
                known |= {"value"}
            seen: set[str] = set()
            for name in sorted(reader.reads):
                metric = _METRICS.get(name)
                if metric is not None:
                    scope = catalog.scope_of(metric)
                    if scope is not None and scope not in scopes and metric not in seen:
                        seen.add(metric)
                        out.append(_wrong_scope(rule, key, metric, scope))
                elif name not in known:
                    out.append(_bare(rule, key, name, known | _metrics_of(scopes)))
    return out


def _states(rule: Rule, key: str, reader: Any) -> list[Problem]:
    """A state compared with a word it never is (`vm.state == 'runnning'`): the comparison
    never holds (`!=`: always), so the rule never fires (or always does). A number or a
    boolean compared with a string (`cpu.busy_pct > '80'`): `==` never holds, `>` fails
    (UNKNOWN) on every subject."""
    out = []
    for metric, op, word in dict.fromkeys(getattr(reader, "states", ())):
        unit = catalog.ALL[metric].unit if metric in catalog.ALL else "number"
        problem = catalog.state_problem(metric, word) if unit == "state" else None
        unknown = False
        if unit != "state":
            unknown = op not in ("eq", "ne")
            problem = _kind_problem(metric, unit == "bool", op, word)
        if problem is not None:
            out.append(Problem(where(rule, key), rule.name, "error", key, problem, unknown=unknown))
    return out


def _kind_problem(metric: str, boolean: bool, op: str, word: str) -> str:
    """`cpu.busy_pct > '80'`: a number (or a boolean) compared with a string."""
    outcome = {"eq": "never holds", "ne": "always holds"}.get(op, "is UNKNOWN on every subject")
    fix = "compare it with a number"
    if boolean:
        fix = "compare it with true or false, unquoted"
    elif _NUMBER_RE.fullmatch(word.strip()):
        fix = f"write {word.strip()} without quotes"
    kind = "a boolean" if boolean else "a number"
    return f"{metric} ({kind}) compared with the string '{word}' {outcome} ({fix})"


def _metrics_of(scopes: Collection[str]) -> frozenset[str]:
    return frozenset(n for n in catalog.ALL if catalog.ALL[n].scope in scopes)


def with_inventory(
    problems: Sequence[Problem],
    rules: Mapping[str, Rule],
    specs: Sequence[HostSpec],
    select: Callable[[str], Collection[str]],
) -> list[tuple[Problem, int, int]]:
    """Each problem with the hosts it makes UNKNOWN and the hosts its rule's play selects.

    A bare name the inventory defines on every selected host is no problem (left out); on
    some, an error for the others. The other problems are UNKNOWN on every selected host.
    """
    by_name = {s.name: s for s in specs}
    out = []
    for p in problems:
        rule = rules[p.rule]
        chosen = [n for n in select(rule.hosts) if n in by_name]
        lacking = chosen
        if p.name is not None:
            lacking = [n for n in chosen if p.name not in by_name[n].vars]
            if not lacking:
                continue
            p = dataclasses.replace(p, level="error")
        out.append((p, len(lacking), len(chosen)))
    return out


@dataclass(frozen=True, slots=True)
class Count:
    """What one rule judged over a fleet: subjects, those UNKNOWN, and the first reason."""

    rule: str
    judged: int
    unknown: int
    reason: str


def unknown_counts(
    rules: Sequence[Rule], hosts: Sequence[HostReport], fleet: Sequence[Finding]
) -> list[Count]:
    """Per rule (in rule order), the subjects it judged and how many it judged UNKNOWN."""
    judged: dict[str, int] = dict.fromkeys((r.name for r in rules), 0)
    unknown: dict[str, int] = dict.fromkeys(judged, 0)
    reasons: dict[str, str] = {}
    for f in (*fleet, *(f for h in hosts for f in h.findings)):
        if f.rule not in judged:
            continue
        judged[f.rule] += 1
        if f.severity is Severity.UNKNOWN:
            unknown[f.rule] += 1
            reasons.setdefault(f.rule, f.message)
    return [Count(n, judged[n], unknown[n], reasons.get(n, "")) for n in judged]
