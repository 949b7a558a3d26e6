"""contrib/grafana/fleetmon.json's Fleet health row fed as the README's multi-site recipe
feeds it: one `fleetmon run INV --limit SITE --push` cron job per site, each its own
Pushgateway group, scraped by a real Prometheus (`honor_labels: true`). The run's own
series (`fleetmon_run_*`) are then one per group, with no site: the stat panels must show
the worst group's, or a stopped cron job hides behind the others."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import promservers as ps
import pytest
import reportfactory as rf
from clirun import ROOT

from fleetmon.export.sinks import push
from fleetmon.model.records import Report
from fleetmon.render.prom import prometheus_chunks

pytestmark = pytest.mark.slow

DOC = json.loads((ROOT / "contrib" / "grafana" / "fleetmon.json").read_text())
#: How long ago each site's cron job last ran: lyon's stopped an hour ago.
AGES_S = {"paris": 60, "lyon": 3600}


def _panel_expr(title: str) -> str:
    (panel,) = [p for p in DOC["panels"] if p["title"] == title]
    (target,) = panel["targets"]
    expr: str = target["expr"]
    return expr


def _run_of(age_s: float, exit_code: int) -> Report:
    report = rf.sample_report()
    started = datetime.fromtimestamp(time.time() - age_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    run = dataclasses.replace(report.run, started_at=started)
    return dataclasses.replace(report, run=run, exit_code=exit_code)


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("grafana-pushed")
    with ps.running(ps.pushgateway, tmp) as pg:
        for site, age_s in AGES_S.items():
            report = _run_of(age_s, exit_code=2 if site == "paris" else 0)
            push(pg.url, list(prometheus_chunks(report)), job="fleetmon",
                 grouping={"inventory": "sites.yaml", "limit": site}, options=ps.FAST)  # fmt: skip
        target = pg.url.removeprefix("http://")
        with ps.running(ps.prometheus, tmp, {"pushgateway": target}) as server:
            ps.wait_for("both groups' runs in Prometheus",
                        lambda: len(_ask(server.url, "fleetmon_run_timestamp_seconds")) == 2,
                        timeout_s=60)  # fmt: skip
            yield server.url


def _ask(prom: str, expr: str) -> list[dict[str, Any]]:
    doc = ps.get_json(f"{prom}/api/v1/query", query=expr)
    result: list[dict[str, Any]] = doc["data"]["result"]
    return result


def test_the_age_of_the_figures_is_the_stalest_groups(prom: str) -> None:
    """lyon's cron job stopped an hour ago, paris's ran a minute ago: the panel the README
    says shows "a cron job or a push that stopped" showed paris's minute (max of the
    timestamps), lyon's hour nowhere."""
    (age,) = _ask(prom, _panel_expr("Age of the figures"))
    assert AGES_S["lyon"] <= float(age["value"][1]) < AGES_S["lyon"] + 120


def test_the_run_exit_code_is_the_worst_groups(prom: str) -> None:
    (code,) = _ask(prom, _panel_expr("Run exit code"))
    assert float(code["value"][1]) == 2  # paris's critical, lyon's 0 beside it
