"""docs/METRICS.md, the catalogue users read, and fleetmon/model/catalog.py, the one the code
reads, name the same metrics in the same scopes: a metric added to one and not the other fails
here (the doc's tables are checked, not generated, so their formulas stay hand-written)."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from clirun import ROOT, fleetmon
from livesim import simulated_fleet

from fleetmon.model import catalog

DOC = ROOT / "docs" / "METRICS.md"
#: A section that lists metrics of one scope: "## Disk (scope `disk`, one row per whole device)".
SECTION = re.compile(r"^## .*\(scope `(\w+)`")
NAME = re.compile(r"`([a-z0-9_]+(?:\.[a-z0-9_]+)*)`")


def _documented() -> dict[str, set[str]]:
    """Metric names in the first column of each scope section's tables, by scope."""
    out: dict[str, set[str]] = defaultdict(set)
    scope: str | None = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            m = SECTION.match(line)
            scope = m.group(1) if m else None
        elif scope and line.startswith("| `"):
            first = line.split("|")[1]
            out[scope].update(NAME.findall(first))
    return out


def _catalogued() -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for m in catalog.ALL.values():
        out[m.scope].add(m.name)
    return out


def test_every_catalogue_metric_is_documented_in_its_scope() -> None:
    doc = _documented()
    missing = {s: sorted(names - doc.get(s, set())) for s, names in _catalogued().items()}
    assert {s: n for s, n in missing.items() if n} == {}


def test_every_documented_metric_is_in_the_catalogue() -> None:
    cat = _catalogued()
    extra = {s: sorted(names - cat.get(s, set())) for s, names in _documented().items()}
    assert {s: n for s, n in extra.items() if n and s != "fleet"} == {}


def test_every_row_scope_has_a_section() -> None:
    doc = _documented()
    assert [s.name for s in catalog.ROW_SCOPES if s.name not in doc] == []


def test_the_parser_sees_every_table_row() -> None:
    # A guard on the guard: the doc has the scopes and a plausible count of names.
    doc = _documented()
    assert {"host", "disk", "nic", "fs", "vm"} <= set(doc)
    assert sum(len(v) for v in doc.values()) == len(catalog.ALL)


def test_the_json_example_has_the_keys_of_a_real_report() -> None:
    """The example in "The JSON report" fell behind the output (no `unknown`, `threshold`,
    `count`, `hypervisor`...): its keys are those of the golden report, in their order."""
    import json

    text = DOC.read_text(encoding="utf-8")
    example = json.loads(re.search(r"```json\n(.*?)```", text, re.DOTALL).group(1))  # type: ignore[union-attr]
    real = json.loads(
        (ROOT / "tests/data/golden-report/expected/report.json").read_text(encoding="utf-8")
    )
    assert list(example) == list(real)
    assert list(example["summary"]) == list(real["summary"])
    assert list(example["fleet"]) == list(real["fleet"])
    stat = next(iter(real["fleet"]["metrics"].values()))
    assert list(example["fleet"]["metrics"]["cpu.busy_pct"]) == list(stat)
    collected = [h for h in real["hosts"] if h["status"] == "ok"]
    for host in example["hosts"]:
        assert list(host) == list(collected[0])
    finding = next(f for h in collected for f in h["findings"])
    assert list(example["hosts"][0]["findings"][0]) == list(finding)


def test_every_documented_metric_is_produced_by_a_simulated_fleet(tmp_path: Path) -> None:
    """The catalogue's names are what the doc says; this checks a run offers each one: a
    mixed fleet (KVM, Xen, Linux) with containers and a guest gives every documented row
    metric a key in some host's or row's `metrics` (null allowed: offered, not computable)."""
    import json

    extra = ("--containers", "2", "--guests", "1")
    with simulated_fleet(tmp_path, hosts=8, kind="mixed", extra=extra) as inv:
        out = tmp_path / "fleet.json"
        r = fleetmon("run", inv, "-q", "--history", "none", "--no-rules", "--connect-timeout",
                     "20", "--format", "json", "-o", out)  # fmt: skip
    assert r.returncode == 0, r.stderr
    report = json.loads(out.read_text(encoding="utf-8"))
    assert all(h["status"] == "ok" for h in report["hosts"])
    offered: set[str] = set()
    for host in report["hosts"]:
        offered |= set(host["metrics"])
        for rows in ("disks", "nics", "filesystems", "vms", "containers", "guests"):
            offered |= {m for row in host[rows] for m in row["metrics"]}
    documented = {m for scope, names in _documented().items() if scope != "fleet" for m in names}
    assert sorted(documented - offered) == []


def test_the_json_example_s_failed_host_fails_as_a_real_one(tmp_path: Path) -> None:
    """The example's host not collected said `unreachable` with "connect to ...:22 timed out
    after 10 s", a reason no collector words (a connect timeout is `timeout`, "connect
    timeout: no TCP connection to ... within 10 s"): a refused port gives the example's."""
    import json
    import socket

    with socket.socket() as s:  # a loopback port nothing listens on once it is closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inv = tmp_path / "hosts.ini"
    inv.write_text(f"kvm02 ansible_host=127.0.0.1 ansible_port={port}\n", encoding="utf-8")
    r = fleetmon("run", inv, "-q", "--history", "none", "--no-rules", "--format", "json")
    assert r.returncode == 3, r.stderr
    real = json.loads(r.stdout)["hosts"][0]
    text = DOC.read_text(encoding="utf-8")
    example = json.loads(re.search(r"```json\n(.*?)```", text, re.DOTALL).group(1))  # type: ignore[union-attr]
    failed = example["hosts"][1]
    assert (real["status"], real["error"].replace(f"127.0.0.1:{port}", "10.0.0.6:22")) == (
        failed["status"],
        failed["error"],
    )
