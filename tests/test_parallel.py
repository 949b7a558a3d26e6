"""The process pools give exactly the serial results: analysis in order (failures included),
and each renderer's text."""

from __future__ import annotations

import pytest
import reportfactory as rf
from probetext import NONCE, probe_stdout

from fleetmon.analyse import executor as parallel
from fleetmon.analyse.pipeline import analyse_host
from fleetmon.model import HostSpec, RawResult, Status
from fleetmon.render.html import render_html
from fleetmon.render.json import render_json
from fleetmon.render.text import render_text


def _raws() -> list[RawResult]:
    kvm, plain = probe_stdout(kvm=True), probe_stdout()
    out = []
    for i in range(24):
        spec = HostSpec(f"h{i:02d}", f"10.0.0.{i}")
        if i % 7 == 3:
            out.append(RawResult(spec, Status.TIMEOUT, "no answer within 30 s"))
        elif i % 5 == 4:
            out.append(RawResult(spec, Status.OK, None, "garbled\n", 0, nonce=NONCE))
        else:
            out.append(RawResult(spec, Status.OK, None, kvm if i % 2 else plain, 0, nonce=NONCE))
    return out


def test_pool_equals_serial_in_order() -> None:
    raws = _raws()
    serial = [analyse_host(r) for r in raws]
    pooled = parallel.analyse_many(raws, workers=2, min_hosts=1, chunk=5)
    assert pooled == serial
    assert [h.status for h in pooled].count(Status.PARSE_ERROR) == 4
    assert sum(1 for h in pooled if h.hypervisor == "kvm") == 8
    assert parallel._RAWS == ()  # nothing held once done


@pytest.mark.parametrize(("workers", "min_hosts"), [(1, 1), (2, 100)])
def test_one_worker_or_few_hosts_run_here(
    workers: int, min_hosts: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_pool(*_args: object, **_kw: object) -> None:
        raise AssertionError("a pool was started")

    monkeypatch.setattr(parallel, "ProcessPoolExecutor", no_pool)
    raws = _raws()
    assert parallel.analyse_many(raws, workers=workers, min_hosts=min_hosts) == [
        analyse_host(r) for r in raws
    ]


def test_render_many_equals_rendering_here() -> None:
    report = rf.fleet_report(30, 2, seed=3)
    renderers = [render_text, render_json, render_html]
    here = [fn(report) for fn in renderers]
    assert parallel.render_many(report, renderers, workers=2, min_hosts=1) == here
    assert parallel._RENDER == (None, ())
