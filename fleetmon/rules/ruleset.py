"""Rule records (pure): what a loaded rule file means, ready to evaluate; `check_rule`, what
makes one inconsistent (a rule file's, a tuned one, one a host's overrides changed)."""

from __future__ import annotations

from dataclasses import dataclass

from fleetmon.model import Severity, catalog
from fleetmon.rules.expr import Expr, MessageTemplate
from fleetmon.rules.historical import Call
from fleetmon.rules.ranges import Comparison, Threshold, dead_warning


@dataclass(frozen=True, slots=True)
class Span:
    """`for:` or `keep_firing_for:`: runs in a row (`3 runs`) or seconds (`15m`)."""

    count: int
    unit: str  # "runs" or "s"
    text: str  # as the rule file wrote it


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of a play: a metric with thresholds, or an expression with a severity."""

    name: str
    play: str
    hosts: str  # the play's host pattern
    scope: str
    origin: str  # "file:line" of the rule, for messages and `rules list`
    metric: str | None = None
    expr: Expr | None = None
    warning: Threshold | None = None
    critical: Threshold | None = None
    severity: Severity | None = None  # expr rules: the severity when the expression holds
    message: MessageTemplate | None = None
    when: Expr | None = None
    play_when: Expr | None = None
    enabled: bool = True
    reason: str | None = None
    source: str | None = None
    #: A history function applied to the metric before the thresholds (`time_to(100, "24h")`).
    apply: Expr | None = None
    for_: Span | None = None
    keep_firing_for: Span | None = None
    #: What a fit must have for the rule to judge (deriv, predict_linear, time_to).
    min_points: int | None = None
    min_r2: float | None = None
    #: The line of each key the rule's file gave it (`rules lint` points at the `when:`).
    key_lines: tuple[tuple[str, int], ...] = ()

    def history_calls(self) -> tuple[Call, ...]:
        """The history functions the rule's expressions call."""
        exprs = (self.play_when, self.when, self.expr, self.apply)
        return tuple(c for e in exprs if e is not None for c in e.history)

    def history_key(self) -> tuple[str, str] | None:
        """The first key that needs the history and what it says (`for`, `3 runs`)."""
        for key, span in (("for", self.for_), ("keep_firing_for", self.keep_firing_for)):
            if span is not None:
                return key, span.text
        exprs = (("play when", self.play_when), ("when", self.when), ("expr", self.expr))
        for key, e in (*exprs, ("apply", self.apply)):
            if e is not None and e.history:
                return key, f"{e.history[0].fn}()"
        return None

    def needs_history(self) -> bool:
        """True when the rule cannot be judged without the history of earlier runs."""
        return (
            bool(self.history_calls())
            or self.for_ is not None
            or (self.keep_firing_for is not None)
        )


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Every rule from the files given, later same-name rules having replaced earlier ones."""

    rules: tuple[Rule, ...]
    files: tuple[str, ...] = ()

    def names(self) -> list[str]:
        """Rule names, in evaluation order."""
        return [r.name for r in self.rules]

    def needing_history(self) -> Rule | None:
        """The first enabled rule that needs the history, if any."""
        return next((r for r in self.rules if r.enabled and r.needs_history()), None)

    def history_calls(self) -> list[Call]:
        """Every history function the enabled rules call."""
        return [c for r in self.rules if r.enabled for c in r.history_calls()]

    def get(self, name: str) -> Rule | None:
        """The rule called `name`, if any."""
        return next((r for r in self.rules if r.name == name), None)


#: What a tune or an override that drops both levels (`warning: null, critical: null`) is
#: told: the way to turn a rule off is another.
OFF_HINT = {"needs warning or critical": " (enabled: false turns a rule off)"}


def check_rule(rule: Rule) -> tuple[str, str] | None:
    """Why a complete rule is inconsistent: the key at fault (for its line; "" for a key it
    lacks) and the words; None when it is not. Also used after tunes and overrides."""
    if rule.metric is not None and rule.expr is not None:
        return "expr", "give metric or expr, not both"
    if rule.apply is not None and rule.metric is None:
        return "apply", "apply is for metric rules (an expr calls the history functions itself)"
    if rule.expr is not None:
        if rule.warning is not None or rule.critical is not None:
            key = "warning" if rule.warning is not None else "critical"
            return key, "expr rules take severity (warning or critical), not warning/critical"
        if rule.severity is None:
            return "", "expr rules need severity: warning or critical"
        return None
    if rule.severity is not None:
        return "severity", "severity is for expr rules; metric rules take warning/critical"
    if rule.enabled and rule.warning is None and rule.critical is None:
        return "", "needs warning or critical"
    for level, th in (("warning", rule.warning), ("critical", rule.critical)):
        problem = None if th is None else _threshold_problem(str(rule.metric), th)
        if problem is not None:
            return level, f"{level}: {problem}"
    dead = dead_warning(rule.warning, rule.critical)
    return None if dead is None else ("warning", dead)


def _threshold_problem(metric: str, th: Threshold) -> str | None:
    """Why a threshold cannot judge the metric: another kind, or a state it never is."""
    unit = catalog.ALL[metric].unit if metric in catalog.ALL else "number"
    want = {"state": "string", "bool": "boolean"}.get(unit, "number")
    if th.kind != want:
        example = {"string": "'!= running'", "boolean": "'== true'", "number": "'> 90'"}
        return (
            f"'{th.text}' compares {metric} ({want}) with a {th.kind}: write e.g. {example[want]}"
        )
    if want != "number" and not (isinstance(th, Comparison) and th.op in ("==", "!=")):
        return f"{metric} is a {want}: use == or !="
    if unit == "state" and isinstance(th, Comparison):  # `== crashd` never holds
        return catalog.state_problem(metric, str(th.operand))
    return None
