"""`fleetmon serve` end to end against a simulated fleet: the four paths, a scrape that never
waits for SSH, TLS and basic auth with real clients (curl, Python's ssl), the loopback rule,
SIGHUP reloading the inventory, SIGTERM stopping cleanly, and the systemd unit."""

from __future__ import annotations

import base64
import contextlib
import gzip
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml

from fleetmon.cli.options import build_parser
from fleetmon.cli.servehttp import Server
from fleetmon.cli.servepages import Holder, accepts_gzip
from fleetmon.cli.webconfig import BasicAuth
from tests.livesim import FLEETMON, simulated_fleet
from tests.sshd_util import free_port
from tests.tlsfiles import self_signed

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with simulated_fleet(tmp_path_factory.mktemp("serve"), hosts=8, faults="unreachable=1") as inv:
        yield inv


class Served:
    """A `fleetmon serve` process and its address."""

    def __init__(self, argv: list[str], port: int, env: dict[str, str] | None = None) -> None:
        self.port = port
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)

    def get(self, path: str, headers: dict[str, str] | None = None,
            tls: ssl.SSLContext | None = None) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
        conn: http.client.HTTPConnection
        if tls is None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        else:
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=10, context=tls)
        try:
            conn.request("GET", path, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def wait_ready(self, live: int, limit_s: float = 60.0, **kw: Any) -> dict[str, Any]:
        """Poll /api/report until `live` hosts are collected; the report then."""
        end = time.monotonic() + limit_s
        last: Any = None
        while time.monotonic() < end:
            assert self.proc.poll() is None, self.stop()
            try:
                code, _, body = self.get("/api/report", **kw)
            except OSError as exc:
                last = exc
                time.sleep(0.2)
                continue
            last = code
            if code == 200:
                doc = json.loads(body)
                if sum(1 for h in doc["hosts"] if h["status"] == "ok") >= live:
                    return doc  # type: ignore[no-any-return]
            time.sleep(0.2)
        raise AssertionError(f"not ready: {last}")

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            _, err = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return self.proc.returncode, err.decode()


def _serve(inv: Path, *extra: str) -> Served:
    port = free_port()
    argv = [FLEETMON, "serve", str(inv), "--listen", f"127.0.0.1:{port}", "-d", "0.5", *extra]
    return Served(argv, port)


@pytest.mark.slow
def test_serve_answers_from_the_latest_tick(fleet: Path, tmp_path: Path) -> None:
    served = _serve(fleet)
    try:
        doc = served.wait_ready(live=7)
        hosts = {h["name"]: h for h in doc["hosts"]}
        assert len(hosts) == 8
        down = [h for h in hosts.values() if h["status"] != "ok"]
        assert len(down) == 1
        assert down[0]["status"] == "unreachable"
        assert "down since 20" in down[0]["error"]
        vms = [v for h in hosts.values() for v in h.get("vms", [])]
        assert vms
        assert any(isinstance(v["metrics"]["vm.cpu_pct"], float) for v in vms)

        code, headers, body = served.get("/")
        assert code == 200
        assert headers["content-type"].startswith("text/html")
        assert headers["refresh"] == "1"  # the page reloads itself each tick (0.5 s rounded up)
        assert all(name.encode() in body for name in hosts)

        code, _, body = served.get("/healthz")
        assert code == 200
        assert body.startswith(b"ok: last sample ")
        assert served.get("/nope")[0] == 404

        # Prometheus asks for gzip at every scrape: the same exposition, compressed.
        code, headers, body = served.get("/metrics", {"Accept-Encoding": "gzip"})
        assert (code, headers["content-encoding"], headers["vary"]) == (
            200, "gzip", "Accept-Encoding",
        )  # fmt: skip
        text = gzip.decompress(body).decode()
        assert text.startswith("# HELP ")
        assert text.endswith("\n")
        assert all(f'host="{name}"' in text for name in hosts if hosts[name]["status"] == "ok")
        assert len(body) * 4 < len(text)
        code, headers, body = served.get("/metrics", {"Accept-Encoding": "gzip;q=0, br"})
        assert code == 200
        assert "content-encoding" not in headers
        assert body.startswith(b"# HELP ")

        # A scrape never waits for SSH: 20 requests in a row, each well under a tick.
        t0 = time.monotonic()
        for _ in range(20):
            assert served.get("/api/report")[0] == 200
        assert (time.monotonic() - t0) / 20 < 0.25

        # SIGHUP: the inventory is read again (one host less), the rest stays live.
        data = yaml.safe_load(fleet.read_text())
        kind = next(
            k
            for k, v in data["all"]["children"].items()
            if v.get("hosts") and k in ("kvm", "xen", "linux")
        )
        gone = sorted(data["all"]["children"][kind]["hosts"])[0]
        original = fleet.read_text()
        del data["all"]["children"][kind]["hosts"][gone]
        for group in data["all"]["children"].values():
            (group.get("hosts") or {}).pop(gone, None)
        fleet.write_text(yaml.safe_dump(data))
        try:
            served.proc.send_signal(signal.SIGHUP)
            end = time.monotonic() + 30
            while time.monotonic() < end:
                doc = json.loads(served.get("/api/report")[2])
                if len(doc["hosts"]) == 7:
                    break
                time.sleep(0.2)
            assert gone not in {h["name"] for h in doc["hosts"]}
            assert len(doc["hosts"]) == 7
        finally:
            fleet.write_text(original)
        assert served.proc.poll() is None
    finally:
        code, err = served.stop()
    assert code == 0, err
    assert "reloaded: 7 hosts" in err
    assert err.rstrip().endswith("stopped")
    assert "Traceback" not in err


def _tls_files(tmp: Path) -> tuple[Path, Path]:
    return self_signed(tmp)


@pytest.mark.slow
def test_tls_and_basic_auth_with_real_clients(fleet: Path, tmp_path: Path) -> None:
    crt, _ = _tls_files(tmp_path)
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    config = tmp_path / "web.yml"
    config.write_text(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        f"basic_auth_users:\n  prom: '{hashed}'\n"
    )
    served = _serve(fleet, "--web-config-file", str(config))
    tls = ssl.create_default_context(cafile=str(crt))
    auth = {"Authorization": "Basic " + base64.b64encode(b"prom:s3cret").decode()}
    try:
        served.wait_ready(live=7, tls=tls, headers=auth)
        assert served.get("/healthz", auth, tls)[0] == 200
        code, headers, _ = served.get("/api/report", tls=tls)
        assert code == 401
        assert headers["www-authenticate"] == 'Basic realm="fleetmon"'
        bad = {"Authorization": "Basic " + base64.b64encode(b"prom:wrong").decode()}
        assert served.get("/api/report", bad, tls)[0] == 401
        # curl, as an operator would check it: the certificate verified, the user known.
        url = f"https://127.0.0.1:{served.port}/healthz"
        ok = subprocess.run(["curl", "-sS", "--cacert", str(crt), "-u", "prom:s3cret", url],
                            capture_output=True, text=True, timeout=30)  # fmt: skip
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.startswith("ok: last sample ")
        unverified = subprocess.run(["curl", "-sS", "-u", "prom:s3cret", url],
                                    capture_output=True, text=True, timeout=30)  # fmt: skip
        assert unverified.returncode == 60  # curl: peer certificate cannot be authenticated
        with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
            served.get("/healthz")  # plain HTTP to a TLS port gets no answer
    finally:
        code, err = served.stop()
    assert code == 0, err


def test_sighup_takes_a_renewed_certificate_and_changed_users(tmp_path: Path) -> None:
    """As exporter-toolkit re-reads its web config: a certificate renewed in place and a
    password changed are served from the next connection on, without a restart; a config
    without TLS any more is refused (the listener stays HTTPS)."""
    inv = tmp_path / "inv.yaml"
    inv.write_text("all:\n  hosts:\n    a:\n      ansible_connection: local\n")
    config = tmp_path / "web.yml"

    def configure(password: bytes, tls: bool = True) -> Path:
        stem = password.decode()
        crt, _ = self_signed(tmp_path, stem)  # a new key and certificate each time
        hashed = bcrypt.hashpw(password, bcrypt.gensalt(rounds=4)).decode()
        head = f"tls_server_config:\n  cert_file: {stem}.crt\n  key_file: {stem}.key\n"
        config.write_text((head if tls else "") + f"basic_auth_users:\n  prom: '{hashed}'\n")
        return crt

    def as_prom(password: str, crt: Path) -> int:
        tls = ssl.create_default_context(cafile=str(crt))
        auth = {"Authorization": "Basic " + base64.b64encode(f"prom:{password}".encode()).decode()}
        return served.get("/healthz", auth, tls)[0]

    first = configure(b"one")
    served = _serve(inv, "--web-config-file", str(config))
    try:
        auth = {"Authorization": "Basic " + base64.b64encode(b"prom:one").decode()}
        served.wait_ready(live=1, tls=ssl.create_default_context(cafile=str(first)), headers=auth)
        second = configure(b"two")
        served.proc.send_signal(signal.SIGHUP)
        end = time.monotonic() + 60
        while time.monotonic() < end:
            with contextlib.suppress(ssl.SSLError, OSError):
                if as_prom("two", second) == 200:
                    break
            time.sleep(0.3)
        assert as_prom("two", second) == 200  # the new certificate verifies, the new password
        assert as_prom("one", second) == 401
        with pytest.raises(ssl.SSLError):
            as_prom("two", first)  # the old certificate is not served any more
        configure(b"three", tls=False)
        served.proc.send_signal(signal.SIGHUP)
        time.sleep(3)
        assert as_prom("two", second) == 200  # all kept as it was
    finally:
        code, err = served.stop()
    assert code == 0, err
    assert "reload: the web config has no TLS any more: kept the old TLS and users" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--listen", "0.0.0.0:9712"],
            "--listen 0.0.0.0: not a loopback address, and TLS and basic auth not configured",
        ),
        (["--listen", "localhost"], "--listen: expected ADDRESS:PORT, got 'localhost'"),
        (["--listen", "[]:9712"], "--listen: expected ADDRESS:PORT, got '[]:9712'"),
        (
            ["--listen", ":9712"],
            "--listen (every address): not a loopback address, and TLS and basic auth not",
        ),
    ],
)
def test_exposure_is_refused_without_tls_and_auth(
    fleet: Path, args: list[str], message: str
) -> None:
    out = subprocess.run(
        [FLEETMON, "serve", str(fleet), *args], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 4
    assert out.stderr.startswith(f"fleetmon: error: {message}")
    assert "Traceback" not in out.stderr


NETNS_SERVE = """
ip link set lo up
"$@" &
pid=$!
trap 'kill -KILL $pid 2>/dev/null' EXIT
for url in "http://127.0.0.1:$PORT/healthz" "http://[::1]:$PORT/healthz"; do
  n=0
  until curl -gfsS -o /dev/null "$url" 2>/dev/null; do
    n=$((n + 1)); [ $n -lt 600 ] || exit 9; sleep 0.1
  done
  echo "answered $url"
done
kill -TERM $pid; wait $pid; echo "exit $?"
"""


def test_listen_on_every_address_takes_ipv4_and_ipv6(tmp_path: Path) -> None:
    """`--listen :PORT` binds every address of both families, as node_exporter's `:9100`;
    run in a network namespace of its own (only its loopback), so nothing else can reach it."""
    if os.geteuid() != 0 and not os.environ.get("CI"):
        pytest.skip("a network namespace needs root")
    inv = tmp_path / "inv.yaml"
    inv.write_text("all:\n  hosts:\n    localhost:\n      ansible_connection: local\n")
    port = free_port()
    serve = [FLEETMON, "serve", str(inv), "--listen", f":{port}", "--insecure-listen", "-d", "1"]
    out = subprocess.run(
        ["unshare", "--net", "sh", "-c", NETNS_SERVE, "sh", *serve],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PORT": str(port)},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        f"answered http://127.0.0.1:{port}/healthz",
        f"answered http://[::1]:{port}/healthz",
        "exit 0",
    ]
    assert f"on http://[::]:{port}/" in out.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tls_server_config:\n  cert_file: a.crt\n", "tls_server_config.key_file: missing"),
        ("tls_server_config:\n  certfile: a\n", "tls_server_config.certfile: unknown key"),
        ("basic_auth_users:\n  bob: plain\n", "basic_auth_users.bob: expected a bcrypt hash"),
        ("tls: [\n", "not YAML"),
        ("tls_server_config:\n  cert_file: nope.crt\n  key_file: nope.key\n",
         "tls_server_config: cannot load the certificate: No such file or directory"),
    ],
)  # fmt: skip
def test_a_bad_web_config_names_file_and_key(
    fleet: Path, tmp_path: Path, text: str, message: str
) -> None:
    config = tmp_path / "web.yml"
    config.write_text(text)
    cmd = [FLEETMON, "serve", str(fleet), "--listen", f"127.0.0.1:{free_port()}",
           "--web-config-file", str(config)]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 4, out.stderr
    assert out.stderr.startswith(f"fleetmon: error: {config}"), out.stderr
    assert message in out.stderr
    assert out.stderr.count("\n") == 1


def test_the_systemd_unit_runs_fleetmon_serve() -> None:
    unit = ROOT / "contrib" / "fleetmon-serve.service"
    text = unit.read_text()
    exec_start = next(ln for ln in text.splitlines() if ln.startswith("ExecStart="))
    argv = shlex.split(exec_start.removeprefix("ExecStart="))
    assert argv[0].endswith("/fleetmon")
    assert argv[1] == "serve"
    args = build_parser().parse_args(argv[1:])  # the options exist and parse
    assert args.listen == "127.0.0.1:9712"
    assert args.delay == 2.0
    assert "Type=notify" in text
    assert "Restart=on-failure" in text
    assert "ExecReload=/bin/kill -HUP $MAINPID" in text
    assert "WatchdogSec=60" in text  # serve pings at half of it
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.fail("systemd-analyze missing: run tests/setup/system-deps.sh")
    copy = Path(os.environ.get("TMPDIR", "/tmp")) / f"fleetmon-serve-{os.getpid()}.service"
    copy.write_text(text.replace(argv[0], FLEETMON))
    try:
        out = subprocess.run(
            [tool, "verify", "--man=no", str(copy)], capture_output=True, text=True, timeout=60
        )
    finally:
        copy.unlink()
    assert out.returncode == 0, out.stderr


def _notifications(sock: socket.socket, until: str, limit_s: float = 30.0) -> list[str]:
    """The datagrams systemd would read from NOTIFY_SOCKET, up to one that is `until`."""
    got: list[str] = []
    end = time.monotonic() + limit_s
    while until not in got:
        sock.settimeout(max(0.01, end - time.monotonic()))
        try:
            got.append(sock.recv(4096).decode())
        except TimeoutError:
            raise AssertionError(f"no {until} within {limit_s:g} s; got {got}") from None
    return got


@pytest.mark.slow
@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_the_notify_protocol_as_systemd_reads_it(
    fleet: Path, tmp_path: Path, abstract: bool
) -> None:
    """Type=notify: systemd binds a datagram socket, names it in NOTIFY_SOCKET (a path, or
    `@name` for an abstract one) and reads `READY=1`, `RELOADING=1`, `STOPPING=1` from it
    (sd_notify(3)); a service that never says READY=1 is killed at its start timeout."""
    name = f"@fleetmon-test-{os.getpid()}" if abstract else str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name[1:] if abstract else name)
    port = free_port()
    argv = [FLEETMON, "serve", str(fleet), "--listen", f"127.0.0.1:{port}", "-d", "0.5"]
    env = {**os.environ, "NOTIFY_SOCKET": name}
    served = Served(argv, port, env)
    proc = served.proc
    try:
        assert _notifications(sock, "READY=1") == ["READY=1"]
        assert served.get("/healthz")[0] in (200, 503)  # listening once it said so
        proc.send_signal(signal.SIGHUP)
        assert _notifications(sock, "READY=1") == ["RELOADING=1", "READY=1"]
        proc.send_signal(signal.SIGTERM)
        assert _notifications(sock, "STOPPING=1") == ["STOPPING=1"]
    finally:
        code, err = served.stop()
        sock.close()
    assert code == 0, err
    assert "Traceback" not in err


@pytest.mark.parametrize("ours", [True, False], ids=["watchdog", "another-pid"])
def test_the_watchdog_is_pinged_at_half_watchdogsec(tmp_path: Path, ours: bool) -> None:
    """WatchdogSec=: systemd sets WATCHDOG_USEC (and WATCHDOG_PID) and restarts a service
    whose WATCHDOG=1 pings stop; a WATCHDOG_PID of another process means no pings."""
    inv = tmp_path / "inv.yaml"
    inv.write_text("all:\n  hosts:\n    a:\n      ansible_connection: local\n")
    name = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(name)
    port = free_port()
    argv = [FLEETMON, "serve", str(inv), "--listen", f"127.0.0.1:{port}", "-d", "1"]
    env = {**os.environ, "NOTIFY_SOCKET": name, "WATCHDOG_USEC": "400000"}
    if not ours:
        env["WATCHDOG_PID"] = "1"
    served = Served(argv, port, env)
    try:
        assert _notifications(sock, "READY=1") == ["READY=1"]
        got: list[str] = []
        end = time.monotonic() + 4.0  # 0.2 s apart: some 20 pings
        while time.monotonic() < end:
            sock.settimeout(max(0.01, end - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                got.append(sock.recv(4096).decode())
    finally:
        code, err = served.stop()
        sock.close()
    assert code == 0, err
    if ours:
        assert set(got) == {"WATCHDOG=1"}
        assert len(got) >= 5, got  # a loaded machine may delay some; never none
    else:
        assert got == []


@contextlib.contextmanager
def _fast_kvm_fleet(tmp_path: Path, hosts: int, sim: tuple[str, ...]) -> Iterator[Served]:
    """`fleetmon serve -d 1` on a simulated KVM fleet run with `sim`'s options (a time
    scale), once every host is live; killed after, if the caller has not stopped it."""
    with simulated_fleet(tmp_path, hosts=hosts, kind="kvm", extra=sim) as inv:
        port = free_port()
        argv = [FLEETMON, "serve", str(inv), "--listen", f"127.0.0.1:{port}", "-d", "1"]
        served = Served(argv, port)
        try:
            served.wait_ready(live=hosts, limit_s=90)
            yield served
        finally:
            served.stop(signal.SIGKILL)


@pytest.mark.slow
def test_sigterm_stops_a_saturated_serve_within_seconds(tmp_path: Path) -> None:
    """60 hosts whose 1 s ticks come 20 times faster than real time: far more samples than
    the client can analyse, so each step of its event loop runs for seconds. SIGTERM still
    ends it promptly (a Python-level handler stops the analysis first), exit 0."""
    with _fast_kvm_fleet(tmp_path, 60, ("--time-scale", "20")) as served:
        try:
            time.sleep(3)  # saturated by now: a backlog in every connection
            # The client behind analyses each host's newest pair and passes over the rest.
            body = served.get("/healthz")[2].decode()
            passed = re.search(r"; (\d+) samples analysed; (\d+) passed over$", body.strip())
            assert passed is not None, body
            assert int(passed.group(2)) > 0
            t0 = time.monotonic()
            code, err = served.stop()
            elapsed = time.monotonic() - t0
        finally:
            served.stop(signal.SIGKILL)
    assert code == 0, err
    assert elapsed < 5.0
    assert err.rstrip().endswith("stopped")


def _rss_and_fds(pid: int) -> tuple[float, int]:
    """A process's resident memory (MB) and open file descriptors, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1))  # type: ignore[union-attr]
    return rss_kb / 1024, len(os.listdir(f"/proc/{pid}/fd"))


@pytest.mark.slow
def test_a_long_serve_keeps_memory_and_descriptors_flat(tmp_path: Path) -> None:
    """40 KVM hosts with containers, their 1 s ticks 10 times faster than real time: some
    300 simulated ticks a host in 30 s, every pair's parses, shapes and report replaced by
    the next. The open descriptors do not change and the memory of the last third stays
    within a few MB of the first third's (kept samples, memo or shapes growing with the
    ticks would add ~25 KB a host a tick: tens of MB here)."""
    with _fast_kvm_fleet(tmp_path, 40, ("--time-scale", "10", "--containers", "3")) as served:
        try:
            time.sleep(8)  # past the first ticks' one-off costs (shapes, memos, imports)
            seen = []
            for _ in range(16):
                seen.append(_rss_and_fds(served.proc.pid))
                time.sleep(2)
            body = served.get("/healthz")[2].decode()
        finally:
            code, err = served.stop()
    assert code == 0, err
    analysed = re.search(r"(\d+) samples analysed", body)
    assert analysed is not None, body
    # ~400 pairs a host on a quiet machine; a loaded one analyses fewer, passing over
    # the older pairs (counted apart).
    assert int(analysed.group(1)) > 40 * 25, body
    fds = [f for _, f in seen]
    # 40 connections and the listener, throughout (a host reconnecting under a heavy load
    # may be between its two sockets at a sample: one apart, never a growing count).
    assert max(fds) - min(fds) <= 1, seen
    first, last = [r for r, _ in seen[:5]], [r for r, _ in seen[-5:]]
    assert max(last) <= max(first) + 8.0, seen


def test_silent_and_surplus_clients_are_hung_up_on() -> None:
    """A connection that never sends (or goes quiet) held a thread and a descriptor for
    ever; past max_clients a new one is closed at once, and served again once one leaves."""
    server = Server(("127.0.0.1", 0), Holder(1.0), BasicAuth({}), None)
    server.idle_timeout_s, server.max_clients = 1.0, 2
    threading.Thread(target=server.serve_forever, daemon=True).start()
    address = server.server_address[:2]
    try:
        silent = [socket.create_connection(address, timeout=30) for _ in range(2)]
        time.sleep(0.3)  # both taken by their threads
        surplus = socket.create_connection(address, timeout=30)
        assert surplus.recv(100) == b""  # closed at once: no thread for it
        started = time.monotonic()
        for s in silent:
            assert s.recv(100) == b""  # hung up on after a second of silence
        assert time.monotonic() - started < 25
        for s in (*silent, surplus):
            s.close()
        conn = http.client.HTTPConnection(*address, timeout=30)
        conn.request("GET", "/healthz")
        assert conn.getresponse().status == 503  # served again: no tick in this server
        conn.close()
    finally:
        server.shutdown()
        server.server_close()


def test_reloads_keep_memory_flat(tmp_path: Path) -> None:
    """Each SIGHUP compiles the rules afresh; the plan before was frozen with the garbage
    collector's permanent generation at the next start, 440 KB a reload (160 reloads: 70
    MB). Between the 10th and the 70th reload the memory stays within a few MB."""
    inv = tmp_path / "inv.yaml"
    inv.write_text("all:\n  hosts:\n    a:\n      ansible_connection: local\n")
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [FLEETMON, "serve", str(inv), "--listen", f"127.0.0.1:{port}", "-d", "0.5"],
            stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
    try:
        seen = []
        for target in (10, 70):
            deadline = time.monotonic() + 120
            while log.read_text().count("reloaded: 1 hosts") < target:
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                if "serving 1 hosts" in log.read_text():
                    proc.send_signal(signal.SIGHUP)
                time.sleep(0.2)
            seen.append(_rss_and_fds(proc.pid))
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()
    (rss_10, fds_10), (rss_70, fds_70) = seen
    # The host's connection may be between its old and new pipes at a sample: a few apart,
    # never one a reload (+60).
    assert fds_70 <= fds_10 + 4, seen
    assert rss_70 < rss_10 + 6.0, seen  # was +26 MB


@pytest.mark.parametrize(
    ("header", "takes"),
    [("gzip", True), ("gzip, deflate, br", True), ("deflate, GZIP;q=0.5", True),
     ("x-gzip", True), ("*", True), ("gzip;q=0", False), ("gzip; q=0.0", False),
     ("br", False), ("", False), ("gzip;q=x", False), ("identity", False),
     # RFC 9110 12.5.3: a coding named beats `*`; q after other parameters.
     ("*;q=0, gzip", True), ("gzip, *;q=0", True), ("gzip;q=0, *", False),
     ("gzip;level=1;q=0", False), ("gzip;level=1;q=0.5", True), ("gzip; Q=0", False),
     ("*;q=0", False), ("br;q=1, *;q=0.1", True), ("gzip;q=2", False)],
)  # fmt: skip
def test_accept_encoding_says_whether_gzip_is_taken(header: str, takes: bool) -> None:
    assert accepts_gzip(header) is takes


def test_export_groups_is_an_option_of_serve_as_of_run() -> None:
    """`serve --export-groups`: the option run's exports have, off unless given."""
    parse = build_parser().parse_args
    assert parse(["serve", "inv.yaml", "--export-groups"]).export_groups is True
    assert parse(["serve", "inv.yaml"]).export_groups is False
    assert parse(["run", "inv.yaml", "--export-groups"]).export_groups is True
    assert Holder(1.0).groups is False
    assert Holder(1.0, groups=True).groups is True
