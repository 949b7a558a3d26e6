"""Alertmanager's payload (render.alerts): labels, annotations from the rules, startsAt from
the history's `since`, endsAt from the TTL, and the alerts a resolved finding ends."""

from __future__ import annotations

import dataclasses
import json

import reportfactory as rf

from fleetmon.model import Report, RunInfo, Severity
from fleetmon.render.alerts import alerts, render_alerts, rfc3339
from fleetmon.rules import RuleSet
from fleetmon.rules.ruleset import Rule

NOW = 1_795_662_300.0  # five minutes after the run's start
STARTED = "2026-11-26T03:00:00.000000Z"


def _by(payload: list[dict[str, object]]) -> dict[tuple[str, ...], dict[str, object]]:
    out = {}
    for a in payload:
        labels = a["labels"]
        assert isinstance(labels, dict)
        key = (labels["alertname"], labels.get("host", ""), labels["subject"], labels["severity"])
        out[key] = a
    return out


def test_findings_at_warning_or_critical_are_alerts() -> None:
    rules = RuleSet((Rule("vm-cpu-saturated", "p", "all", "vm", "kvm.yaml:3", reason="why",
                          source="where"),))  # fmt: skip
    payload = alerts(rf.sample_report(), rules, now_s=NOW, ttl_s=900)
    got = _by(payload)
    crit = got[("vm-cpu-saturated", "kvm01", "vm1", "critical")]
    assert crit == {
        "labels": {"alertname": "vm-cpu-saturated", "subject": "vm1", "host": "kvm01",
                   "severity": "critical"},
        "annotations": {"message": "vm1 vm.cpu_pct 97.4", "reason": "why", "source": "where",
                        "value": "97.4", "threshold": "~:95"},
        "startsAt": STARTED,
        "endsAt": rfc3339(NOW + 900),
    }  # fmt: skip
    # Its other severity is ended: a finding that changed severity leaves no stale alert.
    other = got[("vm-cpu-saturated", "kvm01", "vm1", "warning")]
    assert other["endsAt"] == rfc3339(NOW)
    assert "startsAt" not in other
    fleet = got[("fleet-busy", "", "kvm", "warning")]
    assert "host" not in fleet["labels"]  # type: ignore[operator]
    firing = [a for a in payload if a["endsAt"] == rfc3339(NOW + 900)]
    assert len(firing) == 5  # the sample report's findings that are not OK
    assert len(payload) == 10


def test_groups_are_opt_in() -> None:
    plain = alerts(rf.sample_report(), None, now_s=NOW, ttl_s=60)
    assert all("groups" not in a["labels"] for a in plain)
    grouped = alerts(rf.sample_report(), None, now_s=NOW, ttl_s=60, groups=True)
    assert grouped[0]["labels"]["groups"] == ",kvm,prod,"


def test_a_hosts_site_is_a_label() -> None:
    got = _by(alerts(rf.sited_report(), None, now_s=NOW, ttl_s=60))
    crit = got[("vm-cpu-saturated", "kvm01", "vm1", "critical")]
    assert crit["labels"] == {"alertname": "vm-cpu-saturated", "subject": "vm1",
                              "host": "kvm01", "site": "paris", "severity": "critical"}  # fmt: skip
    ended = got[("vm-cpu-saturated", "kvm01", "vm1", "warning")]
    assert ended["labels"]["site"] == "paris"  # type: ignore[index]
    assert "site" not in got[("fs-full", "web01", "/", "warning")]["labels"]  # type: ignore[operator]
    assert "site" not in got[("fleet-busy", "", "kvm", "warning")]["labels"]  # type: ignore[operator]


def test_starts_at_comes_from_the_history_and_a_resolved_finding_ends() -> None:
    report = rf.sample_report()
    kvm01 = report.hosts[0]
    crit = dataclasses.replace(kvm01.findings[0], state="firing", since="2026-11-25T22:00:00Z")
    resolved = dataclasses.replace(kvm01.findings[0], rule="old", severity=Severity.OK,
                                   state="resolved", since="2026-11-26T03:00:00Z")  # fmt: skip
    pending = dataclasses.replace(kvm01.findings[0], rule="new", severity=Severity.OK,
                                  state="pending", since="2026-11-26T03:00:00Z")  # fmt: skip
    host = dataclasses.replace(kvm01, findings=(crit, resolved, pending))
    got = _by(alerts(Report(report.run, (host,), {}, 2), None, now_s=NOW, ttl_s=900))
    assert got[("vm-cpu-saturated", "kvm01", "vm1", "critical")]["startsAt"] == (
        "2026-11-25T22:00:00.000000Z"
    )
    for severity in ("warning", "critical"):
        ended = got[("old", "kvm01", "vm1", severity)]
        assert ended["endsAt"] == STARTED
    assert not any(key[0] == "new" for key in got)  # pending: not an alert yet


def test_the_body_is_json_with_names_as_they_are() -> None:
    body = render_alerts(rf.hostile_report(), None, now_s=NOW, ttl_s=900)
    subjects = {a["labels"]["subject"] for a in json.loads(body)}
    assert {rf.HOSTILE_QUOTE, rf.HOSTILE_COMMA} <= subjects


def test_a_replayed_old_run_never_starts_in_the_future() -> None:
    run = RunInfo("0.1.0", "2030-01-01T00:00:00Z", 1.0, "inv.yaml")
    report = dataclasses.replace(rf.sample_report(), run=run)
    for a in alerts(report, None, now_s=NOW, ttl_s=900):
        if "startsAt" in a:
            assert a["startsAt"] <= a["endsAt"]


def test_alerts_end_the_ttl_after_the_run_saw_them() -> None:
    """endsAt counts from the run's end, not from the post: a run replayed a day later
    (`report DIR`) posts its alerts as ended; one without a known duration counts from now."""
    report = rf.sample_report()
    run = dataclasses.replace(report.run, duration_s=60.0)  # ended at 03:01
    fresh = alerts(dataclasses.replace(report, run=run), None, now_s=NOW, ttl_s=900)
    assert {a["endsAt"] for a in fresh if "startsAt" in a} == {"2026-11-26T03:16:00.000000Z"}
    old = alerts(dataclasses.replace(report, run=run), None, now_s=NOW + 86_400, ttl_s=900)
    assert {a["endsAt"] for a in old if "startsAt" in a} == {"2026-11-26T03:16:00.000000Z"}
    assert all(a["endsAt"] < rfc3339(NOW + 86_400) for a in old)
    unknown = alerts(report, None, now_s=NOW, ttl_s=900)
    assert {a["endsAt"] for a in unknown if "startsAt" in a} == {rfc3339(NOW + 900)}


def test_fleet_alerts_carry_the_runs_part_of_the_fleet() -> None:
    """Runs of one inventory's parts (--limit a site each) judge their fleet rules apart:
    the alerts say which part, as the Pushgateway group does; a host's alerts do not."""
    part = {"inventory": "/etc/fleetmon/inv.yaml", "limit": "site_paris"}
    got = _by(alerts(rf.sample_report(), None, now_s=NOW, ttl_s=60, fleet=part))
    assert got[("fleet-busy", "", "kvm", "warning")]["labels"] == {
        "alertname": "fleet-busy", "subject": "kvm", "severity": "warning", **part
    }  # fmt: skip
    crit = got[("vm-cpu-saturated", "kvm01", "vm1", "critical")]["labels"]
    assert not part.keys() & crit  # type: ignore[operator]
    whole = _by(alerts(rf.sample_report(), None, now_s=NOW, ttl_s=60, fleet={"inventory": "i"}))
    assert whole[("fleet-busy", "", "kvm", "warning")]["labels"]["inventory"] == "i"  # type: ignore[index]
