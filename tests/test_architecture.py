"""The layout is the architecture: data flows downhill from stage to stage, the pure stages do
no I/O by any means, there are no import cycles, and no module outgrows 400 lines.

The stages (a folder each under fleetmon/) and what each may import:

    model      records, severities, the metric catalogue        <- everyone
    sources    one module per probe section (parse)             <- collect, analyse, sim
    inventory  Ansible inventories, the one pattern matcher      <- rules, cluster, cli
    collect    the probe script and the transports (I/O)         <- sim, cluster, cli
    analyse    deltas, VMs, fleet statistics, the report model   <- cluster, cli
    cluster    shards of a run on a Dask cluster (I/O)           <- cli
    rules      rule files, expressions, verdicts                 <- render, cli
    render     text, json, html, nagios, junit, prometheus,      <- cli
               influx, alerts (pure)
    io         atomic files, the lock, the raw store (I/O)       <- cli
    export     Pushgateway, InfluxDB, Alertmanager (network I/O) <- cli
    history    the SQLite history across runs (I/O)              <- cli
    sim        the simulator (I/O)                               <- cli
    cli        the command line (I/O)
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import fleetmon

PKG = Path(fleetmon.__file__).parent
MAX_LINES = 400
#: A function longer than this is a sign to split it (the house style).
MAX_FUNCTION_LINES = 60

#: Stage -> the stages it may import (besides itself and the top-level errors module).
ALLOWED: dict[str, set[str]] = {
    "model": set(),
    "sources": {"model"},
    "inventory": {"model"},
    "collect": {"model", "sources"},
    "analyse": {"model", "sources"},
    "rules": {"model", "inventory"},
    "render": {"model", "rules"},
    "io": {"model"},
    # The network sinks send what render made; they never render nor read the model.
    "export": set(),
    "history": {"model"},
    "sim": {"model", "sources", "collect"},
    "cluster": {"model", "sources", "inventory", "collect", "analyse"},
    "cli": {
        "cluster",
        "model",
        "sources",
        "inventory",
        "collect",
        "analyse",
        "rules",
        "render",
        "io",
        "export",
        "history",
        "sim",
    },
}
#: Stages whose modules do no I/O, and the exceptions, each with its reason.
PURE_STAGES = {"model", "sources", "analyse", "rules", "render"}
PURE_EXCEPTIONS = {
    "fleetmon.rules.loader": "reads the rule files; parse_rules(text) is its pure part",
}
#: Modules that reach the outside world: a pure module importing one does I/O.
IO_MODULES = {
    "asyncio",
    "asyncssh",
    "concurrent",
    "fcntl",
    "glob",
    "http",
    "httpx",
    "io",
    "logging.handlers",
    "mmap",
    "multiprocessing",
    "os",
    "pathlib",
    "prometheus_client.exposition",
    "pty",
    "random",
    "resource",
    "secrets",
    "select",
    "selectors",
    "shutil",
    "signal",
    "socket",
    "sqlite3",
    "ssl",
    "subprocess",
    "sys",
    "tempfile",
    "threading",
    "time",
    "urllib",
}
#: Builtins and methods that do I/O whatever module they come from.
IO_CALLS = {"open", "print", "input", "exec", "eval", "compile", "__import__", "breakpoint"}
IO_METHODS = {
    "read_text",
    "read_bytes",
    "write_text",
    "write_bytes",
    "mkdir",
    "unlink",
    "touch",
    "rename",
    "replace_file",
    "iterdir",
    "rglob",
    "glob",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _stage(module: str) -> str | None:
    if module == "fleetmon.__main__":
        return "cli"  # `python -m fleetmon` is the command line
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in ALLOWED) else None


def _imports(path: Path) -> Iterator[tuple[str, int]]:
    """Every module imported (at any depth of the code), resolved to a module of ours when
    `from package import submodule` names one."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                yield (full if full in MODULES else node.module), node.lineno


def _ours(imports: Iterator[tuple[str, int]]) -> Iterator[tuple[str, int]]:
    return ((m, n) for m, n in imports if m == "fleetmon" or m.startswith("fleetmon."))


def test_every_module_belongs_to_a_stage() -> None:
    loose = [
        m
        for m in MODULES
        if _stage(m) is None and m not in {"fleetmon", "fleetmon.__main__", "fleetmon.errors"}
    ]
    assert loose == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_flow_downhill(module: str) -> None:
    stage = _stage(module)
    bad = []
    for target, line in _ours(_imports(MODULES[module])):
        other = _stage(target)
        if other is None or other == stage:
            continue  # fleetmon, fleetmon.errors, or the same stage
        if stage is None or other not in ALLOWED[stage]:
            bad.append(f"line {line}: {target}")
    assert bad == [], f"{module} ({stage}) imports against the flow: {bad}"


PURE = [
    *sorted(m for m in MODULES if _stage(m) in PURE_STAGES and m not in PURE_EXCEPTIONS),
    "fleetmon.errors",
]


@pytest.mark.parametrize("module", PURE)
def test_pure_module_does_no_io(module: str) -> None:
    path = MODULES[module]
    bad = [
        f"line {line}: import {name}"
        for name, line in _imports(path)
        if any(name == m or name.startswith(m + ".") for m in IO_MODULES)
    ]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Name) and node.func.id in IO_CALLS:
            bad.append(f"line {node.lineno}: {node.func.id}()")
        if isinstance(node.func, ast.Attribute) and node.func.attr in IO_METHODS:
            bad.append(f"line {node.lineno}: .{node.func.attr}()")
    assert bad == [], f"{module} is in a pure stage but does I/O: {bad}"


def _cycles() -> list[list[str]]:
    graph = {
        m: {
            t
            for t, _ in _ours(_imports(p))
            if t in MODULES and t != m and not (p.name == "__init__.py" and t.startswith(m + "."))
        }
        for m, p in MODULES.items()
    }
    # Tarjan's strongly connected components: any component of two or more is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles() -> None:
    # A package's __init__ that re-exports its own modules is not a cycle of design: the
    # edges from a package to its own children are left out.
    assert _cycles() == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_stays_small(module: str) -> None:
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines (split past {MAX_LINES})"


def _long_functions(source: str) -> list[tuple[str, int]]:
    """Each function (or method) over MAX_FUNCTION_LINES lines, with its length."""
    return [
        (node.name, (node.end_lineno or node.lineno) - node.lineno + 1)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (node.end_lineno or node.lineno) - node.lineno + 1 > MAX_FUNCTION_LINES
    ]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_functions_stay_short(module: str) -> None:
    assert _long_functions(MODULES[module].read_text()) == []


def test_the_checks_can_fail(tmp_path: Path) -> None:
    """The detectors catch what they are for (so a green run means something)."""
    bad = tmp_path / "bad.py"
    bad.write_text("import socket\nfrom fleetmon.collect import ssh\nx = open('f').read()\n")
    names = [n for n, _ in _imports(bad)]
    assert "socket" in names
    assert "fleetmon.collect.ssh" in names
    calls = [
        n.func.id
        for n in ast.walk(ast.parse(bad.read_text()))
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    ]
    assert "open" in calls
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    assert _long_functions(f"def long():\n{body}\ndef short():\n    pass\n") == [
        ("long", MAX_FUNCTION_LINES + 1)
    ]
    assert _stage("fleetmon.render.text") == "render"
    assert "collect" not in ALLOWED["render"]
    assert "collect" not in ALLOWED["inventory"]
