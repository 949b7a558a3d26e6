"""`fleetmon report DIR` of a fixed raw folder, byte for byte: every output format is pinned.

tests/data/golden-report/raw is a --save-raw folder of a simulated fleet (KVM, Xen and plain
hosts, one unreachable, one that answered garbage); expected/ holds what `fleetmon report`
made of it. A refactor of the model, the rules or a renderer must leave these bytes alone;
a change meant to alter a report regenerates them (FLEETMON_UPDATE_GOLDEN=1) and the diff
shows, in review, what a user will see change. See tests/data/golden-report/README.md.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from clirun import ROOT, fleetmon

from fleetmon import __version__
from fleetmon.analyse.pipeline import analyse_host, report_from_hosts
from fleetmon.inventory.patterns import match_pattern
from fleetmon.io.rawstore import load_raw
from fleetmon.model import Finding, FleetStat, HostReport, Report
from fleetmon.render import json as json_mod
from fleetmon.rules import DEFAULT_FILES, evaluate, load_rules
from fleetmon.rules.verdict import exit_code

DATA = ROOT / "tests" / "data" / "golden-report"
RAW = DATA / "raw"
EXPECTED = DATA / "expected"
#: The shipped rules of a run without a history (DEFAULT_FILES), relative to the project root
#: (the CLI's working directory in these tests): named the same way wherever the checkout
#: is (the default names absolute paths).
RULES = tuple(f"fleetmon/playbooks/{name}" for name in DEFAULT_FILES)
#: `report` stamps the running fleetmon's version; the expected files were made by this one.
GENERATED_BY = "0.1.0"
UPDATE = os.environ.get("FLEETMON_UPDATE_GOLDEN") == "1"

#: Expected file -> the options of the `fleetmon report` run that writes it.
OUTPUTS = {
    "report.json": ("--format", "json"),
    "report.txt": ("--format", "text"),
    "report.nagios": ("--format", "nagios"),
    "report.html": ("--format", "json", "--html"),
    "report.junit.xml": ("--format", "json", "--junit"),
    "report.prom": ("--format", "prometheus"),
    "report.om": ("--format", "openmetrics"),
    "report.influx": ("--format", "influx"),
}


def _report(tmp_path: Path, name: str) -> str:
    opts = OUTPUTS[name]
    out = tmp_path / name
    # A trailing --html/--junit takes the file; the others write the main output with -o.
    args = [*opts, out] if opts[-1].startswith("--") else [*opts, "-o", out]
    # --no-default-rules: the header names the shipped files as given here (relative).
    rules = ["--no-default-rules", *(arg for f in RULES for arg in ("-r", f))]
    # --history none: the report neither reads nor writes a history file of this machine.
    r = fleetmon("report", RAW, "--history", "none", *rules, *args)
    assert r.returncode == 2, r.stderr  # two critical findings
    assert r.stderr == ""
    return out.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_report_of_the_fixed_raw_folder_is_byte_identical(tmp_path: Path, name: str) -> None:
    actual = _report(tmp_path, name)
    if UPDATE:
        (EXPECTED / name).write_text(actual.replace(__version__, GENERATED_BY), encoding="utf-8")
    expected = (EXPECTED / name).read_text(encoding="utf-8")
    assert actual == expected.replace(GENERATED_BY, __version__)


def _in_process_report() -> Report:
    run, raws = load_raw(str(RAW))
    specs = {r.host.name: r.host for r in raws}
    rules = load_rules([str(ROOT / f) for f in RULES])

    def match(pattern: str) -> set[str]:
        return set(match_pattern(pattern, list(specs.values())))

    def rules_of(
        hosts: tuple[HostReport, ...], fleet: dict[str, FleetStat]
    ) -> tuple[tuple[HostReport, ...], tuple[Finding, ...]]:
        return evaluate(rules, hosts, specs, fleet, match)

    hosts = [analyse_host(r) for r in raws]
    return report_from_hosts(hosts, run, evaluate=rules_of, exit_code=exit_code)


def test_one_host_per_line_json_has_the_same_keys_in_the_same_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Past 100 hosts the JSON is written one host per line by other code than the indented
    # form the files above pin: the two must agree on every key, its place and its value.
    report = _in_process_report()
    indented = json_mod.render_json(report)
    monkeypatch.setattr(json_mod, "INDENT_MAX_HOSTS", 0)
    streamed = json_mod.render_json(report)
    assert streamed != indented
    assert json.loads(streamed, object_pairs_hook=list) == json.loads(
        indented, object_pairs_hook=list
    )
    # And it is the report the command line made (but for the run facts it stamps itself).
    golden = json.loads((EXPECTED / "report.json").read_text(encoding="utf-8"))
    doc = json.loads(indented)
    for key in ("summary", "hosts", "fleet", "exit_code"):
        assert doc[key] == golden[key], key
