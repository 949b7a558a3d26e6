"""Generated inventories read by fleetmon and by ansible-core: the same hosts, groups, merged
variables and `--limit` selections.

A seeded generator writes what an estate has: groups nested several levels with diamonds and
hosts in several groups, group_vars/ and host_vars/ as files and as folders of several files
(merged in lexical order), variables at every level with `ansible_group_priority`, host
ranges (`web[01:03]`, `db-[a:c]`, `n[0:20:5]`), INI `:vars`/`:children` and typed host-line
values, YAML hosts with null values, ungrouped hosts, addresses that look like IPv4 or IPv6
(with a port), and patterns (`a:b`, `a:&b`, `a:!b`, `~regex`, subscripts, `@file`).

Per case ansible-core answers once with `ansible-inventory --list` (every host's merged
variables are in its `_meta`) and once with `ansible-playbook --list-hosts` over one play
per pattern, plus `--limit @file`; fleetmon must give the same. Selections are compared as
sets: Ansible lists a play's hosts in the pattern's order, fleetmon in inventory order (its
documented choice, patterns.select_names). Subscripts are asked only of groups whose host
order ansible-core fixes (_stable). FLEETMON_DIFF_CASES (default 8) and
FLEETMON_DIFF_SEED (default 1) run a larger exploration.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from ansible_oracle import environment, program

from fleetmon.errors import InventoryError
from fleetmon.inventory import load_inventory, render_list

pytestmark = pytest.mark.slow

CASES = int(os.environ.get("FLEETMON_DIFF_CASES", "8"))
SEED = int(os.environ.get("FLEETMON_DIFF_SEED", "1"))
KEYS = ("k1", "k2", "k3", "color")
NAMES = ("web", "db", "app", "edge", "lb", "mon", "store", "cache", "batch")


@dataclass
class Estate:
    """One generated inventory: groups (name -> parents, hosts, vars) and per-host vars."""

    fmt: str
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    host_vars: dict[str, dict[str, Any]] = field(default_factory=dict)
    ungrouped: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)  # expanded names, for patterns


def _value(rnd: random.Random, typed: bool) -> Any:
    """A variable value: typed (YAML, INI host line) or a plain word (INI `:vars`)."""
    if not typed:
        return rnd.choice(["red", "blue", "x1", "10", "yes", "True", "[1,2]", "0x1f", "a b"])
    return rnd.choice([1, 7, "red", "blue", True, False, None, [1, 2], {"a": 1}, "10", 2.5])


def _vars(rnd: random.Random, typed: bool = True, most: int = 3) -> dict[str, Any]:
    return {k: _value(rnd, typed) for k in rnd.sample(KEYS, rnd.randint(0, most))}


def _host_entry(rnd: random.Random, i: int) -> tuple[str, list[str]]:
    """A host entry as written (maybe a range or an address) and the names it expands to."""
    kind = rnd.random()
    if kind < 0.15:
        return f"r{i}web[01:03]", [f"r{i}web0{n}" for n in (1, 2, 3)]
    if kind < 0.22:
        return f"r{i}db-[a:c]", [f"r{i}db-{c}" for c in "abc"]
    if kind < 0.28:
        return f"r{i}n[0:20:5]", [f"r{i}n{n}" for n in (0, 5, 10, 15, 20)]
    if kind < 0.36:
        return f"10.1.{i}.{rnd.randint(1, 9)}", []
    if kind < 0.42:
        n = rnd.randint(1, 9)
        return f"10.2.{i}.{n}:2222", [f"10.2.{i}.{n}"]
    if kind < 0.48:
        n = rnd.randint(1, 9)
        return f"[fd00::{i}:{n}]:2200", [f"fd00::{i}:{n}"]
    return f"h{i}", []


def generate(rnd: random.Random) -> Estate:
    """A random estate: 3-7 groups, each's parents among the groups before it."""
    est = Estate(rnd.choice(["ini", "yaml"]))
    names = rnd.sample(NAMES, rnd.randint(3, 7))
    for gi, g in enumerate(names):
        parents = rnd.sample(names[:gi], rnd.randint(0, min(2, gi)))
        gvars = _vars(rnd, typed=est.fmt == "yaml")
        if rnd.random() < 0.3:
            gvars["ansible_group_priority"] = rnd.randint(1, 3)
        est.groups[g] = {"parents": parents, "hosts": {}, "vars": gvars}
    for i in range(rnd.randint(3, 9)):
        written, expanded = _host_entry(rnd, i)
        expanded = expanded or [written]
        hvars = _vars(rnd, most=2)
        if rnd.random() < 0.15:
            est.ungrouped.append(written)
            est.host_vars[written] = hvars
        else:
            for g in rnd.sample(names, rnd.randint(1, 2)):
                est.groups[g]["hosts"][written] = hvars if rnd.random() < 0.6 else None
        for h in expanded:
            if h not in est.hosts:
                est.hosts.append(h)
    return est


def _ini_value(v: Any) -> str:
    """A host-line value: a Python literal with no space (the line is split at spaces)."""
    if isinstance(v, str):
        return v if v in ("red", "10") else json.dumps(v)  # bare: a word, or 10 an int
    return repr(v).replace(" ", "")


def _ini_host(written: str, hvars: dict[str, Any] | None) -> str:
    parts = [written] + [f"{k}={_ini_value(v)}" for k, v in (hvars or {}).items()]
    return " ".join(parts)


def write_ini(est: Estate) -> str:
    lines = [_ini_host(h, est.host_vars[h]) for h in est.ungrouped]
    for g, spec in est.groups.items():
        lines += ["", f"[{g}]"] + [_ini_host(h, v) for h, v in spec["hosts"].items()]
        if spec["vars"]:
            lines += [f"[{g}:vars]"] + [f"{k}={v}" for k, v in spec["vars"].items()]
    for g in est.groups:
        kids = [k for k, s in est.groups.items() if g in s["parents"]]
        if kids:
            lines += ["", f"[{g}:children]", *kids]
    return "\n".join(lines) + "\n"


def write_yaml(est: Estate) -> str:
    top: dict[str, Any] = {}
    if est.ungrouped:
        top["ungrouped"] = {"hosts": {h: est.host_vars[h] or None for h in est.ungrouped}}
    for g, spec in est.groups.items():
        body: dict[str, Any] = {}
        if spec["hosts"]:
            body["hosts"] = {h: v or None for h, v in spec["hosts"].items()}
        if spec["vars"]:
            body["vars"] = spec["vars"]
        kids = [k for k, s in est.groups.items() if g in s["parents"]]
        if kids:
            body["children"] = {k: None for k in kids}
        if not spec["parents"] or body:
            top[g] = body or None  # a child's body may be given at the top level too
    return json.dumps({"all": {"children": top, "vars": {"k1": "from-all"}}}, indent=1)


def write_vars(rnd: random.Random, est: Estate, root: Path) -> None:
    """group_vars/ and host_vars/: a file, or a folder of files merged in lexical order."""
    targets = [("group_vars", g) for g in [*est.groups, "all"]] + [
        ("host_vars", h) for h in est.hosts
    ]
    for kind, name in rnd.sample(targets, min(len(targets), rnd.randint(1, 5))):
        base = root / kind
        base.mkdir(exist_ok=True)
        fname = name
        if rnd.random() < 0.5:
            (base / f"{fname}.yml").write_text(json.dumps(_vars(rnd, most=3)))
        else:
            d = base / fname
            d.mkdir(exist_ok=True)
            for part in rnd.sample(["01.yml", "02.yaml", "10.json", "b.yml"], 2):
                (d / part).write_text(json.dumps(_vars(rnd, most=3)))


def _populated(est: Estate) -> list[str]:
    """The groups with a host, their own or a descendant's (Ansible's play fails on a
    subscript of an empty group, where fleetmon's --limit names it out of range)."""
    full = {g for g, s in est.groups.items() if s["hosts"]}
    while more := {p for g in full for p in est.groups[g]["parents"]} - full:
        full |= more
    return [g for g in est.groups if g in full and _stable(est, g)]


def _stable(est: Estate, group: str) -> bool:
    """Whether ansible-core's order of the group's hosts is fixed: it walks the children's
    children from a set (Group._walk_relationship), so with two groups of one generation
    having children the order follows PYTHONHASHSEED and a subscript picks hosts by chance."""

    def kids(g: str) -> list[str]:
        return [k for k, s in est.groups.items() if g in s["parents"]]

    frontier, seen = kids(group), {group, *kids(group)}
    while frontier:
        parents = [f for f in frontier if kids(f)]
        if len(parents) > 1:
            return False
        frontier = [k for f in parents for k in kids(f) if k not in seen]
        seen.update(frontier)
    return True


def patterns(rnd: random.Random, est: Estate) -> list[str]:
    groups = list(est.groups)
    sub = _populated(est)
    hosts = est.hosts

    def one() -> str:
        return rnd.choice([rnd.choice(groups), rnd.choice(hosts), "all", "ungrouped"])

    found = [
        f"{one()}:{one()}",
        f"{one()}:&{one()}",
        f"{one()}:!{one()}",
        f"~{re.escape(rnd.choice(hosts))[:3]}.*",
        f"{rnd.choice(groups)[:2]}*",
        f"{one()},{one()}",
    ]
    if sub:
        found += [f"{rnd.choice(sub)}{s}" for s in ("[0:1]", "[-1]", "[1:]", "[0-1]")]
    return found


@dataclass
class Case:
    seed: int
    root: Path
    source: Path
    patterns: list[str]
    limit_file: Path


def build(seed: int, tmp: Path) -> Case:
    rnd = random.Random(seed)
    est = generate(rnd)
    root = tmp / f"case{seed}"
    root.mkdir()
    source = root / ("hosts.ini" if est.fmt == "ini" else "hosts.yml")
    source.write_text(write_ini(est) if est.fmt == "ini" else write_yaml(est))
    write_vars(rnd, est, root)
    limit_file = root / "limit.txt"
    limit_file.write_text("\n".join(rnd.sample(est.hosts, min(2, len(est.hosts)))) + "\n")
    return Case(seed, root, source, patterns(rnd, est), limit_file)


def _run(case: Case, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*args[:1], "-i", str(case.source), *args[1:]],
        cwd=case.root,
        env=environment(home),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


_PLAY = re.compile(r"^  play #(\d+) .*?\n    pattern: .*?\n    hosts \((\d+)\):\n", re.M)


def _selections(pats: list[str], out: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for m in _PLAY.finditer(out):
        lines = out[m.end() :].splitlines()[: int(m.group(2))]
        found[pats[int(m.group(1)) - 1]] = [ln.strip() for ln in lines]
    return found


def ask(case: Case, home: Path) -> tuple[Any, dict[str, list[str]], list[str]]:
    """ansible-core's --list, each pattern's hosts, and `--limit @file`'s hosts (None, {},
    []: it could not parse the inventory)."""
    listed = _run(case, home, program("ansible-inventory"), "--list")
    assert listed.returncode == 0, listed.stderr
    if "Unable to parse" in listed.stderr:
        return None, {}, []
    plays = [{"hosts": p, "gather_facts": False, "tasks": []} for p in case.patterns]
    book = case.root / "plays.yml"
    book.write_text(json.dumps(plays))
    played = _run(case, home, program("ansible-playbook"), str(book), "--list-hosts")
    assert played.returncode == 0, played.stderr
    selections = _selections(case.patterns, played.stdout)
    limited = _run(
        case,
        home,
        program("ansible-playbook"),
        str(book),
        "--list-hosts",
        "--limit",
        f"@{case.limit_file}",
    )
    by_file: set[str] = set()
    for hosts in _selections(case.patterns, limited.stdout).values():
        by_file.update(hosts)
    return json.loads(listed.stdout), selections, sorted(by_file)


#: fleetmon's --limit refuses to run on what selects no host, where Ansible's selects none.
EMPTY = ("selects no hosts", "matches no host or group", "is out of range")


def _selected(inv: Any, pattern: str) -> list[str]:
    try:
        return [h.name for h in inv.select(pattern)]
    except InventoryError as e:
        if any(why in str(e) for why in EMPTY):
            return []
        raise


def test_generated_inventories_read_as_ansible_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = [build(SEED * 100_000 + i, tmp_path) for i in range(CASES)]
    home = tmp_path / "home"
    results: dict[int, list[str]] = {}

    def one(case: Case) -> tuple[int, Any]:
        return case.seed, ask(case, home)

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = dict(pool.map(one, cases))
    for case in cases:
        monkeypatch.chdir(case.root)  # the playbook folder's group_vars/: the case's own
        try:
            results[case.seed] = compare_answer(case, answers[case.seed])
        except InventoryError as e:
            results[case.seed] = [f"{case.source}: fleetmon refused: {e}"]
    bad = {s: p for s, p in results.items() if p}
    assert not bad, json.dumps({str(k): v for k, v in bad.items()}, indent=1)[:6000]


def compare_answer(case: Case, answer: tuple[Any, dict[str, list[str]], list[str]]) -> list[str]:
    listed, selections, by_file = answer
    if listed is None:  # Ansible could not parse it: fleetmon must refuse it too
        with pytest.raises(InventoryError):
            load_inventory(str(case.source))
        return []
    inv = load_inventory(str(case.source))
    problems = []
    mine = json.loads(render_list(inv, show_secrets=True))
    if mine != listed:
        problems.append(f"{case.source} --list: fleetmon {mine} != ansible {listed}")
    for p in case.patterns:
        got = _selected(inv, p)
        if set(got) != set(selections.get(p, [])):
            problems.append(f"{p!r}: fleetmon {got} != ansible {selections.get(p)}")
    in_plays = {h for p in case.patterns for h in _selected(inv, p)}
    limited = sorted(in_plays & set(_selected(inv, f"@{case.limit_file}")))
    if limited != by_file:
        problems.append(f"@file: fleetmon {limited} != ansible {by_file}")
    return problems
