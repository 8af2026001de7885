"""Operator accounts: eth-account encrypted keystores (Web3 Secret Storage v3, scrypt) under the pinpoint home.

    $PINPOINT_HOME/keystores/<alias>.json      (default home: ~/.pinpoint)

A private key exists in plaintext only in memory: `new` and `import_key` encrypt before anything is written, the
files are created with mode 0600, and `unlock` decrypts into a `LocalAccount`. The passphrase comes from the
caller (the CLI prompts, or reads the environment variable PINPOINT_PASSPHRASE).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from protocol.config import home
from offchain.common.errors import PinpointError

PASSPHRASE_ENV = "PINPOINT_PASSPHRASE"
_ALIAS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class AccountError(PinpointError, ValueError):
    """An account operation failed: unknown or duplicate alias, bad alias, bad key or wrong passphrase."""




def keystore_dir() -> Path:
    """Directory of the keystore files ($PINPOINT_HOME/keystores)."""
    return home() / "keystores"


def _path(alias: str) -> Path:
    if not _ALIAS.match(alias):
        raise AccountError(f"bad alias {alias!r}: use letters, digits, '_', '.', '-' (at most 64)")
    return keystore_dir() / f"{alias}.json"


def _write(alias: str, keystore: dict) -> None:
    p = _path(alias)
    p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # O_EXCL: never overwrite an existing keystore; 0600: readable by its owner only
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(keystore, f)


def import_key(alias: str, private_key: str | bytes, passphrase: str) -> str:
    """Encrypt ``private_key`` (32 bytes or hex) under ``passphrase`` and store it as ``alias``.

    Returns the checksummed address. Raises AccountError if the alias exists or is invalid, the key is not a valid
    secp256k1 private key, or the passphrase is empty."""
    if not passphrase:
        raise AccountError("empty passphrase")
    if _path(alias).exists():
        raise AccountError(f"account {alias!r} already exists ({_path(alias)})")
    try:
        acct = Account.from_key(private_key)
    except Exception as e:  # eth-keys raises ValueError / ValidationError for bad keys
        raise AccountError(f"not a valid private key: {type(e).__name__}") from None
    _write(alias, Account.encrypt(acct.key, passphrase))
    return acct.address


def new(alias: str, passphrase: str) -> str:
    """Create a fresh random key, store it encrypted as ``alias``; returns its address. Raises AccountError."""
    return import_key(alias, Account.create().key, passphrase)


def _read(alias: str) -> dict:
    p = _path(alias)
    if not p.exists():
        raise AccountError(f"no account {alias!r} in {keystore_dir()} (see `pinpoint accounts list`)")
    return json.loads(p.read_text())


def address(alias: str) -> str:
    """Checksummed address of ``alias`` (read from the keystore; no passphrase needed). Raises AccountError."""
    from web3 import Web3

    return Web3.to_checksum_address("0x" + _read(alias)["address"].removeprefix("0x"))


def unlock(alias: str, passphrase: str) -> LocalAccount:
    """Decrypt ``alias`` (about 1 s of scrypt). Raises AccountError on an unknown alias or a wrong passphrase."""
    ks = _read(alias)
    try:
        key = Account.decrypt(ks, passphrase)
    except ValueError:
        raise AccountError(f"wrong passphrase for account {alias!r}") from None
    return Account.from_key(key)


def export(alias: str, passphrase: str) -> str:
    """The private key of ``alias`` as 0x-hex (printed by `pinpoint accounts export`, never written by us)."""
    return "0x" + bytes(unlock(alias, passphrase).key).hex()


def list_accounts() -> list[tuple[str, str]]:
    """[(alias, address)] of every keystore, sorted by alias."""
    d = keystore_dir()
    if not d.exists():
        return []
    return [(p.stem, address(p.stem)) for p in sorted(d.glob("*.json"))]
