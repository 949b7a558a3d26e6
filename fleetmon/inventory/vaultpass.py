"""Inventory stage, input edge (I/O): vault passwords from files, scripts and the terminal.

As ansible-core's CLI.setup_vault_secrets: the configured vault ids first, then `--vault-id
id@source` in order, then the password files (`--vault-password-file`, then the configured
one), then the prompt of `--ask-vault-pass`. A source is `prompt`, a plain file or a pipe
(its text, stripped; read as inputfile.read_input reads an inventory: a FIFO nobody writes
to is empty, not a hang) or an executable run as Ansible runs it: stdout is the password
(newlines stripped), stderr and stdin stay the user's so it can prompt; a `*-client` script
is given `--vault-id ID` and exit 2 means it has no password for that id. A source that fails is a
warning while another gives a password, else the error. A script is bounded as an inventory
script is (scriptrun.py): killed with its process group past SCRIPT_TIMEOUT_S, where Ansible
would wait forever (a hung password helper hung a cron run).
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fleetmon.errors import InventoryError
from fleetmon.inventory.inputfile import MAX_INVENTORY_BYTES, read_input
from fleetmon.inventory.scriptrun import SCRIPT_TIMEOUT_S, run_bounded
from fleetmon.inventory.vault import DEFAULT_ID, Secret, VaultError, decrypt, is_encrypted

#: Reads a password from the terminal; getpass.getpass by default (tests pass their own).
Prompt = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class VaultOptions:
    """Where the vault passwords come from (command line first, then configuration)."""

    vault_ids: tuple[str, ...] = ()  # --vault-id id@source, in order
    password_files: tuple[str, ...] = ()  # --vault-password-file, in order
    ask: bool = False  # --ask-vault-pass
    config_ids: tuple[str, ...] = ()  # vault_identity_list (ansible.cfg / environment)
    config_file: str | None = None  # vault_password_file (ansible.cfg / environment)

    @property
    def given(self) -> bool:
        return bool(self.vault_ids or self.password_files or self.ask or self.config_ids)


def split_vault_id(slug: str) -> tuple[str | None, str]:
    """`id@source` -> (id, source); a slug without `@` is a source of the default id."""
    if "@" not in slug:
        return None, slug
    vault_id, _, source = slug.partition("@")
    return vault_id, source


def _slugs(opts: VaultOptions) -> list[str]:
    slugs = [*opts.config_ids, *opts.vault_ids]
    files = [*opts.password_files, *([opts.config_file] if opts.config_file else [])]
    slugs += [f"{DEFAULT_ID}@{f}" for f in files]
    if opts.ask:
        slugs.append(f"{DEFAULT_ID}@prompt_ask_vault_pass")
    return slugs


def load_secrets(
    opts: VaultOptions,
    prompt: Prompt | None = None,
    warn: Callable[[str], None] | None = None,
    script_timeout_s: float = SCRIPT_TIMEOUT_S,
) -> list[Secret]:
    """The vault secrets of these options, in the order they are tried; a password script
    may run `script_timeout_s` seconds."""
    secrets: list[Secret] = []
    failures: list[InventoryError] = []
    for slug in _slugs(opts):
        name, source = split_vault_id(slug)
        vault_id = name or DEFAULT_ID
        if source in ("prompt", "prompt_ask_vault_pass"):
            # An empty or unreadable prompt ends the command, as in Ansible.
            text = "Vault password: " if source != "prompt" else f"Vault password ({vault_id}): "
            secrets.append(Secret(vault_id, _ask(text, prompt)))
            continue
        try:
            password = _from_file(source, vault_id, secrets, script_timeout_s)
            secrets.append(Secret(vault_id, password))
        except InventoryError as e:
            failures.append(e)
    if failures and not secrets:
        raise failures[-1]  # the error alone: no warning repeating it first
    if warn is not None:
        for failure in failures:
            warn(str(failure))
    return secrets


def _ask(text: str, prompt: Prompt | None) -> bytes:
    if prompt is None:
        if not sys.stdin.isatty():
            raise InventoryError("--ask-vault-pass needs a terminal (or use --vault-password-file)")
        prompt = getpass.getpass
    try:
        password = prompt(text).strip().encode()
    except EOFError:
        password = b""
    if not password:
        raise InventoryError("empty vault password from the prompt")
    return password


def expand_path(path: str) -> str:
    """A password source as Ansible opens it (utils.path.unfrackpath, follow=False):
    environment variables and `~` expanded, absolute against the current folder. A
    `--vault-id id@~/f` gets no expansion from the shell, nor does `--vault-password-file=~/f`
    or an ansible.cfg `vault_identity_list = id@$HOME/f`."""
    return os.path.normpath(os.path.abspath(os.path.expanduser(os.path.expandvars(path))))


def _from_file(source: str, vault_id: str, earlier: Sequence[Secret], timeout_s: float) -> bytes:
    path = expand_path(source)
    # Named as given, expanded (a relative name stays relative: shorter, and as typed).
    shown = os.path.expanduser(os.path.expandvars(source))
    where = f"vault password file {shown}"
    if not os.path.exists(path):
        raise InventoryError(f"{where} was not found")
    if os.path.isdir(path):
        raise InventoryError(f"{where} is a directory")
    if os.stat(path).st_mode & 0o111:  # any execute bit, as Ansible's is_executable
        return _run_script(path, shown, is_client_script(source), vault_id, timeout_s)
    try:
        # As an inventory named on the command line: a pipe (`<(pass show vault)`) is read
        # to its writer's end, a FIFO nobody writes to is empty, not a hang in open().
        data = read_input(
            path, "a vault password file", MAX_INVENTORY_BYTES, InventoryError, pipes=True
        )
    except OSError as e:
        raise InventoryError(f"cannot read {where}: {e.strerror}") from None
    data = data.strip()
    if is_encrypted(data):
        # Ansible opens a password file encrypted with a password given before it.
        try:
            data = decrypt(data.decode("ascii", "replace"), earlier).strip(b"\r\n")
        except VaultError as e:
            raise InventoryError(f"{where}: {e}") from None
    if not data:
        raise InventoryError(f"{where} is empty")
    return data


def is_client_script(path: str) -> bool:
    """Ansible's rule: `something-client` or `something-client.ext` gets `--vault-id ID`."""
    return os.path.splitext(path)[0].endswith("-client")


def _run_script(path: str, shown: str, client: bool, vault_id: str, timeout_s: float) -> bytes:
    command = [path]
    if client:
        command += ["--vault-id", vault_id]
    kind = "vault password client script" if client else "vault password script"
    try:
        # stderr and stdin stay the user's terminal (a script may prompt), as in Ansible;
        # a client script's stderr is captured for its error message.
        run = run_bounded(
            command, f"{kind} {shown}", timeout_s, user_stdin=True, capture_stderr=client
        )
    except OSError as e:
        raise InventoryError(f"cannot run {kind} {shown}: {e.strerror}") from None
    code = run.proc.returncode
    err = run.err.decode("utf-8", "replace").strip()
    detail = f": {err.splitlines()[-1]}" if err else ""
    if client and code == 2:
        raise InventoryError(f"{kind} {shown} has no password for vault id {vault_id!r}{detail}")
    if code != 0:
        raise InventoryError(f"{kind} {shown} exited {code}{detail}")
    password = bytes(run.out).strip(b"\r\n")
    if not password:
        raise InventoryError(f"{kind} {shown} printed an empty password")
    return password
