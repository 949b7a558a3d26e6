"""`fleetmon` (I/O edge): parse the options, run one subcommand, exit with a code.

Exit codes (METRICS.md): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, 4 invalid input,
70 internal error, 130/143 interrupted by SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import select
import signal
import sys
from collections.abc import Sequence
from typing import Any

from fleetmon.cli.clusteropts import unused_cluster_options
from fleetmon.cli.options import build_parser
from fleetmon.cli.runtime import Interrupted, terminate
from fleetmon.errors import (
    EXIT_INPUT,
    EXIT_INTERNAL,
    EXIT_SIGINT,
    FleetmonError,
    InputError,
    LockError,
    OptionError,
    OutputError,
    did_you_mean,
)
from fleetmon.io.atomic import discard, hold_std_fds
from fleetmon.render.text import clean

log = logging.getLogger("fleetmon")

#: Subcommand -> its module in fleetmon.cli (imported when run: `--help` stays fast).
COMMANDS = {
    "run": "run",
    "report": "report",
    "merge": "merge",
    "inventory": "inventory",
    "rules": "rules",
    "simulate": "simulate",
    "history": "history",
    "top": "top",
    "serve": "serve",
}


class CleanFormatter(logging.Formatter):
    """Log lines as a terminal or a journal may show them: the message (with its arguments:
    a failing host's stderr line, an SSH error quoting what the server sent) through
    clean(), as in every other output, so no call site can let a host's escape sequences,
    carriage returns or newlines (a forged log line) through; a traceback escaped line by
    line. Printable messages are unchanged."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return clean(super().formatMessage(record))

    def formatException(self, ei: Any) -> str:
        return _clean_lines(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return _clean_lines(super().formatStack(stack_info))


def _clean_lines(text: str) -> str:
    return "\n".join(clean(line) for line in text.split("\n"))


def dispatch(args: argparse.Namespace) -> int:
    """Run the subcommand named on the command line."""
    name = COMMANDS.get(args.command)
    if name is None:  # pragma: no cover - argparse refuses unknown commands
        raise OptionError(f"unknown command {args.command!r}")
    module = importlib.import_module(f"fleetmon.cli.{name}")
    code: int = module.command(args)
    return code


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line's options (exit 4 with a one-line error when they are not)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if (
        extra
        and getattr(args, "history_command", None) == "show"
        and not any(e.startswith("-") for e in extra)
    ):
        # `history show HOST --since 1d METRIC`: argparse gave METRIC's place to none
        # before the option; they are metrics as much as those before it.
        args.metrics.extend(extra)
    elif extra:
        own = _command_parser(parser, args)
        own.error(f"unrecognized arguments: {' '.join(extra)}{_meant(own, extra)}")
    if (why := deadline_error(args) or contradiction_error(args)) is not None:
        _command_parser(parser, args).error(why)
    for flag in unused_cluster_options(args):
        sys.stderr.write(f"fleetmon: warning: {flag} does nothing without --cluster\n")
    return args


def _command_parser(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> argparse.ArgumentParser:
    """The (sub)subcommand's own parser (`history show`'s, not `history`'s): its errors
    point at `fleetmon history show --help`, and its options are the ones a typo meant."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            child = action.choices.get(getattr(args, action.dest, None) or "")
            return parser if child is None else _command_parser(child, args)
    return parser


def _meant(parser: argparse.ArgumentParser, extra: Sequence[str]) -> str:
    """` (did you mean '--format'?)` for the first unrecognized option close to one of
    `parser`'s (Python 3.11's argparse names none), or an empty string."""
    options = [o for a in parser._actions for o in a.option_strings if o.startswith("--")]
    for word in extra:
        if word.startswith("--") and (hint := did_you_mean(word.split("=", 1)[0], options)):
            return hint
    return ""


def deadline_error(args: argparse.Namespace) -> str | None:
    """Why `--timeout` or `--shard-timeout` cannot be used (None: they can): a host's or a
    shard's deadline must exceed the wait between its samples (run's --interval, top's and
    serve's -d), or every host (every shard) times out."""
    timeout = getattr(args, "timeout", None)
    shard_s = getattr(args, "shard_timeout", None)
    if args.command == "run" and shard_s is not None and shard_s <= args.interval:
        # A shard's hosts all wait --interval between their samples: each attempt timed out.
        return (
            f"--shard-timeout {shard_s:g} must exceed --interval {args.interval:g}: a shard's"
            " hosts wait that long between their two samples, so every shard would time out"
        )
    if timeout is None or args.command not in ("run", "top", "serve"):
        return None
    wait, flag = (args.interval, "--interval") if args.command == "run" else (args.delay, "-d")
    if timeout > wait:
        return None
    return (
        f"--timeout {timeout:g} must exceed {flag} {wait:g}: a host's deadline runs over the"
        " wait between its two samples, so every host would time out"
    )


#: Options that undo one another, as (dest, flag, the dest that undoes it, its flag, why): the
#: second given, the first was silently ignored (`--no-rules -r site.yaml` read no rules).
CONTRADICTIONS = (
    ("rules", "-r", "no_rules", "--no-rules", "no rule is evaluated, so no rule file is read"),
    ("no_default_rules", "--no-default-rules", "no_rules", "--no-rules", "no rule is evaluated"),
    ("lock", "--lock", "no_lock", "--no-lock", "no lock file is taken"),
    ("lock_wait", "--lock-wait", "no_lock", "--no-lock", "no lock is taken, so none waited for"),
)


def contradiction_error(args: argparse.Namespace) -> str | None:
    """Why two options given together cannot both hold (None: no two such are given)."""
    for dest, flag, undoing, undoing_flag, why in CONTRADICTIONS:
        if getattr(args, dest, None) and getattr(args, undoing, False):
            return f"{flag} and {undoing_flag} contradict each other: with {undoing_flag}, {why}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `fleetmon` console script."""
    hold_std_fds()
    # Until the run installs its own handlers, SIGTERM ends the process like SIGINT does:
    # cleanly, with its own exit code and no traceback.
    signal.signal(signal.SIGTERM, terminate)
    try:
        args = _parse(argv)
    except (KeyboardInterrupt, Interrupted) as exc:
        code = exc.code if isinstance(exc, Interrupted) else EXIT_SIGINT
        sys.stderr.write(f"fleetmon: interrupted (exit {code})\n")
        return code
    except OutputError as exc:  # --help or --version to a standard output closed at start
        sys.stderr.write(f"fleetmon: error: {clean(exc)}\n")
        return EXIT_INPUT
    handler = logging.StreamHandler()
    handler.setFormatter(CleanFormatter("fleetmon: %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, handlers=[handler])
    if not args.debug:
        logging.getLogger("asyncssh").setLevel(logging.CRITICAL)
    try:
        code = dispatch(args)
    except Interrupted as exc:
        sys.stderr.write(f"fleetmon: {clean(exc)}\n")
        code = exc.code
    except InputError as exc:
        if args.debug:
            log.exception("invalid input")
        sys.stderr.write(f"fleetmon: error: {clean(exc)}\n")
        code = EXIT_INPUT
    except LockError as exc:
        sys.stderr.write(f"fleetmon: {clean(exc)}\n")
        code = 3
    except FleetmonError as exc:
        if args.debug:
            log.exception("error")
        sys.stderr.write(f"fleetmon: error: {clean(exc)}\n")
        code = EXIT_INPUT
    except KeyboardInterrupt:
        sys.stderr.write(f"fleetmon: interrupted (exit {EXIT_SIGINT})\n")
        code = EXIT_SIGINT
    except BrokenPipeError as exc:
        if not stdout_gone():  # another pipe: not the reader leaving, a fault
            return internal_error(exc, args.debug)
        # Standard output's reader left (`top -b | head`): stop, quietly, as top does.
        discard(sys.stdout)
        code = 0
    except Exception as exc:
        return internal_error(exc, args.debug)
    return code


def internal_error(exc: Exception, debug: bool) -> int:
    """Say an unexpected exception in one line (EXIT_INTERNAL); with --debug, raise it."""
    if debug:
        raise exc
    sys.stderr.write(
        f"fleetmon: internal error: {type(exc).__name__}: {clean(exc)}"
        " (run with --debug for details)\n"
    )
    return EXIT_INTERNAL


def stdout_gone() -> bool:
    """Whether standard output's reader has left: poll(2) reports an error (a pipe without
    a reader) or a hang-up (a closed socket) on it."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        events = poller.poll(0)
    except (OSError, ValueError):  # no standard output at all
        return True
    return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in events)
