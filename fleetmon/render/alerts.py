"""`--alertmanager URL` (pure): the findings as alerts for Alertmanager's v2 API
(POST /api/v2/alerts), so routing, silences, inhibition and notification stay the
Alertmanager's, as for Prometheus's own alerting rules.

An alert is a finding at warning or critical: labels `alertname` (the rule), `host`,
`site` (the inventory's `fleetmon_site`, when set), `subject`, `severity` and, when asked,
`groups`; a fleet-scope finding's have no host but the run's `fleet` labels instead (the
CLI's: `inventory` and `limit`, as its Pushgateway group), so the fleet rules of runs of
one inventory's parts (`--limit site_paris`, `--limit site_lyon`) are alerts of their own,
not one that each run overwrites and the other's resolution ends; annotations `message`,
`reason` and `source` (the rule's), `value` and `threshold`. `startsAt` is when the
finding began where the history knows it (its `since` while firing), else the run's start
(Alertmanager keeps the earliest it was given). `endsAt` is `ttl` after the run saw the
finding (its end, never later than now; now when its duration is unknown): each run renews
it, alerts from a fleetmon that stopped running resolve on their own, as Prometheus's do,
and a run older than `ttl` (`report DIR` of last week's raw folder) posts its alerts as
ended, paging no one for what it saw then.

An alert ends when its finding resolves (the history's `resolved` state): it is posted
with `endsAt` then. Severity is a label, so a finding that changed severity is a new
alert: the other severity's alert of the same rule and subject is posted as ended too (a
resolved alert that never fired sends no notification).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fleetmon.model import Report, Severity
from fleetmon.model.utf8 import utf8_safe
from fleetmon.render.labels import epoch_s, groups_label, report_findings
from fleetmon.rules import RuleSet

ALERTING = (Severity.WARNING, Severity.CRITICAL)


def rfc3339(t: float) -> str:
    """Unix seconds as Alertmanager's time format."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def seen_at(report: Report, now_s: float) -> float:
    """When the run saw its findings, in Unix seconds: its end (its start plus its
    duration), or `now_s` if that is earlier (a clock ahead of this one) or unknown (a
    merged report, a raw folder saved without its run's duration)."""
    started = epoch_s(report.run.started_at)
    if started is None or report.run.duration_s is None:
        return now_s
    return min(now_s, started + report.run.duration_s)


def alerts(
    report: Report,
    rules: RuleSet | None,
    *,
    now_s: float,
    ttl_s: float,
    groups: bool = False,
    fleet: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The alerts to post for a report, at `now_s` (Unix seconds); `fleet`: the labels of
    its fleet-scope findings' alerts, which name the run's part of the fleet."""
    by_name = {r.name: r for r in rules.rules} if rules is not None else {}
    started = epoch_s(report.run.started_at)
    seen = seen_at(report, now_s)
    out: list[dict[str, Any]] = []
    for h, f in report_findings(report):
        firing = f.severity in ALERTING
        if not firing and f.state != "resolved":
            continue
        labels = {"alertname": f.rule, "subject": f.subject}
        if h is not None:
            labels["host"] = h.name
            labels["site"] = h.site or ""
            if groups and h.groups:
                labels["groups"] = groups_label(h.groups)
        elif fleet:
            labels |= fleet
        labels = {k: utf8_safe(v) for k, v in labels.items() if v}
        rule = by_name.get(f.rule)
        notes = {
            "message": f.message,
            "reason": rule.reason if rule is not None else None,
            "source": rule.source if rule is not None else None,
            "value": None if f.value is None else str(f.value),
            "threshold": f.threshold,
        }
        annotations = {k: utf8_safe(v) for k, v in notes.items() if v}
        for severity in ALERTING:
            alert: dict[str, Any] = {
                "labels": {**labels, "severity": severity.value},
                "annotations": annotations,
            }
            if severity is f.severity:
                since = epoch_s(f.since) if f.state == "firing" and f.since else None
                begun = since if since is not None else started
                if begun is not None:
                    alert["startsAt"] = rfc3339(min(begun, seen))
                alert["endsAt"] = rfc3339(seen + ttl_s)
            else:
                ended = epoch_s(f.since) if f.state == "resolved" and f.since else None
                alert["endsAt"] = rfc3339(ended if ended is not None else seen)
            out.append(alert)
    return out


def render_alerts(
    report: Report,
    rules: RuleSet | None,
    *,
    now_s: float,
    ttl_s: float,
    groups: bool = False,
    fleet: Mapping[str, str] | None = None,
) -> str:
    """The body of POST /api/v2/alerts."""
    payload = alerts(report, rules, now_s=now_s, ttl_s=ttl_s, groups=groups, fleet=fleet)
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
