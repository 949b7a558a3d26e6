"""Inventory stage: Ansible Vault texts, decrypted and encrypted (pure).

The public format of ansible-vault (lib/ansible/parsing/vault): a header line
`$ANSIBLE_VAULT;1.1;AES256` (1.2 adds `;<vault id>`), then, hexlified and cut into lines of
80, the hexlified salt, HMAC and ciphertext joined by newlines. Keys: PBKDF2-HMAC-SHA256,
10,000 iterations over a 32-byte salt, 80 bytes = AES-256 key, HMAC-SHA256 key, CTR nonce.
The plaintext is PKCS#7-padded before AES-256-CTR; the HMAC covers the ciphertext.
"""

from __future__ import annotations

import binascii
import functools
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from fleetmon.inventory.values import HEADER, is_encrypted

__all__ = ["HEADER", "Secret", "VaultError", "decrypt", "encrypt", "is_encrypted"]

#: The vault id of a secret given without one (Ansible's DEFAULT_VAULT_IDENTITY).
DEFAULT_ID = "default"
_ITERATIONS = 10_000
_KEY_BYTES = 32
_IV_BYTES = 16
_LINE = 80


class VaultError(ValueError):
    """A vault text that cannot be decrypted; the message says why (never the password)."""


@dataclass(frozen=True, slots=True)
class Secret:
    """One vault password and the vault id it was given for."""

    vault_id: str
    password: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Envelope:
    """The parts of a vault text."""

    version: str
    cipher: str
    vault_id: str | None
    salt: bytes
    mac: bytes
    ciphertext: bytes


def _unhex(data: bytes, what: str) -> bytes:
    try:
        return binascii.unhexlify(data)
    except (binascii.Error, ValueError):
        raise VaultError(f"malformed vault text: {what} is not hexadecimal") from None


def parse_envelope(text: str) -> Envelope:
    """The header fields and the three binary parts of a vault text; VaultError if malformed."""
    lines = text.strip().splitlines()
    header = [p.strip() for p in lines[0].split(";")] if lines else []
    if len(header) < 3 or header[0] != HEADER:
        raise VaultError("malformed vault text: no $ANSIBLE_VAULT;<version>;<cipher> header")
    vault_id = header[3] if len(header) > 3 and header[3] else None
    body = _unhex("".join(ln.strip() for ln in lines[1:]).encode("ascii", "replace"), "the body")
    parts = body.split(b"\n", 2)
    if len(parts) != 3:
        raise VaultError("malformed vault text: expected salt, HMAC and ciphertext")
    salt, mac, data = parts
    return Envelope(
        version=header[1],
        cipher=header[2],
        vault_id=vault_id,
        salt=_unhex(salt, "the salt"),
        mac=_unhex(mac, "the HMAC"),
        ciphertext=_unhex(data, "the ciphertext"),
    )


@functools.lru_cache(maxsize=256)
def _keys(password: bytes, salt: bytes) -> tuple[bytes, bytes, bytes]:
    """(AES key, HMAC key, CTR nonce); cached: one password opens many values (10 ms each)."""
    kdf = PBKDF2HMAC(
        algorithm=hashes.SHA256(),
        length=2 * _KEY_BYTES + _IV_BYTES,
        salt=salt,
        iterations=_ITERATIONS,
    )
    material = kdf.derive(password)
    return material[:_KEY_BYTES], material[_KEY_BYTES : 2 * _KEY_BYTES], material[2 * _KEY_BYTES :]


def _mac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, "sha256").digest()


def _try(env: Envelope, password: bytes) -> bytes | None:
    aes_key, mac_key, iv = _keys(password, env.salt)
    if not hmac.compare_digest(_mac(mac_key, env.ciphertext), env.mac):
        return None  # another password's text: the HMAC says so before any decryption
    decryptor = Cipher(algorithms.AES(aes_key), modes.CTR(iv)).decryptor()
    unpadder = padding.PKCS7(algorithms.AES.block_size).unpadder()
    padded = decryptor.update(env.ciphertext) + decryptor.finalize()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise VaultError("malformed vault text: bad padding after a valid HMAC") from None


def candidates(vault_id: str | None, secrets: Sequence[Secret]) -> list[Secret]:
    """The secrets to try, in Ansible's order: those of the text's vault id, then the rest."""
    first = [s for s in secrets if vault_id is not None and s.vault_id == vault_id]
    return first + [s for s in secrets if s not in first]


def decrypt(text: str, secrets: Sequence[Secret]) -> bytes:
    """The plaintext of a vault text; VaultError when no secret opens it."""
    if not secrets:
        raise VaultError(
            "no vault password was given (--vault-password-file, --vault-id or --ask-vault-pass)"
        )
    env = parse_envelope(text)
    if env.cipher != "AES256":
        raise VaultError(f"vault cipher {env.cipher!r} is not supported (only AES256)")
    for secret in candidates(env.vault_id, secrets):
        plain = _try(env, secret.password)
        if plain is not None:
            return plain
    tried = ", ".join(dict.fromkeys(s.vault_id for s in secrets))
    named = f" (vault id {env.vault_id!r})" if env.vault_id else ""
    raise VaultError(f"no vault password given opens this vault text{named}; tried: {tried}")


def decrypt_text(text: str, secrets: Sequence[Secret]) -> str:
    """The plaintext of a vault text as UTF-8 text."""
    plain = decrypt(text, secrets)
    try:
        return plain.decode("utf-8")
    except UnicodeDecodeError:
        raise VaultError("decrypted, but the plaintext is not UTF-8 text") from None


def encrypt(plaintext: bytes, secret: Secret, salt: bytes) -> str:
    """The vault text of `plaintext`, as ansible-vault writes it with this salt (32 random
    bytes from the caller: this module stays pure)."""
    aes_key, mac_key, iv = _keys(secret.password, salt)
    padder = padding.PKCS7(algorithms.AES.block_size).padder()
    encryptor = Cipher(algorithms.AES(aes_key), modes.CTR(iv)).encryptor()
    data = encryptor.update(padder.update(plaintext) + padder.finalize()) + encryptor.finalize()
    inner = b"\n".join(binascii.hexlify(p) for p in (salt, _mac(mac_key, data), data))
    body = binascii.hexlify(inner).decode("ascii")
    if secret.vault_id != DEFAULT_ID:
        header = f"{HEADER};1.2;AES256;{secret.vault_id}"
    else:
        header = f"{HEADER};1.1;AES256"
    lines = [header] + [body[i : i + _LINE] for i in range(0, len(body), _LINE)]
    return "\n".join(lines) + "\n"
