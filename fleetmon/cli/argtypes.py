"""Types of command-line options (edge): numbers checked as argparse reads them, so a bad
value is one line naming the option (exit 4). Standard library only: `--help` stays fast."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _finite(kind: type[float] | type[int], name: str, text: str) -> float | int:
    """`text` as a number of `kind`; ArgumentTypeError when it is none, or nan or inf
    (float() reads them; no duration or size is one)."""
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{name} must be a finite number, got {text!r}")
    return value


def positive(
    kind: type[float] | type[int], name: str, most: float | None = None
) -> Callable[[str], float | int]:
    """An option's type: a number of `kind` greater than 0 (and `most` at most)."""

    def parse(text: str) -> float | int:
        value = _finite(kind, name, text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{name} must be greater than 0, got {text!r}")
        if most is not None and value > most:
            raise argparse.ArgumentTypeError(f"{name} must be {most:g} or less, got {text!r}")
        return value

    return parse


def at_least(name: str, least: int, most: int | None = None) -> Callable[[str], int]:
    """An option's type: a whole number, `least` or more (and `most` at most)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{name} must be a whole number, got {text!r}"
            ) from None
        if value < least:
            raise argparse.ArgumentTypeError(f"{name} must be {least} or more, got {text!r}")
        if most is not None and value > most:
            raise argparse.ArgumentTypeError(f"{name} must be {most} or less, got {text!r}")
        return value

    return parse


#: The largest --output-cap: 1 TiB, past any probe output and any machine's memory. A replay
#: reads a raw file of up to three times the cap at once: unbounded, 3e18 was past what
#: one read can ask for (an OverflowError, exit 70).
MAX_OUTPUT_CAP = 1 << 40


def output_cap(name: str) -> Callable[[str], int]:
    """An option's type: a byte count, 1 to MAX_OUTPUT_CAP (`run`, `report`, `top`, `serve`)."""

    def parse(text: str) -> int:
        value = at_least(name, 1)(text)
        if value > MAX_OUTPUT_CAP:
            raise argparse.ArgumentTypeError(
                f"{name} must be {MAX_OUTPUT_CAP} (1 TiB) or less, got {text!r}"
            )
        return value

    return parse


def non_negative(name: str) -> Callable[[str], float]:
    """An option's type: a finite number, 0 or more (seconds to wait, milliseconds to add)."""

    def parse(text: str) -> float:
        value = float(_finite(float, name, text))
        if value < 0:
            raise argparse.ArgumentTypeError(f"{name} must be 0 or more, got {text!r}")
        return value

    return parse


def non_negative_int(name: str, most: int | None = None) -> Callable[[str], int]:
    """An option's type: a whole number, 0 or more (and `most` at most)."""
    return at_least(name, 0, most)


def path_text(name: str) -> Callable[[str], str]:
    """An option's type: a path, not empty (an unset shell variable, `--history "$H"`, would
    otherwise mean the default)."""

    def parse(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"{name} needs a path, got an empty one")
        return text

    return parse


#: `run -i NUMBER` before -i became the inventory (as in ansible and fleetmon's other commands).
OLD_INTERVAL_WARNING = "fleetmon: warning: -i is the inventory now, as in ansible; use --interval\n"


class InventoryOrOldInterval(argparse.Action):
    """`run`'s `-i/--inventory SOURCE` (appended to `dest`). For the scripts of before, a
    `-i` whose value is a positive number naming no file is still the interval, with a
    one-line warning on standard error."""

    def __init__(self, *args: object, interval: Callable[[str], float], **kwargs: object):
        self.interval = interval
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        text = str(values)
        if option_string == "-i" and _old_interval(text):
            import sys

            sys.stderr.write(OLD_INTERVAL_WARNING)
            try:
                namespace.interval = self.interval(text)
            except argparse.ArgumentTypeError as exc:
                parser.error(f"argument -i: {exc}")
            return
        setattr(namespace, self.dest, [*(getattr(namespace, self.dest, None) or []), text])


def _old_interval(text: str) -> bool:
    """Whether `run -i TEXT` is an interval of before: a positive number, no such file."""
    import os

    try:
        value = float(text)
    except ValueError:
        return False
    return value > 0 and not os.path.exists(text)
