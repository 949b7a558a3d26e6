"""Collect stage, SSH transport (I/O): the asyncssh client of one connection, which applies the
run's host-key policy and notes what the server asked for, and the words for a failed login.
"""

from __future__ import annotations

import re
from typing import Any

import asyncssh

from fleetmon.collect.base import PASSWORD_VARS, HostFailure
from fleetmon.collect.hostkeys import KnownHosts, host_pattern
from fleetmon.model import HostSpec, Status

#: The login methods fleetmon declines, in the order a reason names them.
DECLINED = ("password", "keyboard-interactive")
#: asyncssh's words when it finds no common algorithm in the server's KEXINIT (_choose_alg).
_NO_MATCH = re.compile(r"No matching (.+) algorithm found, sent .* and received (.*)", re.S)
#: Not algorithms in a KEXINIT list: the RFC 8308 and strict-kex (CVE-2023-48795) signals.
_SIGNALS = ("ext-info-", "kex-strict-")
#: asyncssh's refusals of a greeting (_recv_version); "Version too long" comes with the
#: version line already recorded as the server's.
_GREETING_ERRORS = frozenset(
    ("Banner line too long", "Too many banner lines", "Version too long", "Unsupported SSH version")
)
#: At most this much of the server's algorithm list is quoted.
_OFFER_CHARS = 200


class Client(asyncssh.SSHClient):
    """Applies the unknown/changed host-key policy and records the login methods the server
    asked for (asyncssh calls a hook per method it tries), declining all but keys."""

    def __init__(self, progress: Any, kh: KnownHosts | None, accept_new: bool) -> None:
        #: ssh.Progress (ssh.py imports this module): its conn is set here.
        self.progress = progress
        self.kh = kh
        self.accept_new = accept_new
        self.verdict: str | None = None
        self.addr = ""
        #: The methods the server offered, as the hooks below saw them.
        self.asked: set[str] = set()
        #: A key was accepted, and the server then required another method (partial success).
        self.key_accepted = False

    def connection_made(self, conn: Any) -> None:
        self.progress.conn = conn

    def validate_host_public_key(self, host: str, addr: str, port: int, key: Any) -> bool:
        # asyncssh calls this only for a key that known_hosts does not already trust.
        assert self.kh is not None
        self.addr = addr
        self.verdict = self.kh.verdict(host, addr, port, key, self.accept_new)
        return self.verdict == "trusted"

    def public_key_auth_requested(self) -> None:
        # Called once the connection's own keys (the key file, the agent's) are used up:
        # the server offers publickey and took none of them.
        self.asked.add("publickey")

    def password_auth_requested(self) -> None:
        self._declined("password")

    def kbdint_auth_requested(self) -> None:
        self._declined("keyboard-interactive")

    def _declined(self, method: str) -> None:
        self.asked.add(method)
        # asyncssh clears _auth_was_trivial once it has sent a signed key (after the server
        # accepted that key): a server asking for more then had a partial success, as with
        # sshd's `AuthenticationMethods publickey,password`. No public API tells it.
        if not getattr(self.progress.conn, "_auth_was_trivial", True):
            self.key_accepted = True


def denied_reason(user: str, target: str, how: str, client: Client, host: HostSpec) -> str:
    """Why the login was refused, from what the server asked for: a key refused, or a server
    that wants a password or keyboard-interactive, which fleetmon never sends."""
    base = f"permission denied for user {user} at {target}"
    declined = [m for m in DECLINED if m in client.asked]
    var = next((v for v in PASSWORD_VARS if v in host.vars), None)
    keys_only = "fleetmon logs in with keys only" + (f" ({var} is not used)" if var else "")
    if client.key_accepted and declined:
        return f"{base}: key accepted, server then requires {' or '.join(declined)}; {keys_only}"
    if declined and "publickey" not in client.asked:
        return f"{base}: server accepts only {', '.join(declined)}; {keys_only}"
    if declined:
        return f"{base} ({how}); the server also accepts {', '.join(declined)}: {keys_only}"
    return f"{base} ({how})" + (f"; {keys_only}" if var else "")


def host_key_failure(kh: KnownHosts, client: Client, host: HostSpec, reason: str) -> HostFailure:
    """Why the host's key was not accepted: unknown, changed, or refused by asyncssh itself
    (a @revoked key, a bad certificate)."""
    if client.verdict == "unknown":
        why = kh.unknown_reason(host.address, client.addr, host.port)
    elif client.verdict == "mismatch":
        why = kh.mismatch_reason(host.address, client.addr, host.port)
    else:
        pat = host_pattern(host.address, host.port)
        why = f"host key for {pat} refused: {reason} ({kh.label})"
    return HostFailure(Status.HOSTKEY_MISMATCH, why)


def closed_reason(exc: Exception, target: str, conn: Any) -> str:
    """Why a login ended early, and who ended it. `conn`: the connection once TCP was up
    (Progress.conn), else None; `exc` a DisconnectError or OSError of asyncssh.connect."""
    banner = conn is not None and bool(conn.get_extra_info("server_version"))
    reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
    # No SSH packet can come before the banner: such an error is asyncssh's own refusal.
    bad = isinstance(exc, asyncssh.ProtocolError | asyncssh.ProtocolNotSupported)
    if conn is not None and bad and (not banner or reason in _GREETING_ERRORS):
        return f"{target} sent an invalid SSH greeting: {reason}; fleetmon closed the connection"
    if conn is not None and not banner:
        # sshd drops a connection past MaxStartups, a TCP wrapper or fail2ban's reject
        # before a word; the client sees an end of file or a reset.
        return (
            f"{target} closed the connection before its SSH banner "
            "(sshd MaxStartups throttling, TCP wrappers or a ban?)"
        )
    no_match = _NO_MATCH.fullmatch(reason)
    if isinstance(exc, asyncssh.KeyExchangeFailed) and no_match is not None:
        kind, offer = no_match.groups()
        offer = ",".join(a for a in offer.split(",") if not a.startswith(_SIGNALS))
        if len(offer) > _OFFER_CHARS:
            offer = offer[: _OFFER_CHARS - 3] + "..."
        return (
            f"no common {kind} algorithm with {target} (it offers {offer}); "
            "fleetmon closed the connection"
        )
    return f"{target} closed the connection during login: {reason}"
