"""Durations as rules and options write them (fleetmon.model.durations)."""

from __future__ import annotations

import pytest

from fleetmon.model.durations import DurationError, format_duration, parse_duration, short_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("6h", 21_600), ("1h30m", 5400), ("7d", 604_800),
     ("2w", 1_209_600), ("2y", 63_072_000), (" 8d ", 691_200), ("292y", 292 * 31_536_000)],
)  # fmt: skip
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("7days", "expected a duration such as 30s, 15m, 6h, 7d, 2w or 2y, got '7days'"),
        ("30m1h", "'30m1h': units from largest to smallest, each once (1h30m)"),
        ("1h1h", "'1h1h': units from largest to smallest, each once (1h30m)"),
        ("0s", "'0s': a duration must be longer than 0 s"),
        ("", "expected a duration such as 30s, 15m, 6h, 7d, 2w or 2y, got ''"),
        ("293y", "'293y': longer than 292y, the longest duration"),
        ("292y1s", "'292y1s': longer than 292y, the longest duration"),
    ],
)
def test_parse_duration_errors(text: str, message: str) -> None:
    with pytest.raises(DurationError) as err:
        parse_duration(text)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(45, "45 s"), (720, "12 min"), (19_800, "5.5 h"), (7200, "2 h"), (198_720, "2.3 days")],
)
def test_format_duration(seconds: float, words: str) -> None:
    assert format_duration(seconds) == words


def test_short_duration_round_trips() -> None:
    for text in ("8d", "90d", "2y", "1h30m", "45s"):
        assert short_duration(parse_duration(text)) == text
