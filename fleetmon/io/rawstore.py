"""Raw-output store (I/O): `run --save-raw DIR` writes it, `fleetmon report DIR` replays it.

Layout: `DIR/run.json` (run facts and one entry per host: spec, status, reason, nonce) and
`DIR/raw/<n>.out` (the host's probe stdout, exactly as received). Variables that look like
secrets (passwords, passphrases, tokens) are never stored.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from fleetmon.errors import InputError
from fleetmon.io.atomic import write_atomic
from fleetmon.model import HostSpec, RawResult, RunInfo, Status

FORMAT = "fleetmon.raw/1"
SECRET_VAR = re.compile(r"pass|secret|token|vault|private_key(?!_file)", re.IGNORECASE)


def public_vars(spec: HostSpec) -> dict[str, Any]:
    """A host's variables without anything that looks like a secret."""
    return {k: v for k, v in spec.vars.items() if not SECRET_VAR.search(k)}


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
        "vars": public_vars(spec),
    }


class RawWriter:
    """Writes a --save-raw folder one host at a time, as results arrive; `finish` last.

    Each host's stdout goes to its file at once (so the run never holds every output);
    run.json, written atomically at the end, is what makes the folder a replayable run.
    """

    def __init__(self, folder: str) -> None:
        self.root = Path(folder)
        (self.root / "raw").mkdir(parents=True, exist_ok=True)
        self._entries: dict[int, dict[str, Any]] = {}

    def add(self, index: int, raw: RawResult) -> None:
        """Store the raw result of the host at `index` in the inventory order."""
        out_name = f"{index:06d}.out"
        # No fsync per host (it would stall every other host on the event loop): the
        # folder is only a run once run.json, synced and renamed into place, names it.
        tmp = self.root / "raw" / f".{out_name}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(raw.stdout)
        os.replace(tmp, self.root / "raw" / out_name)
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
            },
            "hosts": [self._entries[i] for i in sorted(self._entries)],
        }
        write_atomic(self.root / "run.json", json.dumps(doc, indent=1, default=str) + "\n")


def save_raw(folder: str, run: RunInfo, raws: Sequence[RawResult]) -> None:
    """Write every host's raw result under `folder` (created if needed)."""
    writer = RawWriter(folder)
    for i, raw in enumerate(raws):
        writer.add(i, raw)
    writer.finish(run)


def load_raw(folder: str) -> tuple[RunInfo, list[RawResult]]:
    """Read a folder written by save_raw."""
    run, raws = iter_raw(folder)
    return run, list(raws)


def iter_raw(folder: str) -> tuple[RunInfo, Iterator[RawResult]]:
    """Read a folder written by save_raw: the run facts now, each host as it is iterated
    (its output read in its turn, so a replay need not hold every host's output at once).

    Errors are InputErrors, raised here for the index and during iteration for a host.
    """
    root = Path(folder)
    index = root / "run.json"
    try:
        doc = json.loads(index.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("not a --save-raw folder (no run.json)", file=str(root)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc}", file=str(index)) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg}", file=str(index), line=exc.lineno) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InputError(f"format: expected {FORMAT!r}", file=str(index))
    try:
        r = doc["run"]
        run = RunInfo(
            fleetmon_version=str(r["fleetmon_version"]),
            started_at=str(r["started_at"]),
            interval_s=float(r["interval_s"]),
            inventory=str(r["inventory"]),
            limit=r.get("limit"),
            host_key_notes=tuple(r.get("host_key_notes", ())),
        )
        entries = doc["hosts"]
        if not isinstance(entries, list):
            raise TypeError("hosts: expected a list")
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"malformed entry: {exc}", file=str(index)) from None
    return run, _hosts(root, index, entries)


def _hosts(root: Path, index: Path, entries: list[Any]) -> Iterator[RawResult]:
    top = str(root.resolve())
    for i, h in enumerate(entries):
        try:
            raw = _entry(root, top, index, i, h)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed entry: {exc}", file=str(index)) from None
        except OSError as exc:
            raise InputError(f"cannot read raw output: {exc}", file=str(root)) from None
        yield raw


def _entry(root: Path, top: str, index: Path, i: int, h: Any) -> RawResult:
    s = h["spec"]
    spec = HostSpec(
        name=str(s["name"]),
        address=str(s["address"]),
        port=int(s["port"]),
        user=s.get("user"),
        connection=str(s.get("connection", "ssh")),
        groups=tuple(s.get("groups", ())),
        host_key_checking=bool(s.get("host_key_checking", True)),
        become=bool(s.get("become", False)),
        vars=dict(s.get("vars", {})),
    )
    stdout_path = root / str(h["stdout_file"])
    if os.path.commonpath([top, stdout_path.resolve()]) != top:
        raise InputError(f"hosts[{i}].stdout_file: outside the folder", file=str(index))
    return RawResult(
        host=spec,
        status=Status(h["status"]),
        reason=h.get("reason"),
        stdout=stdout_path.read_text(encoding="utf-8", errors="replace"),
        exit_status=h.get("exit_status"),
        stderr=str(h.get("stderr", "")),
        elapsed_s=h.get("elapsed_s"),
        nonce=str(h.get("nonce", "")),
    )
