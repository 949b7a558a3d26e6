"""analyse_many / analyse_iter on any concurrent.futures Executor give exactly the serial
results, in input order (failed and unparsable hosts included); the tasks pickle, so nothing
depends on what a worker inherits; errors and read-ahead are the caller's to see."""

from __future__ import annotations

import multiprocessing
import pickle
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import pytest
from probetext import NONCE, probe_stdout

from fleetmon.analyse.executor import analyse_chunk, analyse_iter, analyse_many
from fleetmon.analyse.pipeline import analyse_host
from fleetmon.model import HostSpec, RawResult, Status


def _raws(n: int = 24) -> list[RawResult]:
    kvm, plain = probe_stdout(kvm=True), probe_stdout()
    out = []
    for i in range(n):
        spec = HostSpec(f"h{i:02d}", f"10.0.0.{i}", groups=("kvm",), vars={"rack": i % 3})
        if i % 7 == 3:
            out.append(RawResult(spec, Status.TIMEOUT, "no answer within 30 s"))
        elif i % 5 == 4:
            out.append(RawResult(spec, Status.OK, None, "garbled\n", 0, nonce=NONCE))
        else:
            out.append(RawResult(spec, Status.OK, None, kvm if i % 2 else plain, 0, nonce=NONCE))
    return out


#: Each kind of executor: none (here), threads, forked processes, and spawned processes
#: (which inherit nothing, as on a cluster: only what is pickled reaches them).
EXECUTORS: dict[str, Callable[[], Executor | None]] = {
    "none": lambda: None,
    "threads": lambda: ThreadPoolExecutor(2),
    "processes": lambda: ProcessPoolExecutor(2),
    "spawned": lambda: ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")),
}


@pytest.mark.parametrize("kind", EXECUTORS)
def test_every_executor_gives_the_serial_results_in_order(kind: str) -> None:
    raws = _raws()
    serial = [analyse_host(r) for r in raws]
    executor = EXECUTORS[kind]()
    try:
        got = analyse_many(raws, executor, chunk=5)
        streamed = list(analyse_iter(iter(raws), executor, chunk=3, ahead=2))
    finally:
        if executor is not None:
            executor.shutdown()
    assert got == streamed == serial
    assert [h.name for h in got] == [f"h{i:02d}" for i in range(24)]
    assert [h.status for h in got].count(Status.PARSE_ERROR) == 4
    assert [h.status for h in got].count(Status.TIMEOUT) == 3
    assert sum(1 for h in got if h.hypervisor == "kvm") == 8
    assert sum(len(h.rows_of("vm")) for h in got) > 0


def test_records_survive_pickling() -> None:
    raws = _raws(8)
    reports = analyse_chunk(raws)
    assert pickle.loads(pickle.dumps(raws)) == raws
    assert pickle.loads(pickle.dumps(reports)) == reports
    assert any(
        h.rows_of("vm") and h.rows_of("disk") and h.rows_of("nic") and h.rows_of("fs")
        for h in reports
    )


def test_empty_input_submits_nothing() -> None:
    lazy = LazyExecutor()
    assert analyse_many([], lazy) == []
    assert lazy.submitted == []


class LazyFuture:
    """A task run only when its result is asked for, so a test sees what was cancelled."""

    def __init__(self, index: int, run: Callable[[], Any], cancelled: list[int]) -> None:
        self.index, self._run, self._cancelled = index, run, cancelled

    def result(self, timeout: float | None = None) -> Any:
        return self._run()

    def cancel(self) -> bool:
        self._cancelled.append(self.index)
        return True


class LazyExecutor:
    def __init__(self) -> None:
        self.submitted: list[int] = []
        self.cancelled: list[int] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> LazyFuture:
        self.submitted.append(len(args[0]))
        index = len(self.submitted) - 1
        return LazyFuture(index, lambda: fn(*args, **kwargs), self.cancelled)


def test_reads_at_most_ahead_tasks_of_hosts_before_the_first_result() -> None:
    raws = _raws()
    read: list[str] = []

    def source() -> Iterator[RawResult]:
        for raw in raws:
            read.append(raw.host.name)
            yield raw

    lazy = LazyExecutor()
    hosts = analyse_iter(source(), lazy, chunk=4, ahead=3)
    assert next(hosts).name == "h00"
    assert len(read) == 12  # 3 tasks of 4 hosts
    assert [h.name for h in hosts] == [f"h{i:02d}" for i in range(1, 24)]
    assert lazy.submitted == [4] * 6
    assert lazy.cancelled == []


def test_a_failed_task_raises_in_its_turn_and_cancels_the_rest() -> None:
    raws: list[Any] = _raws(4)
    raws[1] = None  # not a RawResult: analyse_host raises AttributeError in that task
    lazy = LazyExecutor()
    hosts = analyse_iter(raws, lazy, chunk=1, ahead=3)
    assert next(hosts).name == "h00"
    with pytest.raises(AttributeError):
        next(hosts)
    assert lazy.submitted == [1, 1, 1, 1]
    assert lazy.cancelled == [2, 3]  # submitted, never asked for


def test_a_failure_in_a_worker_process_reaches_the_caller() -> None:
    raws: list[Any] = [*_raws(3), "not a raw result"]
    with ProcessPoolExecutor(2) as pool, pytest.raises(AttributeError, match="'str' object"):
        analyse_many(raws, pool, chunk=2)


@pytest.mark.parametrize(("chunk", "ahead"), [(0, 1), (1, 0)])
def test_chunk_and_ahead_must_be_positive(chunk: int, ahead: int) -> None:
    with pytest.raises(ValueError, match="must be at least 1"):
        list(analyse_iter(_raws(2), LazyExecutor(), chunk=chunk, ahead=ahead))


def test_the_command_lines_pool_leaves_ctrl_c_to_the_parent() -> None:
    import signal

    from fleetmon.cli.pool import process_pool

    with process_pool(2) as pool:
        assert pool.submit(signal.getsignal, signal.SIGINT).result() == signal.SIG_IGN
        assert analyse_many(_raws(6), pool, chunk=2) == [analyse_host(r) for r in _raws(6)]
