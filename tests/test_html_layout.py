"""The HTML report's layout in a real headless Chromium: nothing a host names, however long,
and no table pushes the page wider than the window, on a laptop or a phone.

The browser and its pages are test_html_browser's (the DevTools protocol client).
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest
import reportfactory as rf
from test_html_browser import Page, WebSocket, browser, new_page, problems, report_url

from fleetmon.model import Severity, Status, Trend
from fleetmon.render.html import render_html

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

__all__ = ["browser", "report_url"]  # the fixtures, imported to be used here

#: A name with no space to wrap at, as Kubernetes gives its containers.
LONG = "k8s_POD_coredns-5d78c9869d-x7k2q_kube-system_3f1c9a4e-9b1d-4c0e-8e55-" + "a" * 60

#: Everything outside a box that scrolls itself, wider than the window: elements and text.
_SPILLS = """(() => {
  const W = document.documentElement.clientWidth, out = [];
  const boxed = (el) => {
    for (let a = el; a && a !== document.body; a = a.parentElement)
      if (getComputedStyle(a).overflowX !== "visible") return true;
    return false;
  };
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n; (n = walk.nextNode()); ) {
    const r = document.createRange();
    r.selectNodeContents(n);
    if (r.getBoundingClientRect().right > W + 1 && !boxed(n.parentElement))
      out.push(n.parentElement.tagName + ": " + n.textContent.slice(0, 40));
  }
  return out;
})()"""


def _open(ws: WebSocket, path: Path, width: int, height: int = 800) -> Page:
    page = new_page(ws)
    page.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
              deviceScaleFactor=1, mobile=width < 700)  # fmt: skip
    page.open(path.as_uri())
    return page


def _long_names() -> str:
    """The sample fleet plus a host, a group and a container finding named without a space."""
    rng = random.Random(5)
    name = "hv-" + "0123456789" * 9 + ".example.internal"
    found = rf.finding("ctr-cpu", Severity.CRITICAL, "ctr", LONG, "ctr.cpu_pct", 99.0, "> 90")
    long_host = rf.host(name, rng, vms=[rf.vm(LONG, rng)], findings=[found], groups=("g" * 70,))
    gone = rf.failed("x" * 120, Status.UNREACHABLE, "connect: " + "E" * 200)
    base = rf.sample_report()
    hosts = (*base.hosts, long_host, gone)
    return render_html(rf.report(hosts, findings=base.findings, run=base.run))


@pytest.mark.parametrize("width", [1280, 390])
def test_long_names_wrap_inside_the_window(
    browser: WebSocket, tmp_path_factory: pytest.TempPathFactory, width: int
) -> None:
    """A name without a space (a host's FQDN, a Kubernetes container) wraps in its cell: the
    findings table keeps its message, value and rule on screen (at 1280 px the long host and
    subject made it 2,300 px wide), and the page never scrolls sideways."""
    path = tmp_path_factory.mktemp("long") / "report.html"
    path.write_text(_long_names(), encoding="utf-8")
    page = _open(browser, path, width)
    client = page.js("document.documentElement.clientWidth")
    assert width - 20 <= client <= width  # less a scroll bar at 1280
    right = "Math.max(...Array.from(document.querySelectorAll('#findings td'),"
    right += " c => c.getBoundingClientRect().right))"
    assert page.js(right) <= client
    assert page.js(_SPILLS) == []
    assert page.js("document.documentElement.scrollWidth") <= client
    assert problems(page, path.as_uri()) == []


def test_sparklines_scroll_in_their_own_box_on_a_phone(
    browser: WebSocket, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A host's 'over time' table (a line and its range per window, kept on one line) is
    wider than a phone: it scrolls in its own box, as the row tables do, and the page does
    not scroll sideways (it did at 390 px for every host with a history)."""
    day = tuple(float(10 + (i * 7) % 40) for i in range(24))
    rates = tuple(x * 1e5 for x in day)  # 1.0-4.7 MiB/s
    trends = tuple(
        t
        for window in ("24h", "7d")
        for t in (
            Trend("host", "kvm01", "cpu.busy_pct", window, day),
            Trend("nic", "enp6s0", "nic.rx_bytes_per_s", window, rates, "rx+tx"),
            Trend("vm", "web-1", "vm.cpu_pct", window, day),
        )
    )
    path = tmp_path_factory.mktemp("trends") / "report.html"
    rep = dataclasses.replace(rf.sample_report(), trends={"kvm01": trends})
    path.write_text(render_html(rep), encoding="utf-8")
    page = _open(browser, path, 390)
    assert page.js("document.querySelectorAll('table.tr svg').length") >= 5  # drawn
    assert page.js(_SPILLS) == []
    assert page.js("document.documentElement.scrollWidth") <= 390
    box = page.js("document.querySelector('table.tr').getBoundingClientRect().right")
    assert box <= 390
    assert problems(page, path.as_uri()) == []


@pytest.mark.parametrize("width", [800, 1024, 1280])
def test_tables_fit_a_laptop_window(browser: WebSocket, report_url: str, width: int) -> None:
    """Between a phone and a wide screen every table fits the window or scrolls in its own
    box: at 1024 px the fleet table (11 columns) and the VM tables ran 80-250 px past the
    window (a VM table at 1280 px), and the whole page scrolled sideways, header and
    findings with it. Headings
    wrap between their words; a name column keeps a few characters a line."""
    page = new_page(browser)
    page.call("Emulation.setDeviceMetricsOverride", width=width, height=800,
              deviceScaleFactor=1, mobile=False)  # fmt: skip
    page.open(report_url)
    client = page.js("document.documentElement.clientWidth")
    spill = page.js(
        "Array.from(document.querySelectorAll('table.d'), t => t.getBoundingClientRect().right)"
        f".filter(r => r > {client}).length"
    )
    assert spill == 0
    assert page.js("document.documentElement.scrollWidth") <= client
    assert page.js(_SPILLS) == []
    # A host name is not broken a character a line to make room.
    name = page.js("document.querySelector('#hosts tbody th').getBoundingClientRect().width")
    assert name >= 60
    assert problems(page, report_url) == []


def test_fleet_heading_stays_on_screen_on_a_wide_screen(
    browser: WebSocket, report_url: str
) -> None:
    """Above 1200 px the fleet table's heading row sticks under the top of the window."""
    page = new_page(browser)
    page.call("Emulation.setDeviceMetricsOverride", width=1400, height=800,
              deviceScaleFactor=1, mobile=False)  # fmt: skip
    page.open(report_url)
    assert page.js("getComputedStyle(document.querySelector('#hosts thead th')).position") == (
        "sticky"
    )
    assert page.js("getComputedStyle(document.querySelector('#hosts')).display") == "table"


def test_nav_bar_stays_at_the_top_and_clears_what_a_link_opens(
    browser: WebSocket, report_url: str
) -> None:
    """The jump links stay at the top of the window as the page scrolls (the bar sat inside
    the header and scrolled away with it), and a link's target lands below the bar."""
    page = new_page(browser)
    page.call("Emulation.setDeviceMetricsOverride", width=1400, height=800,
              deviceScaleFactor=1, mobile=False)  # fmt: skip
    page.open(report_url)
    page.js("window.scrollTo(0, document.getElementById('hostlist').offsetTop)")
    assert page.js("window.scrollY") > 1000
    bar = page.js("(r => [r.top, r.bottom])(document.querySelector('nav').getBoundingClientRect())")
    assert bar[0] == 0
    page.js("location.hash = '#host-kvm01'")
    top = page.js("document.getElementById('host-kvm01').getBoundingClientRect().top")
    assert bar[1] <= top < bar[1] + 30


def test_a_bucket_alone_between_gaps_is_drawn_as_a_dot(
    browser: WebSocket, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A host collected now and then (every other hour) has buckets with gaps on both
    sides: each is a dot, where the line showed nothing at all and only its range."""
    sparse = tuple(float(20 + i) if i % 3 == 0 else None for i in range(24))  # 8 lone buckets
    pair = (None, 30.0, 31.0, *((None,) * 21))  # one line of two points
    trends = (
        Trend("host", "kvm01", "cpu.busy_pct", "24h", sparse),
        Trend("host", "kvm01", "mem.used_pct", "24h", pair),
    )
    path = tmp_path_factory.mktemp("dots") / "report.html"
    rep = dataclasses.replace(rf.sample_report(), trends={"kvm01": trends})
    path.write_text(render_html(rep), encoding="utf-8")
    page = new_page(browser)
    page.open(path.as_uri())
    drawn = page.js(
        "Array.from(document.querySelectorAll('#host-kvm01 table.tr td'), c =>"
        " [c.querySelectorAll('circle').length, c.querySelectorAll('polyline').length])"
    )
    assert drawn == [[8, 0], [0, 0], [0, 1], [0, 0]]  # 24 h and 7 d; the pair stays a line
    dots = page.js(
        "Array.from(document.querySelectorAll('#host-kvm01 table.tr circle'),"
        " c => [Number(c.getAttribute('cx')), Number(c.getAttribute('cy')),"
        " getComputedStyle(c).fill])"
    )
    assert [round(x) for x, _, _ in dots] == [round(1 + i * 58 / 23) for i in range(0, 24, 3)]
    assert all(1 <= y <= 13 and fill != "none" for _, y, fill in dots)
    assert problems(page, path.as_uri()) == []


def test_cpu_bars_line_up_in_the_fleet_table(browser: WebSocket, report_url: str) -> None:
    """Every host's CPU bar starts at the same x, whatever the width of the figure after it
    (a bar before 9.7% sat one digit to the right of one before 43.3%)."""
    page = new_page(browser)
    page.call("Emulation.setDeviceMetricsOverride", width=1400, height=800,
              deviceScaleFactor=1, mobile=False)  # fmt: skip
    page.open(report_url)
    edges = page.js(
        "Array.from(document.querySelectorAll('#hosts svg.cpu'), s => {"
        " const r = s.getBoundingClientRect(), c = s.parentElement.getBoundingClientRect();"
        " return [r.left, r.top - c.top, c.bottom - r.bottom]; })"
    )
    assert len(edges) >= 5
    assert len({round(left) for left, _, _ in edges}) == 1
    assert all(top >= 0 and below >= 0 for _, top, below in edges)  # inside its cell
    figures = page.js(
        "Array.from(document.querySelectorAll('#hosts svg.cpu'),"
        " s => s.parentElement.lastChild.textContent.length)"
    )
    assert len(set(figures)) > 1  # figures of different widths: the case that moved them


def test_tables_are_not_scroll_boxes_on_paper(browser: WebSocket, report_url: str) -> None:
    """On an A4 page (some 720 CSS px) a table does not become a box that scrolls: on paper
    that clips its right-hand columns."""
    page = new_page(browser)
    page.call("Emulation.setDeviceMetricsOverride", width=718, height=1000,
              deviceScaleFactor=1, mobile=False)  # fmt: skip
    page.open(report_url)
    page.call("Emulation.setEmulatedMedia", media="print")
    styles = page.js(
        "Array.from(document.querySelectorAll('#hosts, section.host table.d'),"
        " t => getComputedStyle(t).display + ' ' + getComputedStyle(t).overflowX)"
    )
    assert len(styles) > 5
    assert set(styles) == {"table visible"}


def _frames(page: Page) -> None:
    """Two rendering updates: the browser has decided which sections are in sight."""
    page.call(
        "Runtime.evaluate",
        expression="new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))",
        awaitPromise=True,
    )


def test_host_sections_out_of_sight_are_laid_out_when_scrolled_to(
    browser: WebSocket, report_url: str
) -> None:
    """A host's section is laid out once it comes near the window, on paper always: at 500
    hosts laying out every section made the page take 9-14 s to finish loading on 2 busy
    cores, and each sort click relaid them all. A link still lands on its section."""
    page = new_page(browser)
    page.call("Emulation.setDeviceMetricsOverride", width=1400, height=800,
              deviceScaleFactor=1, mobile=False)  # fmt: skip
    page.open(report_url)
    _frames(page)
    shown = (
        "Array.from(document.querySelectorAll('section.host'), s => s.id)"
        ".filter(id => document.querySelector(`#${CSS.escape(id)} h3`)"
        ".checkVisibility({contentVisibilityAuto: true}))"
    )
    assert page.js("document.querySelectorAll('section.host').length") == 9
    assert page.js(shown) == []  # the findings and the fleet table fill the window
    page.js("location.hash = '#host-kvm02'")
    _frames(page)
    assert "host-kvm02" in page.js(shown)
    bar = page.js("document.querySelector('nav').getBoundingClientRect().bottom")
    top = page.js("document.getElementById('host-kvm02').getBoundingClientRect().top")
    assert bar <= top < bar + 30
    page.call("Emulation.setEmulatedMedia", media="print")
    _frames(page)
    assert len(page.js(shown)) == 9
    assert problems(page, report_url) == []


#: The first host section below the nav bar, and where its top is.
_READ = """(() => {
  const top = document.querySelector("nav").getBoundingClientRect().bottom;
  for (const s of document.querySelectorAll("section.host")) {
    const r = s.getBoundingClientRect();
    if (r.bottom > top) return [s.id, Math.round(r.top)];
  }
})()"""


def test_a_reload_keeps_the_host_read_in_view(
    browser: WebSocket, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """`serve` reloads its page every tick: the host being read stays where it was. The
    sections above it are not laid out, their heights guessed, so the browser's restored
    scroll offset landed in another host's section; above the hosts the offset is kept."""
    path = tmp_path_factory.mktemp("reload") / "report.html"
    path.write_text(render_html(rf.fleet_report(60, 5)), encoding="utf-8")
    page = new_page(browser)
    page.call("Emulation.setDeviceMetricsOverride", width=1400, height=800,
              deviceScaleFactor=1, mobile=False)  # fmt: skip
    page.open(path.as_uri())
    ids = page.js("Array.from(document.querySelectorAll('section.host'), s => s.id)")
    assert len(ids) >= 40
    page.js(f"document.getElementById('{ids[30]}').scrollIntoView(); window.scrollBy(0, 300)")
    _frames(page)
    read = page.js(_READ)
    assert read[0] == ids[30]
    for _ in range(2):  # twice: the second reload keeps what the first restored
        page.call("Page.reload")
        page.wait_for("Page.loadEventFired")
        for _ in range(4):
            _frames(page)
        assert page.js(_READ) == read
    page.js("document.getElementById('fleet').scrollIntoView(); window.scrollBy(0, 50)")
    y = page.js("window.scrollY")
    page.call("Page.reload")
    page.wait_for("Page.loadEventFired")
    _frames(page)
    assert page.js("window.scrollY") == y
    assert problems(page, path.as_uri()) == []
