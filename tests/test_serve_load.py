"""`fleetmon serve` under an operator's load: many scrapes at once from one address, and
hundreds of clients from as many addresses holding half a request (slowloris) or never
reading their answers while a scrape comes (a real process, real sockets); and a page asked
for by many at once rendered once."""

from __future__ import annotations

import gzip
import http.client
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from fleetmon.cli.servenet import MAX_CLIENTS, STALL_S
from fleetmon.cli.servepages import GZIP_LEVEL, Holder
from tests.livesim import simulated_fleet
from tests.test_serve import Served, _serve


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with simulated_fleet(tmp_path_factory.mktemp("load"), hosts=4, kind="linux") as inv:
        served = _serve(inv)
        try:
            served.wait_ready(live=4)
            yield served
        finally:
            code, err = served.stop()
            assert code == 0, err


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _scrape(conn: http.client.HTTPConnection) -> int | str:
    """GET /metrics on `conn`: its status (the body must be a whole exposition), or what
    went wrong."""
    try:
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        body = response.read()
    except OSError as exc:
        return type(exc).__name__
    assert response.status != 200 or (b"\n# TYPE " in body and body.endswith(b"\n"))
    return response.status


def test_fifty_scrapes_at_once_from_one_address_are_all_answered(served: Served) -> None:
    """50 connections from 127.0.0.1 opened together, then each scraping /metrics: past the
    16th (the per-client cap) they were closed at their accept, 34 of 50 failing with no
    answer (RemoteDisconnected)."""
    conns = [http.client.HTTPConnection("127.0.0.1", served.port, timeout=60) for _ in range(50)]
    for conn in conns:
        conn.connect()
    start = threading.Barrier(len(conns))
    results: list[int | str] = []

    def scrape(conn: http.client.HTTPConnection) -> None:
        start.wait()
        results.append(_scrape(conn))

    threads = [threading.Thread(target=scrape, args=(conn,)) for conn in conns]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        for conn in conns:
            conn.close()
    assert Counter(results) == {200: 50}


def test_half_sent_requests_from_many_addresses_keep_no_scrape_out(served: Served) -> None:
    """200 clients, each from an address of its own, send half a request and stop: the
    first 64 took every thread and every scrape was hung up on at its accept until their
    head timeout (10 s), and again as soon as they came back. Now a scrape takes the place
    of the one waiting longest for its request: answered at once. The descriptors stay
    bounded (a thread and a socket for MAX_CLIENTS, not one a client) and come back to
    where they were once the clients leave."""
    pid = served.proc.pid
    before = _fds(pid)
    stuck = []
    try:
        for i in range(200):
            s = socket.socket()
            s.bind((f"127.0.{1 + i // 100}.{2 + i % 100}", 0))
            s.connect(("127.0.0.1", served.port))
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: fleetmon\r\n")
            stuck.append(s)
        for _ in range(3):
            conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=60)
            try:
                started = time.monotonic()
                assert _scrape(conn) == 200
                assert time.monotonic() - started < 5.0
            finally:
                conn.close()
        held = _fds(pid)
        assert held <= before + 2 * MAX_CLIENTS, (before, held)
    finally:
        for s in stuck:
            s.close()
    end = time.monotonic() + 60
    while _fds(pid) > before and time.monotonic() < end:
        time.sleep(0.2)
    assert _fds(pid) <= before, (before, held)


def test_a_page_asked_for_by_many_at_once_is_rendered_once() -> None:
    """A tick's first requests arrive together (scrapers aligned on the same interval, a
    dashboard's browsers): each rendered the page, 20 clients 20 renderings of the same
    report. Now the others wait for the one rendering it, gzipped or not."""
    holder = Holder(1.0)
    report = object()
    made: list[object] = []
    start = threading.Barrier(20)

    def make(r: object) -> tuple[str, str]:
        made.append(r)
        time.sleep(0.3)  # a large fleet's HTML
        return "page\n", ""

    got: list[bytes] = []

    def ask(i: int) -> None:
        start.wait()
        got.append(holder.page("html", report, make, gzipped=i % 2 == 0))  # type: ignore[arg-type]

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert made == [report]
    assert sorted(set(got)) == sorted({b"page\n", gzip.compress(b"page\n", GZIP_LEVEL, mtime=0)})
    assert len(got) == 20


def test_clients_never_reading_their_answers_keep_no_scrape_out(served: Served) -> None:
    """150 clients, each from an address of its own, pipelining requests and never reading
    the answers: every thread was held by a write for the idle timeout (120 s), each scrape
    hung up on at its accept meanwhile. Now, once their answers have taken STALL_S, a
    scrape takes the place of one of them."""
    stalled = []
    try:
        for i in range(150):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.bind((f"127.0.{3 + i // 100}.{2 + i % 100}", 0))
            s.connect(("127.0.0.1", served.port))
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: fleetmon\r\n\r\n" * 100)
            stalled.append(s)
        started = time.monotonic()
        results: list[int | str] = []
        while time.monotonic() - started < 40 and results[-1:] != [200]:
            conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=60)
            try:
                results.append(_scrape(conn))
            finally:
                conn.close()
            time.sleep(0.5)
        assert results[-1] == 200, Counter(results)
        assert time.monotonic() - started < STALL_S + 20
    finally:
        for s in stalled:
            s.close()
