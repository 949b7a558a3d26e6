"""Shared pytest fixtures: real OpenSSH sshd instances on 127.0.0.1.

`sshd` (session): one sshd for the whole run, root login with its own client key.
    Attributes: host, port, user, client_key, known_hosts (a file trusting its host key),
    host_key_pub, log_text(); `sshd.inventory(n, tmp_path)` writes a YAML inventory of n
    hosts (h01..) pointing at it with ansible_ssh_private_key_file.
`sshd_factory` (session): `sshd_factory(extra_config="Match User x\\n ForceCommand ...")`
    starts another sshd (same attributes); all are stopped at the end of the session.

Both need root (they bind sshd and log in as root). Outside CI a non-root run skips them;
in CI (CI=true) a missing sshd or missing root is a failure, never a silent skip.

`capture`: an HTTP sink in this process, its URL and the requests it got
(tests/capturehttp.py), for the exports.

The history: every fleetmon the suite runs (in process or as a child, which inherits the
environment) has FLEETMON_HISTORY=none, so none writes the real default history (root in
CI: /var/lib/fleetmon); a test of the history passes `--history TMP_PATH`. XDG_STATE_HOME
points at a temporary folder too, for the tests of the default path.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import capturehttp
import pytest
import sshd_util

from fleetmon.history import open_history
from fleetmon.history.store import History

os.environ["FLEETMON_HISTORY"] = "none"
os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="fleetmon-tests-state-")


def _require_sshd() -> None:
    in_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    if os.geteuid() != 0:
        if in_ci:
            pytest.fail("the sshd tests must run as root in CI")
        pytest.skip("the real-sshd tests need root (they start sshd and log in as root)")
    if not Path(sshd_util.SSHD).exists():
        pytest.fail(f"{sshd_util.SSHD} is missing: run tests/setup/system-deps.sh")


@pytest.fixture(scope="session")
def sshd_factory() -> Iterator[Callable[..., sshd_util.Sshd]]:
    """Start extra sshd instances (keyword arguments of sshd_util.start_sshd)."""
    _require_sshd()
    started: list[sshd_util.Sshd] = []

    def start(**kwargs: object) -> sshd_util.Sshd:
        server = sshd_util.start_sshd(**kwargs)  # type: ignore[arg-type]
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def sshd(sshd_factory: Callable[..., sshd_util.Sshd]) -> sshd_util.Sshd:
    """The shared real sshd on 127.0.0.1 (root login, key auth, known_hosts provided)."""
    return sshd_factory()


@pytest.fixture
def sshd_inventory(sshd: sshd_util.Sshd, tmp_path: Path) -> Callable[[int], Path]:
    """`sshd_inventory(n)`: a YAML inventory of n hosts pointing at the shared sshd."""

    def write(n: int) -> Path:
        return sshd.inventory(n, tmp_path)

    return write


@pytest.fixture
def hist(tmp_path: Path) -> Iterator[History]:
    """A new writable history file in the test's folder (the history tests')."""
    h = open_history(str(tmp_path / "history.sqlite"), writable=True)
    yield h
    h.close()


@pytest.fixture
def capture() -> Iterator[tuple[str, capturehttp.Seen]]:
    """An HTTP sink in this process (capturehttp): its URL and the requests it got."""
    with capturehttp.capturing() as sink:
        yield sink
