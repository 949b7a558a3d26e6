"""The HTML report's template and view model: escaping, failed hosts, empty inputs, figures."""

from __future__ import annotations

import base64
import dataclasses
import gc
import hashlib
import random
import re
from collections import Counter
from html.parser import HTMLParser

import jinja2
import markupsafe
import pytest
import reportfactory as rf

from fleetmon.model import FleetStat, HostReport, Report, Row, Severity, Status
from fleetmon.render import html as html_mod
from fleetmon.render.html import CPU_BAR_PX, render_html
from fleetmon.render.htmlenv import environment, render_page
from fleetmon.render.htmlfmt import DASH, anchors, ceiling, column, fmt


class Page(HTMLParser):
    """The parsed page: every element with its attributes, text per element id, all text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.texts: list[str] = []
        self.script = ""
        self.style = ""
        self._in: str | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))
        if tag in ("script", "style"):
            self._in = tag

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "script":
            self.script += data
        elif self._in == "style":
            self.style += data
        else:
            self.texts.append(data)

    def tags(self, name: str) -> list[dict[str, str]]:
        return [a for t, a in self.elements if t == name]

    @property
    def ids(self) -> set[str]:
        return {a["id"] for _, a in self.elements if "id" in a}


@pytest.fixture(scope="module")
def sample() -> str:
    return render_html(rf.sample_report())


def section(page: str, anchor: str) -> str:
    """The markup of one host's section."""
    start = page.index(f'id="{anchor}"')
    return page[start : page.index("</section>", start)]


def fleet_row(page: str, host_text: str) -> str:
    """The markup of the fleet table row whose link text is `host_text` (as escaped)."""
    start = page.index(f">{host_text}</a><td", page.index("<table id=hosts"))
    return page[start : page.index("\n<tr", start)]


def test_hostile_names_are_text_never_markup(sample: str) -> None:
    page = Page(sample)
    # One script (ours), no image, no event handler attribute anywhere.
    assert len(page.tags("script")) == 1
    assert page.tags("img") == []
    assert [a for _, attrs in page.elements for a in attrs if a.startswith("on")] == []
    text = "".join(page.texts)
    for hostile in (rf.HOSTILE_HOST, rf.HOSTILE_VM, rf.HOSTILE_MOUNT, rf.HOSTILE_NIC):
        assert hostile in text
    assert rf.HOSTILE_ERROR in text
    assert "<b>grp</b>" in text  # a group name, in the filter and the host's meta line
    # The raw forms never reach the markup.
    assert "<script>alert" not in sample
    assert "<img" not in sample
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in sample
    assert "&#39;; DROP TABLE vms; --" in sample
    assert "&lt;b&gt;refused&lt;/b&gt; &amp; &#39;quoted&#39; &#34;too&#34;" in sample


def test_hostile_name_inside_svg_title_and_attributes(sample: str) -> None:
    # The hostile host is a CPU outlier: its name is an SVG <title> and its anchor an href.
    anchor = anchors([rf.HOSTILE_HOST])[rf.HOSTILE_HOST]
    assert re.fullmatch(r"host-script-alert-1-script-[0-9a-f]{8}", anchor)
    assert f'<a href="#{anchor}"><circle class=out' in sample
    assert "<title>&lt;script&gt;alert(1)&lt;/script&gt;</title></circle>" in sample
    page = Page(sample)
    assert {o["value"] for o in page.tags("option")} == {"", "0", "1", "2", "3", "4"}


def test_every_link_is_an_anchor_on_the_page(sample: str) -> None:
    page = Page(sample)
    hrefs = [a["href"] for a in page.tags("a")]
    assert hrefs
    assert all(h.startswith("#") for h in hrefs), [h for h in hrefs if not h.startswith("#")]
    assert {h[1:] for h in hrefs} <= page.ids
    assert [a["href"] for a in page.tags("link")] == ["data:,"]
    loaders = {"src", "srcset", "href", "action", "data", "style", "background", "poster"}
    assert {k for t, a in page.elements if t not in ("a", "link") for k in a} & loaders == set()
    assert not re.search(r"https?:|url\(|@import", sample, re.IGNORECASE)


def test_page_policy_allows_only_its_own_script_and_style(sample: str) -> None:
    page = Page(sample)
    (meta,) = [m for m in page.tags("meta") if m.get("http-equiv") == "Content-Security-Policy"]

    def digest(text: str) -> str:
        return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()

    assert meta["content"] == (
        f"default-src 'none'; style-src 'sha256-{digest(page.style)}'; "
        f"script-src 'sha256-{digest(page.script)}'; img-src data:; base-uri 'none'; "
        "form-action 'none'"
    )
    assert "@media (prefers-color-scheme:dark)" in page.style
    assert "@media print" in page.style


def test_environment_escapes_and_refuses_undefined() -> None:
    env = environment()
    assert env.autoescape is True
    assert env.undefined is jinja2.StrictUndefined


def test_a_render_leaves_no_reference_cycle() -> None:
    """The template's macros held its context, which held them: every render left a cycle
    with the page's whole view model in it (1,818 objects for the sample report, tens of
    thousands a tick for `serve`'s fleets), freed only by a garbage collection. Now the
    reference counts free it all: a collection right after a render finds nothing."""
    report = rf.sample_report()
    render_html(report)  # the template compiled, the modules imported: once
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        render_html(report)
        found = gc.collect()
        kinds = Counter(type(o).__name__ for o in gc.garbage).most_common(6)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if was_enabled:
            gc.enable()
    assert found == 0, kinds


def test_a_failed_render_still_says_the_template_line() -> None:
    """render_page fails as Template.render does: the undefined name, the template's line
    in the traceback (Environment.handle_exception)."""
    with pytest.raises(jinja2.UndefinedError) as failed:
        render_page("report.html.j2", {})
    assert any(str(e.path).endswith("report.html.j2") for e in failed.traceback)


def test_run_facts_counts_and_findings_worst_first(sample: str) -> None:
    page = Page(sample)
    text = re.sub(r"\s+([,.:])", r"\1", " ".join(" ".join(page.texts).split()))
    assert "started 2026-11-26T03:00:00Z" in text
    assert "inventory inventories/prod.yaml limited to kvm:web" in text
    assert "rule files playbooks/linux-host.yaml, playbooks/kvm.yaml" in text
    assert "Host-key checking relaxed host key checking off for 1 host: db01" in text
    assert "3 ok 1 warning 2 critical 3 not collected 9 hosts" in text
    assert "exit code 2" in text
    # The badge takes its colour from its row's class.
    rows = re.findall(r"<tr class=(\w+)><td><span class=b>\w+</span><td>(.*?)<td>", sample)
    assert [r[0] for r in rows] == ["critical", "critical", "warning", "warning", "warning"]
    host_anchor = anchors([rf.HOSTILE_HOST])[rf.HOSTILE_HOST]
    assert rows[0][1] == '<a href="#host-kvm01">kvm01</a>'
    assert rows[1][1] == f'<a href="#{host_anchor}">&lt;script&gt;alert(1)&lt;/script&gt;</a>'
    assert '<a href="#spread">fleet</a>' in [r[1] for r in rows]


def test_failed_host_shows_its_reason(sample: str) -> None:
    row = fleet_row(sample, "kvm03")
    assert "<td><span class=b>unreachable</span>" in row  # coloured by its row
    start = sample.index("<table id=hosts")
    assert "<tr class=failed " in sample[start : sample.index(">kvm03</a>", start)][-120:]
    assert "<td colspan=9 class=reason>connect to 10.0.0.13:22 timed out after 10 s" in row
    assert "<span class=b>auth failed</span>" in fleet_row(sample, "kvm04")
    part = section(sample, "host-kvm03")
    assert "<p class=err>connect to 10.0.0.13:22 timed out after 10 s" in part
    assert "<dl class=m>" not in part
    assert "<table" not in part


def test_hosts_not_collected_lead_the_findings(sample: str) -> None:
    """A host that was not collected is in no finding, and in the fleet table after every
    critical host (at 500 hosts, pages down): the findings section names each first, with
    its status, a link to its section and its reason."""
    findings = sample[sample.index("<section id=findings>") : sample.index("<section id=fleet>")]
    down = findings[findings.index("<h3 id=down>Not collected (3)</h3>") :]
    assert down.index("</ul>") < down.index('<table class="d findings">')
    assert (
        '<li class=failed><span class=b>unreachable</span> <a href="#host-kvm03">kvm03</a>: '
        "connect to 10.0.0.13:22 timed out after 10 s\n"
    ) in down
    escaped = "connect failed: &lt;b&gt;refused&lt;/b&gt; &amp;"
    assert f'<span class=b>hostkey mismatch</span> <a href="#host-db01">db01</a>: {escaped}' in down
    assert "<h3>Rules' findings (5)</h3>" in down


def test_many_hosts_not_collected_fold_into_the_fleet_table() -> None:
    gone = [rf.failed(f"h{i:03d}", Status.TIMEOUT, "probe timed out") for i in range(35)]
    page = render_html(rf.report(gone))
    findings = page[page.index("<section id=findings>") : page.index("<section id=fleet>")]
    assert "Not collected (35)" in findings
    assert findings.count("<li class=failed>") == html_mod.TOP_FINDINGS
    assert '<li>and 5 more in the <a href="#fleet">fleet table</a>' in findings


def test_no_list_when_every_host_was_collected() -> None:
    page = render_html(rf.report([rf.host("kvm01", random.Random(1))]))
    assert "Not collected" not in page
    assert "Rules' findings" not in page


def test_host_without_vms(sample: str) -> None:
    row = fleet_row(sample, "web01")
    assert row.endswith(f"<td>{DASH}<td>{DASH}")  # VMs running, overcommit
    part = section(sample, "host-web01")
    assert "<h4>Disks</h4>" in part
    assert "Virtual machines" not in part
    assert "VMs running" not in part


def test_fleet_rows_worst_first_with_sort_keys(sample: str) -> None:
    names = re.findall(r'<tr class=\w+(?: data-g="[\d ]*")?><th><a href="#[^"]+">(.*?)</a>', sample)
    assert names == [
        "&lt;script&gt;alert(1)&lt;/script&gt;", "kvm01",  # critical
        "db01", "kvm03", "kvm04",  # not collected
        "web01",  # warning
        "kvm02", "web02", "web03",  # ok
    ]  # fmt: skip
    row = fleet_row(sample, "kvm01")
    kvm01 = rf.sample_report().hosts[0]
    busy = kvm01.metrics["cpu.busy_pct"]
    # A cell whose text starts with its figure has no sort key: the script reads the figure
    # (the CPU bar's title aside), and the status from the row's class in the heading's order.
    assert f"</svg>{busy:.1f}%\n<td>" in row
    assert row.startswith(">kvm01</a><td><span class=b>critical</span>\n<td><svg class=cpu")
    ranks = " ".join(html_mod._RANK)  # Severity's order, not collected after the worst
    assert ranks.startswith("critical failed ")
    assert f'<th data-d=a data-r="{ranks}">status<th>' in sample
    assert f"<td>{kvm01.metrics['mem.used_pct']:.1f}%<td>" in row
    assert "<td>3/4<td>" in row  # 3 of 4 VMs running (one shut off)
    nic = re.search(r'<td data-s="([\d.e+]+)">[\d.]+ [KMG]iB/s<small>', row)  # a scaled figure
    assert nic is not None
    assert float(nic[1]) > 1024


def test_cpu_bar_segments_add_up_to_busy_share() -> None:
    report = rf.sample_report()
    page = render_html(report)
    for h in report.hosts:
        if not h.collected:
            continue
        row = fleet_row(page, markupsafe.escape(h.name))
        segs = [
            (int(x), int(w)) for x, w in re.findall(r'<path class=\w d="M(\d+) 5h(\d+)"/>', row)
        ]
        # Whole pixels of the 90 px bar, each from where the last one ended.
        assert [x for x, _w in segs] == [sum(w for _x, w in segs[:i]) for i in range(len(segs))]
        idle = float(h.metrics["cpu.idle_pct"])  # type: ignore[arg-type]
        assert sum(w for _x, w in segs) == pytest.approx((100 - idle) * CPU_BAR_PX / 100, abs=0.6)
        assert f"idle {idle:.1f}%</title>" in row


def test_vm_table_marks_top_vms_and_folds() -> None:
    report = rf.sample_report()
    kvm02 = report.hosts[1]
    part = section(render_html(report), "host-kvm02")
    assert "<details><summary>Virtual machines (12)</summary>" in part
    vm_rows = re.findall(r"<tr><td>(app-\d\d)<td", part)
    by_cpu = sorted(kvm02.rows_of("vm"), key=lambda v: -float(v.metrics["vm.cpu_pct"]))  # type: ignore[arg-type]
    assert vm_rows == [v.name for v in by_cpu]
    # The busiest come first: the table's class marks its first 3 rows (the browser test
    # checks the style lands on those cells).
    assert '<table class="d t3"><tr><th>VM<th>' in part
    head = re.search(
        r"<th>VM<th>vCPUs<th>CPU/vCPU %<th>CPU of host %<th>vCPU delay %<th>memory (\w+)<th>", part
    )
    assert head is not None
    assert head[1] in ("GiB", "MiB")


def test_shut_off_vm_and_few_vms_are_not_marked(sample: str) -> None:
    part = section(sample, "host-kvm01")
    assert f"<tr><td>build-7 <i>shutoff</i><td>2<td>{DASH}<td>{DASH}" in part
    assert part.count('class="d t3"') == 1  # 4 VMs: the 3 running ones by CPU
    evil = section(sample, anchors([rf.HOSTILE_HOST])[rf.HOSTILE_HOST])
    assert 'class="d t' not in evil
    assert "class=hi" not in evil


def test_vm_ports_fold_into_the_vm_table_unless_they_drop(sample: str) -> None:
    part = section(sample, "host-kvm02")
    assert "<tr><td>eth0&lt;/title&gt;&lt;script&gt;alert(3)&lt;/script&gt;<td>" in part
    assert "<p class=extra>12 VM ports without drops or errors: see the VM table." in part


def test_empty_fleet() -> None:
    report = Report(rf.RUN, (), {}, 0)
    page = render_html(report)
    text = " ".join(" ".join(Page(page).texts).split())
    assert "0 ok 0 warning 0 critical 0 not collected 0 hosts" in text
    assert "No findings." in text
    assert "No metric was reported by 3 hosts or more: no spread to show." in text
    assert "<select id=group>" not in page
    assert re.search(r"<tbody>\s*</table>", page)


def test_no_findings_and_no_fleet_statistics() -> None:
    rng = random.Random(1)
    hosts = [rf.host("kvm01", rng, vms=[rf.vm("vm1", rng)]), rf.host("web01", rng, groups=())]
    ok = dataclasses.replace(
        rf.report(hosts, with_fleet=False),
        findings=(rf.finding("x", Severity.OK, "fleet", "all", "cpu.busy_pct", 1.0, "> 90"),),
    )
    page = render_html(ok)
    assert "<p class=none>No findings: 1 check passed." in page
    assert "<p class=none>No metric was reported by 3 hosts or more: no spread to show." in page
    assert 'data-g="0"' in page
    assert '<tr class=ok><th><a href="#host-web01">' in page


def test_unknown_figures_are_dashes_not_zeros() -> None:
    nan = float("nan")
    metrics = {"cpu.busy_pct": None, "cpu.idle_pct": nan, "mem.used_pct": float("inf")}
    host = HostReport(
        "rebooted", "10.0.0.9", ("kvm",), Status.OK, None, 1.0, metrics,
        rows={"disk": (Row("sda", {"disk.util_pct": None}),)},
        notes=("host rebooted between samples: every rate is unknown",),
    )  # fmt: skip
    stat = FleetStat(1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    page = render_html(Report(rf.RUN, (host,), {"cpu.busy_pct": stat}, 3))
    row = fleet_row(page, "rebooted")
    assert f"<title>CPU not known</title></svg>{DASH}" in row
    assert f"<td>{DASH}<td>{DASH}<td>{DASH}" in row
    assert not re.search(r"\b(nan|inf)\b", " ".join(Page(page).texts), re.IGNORECASE)
    assert f"<dt>CPU busy<dd>{DASH}<dt>idle<dd>{DASH}" not in page  # catalogue order
    assert f"<dt>idle<dd>{DASH}<dt>CPU busy<dd>{DASH}<dt>mem used<dd>{DASH}" in page


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (None, "%", DASH),
        (float("nan"), "%", DASH),
        (12.345, "%", "12.3%"),
        (0, "B", "0 B"),
        (1536, "B", "1.5 KiB"),
        (256 * 1024**3, "B", "256 GiB"),
        (0.0, "B/s", "0 B/s"),
        (73279200, "B/s", "69.9 MiB/s"),
        (42, "/s", "42/s"),
        (48930.0, "/s", "48.9k/s"),
        (0.0, "pages/s", "0 pages/s"),
        (1.25, "ratio", "1.25\u00d7"),
        (59.94, "s", "59.9 s"),
        (90061, "s", "1 d 1 h"),
        (3720, "s", "1 h 2 min"),
        (True, "bool", "yes"),
        ("running", "state", "running"),
        (0.351, "load", "0.35"),
        (4.56, "ms", "4.6 ms"),
        (7, "count", "7"),
    ],
)
def test_fmt(value: float | str | None, unit: str, text: str) -> None:
    assert fmt(value, unit) == text


def test_column_shares_one_unit() -> None:
    assert column([2.5 * 1024**2, 300 * 1024, None], "B/s") == (
        " MiB/s",
        ["2.5", "0.3", DASH],
    )
    assert column([512.0, 0.0], "B") == (" B", ["512", "0"])  # 3 digits: no decimals
    assert column([None], "%") == (" %", [DASH])


def test_anchors_unique_and_safe() -> None:
    names = ["kvm01", "a b", "a-b", "", "Ωmega", "x" * 80, "host-1"]
    ids = anchors(names)
    assert ids["kvm01"] == "host-kvm01"
    assert ids["host-1"] == "host-host-1"
    assert len(set(ids.values())) == len(set(names))
    assert all(re.fullmatch(r"host-[A-Za-z0-9_.-]{1,70}", i) for i in ids.values())


@pytest.mark.parametrize(
    ("x", "top"), [(0.0, 1.0), (0.7, 1.0), (1.12, 2.0), (7.5, 10.0), (82.1, 100.0)]
)
def test_ceiling(x: float, top: float) -> None:
    assert ceiling(x) == pytest.approx(top)


def test_host_lists_problems_and_counts_passed_checks() -> None:
    rng = random.Random(2)
    checks = [
        rf.finding(f"ok-{i}", Severity.OK, "host", "kvm01", "cpu.busy_pct", 1.0, "> 90")
        for i in range(40)
    ]
    unknown = rf.finding("psi", Severity.UNKNOWN, "host", "kvm01", "psi.io_some_pct", None, "> 5")
    warn = rf.finding("steal", Severity.WARNING, "host", "kvm01", "cpu.steal_pct", 6.0, "> 5")
    host = rf.host("kvm01", rng, findings=[*checks, warn, unknown])
    part = section(render_html(rf.report([host])), "host-kvm01")
    # A measured problem before one that could not be judged (Severity.listing).
    # A finding of the host's verdict (unknown ranks above warning) is coloured by the section;
    # another names its own severity.
    assert re.findall(r'<li><span class=(b|"b \w+")>(\w+)', part) == [
        ('"b warning"', "warning"),
        ("b", "unknown"),
    ]
    assert '<section class="host unknown" id="host-kvm01">' in render_html(rf.report([host]))
    assert "<p class=meta>40 checks passed." in part
    assert "ok-1" not in part


def test_long_finding_lists_fold_after_the_worst() -> None:
    rng = random.Random(3)
    many = [
        rf.finding(f"r{i:02d}", Severity.WARNING, "disk", f"sd{i}", "disk.util_pct", 91.0, "> 90")
        for i in range(34)
    ]
    crit = rf.finding("oom", Severity.CRITICAL, "host", "kvm01", "oom.kills", 2, "> 0")
    page = render_html(rf.report([rf.host("kvm01", rng, findings=[*many, crit])]))
    findings = page[page.index("<section id=findings>") : page.index("<section id=fleet>")]
    shown, folded = findings.split("<details><summary>5 more findings</summary>")
    assert shown.count("<tr class=warning>") == 29
    assert shown.count("<tr class=critical>") == 1
    assert shown.index("<tr class=critical>") < shown.index("<tr class=warning>")
    assert folded.count("<tr class=warning>") == 5


def test_report_computed_from_captures() -> None:
    report = rf.captured_report()
    page = render_html(report)
    kvm01 = report.hosts[0]
    vm1 = next(v for v in kvm01.rows_of("vm") if v.name == "vm1")
    part = section(page, "host-kvm01")
    assert "· hypervisor kvm · measured over 31.170 s" in part
    assert "<li>disk dm-2 present in the first sample only: skipped" in part
    # The lab capture's vm1: 261985000 ns of CPU over the sysstat host's 31.17 s, 1 vCPU.
    cpu = 100 * 261985000 / (1e9 * 31.17)
    assert vm1.metrics["vm.cpu_pct"] == pytest.approx(cpu)
    assert f"<tr><td>vm1<td>1<td>{cpu:.1f}<td>" in part
    assert "<h4>Virtual machines</h4>" in part
    assert "Virtual machines" not in section(page, "host-web01")
    assert "<td colspan=9 class=reason>probe timed out after 30 s" in fleet_row(page, "kvm02")
    evil = section(page, anchors([rf.HOSTILE_HOST])[rf.HOSTILE_HOST])
    assert "<h3>&lt;script&gt;alert(1)&lt;/script&gt; <span" in evil
    assert len(Page(page).tags("script")) == 1


def _table_after(page: str, title: str) -> tuple[list[str], list[list[str]]]:
    """The headings and cell texts of the first table after `title`."""
    start = page.index(title)
    table = page[start : page.index("</table>", start)]
    head_row, *body = table.split("<tr>")[1:]
    head = re.findall(r"<th(?:\s[^>]*)?>([^<]*)", head_row)
    rows = [
        [re.sub(r"<[^>]+>", "", c).strip() for c in re.split(r"<td[^>]*>", row)[1:]] for row in body
    ]
    return head, rows


def test_row_tables_have_one_unit_per_column() -> None:
    rng = random.Random(5)
    fast = rf.disk("sda", 90.0, rng)
    slow = dataclasses.replace(
        rf.disk("sdb", 1.0, rng),
        metrics={**rf.disk("sdb", 1.0, rng).metrics, "disk.read_bytes_per_s": 300.0},
    )
    h = dataclasses.replace(rf.host("kvm01", rng), rows={"disk": (fast, slow)})
    page = render_html(rf.report([h]))
    head, rows = _table_after(section(page, "host-kvm01"), "<h4>Disks</h4>")
    read = next(i for i, name in enumerate(head) if name.startswith("read "))
    assert head[read] in ("read KiB/s", "read MiB/s")  # the unit once, in the heading
    assert all(re.fullmatch(r"\d+(\.\d)?", r[read]) for r in rows), rows  # bare figures
    # 300 B/s beside MiB/s figures: a small number in the same unit, not "300 B/s".
    assert "B/s" not in "".join(r[read] for r in rows)


def test_fleet_views_of_vms_and_hypervisors(sample: str) -> None:
    assert "<th>vCPU overcommit<th>mem overcommit<tbody>" in sample  # two sortable columns
    head, rows = _table_after(sample, "<h2>Hypervisors</h2>")
    assert head[2:4] == ["vCPU overcommit", "memory overcommit"]
    assert 'class="d fleet sortable"' in sample[sample.index("<h2>Hypervisors</h2>") :][:200]
    assert [r[0] for r in rows][:2] == ["<script>alert(1)</script>".replace("<", "&lt;").replace(
        ">", "&gt;"), "kvm01"]  # fmt: skip
    for title in ("Top VMs by CPU (per vCPU)", "Top VMs by vCPU delay (steal)",
                  "Top VMs by disk", "Top VMs by network"):  # fmt: skip
        head, rows = _table_after(sample, f"<h3>{title}</h3>")
        assert head[:2] == ["VM", "host"]
        assert "CPU per vCPU %" in head
        assert "CPU of the host %" in head
        assert 0 < len(rows) <= 10
    head, rows = _table_after(sample, "<h3>Top VMs by CPU (per vCPU)</h3>")
    cpu = [float(r[head.index("CPU per vCPU %")]) for r in rows]
    assert cpu == sorted(cpu, reverse=True)
