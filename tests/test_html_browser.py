"""The HTML report opened in a real headless Chromium, driven over the DevTools protocol.

The page must load without console errors or network requests, show the hosts and findings,
reorder the fleet table on a real mouse click, and work with JavaScript off. Screenshots and
a PDF land in tests/artifacts/ for a person to look at.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import reportfactory as rf

from fleetmon.render.html import render_html

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: Flags that keep the browser itself off the network, besides the page's own CSP.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--metrics-recording-only",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
    "--window-size=1400,1000",
)


class WebSocket:
    """The client side of RFC 6455, text frames only: enough for the DevTools protocol."""

    def __init__(self, url: str) -> None:
        m = re.fullmatch(r"ws://(127\.0\.0\.1):(\d+)(/.*)", url)
        assert m, url
        self.sock = socket.create_connection((m[1], int(m[2])), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET {m[3]} HTTP/1.1\r\nHost: {m[1]}:{m[2]}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            assert chunk, "websocket handshake: connection closed"
            head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head
        self.buf = head.split(b"\r\n\r\n", 1)[1]

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 20)
            assert chunk, "websocket: connection closed"
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, text: str) -> None:
        data = text.encode()
        n = len(data)
        if n < 126:
            head = struct.pack("!BB", 0x81, 0x80 | n)
        elif n < 1 << 16:
            head = struct.pack("!BBH", 0x81, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
        mask = os.urandom(4)  # client frames must be masked (RFC 6455 5.3)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(head + mask + body)

    def recv(self) -> str:
        message = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", self._read(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", self._read(8))
            payload = self._read(n)
            opcode = b0 & 0x0F
            if opcode == 8:
                raise ConnectionError("websocket closed by the browser")
            if opcode in (0, 1, 2):
                message += payload
                if b0 & 0x80:
                    return message.decode()

    def close(self) -> None:
        self.sock.close()


class Page:
    """One browser tab over a flattened CDP session, recording the events the test checks."""

    def __init__(self, ws: WebSocket, session: str) -> None:
        self.ws = ws
        self.session = session
        self.next_id = 100
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params, "sessionId": self.session}
        self.ws.send(json.dumps(msg))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.next_id:
                assert "error" not in reply, (method, reply["error"])
                return dict(reply.get("result", {}))
            if "method" in reply:
                self.events.append(reply)

    def wait_for(self, event: str, timeout_s: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        seen = len(self.events)
        while time.monotonic() < deadline:
            for e in self.events[seen:]:
                if e["method"] == event:
                    return e
            seen = len(self.events)
            self.events.append(json.loads(self.ws.recv()))
        raise TimeoutError(event)

    def js(self, expression: str) -> Any:
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in r, r["exceptionDetails"]
        return r["result"].get("value")

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")

    def click(self, selector: str) -> None:
        box = self.js(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.call(
                "Input.dispatchMouseEvent",
                type=kind, x=box[0], y=box[1], button="left", clickCount=1,
            )  # fmt: skip

    def screenshot(self, path: Path, full: bool = False) -> None:
        r = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=full)
        path.write_bytes(base64.b64decode(r["data"]))


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebSocket]:
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing (tests/setup/system-deps.sh installs it)")
        pytest.skip("chromium is missing: apt-get install chromium")
    profile = tmp_path_factory.mktemp("chromium-profile")
    log = profile.parent / "chromium.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        # With port 0 Chromium picks a port and writes it, and the browser target's path,
        # to DevToolsActivePort in the profile.
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and len(port_file.read_text().split()) == 2):
            assert proc.poll() is None, f"chromium exited: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, "chromium wrote no DevToolsActivePort in 30 s"
            time.sleep(0.05)
        port, path = port_file.read_text().split()
        ws = WebSocket(f"ws://127.0.0.1:{port}{path}")
        yield ws
        ws.close()
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def new_page(ws: WebSocket, *, js: bool = True, dark: bool = False) -> Page:
    """A fresh tab with the console, log, network and page domains recording."""
    ws.send(
        json.dumps({"id": 1, "method": "Target.createTarget", "params": {"url": "about:blank"}})
    )
    target = _reply(ws, 1)["targetId"]
    msg = {
        "id": 2,
        "method": "Target.attachToTarget",
        "params": {"targetId": target, "flatten": True},
    }
    ws.send(json.dumps(msg))
    page = Page(ws, _reply(ws, 2)["sessionId"])
    for domain in ("Page", "Runtime", "Log", "Network"):
        page.call(f"{domain}.enable")
    if not js:
        page.call("Emulation.setScriptExecutionDisabled", value=True)
    scheme = "dark" if dark else "light"
    features = [{"name": "prefers-color-scheme", "value": scheme}]
    page.call("Emulation.setEmulatedMedia", features=features)
    return page


def _reply(ws: WebSocket, id_: int) -> dict[str, Any]:
    while True:
        reply = json.loads(ws.recv())
        if reply.get("id") == id_:
            return dict(reply["result"])


@pytest.fixture(scope="module")
def report_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(render_html(rf.sample_report()), encoding="utf-8")
    return path.as_uri()


def problems(page: Page, url: str) -> list[str]:
    """Console errors, uncaught exceptions, log errors and any request but the page itself."""
    out = []
    for e in page.events:
        p = e.get("params", {})
        if e["method"] == "Runtime.consoleAPICalled" and p["type"] in ("error", "warning"):
            out.append(f"console.{p['type']}: {p['args']}")
        elif e["method"] == "Runtime.exceptionThrown":
            out.append(f"exception: {p['exceptionDetails']}")
        elif e["method"] == "Log.entryAdded" and p["entry"]["level"] in ("error", "warning"):
            out.append(f"log: {p['entry']['text']}")
        elif e["method"] == "Network.requestWillBeSent" and p["request"]["url"] != url:
            out.append(f"request: {p['request']['url']}")
    return out


def fleet_order(page: Page) -> list[str]:
    return list(
        page.js("Array.from(document.querySelectorAll('#hosts tbody th'), e => e.textContent)")
    )


def test_page_loads_clean_and_sorts_on_click(browser: WebSocket, report_url: str) -> None:
    page = new_page(browser)
    page.open(report_url)
    requests = [e for e in page.events if e["method"] == "Network.requestWillBeSent"]
    assert [e["params"]["request"]["url"] for e in requests] == [report_url]
    assert page.js("document.title") == "fleetmon report 2026-11-26T03:00:00Z"
    # Worst first without any click: kvm01 and the hostile host have critical findings.
    before = fleet_order(page)
    assert len(before) == 9
    assert before[:2] == [rf.HOSTILE_HOST, "kvm01"]
    assert page.js("document.querySelectorAll('#findings tbody tr').length") == 5
    # The hostile names are text, never elements: no <script> or <img> besides the page's own.
    assert page.js("document.scripts.length") == 1
    assert page.js("document.images.length") == 0
    assert page.js("window.alerted === undefined")
    assert page.js("document.getElementById('filter').hidden") is False

    page.click("#hosts thead th:nth-child(1)")  # host name: A to Z first
    by_name = fleet_order(page)
    assert by_name == sorted(before, key=str.lower)
    page.click("#hosts thead th:nth-child(3)")  # CPU busy: busiest first, failed hosts last
    busy = page.js(
        "Array.from(document.querySelectorAll('#hosts tbody tr'), "
        "r => r.cells[2].colSpan === 1 ? parseFloat(r.cells[2].lastChild.textContent) : null)"
    )
    known = [b for b in busy if b is not None]
    assert known == sorted(known, reverse=True)
    assert busy[len(known) :] == [None, None, None]
    assert fleet_order(page)[0] == rf.HOSTILE_HOST  # level 88: the busiest
    page.click("#hosts thead th:nth-child(3)")  # again: least busy first, failed still last
    busy = page.js(
        "Array.from(document.querySelectorAll('#hosts tbody tr'), "
        "r => r.cells[2].colSpan === 1 ? parseFloat(r.cells[2].lastChild.textContent) : null)"
    )
    assert busy == [*sorted(known), None, None, None]
    page.click("#hosts thead th:nth-child(2)")  # status: worst first, by the rows' verdicts
    verdicts = page.js("Array.from(document.querySelectorAll('#hosts tbody tr'), r => r.className)")
    order = page.js("document.querySelector('#hosts thead th:nth-child(2)').dataset.r").split()
    assert verdicts == sorted(verdicts, key=order.index)
    assert verdicts[0] == "critical"
    assert verdicts[-1] == "ok"

    page.js("document.getElementById('group').value = '3'; "
            "document.getElementById('group').dispatchEvent(new Event('change'))")  # fmt: skip
    shown = "#hosts tbody tr:not([hidden]) th"
    visible = page.js(f"Array.from(document.querySelectorAll('{shown}'), e => e.textContent)")
    assert sorted(visible) == ["kvm01", "kvm02", "web01"]  # group "prod"
    # Their sections alone stay: each goes with its row (the row's link names it).
    sections = page.js(
        "Array.from(document.querySelectorAll('section.host:not([hidden])'), s => s.id)"
    )
    assert sorted(sections) == ["host-kvm01", "host-kvm02", "host-web01"]
    assert page.js("document.getElementById('shown').textContent") == "3 of 9 hosts"
    page.js("document.getElementById('group').value = ''; "
            "document.getElementById('group').dispatchEvent(new Event('change'))")  # fmt: skip
    assert problems(page, report_url) == []
    ARTIFACTS.mkdir(exist_ok=True)
    page.call("Page.reload")
    page.wait_for("Page.loadEventFired")
    page.screenshot(ARTIFACTS / "html-report-light.png")
    page.screenshot(ARTIFACTS / "html-report-light-full.png", full=True)
    pdf = page.call("Page.printToPDF", printBackground=True, preferCSSPageSize=True)
    (ARTIFACTS / "html-report.pdf").write_bytes(base64.b64decode(pdf["data"]))
    assert problems(page, report_url) == []


def test_top_vms_marked_by_the_table_class(browser: WebSocket, report_url: str) -> None:
    """A host's 3 busiest VMs (its VM table's first rows) are bold with a bar, the rest not."""
    page = new_page(browser, js=False)
    page.open(report_url)
    marks = page.js(
        "Array.from(document.querySelectorAll('#host-kvm02 table.t3 tbody td:first-child'),"
        " c => [getComputedStyle(c).fontWeight, getComputedStyle(c).boxShadow !== 'none'])"
    )
    assert len(marks) == 12
    assert marks[:3] == [["600", True]] * 3
    assert marks[3:] == [["400", False]] * 9
    # The heading row (the first of the body the parser made) is styled as a heading.
    head = "getComputedStyle(document.querySelector('#host-kvm02 table.t3 th'))"
    assert page.js(f"{head}.boxShadow") == "none"
    assert page.js(f"{head}.position") == "sticky"
    assert page.js(f"{head}.fontSize") == "12px"


def _with_trends() -> str:
    """The sample report with kvm01's history: lines with a gap, a flat one, a window with
    no line, a VM's line."""
    from fleetmon.model import Trend

    day = tuple(float(10 + (i * 7) % 40) for i in range(24))
    gap = (*day[:10], None, None, *day[12:])
    trends = (
        Trend("host", "kvm01", "cpu.busy_pct", "24h", day),
        Trend("host", "kvm01", "cpu.busy_pct", "7d", tuple(float(i) for i in range(28))),
        Trend("host", "kvm01", "mem.used_pct", "24h", gap),
        Trend("host", "kvm01", "mem.used_pct", "7d", (40.0,) * 28),  # flat: its value alone
        Trend("host", "kvm01", "cpu.steal_pct", "7d", day),  # no 24 h line: under 7 d still
        Trend("vm", "web-1", "vm.cpu_pct", "24h", day),
    )
    rep = rf.sample_report()
    return render_html(dataclasses.replace(rep, trends={"kvm01": trends}))


def test_sparklines_drawn_in_their_cells(
    browser: WebSocket, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("trends") / "report.html"
    path.write_text(_with_trends(), encoding="utf-8")
    cells = (
        "Array.from(document.querySelectorAll('#host-kvm01 table.tr tr'), r =>"
        " Array.from(r.cells, c => [c.textContent.trim(), Array.from("
        "c.querySelectorAll('polyline'), p => p.getAttribute('points').split(' ').length)]))"
    )
    page = new_page(browser)
    page.open(path.as_uri())
    rows = page.js(cells)
    assert rows == [
        [["over time", []], ["last 24 h", []], ["last 7 d", []]],
        [["CPU busy", []], ["10.0-49.0%", [24]], ["0.0-27.0%", [28]]],
        [["mem used", []], ["10.0-49.0%", [10, 12]], ["40.0%", []]],  # a gap: two lines
        [["steal", []], ["", []], ["10.0-49.0%", [24]]],
        [["VM web-1 CPU per vCPU", []], ["10.0-49.0%", [24]], ["", []]],
    ]
    first = "document.querySelector('#host-kvm01 table.tr td').firstChild.nodeName"
    assert page.js(first) == "svg"  # the line, then its range
    # Every point inside the 60 x 14 box.
    points = page.js(
        "Array.from(document.querySelectorAll('table.tr polyline'), p => p.getAttribute('points'))"
        ".join(' ').split(' ').map(xy => xy.split(',').map(Number))"
    )
    assert all(1 <= x <= 59 and 1 <= y <= 13 for x, y in points)
    assert problems(page, path.as_uri()) == []
    page.js("document.querySelector('#host-kvm01 table.tr').scrollIntoView()")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(ARTIFACTS / "html-report-sparklines.png")
    off = new_page(browser, js=False)
    off.open(path.as_uri())
    assert off.js(cells)[1:3] == [
        [["CPU busy", []], ["10.0-49.0%", []], ["0.0-27.0%", []]],
        [["mem used", []], ["10.0-49.0%", []], ["40.0%", []]],
    ]


def test_page_without_javascript_shows_everything(browser: WebSocket, report_url: str) -> None:
    page = new_page(browser, js=False, dark=True)
    page.open(report_url)
    assert page.call("Runtime.evaluate", expression="1")  # evaluation still works for the test
    rows = page.js("document.querySelectorAll('#hosts tbody tr').length")
    assert rows == 9
    assert page.js("document.getElementById('filter').hidden") is True
    assert page.js("document.querySelectorAll('section.host').length") == 9
    assert page.js("document.querySelector('#hosts').classList.contains('js')") is False
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(ARTIFACTS / "html-report-dark-nojs.png")
    # Folded tables are hidden on screen and unfolded on paper, by CSS alone.
    folded = "document.querySelector('details:not([open]) table').checkVisibility()"
    assert page.js(folded) is False
    page.call("Emulation.setEmulatedMedia", media="print")
    assert page.js(folded) is True
    assert page.js("getComputedStyle(document.querySelector('nav')).display") == "none"
    assert page.js("getComputedStyle(document.body).backgroundColor") == "rgb(255, 255, 255)"
    page.screenshot(ARTIFACTS / "html-report-print.png")
    assert problems(page, report_url) == []


def test_page_from_captured_probe_output(
    browser: WebSocket, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("captured") / "report.html"
    path.write_text(render_html(rf.captured_report()), encoding="utf-8")
    page = new_page(browser)
    page.open(path.as_uri())
    assert sorted(fleet_order(page)) == sorted(["kvm01", "kvm02", "web01", rf.HOSTILE_HOST])
    cells = "#host-kvm01 tbody tr td:first-child"
    vms = page.js(f"Array.from(document.querySelectorAll('{cells}'), e => e.textContent)")
    assert vms[-2:] == ["vm1", "vm2"]  # the VM table closes the section
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(ARTIFACTS / "html-report-captured-full.png", full=True)
    assert problems(page, path.as_uri()) == []


def test_findings_stay_readable_at_phone_width(browser: WebSocket, report_url: str) -> None:
    """At 400 px the findings table becomes one block per finding: no column squeezed to a
    word a line, nothing wider than the screen; wide tables scroll inside their own box."""
    page = new_page(browser)
    page.call("Emulation.setDeviceMetricsOverride", width=400, height=800,
              deviceScaleFactor=1, mobile=True)  # fmt: skip
    page.open(report_url)
    assert page.js("document.documentElement.clientWidth") == 400
    # The page itself never scrolls sideways: the fleet table scrolls in its own box.
    assert page.js("document.documentElement.scrollWidth") <= 400
    rows = page.js(
        "Array.from(document.querySelectorAll('#findings tbody tr'), r => {"
        " const m = r.cells[3].getBoundingClientRect(), b = r.getBoundingClientRect();"
        " return [m.width, m.height, b.left, b.right,"
        "  parseFloat(getComputedStyle(r.cells[3]).lineHeight)]; })"
    )
    assert len(rows) == 5
    for width, height, left, right, line in rows:
        assert left >= 0
        assert right <= 400
        assert width >= 300  # the message gets the screen's width, not a sliver of it
        assert height <= 4 * line  # a few lines, not a word a line
    labels = page.js(
        "getComputedStyle(document.querySelector('#findings td[data-l=rule]'), '::before').content"
    )
    assert labels == '"rule "'
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(ARTIFACTS / "html-report-phone.png", full=True)
    assert problems(page, report_url) == []


def test_hypervisors_sort_on_vcpu_and_memory_overcommit_apart(
    browser: WebSocket, report_url: str
) -> None:
    page = new_page(browser)
    page.open(report_url)

    def column(n: int) -> list[float]:
        return list(page.js(
            "Array.from(document.querySelectorAll('#hypervisors tbody tr'),"
            f" r => parseFloat(r.cells[{n}].textContent))"
        ))  # fmt: skip

    # Below the fold: scrolled to, as a person would, so the click lands on the heading.
    page.js("document.getElementById('hypervisors').scrollIntoView({block: 'center'})")
    page.click("#hypervisors thead th:nth-child(4)")  # memory overcommit: largest first
    mem = column(3)
    assert mem == sorted(mem, reverse=True)
    page.click("#hypervisors thead th:nth-child(3)")  # vCPU overcommit
    vcpu = column(2)
    assert vcpu == sorted(vcpu, reverse=True)
    assert len(vcpu) == 3
    assert problems(page, report_url) == []
