"""The export options on the command line: refused before a run when they cannot work, the
formats on standard output, the textfile beside the other outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
from clirun import ROOT, fleetmon
from test_report_golden import RAW

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
    ],
)
def test_bad_export_options_stop_the_run_before_it_starts(
    args: tuple[str, ...], message: str, tmp_path: Path
) -> None:
    raw = tmp_path / "raw"
    r = fleetmon("run", LOCAL, "-i", "0.1", "-q", "--history", "none", "--save-raw", raw, *args)
    assert r.returncode == 4
    assert r.stderr.startswith(message), r.stderr
    assert not raw.exists()  # nothing was collected


def test_a_textfile_in_a_missing_folder_stops_the_run(tmp_path: Path) -> None:
    r = fleetmon("run", LOCAL, "-i", "0.1", "-q", "--history", "none",
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
    assert 'fleetmon_host_up{groups=",kvm,rack01,",host="kvm0004",status="ok"} 1.0' in (
        prom.read_text()
    )
