"""Raw-output store (I/O): `run --save-raw DIR` writes it, `fleetmon report DIR` replays it.

Layout: `DIR/run.json` (run facts and one entry per host: spec, status, reason, nonce) and
`DIR/raw/<n>.out` (the host's probe stdout, as received). DIR and DIR/raw are folders of our
own (see files.open_own_folder); each file is made O_EXCL|O_NOFOLLOW and renamed into place.
Of a host's variables only those fleetmon reads are stored (STORED_VARS): never arbitrary
inventory values, which may be secrets.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from fleetmon.errors import InputError, OptionError, OutputError
from fleetmon.io.entrykeys import OVER_CAP, integer, obj, present
from fleetmon.io.entrykeys import key as _key
from fleetmon.io.entrykeys import status as _status
from fleetmon.io.files import TooLarge, open_own_folder, read_regular, replace_in, strict_json
from fleetmon.model import HostSpec, RawResult, RunInfo
from fleetmon.model.times import run_start

FORMAT = "fleetmon.raw/1"
#: The name of a host's output file in raw/: its index in the inventory order.
_OUT_NAME = re.compile(r"[0-9]{6}\.out")
_N = TypeVar("_N", int, float)
#: The output cap's default (`run --output-cap`, `report --output-cap`).
DEFAULT_OUTPUT_CAP = 16 * 1024 * 1024
#: A raw file holds the host's output decoded with U+FFFD for each invalid byte: up to three
#: bytes of file per byte received under the cap.
_STORED_PER_RECEIVED = 3
#: Deeper than this, a value in run.json is not one fleetmon wrote (its own are a few deep).
MAX_DEPTH = 32
#: The Ansible connection variables fleetmon resolves (inventory.vars), without the ssh
#: argument strings (a ProxyCommand there may carry a password) and the key file path.
_ANSIBLE_VARS = frozenset(
    {
        "ansible_host",
        "ansible_ssh_host",
        "ansible_port",
        "ansible_ssh_port",
        "ansible_user",
        "ansible_ssh_user",
        "ansible_connection",
        "ansible_become",
        "ansible_become_user",
        "ansible_host_key_checking",
        "ansible_ssh_host_key_checking",
    }
)


def stored_var(name: str) -> bool:
    """True for a variable `fleetmon report DIR` needs to judge the host as the run did:
    fleetmon's own (`fleetmon_thresholds`, `fleetmon_hypervisor`...; the inventory refuses
    unknown `fleetmon_*` names) and the connection variables above."""
    return name.startswith("fleetmon_") or name in _ANSIBLE_VARS


def stored_vars(values: Mapping[str, Any]) -> dict[str, Any]:
    """The variables of a host that a raw folder keeps (see stored_var), when their value is
    plain data: a `!vault` value (still encrypted in `vars`) is not kept, even as text."""
    return {k: v for k, v in values.items() if stored_var(k) and _plain(v)}


def _plain(value: Any) -> bool:
    """Whether a value is made of JSON's types only (walked without recursion)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            if not all(isinstance(k, str) for k in v):
                return False
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
        elif not (v is None or isinstance(v, str | int | float)):
            return False
    return True


def _spec_dict(spec: HostSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "address": spec.address,
        "port": spec.port,
        "user": spec.user,
        "connection": spec.connection,
        "groups": list(spec.groups),
        "host_key_checking": spec.host_key_checking,
        "become": spec.become,
        "vars": stored_vars(spec.vars),
    }


class RawWriter:
    """Writes a --save-raw folder one host at a time, as results arrive; `finish` last.

    Each host's stdout goes to its file at once (so the run never holds every output);
    run.json, written atomically at the end, is what makes the folder a replayable run.
    DIR and DIR/raw are created (0755 less the umask) or must be folders of ours that no
    other user can write to: OptionError (exit 4) otherwise, before any host is collected.
    """

    def __init__(self, folder: str) -> None:
        self.root = Path(folder)
        if str(self.root.parent) not in ("", "."):
            try:
                self.root.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OptionError(
                    f"--save-raw: cannot create {self.root.parent}: {exc.strerror}"
                ) from None
        try:
            self._dir = open_own_folder(str(self.root), label=f"--save-raw {self.root}")
            try:
                raw = self.root / "raw"
                self._raw = open_own_folder("raw", parent_fd=self._dir, label=f"--save-raw {raw}")
            except BaseException:
                os.close(self._dir)
                raise
        except InputError as exc:
            raise OptionError(exc.detail, file=exc.file) from None
        self._entries: dict[int, dict[str, Any]] = {}

    def add(self, index: int, raw: RawResult) -> None:
        """Store the raw result of the host at `index` in the inventory order."""
        if not self._entries:
            self._unmake()
        out_name = f"{index:06d}.out"
        # No fsync per host (it would stall every other host on the event loop): the
        # folder is only a run once run.json, synced and renamed into place, names it.
        try:
            replace_in(self._raw, out_name, (raw.stdout,), sync=False)
        except OSError as exc:
            raise self._failed(f"raw/{out_name}", exc) from None
        self._entries[index] = {
            "spec": _spec_dict(raw.host),
            "status": raw.status.value,
            "reason": raw.reason,
            "exit_status": raw.exit_status,
            "stderr": raw.stderr[:4096],
            "elapsed_s": raw.elapsed_s,
            "nonce": raw.nonce,
            "stdout_file": f"raw/{out_name}",
        }

    def _unmake(self) -> None:
        """An earlier run's run.json removed before its raw/ files are overwritten: until
        this run's is written the folder is no run at all (`report DIR` says so), never
        the earlier run.json over this run's outputs (an interrupted run replayed as
        every host's parse error)."""
        try:
            os.unlink("run.json", dir_fd=self._dir)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise self._failed("run.json", exc) from None

    def finish(self, run: RunInfo) -> None:
        """Write run.json: the run facts and every host added, in inventory order."""
        doc = {
            "format": FORMAT,
            "run": {
                "fleetmon_version": run.fleetmon_version,
                "started_at": run.started_at,
                "interval_s": run.interval_s,
                "inventory": run.inventory,
                "limit": run.limit,
                "host_key_notes": list(run.host_key_notes),
                "duration_s": run.duration_s,
            },
            "hosts": [self._entries[i] for i in sorted(self._entries)],
        }
        try:
            text = json.dumps(doc, indent=1, default=str) + "\n"
            replace_in(self._dir, "run.json", (text,))
            self._drop_stale()
        except OSError as exc:
            raise self._failed("run.json", exc) from None
        finally:
            self.close()

    def _drop_stale(self) -> None:
        """Remove the outputs an earlier run left in a reused folder (a bigger fleet's
        raw/004711.out) that run.json no longer names: only names of our own pattern."""
        kept = {f"{i:06d}.out" for i in self._entries}
        for name in os.listdir(self._raw):
            if _OUT_NAME.fullmatch(name) and name not in kept:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=self._raw)

    def _failed(self, name: str, exc: OSError) -> OutputError:
        # Disk full, quota: the run stops with one line (exit 4), no temporary file left.
        return OutputError(f"cannot write --save-raw {self.root / name}: {exc.strerror or exc}")

    def close(self) -> None:
        """Release the folders (finish does it)."""
        for fd in (self._raw, self._dir):
            if fd >= 0:
                os.close(fd)
        self._raw = self._dir = -1


def save_raw(folder: str, run: RunInfo, raws: Sequence[RawResult]) -> None:
    """Write every host's raw result under `folder` (created if needed)."""
    writer = RawWriter(folder)
    for i, raw in enumerate(raws):
        writer.add(i, raw)
    writer.finish(run)


def load_raw(folder: str, max_bytes: int = DEFAULT_OUTPUT_CAP) -> tuple[RunInfo, list[RawResult]]:
    """Read a folder written by save_raw."""
    run, raws = iter_raw(folder, max_bytes)
    return run, list(raws)


def _interval(value: object) -> float:
    """run.json's interval: a positive number of seconds (a replay divides by it)."""
    seconds = float(value)  # type: ignore[arg-type]
    if isinstance(value, bool) or not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"interval_s: expected a positive number of seconds, got {value!r}")
    return seconds


def iter_raw(folder: str, max_bytes: int = DEFAULT_OUTPUT_CAP) -> tuple[RunInfo, RawHosts]:
    """Read a folder written by save_raw: the run facts and every host's entry now, each
    host's output as it is iterated (read in its turn, so a replay need not hold every
    host's output at once).

    `max_bytes` is the output cap the run had: a larger raw file is refused, as is a raw
    file or run.json that is not a regular file (a FIFO would hang the read) or a symlink.
    Errors are InputErrors naming the file (and in run.json the key): raised here for
    run.json, during iteration for a host's output.
    """
    root = Path(folder)
    index = root / "run.json"
    try:
        doc = strict_json(read_regular(str(index)).decode("utf-8"))
    except FileNotFoundError:
        raise InputError("not a --save-raw folder (no run.json)", file=str(root)) from None
    except NotADirectoryError:  # a file given (`report report.json`): said so, not errno 20
        raise InputError("not a folder: expected a --save-raw folder", file=str(root)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc}", file=str(index)) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg}", file=str(index), line=exc.lineno) from None
    except ValueError as exc:  # NaN, 1e400, nested too deeply
        raise InputError(f"invalid: {exc}", file=str(index)) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InputError(f"format: expected {FORMAT!r}", file=str(index))
    try:
        r = _key(doc, "", "run")
        _check_depth(r, "run")
        run = RunInfo(
            fleetmon_version=str(_key(r, "run.", "fleetmon_version")),
            started_at=_run_start(_key(r, "run.", "started_at")),
            interval_s=_interval(_key(r, "run.", "interval_s")),
            inventory=str(_key(r, "run.", "inventory")),
            limit=_opt_str(r.get("limit")),
            host_key_notes=_strings(r.get("host_key_notes", []), "run.host_key_notes"),
            duration_s=_opt(r.get("duration_s"), float, "run.duration_s"),
        )
        entries = doc["hosts"]
        if not isinstance(entries, list):
            raise TypeError("hosts: expected a list")
        top = str(root.resolve())
        hosts = [_entry(root, top, i, h) for i, h in enumerate(entries)]
        first: dict[str, int] = {}  # a host twice was reported, and counted, twice
        for i, (raw, _) in enumerate(hosts):
            if first.setdefault(raw.host.name, i) != i:
                n = first[raw.host.name]
                raise ValueError(f"hosts[{i}].spec.name: {raw.host.name!r} is hosts[{n}]'s too")
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise InputError(f"malformed entry: {exc}", file=str(index)) from None
    except _Outside as exc:
        raise InputError(f"{exc}: outside the folder", file=str(index)) from None
    present([path for _, path in hosts], max_bytes * _STORED_PER_RECEIVED)
    return run, RawHosts(root, hosts, max_bytes * _STORED_PER_RECEIVED)


class RawHosts(Iterator[RawResult]):
    """The hosts of a raw folder, in order: each entry of run.json read already (`specs`),
    each host's output read from its file when the host is taken."""

    def __init__(self, root: Path, hosts: list[tuple[RawResult, Path]], limit: int) -> None:
        self.specs = tuple(raw.host for raw, _ in hosts)
        self._root = root
        self._hosts = iter(hosts)
        self._limit = limit

    def __next__(self) -> RawResult:
        raw, path = next(self._hosts)
        try:
            stdout = read_regular(str(path), self._limit)
        except TooLarge as exc:
            raise InputError(f"{exc.detail}: {OVER_CAP}", file=exc.file) from None
        except InputError:
            raise
        except OSError as exc:
            raise InputError(f"cannot read raw output: {exc}", file=str(self._root)) from None
        return dataclasses.replace(raw, stdout=stdout.decode("utf-8", errors="replace"))


class _Outside(Exception):
    """A host's stdout_file names a file outside the folder (the message: its key)."""


def _run_start(value: object) -> str:
    try:
        return run_start(value)
    except ValueError as exc:
        raise ValueError(f"run.started_at: {exc}") from None


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise TypeError(f"{where}: expected a list")
    return tuple(str(v) for v in value)


def _opt(value: Any, kind: type[_N], where: str) -> _N | None:
    """An optional number of `kind` (TypeError or ValueError naming the key `where`)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{where}: expected a number, got {type(value).__name__}")
    try:
        return kind(value)
    except OverflowError:  # an integer past a double: no figure fleetmon writes
        digits = len(str(abs(value)))
        raise ValueError(
            f"{where}: an integer of {digits} digits is past the largest number"
        ) from None


def _check_depth(value: Any, where: str) -> None:
    """ValueError when `value` nests deeper than MAX_DEPTH (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ValueError(f"{where}: nested deeper than {MAX_DEPTH} levels")
        if isinstance(v, dict):
            stack.extend((x, depth + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, depth + 1) for x in v)


def _entry(root: Path, top: str, i: int, h: Any) -> tuple[RawResult, Path]:
    """One host's entry, its output not read yet: the result without it, and its file."""
    _check_depth(h, f"hosts[{i}]")
    s = _key(h, f"hosts[{i}].", "spec")
    at = f"hosts[{i}].spec."
    spec = HostSpec(
        name=str(_key(s, at, "name")),
        address=str(_key(s, at, "address")),
        port=integer(_key(s, at, "port"), f"{at}port"),
        user=_opt_str(s.get("user")),
        connection=str(s.get("connection", "ssh")),
        groups=_strings(s.get("groups", []), f"hosts[{i}].spec.groups"),
        host_key_checking=bool(s.get("host_key_checking", True)),
        become=bool(s.get("become", False)),
        vars=stored_vars(obj(s.get("vars", {}), f"{at}vars")),
    )
    stdout_path = root / str(_key(h, f"hosts[{i}].", "stdout_file"))
    if os.path.commonpath([top, stdout_path.resolve()]) != top:
        raise _Outside(f"hosts[{i}].stdout_file")
    raw = RawResult(
        host=spec,
        status=_status(_key(h, f"hosts[{i}].", "status"), f"hosts[{i}].status"),
        reason=_opt_str(h.get("reason")),
        exit_status=_opt(h.get("exit_status"), int, f"hosts[{i}].exit_status"),
        stderr=str(h.get("stderr", "")),
        elapsed_s=_opt(h.get("elapsed_s"), float, f"hosts[{i}].elapsed_s"),
        nonce=str(h.get("nonce", "")),
    )
    return raw, stdout_path
