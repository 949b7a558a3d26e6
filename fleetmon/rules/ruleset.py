"""Rule records (pure): what a loaded rule file means, ready to evaluate."""

from __future__ import annotations

from dataclasses import dataclass

from fleetmon.model import Severity
from fleetmon.rules.expr import Expr, MessageTemplate
from fleetmon.rules.historical import Call
from fleetmon.rules.ranges import Threshold


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
