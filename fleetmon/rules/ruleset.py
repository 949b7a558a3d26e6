"""Rule records (pure): what a loaded rule file means, ready to evaluate."""

from __future__ import annotations

from dataclasses import dataclass

from fleetmon.model import Severity
from fleetmon.rules.expr import Expr, MessageTemplate
from fleetmon.rules.ranges import Threshold


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


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Every rule from the files given, later same-name rules having replaced earlier ones."""

    rules: tuple[Rule, ...]
    files: tuple[str, ...] = ()

    def names(self) -> list[str]:
        """Rule names, in evaluation order."""
        return [r.name for r in self.rules]

    def get(self, name: str) -> Rule | None:
        """The rule called `name`, if any."""
        return next((r for r in self.rules if r.name == name), None)
