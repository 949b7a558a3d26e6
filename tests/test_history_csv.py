"""CSV out of the history (`history export`, `history show --format csv`) from a real file:
hostile names defused for spreadsheets (OWASP CSV injection) and, on a terminal, escaped
as the text report escapes them; numbers stay numbers."""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import random
from pathlib import Path

import pytest
from clirun import fleetmon, on_a_terminal
from reportfactory import host, report, vm
from test_history_write import at, minutes

from fleetmon.history import open_history, record_run
from fleetmon.render.history import csv_cell

FORMULA = "=cmd|' /C calc'!A0"
ESCAPES = "esc\x1b]0;pwned\x07"
NAMES = (FORMULA, "+1+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx", ESCAPES, "plain;x")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A history whose VMs have the names above, one with a negative figure."""
    path = tmp_path_factory.mktemp("csv") / "h.sqlite"
    rng = random.Random(9)
    rows = [vm(name, rng, cpu_pct=12.5) for name in NAMES]
    rows[0] = dataclasses.replace(rows[0], metrics={**rows[0].metrics, "vm.cpu_pct": -1.5})
    hist = open_history(str(path), writable=True)
    for i in range(2):
        record_run(hist, at(report([host("kvm01", rng, vms=rows)]), minutes(5 * i)))
    hist.close()
    return path


def _names(rows: list[dict[str, str]]) -> set[str]:
    return {r["name"] for r in rows if r["scope"] == "vm"}


def test_a_text_cell_beginning_as_a_formula_gets_a_quote_numbers_stay(
    hostile: Path, tmp_path: Path
) -> None:
    out = tmp_path / "export.csv"
    res = fleetmon("history", "export", "--history", hostile, "--scope", "vm", "--since",
                   "3650d", "-o", out)  # fmt: skip
    assert res.returncode == 0, res.stderr
    text = out.read_bytes().decode()
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert _names(rows) == {
        "'" + FORMULA, "'+1+cmd", "'-2+3", "'@SUM(A1)", "'\tx", "'\rx", ESCAPES, "plain;x"
    }  # fmt: skip
    cpu = {r["name"]: r["value"] for r in rows if r["metric"] == "vm.cpu_pct"}
    assert cpu["'" + FORMULA] == "-1.5"  # a number, negative: as it is
    assert cpu["plain;x"] == "12.5"
    assert '"plain;x"' in text  # a separator of some locales: quoted
    # Written to a file (not a terminal), names are kept as the hosts gave them.
    assert '"esc\x1b]0;pwned\x07"' in text


def test_history_show_csv_defuses_the_subject_column(hostile: Path) -> None:
    res = fleetmon("history", "show", "kvm01", "vm.cpu_pct", "--history", hostile,
                   "--since", "3650d", "--format", "csv")  # fmt: skip
    assert res.returncode == 0, res.stderr
    rows = list(csv.reader(io.StringIO(res.stdout)))
    assert rows[0] == ["time", "subject", "vm.cpu_pct"]
    by_subject = {r[1]: r[2] for r in rows[1:]}
    assert by_subject["'" + FORMULA] == "-1.5"
    assert by_subject["'-2+3"] == "12.5"


def _on_a_terminal(*args: str | os.PathLike[str]) -> str:
    """What `python -m fleetmon ARGS` writes to a terminal (a pty) as its standard output."""
    code, out, err = on_a_terminal(*args)
    assert code == 0, err
    return out


def test_csv_to_a_terminal_escapes_control_characters(hostile: Path) -> None:
    shown = _on_a_terminal("history", "export", "--history", hostile, "--scope", "vm",
                           "--since", "3650d")  # fmt: skip
    assert "\x1b" not in shown
    assert "\x07" not in shown
    assert '"esc\\x1b]0;pwned\\x07",' in shown  # as the text report shows it
    assert "'\\tx," in shown
    assert "'\\rx," in shown
    assert "'=cmd|' /C calc'!A0," in shown
    shown = _on_a_terminal("history", "show", "kvm01", "vm.cpu_pct", "--history", hostile,
                           "--since", "3650d", "--format", "csv")  # fmt: skip
    assert "\x1b" not in shown
    assert '"esc\\x1b]0;pwned\\x07",' in shown


@pytest.mark.parametrize(
    ("cell", "text"),
    [
        (-1.5, "-1.5"),
        (-7, "-7"),
        (0.1, "0.1"),
        (None, ""),
        ("-7", "'-7"),  # a text that looks like a number: a name, not a figure
        ("=1+1", "'=1+1"),
        ("a,b", '"a,b"'),
        ('say "hi"', '"say ""hi"""'),
        ("web-1", "web-1"),
        ("running", "running"),
    ],
)
def test_csv_cell(cell: object, text: str) -> None:
    assert csv_cell(cell) == text
