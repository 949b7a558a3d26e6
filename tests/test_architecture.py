"""The pure core stays pure: its modules import no network, process, clock or I/O edge."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import fleetmon

PKG = Path(fleetmon.__file__).parent

#: Modules (and packages) that are the I/O edges: everything else must be pure.
EDGES = {
    "fleetmon.__main__",
    "fleetmon.cli",
    "fleetmon.commands",
    "fleetmon.collect",
    "fleetmon.output",
    "fleetmon.parallel",  # starts worker processes
    "fleetmon.rawstore",
    "fleetmon.simulate",
    "fleetmon.sim",
    "fleetmon.inventory",  # reads the inventory files and group_vars/host_vars
}
FORBIDDEN = {
    "asyncio",
    "asyncssh",
    "socket",
    "subprocess",
    "multiprocessing",
    "concurrent",
    "signal",
    "fcntl",
    "time",
    "shutil",
    "tempfile",
    *EDGES,
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_edge(name: str) -> bool:
    return any(name == e or name.startswith(e + ".") for e in EDGES)


PURE = sorted(
    p for p in PKG.rglob("*.py") if not _is_edge(_module_name(p)) and "transport" not in p.name
)


def test_the_core_is_not_empty() -> None:
    names = {_module_name(p) for p in PURE}
    assert {"fleetmon.model", "fleetmon.probe", "fleetmon.pipeline"} <= names


@pytest.mark.parametrize("path", PURE, ids=lambda p: _module_name(p))
def test_pure_module_imports_no_io(path: Path) -> None:
    tree = ast.parse(path.read_text(), str(path))
    bad = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN):
                bad.append(name)
        is_call = isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        if is_call and node.func.id == "open":  # type: ignore[attr-defined]
            bad.append("open()")
    assert bad == [], f"{_module_name(path)} is in the pure core but uses {bad}"
