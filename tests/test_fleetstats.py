"""Fleet statistics: percentiles, robust outliers within groups."""

from __future__ import annotations

import statistics

import pytest

from fleetmon.analyse.fleet import fleet_stats, percentile, robust_outliers
from fleetmon.model import HostReport, Status, catalog


def _host(name: str, groups: tuple[str, ...], **metrics: float) -> HostReport:
    return HostReport(
        name=name,
        address=name,
        groups=groups,
        status=Status.OK,
        error=None,
        metrics={k.replace("__", "."): v for k, v in metrics.items()},
    )


@pytest.mark.parametrize(
    ("values", "pct", "expected"),
    [
        ([1.0], 95, 1.0),
        ([1.0, 2.0], 50, 1.5),
        ([0.0, 10.0, 20.0, 30.0, 40.0], 95, 38.0),
        ([0.0, 10.0, 20.0, 30.0, 40.0], 100, 40.0),
        ([0.0, 10.0, 20.0, 30.0, 40.0], 0, 0.0),
        ([40.0, 0.0, 30.0, 10.0, 20.0], 95, 38.0),  # any order
    ],
)
def test_percentile_interpolates_like_numpy(values: list[float], pct: int, expected: float) -> None:
    assert percentile(values, pct) == pytest.approx(expected)


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        percentile([], 50)
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile([1.0, 2.0], 101)


def test_one_far_value_is_an_outlier_and_spread_values_are_not() -> None:
    values = {f"h{i}": 10.0 + i % 3 for i in range(10)}
    assert robust_outliers(values) == set()
    values["hot"] = 95.0
    assert robust_outliers(values) == {"hot"}


def test_zero_mad_falls_back_to_mean_absolute_deviation() -> None:
    values = {f"h{i}": 0.0 for i in range(9)}
    values["steal"] = 40.0
    assert robust_outliers(values) == {"steal"}
    assert robust_outliers({f"h{i}": 5.0 for i in range(9)}) == set()


def test_groups_smaller_than_three_flag_nobody() -> None:
    assert robust_outliers({"a": 1.0, "b": 100.0}) == set()


def test_fleet_stats_over_collected_hosts_with_outliers_per_group() -> None:
    kvm = [_host(f"kvm{i}", ("kvm",), cpu__busy_pct=20.0 + i) for i in range(8)]
    kvm.append(_host("kvm-hot", ("kvm",), cpu__busy_pct=99.0))
    # In the web group 60 % is normal: it must not be called an outlier there.
    web = [_host(f"web{i}", ("web",), cpu__busy_pct=60.0 + i) for i in range(5)]
    failed = HostReport("down", "down", ("kvm",), Status.UNREACHABLE, "refused")
    stats = fleet_stats([*kvm, *web, failed])
    s = stats["cpu.busy_pct"]
    xs = sorted([20.0 + i for i in range(8)] + [99.0] + [60.0 + i for i in range(5)])
    assert s.count == 14
    assert s.min == 20.0
    assert s.max == 99.0
    assert s.median == statistics.median(xs)
    assert s.mean == pytest.approx(statistics.fmean(xs))
    assert s.stddev == pytest.approx(statistics.pstdev(xs))
    assert s.p95 == pytest.approx(percentile(xs, 95))
    assert s.outliers == ("kvm-hot",)


def test_non_numeric_and_null_metrics_are_not_aggregated() -> None:
    hosts = [
        _host("a", ("g",), uptime_s=10.0),
        HostReport("b", "b", ("g",), Status.OK, None, metrics={"uptime_s": None, "x": "str"}),
        HostReport("c", "c", ("g",), Status.OK, None, metrics={"host.rebooted": True}),
    ]
    stats = fleet_stats(hosts)
    assert set(stats) == {"uptime_s"}
    assert stats["uptime_s"].count == 1


def test_noise_is_not_an_outlier_the_catalogue_says_what_difference_matters() -> None:
    # The case: PSI cpu from 0 to 0.039 % over a fleet; a robust z-score over such a
    # spread called 18 hosts outliers. Under 5 points from the median nobody is one.
    values = [0.0] * 12 + [0.001, 0.002] + [0.039] * 3
    hosts = [_host(f"h{i}", ("g",), psi__cpu_some_pct=v) for i, v in enumerate(values)]
    # Without a minimum difference, the three at 0.039 % are "outliers" (z-score 4.0).
    assert robust_outliers({h.name: v for h, v in zip(hosts, values, strict=True)}) == {
        "h14",
        "h15",
        "h16",
    }
    assert catalog.outlier_min_diff("psi.cpu_some_pct") == 5.0
    assert fleet_stats(hosts)["psi.cpu_some_pct"].outliers == ()
    # A stall that matters is still one.
    hosts.append(_host("stalled", ("g",), psi__cpu_some_pct=30.0))
    assert fleet_stats(hosts)["psi.cpu_some_pct"].outliers == ("stalled",)


def test_every_catalogue_metric_of_a_known_unit_has_a_minimum_difference() -> None:
    for name, m in catalog.ALL.items():
        if m.unit not in ("state", "bool"):
            assert catalog.outlier_min_diff(name) > 0, name
    assert catalog.outlier_min_diff("load.per_cpu") == 0.5  # a metric's own overrides its unit
    assert catalog.outlier_min_diff("mem.total_bytes") == 1024**3
    assert catalog.outlier_min_diff("not.a_metric") == 0.0
