"""Containers and guest pairs in the history (schema 4): the migration of a schema 3 file,
a container's identity, `history show HOST --ctr NAME`."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from clirun import fleetmon
from reportfactory import sample_report
from test_history_write import T0_S, at, minutes

from fleetmon.history import open_history, query, record_run, schema
from fleetmon.history import write as write_mod
from fleetmon.history.subjects import identities, identity
from fleetmon.model import HostReport, Report, Row

#: Written by fleetmon at 6197f73 (schema 3, before containers were stored): `fleetmon report
#: tests/data/golden-report/raw --history FILE`.
SCHEMA_3 = Path(__file__).parent / "data" / "history" / "schema3-golden.sqlite"
ID_A = "a" * 64
ID_B = "b" * 64


def ctr(name: str, cid: str, cpu: float, runtime: str = "docker") -> Row:
    metrics = {"ctr.cpu_pct": cpu, "ctr.mem_bytes": 1 << 20, "ctr.mem_limit_pct": 12.5}
    return Row(name, metrics, {"runtime": runtime, "id": cid, "cgroup": "v2"})


def with_ctrs(rep: Report, rows: dict[str, tuple[Row, ...]]) -> Report:
    hosts: list[HostReport] = [
        dataclasses.replace(h, rows={**h.rows, "ctr": rows[h.name]}) if h.name in rows else h
        for h in rep.hosts
    ]
    return dataclasses.replace(rep, hosts=tuple(hosts))


def test_a_schema_3_file_gains_the_container_and_guest_tables(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    shutil.copyfile(SCHEMA_3, path)
    hist = open_history(str(path), writable=True)
    # (Metrics the catalogue gained since 6197f73 are added too, in a note of their own.)
    assert hist.notes[0] == f"history {path} upgraded from schema 3 to {schema.SCHEMA_VERSION}"
    assert all("new metric(s) added" in note for note in hist.notes[1:])
    assert set(hist.columns) == {"host", "disk", "nic", "fs", "vm", "ctr", "guest"}
    tables = {r[0] for r in hist.conn.execute("SELECT name FROM sqlite_master")}
    assert {f"{tier}_{s}" for tier in schema.TIERS for s in ("ctr", "guest")} <= tables
    # What the old file held is still there: its run and its 8 hosts.
    assert hist.conn.execute("SELECT count(*) FROM runs").fetchone() == (1,)
    assert len(query.entities(hist, "host")) == 8
    rep = with_ctrs(sample_report(), {"web01": (ctr("api", ID_A, 42.5),)})
    rec = record_run(hist, at(rep, minutes(0)))
    assert rec.t == T0_S
    (ent,) = query.entities(hist, "ctr", "web01", "api")
    assert ent.uuid == ID_A
    points = query.series(hist, "raw", "ctr", [ent.id], ["ctr.cpu_pct"], 0, 2**40)[ent.id]
    assert [v for _, (v,) in points] == [42.5]
    hist.close()
    hist = open_history(str(path), writable=True)  # again: nothing left to do
    assert hist.notes == []
    hist.close()


def test_a_container_is_its_runtime_id_across_renames(tmp_path: Path) -> None:
    hist = open_history(str(tmp_path / "h.sqlite"), writable=True)
    rep = sample_report()
    runs = [
        {"web01": (ctr("api", ID_A, 10.0),), "kvm01": (ctr("web", "web", 1.0, "lxc"),)},
        # renamed (same id); an LXC container of the same name on another host
        {"web01": (ctr("api-old", ID_A, 20.0),), "kvm02": (ctr("web", "web", 2.0, "lxc"),)},
        # recreated under its first name: a new id, a new entity
        {"web01": (ctr("api", ID_B, 30.0),)},
    ]
    for i, rows in enumerate(runs):
        record_run(hist, at(with_ctrs(rep, rows), minutes(5 * i)))
    by_id = {e.uuid: e for e in query.entities(hist, "ctr") if e.uuid}
    assert (by_id[ID_A].name, by_id[ID_B].name) == ("api-old", "api")
    a = query.series(hist, "raw", "ctr", [by_id[ID_A].id], ["ctr.cpu_pct"], 0, 2**40)
    assert [v for _, (v,) in a[by_id[ID_A].id]] == [10.0, 20.0]
    lxc = query.entities(hist, "ctr", name="web")
    assert sorted(e.host for e in lxc) == ["kvm01", "kvm02"]  # a name, not an id: per host
    assert all(e.uuid is None for e in lxc)
    hist.close()


def test_history_show_a_container(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    hist = open_history(str(path), writable=True)
    rep = sample_report()
    for i, cpu in enumerate((10.0, 20.0, 30.0)):
        rows = {"web01": (ctr("api", ID_A, cpu), ctr("db", ID_B, 1.0))}
        record_run(hist, at(with_ctrs(rep, rows), minutes(5 * i)))
    hist.close()
    args = ("history", "show", "web01", "--ctr", "api", "--history", path, "--since", "3650d",
            "--tier", "raw")  # fmt: skip
    res = fleetmon(*args, "--format", "json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert (doc["scope"], doc["subject"]) == ("ctr", "api")
    assert doc["metrics"][0] == "ctr.cpu_pct"
    cpu = [p[1] for s in doc["series"] for p in s["points"]]
    assert cpu == [10.0, 20.0, 30.0]
    res = fleetmon(*args)
    assert res.returncode == 0, res.stderr
    assert "ctr.cpu_throttled_pct" in res.stdout  # the key metrics of a container
    res = fleetmon("history", "show", "web01", "--ctr", "nope", "--history", path)
    assert res.returncode == 4
    assert res.stderr.strip().endswith(f"history {path}: nothing recorded for ctr nope of web01")


def test_container_rows_roll_up_and_age_like_the_others(tmp_path: Path) -> None:
    hist = open_history(str(tmp_path / "h.sqlite"), writable=True)
    rep = sample_report()
    for i in range(14):  # 70 minutes of 5-minute runs: the first hour is rolled up
        rows = {"web01": (ctr("api", ID_A, float(10 + i)),)}
        record_run(hist, at(with_ctrs(rep, rows), minutes(5 * i)))
    (ent,) = query.entities(hist, "ctr", "web01", "api")
    (point,) = query.series(hist, "hourly", "ctr", [ent.id], ["ctr.cpu_pct"], 0, 2**40)[ent.id]
    assert point[0] == T0_S
    assert point[1] == (15.5,)  # the average of the hour's 12 runs, 10 to 21
    hist.close()


CTR_RULES = """
- hosts: all
  rules:
    - name: mem-grows
      expr: change(ctr.mem_bytes, "1h") > 0
      scope: ctr
      severity: warning
    - name: mem-slope
      expr: deriv(ctr.mem_bytes, "1h", min_points=3) > 0
      scope: ctr
      severity: warning
    - name: cpu-busy
      expr: avg_over(ctr.cpu_pct, "1h") > 15
      scope: ctr
      severity: warning
"""


def _mem_ctr(name: str, cid: str, i: int, runtime: str = "docker") -> Row:
    row = ctr(name, cid, 10.0 * i, runtime)
    return dataclasses.replace(row, metrics={**row.metrics, "ctr.mem_bytes": (1 << 20) * (i + 1)})


def test_history_rules_read_a_container_s_past(tmp_path: Path) -> None:
    """change/deriv/avg_over of a ctr.* metric read the container's points under the identity
    it is stored by (its runtime id; an LXC one's host and name): they found none before."""
    from test_rules_history import judge, rules

    from fleetmon.history.forrules import fetch_points
    from fleetmon.rules.historical import Past

    hist = open_history(str(tmp_path / "h.sqlite"), writable=True)
    rep = sample_report()
    for i in range(4):
        rows = {"web01": (_mem_ctr("api", ID_A, i),), "kvm01": (_mem_ctr("web", "web", i, "lxc"),)}
        record_run(hist, at(with_ctrs(rep, rows), minutes(5 * i)))
    # This run: the Docker container renamed (the same id), the LXC one as it was.
    now = with_ctrs(rep, {"web01": (_mem_ctr("api-2", ID_A, 4),),
                          "kvm01": (_mem_ctr("web", "web", 4, "lxc"),)})  # fmt: skip
    rs = rules(CTR_RULES)
    needs = {(c.metric, c.window_s, c.hourly) for c in rs.history_calls()}
    points = fetch_points(hist, needs, now.hosts, T0_S + 20 * 60)
    assert len(points["ctr", "web01", "api-2"]["ctr.mem_bytes", "raw"]) == 4
    assert len(points["ctr", "kvm01", "web"]["ctr.mem_bytes", "raw"]) == 4
    found = judge(rs, [h for h in now.hosts if h.collected], Past(T0_S + 20 * 60, points))
    mine = [f for f in found if f.scope == "ctr"]
    fired = sorted((f.rule, f.subject) for f in mine if f.severity.value == "warning")
    assert fired == [
        (rule, subject)
        for rule in ("cpu-busy", "mem-grows", "mem-slope")
        for subject in ("api-2", "web")
    ]
    hist.close()


@pytest.mark.parametrize(
    "ids",
    [
        [ID_A, ID_B, "0123456789abcdef" * 4],  # all runtime ids: checked by one match
        [ID_A, "A" * 64],  # upper case: not a runtime id
        [ID_A, "a" * 63, "b" * 65],
        [ID_A, None, ""],
        [ID_A, f"{'a' * 31}\n{'b' * 32}"],  # a newline inside, 64 long
        [f"{'a' * 64}\n{'b' * 64}", ID_B],  # two ids in one: 129 long
        [f"{'a' * 63}\n", ID_B],  # its own newline where the match puts one
        ["web", "db"],  # LXC: their names
        [],
    ],
)
def test_container_identities_at_once_as_one_by_one(ids: list[str | None]) -> None:
    rows = [
        Row(f"c{i}", {}, {"runtime": "docker"} if cid is None else {"id": cid})
        for i, cid in enumerate(ids)
    ]
    one_by_one = [identity("ctr", r) for r in rows]
    assert identities("ctr", rows) == one_by_one
    vm_rows = [Row(f"v{i}", {}, {"uuid": str(cid)}) for i, cid in enumerate(ids)]
    assert identities("vm", vm_rows) == [identity("vm", r) for r in vm_rows]


def test_many_containers_recorded_as_one_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fleet of containers over runs (renamed, moved to another host, recreated, a name
    not UTF-8, one listed twice): the same rows as with each identity found on its own and
    every entity looked up by id() and place()."""
    rep = sample_report()

    def runs() -> list[dict[str, tuple[Row, ...]]]:
        out = []
        for n in range(3):
            web = tuple(
                ctr(f"c{i}", f"{i + 10 * (n == 2 and i == 3):064x}", i + n) for i in range(30)
            )
            web += (ctr(f"na\udcffme{n}", "f" * 64, 1.0), ctr("dup", "e" * 64, 2.0))
            kvm = (ctr("moved" if n else "c5", f"{5:064x}", 9.0),) if n else ()
            kvm += (ctr("dup", "e" * 64, 3.0), ctr("lxc", "lxc", 4.0, "lxc"))
            if n == 1:
                web = web[:5] + web[6:]  # c5 went to kvm01
            out.append({"web01": web, "kvm01": kvm})
        return out

    def dump(path: Path, slow: bool) -> list[str]:
        with monkeypatch.context() as m:
            if slow:
                m.setattr(write_mod, "identities", lambda s, rows: [identity(s, r) for r in rows])
                m.setattr(write_mod._Entities, "known", lambda *args: None)
            hist = open_history(str(path), writable=True)
            for i, rows in enumerate(runs()):
                record_run(hist, at(with_ctrs(rep, rows), minutes(5 * i)))
            lines = [
                ln
                for ln in hist.conn.iterdump()
                if "created_at" not in ln and 'INSERT INTO "columns"' not in ln
            ]
            hist.close()
        return lines

    fast, slow = dump(tmp_path / "fast.sqlite", False), dump(tmp_path / "slow.sqlite", True)
    assert fast == slow
    assert sum('INSERT INTO "raw_ctr"' in ln for ln in fast) > 90
