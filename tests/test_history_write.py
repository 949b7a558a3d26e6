"""Recording runs: exact values back, stable VM identity, one transaction, tiered retention."""

from __future__ import annotations

import dataclasses
import random
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from reportfactory import RUN, host, report, sample_report, vm

from fleetmon.errors import HistoryError
from fleetmon.history import open_history, query, record_run, retention, schema
from fleetmon.history.retention import Retention
from fleetmon.history.store import History
from fleetmon.history.write import run_time
from fleetmon.model import HostReport, Report, Row, catalog

T0 = "2026-11-26T03:00:00Z"
T0_S = 1795662000


def at(rep: Report, started_at: str, inventory: str | None = None) -> Report:
    run = dataclasses.replace(
        rep.run, started_at=started_at, inventory=inventory or rep.run.inventory
    )
    return dataclasses.replace(rep, run=run)


def minutes(n: int) -> str:
    """T0 plus n minutes, as a run's started_at."""
    return datetime.fromtimestamp(T0_S + 60 * n, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def with_vms(h: HostReport, vms: list[Row]) -> HostReport:
    return dataclasses.replace(h, rows={**h.rows, "vm": tuple(vms)})


def test_run_time_is_the_unix_second_of_started_at() -> None:
    assert run_time(T0) == T0_S
    assert run_time(minutes(5)) == T0_S + 300
    with pytest.raises(HistoryError, match="not an ISO 8601 time"):
        run_time("yesterday")


def test_every_value_comes_back_at_its_unit_s_resolution(hist: History) -> None:
    rep = sample_report()
    rec = record_run(hist, rep)
    assert rec.t == T0_S
    expected_values = 0
    for h in rep.hosts:
        scopes: list[tuple[str, str, dict[str, object]]] = [("host", h.name, dict(h.metrics))]
        if h.collected:
            for scope, rows in (
                ("disk", h.rows_of("disk")),
                ("nic", h.rows_of("nic")),
                ("fs", h.rows_of("fs")),
            ):
                scopes += [(scope, r.name, dict(r.metrics)) for r in rows]
            scopes += [("vm", r.name, dict(r.metrics)) for r in h.rows_of("vm")]
        for scope, name, metrics in scopes:
            (ent,) = query.entities(hist, scope, h.name, name)
            names = [m.name for m in catalog.ALL.values() if m.scope == scope]
            ((t, got),) = query.series(hist, "raw", scope, [ent.id], names, 0, 2**40)[ent.id]
            assert t == T0_S
            for name_, value in zip(names, got, strict=True):
                want = metrics.get(name_)
                if want is None:
                    assert value is None, (scope, name, name_)
                    continue
                expected_values += 1
                unit = catalog.ALL[name_].unit
                scale = schema.SCALE_BY_UNIT[unit]
                if unit == "state":
                    assert value == want
                elif isinstance(want, bool):
                    assert value == int(want)
                else:
                    assert value == pytest.approx(round(float(want) * scale) / scale, abs=1e-12)
                    assert abs(float(value) - float(want)) <= 0.5 / scale  # type: ignore[arg-type]
    assert rec.values == expected_values
    runs = hist.conn.execute("SELECT hosts, collected, exit_code FROM runs").fetchall()
    assert runs == [(len(rep.hosts), 6, rep.exit_code)]


def test_a_host_not_collected_has_its_status_and_no_rows(hist: History) -> None:
    rep = sample_report()
    record_run(hist, rep)
    (ent,) = query.entities(hist, "host", "kvm03", "kvm03")
    status = hist.conn.execute(
        "SELECT t.text FROM raw_host r JOIN texts t ON t.id = r.status WHERE r.k = ?",
        ((T0_S << 24) | ent.id,),
    ).fetchone()
    assert status == ("unreachable",)
    assert query.entities(hist, "disk", "kvm03") == []


def _vm_report(rng: random.Random, placement: dict[str, list[Row]]) -> Report:
    return report([with_vms(host(h, rng), rows) for h, rows in placement.items()])


def test_a_vm_keeps_its_history_across_a_rename_and_a_migration(hist: History) -> None:
    rng = random.Random(1)
    uuid = "4dea22b3-1d52-d8f3-2516-782e98ab3fa0"

    def guest(name: str, cpu: float, with_uuid: bool = True) -> Row:
        row = vm(name, rng, cpu_pct=cpu)
        return dataclasses.replace(row, labels={"uuid": uuid} if with_uuid else {})

    # Known by name until the probe captured UUIDs, then by UUID, renamed, migrated.
    steps = [
        {"kvm01": [guest("web-3", 10.0, with_uuid=False)], "kvm02": []},
        {"kvm01": [guest("web-3", 20.0)], "kvm02": []},
        {"kvm01": [guest("web-3-new", 30.0)], "kvm02": []},
        {"kvm01": [], "kvm02": [guest("web-3-new", 40.0)]},
        # Mid-migration both hosts list it: one row per run, the first host's.
        {"kvm01": [guest("web-3-new", 50.0)], "kvm02": [guest("web-3-new", 55.0)]},
    ]
    for i, placement in enumerate(steps):
        record_run(hist, at(_vm_report(rng, placement), minutes(5 * i)))
    (ent,) = query.entities(hist, "vm")
    assert (ent.host, ent.name, ent.uuid) == ("kvm01", "web-3-new", uuid)
    points = query.series(hist, "raw", "vm", [ent.id], ["vm.cpu_pct"], 0, 2**40)[ent.id]
    assert [v for _, (v,) in points] == [10.0, 20.0, 30.0, 40.0, 50.0]
    # Another VM of the same name elsewhere, without a UUID, is another subject.
    record_run(hist, at(_vm_report(rng, {"kvm09": [guest("web-3-new", 1.0, False)]}), minutes(30)))
    assert len(query.entities(hist, "vm", name="web-3-new")) == 2


def test_a_migrated_vm_s_history_is_its_running_copy_s_not_the_shut_off_source_s(
    hist: History,
) -> None:
    """Migrated without --undefinesource, the domain stays defined, shut off, on its source
    at every run after: the running copy on the destination is the VM, whichever host
    comes first (kvm01 did: every run after the migration stored a shut-off VM)."""
    rng = random.Random(3)
    uuid = "4dea22b3-1d52-d8f3-2516-782e98ab3fa0"

    def web(state: str, cpu: float = 1.0) -> Row:
        row = vm("web-3", rng, cpu_pct=cpu, state=state)
        return dataclasses.replace(row, labels={"uuid": uuid})

    steps = [
        {"kvm01": [web("running", 10.0)], "kvm02": []},
        {"kvm01": [web("shutoff")], "kvm02": [web("running", 20.0)]},
        {"kvm01": [web("shutoff")], "kvm02": [web("running", 30.0)]},
        {"kvm00": [web("running", 40.0)], "kvm01": [web("shutoff")]},  # running listed first
    ]
    for i, placement in enumerate(steps):
        record_run(hist, at(_vm_report(rng, placement), minutes(5 * i)))
    (ent,) = query.entities(hist, "vm")
    assert (ent.host, ent.name) == ("kvm00", "web-3")
    points = query.series(hist, "raw", "vm", [ent.id], ["vm.cpu_pct"], 0, 2**40)[ent.id]
    assert [v for _, (v,) in points] == [10.0, 20.0, 30.0, 40.0]


def test_each_entity_s_last_t_is_the_latest_run_it_was_in(hist: History) -> None:
    rng = random.Random(2)
    uuid = "4dea22b3-1d52-d8f3-2516-782e98ab3fa0"
    both = {"kvm01": [dataclasses.replace(vm("web-1", rng), labels={"uuid": uuid})],
            "kvm02": [vm("db-1", rng)]}  # fmt: skip
    record_run(hist, at(_vm_report(rng, both), minutes(0)))
    record_run(hist, at(_vm_report(rng, {"kvm01": both["kvm01"]}), minutes(10)))
    # A run recorded late (an earlier time) leaves the later last_t alone.
    record_run(hist, at(_vm_report(rng, both), minutes(5)))

    def last(scope: str, host_: str, name: str) -> tuple[int, int]:
        (ent,) = query.entities(hist, scope, host_, name)
        return hist.conn.execute(
            "SELECT first_t, last_t FROM entities WHERE id = ?", (ent.id,)
        ).fetchone()

    assert last("vm", "kvm01", "web-1") == (T0_S, T0_S + 600)  # by UUID
    assert last("host", "kvm01", "kvm01") == (T0_S, T0_S + 600)
    assert last("vm", "kvm02", "db-1") == (T0_S, T0_S + 300)  # by name; not in the second
    assert last("host", "kvm02", "kvm02") == (T0_S, T0_S + 300)


def test_the_same_run_replayed_replaces_itself(hist: History) -> None:
    rep = sample_report()
    first = record_run(hist, rep)
    again = record_run(hist, rep, replay=True)
    assert (first.replaced, again.replaced, again.t) == (False, True, first.t)
    assert hist.conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
    vms = sum(len(h.rows_of("vm")) for h in rep.hosts)
    assert hist.conn.execute("SELECT count(*) FROM raw_vm").fetchone()[0] == vms
    rows = sum(
        hist.conn.execute(f"SELECT count(*) FROM raw_{s}").fetchone()[0] for s in hist.columns
    )
    assert rows == first.rows == again.rows
    # Another inventory's run in the same second is kept, a second later.
    other = record_run(hist, at(rep, T0, inventory="other.yaml"), replay=True)
    assert (other.t, other.replaced) == (T0_S + 1, False)


def test_two_runs_of_one_inventory_in_the_same_second_are_both_kept(hist: History) -> None:
    """Before, a run that started in the same second as the last one, of the same inventory
    (two cron lines, a run that waited for the lock), replaced it: its hosts' rows were lost
    and both runs exited as if recorded. Only a replay (`report DIR`) replaces."""
    rep = sample_report()
    first = record_run(hist, rep)
    second = record_run(hist, rep)
    assert (second.t, second.replaced) == (first.t + 1, False)
    assert hist.conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 2
    vms = sum(len(h.rows_of("vm")) for h in rep.hosts)
    assert hist.conn.execute("SELECT count(*) FROM raw_vm").fetchone()[0] == 2 * vms


def test_two_writers_of_one_new_file_both_record(tmp_path: Path) -> None:
    """Two runs with --no-lock, both opened before either wrote: the second's texts (a
    host's status) were those read when it opened, and its insert of one the first had
    written since failed (UNIQUE constraint failed: texts.text): its run was lost."""
    path = str(tmp_path / "history.sqlite")
    a, b = open_history(path, writable=True), open_history(path, writable=True)
    try:
        rep = sample_report()
        record_run(a, rep)
        record_run(b, at(rep, minutes(5)))
        assert b.conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 2
        assert len(set(b.texts.values())) == len(b.texts)
    finally:
        a.close()
        b.close()


def test_a_failed_write_leaves_the_file_as_it_was(
    hist: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    rep = sample_report()
    record_run(hist, rep)
    before = hist.conn.execute("SELECT count(*) FROM raw_nic").fetchone()[0]

    def full(*args: object, **kwargs: object) -> dict[str, int]:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(retention, "apply", full)
    with pytest.raises(HistoryError) as err:
        record_run(hist, at(rep, minutes(5)))
    assert str(err.value) == (
        f"history {hist.path}: this run was not recorded: database or disk is full "
        "(is the disk full?)"
    )
    assert hist.conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
    assert hist.conn.execute("SELECT count(*) FROM raw_nic").fetchone()[0] == before


def _cpu_report(rng: random.Random, cpu: float | None) -> Report:
    row = vm("db-1", rng, cpu_pct=0.0)
    metrics = {**row.metrics, "vm.cpu_pct": cpu}
    return _vm_report(rng, {"kvm01": [dataclasses.replace(row, metrics=metrics)]})


def _hourly(hist: History) -> list[tuple[int, ...]]:
    cols = ", ".join(schema.q(f"vm.cpu_pct:{s}") for s in schema.STATS)
    return hist.conn.execute(f"SELECT k >> 24, n, {cols} FROM hourly_vm ORDER BY k").fetchall()


def test_hourly_and_daily_rollups_are_exact_and_idempotent(hist: History) -> None:
    rng = random.Random(2)
    cpus = [10.0, 20.5, None, 40.25, 7.0, 99.99, 0.0, 33.3, 50.0, 60.0, 70.0, 80.0]
    for i, cpu in enumerate(cpus):
        record_run(hist, at(_cpu_report(rng, cpu), minutes(5 * i)))
    assert _hourly(hist) == []  # the hour is not over yet
    record_run(hist, at(_cpu_report(rng, 5.0), minutes(60)))
    known = [c for c in cpus if c is not None]
    avg = round(sum(round(c * 100) for c in known) / len(known))
    expected = [(T0_S, 12, 0, avg, 9999, len(known))]
    assert _hourly(hist) == expected
    # Rolling up again changes nothing.
    retention.rollup(hist, "hourly", T0_S, T0_S + 3600)
    retention.rollup(hist, "hourly", T0_S, T0_S + 3600)
    assert _hourly(hist) == expected
    # The next day: yesterday's hours are summarised in one daily row.
    record_run(hist, at(_cpu_report(rng, 1.0), minutes(24 * 60)))
    daily = hist.conn.execute(
        f"SELECT k >> 24, n, {', '.join(schema.q(f'vm.cpu_pct:{s}') for s in schema.STATS)}"
        " FROM daily_vm"
    ).fetchall()
    day = T0_S // 86400 * 86400
    total = sum(round(c * 100) for c in known) + 500
    assert daily == [(day, 13, 0, round(total / (len(known) + 1)), 9999, len(known) + 1)]


def test_each_tier_keeps_its_own_span(hist: History) -> None:
    rng = random.Random(3)
    keep = Retention(raw_s=2 * 3600, hourly_s=86_400, daily_s=3 * 86_400)
    for i in range(0, 5 * 24 * 60, 30):  # five days, a run every 30 minutes
        record_run(hist, at(_cpu_report(rng, float(i % 100)), minutes(i)), keep)
    newest = T0_S + (5 * 24 * 60 - 30) * 60
    runs = [t for (t,) in hist.conn.execute("SELECT t FROM runs ORDER BY t")]
    assert runs[0] >= newest - 2 * 3600
    assert len(runs) == 5
    hours = [k >> 24 for (k,) in hist.conn.execute("SELECT k FROM hourly_vm")]
    # The bucket holding the cutoff is kept whole; the newest hour is not over yet.
    assert min(hours) == (newest - 86_400) // 3600 * 3600
    assert max(hours) == newest // 3600 * 3600 - 3600
    days = [k >> 24 for (k,) in hist.conn.execute("SELECT k FROM daily_vm ORDER BY k")]
    assert days == [(newest - 3 * 86_400) // 86_400 * 86_400 + d * 86_400 for d in range(3)]
    assert retention.stored(hist) == keep


def test_a_run_recorded_late_is_rolled_up_again(hist: History) -> None:
    rng = random.Random(4)
    record_run(hist, at(_cpu_report(rng, 10.0), minutes(0)))
    record_run(hist, at(_cpu_report(rng, 20.0), minutes(120)))
    assert [r[3] for r in _hourly(hist)] == [1000]
    record_run(hist, at(_cpu_report(rng, 30.0), minutes(10)))  # `report DIR` of an old run
    assert [r[3] for r in _hourly(hist)] == [2000]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("raw=2d", Retention(raw_s=2 * 86_400)),
        ("hourly=30d, daily=1y", Retention(hourly_s=30 * 86_400, daily_s=365 * 86_400)),
    ],
)
def test_history_keep_option(text: str, expected: Retention) -> None:
    assert retention.parse_keep(text) == expected


def test_history_keep_names_only_the_tiers_it_changes() -> None:
    """Tiers a spec does not name keep the file's spans (its `base`): before, `daily=3y` on
    a file keeping raw=30d put raw back to 8d and the next run deleted 22 days of runs."""
    stored = Retention(raw_s=30 * 86_400, hourly_s=60 * 86_400)
    assert retention.parse_keep("daily=3y", stored) == Retention(
        raw_s=30 * 86_400, hourly_s=60 * 86_400, daily_s=3 * 365 * 86_400
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("raws=2d", "--history-keep: expected raw=, hourly= or daily=, got 'raws=2d'"),
        (
            "rwa=1d",
            "--history-keep: expected raw=, hourly= or daily=, got 'rwa=1d' (did you mean 'raw'?)$",
        ),
        ("daly=1y", "got 'daly=1y' (did you mean 'daily'?)$"),
        ("raw=8d,raw=1h", "^--history-keep: raw given twice, in 'raw=8d,raw=1h'$"),
        ("hourly=30d, raw=2d, hourly=40d", "^--history-keep: hourly given twice"),
        ("raw=10m", "--history-keep raw: at least 1h, got 10m"),
        ("daily=soon", "--history-keep daily: expected a duration such as"),
        ("", "--history-keep: expected raw=, hourly= or daily=, got ''"),
        (" , ,", "--history-keep: expected raw=, hourly= or daily=, got ' , ,'"),
    ],
)
def test_history_keep_option_errors(text: str, message: str) -> None:
    from fleetmon.errors import OptionError

    with pytest.raises(OptionError, match=message.replace("(", r"\(").replace("?)", r"\?\)")):
        retention.parse_keep(text)


def test_the_default_retention_reads_as_the_issue_states() -> None:
    assert Retention().text() == "raw=8d,hourly=90d,daily=2y"
    assert RUN.started_at == T0


#: `df -P -k` of an AWS EFS mount over NFS: 9007199254739968 1K-blocks free (8 EiB).
EFS_FREE = 9_007_199_254_739_968 * 1024


def _efs_report(rng: random.Random, free: list[int]) -> Report:
    mounts = [
        Row(f"/mnt/efs{i}", {"fs.used_pct": 0.0, "fs.free_bytes": b}) for i, b in enumerate(free)
    ]
    return report([host("nfs01", rng, filesystems=mounts)])


def test_values_near_2_to_the_63_roll_up_without_an_integer_overflow(hist: History) -> None:
    """Hourly runs with an 8 EiB filesystem: one value an hour (n = 1), so the daily rollup
    of the hour's averages was an integer sum(avg * n) past 2^63, "integer overflow": the run
    after midnight, and every later one, was not recorded."""
    rng = random.Random(7)
    midnight = T0_S // 86_400 * 86_400 + 86_400
    biggest = (1 << 63) - 1
    times = [midnight - 7200, midnight - 3600]
    for t in times:  # what a history holds when the defect struck: a day of such hours
        record_run(hist, at(_efs_report(rng, [EFS_FREE, biggest]), minutes((t - T0_S) // 60)))
    src = schema.q("fs.free_bytes:avg"), schema.q("fs.free_bytes:n")
    with pytest.raises(sqlite3.OperationalError, match="integer overflow"):  # the old rollup
        hist.conn.execute(f"SELECT sum({src[0]} * {src[1]}) FROM hourly_fs").fetchall()
    for t in (midnight, midnight + 3600):
        rec = record_run(hist, at(_efs_report(rng, [EFS_FREE, biggest]), minutes((t - T0_S) // 60)))
        assert rec.t == t
    # An ordinary run afterwards is recorded too.
    record_run(hist, at(_efs_report(rng, []), minutes((midnight + 7200 - T0_S) // 60)))
    assert hist.conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 5
    assert hist.meta("rolled_daily_to") == str(midnight)
    stats = ", ".join(schema.q(f"fs.free_bytes:{s}") for s in schema.STATS)
    for i, value in enumerate((EFS_FREE, biggest)):
        (ent,) = query.entities(hist, "fs", "nfs01", f"/mnt/efs{i}")
        daily = hist.conn.execute(
            f"SELECT k >> 24, {stats} FROM daily_fs WHERE k & {schema.ENTITY_MASK} = ?", (ent.id,)
        ).fetchall()
        assert daily == [(midnight - 86_400, value, value, value, 2)]
        hourly = query.series(
            hist, "hourly", "fs", [ent.id], ["fs.free_bytes"], 0, midnight + 86_400
        )
        assert [p for _, (p,) in hourly[ent.id]] == [value] * 4
