"""Real inventories read by fleetmon and by ansible-core itself: the same hosts, groups,
variables and host-pattern selections.

The corpus (tests/data/inventories/corpus/, SOURCES.md) is public inventories kept verbatim.
ansible-core (a test dependency, run as a program) answers `ansible-inventory --list`,
`--graph`, `--host` and, for the patterns, `ansible-playbook --list-hosts` over one play per
pattern (one process per inventory). Its answers are computed once per session, in
parallel: the programs take a third of a second each to start.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ansible_oracle import connections, environment, program

from fleetmon.errors import InventoryError
from fleetmon.inventory import load_inventory, render_graph, render_host, render_list
from fleetmon.inventory.connect import plan_hosts
from fleetmon.inventory.resolve import Inventory
from fleetmon.inventory.template import Renderer
from fleetmon.inventory.vars import connection_kind

CORPUS = Path(__file__).parent / "data" / "inventories" / "corpus"
pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Case:
    """An inventory as given to both programs, and the patterns tried on it."""

    name: str
    sources: tuple[str, ...]  # relative to CORPUS
    patterns: tuple[str, ...] = ()
    cwd: str = ""  # both run here (a script that reads a file beside it)
    via_script: bool = False  # Ansible reads `--list` JSON only from a script: wrap it
    refused: tuple[str, str] = ("", "")  # fleetmon's error, Ansible's warning (it reads none)
    host: str = ""  # also compare `--host HOST` (the same variables as --list's _meta)
    connect: bool = False  # also compare what each host is connected with (rendered)


AC = "ansible-core"
CASES = [
    Case(
        "complex.ini",
        (f"{AC}/ansible-inventory/complex.ini",),
        (
            "all[0]",
            "all[-1]",
            "test_group1[1:]",
            "parent_3:!test_group2",
            "test_group1:&test_group3",
            "test*",
            "test*[3]",  # the groups' hosts, then the hosts by name: test1 is found thrice
            "test*[14]",
            "test*[2:4]",
            "~test[1-3]$",
            "test_group1[0-1]",
            "test0[1-3]",
            "test1:nomatch",
            "ungrouped",
        ),
    ),
    Case("valid_sample.yml", (f"{AC}/ansible-inventory/valid_sample.yml",), ("ungrouped",)),
    Case("valid_sample.toml", (f"{AC}/ansible-inventory/valid_sample.toml",), ("somegroup",)),
    Case("unicode.yml", (f"{AC}/ansible-inventory/unicode.yml",), ("příbor", "p*")),
    Case("inv_with_int.yml", (f"{AC}/inventory/inv_with_int.yml",)),
    Case(
        "test_int_hostname.yml",
        (f"{AC}/inventory_yaml/test_int_hostname.yml",),
        refused=(
            "test_int_hostname.yml:5: all.children.kids.hosts.1234: a host name must be a "
            "string (YAML reads 1234 as a number): quote it ('1234':)",
            "Host pattern 1234 must be a string.",
        ),
    ),
    Case("empty.json", (f"{AC}/inventory_yaml/empty.json",), via_script=True),
    Case(
        "inventory_ini",
        (f"{AC}/inventory_ini/inventory.ini",),
        ("local", "gitlab*"),
        connect=True,
    ),
    Case("inventory.sh", ("inventory.sh",), ("None", "DC0_H0*"), cwd=f"{AC}/inventory_script"),
    Case(
        "inventory.json",
        (f"{AC}/inventory_script/inventory.json",),
        ("guests[0]",),
        via_script=True,
    ),
    Case("limit_inventory", (f"{AC}/limit_inventory/hosts.yml",), ("host[1-2]", "host1,host3")),
    Case("invalid-group", (f"{AC}/inventory-invalid-group/inventory.ini",), ("local-",)),
    Case(
        "var_blending",
        (f"{AC}/var_blending/inventory",),
        ("arbitrary_grandparent",),
        host="testhost",
    ),
    Case(
        "special_vars_hosts",
        (f"{AC}/special_vars_hosts/inventory",),
        ("!failed",),
        connect=True,
    ),
    Case("order", (f"{AC}/order/inventory",), ("incremental[1:2]", "host[A-C]")),
    Case(
        "delegate_to",
        (f"{AC}/delegate_to/inventory",),
        ("delegated_vars", "testhost*:!testhost[2-4]", "local:&testhost5"),
        connect=True,
    ),
    Case("kubespray sample", ("kubespray/sample/inventory.ini",)),
    Case("kubespray sample folder", ("kubespray/sample",)),
    Case(
        "kubespray local + sample",
        ("kubespray/local/hosts.ini", "kubespray/sample/inventory.ini"),
        ("etcd", "k8s_cluster", "kube_node:&kube_control_plane"),
        host="node1",
        connect=True,
    ),
    Case(
        "ceph external_clients folder",
        ("ceph-ansible/external_clients/inventory",),
        ("clients", "mons[1:]", "mgrs:clients"),
    ),
    Case(
        "ceph external_clients files",
        (
            "ceph-ansible/external_clients/inventory/external_clients-hosts",
            "ceph-ansible/external_clients/inventory/hosts",
        ),
    ),
    Case("ceph all_daemons", ("ceph-ansible/all_daemons/hosts",), ("osds", "mon*:!mons[0]")),
    Case("debops rails_deploy", ("debops/rails_deploy/hosts",), ("containers:!debops_ruby",)),
    Case("debops rails_deploy folder", ("debops/rails_deploy",), host="somedbhost"),
    Case(
        "a4d orchestration",
        ("ansible-for-devops/orchestration/hosts.ini",),
        ("multi[2]",),
        connect=True,
    ),
    Case(
        "a4d vagrant",
        ("ansible-for-devops/lamp-infrastructure/vagrant/inventory",),
        ("lamp_db", "192.168.56.[2-4]", "192.168.56.*", "a4d.lamp.db.1", "~192\\.168\\.56\\.[67]"),
    ),
    Case("a4d digitalocean", ("ansible-for-devops/lamp-infrastructure/digitalocean/inventory",)),
    Case("a4d kubernetes", ("ansible-for-devops/kubernetes/inventory",), ("k8s:!master",)),
    Case(
        "a4d dynamic script",
        ("ansible-for-devops/dynamic-inventory/inventory.py",),
        ("group",),
        host="192.168.56.72",
        connect=True,
    ),
    Case("a4d all of it", ("ansible-for-devops",), ("app:&multi", "all[0:2]")),
    Case("docs examples/hosts", ("ansible-documentation/examples/hosts",)),
    Case(
        "docs group structure",
        ("ansible-documentation/getting_started/inventory_group_structure.yaml",),
        ("datacenter", "network:!spines", "leaf*:webserver01"),
    ),
    Case("docs ee hosts.yml", ("ansible-documentation/getting_started_ee/hosts.yml",)),
]
IDS = [c.name for c in CASES]


@dataclass
class Answer:
    """What ansible-core said about one case."""

    listed: Any = None
    graph: str = ""
    host: tuple[str, Any] | None = None
    selections: dict[str, set[str]] | None = None
    connections: dict[str, Any] | None = None
    stderr: str = ""


def _slug(case: Case) -> str:
    return re.sub(r"\W", "_", case.name)


def _sources(case: Case, tmp: Path) -> list[str]:
    """The case's sources as absolute paths (a JSON file behind a wrapper script)."""
    paths = [str(CORPUS / case.cwd / s) for s in case.sources]
    if not case.via_script:
        return paths
    wrapped = []
    for i, path in enumerate(paths):
        script = tmp / f"{_slug(case)}-{i}.sh"
        script.write_text(f"#!/bin/sh\nexec cat '{path}'\n")
        script.chmod(0o755)
        wrapped.append(str(script))
    return wrapped


def _run(case: Case, tmp: Path, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    sources = [a for s in _sources(case, tmp) for a in ("-i", s)]
    return subprocess.run(
        [program(name), *sources, *args],
        cwd=CORPUS / case.cwd if case.cwd else tmp,
        env=environment(tmp / "home"),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _playbook(case: Case, tmp: Path) -> Path:
    plays = [{"hosts": p, "gather_facts": False, "tasks": []} for p in case.patterns]
    path = tmp / f"{_slug(case)}.yml"
    path.write_text(json.dumps(plays))  # JSON is YAML, and quotes every pattern
    return path


_PLAY = re.compile(r"^  play #(\d+) .*?\n    pattern: .*?\n    hosts \((\d+)\):\n", re.M)


def _selections(case: Case, out: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for m in _PLAY.finditer(out):
        lines = out[m.end() :].splitlines()[: int(m.group(2))]
        found[case.patterns[int(m.group(1)) - 1]] = {ln.strip() for ln in lines}
    return found


def _ask(case: Case, tmp: Path) -> Answer:
    listed = _run(case, tmp, "ansible-inventory", "--list")
    answer = Answer(stderr=listed.stderr)
    assert listed.returncode == 0, listed.stderr
    answer.listed = json.loads(listed.stdout)
    graph = _run(case, tmp, "ansible-inventory", "--graph")
    assert graph.returncode == 0, graph.stderr
    answer.graph = graph.stdout
    if case.host:
        shown = _run(case, tmp, "ansible-inventory", "--host", case.host)
        assert shown.returncode == 0, shown.stderr
        answer.host = (case.host, json.loads(shown.stdout))
    if case.connect:
        sources = [a for s in _sources(case, tmp) for a in ("-i", s)]
        cwd = CORPUS / case.cwd if case.cwd else tmp
        answer.connections = connections(*sources, home=tmp / "home", cwd=cwd)
    if case.patterns:
        played = _run(case, tmp, "ansible-playbook", str(_playbook(case, tmp)), "--list-hosts")
        assert played.returncode == 0, played.stderr
        answer.selections = _selections(case, played.stdout)
        assert len(answer.selections) == len(case.patterns), played.stdout
    return answer


@pytest.fixture(scope="session")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Answer]:
    """ansible-core's answers for every case, asked in parallel once per session."""
    tmp = tmp_path_factory.mktemp("oracle")
    with ThreadPoolExecutor(max_workers=max(4, 2 * (os.cpu_count() or 1))) as pool:
        answers = pool.map(lambda c: _ask(c, tmp), CASES)
        return dict(zip(IDS, answers, strict=True))


@pytest.fixture
def in_case_dir(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    case: Case = request.getfixturevalue("case")
    if case.cwd:
        monkeypatch.chdir(CORPUS / case.cwd)


def _load(case: Case) -> Inventory:
    return load_inventory([str(CORPUS / case.cwd / s) for s in case.sources])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_same_inventory_as_ansible(
    case: Case, oracle: dict[str, Answer], in_case_dir: None
) -> None:
    answer = oracle[case.name]
    if case.refused[0]:
        with pytest.raises(InventoryError) as e:
            _load(case)
        assert str(e.value).endswith(case.refused[0])
        assert case.refused[1] in answer.stderr  # Ansible warns and reads nothing from it
        assert answer.listed["_meta"]["hostvars"] == {}
        return
    inv = _load(case)
    assert json.loads(render_list(inv, show_secrets=True)) == answer.listed
    assert render_graph(inv) == answer.graph
    if answer.host is not None:
        name, values = answer.host
        assert json.loads(render_host(inv, name, show_secrets=True)) == values


def _selected(inv: Inventory, pattern: str) -> set[str]:
    try:
        return {h.name for h in inv.select(pattern)}
    except InventoryError as e:  # nothing selected: fleetmon's --limit refuses to run
        if "selects no hosts" in str(e) or "matches no host or group" in str(e):
            return set()
        raise


@pytest.mark.parametrize("case", [c for c in CASES if c.patterns], ids=lambda c: c.name)
def test_same_pattern_selections_as_ansible(
    case: Case, oracle: dict[str, Answer], in_case_dir: None
) -> None:
    inv = _load(case)
    expected = oracle[case.name].selections
    assert expected is not None
    assert {p: _selected(inv, p) for p in case.patterns} == expected


def test_corpus_is_what_sources_md_lists() -> None:
    listed = set(re.findall(r"^\| `([^`]+)` \|", (CORPUS / "SOURCES.md").read_text(), re.M))
    present = {str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*") if p.is_file()}
    assert listed == present - {"SOURCES.md"}


def _as_fleetmon_sees(values: Any) -> Any:
    """Ansible's answer in fleetmon's terms: `~` expanded, `smart` is ssh (failures as is)."""
    if isinstance(values, str):
        return "failed"
    host, port, user, key, connection = values
    key = os.path.expanduser(key) if key else None
    return [host, int(port), user, key, connection_kind(connection)]


@pytest.mark.parametrize("case", [c for c in CASES if c.connect], ids=lambda c: c.name)
def test_same_connections_as_ansible(
    case: Case, oracle: dict[str, Answer], tmp_path: Path, in_case_dir: None
) -> None:
    expected = oracle[case.name].connections
    assert expected
    inv = _load(case)
    render = Renderer(inv, (), os.getcwd() if case.cwd else str(tmp_path), {})
    mine = {}
    for p in plan_hosts(inv, list(inv.hosts.values()), (), render):
        s = p.spec
        mine[s.name] = "failed" if p.skip else [s.address, s.port, s.user, s.key_file, s.connection]
    assert mine == {h: _as_fleetmon_sees(v) for h, v in expected.items()}
