"""`fleetmon serve` at its edges: before the first tick, methods other than GET, basic auth
given what bcrypt refuses."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import http.client
import json
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest

from fleetmon.cli.servehttp import Server
from fleetmon.cli.servepages import Holder
from fleetmon.cli.webconfig import BasicAuth, parse_web_config, read_web_config
from fleetmon.errors import OptionError
from tests.livesim import simulated_fleet
from tests.sshd_util import free_port
from tests.test_serve import Served, _serve


def _listening(served: Served) -> None:
    end = time.monotonic() + 30
    while time.monotonic() < end:
        try:
            served.get("/healthz")
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(served.stop())


def test_no_page_before_the_first_tick(tmp_path: Path) -> None:
    """Hosts still connecting were a fleet down (status skipped, exit code 3) to the first
    scrapes; every page says `no tick yet` as /healthz does, then the tick is served."""
    with simulated_fleet(tmp_path, hosts=3, kind="linux", extra=("--latency-ms", "1500")) as inv:
        served = _serve(inv)
        try:
            _listening(served)
            for path in ("/metrics", "/api/report", "/", "/healthz"):
                code, headers, body = served.get(path)
                assert (code, body) == (503, b"no tick yet: the first samples are on their way\n")
                assert headers["retry-after"] == "1"
            doc = served.wait_ready(live=3)
            assert {h["status"] for h in doc["hosts"]} == {"ok"}
            assert served.get("/metrics")[0] == 200
        finally:
            code, err = served.stop()
    assert code == 0, err


def test_a_fleet_all_down_is_reported(tmp_path: Path) -> None:
    """No host ever gives a pair: once every one is down, that is the report (not 503 for
    ever), and /healthz says so: it said `no tick yet: the first samples are on their way`
    for ever, while the pages said every host unreachable."""
    inv = tmp_path / "inv.yaml"
    port = free_port()
    inv.write_text(
        "all:\n  hosts:\n"
        + "".join(f"    gone{i}:\n      ansible_host: 127.0.0.1\n      ansible_port: {port}\n"
                  for i in range(2))
    )  # fmt: skip
    served = _serve(inv)
    try:
        _listening(served)
        end = time.monotonic() + 60
        while (code := served.get("/api/report")[0]) == 503 and time.monotonic() < end:
            time.sleep(0.2)
        assert code == 200
        hosts = json.loads(served.get("/api/report")[2])["hosts"]
        assert [h["status"] for h in hosts] == ["unreachable"] * 2
        code, _, body = served.get("/healthz")
        assert code == 503  # no sample, ever
        assert body == (
            b"down: no host live: no sample yet; 0/2 hosts live; not live: unreachable 2; "
            b"0 samples analysed; 0 passed over\n"
        )
    finally:
        code, err = served.stop()
    assert code == 0, err


def test_healthz_counts_the_hosts_not_live(tmp_path: Path) -> None:
    """Some hosts live: 200, with the others counted by status."""
    port = free_port()
    inv = tmp_path / "inv.yaml"
    inv.write_text(
        "all:\n  hosts:\n    here:\n      ansible_connection: local\n"
        f"    gone:\n      ansible_host: 127.0.0.1\n      ansible_port: {port}\n"
    )
    served = _serve(inv)
    try:
        served.wait_ready(live=1)
        end = time.monotonic() + 60
        while b"not live: unreachable 1" not in (body := served.get("/healthz")[2]):
            assert time.monotonic() < end, body
            time.sleep(0.2)
        code, _, body = served.get("/healthz")
        assert code == 200
        assert re.fullmatch(
            rb"ok: last sample \d+\.\d s ago; 1/2 hosts live; not live: unreachable 1; "
            rb"\d+ samples analysed; \d+ passed over\n",
            body,
        ), body
    finally:
        code, err = served.stop()
    assert code == 0, err


@contextlib.contextmanager
def _in_process(auth: BasicAuth) -> Iterator[tuple[str, int]]:
    server = Server(("127.0.0.1", 0), Holder(1.0), auth, None)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[0], server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _status(
    address: tuple[str, int], method: str, headers: dict[str, str]
) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection(*address, timeout=30)
    try:
        conn.request(method, "/healthz", headers=headers)
        response = conn.getresponse()
        response.read()
        return response
    finally:
        conn.close()


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_what_bcrypt_refuses_is_a_401() -> None:
    """bcrypt 5 raises ValueError for a password over 72 bytes (and a malformed hash): the
    connection was dropped without an answer."""
    good = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4))
    with pytest.raises(ValueError, match="longer than 72 bytes"):
        bcrypt.checkpw(b"x" * 73, good)
    auth = BasicAuth({"prom": good, "odd": b"$2y$10$short"})
    with _in_process(auth) as address:
        for user, password in (("prom", "x" * 73), ("odd", "s3cret"), ("prom", "s3cret!")):
            assert _status(address, "GET", _basic(user, password)).status == 401
        assert _status(address, "GET", _basic("prom", "s3cret")).status == 503  # no tick


MALFORMED = [
    "$2y$10$short",
    "$2y$03$" + "a" * 53,  # cost below 4
    "$2y$32$" + "a" * 53,
    "$2y$04$" + "a" * 21 + "b" + "a" * 31,  # the salt's last character has spare bits set
    "$2y$04$" + "a" * 21 + "!" + "a" * 31,
]


@pytest.mark.parametrize("hashed", MALFORMED)
def test_a_malformed_bcrypt_hash_is_refused_when_read(hashed: str) -> None:
    with pytest.raises(ValueError, match="Invalid salt"):
        bcrypt.checkpw(b"x", hashed.encode())  # what each login would raise
    with pytest.raises(OptionError) as exc:
        parse_web_config(f"basic_auth_users:\n  bob: '{hashed}'\n", "/etc/fleetmon/web.yml")
    assert str(exc.value).startswith(
        "/etc/fleetmon/web.yml: basic_auth_users.bob: not a valid bcrypt hash"
    )
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: " + "9" * 5000 + "\n", "w.yml:1: a number of more than 4,300 digits"),
        (
            "tls_server_config:\n  min_version: 2024-13-01\n",
            "w.yml:2: '2024-13-01' is not a date (month must be in 1..12): quote it for text",
        ),
        ("tls: [\n", "w.yml:2: not YAML: expected the node content, but found '<stream end>'"),
    ],
)
def test_a_web_config_pyyaml_cannot_build_is_one_error_line(text: str, message: str) -> None:
    # The first two were `internal error: ValueError` (exit 70): yaml.safe_load raises
    # ValueError, not a YAMLError, for them.
    with pytest.raises(OptionError) as exc:
        parse_web_config(text, "w.yml")
    assert str(exc.value) == message


def test_a_web_config_that_is_a_fifo_or_not_utf8_is_one_error_line(tmp_path: Path) -> None:
    # A FIFO blocked `serve` (and each SIGHUP reload) forever; bytes that are not UTF-8 were
    # `internal error: UnicodeDecodeError`.
    fifo = tmp_path / "web.yml"
    os.mkfifo(fifo)
    latin = tmp_path / "latin1.yml"
    latin.write_bytes(b"basic_auth_users:\n  ren\xe9: x\n")
    for path, message in (
        (fifo, "the web config must be a regular file, not a FIFO"),
        ("/dev/zero", "the web config must be a regular file, not a character device"),
        (latin, "the web config is not UTF-8 text"),
    ):
        with pytest.raises(OptionError) as exc:
            read_web_config(str(path))
        assert str(exc.value) == f"{path}: {message}"


@pytest.mark.parametrize("prefix", [b"2a", b"2b", b"2y"])
def test_bcrypt_hashes_are_taken(prefix: bytes) -> None:
    """What bcrypt and htpasswd -B ($2y$) make."""
    for rounds in (4, 5):
        made = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=rounds)).decode()
        made = made.replace("$2b$", f"${prefix.decode()}$", 1)
        assert bcrypt.checkpw(b"pw", made.encode())
        users = parse_web_config(f"basic_auth_users:\n  bob: '{made}'\n", "w.yml").users
        assert users == {"bob": made.encode()}


def test_a_reload_with_a_malformed_hash_keeps_the_old_users(tmp_path: Path) -> None:
    inv = tmp_path / "inv.yaml"
    inv.write_text("all:\n  hosts:\n    a:\n      ansible_connection: local\n")
    config = tmp_path / "web.yml"
    hashed = bcrypt.hashpw(b"one", bcrypt.gensalt(rounds=4)).decode()
    config.write_text(f"basic_auth_users:\n  prom: '{hashed}'\n")
    served = _serve(inv, "--web-config-file", str(config))
    try:
        served.wait_ready(live=1, headers=_basic("prom", "one"))
        config.write_text("basic_auth_users:\n  prom: '$2y$10$short'\n")
        served.proc.send_signal(signal.SIGHUP)
        time.sleep(2)
        assert served.proc.poll() is None
        assert served.get("/healthz", _basic("prom", "one"))[0] == 200
    finally:
        code, err = served.stop()
    assert code == 0, err
    assert (
        f"reload refused, still watching the old inventory: {config}: basic_auth_users.prom: "
        "not a valid bcrypt hash" in err
    )


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"])
def test_methods_other_than_get_are_not_allowed(method: str) -> None:
    """405 with Allow, as the Handler says (PUT, DELETE, OPTIONS, PATCH were 501)."""
    with _in_process(BasicAuth({})) as address:
        response = _status(address, method, {})
        assert (response.status, response.getheader("Allow")) == (405, "GET, HEAD")
        assert _status(address, "HEAD", {}).status == 503  # no tick in this server


def test_healthz_stays_ok_across_a_reload() -> None:
    """SIGHUP's new fleet keeps the last figures while its hosts reconnect (the pages show
    them), and /healthz says ok meanwhile: it answered 503 `stale: no sample yet` until the
    first new pair, a failed probe for systemd or a load balancer at every reload."""
    import argparse

    from fleetmon.cli.live import LiveFleet, Plan
    from fleetmon.cli.servepages import health
    from fleetmon.model import HostReport, HostSpec, Status

    spec = HostSpec("a", "127.0.0.1", connection="local")
    plan = Plan(None, (spec,), (), (spec,), None, ())  # type: ignore[arg-type]
    old = LiveFleet(argparse.Namespace(delay=2.0), plan)
    old.links[0].enter("live")
    old.latest[0] = HostReport("a", "127.0.0.1", (), Status.OK, None)
    old.pair_at[0] = time.time()
    old.pairs, old.last_pair_mono = 1, time.monotonic()
    assert health(old, 2.0)[0]
    reloaded = LiveFleet(argparse.Namespace(delay=2.0), plan, seed=old)
    assert reloaded.links[0].state == "connecting"
    ok, line = health(reloaded, 2.0)
    assert ok, line
    assert line.startswith("ok: last sample ")
    assert "1/1 hosts live" in line
    first = LiveFleet(argparse.Namespace(delay=2.0), plan)  # no seed: no sample yet
    ok, line = health(first, 2.0)
    assert not ok
    assert "no sample yet" in line


def test_a_host_that_drops_keeps_the_hypervisor_its_probe_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A KVM host (`fleetmon_hypervisor: auto`) that drops keeps `hypervisor="kvm"` on its
    host_up, across a reload too: a `{hypervisor="kvm"} == 0` alert sees it go down, where
    the label vanished with its figures."""
    import argparse

    from fleetmon.cli.live import LiveFleet, Plan
    from fleetmon.collect.stream import Link
    from fleetmon.model import HostSpec, Status
    from fleetmon.render.labels import status_labels

    kvm, web = HostSpec("kvm1", "127.0.0.1"), HostSpec("web1", "127.0.0.1")
    plan = Plan(None, (kvm, web), (), (kvm, web), None, ())  # type: ignore[arg-type]
    fleet = LiveFleet(argparse.Namespace(delay=2.0), plan)
    # What the probe found, as analyse_output says it (its parsing is tested elsewhere).
    found = {"kvm1": "kvm", "web1": "none"}
    monkeypatch.setattr(
        "fleetmon.cli.live.analyse_output",
        lambda base, out, counters: dataclasses.replace(base, hypervisor=found[base.name]),
    )
    for i in (0, 1):
        fleet.links[i].enter("live")
        fleet.on_pair(i, None)  # type: ignore[arg-type]
    assert [h.hypervisor for h in fleet.host_reports()] == ["kvm", "none"]
    for i in (0, 1):
        down = Link(plan.hosts[i])
        down.enter("down", Status.UNREACHABLE, "connection refused")
        fleet.on_change(i, down)
    reloaded = LiveFleet(argparse.Namespace(delay=2.0), plan, seed=fleet)
    reloaded.links = fleet.links
    for live in (fleet, reloaded):
        labels = [status_labels(h) for h in live.host_reports()]
        assert labels == [
            {"host": "kvm1", "hypervisor": "kvm", "site": "", "status": "unreachable"},
            {"host": "web1", "hypervisor": "", "site": "", "status": "unreachable"},
        ]


def test_a_host_retrying_after_a_failure_keeps_its_status_between_tries() -> None:
    """A host that timed out is tried again and again (stream.py: down, connecting, down...);
    while a try was under way it was `skipped` (the inventory's status: "not collected
    because of the inventory") on /metrics and /api/report, so `fleetmon_hosts{status=
    "timeout"}` and the host's host_up series flapped at every retry (seen with 300
    simulated hosts: skipped 1..6 while no host was skipped)."""
    import argparse

    from fleetmon.cli.live import LiveFleet, Plan
    from fleetmon.collect.stream import Link
    from fleetmon.model import HostSpec, Status

    new, gone = HostSpec("new", "127.0.0.1"), HostSpec("gone", "127.0.0.1")
    plan = Plan(None, (new, gone), (), (new, gone), None, ())  # type: ignore[arg-type]
    fleet = LiveFleet(argparse.Namespace(delay=2.0), plan)
    link = Link(gone)
    link.enter("down", Status.TIMEOUT, "no complete sample within 32 s")
    fleet.on_change(1, link)
    seen = []
    for state in ("down", "connecting", "down", "connecting", "live"):
        link.enter(state)  # the retries (live: connected again, no pair of samples yet)
        fleet.on_change(1, link)
        first, second = fleet.host_reports()
        seen.append(second.status)
        assert first.status is Status.SKIPPED  # on its first try: waiting, not failed
    assert seen == [Status.TIMEOUT] * 5


def test_a_reload_whose_hosts_all_fail_says_they_are_down(tmp_path: Path) -> None:
    """After SIGHUP the pages keep the report before it until the new fleet's first pair;
    when none came (every host failing: a network down at the reload), that old report was
    served for ever: host_up 1 and frozen figures on /metrics while /healthz said 0 live."""
    inv = tmp_path / "inv.yaml"
    inv.write_text("all:\n  hosts:\n    here:\n      ansible_connection: local\n")
    served = _serve(inv)
    try:
        served.wait_ready(live=1)
        port = free_port()  # nothing listens there
        inv.write_text(
            f"all:\n  hosts:\n    here:\n      ansible_host: 127.0.0.1\n"
            f"      ansible_port: {port}\n"
        )
        served.proc.send_signal(signal.SIGHUP)
        end = time.monotonic() + 20
        status = "ok"
        while status == "ok" and time.monotonic() < end:
            time.sleep(0.2)
            code, _, body = served.get("/api/report")
            status = json.loads(body)["hosts"][0]["status"] if code == 200 else "ok"
        assert status == "unreachable"
        metrics = served.get("/metrics")[2].decode()
        assert 'fleetmon_host_up{host="here",status="unreachable"} 0.0\n' in metrics
        assert 'fleetmon_host_uptime_seconds{host="here"}' not in metrics
        assert served.get("/healthz")[0] == 503
    finally:
        code, err = served.stop()
    assert code == 0, err
