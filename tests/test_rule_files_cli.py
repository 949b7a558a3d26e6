"""Which rule files a run loads: `-r` adds to the shipped playbooks, `--no-default-rules`
drops them, and the report header, the JSON and `rules list` name the files loaded."""

from __future__ import annotations

import json
from pathlib import Path

from clirun import ROOT, fleetmon

from fleetmon.rules import DEFAULT_FILES, HISTORY_FILES

NO_PSI = ROOT / "tests" / "data" / "fleetmon-capture" / "no-psi-raw"
PLAYBOOKS = ROOT / "fleetmon" / "playbooks"
SHIPPED = [str(PLAYBOOKS / name) for name in DEFAULT_FILES]
SITE = """\
- name: site
  hosts: all
  rules:
    - name: site-always
      expr: "true"
      severity: warning
    - name: host-steal          # tunes the shipped rule: a higher warning, no critical
      warning: "> 50"
      critical: null
"""


def _site(tmp_path: Path) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(SITE, encoding="utf-8")
    return path


def _report(*args: object) -> tuple[int, dict[str, object]]:
    r = fleetmon("report", NO_PSI, "--history", "none", "--format", "json", *map(str, args))
    assert r.stderr == ""
    return r.returncode, json.loads(r.stdout)


def _rules(doc: dict[str, object]) -> dict[str, str]:
    """The findings that are not OK (those the JSON lists), by rule."""
    (host,) = doc["hosts"]  # type: ignore[misc]
    return {f["rule"]: f["severity"] for f in host["findings"]}


def test_r_adds_to_the_shipped_playbooks(tmp_path: Path) -> None:
    site = _site(tmp_path)
    code, doc = _report("-r", site)
    assert (code, doc["rule_files"]) == (1, [*SHIPPED, str(site)])
    assert _rules(doc) == {"site-always": "warning"}
    # The shipped rules are there: one of them, made to fire by a site file's tune.
    tune = tmp_path / "tune.yaml"
    tune.write_text("- hosts: all\n  rules:\n    - name: fs-full\n      warning: '~:1'\n")
    code, doc = _report("-r", site, "-r", tune)
    assert (code, doc["rule_files"]) == (1, [*SHIPPED, str(site), str(tune)])
    assert _rules(doc) == {"site-always": "warning", "fs-full": "warning"}


def test_no_default_rules_loads_the_r_files_only(tmp_path: Path) -> None:
    site = tmp_path / "only.yaml"
    site.write_text(SITE.split("    - name: host-steal")[0], encoding="utf-8")
    code, doc = _report("--no-default-rules", "-r", site)
    assert (code, doc["rule_files"], _rules(doc)) == (1, [str(site)], {"site-always": "warning"})


def test_a_shipped_file_named_again_is_loaded_once(tmp_path: Path) -> None:
    again = PLAYBOOKS / DEFAULT_FILES[0]
    code, doc = _report(
        "-r", again, "-r", ROOT / "fleetmon" / ".." / "fleetmon" / "playbooks" / DEFAULT_FILES[1]
    )
    assert (code, doc["rule_files"]) == (0, SHIPPED)


def test_no_default_rules_without_r_is_an_input_error() -> None:
    r = fleetmon("report", NO_PSI, "--history", "none", "--no-default-rules")
    assert (r.returncode, r.stdout) == (4, "")
    assert r.stderr == "fleetmon: error: --no-default-rules needs -r FILE (or use --no-rules)\n"


def test_rules_list_names_the_files_loaded(tmp_path: Path) -> None:
    site = _site(tmp_path)
    inv = tmp_path / "inv.yaml"
    inv.write_text("all:\n  hosts:\n    a:\n", encoding="utf-8")
    r = fleetmon("rules", "list", inv, "-r", site)
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0]
    assert first.endswith(f" rules from {', '.join([*SHIPPED, str(site)])}")
    assert "site-always" in r.stdout
    r = fleetmon("rules", "list", inv, "--no-default-rules", "-r", site)
    assert r.returncode == 4  # the tune of host-steal has nothing to tune
    assert r.stderr.startswith(
        f"fleetmon: error: {site}:7: rule 'host-steal': needs metric or expr"
    )


def test_rules_lint_checks_a_file_on_top_of_the_shipped_playbooks(tmp_path: Path) -> None:
    site = _site(tmp_path)
    r = fleetmon("rules", "lint", site)
    assert r.returncode == 0, r.stderr
    files = len(DEFAULT_FILES) + len(HISTORY_FILES) + 1
    assert r.stdout.endswith(f" rules OK in {files} file(s)\n")
    r = fleetmon("rules", "lint", "--no-default-rules", site)
    assert r.returncode == 4


def test_rules_list_lists_history_yaml_when_a_run_would_load_it(tmp_path: Path) -> None:
    inv = tmp_path / "inv.yaml"
    inv.write_text("all:\n  hosts:\n    a:\n", encoding="utf-8")
    history = [str(PLAYBOOKS / name) for name in HISTORY_FILES]
    for option, files in ((["--history", "none"], SHIPPED), ([], [*SHIPPED, *history])):
        env = {"FLEETMON_HISTORY": str(tmp_path / "h.sqlite")}
        r = fleetmon("rules", "list", inv, *option, env=env)
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines()[0].endswith(f" rules from {', '.join(files)}")
    assert not (tmp_path / "h.sqlite").exists()  # listing opens no history


def test_rules_list_shows_per_host_overrides_as_a_run_applies_them(tmp_path: Path) -> None:
    inv = tmp_path / "inv.yaml"
    inv.write_text(
        "all:\n  hosts:\n    a:\n    b:\n      fleetmon_thresholds:\n"
        "        host-steal: {warning: '> 15', critical: null}\n"
        "        fs-full: {enabled: false}\n        no-such: {enabled: false}\n",
        encoding="utf-8",
    )
    r = fleetmon("rules", "list", inv, "--history", "none")
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: " ".join(line.split()) for line in r.stdout.splitlines() if line}
    assert rows["host-steal"].endswith("all: a, b; tuned on 1: b")
    assert rows["fs-full"].endswith("all: a; disabled on 1: b")  # b's fs are not judged
    assert rows["b:"] == (
        "b: host-steal warning > 15, critical -; fs-full disabled;"
        " fleetmon_thresholds: no rule named 'no-such' in the rule files"
    )
