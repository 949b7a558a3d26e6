"""benchmarks/history_bench.py's size part runs (timing: `make bench`): it calls the history's
own retention pass, so a change of that pass's signature must not leave the benchmark behind."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import reportfactory as rf

from fleetmon.model import Status


def _bench() -> ModuleType:
    path = Path(__file__).parent.parent / "benchmarks" / "history_bench.py"
    spec = importlib.util.spec_from_file_location("history_bench", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("history_bench", module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_the_size_part_runs_its_retention_pass(tmp_path: Path) -> None:
    # 0.1 day of 5-minute runs: 28 runs of 100 hosts x 20 VMs; the pass keeps 0.1 d - 1 h.
    doc = _bench().bench_size(tmp_path, 0.1)
    assert doc["runs"] == 28
    assert doc["rows_deleted"] > 0
    assert doc["bytes_per_value"] > 0


@pytest.mark.slow
def test_the_rule_part_reads_the_history_through_the_recorder(tmp_path: Path) -> None:
    # A day of runs of 20 hosts, then the predict_linear rule judged on each collected host.
    doc = _bench().bench_rule(tmp_path, 20)
    collected = [h for h in rf.fleet_report(20, 0).hosts if h.status is Status.OK]
    assert doc["hosts"] == 20
    assert doc["judged"] == len(collected) > 0
