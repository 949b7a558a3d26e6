"""Fits and forecasts (fleetmon.rules.trends) against Prometheus's and Zabbix's own cases.

tests/data/prometheus/functions-deriv-predict_linear.test is an excerpt of Prometheus's
PromQL test file; each `eval instant` of deriv/predict_linear over float samples is run
here. Its series notation: `0+10x4` is 0, 10, 20, 30, 40; samples every `load` step.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from fleetmon.model.durations import parse_duration
from fleetmon.rules import trends

DATA = Path(__file__).parent / "data"
PROM = (DATA / "prometheus" / "functions-deriv-predict_linear.test").read_text()


def _expand(notation: str) -> list[float] | None:
    """Prometheus's `a+bxN` series notation -> values; None for histogram samples."""
    out: list[float] = []
    for part in notation.split():
        if part.startswith("{{"):
            return None
        m = re.fullmatch(r"(-?[\d.]+|[+-]?Inf)(?:([+-][\d.]+)x(\d+))?", part)
        assert m, part
        start = float(m.group(1))
        if m.group(2) is None:
            out.append(start)
            continue
        step, n = float(m.group(2)), int(m.group(3))
        out += [start + step * i for i in range(n + 1)]
    return out


def _series() -> dict[str, list[tuple[float, float]]]:
    block = PROM.split("load 5m\n", 1)[1].split("\n\n", 1)[0]
    out = {}
    for line in block.splitlines():
        name, values = line.strip().split("\t", 1)
        expanded = _expand(values.strip())
        if expanded is not None:
            out[name.split("{")[0]] = [(300.0 * i, v) for i, v in enumerate(expanded)]
    return out


SERIES = _series()
_EVAL = re.compile(
    r"eval instant at (\w+) (deriv|predict_linear)\((\w+)(?:\{[^}]*\})?\[(\w+)\]"
    r"(?: @ (\d+))?(?:, (\w+))?\)\n(?:\texpect \w+\n)*\t\{[^}]*\} (\S+)"
)
CASES = [m.groups() for m in _EVAL.finditer(PROM) if m.group(3) in SERIES]


def test_the_prometheus_excerpt_yields_its_float_cases() -> None:
    # 2 deriv and 8 predict_linear on float series (the mixes with histograms are not ours)
    assert len(CASES) == 10


@pytest.mark.parametrize(("at", "fn", "metric", "rng", "anchor", "arg", "expected"), CASES)
def test_prometheus_deriv_and_predict_linear(
    at: str, fn: str, metric: str, rng: str, anchor: str | None, arg: str | None, expected: str
) -> None:
    eval_t = float(parse_duration(at))
    end = float(anchor) if anchor else eval_t  # `@ 3000`: the range ends there
    points = trends.window(SERIES[metric], end, parse_duration(rng))
    if fn == "deriv":
        got = trends.deriv(points)
    else:
        horizon = float(arg) if arg and arg.isdigit() else parse_duration(str(arg))
        got = trends.predict_linear(points, eval_t, horizon)
    assert got is not None
    if expected == "NaN":
        assert math.isnan(got)
    else:
        assert got == pytest.approx(float(expected), rel=1e-12, abs=1e-12)


def test_prometheus_regression_sums_in_the_comment() -> None:
    """The worked example in the test file: slope and intercepts of the 11 points."""
    points = SERIES["testcounter_reset_middle_total"][:11]
    fit = trends.linear_fit(points, 0.0)
    assert fit is not None
    assert fit.slope == pytest.approx(0.010606060606060607, rel=1e-15)
    assert fit.intercept == pytest.approx(6.818181818181818, rel=1e-15)
    assert fit.value_at(3000) == pytest.approx(38.63636363636364, rel=1e-15)
    assert fit.value_at(6600) == pytest.approx(76.81818181818181, rel=1e-15)
    assert fit.points == 11
    assert 0 < fit.r2 < 0.5  # a saw-tooth: a poor line


def test_constant_series_and_too_few_points() -> None:
    flat = [(0.0, 5.0), (300.0, 5.0), (600.0, 5.0)]
    fit = trends.linear_fit(flat, 600.0)
    assert fit == trends.Fit(0.0, 5.0, 600.0, 3, 1.0)
    assert trends.deriv(flat) == 0.0
    assert trends.deriv([(0.0, 1.0)]) is None
    assert trends.predict_linear([], 0.0, 60.0) is None
    assert trends.time_to([(0.0, 1.0)], 0.0, 5.0) is None


@pytest.mark.parametrize("base", [1e6, 1e11, 1e12, 4e12])
def test_r2_of_a_series_of_large_values_is_that_of_its_spread(base: float) -> None:
    """A day of 5-minute points of a 1-4 TB filesystem's bytes (noise 0/4/8 KiB, a slow
    trend): the same R² as the series less its base (one pass's sums of squares around
    1e24 kept nothing: 0.10 or 1.00 for 0.52)."""
    points = [(300.0 * i, base + 4096 * (i % 3) + 40.0 * i) for i in range(288)]
    small = [(t, v - base) for t, v in points]
    fit, ref = trends.linear_fit(points, 0.0), trends.linear_fit(small, 0.0)
    assert fit is not None
    assert ref is not None
    assert 0.3 < ref.r2 < 0.9
    assert fit.r2 == pytest.approx(ref.r2, rel=1e-6)
    assert fit.slope == pytest.approx(ref.slope, rel=1e-6)


def test_a_perfect_line_has_r2_one() -> None:
    line = [(60.0 * i, 1.0 + i) for i in range(5)]
    fit = trends.linear_fit(line, 240.0)
    assert fit is not None
    assert fit.r2 == pytest.approx(1.0)


# Zabbix's own cases (zabbix/zabbix tests/libs/zbxserver/evaluate_function.yaml, see
# tests/data/zabbix/README.md): values 1..5 one minute apart, evaluated at the last one.
ZABBIX = [(600.0 + 60.0 * i, float(i)) for i in range(1, 6)]
ZABBIX_NOW = 900.0


def test_zabbix_forecast_five_values_one_hour_ahead() -> None:
    # forecast(#5,1h) -> 65
    assert trends.predict_linear(ZABBIX, ZABBIX_NOW, 3600) == pytest.approx(65.0)


def test_zabbix_timeleft_to_65_over_5m() -> None:
    # timeleft(5m,65) -> 3600
    points = trends.window(ZABBIX, ZABBIX_NOW, 300)
    assert trends.time_to(points, ZABBIX_NOW, 65.0) == pytest.approx(3600.0)


@pytest.mark.parametrize(
    ("rng", "stat", "expected"),
    [("3m", "avg", 4.0), ("5m", "max", 5.0), ("4m", "min", 2.0)],
)
def test_zabbix_windows(rng: str, stat: str, expected: float) -> None:
    # avg(3m) -> 4, max(5m) -> 5, min(4m) -> 2: the window is (now - range, now]
    values = [v for _, v in trends.window(ZABBIX, ZABBIX_NOW, parse_duration(rng))]
    got = {"avg": sum(values) / len(values), "max": max(values), "min": min(values)}[stat]
    assert got == expected


@pytest.mark.parametrize(
    ("values", "threshold", "expected"),
    [
        ([50.0, 60.0, 70.0], 100.0, 1800.0),  # rising toward it: 30 more at 10 per 600 s
        ([70.0, 60.0, 50.0], 100.0, None),  # draining, never gets there
        ([90.0, 95.0, 100.0], 97.0, 0.0),  # crossed within the window and still rising
        ([98.0, 99.0, 100.0], 97.0, None),  # above all along: the static rule's job
        ([60.0, 60.0, 60.0], 100.0, None),  # flat
        ([60.0, 60.0, 60.0], 60.0, 0.0),  # flat at the threshold
        ([10.0, 8.0, 6.0], 0.0, 1800.0),  # free space falling to zero
    ],
)
def test_time_to(values: list[float], threshold: float, expected: float | None) -> None:
    points = [(600.0 * i, v) for i, v in enumerate(values)]
    got = trends.time_to(points, 1200.0, threshold)
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_mad_score_and_same_hour_of_week() -> None:
    week = 7 * 86_400
    now = 10 * week + 3 * 3600 + 1800  # a Thursday-ish half past three
    hourly = [(now // 3600 * 3600 - k * week, 10.0 + k) for k in range(1, 5)]
    hourly += [(now // 3600 * 3600 - k * week + 3600, 99.0) for k in range(1, 5)]  # next hour
    same = trends.same_hour_of_week(hourly, now, 4)
    assert sorted(same) == [11.0, 12.0, 13.0, 14.0]
    # median 12.5, MAD 1.0 * 1.4826
    assert trends.mad_score(15.465, same) == pytest.approx((15.465 - 12.5) / 1.4826)
    assert trends.mad_score(1.0, [1.0, 2.0]) is None
    assert trends.mad_score(5.0, [5.0, 5.0, 5.0]) == 0.0
    assert trends.mad_score(6.0, [5.0, 5.0, 5.0]) == math.inf
