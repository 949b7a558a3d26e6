"""The export options on the command line: refused before a run when they cannot work, the
formats on standard output, the textfile beside the other outputs."""

from __future__ import annotations

import dataclasses
import socket
import time
from pathlib import Path

import pytest
from capturehttp import capturing
from clirun import ROOT, fleetmon
from test_report_golden import RAW

from fleetmon.cli.exports import push_grouping
from fleetmon.model import RunInfo

LOCAL = ROOT / "inventories" / "localhost.yaml"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--alert-ttl", "5x"), "fleetmon: error: --alert-ttl: expected a duration such as"),
        (("--influx-url", "http://db:8086"), "fleetmon: error: --influx-url: expected the write"),
        (
            ("--push", "pushgateway:9091"),
            "fleetmon: error: --push: expected an http:// or https://",
        ),
        (("--alertmanager", "am"), "fleetmon: error: --alertmanager: expected an http:// or"),
        (
            ("--export-retries", "-1"),
            "fleetmon: error: argument --export-retries: --export-retries must be 0 or more",
        ),
        (("--prom-textfile", "x.txt"), "fleetmon: error: --prom-textfile: node_exporter's"),
        (
            ("--export-retries", "11"),
            "fleetmon: error: argument --export-retries: --export-retries must be 10 or less",
        ),
        (("--alertmanager", "http://am:0/"), "fleetmon: error: --alertmanager: port 0 is not"),
        (
            ("--alertmanager", "http://am:9093/api/v2/alerts"),
            "fleetmon: error: --alertmanager: the Alertmanager's address only (http://HOST:9093",
        ),
        (("--push", "http://pg:9091/#x"), "fleetmon: error: --push: no #fragment in the URL"),
        (
            ("--export-timeout", "1e10"),
            "fleetmon: error: argument --export-timeout: --export-timeout must be 3600 or less",
        ),
        (
            ("--export-timeout", "0"),
            "fleetmon: error: argument --export-timeout: --export-timeout must be greater than 0",
        ),
        # '' was taken for "not given" (`--push "$PUSHGATEWAY"`, the variable unset: no export).
        (("--push", ""), "fleetmon: error: --push: expected an http:// or https:// URL, got ''"),
        (("--influx-url", ""), "fleetmon: error: --influx-url: expected an http:// or https://"),
        (("--push", "http://pg:9091/?"), "fleetmon: error: --push: the Pushgateway's address only"),
        (("--alertmanager", "http://am:9093/#"), "fleetmon: error: --alertmanager: no #fragment"),
    ],
)
def test_bad_export_options_stop_the_run_before_it_starts(
    args: tuple[str, ...], message: str, tmp_path: Path
) -> None:
    raw = tmp_path / "raw"
    r = fleetmon(
        "run", LOCAL, "--interval", "0.1", "-q", "--history", "none", "--save-raw", raw, *args
    )
    assert r.returncode == 4
    assert r.stderr.startswith(message), r.stderr
    assert not raw.exists()  # nothing was collected


@pytest.mark.parametrize("token", ["tök€n", "S3cretTOKEN\n", "S3cret\udcff"])
def test_a_token_that_cannot_be_sent_stops_the_run(token: str, tmp_path: Path) -> None:
    """A $INFLUX_TOKEN not ASCII was an internal error (exit 70) after the run, the sinks
    after InfluxDB never tried; one with a newline was quoted back in the error."""
    raw = tmp_path / "raw"
    r = fleetmon("run", LOCAL, "--interval", "0.1", "-q", "--history", "none", "--save-raw", raw,
                 "--influx-url", "http://127.0.0.1:9/api/v2/write?org=o&bucket=b",
                 env={"INFLUX_TOKEN": token})  # fmt: skip
    assert r.returncode == 4
    assert r.stderr == (
        "fleetmon: error: $INFLUX_TOKEN: a token is printable ASCII, this one is not "
        "(a trailing newline? a character that is not ASCII?)\n"
    )
    assert not raw.exists()


@pytest.mark.parametrize(
    "url",
    [
        "http://admin:S3cret@127.0.0.1:8086/write",
        "http://127.0.0.1:8086/write?db=fm&u=admin&p=S3cret&precision=s",
        "https://admin:S3cret@127.0.0.1:8086/api/v2/write?bucket=b",
        "http://admin:S3cret@[::1",
    ],
)
def test_an_export_option_error_shows_no_password(url: str) -> None:
    r = fleetmon("report", RAW, "--history", "none", "-o", "/dev/null", "--influx-url", url)
    assert r.returncode == 4
    assert r.stderr.startswith("fleetmon: error: --influx-url: ")
    assert r.stderr.count("\n") == 1
    assert "S3cret" not in r.stderr


def test_the_push_group_is_the_real_inventory_and_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The group was the inventory's path as typed: `-l` runs of one inventory (a site's
    each) replaced one another's series, and the same file by another path was another
    group (every series twice)."""
    (tmp_path / "inv").mkdir()
    (tmp_path / "inv" / "hosts.yaml").write_text("all: {}\n")
    (tmp_path / "link.yaml").symlink_to(tmp_path / "inv" / "hosts.yaml")
    monkeypatch.chdir(tmp_path / "inv")
    real = str((tmp_path / "inv" / "hosts.yaml").resolve())
    for typed in ("hosts.yaml", "./hosts.yaml", real, "../link.yaml"):
        run = RunInfo("0", "2026-01-01T00:00:00Z", 1.0, inventory=typed)
        assert push_grouping(run) == {"inventory": real}
        limited = dataclasses.replace(run, limit="site_paris")
        assert push_grouping(limited) == {"inventory": real, "limit": "site_paris"}
    # Several sources, a host list among them; what is not found here is kept as written.
    run = RunInfo("0", "2026-01-01T00:00:00Z", 1.0, inventory="a,b,,hosts.yaml,gone.yaml")
    assert push_grouping(run) == {"inventory": f"a,b,,{real},gone.yaml"}


def test_a_textfile_in_a_missing_folder_stops_the_run(tmp_path: Path) -> None:
    r = fleetmon("run", LOCAL, "--interval", "0.1", "-q", "--history", "none",
                 "--prom-textfile", tmp_path / "nowhere" / "f.prom")  # fmt: skip
    assert r.returncode == 4
    assert "nowhere" in r.stderr


def test_report_dir_writes_every_format(tmp_path: Path) -> None:
    om = fleetmon("report", RAW, "--history", "none", "--format", "openmetrics")
    assert om.returncode == 2, om.stderr
    assert om.stdout.endswith("\n# EOF\n")
    assert "# UNIT fleetmon_vm_cpu_ratio ratio\n" in om.stdout
    prom = tmp_path / "fleet.prom"
    text = fleetmon("report", RAW, "--history", "none", "--format", "influx", "--prom-textfile",
                    prom, "--export-groups")  # fmt: skip
    assert text.returncode == 2, text.stderr
    assert text.stdout.startswith("fleetmon_host_up,groups=")
    assert "# EOF" not in prom.read_text()
    assert (
        'fleetmon_host_up{groups=",kvm,rack01,",host="kvm0004",hypervisor="kvm",status="ok"} 1.0'
        in (prom.read_text())
    )


def test_a_sink_that_never_answers_holds_the_run_a_bounded_time(tmp_path: Path) -> None:
    """A Pushgateway and an Alertmanager that take the connection and never answer: the run
    ends after each one's attempts (2 of 1 s and a wait of 0.5 s), one line names both with
    no password, and the report, the other Alertmanager and InfluxDB get theirs."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # the kernel takes the connections; nothing ever reads or answers
    hang = f"http://127.0.0.1:{silent.getsockname()[1]}"
    out = tmp_path / "report.txt"
    try:
        with capturing() as (sink, seen):
            t0 = time.monotonic()
            r = fleetmon("report", RAW, "--history", "none", "-o", out, "--push", hang,
                         "--alertmanager", hang.replace("//", "//am:s3cret@"),
                         "--alertmanager", sink, "--influx-url", f"{sink}/write?db=f",
                         "--export-timeout", "1", "--export-retries", "1")  # fmt: skip
            took = time.monotonic() - t0
    finally:
        silent.close()
    assert r.returncode == 4, r.stderr
    assert r.stderr.count("\n") == 1
    assert "s3cret" not in r.stderr
    assert r.stderr == (
        f"fleetmon: error: Pushgateway {hang}/metrics/job/fleetmon/inventory/inv.yaml: "
        f"no complete answer within 1 s (after 2 attempts); Alertmanager {hang}/api/v2/alerts: "
        "no complete answer within 1 s (after 2 attempts)\n"
    )
    assert 5 <= took < 60  # 2 x (1 + 1 + 0.5) s; the upper bound only guards a hang
    assert sorted(m for m, _ in seen) == ["POST", "POST"]
    assert {p.split("?")[0] for _, p in seen} == {"/api/v2/alerts", "/write"}
    assert out.read_text().startswith("fleetmon")
