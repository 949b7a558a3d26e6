"""Command line (I/O edge): parse options, run the pipeline, write outputs, exit with a code.

Exit codes (METRICS.md): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, 4 invalid input,
70 internal error, 130/143 interrupted by SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

from fleetmon import __version__
from fleetmon.errors import FleetmonError, InputError, LockError

EXIT_INPUT = 4
EXIT_INTERNAL = 70
EXIT_SIGINT = 130
EXIT_SIGTERM = 143

FORMATS = ("text", "json", "html", "nagios")

log = logging.getLogger("fleetmon")
T = TypeVar("T")


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad options; 2 means CRITICAL here, so bad input is 4."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_INPUT, f"fleetmon: error: {message} (see '{self.prog} --help')\n")


def _positive(kind: type[float] | type[int], name: str) -> Callable[[str], float | int]:
    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{name} must be greater than 0, got {text!r}")
        return value

    return parse


def _add_render_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=FORMATS, default="text", help="main output format")
    p.add_argument("-o", "--output", metavar="FILE", help="write the main output here")
    p.add_argument("--html", metavar="FILE", help="also write the HTML report")
    p.add_argument("--json", metavar="FILE", dest="json_out", help="also write the JSON report")
    p.add_argument("--junit", metavar="FILE", help="also write JUnit XML (one suite per host)")
    p.add_argument(
        "-r",
        "--rules",
        action="append",
        default=None,
        metavar="FILE",
        help="rule file or folder (repeatable; default: the shipped playbooks)",
    )
    p.add_argument("--no-rules", action="store_true", help="evaluate no rules")
    p.add_argument(
        "--unreachable",
        choices=("critical", "unknown", "ignore"),
        default="unknown",
        help="how hosts that were not collected count in the exit code",
    )
    p.add_argument("--fail-on", choices=("warning", "critical"), default="critical")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = _Parser(prog="fleetmon", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"fleetmon {__version__}")
    parser.add_argument("--debug", action="store_true", help="log details and show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="collect the fleet and report")
    run.add_argument("inventory", help="Ansible inventory (YAML or INI)")
    run.add_argument("-l", "--limit", metavar="PATTERN", help="Ansible host pattern")
    run.add_argument(
        "-i", "--interval", type=_positive(float, "--interval"), default=1.0, metavar="S"
    )
    # 200: benchmarks/defaults.py sweep, 1,000 sim hosts 16.7 s at 100 -> 11.3 s; sshd 8.6 -> 8.3
    run.add_argument(
        "-f",
        "--forks",
        type=_positive(int, "--forks"),
        default=200,
        metavar="N",
        help="hosts collected at once (default 200; lowered to what the open-file limit allows)",
    )
    run.add_argument(
        "--connect-timeout", type=_positive(float, "--connect-timeout"), default=10.0, metavar="S"
    )
    run.add_argument(
        "--timeout",
        type=_positive(float, "--timeout"),
        default=None,
        metavar="S",
        help="per-host deadline (default: interval + 30 s)",
    )
    run.add_argument(
        "--accept-new-host-keys",
        action="store_true",
        help="accept and record keys of hosts not yet in known_hosts (OpenSSH accept-new)",
    )
    run.add_argument("--known-hosts", metavar="FILE", help="known_hosts file to use")
    run.add_argument(
        "--output-cap",
        type=_positive(int, "--output-cap"),
        default=16 * 1024 * 1024,
        metavar="BYTES",
        help="largest probe output accepted from one host",
    )
    run.add_argument("--lock", metavar="FILE", help="lock file (default: beside -o FILE)")
    run.add_argument("--no-lock", action="store_true", help="do not take the lock")
    run.add_argument("--lock-wait", type=float, default=0.0, metavar="S")
    run.add_argument("--save-raw", metavar="DIR", help="keep every host's raw probe output")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    _add_render_options(run)

    rep = sub.add_parser("report", help="recompute the reports from a --save-raw folder")
    rep.add_argument("raw_dir", metavar="DIR")
    _add_render_options(rep)

    inv = sub.add_parser("inventory", help="show what an inventory resolves to")
    inv.add_argument("inventory")
    mode = inv.add_mutually_exclusive_group()
    mode.add_argument("--graph", action="store_true")
    mode.add_argument("--list", action="store_true")
    mode.add_argument("--host", metavar="NAME")

    sim = sub.add_parser("simulate", help="play a fleet of N simulated hosts on loopback")
    from fleetmon.simulate import configure_parser

    configure_parser(sim)

    rules = sub.add_parser("rules", help="check rule files, or show which apply where")
    rsub = rules.add_subparsers(dest="rules_command", required=True, parser_class=_Parser)
    lint = rsub.add_parser("lint", help="check rule files without connecting anywhere")
    lint.add_argument("files", nargs="+")
    lst = rsub.add_parser("list", help="print the rules that apply to each host")
    lst.add_argument("inventory")
    lst.add_argument("-r", "--rules", action="append", default=None, metavar="FILE")
    lst.add_argument("-l", "--limit", metavar="PATTERN")
    return parser


def _install_signal_handlers(task: asyncio.Future[Any]) -> dict[str, int]:
    got: dict[str, int] = {}
    loop = asyncio.get_running_loop()

    def stop(code: int) -> None:
        got.setdefault("code", code)
        task.cancel()

    loop.add_signal_handler(signal.SIGINT, stop, EXIT_SIGINT)
    loop.add_signal_handler(signal.SIGTERM, stop, EXIT_SIGTERM)
    return got


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived: stop, write nothing, exit 130/143."""

    def __init__(self, code: int) -> None:
        super().__init__(f"interrupted (exit {code})")
        self.code = code


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; SIGINT/SIGTERM cancel it and raise Interrupted."""

    async def main() -> T:
        task = asyncio.ensure_future(coro)
        got = _install_signal_handlers(task)
        try:
            return await task
        except asyncio.CancelledError:
            if "code" in got:
                raise Interrupted(got["code"]) from None
            raise

    return asyncio.run(main())


class Progress:
    """A one-line progress display on stderr, only when stderr is a terminal."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self.enabled = enabled and sys.stderr.isatty()
        self.started = time.monotonic()

    def __call__(self, ok: bool) -> None:
        self.done += 1
        self.failed += 0 if ok else 1
        if self.enabled:
            elapsed = time.monotonic() - self.started
            sys.stderr.write(
                f"\r\x1b[Kfleetmon: {self.done}/{self.total} hosts done, "
                f"{self.failed} failed, {elapsed:.1f} s"
            )
            sys.stderr.flush()

    def finish(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def _terminate(signum: int, frame: object) -> None:
    raise Interrupted(EXIT_SIGTERM)


def utc_now() -> str:
    """The current time as ISO 8601 UTC with a Z."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `fleetmon` console script."""
    # Until the run installs its own handlers, SIGTERM ends the process like SIGINT does:
    # cleanly, with its own exit code and no traceback.
    signal.signal(signal.SIGTERM, _terminate)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
    except (KeyboardInterrupt, Interrupted) as exc:
        code = exc.code if isinstance(exc, Interrupted) else EXIT_SIGINT
        sys.stderr.write(f"fleetmon: interrupted (exit {code})\n")
        return code
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="fleetmon: %(levelname)s %(name)s: %(message)s",
    )
    if not args.debug:
        logging.getLogger("asyncssh").setLevel(logging.CRITICAL)
    try:
        from fleetmon import commands  # imported late: `--version` and `--help` stay fast

        code = commands.dispatch(args)
    except Interrupted as exc:
        sys.stderr.write(f"fleetmon: {exc}\n")
        code = exc.code
    except InputError as exc:
        if args.debug:
            log.exception("invalid input")
        sys.stderr.write(f"fleetmon: error: {exc}\n")
        code = EXIT_INPUT
    except LockError as exc:
        sys.stderr.write(f"fleetmon: {exc}\n")
        code = 3
    except FleetmonError as exc:
        if args.debug:
            log.exception("error")
        sys.stderr.write(f"fleetmon: error: {exc}\n")
        code = EXIT_INPUT
    except KeyboardInterrupt:
        sys.stderr.write(f"fleetmon: interrupted (exit {EXIT_SIGINT})\n")
        code = EXIT_SIGINT
    except Exception as exc:
        if args.debug:
            raise
        sys.stderr.write(
            f"fleetmon: internal error: {type(exc).__name__}: {exc}"
            " (run with --debug for details)\n"
        )
        code = EXIT_INTERNAL
    return code


__all__ = ["Interrupted", "Progress", "build_parser", "main", "run_async", "utc_now"]
