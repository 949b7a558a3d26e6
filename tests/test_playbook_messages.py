"""Every shipped message that prints the value it judged keeps that value on its side of
each of the rule's levels, in every output: `steal 5.0%` of a 5.01 over `> 5` reads as not
past 5 at 3 a.m. Driven by the playbooks' own thresholds, so it holds when one changes."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Iterator
from html import escape
from pathlib import Path

import pytest
from test_rules_util import host

from fleetmon.model import Finding, Report, RunInfo, Severity
from fleetmon.render.html import render_html
from fleetmon.render.json import render_json
from fleetmon.render.nagios import render_nagios
from fleetmon.render.text import render_text
from fleetmon.rules import default_rule_files, load_rules
from fleetmon.rules.expr import mangle
from fleetmon.rules.judge import Judge
from fleetmon.rules.ranges import LEVELS, Comparison, NagiosRange, Threshold
from fleetmon.rules.ruleset import Rule

PLAYBOOKS = str(Path(__file__).parent.parent / "fleetmon" / "playbooks")
SHIPPED = load_rules(default_rule_files(PLAYBOOKS, history=True))
RUN = RunInfo("0.1.0", "2026-12-02T03:00:00Z", 1.0, "inv.yaml")
#: How far past a level the values go: a hair, and what round(0..2) would round back.
STEPS = (1e-9, 0.004, 0.04, 0.4)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _levels(rule: Rule) -> list[Threshold]:
    return [
        t
        for t in (rule.warning, rule.critical)
        if isinstance(t, NagiosRange)
        or (isinstance(t, Comparison) and isinstance(t.operand, float))
    ]


def _past(th: Threshold) -> Iterator[float]:
    """Values just on the alerting side of `th`."""
    if isinstance(th, Comparison):
        t = float(th.operand)  # type: ignore[arg-type]
        sign = 1 if th.op in (">", ">=") else -1
        if th.op in (">=", "<="):
            yield t
        yield from (t + sign * step for step in STEPS)
        return
    edges = [(th.start, -1), (th.end, 1)]
    for edge, sign in edges:
        if math.isfinite(edge):
            # Outside start..end alerts; `@` (inside) alerts on the other side of each edge.
            yield from (edge + (-sign if th.inside else sign) * step for step in STEPS)


def _cases() -> Iterator[object]:
    for rule in SHIPPED.rules:
        if rule.metric is None or rule.message is None or "value" not in rule.message.reads:
            continue
        if rule.apply is not None:  # value | duration: a time to a level, in words
            continue
        for th in _levels(rule):
            for v in _past(th):
                if th.alerts(v):
                    yield pytest.param(rule, v, id=f"{rule.name} {th.text} {v!r}")


def _finding(rule: Rule, value: float) -> Finding:
    """The shipped rule judged on `value` (its `when:` aside: the message is under test)."""
    ctx: dict[str, object] = {"host": "h1", "subject": "s1", "scope": rule.scope}
    # Other figures a message prints: 3, far from any level here.
    ctx.update({name: 3 for name in rule.message.reads if name not in ctx})  # type: ignore[union-attr]
    metrics = {rule.metric: value}
    ctx[mangle(rule.metric)] = value  # type: ignore[arg-type]
    out: list[object] = []
    Judge(rule).judge("h1", "s1", metrics, ctx, out, conds=())  # type: ignore[arg-type]
    assert len(out) == 1, out
    assert isinstance(out[0], Finding), out
    return out[0]


@pytest.mark.parametrize(("rule", "value"), list(_cases()))
def test_a_value_just_past_a_level_is_printed_past_it(rule: Rule, value: float) -> None:
    found = _finding(rule, value)
    assert found.severity in (Severity.WARNING, Severity.CRITICAL), found
    # The figure printed for the value: the number of the message nearest to it.
    shown = min(_NUMBER.findall(found.message), key=lambda n: abs(float(n) - value))
    for th in _levels(rule):
        assert th.alerts(float(shown)) == th.alerts(value), (found.message, th.text)
    h = dataclasses.replace(host("h1", (), {rule.metric: value}), findings=(found,))  # type: ignore[dict-item]
    report = Report(RUN, (h,), {}, 2 if found.severity is Severity.CRITICAL else 1, ())
    said = rf"(?<![\d.]){re.escape(shown)}(?![\d])"
    messages = [f["message"] for f in json.loads(render_json(report))["hosts"][0]["findings"]]
    assert messages == [found.message]
    for out in (render_text(report), render_nagios(report)):
        assert re.search(said, out), out
    # The HTML escapes as jinja2 does (' is &#39;).
    assert escape(found.message, quote=False).replace("'", "&#39;") in render_html(report)


#: A duration as format_duration writes it, and each unit's size in seconds.
_DURATION = re.compile(r"(-?\d+(?:\.\d+)?) (s|min|h|days)\b")
_UNIT_S = {"s": 1, "min": 60, "h": 3600, "days": 86_400}


def _duration_cases() -> Iterator[object]:
    for rule in SHIPPED.rules:
        if rule.apply is None or rule.message is None or "duration" not in rule.message.source:
            continue
        for th in _levels(rule):
            for v in _past(th):
                if th.alerts(v):
                    yield pytest.param(rule, v, id=f"{rule.name} {th.text} {v!r}")


@pytest.mark.parametrize(("rule", "value"), list(_duration_cases()))
def test_a_time_just_past_a_level_is_printed_past_it(rule: Rule, value: float) -> None:
    """`full in 24 h` for 86,399 s under `< 86400` (1 day) would read as not past the level."""
    # The message as the judge renders it for a finding (judge.py: its levels under LEVELS).
    ctx = {"host": "h1", "subject": "s1", "value": value, LEVELS: Judge(rule).judged}
    message = rule.message.render(ctx)  # type: ignore[union-attr]
    (figure, unit) = _DURATION.search(message).groups()  # type: ignore[union-attr]
    shown = float(figure) * _UNIT_S[unit]
    for th in _levels(rule):
        assert th.alerts(shown) == th.alerts(value), (message, th.text)


def test_the_shipped_time_rules_are_covered() -> None:
    assert len(list(_duration_cases())) >= 8
