"""The streaming run path: collect_each hands hosts over as they finish, RawWriter stores
them one by one, the report is built from hosts already analysed."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from clirun import fleetmon

from fleetmon.analyse.pipeline import analyse_host, build_report, report_from_hosts
from fleetmon.collect.fake import FakeAnswer, fake_transport
from fleetmon.collect.probe import ProbeOptions
from fleetmon.collect.runner import CollectOptions, collect_each
from fleetmon.errors import InputError
from fleetmon.io.rawstore import RawWriter, iter_raw, load_raw, save_raw
from fleetmon.model import HostSpec, RawResult, RunInfo, Status

#: How long each fake host takes, by name: they finish in the order b, c, a.
DELAYS_S = {"a": 0.3, "b": 0.0, "c": 0.1, "slow": 30.0}


ANSWERS = {name: FakeAnswer(f"out of {name}", delay) for name, delay in DELAYS_S.items()}


def _hosts(*names: str) -> list[HostSpec]:
    return [HostSpec(name=n, address="127.0.0.1", connection="fake") for n in names]


def _collect(monkeypatch: pytest.MonkeyPatch, hosts: list[HostSpec], handle: object) -> object:
    with fake_transport(ANSWERS):
        return asyncio.run(
            collect_each(hosts, CollectOptions(), lambda _: ProbeOptions(), handle)  # type: ignore[arg-type]
        )


def test_each_host_is_handed_over_as_it_finishes_results_in_inventory_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[int, str, str]] = []

    def handle(index: int, raw: RawResult) -> str:
        seen.append((index, raw.host.name, raw.stdout))
        return raw.host.name.upper()

    results = _collect(monkeypatch, _hosts("a", "b", "c"), handle)
    assert seen == [(1, "b", "out of b"), (2, "c", "out of c"), (0, "a", "out of a")]
    assert results == ["A", "B", "C"]


def test_a_failing_handler_stops_the_run_and_is_raised_as_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def handle(index: int, raw: RawResult) -> None:
        raise OSError(28, "No space left on device")

    started = time.monotonic()
    with pytest.raises(OSError, match="No space left on device"):
        _collect(monkeypatch, _hosts("b", "slow"), handle)
    # The 30 s host was cancelled, not waited for.
    assert time.monotonic() - started < 5.0


def _raw(name: str, status: Status = Status.OK, stdout: str = "", stderr: str = "") -> RawResult:
    spec = HostSpec(name=name, address=f"{name}.example", groups=("kvm",), vars={"x_token": "s"})
    return RawResult(spec, status, None, stdout, 0, stderr, 1.25, "00ff")


RUN = RunInfo(
    fleetmon_version="0.0.test",
    started_at="2026-11-26T05:00:00Z",
    interval_s=1.0,
    inventory="inv.yaml",
)


def test_raw_writer_out_of_order_writes_what_save_raw_writes(tmp_path: Path) -> None:
    raws = [
        _raw("h0", stdout="zero\n"),
        _raw("h1", Status.UNREACHABLE),
        _raw("h2", stdout="two é\n", stderr="e" * 5000),
    ]
    save_raw(str(tmp_path / "whole"), RUN, raws)
    writer = RawWriter(str(tmp_path / "stream"))
    for i in (2, 0, 1):
        writer.add(i, raws[i])
    writer.finish(RUN)
    for rel in ("run.json", "raw/000000.out", "raw/000001.out", "raw/000002.out"):
        assert (tmp_path / "stream" / rel).read_bytes() == (tmp_path / "whole" / rel).read_bytes()
    assert sorted(p.name for p in (tmp_path / "stream" / "raw").iterdir()) == [
        "000000.out",
        "000001.out",
        "000002.out",
    ]  # no temporary file left behind
    run, loaded = load_raw(str(tmp_path / "stream"))
    assert [r.host.name for r in loaded] == ["h0", "h1", "h2"]
    assert [r.stdout for r in loaded] == ["zero\n", "", "two é\n"]
    assert loaded[2].stderr == "e" * 4096
    assert loaded[0].host.vars == {}  # x_token is no variable fleetmon reads: never stored
    assert run.started_at == RUN.started_at


def test_report_from_analysed_hosts_equals_build_report() -> None:
    raws = [_raw("h0", stdout="garbage"), _raw("h1", Status.TIMEOUT)]
    hosts = [analyse_host(r) for r in raws]
    assert report_from_hosts(hosts, RUN) == build_report(raws, RUN)
    assert [h.status for h in hosts] == [Status.PARSE_ERROR, Status.TIMEOUT]


def test_run_streams_three_local_hosts_and_report_replays_them(tmp_path: Path) -> None:
    inv = tmp_path / "inv.yaml"
    inv.write_text(
        "all:\n  hosts:\n"
        + "".join(f"    l{i}:\n      ansible_connection: local\n" for i in (3, 1, 2)),
        encoding="utf-8",
    )
    raw, first = tmp_path / "raw", tmp_path / "first.json"
    r = fleetmon(
        "run", inv, "--interval", "0.3", "--format", "json", "-o", first, "--save-raw", raw
    )
    assert r.returncode in (0, 1, 2, 3), r.stderr  # health varies with this machine
    a = json.loads(first.read_text())
    assert [h["name"] for h in a["hosts"]] == ["l3", "l1", "l2"]
    assert [h["status"] for h in a["hosts"]] == ["ok"] * 3
    index = json.loads((raw / "run.json").read_text())
    assert [h["spec"]["name"] for h in index["hosts"]] == ["l3", "l1", "l2"]
    assert [h["stdout_file"] for h in index["hosts"]] == [
        "raw/000000.out",
        "raw/000001.out",
        "raw/000002.out",
    ]
    again = fleetmon("report", raw, "--format", "json")
    assert again.returncode == r.returncode, again.stderr
    b = json.loads(again.stdout)
    assert [(h["name"], h["metrics"]) for h in b["hosts"]] == [
        (h["name"], h["metrics"]) for h in a["hosts"]
    ]


def _saved(tmp_path: Path) -> Path:
    folder = tmp_path / "saved"
    save_raw(str(folder), RUN, [_raw("h0", stdout="zero\n"), _raw("h1", stdout="one\n")])
    return folder


def test_iter_raw_reads_each_host_output_in_its_turn(tmp_path: Path) -> None:
    folder = _saved(tmp_path)
    run, raws = iter_raw(str(folder))
    assert run == RUN
    first = next(raws)
    assert (first.host.name, first.stdout) == ("h0", "zero\n")
    (folder / "raw" / "000001.out").unlink()  # not read yet: its absence shows only now
    with pytest.raises(InputError, match=r"cannot read raw output: .*000001\.out"):
        next(raws)


def test_raw_folder_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"not a --save-raw folder \(no run.json\)"):
        iter_raw(str(tmp_path))
    folder = _saved(tmp_path)
    index = folder / "run.json"
    doc = json.loads(index.read_text())
    doc["hosts"][1]["stdout_file"] = "../../etc/passwd"
    index.write_text(json.dumps(doc))
    with pytest.raises(InputError) as err:
        load_raw(str(folder))
    assert str(err.value) == f"{index}: hosts[1].stdout_file: outside the folder"
    doc["hosts"] = {"h0": {}}
    index.write_text(json.dumps(doc))
    with pytest.raises(InputError) as err:
        load_raw(str(folder))
    assert str(err.value) == f"{index}: malformed entry: hosts: expected a list"


def test_report_analyses_over_worker_processes_reading_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from concurrent.futures import Future

    from probetext import NONCE, probe_stdout

    from fleetmon.cli import report as commands
    from fleetmon.cli.main import main
    from fleetmon.cli.pool import process_pool
    from fleetmon.render.json import report_dict

    raws = [
        RawResult(
            HostSpec(name=f"h{i}", address=f"192.0.2.{i}", groups=("kvm",)),
            Status.OK,
            stdout=probe_stdout(kvm=i % 2 == 0),
            nonce=NONCE,
        )
        for i in range(7)
    ]
    save_raw(str(tmp_path), RunInfo("0.1.0", "2026-11-26T03:00:00Z", 1.0, "inv"), raws)
    # Tasks of 2 hosts, at most 2 in flight, on 2 worker processes: 2 + 2 + 2 + 1.
    monkeypatch.setattr(commands, "MIN_HOSTS", 2)
    monkeypatch.setattr(commands, "CHUNK", 2)
    monkeypatch.setattr(commands, "AHEAD", 2)
    monkeypatch.setattr(commands, "default_workers", lambda: 2)
    tasks: list[list[str]] = []

    class Recording:
        """The real pool (fleetmon.cli.pool), its tasks noted as they are submitted."""

        def __init__(self, workers: int) -> None:
            self.pool = process_pool(workers)

        def __enter__(self) -> Recording:
            self.pool.__enter__()
            return self

        def __exit__(self, *exc: object) -> None:
            self.pool.shutdown()

        def submit(self, fn: Any, /, *args: Any) -> Future[Any]:
            tasks.append([raw.host.name for raw in args[0]])
            return self.pool.submit(fn, *args)

    monkeypatch.setattr(commands, "process_pool", Recording)
    code = main(["report", str(tmp_path), "--no-rules", "--format", "json"])
    assert tasks == [["h0", "h1"], ["h2", "h3"], ["h4", "h5"], ["h6"]]
    doc = json.loads(capsys.readouterr().out)
    expected = report_dict(build_report(raws, RunInfo("0.1.0", "2026-11-26T03:00:00Z", 1.0, "inv")))
    assert code == expected["exit_code"] == 0
    assert [h["name"] for h in doc["hosts"]] == [f"h{i}" for i in range(7)]
    assert doc["hosts"] == expected["hosts"]


@pytest.mark.parametrize(("hosts", "workers"), [(3, 2), (7, 1)])
def test_report_of_few_hosts_or_one_core_starts_no_pool(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    hosts: int,
    workers: int,
) -> None:
    from probetext import NONCE, probe_stdout

    from fleetmon.cli import report as commands
    from fleetmon.cli.main import main

    raws = [
        RawResult(
            HostSpec(name=f"h{i}", address="192.0.2.1"),
            Status.OK,
            stdout=probe_stdout(),
            nonce=NONCE,
        )
        for i in range(hosts)
    ]
    save_raw(str(tmp_path), RunInfo("0.1.0", "2026-11-26T03:00:00Z", 1.0, "inv"), raws)
    monkeypatch.setattr(commands, "MIN_HOSTS", 4)
    monkeypatch.setattr(commands, "default_workers", lambda: workers)

    def no_pool(workers: int) -> None:
        raise AssertionError("a pool was started")

    monkeypatch.setattr(commands, "process_pool", no_pool)
    assert main(["report", str(tmp_path), "--no-rules", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [h["name"] for h in doc["hosts"]] == [f"h{i}" for i in range(hosts)]


def test_a_big_output_is_handled_off_the_loop_while_the_others_go_on() -> None:
    # "b" is big (offloaded): its handler waits for "c" to be handed over. Were it on the
    # loop, c could not finish meanwhile: b would give up after 20 s and end first.
    import threading

    loop_thread = threading.get_ident()
    events: list[str] = []
    where: dict[str, bool] = {}
    c_done = threading.Event()

    def handle(index: int, raw: RawResult) -> str:
        name = raw.host.name
        where[name] = threading.get_ident() == loop_thread
        if name == "b":
            c_done.wait(20)
        events.append(f"end {name}")
        if name == "c":
            c_done.set()
        return name

    answers = {"b": FakeAnswer("x" * 100, 0.0), "c": FakeAnswer("small", 0.2)}

    async def go() -> list[str]:
        return await collect_each(
            _hosts("b", "c"),
            CollectOptions(),
            lambda _: ProbeOptions(),
            handle,
            offload=lambda raw: len(raw.stdout) >= 100,
        )

    with fake_transport(answers):
        results = asyncio.run(go())
    assert results == ["b", "c"]
    assert where == {"b": False, "c": True}
    assert events == ["end c", "end b"]
