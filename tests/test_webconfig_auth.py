"""The web config's client_auth_type as exporter-toolkit (Go's tls.ClientAuthType) means it,
with real TLS handshakes: RequestClientCert admits every client (it never checks a
certificate), VerifyClientCertIfGiven and RequireAndVerifyClientCert verify against
client_ca_file, which they need; what Python's ssl cannot serve (a certificate required
but never verified) is one error line naming the key, exit 4."""

from __future__ import annotations

import http.client
import ssl
import subprocess
from pathlib import Path

import pytest

from fleetmon.cli.webconfig import parse_web_config, ssl_context
from fleetmon.errors import OptionError
from tests.livesim import FLEETMON
from tests.sshd_util import free_port
from tests.test_serve_conns import _server, _serving
from tests.tlsfiles import self_signed

TLS = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("  client_auth_type: RequireAndVerifyClientCert\n",
         "tls_server_config.client_ca_file: missing: client_auth_type "
         "RequireAndVerifyClientCert verifies client certificates against it"),
        ("  client_auth_type: VerifyClientCertIfGiven\n",
         "tls_server_config.client_ca_file: missing: client_auth_type VerifyClientCertIfGiven"),
        ("  client_auth_type: RequireAnyClientCert\n",
         "tls_server_config.client_auth_type: RequireAnyClientCert (a client certificate "
         "required but never verified) cannot be served"),
        ("  client_auth_type: RequireClientCert\n  client_ca_file: ca.crt\n",
         "tls_server_config.client_auth_type: RequireClientCert (a client certificate"),
        ("  client_ca_file: ca.crt\n",
         "tls_server_config.client_auth_type: missing: client_ca_file is given, but no "
         "client certificate is asked for"),
        ("  client_auth_type: Sometimes\n",
         "tls_server_config.client_auth_type: unknown value 'Sometimes'"),
    ],
)  # fmt: skip
def test_client_auth_it_cannot_honour_is_one_error_line(
    tmp_path: Path, extra: str, message: str
) -> None:
    """RequireAndVerifyClientCert without client_ca_file started and refused every client;
    RequireAnyClientCert verified the certificates it should take unverified."""
    with pytest.raises(OptionError) as exc:
        parse_web_config(TLS + extra, "/etc/fleetmon/web.yml")
    assert str(exc.value).startswith(f"/etc/fleetmon/web.yml: {message}"), str(exc.value)
    assert "\n" not in str(exc.value)


def test_client_auth_without_tls_is_refused() -> None:
    text = "tls_server_config:\n  client_auth_type: RequestClientCert\n"
    with pytest.raises(OptionError, match=r"^w\.yml: tls_server_config\.cert_file: missing"):
        parse_web_config(text, "w.yml")


def test_serve_exits_4_naming_the_key(tmp_path: Path) -> None:
    self_signed(tmp_path)
    config = tmp_path / "web.yml"
    config.write_text(TLS + "  client_auth_type: RequireAndVerifyClientCert\n")
    inv = tmp_path / "inv.yaml"
    inv.write_text("all:\n  hosts:\n    a:\n      ansible_connection: local\n")
    cmd = [FLEETMON, "serve", str(inv), "--listen", f"127.0.0.1:{free_port()}",
           "--web-config-file", str(config)]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 4, out.stderr
    assert out.stderr == (
        f"fleetmon: error: {config}: tls_server_config.client_ca_file: missing: "
        "client_auth_type RequireAndVerifyClientCert verifies client certificates against it\n"
    )


def _answered(address: tuple[str, int], server_crt: Path, client: str | None, tmp: Path) -> bool:
    """Whether a client (with the certificate `client`, or none) gets an HTTP answer."""
    ctx = ssl.create_default_context(cafile=str(server_crt))
    if client is not None:
        ctx.load_cert_chain(tmp / f"{client}.crt", tmp / f"{client}.key")
    conn = http.client.HTTPSConnection(*address, timeout=30, context=ctx)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 503  # no tick in this server: answered
    except (OSError, http.client.HTTPException):  # the handshake or the TLS 1.3 alert
        return False
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("auth", "admitted"),
    [
        # Who gets an answer: no certificate, the CA's own client, a stranger's self-signed.
        ("NoClientCert", (True, True, True)),
        ("RequestClientCert", (True, True, True)),  # was: any certificate refused
        ("VerifyClientCertIfGiven", (True, True, False)),
        ("RequireAndVerifyClientCert", (False, True, False)),
    ],
)
def test_client_auth_admits_whom_exporter_toolkit_admits(
    tmp_path: Path, auth: str, admitted: tuple[bool, bool, bool]
) -> None:
    server_crt, _ = self_signed(tmp_path, "server")
    self_signed(tmp_path, "client")
    self_signed(tmp_path, "stranger")
    text = TLS + f"  client_auth_type: {auth}\n"
    if auth != "NoClientCert":
        text += "  client_ca_file: client.crt\n"
    path = tmp_path / "web.yml"
    path.write_text(text)
    cfg = parse_web_config(text, str(path))
    with _serving(_server(ssl_context(cfg, str(path)))) as address:
        got = tuple(
            _answered(address, server_crt, c, tmp_path) for c in (None, "client", "stranger")
        )
    assert got == admitted
