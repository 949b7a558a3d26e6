"""Benchmark: fleetmon against a real OpenSSH sshd on loopback, beside its baselines (I/O).

For each N, in one run and interleaved round by round (the machine is shared and noisy):
the bare asyncssh loop, fleetmon in-process (collect + pipeline), the whole `fleetmon run`
CLI, parallel-ssh and Ansible `-m raw`, all running the same two-sample probe. Figures are
medians of the rounds; ratios are against the bare loop of the same run.
    .venv/bin/python benchmarks/fleet.py [--hosts 100 300] [--rounds 3] [--forks 100]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from measure import (
    BENCH_DIR,
    FLEETMON,
    REPO,
    VENV_PY,
    Measured,
    log,
    machine,
    ratio,
    run_measured,
    save,
    summarise,
    table,
)
from peers import (
    ansible_inventory,
    ansible_run,
    command_line,
    count_ansible_ok,
    ensure_peers,
    pssh_argv,
)

sys.path.insert(0, str(REPO / "tests"))
import sshd_util  # tests/ is put on sys.path above

from fleetmon.collect.probe import REMOTE_COMMAND, ProbeOptions, build_script

CLIENTS = ("bare", "collect", "cli", "pssh", "ansible")
#: Targets of issue 2 and issue 7 (fleetmon / baseline).
TARGETS = {"wall_vs_bare": 1.2, "cpu_vs_bare": 1.5, "cpu_vs_pssh": 1 / 3, "cpu_vs_ansible": 0.1}


@contextlib.contextmanager
def bench_sshd(extra_config: str = "") -> Iterator[sshd_util.Sshd]:
    """A loopback sshd (tests/sshd_util.py) and the user it logs in, both gone afterwards.

    The user is one of its own (sshd_util.create_user: its shell /bin/sh, no rc files). As
    root, every session would run this machine's ~/.bashrc (bash sources it under sshd),
    whose `pyenv init` costs ~180 ms of server CPU per host and would swamp what is measured.
    """
    user = sshd_util.create_user("bench")
    try:
        server = sshd_util.start_sshd(user=user, extra_config=extra_config)
        try:
            yield server
        finally:
            server.stop()
    finally:
        sshd_util.remove_user(user)


def make_job(
    hosts: Sequence[tuple[str, str, int]],
    *,
    user: str,
    key: str,
    known_hosts: str,
    forks: int,
    interval_s: float = 1.0,
    connect_timeout_s: float = 10.0,
    hypervisor: str = "none",
) -> dict[str, Any]:
    """What every client needs: hosts (name, address, port), credentials, probe, forks.

    The probe skips hypervisor detection by default (`none`): whether libvirtd happens to run
    on this shared machine must not change the server's work between rounds.
    """
    script = build_script(ProbeOptions(interval_s=interval_s, hypervisor=hypervisor))
    return {
        "hosts": [list(h) for h in hosts],
        "user": user,
        "key": key,
        "known_hosts": known_hosts,
        "forks": forks,
        "interval_s": interval_s,
        "connect_timeout_s": connect_timeout_s,
        "hypervisor": hypervisor,
        "command_line": command_line(REMOTE_COMMAND, script),
    }


def fleetmon_inventory(job: dict[str, Any], path: Path) -> Path:
    """The job's hosts as an inventory fleetmon and Ansible both read."""
    return ansible_inventory(job, path)


def cli_argv(
    inventory: Path, job: dict[str, Any], out: Path, *extra: str, history: Path | None = None
) -> list[str]:
    """`fleetmon run INVENTORY --format json -o OUT` with the job's forks and known_hosts,
    recording its history as a default run does, in `history` (default: history.sqlite
    beside OUT, in the benchmark's temporary folder): never the machine's own history."""
    return [
        str(FLEETMON),
        "run",
        str(inventory),
        "--format",
        "json",
        "-o",
        str(out),
        "--no-lock",
        "-q",
        "-f",
        str(job["forks"]),
        "--interval",
        str(job["interval_s"]),
        "--known-hosts",
        job["known_hosts"],
        "--history",
        str(history or out.parent / "history.sqlite"),
        *extra,
    ]


def cli_ok(out: Path) -> int:
    """Hosts with status ok in a JSON report (0 when there is none)."""
    try:
        doc = json.loads(out.read_text())
    except (OSError, json.JSONDecodeError):
        return 0
    return sum(1 for h in doc.get("hosts", []) if h.get("status") == "ok")


def run_client(name: str, job: dict[str, Any], work: Path, history: Path | None = None) -> Measured:
    """One measured run of one client on the job (`history`: the CLI's, see cli_argv)."""
    job_path = work / "job.json"
    if not job_path.exists():
        job_path.write_text(json.dumps(job))
    inventory = work / "inventory.yaml"
    if not inventory.exists():
        fleetmon_inventory(job, inventory)
    timeout = 600.0
    if name in ("bare", "collect"):
        return run_measured(
            [str(VENV_PY), str(BENCH_DIR / "clients.py"), name, str(job_path)], timeout_s=timeout
        )
    if name == "cli":
        out = work / "report.json"
        out.unlink(missing_ok=True)
        m = run_measured(cli_argv(inventory, job, out, history=history), timeout_s=timeout)
        return _with_summary(m, {"ok": cli_ok(out), "hosts": len(job["hosts"])})
    if name == "pssh":
        return run_measured(pssh_argv(job_path), timeout_s=timeout)
    if name == "ansible":
        argv, env = ansible_run(job, inventory, work)
        out = work / "ansible.out"
        m = run_measured(argv, env=env, cwd=work, stdout_path=out, timeout_s=timeout)
        ok = count_ansible_ok(out.read_text(errors="replace"))
        return _with_summary(m, {"ok": ok, "hosts": len(job["hosts"])})
    raise ValueError(name)


def _with_summary(m: Measured, summary: dict[str, Any]) -> Measured:
    return dataclasses.replace(m, summary=summary)


def measure_clients(
    job: dict[str, Any],
    clients: Sequence[str],
    rounds: int,
    work: Path,
    *,
    rounds_of: Callable[[str], int] | None = None,
    history: Path | None = None,
) -> dict[str, dict[str, Any]]:
    """Every client `rounds` times, interleaved; their median figures by client name
    (`history`: the CLI's history file, see cli_argv)."""
    runs: dict[str, list[Measured]] = {c: [] for c in clients}
    n = len(job["hosts"])
    for r in range(rounds):
        for c in clients:
            if rounds_of is not None and r >= rounds_of(c):
                continue
            m = run_client(c, job, work, history)
            ok = m.summary.get("ok")
            log(
                f"  N={n} {c:8s} round {r + 1}: wall {m.wall_s:6.2f} s  cpu {m.cpu_s:6.2f} s  "
                f"rss {m.maxrss_mb:5.0f} MB  ok {ok}/{n}"
            )
            if ok != n:
                log(f"  {c}: only {ok}/{n} hosts ok; stderr: {m.stderr_tail[-600:]!r}")
            runs[c].append(m)
    return {c: summarise(rs, n) for c, rs in runs.items() if rs}


def ratios(res: dict[str, dict[str, Any]], who: str) -> dict[str, float | None]:
    """`who` against the baselines: wall and CPU per host."""

    def cpu(c: str) -> float | None:
        return res[c]["cpu_ms_per_host"] if c in res else None

    def wall(c: str) -> float | None:
        return res[c]["wall_s"] if c in res else None

    return {
        "wall_vs_bare": ratio(wall(who), wall("bare")),
        "cpu_vs_bare": ratio(cpu(who), cpu("bare")),
        "cpu_vs_pssh": ratio(cpu(who), cpu("pssh")),
        "cpu_vs_ansible": ratio(cpu(who), cpu("ansible")),
    }


def bench(
    sizes: Sequence[int], rounds: int, forks: int, peers: bool, ansible_rounds: int
) -> dict[str, Any]:
    """Run the whole real-sshd benchmark; return the JSON document."""
    clients = list(CLIENTS)
    if peers:
        why = ensure_peers()
        if why:
            log(f"peers skipped: {why}")
            clients = [c for c in clients if c not in ("pssh", "ansible")]
    else:
        clients = [c for c in clients if c not in ("pssh", "ansible")]
    doc: dict[str, Any] = {"machine": machine(), "forks": forks, "rounds": rounds, "sizes": {}}
    with bench_sshd() as server:
        for n in sizes:
            width = len(str(n))
            hosts = [(f"h{i:0{width}d}", server.host, server.port) for i in range(1, n + 1)]
            job = make_job(
                hosts,
                user=server.user,
                key=str(server.client_key),
                known_hosts=str(server.known_hosts),
                forks=forks,
            )
            log(f"real sshd, N={n}, forks {forks}, clients {', '.join(clients)}")
            with tempfile.TemporaryDirectory(prefix=f"fleetmon-bench-{n}-") as tmp:
                res = measure_clients(
                    job,
                    clients,
                    rounds,
                    Path(tmp),
                    rounds_of=lambda c: ansible_rounds if c == "ansible" else rounds,
                )
            doc["sizes"][str(n)] = {
                "clients": res,
                "ratios": {who: ratios(res, who) for who in ("collect", "cli") if who in res},
            }
    return doc


def render(doc: dict[str, Any]) -> str:
    """The figures table and the ratio table."""
    rows = []
    ratio_rows = []
    for n, part in doc["sizes"].items():
        for c, s in part["clients"].items():
            ok = f"{s['summary'].get('ok')}/{n}"
            rows.append(
                (n, c, s["wall_s"], s["cpu_ms_per_host"], s["maxrss_mb"], s["tree_rss_mb"], ok)
            )
        for who, r in part["ratios"].items():
            ratio_rows.append((n, who, *(r[k] for k in TARGETS)))
    heads = ("N", "client", "wall s", "CPU ms/host", "peak RSS MB", "tree RSS MB", "ok")
    ratio_heads = ("N", "fleetmon", *(f"{k} (<= {v:.2g})" for k, v in TARGETS.items()))
    return table(rows, heads) + "\n\n" + table(ratio_rows, ratio_heads)


def main(argv: list[str] | None = None) -> int:
    """Run, print the tables, save results/fleet.json."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--hosts", type=int, nargs="+", default=[100, 300])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ansible-rounds", type=int, default=1)
    ap.add_argument("--forks", type=int, default=100)
    ap.add_argument("--no-peers", action="store_true")
    args = ap.parse_args(argv)
    doc = bench(args.hosts, args.rounds, args.forks, not args.no_peers, args.ansible_rounds)
    print(render(doc))
    print(f"saved {save('fleet', doc)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
