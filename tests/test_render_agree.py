"""The text and HTML reports of one --save-raw folder agree: the same busiest row of each kind
for every host (render.pick, one definition), and the text fits the width it is given."""

from __future__ import annotations

import dataclasses
import html
import re

import pytest
from test_report_golden import _in_process_report

from fleetmon.model import MetricValue, catalog
from fleetmon.render.html import render_html
from fleetmon.render.pick import figure
from fleetmon.render.text import TextOptions, render_text


def _text_busiest(text: str, heading: str) -> dict[str, str]:
    """Host -> the name in the hosts table's `heading` column ("sdr 93%" -> "sdr")."""
    lines = text.splitlines()
    start = lines.index("Hosts") + 1
    head = lines[start]
    rule = lines[start + 1]
    # Column spans from the dashes under the headings.
    spans = [m.span() for m in re.finditer(r"-+", rule)]
    col = next(i for i, (a, _b) in enumerate(spans) if head[a:].startswith(heading))
    out = {}
    for line in lines[start + 2 :]:
        if not line:
            break
        cell = line[spans[col][0] : spans[col][1]].strip()
        out[line[spans[0][0] : spans[0][1]].strip()] = cell.split(" ")[0]
    return out


def _html_busiest(page: str, index: int) -> dict[str, str]:
    """Host -> the row named in small type in the fleet table's `index`-th busiest column."""
    out = {}
    table = page[
        page.index("<table id=hosts") : page.index("</table>", page.index("<table id=hosts"))
    ]
    for row in table.split("\n<tr class=")[1:]:
        name = html.unescape(re.sub(r"<[^>]+>", "", row.split("<th>")[1].split("<td")[0]))
        smalls = re.findall(r"<small>(.*?)</small>", row)
        if smalls:
            out[name] = html.unescape(smalls[index])
    return out


@pytest.mark.parametrize("scope", [s for s in catalog.ROW_SCOPES if s.busiest])
def test_text_and_html_name_the_same_busiest_row(scope: catalog.RowScope) -> None:
    report = _in_process_report()
    text = _text_busiest(render_text(report), str(scope.busiest).upper())
    index = [s.name for s in catalog.ROW_SCOPES if s.busiest].index(scope.name)
    page = _html_busiest(render_html(report), index)
    assert text == page
    assert len(text) == 6  # every collected host of the folder
    if scope.name == "nic":
        # kvm0004's busiest port is a VM's tap (vnet7): an echo of the VM table, passed
        # over by both for the host's own interface.
        assert text["kvm0004"] == "wlp5s0"


@pytest.mark.parametrize("width", [60, 80, 100])
def test_text_fits_the_width(width: int) -> None:
    report = _in_process_report()
    text = render_text(report, TextOptions(width=width))
    assert max(len(line) for line in text.splitlines()) <= width
    # Nothing is lost but columns: every section and every host is still there.
    for title in ("Hosts", "Hypervisors", "Busiest disks", "Not collected", "Notes"):
        assert title in text.splitlines()
    for host in ("xen0001", "kvm0004", "kvm0005", "linux0006"):
        assert host in text
    wide = render_text(report)
    assert max(len(line) for line in wide.splitlines()) > 100


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (12.5, 12.5),
        (-0.0, -0.0),
        (3, 3.0),
        (0, 0.0),
        (True, None),
        (False, None),
        (None, None),
        ("running", None),
        (float("nan"), None),
        (float("inf"), None),
        (-float("inf"), None),
    ],
)
def test_a_figure_is_a_finite_number_and_nothing_else(
    value: MetricValue, expected: float | None
) -> None:
    got = figure(value)
    assert got == expected
    assert got is None or type(got) is float


def test_a_hypervisor_whose_tools_failed_shows_dashes_not_none() -> None:
    # `fleetmon run` on a host with virsh but no libvirtd printed "None/None" in the
    # Hypervisors table's VMS RUN/ALL column (the Hosts table and the HTML had "-").
    report = _in_process_report()
    hv = next(h for h in report.hosts if "hv.vms_total" in h.metrics)
    failed = dataclasses.replace(
        hv, metrics={**hv.metrics, "hv.vms_running": None, "hv.vms_total": None}
    )
    hosts = tuple(failed if h is hv else h for h in report.hosts)
    text = render_text(dataclasses.replace(report, hosts=hosts), TextOptions(width=200))
    section = text[text.index("\nHypervisors\n") :].split("\n\n")[0]
    line = next(x for x in section.splitlines() if x.startswith(hv.name + " "))
    assert "None" not in line
    assert line.split()[2] == "-"  # HOST, HEALTH, then VMS RUN/ALL


def test_a_finding_value_cell_stays_on_its_side_of_the_threshold() -> None:
    # A site's `host-mem-thrashing` at `> 0.01` on 7 simulated hosts (PSI full 0.0122 ..
    # 0.0323): the text VALUE column said 0.01 and 0.01-0.03 and the HTML 0.0% beside
    # `> 0.01`, the message `= 0.01 (warning: > 0.01)`.
    from fleetmon.model import Finding, Severity

    report = _in_process_report()
    a, b = report.hosts[0], report.hosts[1]

    def thrash(h: object, value: float) -> Finding:
        name = h.name  # type: ignore[attr-defined]
        m = f"psi.memory_full_pct = {value} (warning: > 0.01)"
        return Finding(
            "t", Severity.WARNING, "host", name, "psi.memory_full_pct", value, "> 0.01", m
        )

    hosts = (
        dataclasses.replace(a, findings=(thrash(a, 0.0122),)),
        dataclasses.replace(b, findings=(thrash(b, 0.0323),)),
        *report.hosts[2:],
    )
    one = dataclasses.replace(
        report, hosts=hosts[:1] + tuple(dataclasses.replace(h, findings=()) for h in hosts[1:])
    )
    line = next(x for x in render_text(one, TextOptions(width=200)).splitlines() if " t " in x)
    assert line.split()[3:5] == ["0.012", ">"], line
    both = dataclasses.replace(report, hosts=hosts)
    line = next(x for x in render_text(both, TextOptions(width=200)).splitlines() if " t " in x)
    assert "0.012-0.032" in line.split(), line  # both ends with the same decimals
    page = render_html(both)
    cells = re.findall(r"<td data-l=value>([^<]*)<td data-l=threshold>&gt; 0.01<", page)
    assert sorted(cells) == ["0.012%", "0.03%"]  # 0.03 is over 0.01 already
