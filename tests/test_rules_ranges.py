"""Threshold semantics: comparisons and every Nagios range form, edges inclusive."""

from __future__ import annotations

import math

import pytest

from fleetmon.rules.ranges import (
    Comparison,
    NagiosRange,
    ThresholdError,
    ValueKindError,
    parse_threshold,
)

# (threshold, value, alerts?) -- Nagios plugin guidelines: alert outside start..end, edges
# inclusive; `@` alerts inside, edges inclusive.
CASES = [
    # "10" = 0:10
    ("10", -0.001, True),
    ("10", 0, False),
    ("10", 5, False),
    ("10", 10, False),
    ("10", 10.001, True),
    # "10:" = 10..inf
    ("10:", 9.999, True),
    ("10:", 10, False),
    ("10:", 1e12, False),
    # "~:10" = -inf..10
    ("~:10", -1e12, False),
    ("~:10", 10, False),
    ("~:10", 10.5, True),
    # "10:20"
    ("10:20", 9.9, True),
    ("10:20", 10, False),
    ("10:20", 20, False),
    ("10:20", 20.1, True),
    # "@10:20" alerts inside, inclusive
    ("@10:20", 9.9, False),
    ("@10:20", 10, True),
    ("@10:20", 15, True),
    ("@10:20", 20, True),
    ("@10:20", 20.1, False),
    # "@10" = inside 0:10
    ("@10", 0, True),
    ("@10", 10, True),
    ("@10", -1, False),
    # negatives and decimals
    ("-5:-1", -3, False),
    ("-5:-1", 0, True),
    ("0.5:1.5", 1.5, False),
    ("0.5:1.5", 1.51, True),
    ("~:", 1e300, False),
    # comparisons
    ("> 5", 5, False),
    ("> 5", 5.01, True),
    (">= 5", 5, True),
    (">=5", 4.99, False),
    ("< 1", 0.99, True),
    ("< 1", 1, False),
    ("<= 1", 1, True),
    ("== 0", 0, True),
    ("== 0", 0.1, False),
    ("!= 0", 0, False),
    ("!= 0", 3, True),
    ("== true", True, True),
    ("== true", False, False),
    ("!= running", "paused", True),
    ("!= running", "running", False),
    ("== 'crashed'", "crashed", True),
    (15, 15, False),
    (15, 16, True),
]


@pytest.mark.parametrize(("text", "value", "alerts"), CASES)
def test_threshold_semantics(text: str | int, value: float | bool | str, alerts: bool) -> None:
    assert parse_threshold(text).alerts(value) is alerts


@pytest.mark.parametrize(
    ("text", "start", "end", "inside"),
    [
        ("10", 0.0, 10.0, False),
        ("10:", 10.0, math.inf, False),
        ("~:10", -math.inf, 10.0, False),
        ("10:20", 10.0, 20.0, False),
        ("@10:20", 10.0, 20.0, True),
        (" @~:5 ", -math.inf, 5.0, True),
        ("1e3:2e3", 1000.0, 2000.0, False),
    ],
)
def test_range_parse(text: str, start: float, end: float, inside: bool) -> None:
    assert parse_threshold(text) == NagiosRange(text.strip(), start, end, inside)


def test_comparison_parse() -> None:
    assert parse_threshold(">=  5") == Comparison(">=  5", ">=", 5.0)
    assert parse_threshold("== true") == Comparison("== true", "==", True)
    assert parse_threshold("!= 'paused'") == Comparison("!= 'paused'", "!=", "paused")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("20:10", "bad threshold '20:10': range start 20 is greater than end 10"),
        ("@5:-5", "bad threshold '@5:-5': range start 5 is greater than end -5"),
        (":10", "bad threshold ':10': empty range start (write 0:10 or ~:10)"),
        (
            "=> 5",
            "bad threshold '=> 5': expected a comparison (> >= < <= == !=) or a Nagios "
            "range (10, 10:, ~:10, 10:20, @10:20)",
        ),
        (
            "ten",
            "bad threshold 'ten': expected a comparison (> >= < <= == !=) or a Nagios "
            "range (10, 10:, ~:10, 10:20, @10:20)",
        ),
        (
            "10:20:30",
            "bad threshold '10:20:30': expected a comparison (> >= < <= == !=) or a Nagios "
            "range (10, 10:, ~:10, 10:20, @10:20)",
        ),
        ("> ", "bad threshold '>': nothing to compare with"),
        ("> high", "bad threshold '> high': '>' needs a number"),
        # float() reads 1e400 as inf and "\u0663" (Arabic-Indic three) as 3: neither is a
        # threshold anyone wrote on purpose.
        ("> 1e400", "bad threshold '> 1e400': a number too large for a threshold"),
        ("== -1e999", "bad threshold '== -1e999': a number too large for a threshold"),
        ("10:1e400", "bad threshold '10:1e400': a number too large for a threshold"),
        ("> \u0663", "bad threshold '> \u0663': '>' needs a number"),
        (
            "",
            "empty threshold: expected a comparison (> >= < <= == !=) or a Nagios range "
            "(10, 10:, ~:10, 10:20, @10:20)",
        ),
    ],
)
def test_bad_thresholds(text: str, message: str) -> None:
    with pytest.raises(ThresholdError) as exc:
        parse_threshold(text)
    assert str(exc.value) == message


def test_non_string_threshold() -> None:
    with pytest.raises(ThresholdError) as exc:
        parse_threshold(True)  # type: ignore[arg-type]
    assert str(exc.value) == "expected a string such as '> 5' or '~:90', got True"


@pytest.mark.parametrize(
    ("text", "value", "message"),
    [
        ("> 5", "running", "value 'running' is not a number, threshold '> 5' needs one"),
        ("~:90", True, "value True is not a number, threshold '~:90' needs one"),
        ("10", math.nan, "value is NaN, threshold '10' needs a number"),
        ("== true", 1, "value 1 is not a boolean, threshold '== true' needs one"),
        ("!= running", 3.0, "value 3.0 is not a string, threshold '!= running' needs one"),
    ],
)
def test_value_kind_mismatch(text: str, value: object, message: str) -> None:
    with pytest.raises(ValueKindError) as exc:
        parse_threshold(text).alerts(value)  # type: ignore[arg-type]
    assert str(exc.value) == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # Units are not read (the brief's '90%', '1GiB', '5m'): the error said "'>' needs a
        # number" of a threshold that has one, or listed the forms, not what to write.
        ("> 90%", "bad threshold '> 90%': no units: write > 90 (in the metric's own unit)"),
        ("~:90%", "bad threshold '~:90%': no units: write ~:90 (in the metric's own unit)"),
        (
            "> 1GiB",
            "bad threshold '> 1GiB': no units: write > 1073741824 (in the metric's own unit)",
        ),
        (
            "> 1.5 MB",
            "bad threshold '> 1.5 MB': no units: write > 1500000 (in the metric's own unit)",
        ),
        (
            "> 5m",
            "bad threshold '> 5m': no units: write the number in the metric's own unit "
            "(ms for a *_ms metric: 300000; seconds for a *_s one: 300)",
        ),
        (
            "> 200ms",
            "bad threshold '> 200ms': no units: write the number in the metric's own unit "
            "(ms for a *_ms metric: 200; seconds for a *_s one: 0.2)",
        ),
    ],
)
def test_a_threshold_with_a_unit_says_what_to_write(text: str, message: str) -> None:
    test_bad_thresholds(text, message)
