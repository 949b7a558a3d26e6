"""The HTML report printed on A4 portrait in a real headless Chromium: every table fits the
printable width, nothing is cut off or hidden, and "Save as PDF" gives the paper chosen
(A4 or US Letter: the page sets no size, so the print dialog keeps its paper choice).

The page's printable width is read from its own `@page` rule (A4 less its side margins, at
96 CSS px an inch: 210 mm - 2 x 10 mm = 718 px), and the page laid out at that width under
print media emulation. Before the print rules the fleet table was 1,040 px wide there (the
whole page scrolled sideways, its last four columns off the paper) and the PDF was US Letter
(612 x 792 pt). The browser and its pages are test_html_browser's (the DevTools protocol).
"""

from __future__ import annotations

import base64
import dataclasses
import random
import re
from pathlib import Path

import pytest
import reportfactory as rf
from test_html_browser import Page, WebSocket, browser, new_page, problems
from test_html_layout import _SPILLS, LONG

from fleetmon.model import Row, Severity, Status, Trend
from fleetmon.render.html import render_html

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

__all__ = ["browser"]  # the fixture, imported to be used here

#: A4 in millimetres (ISO 216: 210 x 297 mm).
A4_MM = (210.0, 297.0)
#: The page's @page rule, as the CSS object model gives it back.
_PAGE_RULE = """(() => {
  for (const sheet of document.styleSheets)
    for (const r of sheet.cssRules)
      if (r instanceof CSSPageRule)
        return [r.style.size, r.style.marginLeft, r.style.marginRight];
  return null;
})()"""


def _fleet() -> str:
    """A fleet as a change meeting prints it: hypervisors with VMs, a container host, hosts
    not collected, findings, sparklines, and a host, VM and container named without a space
    (the sample and hostile fleets of reportfactory, and test_html_layout's long names)."""
    rng = random.Random(11)
    name = "hv-" + "0123456789" * 9 + ".example.internal"
    found = rf.finding("ctr-cpu", Severity.CRITICAL, "ctr", LONG, "ctr.cpu_pct", 99.0, "> 90")
    long_host = rf.host(name, rng, vms=[rf.vm(LONG, rng)], findings=[found], groups=("g" * 70,))
    ctr = Row(LONG, {"ctr.cpu_pct": 99.0, "ctr.mem_bytes": 2**31, "ctr.pids": 40})
    long_host = dataclasses.replace(long_host, rows={**long_host.rows, "ctr": (ctr,)})
    gone = rf.failed("x" * 120, Status.UNREACHABLE, "connect: " + "E" * 200)
    base = rf.hostile_report()
    day = tuple(float(10 + (i * 7) % 40) for i in range(24))
    trends = (
        Trend("host", "kvm01", "cpu.busy_pct", "24h", day),
        Trend("nic", "enp6s0", "nic.rx_bytes_per_s", "7d", tuple(x * 1e5 for x in day), "rx+tx"),
        Trend("vm", "vm1", "vm.cpu_pct", "24h", day),
    )
    rep = rf.report((*base.hosts, long_host, gone), findings=base.findings, run=base.run)
    return render_html(dataclasses.replace(rep, trends={"kvm01": trends}))


def _px(length: str) -> float:
    """A CSS length in mm as CSS px (96 an inch)."""
    m = re.fullmatch(r"([\d.]+)mm", length)
    assert m, length
    return float(m[1]) / 25.4 * 96


@pytest.fixture(scope="module")
def fleet_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("print") / "report.html"
    path.write_text(_fleet(), encoding="utf-8")
    return path


def _printed(ws: WebSocket, path: Path) -> tuple[Page, int]:
    """The page laid out at its @page rule's printable width under print media."""
    page = new_page(ws)
    page.open(path.as_uri())
    rule = page.js(_PAGE_RULE)
    assert rule is not None, "no @page rule"
    size, left, right = rule
    assert size == ""  # the printer's paper; A4 (210 mm) is narrower than Letter (216)
    width = round(_px(f"{A4_MM[0]}mm") - _px(left) - _px(right))
    assert 680 <= width <= 730  # margins a printer can print to, not the whole sheet
    page.call("Emulation.setDeviceMetricsOverride", width=width, height=1100,
              deviceScaleFactor=1, mobile=False)  # fmt: skip
    page.call("Emulation.setScrollbarsHidden", hidden=True)  # paper has none
    page.call("Emulation.setEmulatedMedia", media="print")
    return page, width


def test_every_table_fits_the_width_of_an_a4_page(browser: WebSocket, fleet_path: Path) -> None:
    """On A4 portrait no table is wider than the printable width and no text runs past it:
    the fleet table (11 columns) wraps its headings and names, and what screen shortens
    with an ellipsis (a busiest device's name) is printed whole; the arrows of the columns
    not sorted by, a control, are not printed."""
    page, width = _printed(browser, fleet_path)
    assert page.js("document.documentElement.clientWidth") == width
    tables = page.js(
        "Array.from(document.querySelectorAll('table'),"
        " t => [t.id || t.className, t.getBoundingClientRect().right])"
    )
    assert len(tables) > 20  # the fleet, findings, hypervisors, every host's tables
    assert [t for t in tables if t[1] > width + 0.5] == []
    assert page.js("document.documentElement.scrollWidth") <= width
    assert page.js(_SPILLS) == []
    cut = page.js(
        "Array.from(document.querySelectorAll('small'), s => s.scrollWidth - s.clientWidth)"
    )
    assert len(cut) > 10
    assert max(cut) <= 0  # nothing in small type clipped
    arrow = "getComputedStyle(document.querySelector('#hosts thead th'), '::after').content"
    assert page.js(arrow) == "none"
    # The arrow of the column the rows are sorted by says their order: it is printed.
    page.js("document.querySelector('#hosts thead th').setAttribute('aria-sort', 'ascending')")
    assert page.js(arrow) == '" ▲"'
    # Data stays: every column of the fleet table is printed, none hidden.
    shown = page.js(
        "Array.from(document.querySelectorAll('#hosts thead th'),"
        " c => getComputedStyle(c).display !== 'none' && c.getBoundingClientRect().width > 20)"
    )
    assert shown == [True] * 11
    # A host's tables (and the fleet's top lists), which repeat no heading row, are not split
    # across pages when they fit on one; the fleet and findings tables repeat their <thead>.
    whole = page.js(
        "Array.from(document.querySelectorAll('section.host table.d, #top table.d'),"
        " t => getComputedStyle(t).breakInside)"
    )
    assert len(whole) > 10
    assert set(whole) == {"avoid"}
    heads = "Array.from(document.querySelectorAll('#hosts thead, #findings thead'),"
    assert set(page.js(heads + " h => getComputedStyle(h).display)")) == {"table-header-group"}
    assert problems(page, fleet_path.as_uri()) == []


def test_screen_keeps_its_layout(browser: WebSocket, fleet_path: Path) -> None:
    """The print rules change nothing on screen: small type keeps its ellipsis, the fleet
    table its one-line cells and its sort arrows."""
    page = new_page(browser)
    page.open(fleet_path.as_uri())
    small = "getComputedStyle(document.querySelector('#hosts small'))"
    assert page.js(f"{small}.textOverflow") == "ellipsis"
    cell = "getComputedStyle(document.querySelector('#hosts tbody td:nth-child(4)')).whiteSpace"
    assert page.js(cell) == "nowrap"
    arrow = "getComputedStyle(document.querySelector('#hosts thead th'), '::after').content"
    assert page.js(arrow) == '" ↕"'


@pytest.mark.parametrize("paper_in", [(210 / 25.4, 297 / 25.4), (8.5, 11.0)], ids=["a4", "letter"])
def test_saved_as_pdf_on_the_paper_chosen(
    browser: WebSocket, fleet_path: Path, paper_in: tuple[float, float]
) -> None:
    """Printed to PDF as Chromium's print dialog does (the page's own @page rule honoured),
    every page is the paper chosen, A4 (595 x 842 pt) or US Letter (612 x 792 pt): the page
    takes no paper choice away from the operator."""
    page = new_page(browser)
    page.open(fleet_path.as_uri())
    pdf = base64.b64decode(
        page.call(
            "Page.printToPDF",
            printBackground=True,
            preferCSSPageSize=True,
            paperWidth=paper_in[0],
            paperHeight=paper_in[1],
        )["data"]
    )
    boxes = re.findall(rb"/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]", pdf)
    pages = len(re.findall(rb"/Type /Page\b", pdf))
    assert pages >= 3
    assert len(boxes) == pages
    for w, h in boxes:
        assert float(w) == pytest.approx(paper_in[0] * 72, abs=1)
        assert float(h) == pytest.approx(paper_in[1] * 72, abs=1)
    assert problems(page, fleet_path.as_uri()) == []
