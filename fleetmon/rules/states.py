"""Rule states over runs (pure): pending, firing, resolved; `for:` and `keep_firing_for:`.

Prometheus's alerting states, counted in runs or in time: a subject that breaks a rule is
`pending` until the rule's `for:` has passed (its finding stays OK meanwhile), then
`firing`; once it passes again it is `resolved` for that run, unless `keep_firing_for:`
keeps it firing a while. An UNKNOWN verdict (a metric not computable this run) neither
advances nor resets the count, nor does an OK that judged nothing (a metric the subject does
not offer), nor a run in which the subject was not collected. One `for:` covers both
levels: a subject already firing at warning is critical in its first run over the critical
threshold (as Nagios's hard WARNING -> hard CRITICAL); a critical-only rule of its own
waits its own `for:` (playbooks/README.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, MutableMapping
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime

from fleetmon.model import Finding, Findings, Severity
from fleetmon.model.durations import format_duration
from fleetmon.rules.historical import RuleState, StateKey
from fleetmon.rules.judge import Judge
from fleetmon.rules.ruleset import Rule, Span

ALERTING = (Severity.WARNING, Severity.CRITICAL)


def iso(t: float) -> str:
    """Unix seconds as the report's time format."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _held(span: Span | None, runs: int, seconds: float) -> bool:
    if span is None:
        return True
    return runs >= span.count if span.unit == "runs" else seconds >= span.count


def _kept(span: Span | None, prev: RuleState, now_t: int) -> bool:
    return span is not None and now_t - prev.last_t < span.count


def advance(
    rule: Rule, finding: Finding, prev: RuleState | None, now_t: int
) -> tuple[Finding, RuleState | None, bool]:
    """This run's finding with its state, the state to keep, and whether to write it
    (False: leave the stored state as it is)."""
    sev = finding.severity
    if sev is Severity.UNKNOWN or not finding.judged:
        if prev is None:
            return finding, None, False
        return dataclasses.replace(finding, state=prev.state, since=iso(prev.since_t)), prev, False
    if sev in ALERTING:
        runs = prev.runs + 1 if prev is not None else 1
        since = prev.since_t if prev is not None else now_t
        firing = (prev is not None and prev.state == "firing") or _held(
            rule.for_, runs, now_t - since
        )
        state = RuleState("firing" if firing else "pending", sev.value, since, runs, now_t)
        if firing:
            new = prev is None or prev.state != "firing"
            firing_now = dataclasses.replace(finding, state="firing", since=iso(since), new=new)
            return firing_now, state, True
        assert rule.for_ is not None
        pending = dataclasses.replace(
            finding,
            severity=Severity.OK,
            state="pending",
            since=iso(since),
            message=f"pending ({_progress(rule.for_, runs, now_t - since)}): {finding.message}",
        )
        return pending, state, True
    if prev is None:
        return finding, None, False
    if prev.state == "firing" and _kept(rule.keep_firing_for, prev, now_t):
        assert rule.keep_firing_for is not None
        kept = dataclasses.replace(
            finding,
            severity=Severity(prev.severity),
            state="firing",
            since=iso(prev.since_t),
            message=f"still firing (keep_firing_for {rule.keep_firing_for.text}): "
            f"{finding.message}",
        )
        return kept, prev, False
    if prev.state == "firing":
        return dataclasses.replace(finding, state="resolved", since=iso(now_t)), None, True
    return finding, None, True  # pending, then passed: back to nothing


def before(rule: Rule | None, state: RuleState, prev_t: int | None) -> RuleState | None:
    """The state a subject had before the run that left `state` (a replay of that run,
    `report DIR`, judges it again): one run fewer of breaking the rule, as of the run
    before (`prev_t`); None when that run began it. Firing if `for:` was already held
    then: holding only grows with runs and time, so it never fired if not held then."""
    if rule is None or prev_t is None or state.runs <= 1 or prev_t < state.since_t:
        return None
    runs = state.runs - 1
    held = _held(rule.for_, runs, prev_t - state.since_t)
    return RuleState("firing" if held else "pending", state.severity, state.since_t, runs, prev_t)


def _progress(span: Span, runs: int, seconds: float) -> str:
    if span.unit == "runs":
        return f"{runs} of {span.count} runs"
    return f"{format_duration(seconds)} of {span.text}"


def advance_all(
    rules: Mapping[str, Rule],
    findings: Findings,
    prev: Mapping[StateKey, RuleState],
    now_t: int,
    out: MutableMapping[StateKey, RuleState | None],
    held: AbstractSet[str] | None = None,
) -> Findings:
    """A host's findings with their states; the states to write (None: delete) into `out`.

    A plain pass stays packed unless its subject had a state (it resolves, or a rule's
    `for:` was pending): an OK without one before is left as it is. `held`: the subjects of
    this host with a state in `prev` (any rule), when the caller knows them: the passes of
    the others are kept as runs, without a look-up each (600 a host of 200 containers).
    """
    host = findings.host
    items = findings.items
    result: list[object] = []
    # Between two findings kept whole, packed passes only: (judge, subject, value) each.
    whole = [i for i, x in enumerate(items) if x.__class__ is Finding]
    start = 0
    for end in (*whole, len(items)):
        subjects = items[start + 1 : end : 3]
        at = start  # the passes before `at` are in `result`
        # advance(): an OK without a state stays as it is (kept as a run below).
        maybe = (
            range(len(subjects))
            if held is None
            else [j for j, subject in enumerate(subjects) if subject in held]
        )
        for j in maybe:
            i, subject = start + 3 * j, subjects[j]
            maker: Judge = items[i]  # type: ignore[assignment]
            if (maker.rule.name, maker.rule.scope, host, subject) in prev:
                result += items[at:i]
                passed = maker.passed(host, subject, items[i + 2])  # type: ignore[arg-type]
                _advance_into(result, rules, passed, host, prev, now_t, out)
                at = i + 3
        result += items[at:end]
        if end < len(items):
            _advance_into(result, rules, items[end], host, prev, now_t, out)  # type: ignore[arg-type]
        start = end + 1
    return Findings(host, result)


def _advance_into(
    result: list[object],
    rules: Mapping[str, Rule],
    f: Finding,
    host: str,
    prev: Mapping[StateKey, RuleState],
    now_t: int,
    out: MutableMapping[StateKey, RuleState | None],
) -> None:
    """advance() of one finding, appended to `result`; its state to write into `out`."""
    rule = rules.get(f.rule)
    if rule is None:
        result.append(f)
        return
    key = (f.rule, f.scope, host, f.subject)
    new, state, write = advance(rule, f, prev.get(key), now_t)
    if write:
        out[key] = state
    result.append(new)
