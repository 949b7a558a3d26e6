"""A 50,000-host inventory loads whole, in both formats (timing: benchmarks/inventory_bench.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from fleetmon.inventory import load_inventory

N = 50_000


def _bench() -> ModuleType:
    path = Path(__file__).parent.parent / "benchmarks" / "inventory_bench.py"
    spec = importlib.util.spec_from_file_location("inventory_bench", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("inventory_bench", module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["yaml", "ini"])
def test_fifty_thousand_hosts(fmt: str, tmp_path: Path) -> None:
    bench = _bench()
    path = tmp_path / f"fleet.{fmt}"
    path.write_text(bench.yaml_inventory(N) if fmt == "yaml" else bench.ini_inventory(N))
    inv = load_inventory(str(path))
    assert len(inv.hosts) == N
    assert len(inv.groups) == 2 + 2 + 50  # all, ungrouped, kvm, xen, 50 racks
    h = inv.hosts["xen24999"]
    assert (h.address, h.port, h.user) == ("192.0.2.108", 2299, "monitor")
    assert h.groups == ("xen", "xen_rack24")
    assert h.vars["fleetmon_hypervisor"] == "xen"
    assert len(inv.select("kvm:!kvm_rack00")) == N // 2 - N // 50
