"""Runs stamped by a wrong clock, and runs recorded late: no history lost (history.write,
history.retention), on real SQLite files."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from reportfactory import sample_report

from fleetmon.errors import HistoryError
from fleetmon.history import record_run, retention
from fleetmon.history.store import History
from fleetmon.model import Report

T0_S = 1795662000  # 2026-11-26T03:00:00Z
DAY = 86_400


def at(rep: Report, t: int) -> Report:
    started = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return dataclasses.replace(rep, run=dataclasses.replace(rep.run, started_at=started))


def _runs(hist: History) -> list[int]:
    return [t for (t,) in hist.conn.execute("SELECT t FROM runs ORDER BY t")]


def test_a_run_ahead_of_this_machine_s_clock_is_not_recorded(hist: History) -> None:
    rep = sample_report()
    record_run(hist, at(rep, T0_S), now=T0_S)
    # Within the tolerance (two machines' clocks): recorded.
    record_run(hist, at(rep, T0_S + retention.FUTURE_TOLERANCE_S), now=T0_S)
    with pytest.raises(HistoryError) as err:
        record_run(hist, at(rep, T0_S + 370 * DAY + 5), now=T0_S)
    assert str(err.value) == (
        f"history {hist.path}: the run of 2027-12-01T03:00:05Z was not recorded: its start "
        "is 1y5d ahead of this machine's clock (at most 10m): is either clock wrong?"
    )
    assert _runs(hist) == [T0_S, T0_S + retention.FUTURE_TOLERANCE_S]


def test_a_run_recorded_while_the_clock_was_wrong_makes_no_later_run_vanish(
    hist: History,
) -> None:
    """The clock a year ahead for one run: once it is right, each run is kept (retention
    counted back from the wrong run's time: every later run was deleted as it was written)."""
    rep = sample_report()
    ahead = T0_S + 365 * DAY
    record_run(hist, at(rep, ahead), now=ahead)
    for n in range(1, 4):
        t = T0_S + n * 1800
        record_run(hist, at(rep, t), now=t)
    assert _runs(hist) == [T0_S + 1800, T0_S + 3600, T0_S + 5400, ahead]
    hours = hist.conn.execute("SELECT DISTINCT k >> 24 FROM hourly_host ORDER BY 1").fetchall()
    assert [h for (h,) in hours][:2] == [T0_S, T0_S + 3600]
    # Pruned on the right clock: nothing of it goes either.
    assert retention.apply(hist, retention.stored(hist), now=T0_S + 5400)["runs"] == 0


def test_a_run_older_than_the_raw_tier_keeps_is_not_recorded(hist: History) -> None:
    """`report DIR` of a run older than the raw tier keeps: its hour's summary was
    recomputed from that run alone (the others' raw rows were gone), then its raw row
    deleted: the hour's figures were lost."""
    rep = sample_report()
    keep = retention.Retention(raw_s=2 * 3600, hourly_s=3 * DAY, daily_s=30 * DAY)
    for n in range(13):  # six hours, a run every 30 minutes
        record_run(hist, at(rep, T0_S + n * 1800), keep, now=T0_S + n * 1800)
    before = hist.conn.execute("SELECT * FROM hourly_host ORDER BY k").fetchall()
    assert [r[1] for r in before][:1] == [2]  # the first hour: two runs
    late = T0_S + 600
    with pytest.raises(HistoryError) as err:
        record_run(hist, at(rep, late), now=T0_S + 6 * 3600)
    assert str(err.value) == (
        f"history {hist.path}: the run of 2026-11-26T03:10:00Z was not recorded: its hour "
        "begins before what the raw tier keeps (2h back from the newest run, "
        "2026-11-26T09:00:00Z)"
    )
    assert hist.conn.execute("SELECT * FROM hourly_host ORDER BY k").fetchall() == before
    # Within what the raw tier keeps: recorded, its hour summarised again with it.
    record_run(hist, at(rep, T0_S + 5 * 3600 + 60), now=T0_S + 6 * 3600)
    hour = hist.conn.execute("SELECT n FROM hourly_host WHERE k >> 24 = ?", (T0_S + 5 * 3600,))
    assert {n for (n,) in hour} == {3}  # each host: its two runs and this one


def test_a_run_recorded_ahead_of_the_clock_is_shown_and_exported(hist: History) -> None:
    """A run 5 minutes ahead (a `report DIR` of a run made where the clock is fast) is
    recorded, and `status` listed it, but `show` and `export` read up to now only: nothing."""
    import json
    import time

    from clirun import fleetmon

    now = int(time.time())
    rep = sample_report()
    for t in (now - 300, now + 300):
        record_run(hist, at(rep, t), now=now)
    hist.close()
    ahead = datetime.fromtimestamp(now + 300, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    res = fleetmon("history", "show", "kvm01", "--history", hist.path, "--format", "json")
    assert res.returncode == 0, res.stderr
    (series,) = json.loads(res.stdout)["series"]
    assert [p[0] for p in series["points"]][-1] == ahead
    assert len(series["points"]) == 2
    res = fleetmon("history", "export", "--history", hist.path, "--scope", "host")
    assert res.returncode == 0, res.stderr
    assert f"\n{ahead},host,kvm01," in res.stdout
    # --until still ends where it says.
    res = fleetmon("history", "export", "--history", hist.path, "--until", "1s")
    assert res.returncode == 0, res.stderr
    assert ahead not in res.stdout
