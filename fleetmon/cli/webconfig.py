"""`fleetmon serve --web-config-file` (I/O edge): the Prometheus exporter-toolkit web
configuration, TLS and basic authentication, as node_exporter reads it.

    tls_server_config:
      cert_file: server.crt
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert   # optional; needs client_ca_file
      client_ca_file: ca.crt
      min_version: TLS12                              # optional
    basic_auth_users:
      alice: $2y$10$...                               # bcrypt hashes (htpasswd -B)

Relative paths are relative to the file, as in exporter-toolkit. A bad file is one error
line naming the file and the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fleetmon.errors import OptionError
from fleetmon.inventory.inputfile import read_input
from fleetmon.model.yamlnodes import PureLoader, YamlDoc

#: A few lines of TLS settings and bcrypt hashes (60 bytes a user): 1 MiB is plenty.
MAX_WEB_CONFIG_BYTES = 1 << 20
_TLS_KEYS = {"cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version"}
_TOP_KEYS = {"tls_server_config", "basic_auth_users", "http_server_config"}
_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
#: A bcrypt hash bcrypt.checkpw takes (else its ValueError at each login): a cost bcrypt
#: allows, a salt whose last character has no bits beyond its 16 bytes.
_BCRYPT = re.compile(
    r"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{21}[.Oeu][./A-Za-z0-9]{31}"
)
#: exporter-toolkit's client_auth_type (Go's tls.ClientAuthType) -> Python's verify mode.
#: RequestClientCert asks for a certificate it never checks and admits every client: the
#: same admissions as not asking (Python's ssl verifies whatever certificate it asks for).
#: VerifyClientCertIfGiven and RequireAndVerifyClientCert verify against client_ca_file.
_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
#: Go's RequireAnyClientCert (and its old name): a certificate required but never verified,
#: which Python's ssl cannot serve (it verifies every certificate it asks for).
_UNVERIFIED = ("RequireAnyClientCert", "RequireClientCert")


@dataclass(frozen=True, slots=True)
class WebConfig:
    """TLS files and basic-auth users (name -> bcrypt hash); empty: plain HTTP, no auth."""

    cert_file: str | None = None
    key_file: str | None = None
    client_ca_file: str | None = None
    client_auth_type: str = "NoClientCert"
    min_version: str = "TLS12"
    users: Mapping[str, bytes] = field(default_factory=dict)

    @property
    def tls(self) -> bool:
        return self.cert_file is not None


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise OptionError(f"{where}: expected a mapping")
    return value


def _unknown(keys: set[str], allowed: set[str], where: str) -> None:
    extra = sorted(k for k in keys if k not in allowed)
    if extra:
        raise OptionError(f"{where}.{extra[0]}: unknown key (known: {', '.join(sorted(allowed))})")


def parse_web_config(text: str, path: str) -> WebConfig:
    """The web configuration in `text` (read from `path`); OptionError naming file and key."""
    # The walker of rule files and inventories: one error line for bad YAML, an alias bomb or
    # a scalar its tag cannot make (`2024-13-01`, 5,000 digits), never an internal error.
    with YamlDoc(text, path, error=OptionError, syntax="not YAML", loader=PureLoader) as yd:
        doc = None if yd.root is None else yd.value(yd.root)
    top = _mapping(doc, path)
    _unknown(set(top), _TOP_KEYS, path)
    tls = _mapping(top.get("tls_server_config"), f"{path}: tls_server_config")
    _unknown(set(tls), _TLS_KEYS, f"{path}: tls_server_config")
    base = os.path.dirname(os.path.abspath(path))

    def file_of(key: str) -> str | None:
        value = tls.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise OptionError(f"{path}: tls_server_config.{key}: expected a file name")
        return os.path.join(base, value)

    cert, key = file_of("cert_file"), file_of("key_file")
    if (cert is None) != (key is None):
        missing = "key_file" if key is None else "cert_file"
        raise OptionError(f"{path}: tls_server_config.{missing}: missing")
    auth = _client_auth(tls, cert is not None, file_of("client_ca_file") is not None, path)
    version = str(tls.get("min_version", "TLS12"))
    if version not in _VERSIONS:
        raise OptionError(f"{path}: tls_server_config.min_version: unknown value {version!r}")
    users: dict[str, bytes] = {}
    for name, hashed in _mapping(top.get("basic_auth_users"), f"{path}: basic_auth_users").items():
        if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise OptionError(f"{path}: basic_auth_users.{name}: expected a bcrypt hash")
        if not _BCRYPT.fullmatch(hashed):
            raise OptionError(
                f"{path}: basic_auth_users.{name}: not a valid bcrypt hash (cost 04 to 31, "
                "22 characters of salt, 31 of hash, as htpasswd -B makes)"
            )
        users[str(name)] = hashed.encode()
    return WebConfig(cert, key, file_of("client_ca_file"), auth, version, users)


def _client_auth(tls: dict[str, Any], has_cert: bool, has_ca: bool, path: str) -> str:
    """client_auth_type, checked as exporter-toolkit checks it against client_ca_file and
    the server's certificate; OptionError naming the key."""
    where = f"{path}: tls_server_config"
    auth = str(tls.get("client_auth_type") or "NoClientCert")  # Go: "" is NoClientCert
    if auth in _UNVERIFIED:
        raise OptionError(
            f"{where}.client_auth_type: {auth} (a client certificate required but never "
            "verified) cannot be served: Python's ssl verifies every certificate it asks "
            "for; use RequireAndVerifyClientCert with client_ca_file"
        )
    if auth not in _CLIENT_AUTH:
        raise OptionError(f"{where}.client_auth_type: unknown value {auth!r}")
    if _CLIENT_AUTH[auth] != ssl.CERT_NONE and not has_ca:
        raise OptionError(
            f"{where}.client_ca_file: missing: client_auth_type {auth} verifies client "
            "certificates against it"
        )
    if has_ca and auth == "NoClientCert":
        raise OptionError(
            f"{where}.client_auth_type: missing: client_ca_file is given, but no client "
            "certificate is asked for (RequireAndVerifyClientCert, VerifyClientCertIfGiven)"
        )
    if (has_ca or auth != "NoClientCert") and not has_cert:
        raise OptionError(f"{where}.cert_file: missing (client certificates need TLS)")
    return auth


def read_web_config(path: str) -> WebConfig:
    """parse_web_config of a file; OptionError when it cannot be read."""
    try:
        text = read_input(path, "the web config", MAX_WEB_CONFIG_BYTES, OptionError).decode()
    except OSError as exc:
        raise OptionError(f"{path}: cannot read the web config: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise OptionError(f"{path}: the web config is not UTF-8 text") from None
    return parse_web_config(text, path)


def ssl_context(cfg: WebConfig, path: str) -> ssl.SSLContext:
    """The server's TLS context; OptionError naming the file that cannot be loaded."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _VERSIONS[cfg.min_version]
    assert cfg.cert_file is not None
    assert cfg.key_file is not None
    try:
        ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
    except (OSError, ssl.SSLError) as exc:
        why = getattr(exc, "strerror", None) or str(exc)
        raise OptionError(
            f"{path}: tls_server_config: cannot load the certificate: {why}"
        ) from None
    ctx.verify_mode = _CLIENT_AUTH[cfg.client_auth_type]
    if cfg.client_ca_file is not None:
        try:
            ctx.load_verify_locations(cfg.client_ca_file)
        except (OSError, ssl.SSLError) as exc:
            why = getattr(exc, "strerror", None) or str(exc)
            raise OptionError(f"{path}: tls_server_config.client_ca_file: {why}") from None
    return ctx


class BasicAuth:
    """Checks `Authorization: Basic` headers against the bcrypt hashes; a pair that passed
    is remembered (by a keyed digest, never the password) so a scrape every few seconds does
    not pay bcrypt's deliberate ~0.1 s each time, as exporter-toolkit caches too."""

    def __init__(self, users: Mapping[str, bytes]) -> None:
        self.users = dict(users)
        self._key = os.urandom(32)
        self._ok: set[bytes] = set()
        self._lock = threading.Lock()

    def check(self, header: str | None) -> bool:
        """True when the header names a user and its password."""
        if not self.users:
            return True
        if header is None or not header.startswith("Basic "):
            return False
        try:
            user, sep, password = (
                base64.b64decode(header[6:], validate=True).decode().partition(":")
            )
        except (ValueError, UnicodeDecodeError):
            return False
        hashed = self.users.get(user)
        if not sep or hashed is None:
            return False
        digest = hmac.new(self._key, f"{user}\0{password}".encode(), hashlib.sha256).digest()
        with self._lock:
            if digest in self._ok:
                return True
        import bcrypt

        try:
            if not bcrypt.checkpw(password.encode(), hashed):
                return False
        except ValueError:  # bcrypt 5: a password over 72 bytes (Go's bcrypt refuses it too)
            return False
        with self._lock:
            self._ok.add(digest)
        return True
