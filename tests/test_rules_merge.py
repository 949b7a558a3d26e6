"""YAML merge keys (`<<: *base`, `<<: {...}`) in rule files, as inventories take them: a
rule's own keys win over merged ones, a key written twice is still an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetmon.errors import RuleError
from fleetmon.rules import load_rules

RULES = """\
- &defaults
  name: site
  hosts: all
  rules:
    - &busy
      name: busy
      metric: cpu.busy_pct
      warning: "> 80"
      critical: "> 95"
    - <<: *busy
      name: busy-early
      warning: "> 50"
    - name: steal
      metric: cpu.steal_pct
      <<: {warning: "> 10", critical: "> 20"}
    - <<: [{name: iowait, metric: cpu.iowait_pct}, {warning: "> 20"}]
- <<: *defaults
  name: lab
  hosts: lab
  rules:
    - {name: lab-busy, <<: *busy}
"""


def _load(tmp_path: Path, text: str) -> list[tuple[str, ...]]:
    f = tmp_path / "site.yaml"
    f.write_text(text, encoding="utf-8")
    rules = load_rules([str(f)]).rules
    return [
        (
            r.name,
            r.play,
            r.hosts,
            str(r.metric),
            *(t.text if t else "" for t in (r.warning, r.critical)),
        )
        for r in rules
    ]


def test_merge_keys_apply_and_own_keys_win(tmp_path: Path) -> None:
    assert _load(tmp_path, RULES) == [
        ("busy", "site", "all", "cpu.busy_pct", "> 80", "> 95"),
        ("busy-early", "site", "all", "cpu.busy_pct", "> 50", "> 95"),
        ("steal", "site", "all", "cpu.steal_pct", "> 10", "> 20"),
        ("iowait", "site", "all", "cpu.iowait_pct", "> 20", ""),
        ("lab-busy", "lab", "lab", "cpu.busy_pct", "> 80", "> 95"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # A key written twice in one mapping, next to a merge key or not.
        (
            "- hosts: all\n  rules:\n    - name: a\n      <<: {critical: '> 9'}\n"
            "      metric: cpu.busy_pct\n      warning: '> 5'\n      warning: '> 6'\n",
            "7: rule 'a': duplicate key 'warning'",
        ),
        # A merged rule that keeps its base's name.
        (
            "- hosts: all\n  rules:\n    - &a {name: a, metric: cpu.busy_pct, warning: '> 5'}\n"
            "    - <<: *a\n      warning: '> 6'\n",
            "4: rule 'a': duplicate rule name (first at {file}:3)",
        ),
        # A misspelt key is named where it is written, in the merged mapping.
        (
            "- hosts: all\n  rules:\n    - name: a\n      metric: cpu.busy_pct\n"
            "      <<: {warnin: '> 5'}\n",
            "5: rule 'a': unknown key 'warnin' (did you mean 'warning'?)",
        ),
        (
            "- hosts: all\n  rules:\n    - name: a\n      <<: 5\n",
            "4: YAML syntax error: expected a mapping or list of mappings for merging, "
            "but found scalar",
        ),
    ],
)
def test_merge_key_errors(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "site.yaml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(RuleError) as exc:
        load_rules([str(f)])
    assert str(exc.value) == f"{f}:" + message.replace("{file}", str(f))


def test_merge_keys_are_no_way_around_the_alias_cap(tmp_path: Path) -> None:
    """Nine levels of ten merges each would copy 10**9 pairs as the mappings flatten."""
    lines = ["- hosts: all", "  rules:", "    - name: a", "      metric: cpu.busy_pct"]
    lines += ["      reason: x", "      source:", "        - &m0 {warning: '> 5'}"]
    for i in range(1, 9):
        lines.append(f"        - &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * 10)}]}}")
    lines.append("      <<: *m8")
    with pytest.raises(RuleError, match=r"YAML aliases expand this value to more than"):
        _load(tmp_path, "\n".join(lines) + "\n")
