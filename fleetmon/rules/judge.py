"""One rule judged on one subject (pure): the finding, from the subject's context.

Metric rules compare the value with their thresholds; expression rules evaluate `expr:`.
Absent metrics (not offered by the host) are not judged; null ones are UNKNOWN (METRICS.md).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from itertools import chain, repeat
from typing import Any

from fleetmon.model import Finding, MetricValue, Row, Severity, catalog
from fleetmon.model.nulls import null_reason
from fleetmon.model.stubs import subjects
from fleetmon.rules.expr import EvalError, Expr, mangle
from fleetmon.rules.historical import Fits, no_value
from fleetmon.rules.ranges import LEVELS, Comparison, ValueKindError, fmt_judged
from fleetmon.rules.ruleset import Rule

#: The context names of a host's own (rules.evaluate): the same for each of its subjects.
#: No metric's expression name (mangle) is one of them, so no row or metric shadows them.
HOST_NAMES = frozenset({"hypervisor", "host", "groups", "group_names", "vars"}) - frozenset(
    mangle(m) for m in catalog.names()
)


#: Integers below this convert to a float (float(2**1024) overflows).
_BIG = 2**1023


def _thresholds(rule: Rule) -> str | None:
    if rule.expr is not None:
        return rule.expr.source
    parts = [
        f"{lvl} {th.text}"
        for lvl, th in (("warning", rule.warning), ("critical", rule.critical))
        if th is not None
    ]
    return ", ".join(parts) or None


#: A row's value when it lacks the metric (judge() decides that row).
_ABSENT = object()


def _quiet(thresholds: Sequence[tuple[str, float]]) -> tuple[float, float] | None:
    """(lo, hi): a number x crosses none of these comparisons (`> 90`, `>= 5`, `< 1`, `<=
    2`, finite) exactly when lo < x < hi; None for any other (== or !=, infinite: judge()
    decides each value). `x <= t` is `x < nextafter(t, +inf)` for floats, NaN failing both."""
    lo, hi = -math.inf, math.inf
    for op, t in thresholds:
        if not math.isfinite(t):
            return None
        if op == ">":
            hi = min(hi, math.nextafter(t, math.inf))
        elif op == ">=":
            hi = min(hi, t)
        elif op == "<":
            lo = max(lo, math.nextafter(t, -math.inf))
        elif op == "<=":
            lo = max(lo, t)
        else:
            return None
    return lo, hi


class Judge:
    """Evaluates one rule on one subject, given the context of the host (or fleet)."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.thresholds = _thresholds(rule)
        # The conditions in the order they are tried, built once: 84 judgments per host.
        self.conds = tuple(c for c in (rule.play_when, rule.when) if c is not None)
        play = rule.play_when
        #: The play's `when:` if it reads only what every subject of a host shares
        #: (`hypervisor == 'kvm'`): tried once per host, then `subject_conds` per subject.
        self.host_cond = play if play is not None and play.reads <= HOST_NAMES else None
        self.subject_conds = tuple(c for c in self.conds if c is not self.host_cond)
        readers = (*self.conds, rule.expr, rule.message, rule.apply)
        self.label = rule.apply.source if rule.apply is not None else rule.metric
        #: The only context names this rule's expressions and message can read.
        self.reads = frozenset().union(*(x.reads for x in readers if x is not None))
        #: Catalogue metrics the conditions and expression read that a subject of this scope
        #: may lack because its host does not offer them (PSI before 4.20): an expression
        #: failing on one of those is not judged, as a metric rule on it is not.
        tried = (*self.conds, rule.expr)
        own = {rule.scope, "host"} if rule.scope != "fleet" else set()
        self.offerable = tuple(
            dict.fromkeys(
                m for x in tried if x is not None for m in x.metrics if catalog.scope_of(m) in own
            )
        )
        self.levels = tuple(
            (severity, th)
            for severity, th in (
                (Severity.CRITICAL, rule.critical),
                (Severity.WARNING, rule.warning),
            )
            if th is not None
        )
        self.judged = tuple(th for _severity, th in self.levels)  # what fmt_judged keeps
        #: For rows judged by judge_rows: per condition list (all of them, or those left
        #: when the play's held for the host), the thresholds' quiet interval (_quiet) when
        #: the list is only `<metric> is not none`, else None.
        self._quick = {id(conds): self._plain(conds) for conds in (self.conds, self.subject_conds)}

    def _plain(self, conds: Sequence[Expr]) -> tuple[float, float] | None:
        r = self.rule
        if r.metric is None or r.expr is not None or r.apply is not None or r.scope == "fleet":
            return None
        test = f"{r.metric} is not none"
        if not all(" ".join(c.source.split()) == test and not c.history for c in conds):
            return None
        levels = [th for _, th in self.levels]
        if not all(isinstance(th, Comparison) and th.operand.__class__ is float for th in levels):
            return None
        return _quiet(
            tuple((th.op, float(th.operand)) for th in levels if isinstance(th, Comparison))
        )

    def judge_rows(
        self,
        host: str,
        rows: Sequence[Row],
        flat: Callable[[int], Mapping[str, Any]],
        out: list[object],
        conds: Sequence[Expr],
        under: Mapping[str, MetricValue],
    ) -> None:
        """judge() of each row of a scope, in order; `flat(i)` makes row i's context.

        For a metric rule whose `when:` is at most `<metric> is not none` (the shipped
        container rules) with numeric thresholds, the rows are judged as a column: a number
        strictly inside the thresholds' quiet interval (_quiet) is a plain pass, a null value
        the condition excludes no finding, as judge() finds, packed a run of rows at a time;
        anything else (an alert: its message; another kind of value, NaN, infinity; a
        metric the row lacks) goes to judge(). A row at a time, that was 3 container rules x
        200 rows of Python a host."""
        # A vm.* finding on a Xen stub domain says what it is: "hvm1-dm (stub of hvm1)".
        names = subjects(self.rule.scope, rows)
        quiet = self._quick.get(id(conds))
        if quiet is None:
            for i, row in enumerate(rows):
                self.judge(host, names[i], row.metrics, dict(flat(i)), out, conds, under)
            return
        lo, hi = quiet
        metric: str = self.rule.metric  # type: ignore[assignment]
        values = [row.metrics.get(metric, _ABSENT) for row in rows]
        skip = bool(conds)  # `when:` does not hold for a null value
        # An int as Comparison.alerts takes it: as a float (none past _BIG); NaN is loud.
        loud = [
            i
            for i, v in enumerate(values)
            if not (
                (v.__class__ is float and lo < v < hi)
                or (v.__class__ is int and -_BIG < v < _BIG and lo < float(v) < hi)
                or (v is None and skip)
            )
        ]
        start = 0
        for i in (*loud, len(rows)):
            if start < i:  # the quiet rows before this one: plain passes (and nulls skipped)
                run_names, run_values = names[start:i], values[start:i]
                if skip and None in run_values:
                    pairs = zip(run_names, run_values, strict=True)
                    out += [x for n, v in pairs if v is not None for x in (self, n, v)]
                else:
                    out += chain.from_iterable(zip(repeat(self), run_names, run_values))
            if i < len(rows):
                self.judge(host, names[i], rows[i].metrics, dict(flat(i)), out, conds, under)
            start = i + 1

    def finding(
        self, severity: Severity, subject: str, value: MetricValue, threshold: str | None, msg: str
    ) -> Finding:
        r = self.rule
        applied = None if r.apply is None else r.apply.source
        return Finding(r.name, severity, r.scope, subject, r.metric, value, threshold, msg,
                       apply=applied)  # fmt: skip

    def _about(self, host: str, subject: str, text: str) -> str:
        return text if subject in (host, self.rule.metric) else f"{subject}: {text}"

    def _for(self, subject: str) -> str:
        return "" if subject == self.rule.metric else f" for {subject}"

    def unknown(self, subject: str, value: MetricValue, reason: str) -> Finding:
        return self.finding(Severity.UNKNOWN, subject, value, self.thresholds, reason)

    def judge(
        self,
        host: str,
        subject: str,
        metrics: Mapping[str, MetricValue],
        ctx: MutableMapping[str, Any],
        out: list[object],
        conds: Sequence[Expr] | None = None,
        under: Mapping[str, MetricValue] | None = None,
    ) -> None:
        """Appends the finding for one subject to `out` (nothing when `when:` excludes it);
        a plain pass goes in packed, as this judge, the subject and the value (Findings).
        `conds`: the conditions left to try (default: all of them). `under`: the host's
        metrics under a row's `metrics` (the row's win), for a row subject."""
        r = self.rule
        value: MetricValue = None
        metric = r.metric
        offered = False
        if metric is not None:
            if metric in metrics:
                value, offered = metrics[metric], True
            elif under is not None and metric in under:
                value, offered = under[metric], True
            if offered:
                ctx["value"] = value
        if "__bound" in ctx:
            ctx["__bound"].fits, ctx["__bound"].last = Fits(r.min_points or 2, r.min_r2), None
        for cond in self.conds if conds is None else conds:
            try:
                if not cond.truth(ctx):
                    return
            except EvalError as exc:
                # A condition on a metric the host does not offer cannot hold: no finding.
                if not (no_value(exc) or self._not_offered(metrics, under)):
                    why = null_read(cond, exc, self._for(subject), metrics, under)
                    out.append(self.unknown(subject, value, f"when: {why}"))
                return
        if r.expr is not None:
            found = self._judge_expr(host, subject, metrics, under, ctx)
            if found is None:
                out += (self, subject, None)
            else:
                out.append(found)
            return
        assert metric is not None
        found = self._judge_metric(host, subject, offered, ctx, value, (metrics, under))
        if found is None:
            out += (self, subject, ctx["value"])
        else:
            out.append(found)

    def _judge_metric(
        self,
        host: str,
        subject: str,
        offered: bool,
        ctx: MutableMapping[str, Any],
        value: MetricValue,
        sources: tuple[Mapping[str, MetricValue], Mapping[str, MetricValue] | None],
    ) -> Finding | None:
        """A metric rule's finding; None for a plain pass (`ctx["value"]` holds the value).
        `sources`: the subject's metrics and its host's (a row's), for why a value is null."""
        r = self.rule
        metric = r.metric
        assert metric is not None
        if not offered and r.scope != "fleet":
            return self._not_judged(host, subject, (metric,))
        if r.apply is not None:
            try:
                value = ctx["value"] = r.apply(ctx)
            except EvalError as exc:
                return self._no_value(host, subject, exc, r.apply.source)
        elif not offered:
            return self.unknown(subject, None, f"{metric} not reported{self._for(subject)}")
        if value is None:
            reason = None if r.apply is not None else null_reason(metric, *sources)
            why = reason or "not computable this run (see notes)"
            return self.unknown(subject, None, f"{metric} is null{self._for(subject)}: {why}")
        try:
            for severity, th in self.levels:
                if th.alerts(value):
                    return self._alert(host, severity, subject, value, th.text, ctx)
        except ValueKindError as exc:
            return self.unknown(subject, value, str(exc))
        return None

    def passed(self, host: str, subject: str, value: MetricValue) -> Finding:
        """The plain pass of `subject` (packed by judge()), with its default message."""
        r = self.rule
        if r.expr is not None:
            msg = self._about(host, subject, f"{r.expr.source} does not hold")
            return self.finding(Severity.OK, subject, None, r.expr.source, msg)
        ok = f"{self.label} = {fmt_judged(value, self.judged)} ({self.thresholds})"
        return self.finding(
            Severity.OK, subject, value, self.thresholds, self._about(host, subject, ok)
        )

    def _not_offered(
        self, metrics: Mapping[str, MetricValue], under: Mapping[str, MetricValue] | None
    ) -> tuple[str, ...]:
        """The metrics the rule reads that this subject's host does not offer."""
        if not self.offerable:
            return ()
        return tuple(
            m for m in self.offerable if m not in metrics and (under is None or m not in under)
        )

    def _not_judged(self, host: str, subject: str, absent: Sequence[str]) -> Finding:
        """OK, saying so: the subject does not offer a metric the rule needs (METRICS.md:
        absent is "not offered", null is "not computable this run")."""
        names = ", ".join(absent)
        text = f"not judged: {names} not offered by {host} (see notes)"
        msg = self._about(host, subject, text)
        ok = self.finding(Severity.OK, subject, None, self.thresholds, msg)
        return dataclasses.replace(ok, judged=False)

    def _no_value(self, host: str, subject: str, exc: EvalError, source: str) -> Finding:
        """OK when a history function has nothing to say (too few points...), else UNKNOWN."""
        quiet = no_value(exc)
        if quiet is None:
            return self.unknown(subject, None, f"{source}: {exc}")
        msg = self._about(host, subject, f"{source}: not judged: {quiet}")
        return self.finding(Severity.OK, subject, None, self.thresholds, msg)

    def _judge_expr(
        self,
        host: str,
        subject: str,
        metrics: Mapping[str, MetricValue],
        under: Mapping[str, MetricValue] | None,
        ctx: MutableMapping[str, Any],
    ) -> Finding | None:
        """An expression rule's finding; None for a plain pass (it does not hold)."""
        r = self.rule
        assert r.expr is not None
        assert r.severity is not None
        try:
            holds = r.expr.truth(ctx)
        except EvalError as exc:
            absent = self._not_offered(metrics, under)
            if absent and not no_value(exc):
                return self._not_judged(host, subject, absent)
            if no_value(exc) is None:  # `None > 3`: say which metric is null, and why
                why = null_read(r.expr, exc, self._for(subject), metrics, under)
                return self.unknown(subject, None, f"expr: {why}")
            return self._no_value(host, subject, exc, "expr")
        if not holds:
            return None
        return self._alert(host, r.severity, subject, None, r.expr.source, ctx)

    def _alert(
        self,
        host: str,
        severity: Severity,
        subject: str,
        value: MetricValue,
        th: str,
        ctx: MutableMapping[str, Any],
    ) -> Finding:
        r = self.rule
        if r.metric is not None:
            default = f"{self.label} = {fmt_judged(value, self.judged)} ({severity.value}: {th})"
        else:
            default = f"{r.expr.source if r.expr else th} holds"
        default = self._about(host, subject, default)
        msg = default
        if r.message is not None:
            ctx.update(severity=severity.value, threshold=th, rule=r.name, metric=r.metric)
            ctx[LEVELS] = self.judged  # `value | judged(1)` keeps to its side of each level
            try:
                msg = r.message.render(ctx)
            except EvalError as exc:
                msg = f"{default} (message template failed: {exc})"
        return self.finding(severity, subject, value, th, msg)


def null_read(
    expr: Expr,
    exc: EvalError,
    where: str,
    metrics: Mapping[str, MetricValue],
    under: Mapping[str, MetricValue] | None,
) -> str:
    """Why an expression failed: `exc`, led by the null metric it read when that is the
    cause (`mem.swap_used_pct > 50` on a host with no swap), as a metric rule says it."""
    if "NoneType" in str(exc):
        for m in expr.metrics:
            if (metrics[m] if m in metrics else (under or {}).get(m, 0)) is None:
                why = null_reason(m, metrics, under) or "not computable this run (see notes)"
                return f"{m} is null{where}: {why} ({exc})"
    return str(exc)


class Judges:
    """One Judge per rule object: built once per run, again only for rules a host tuned."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self._by_id = {id(r): (r, Judge(r)) for r in rules}

    def __call__(self, rule: Rule) -> Judge:
        found = self._by_id.get(id(rule))
        return found[1] if found is not None and found[0] is rule else Judge(rule)
