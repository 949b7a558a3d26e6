"""Rule files and their evaluation (pure, but for the file reader in `loader`).

load_rules(paths) -> RuleSet     evaluate(rs, hosts, specs, fleet, match) -> findings
"""

from __future__ import annotations

from fleetmon.rules.evaluate import evaluate
from fleetmon.rules.listing import render_rule_list
from fleetmon.rules.loader import load_rules, parse_rules
from fleetmon.rules.ruleset import Rule, RuleSet

#: The shipped rule files applied when no `-r` is given; kvm.yaml and xen.yaml gate
#: themselves on the `hypervisor` name (see playbooks/README.md); containers.yaml judges
#: the ctr rows, which only hosts running containers have.
DEFAULT_FILES = ("linux-host.yaml", "kvm.yaml", "xen.yaml", "containers.yaml")
#: Shipped rules over the history of earlier runs: loaded when the run keeps one.
HISTORY_FILES = ("history.yaml",)


def default_rule_files(playbooks_dir: str, history: bool = False) -> list[str]:
    """The shipped rule files, in the order they are loaded (history.yaml with a history)."""
    folder = playbooks_dir.rstrip("/") or "/"
    names = (*DEFAULT_FILES, *(HISTORY_FILES if history else ()))
    return [f"{folder.rstrip('/')}/{name}" for name in names]


__all__ = [
    "DEFAULT_FILES",
    "HISTORY_FILES",
    "Rule",
    "RuleSet",
    "default_rule_files",
    "evaluate",
    "load_rules",
    "parse_rules",
    "render_rule_list",
]
