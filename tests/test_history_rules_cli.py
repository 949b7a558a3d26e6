"""Rules over time from the command line: `for:` counted over real recorded runs, states in
the JSON report, and the input error of `for:` without a history."""

from __future__ import annotations

import json
import sqlite3
import textwrap
from pathlib import Path

import pytest
from clirun import fleetmon
from test_history_cli import LOCAL, _with_start

RULES = textwrap.dedent(
    """\
    - hosts: all
      rules:
        - name: always-3-runs
          expr: "cpu.count > 0"
          severity: warning
          for: 3 runs
          message: "{{ host }} has CPUs"
        - name: busy-avg
          metric: cpu.busy_pct
          apply: avg_over("1d")
          warning: "> 1000"
    """
)


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("raw") / "run"
    res = fleetmon("run", LOCAL, "--interval", "0.2", "-q", "--save-raw", out, "--format", "nagios")
    assert res.returncode in (0, 1, 2, 3), res.stderr
    return out


def test_for_counts_runs_recorded_in_the_history(raw_dir: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    hist = tmp_path / "h.sqlite"
    seen = []
    for minute in ("00", "05", "10", "15"):
        start = f"2026-06-01T00:{minute}:00Z"
        res = fleetmon("report", _with_start(raw_dir, tmp_path, start),
                       "--no-default-rules", "-r", rules,
                       "--history", hist, "--format", "json")  # fmt: skip
        assert res.returncode in (0, 1, 2, 3), res.stderr
        doc = json.loads(res.stdout)
        (f,) = [f for f in doc["hosts"][0]["findings"] if f["rule"] == "always-3-runs"]
        seen.append((f["severity"], f["state"], f["since"], f["new"], doc["previous_run_at"]))
    first = "2026-06-01T00:00:00Z"
    assert seen == [
        # OK findings are in the JSON too, with their state; the first run has no last run
        ("ok", "pending", first, False, None),
        ("ok", "pending", first, False, first),
        ("warning", "firing", first, True, "2026-06-01T00:05:00Z"),  # new since that run
        ("warning", "firing", first, False, "2026-06-01T00:10:00Z"),
    ]
    conn = sqlite3.connect(hist)
    assert conn.execute("SELECT rule, state, runs FROM rule_states").fetchall() == [
        ("always-3-runs", "firing", 4)
    ]
    conn.close()


def test_a_replay_reports_its_run_as_it_was_and_leaves_the_states_alone(
    raw_dir: Path, tmp_path: Path
) -> None:
    """`report DIR --history` of a recorded run replaces its record: each replay counted
    one more run of `for:` (pending 1 of 3, 2 of 3, then firing) and its findings lost
    `new`; a replay of an older run wrote its states over the later runs'."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    hist = tmp_path / "h.sqlite"

    folders = {
        m: _with_start(raw_dir, tmp_path, f"2026-06-01T00:{m}:00Z") for m in ("00", "05", "10")
    }

    def report(minute: str) -> tuple[str, str, bool]:
        res = fleetmon("report", folders[minute], "--no-default-rules", "-r", rules,
                       "--history", hist, "--format", "json")  # fmt: skip
        assert res.returncode in (0, 1, 2, 3), res.stderr
        (f,) = [f for f in json.loads(res.stdout)["hosts"][0]["findings"]
                if f["rule"] == "always-3-runs"]  # fmt: skip
        return f["state"], f["message"], f["new"]

    def states() -> list[tuple[str, int, int]]:
        conn = sqlite3.connect(hist)
        try:
            return conn.execute("SELECT state, runs, last_t FROM rule_states").fetchall()
        finally:
            conn.close()

    first = report("00")
    assert first[:2] == ("pending", "pending (1 of 3 runs): localhost has CPUs")
    saved = states()
    assert [report("00") for _ in range(2)] == [first, first]
    assert states() == saved
    for minute in ("05", "10"):
        report(minute)
    third = report("10")  # the newest run again: as it was
    assert third[0] == "firing"
    assert third[2] is True
    later = states()
    assert report("00") == first  # an older run: as it was, the later states kept
    assert states() == later


def test_the_text_report_lists_what_is_new_first(raw_dir: Path, tmp_path: Path) -> None:
    """`for: 2 runs`: pending at the history's first run (which has no last run to be new
    against: no section), firing from the second (new), still firing at the third (not)."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.replace("for: 3 runs", "for: 2 runs"))
    hist = tmp_path / "h.sqlite"
    out = []
    for start in ("2026-06-01T00:00:00Z", "2026-06-01T00:05:00Z", "2026-06-01T00:10:00Z"):
        res = fleetmon("report", _with_start(raw_dir, tmp_path, start),
                       "--no-default-rules", "-r", rules, "--history", hist)  # fmt: skip
        out.append(res.stdout.splitlines())
    assert not [line for line in out[0] if "since the last run" in line]
    lines = out[1]
    start = lines.index("New since the last run (2026-06-01T00:00:00Z)")
    assert lines[start + 3].split()[:4] == ["WARNING", "localhost", "localhost", "always-3-runs"]
    assert not [line for line in out[2] if line.startswith("New since")]  # still firing


def test_for_without_a_history_is_an_input_error(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    res = fleetmon(
        "run", LOCAL, "--interval", "0.1", "--no-default-rules", "-r", rules, "--history", "none"
    )
    assert res.returncode == 4
    # At the line of the key that needs it (`for:`, line 6), not the rule's first line.
    assert res.stderr == (
        f"fleetmon: error: {rules}:6: rule 'always-3-runs': for: 3 runs needs the history of "
        "earlier runs, and --history is none\n"
    )


def test_a_history_function_without_a_history_is_an_error_at_its_line(
    raw_dir: Path, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "- hosts: all\n  rules:\n    - name: fs\n      metric: fs.used_pct\n"
        "      warning: '< 3600'\n      apply: time_to(100, '24h')\n"
    )
    res = fleetmon("report", raw_dir, "--no-default-rules", "-r", rules, "--history", "none")
    assert (res.returncode, res.stdout) == (4, "")
    assert res.stderr == (
        f"fleetmon: error: {rules}:6: rule 'fs': apply: time_to() needs the history of earlier "
        "runs, and --history is none\n"
    )
