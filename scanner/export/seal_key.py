"""The site's sealing key, kept apart from the store.

The key seals each bundle's manifest (an HMAC only the unit can make) and keys the address
pseudonyms. It lives in its own file, never in the database: someone who can write the store
(the ``checkpoint`` user, or a copy of the SD card's data partition) can edit records and even
re-link the hash chains, but cannot seal a bundle of the edited records as this unit.

Where the key is found, first match wins:

1. an explicit path (``--seal-key``, or ``[export] seal_key`` in the config);
2. ``$CREDENTIALS_DIRECTORY/seal.key``: systemd's ``LoadCredential=`` hands a service the
   root-only ``/etc/checkpoint/seal.key`` without the service user being able to read (or
   replace) the file itself;
3. ``$CHECKPOINT_SEAL_KEY`` (a path), else ``/etc/checkpoint/seal.key`` when it exists
   (``firmware/provision.sh`` makes it, root:root 0600);
4. ``seal.key`` beside the database (a development or demo store), made 0600 when absent.

The file holds one hex key per line: the first seals and pseudonymises; the others are earlier
keys, still accepted when verifying bundles sealed before a change. The same key, through its
own derivation (``scanner.store.chain.derive_chain_key``), keys the alert-history chain, so the
store's writers (the core, the API, a replay) are handed it too. A line ``chain-keyed-since T``
(unix seconds, written when the file is made) says from when every link must be keyed: a plain
link stamped later is a re-linked chain, not history from before the key.

A store from before the key moved out keeps its key in ``settings`` (``site_key``): when there
is no key file yet, that key becomes the file (earlier bundles keep verifying) and leaves the
store. Once the file exists a key in the store is removed and never used, so planting one there
seals nothing.
"""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from scanner.errors import CheckpointError
from scanner.store.chain import derive_chain_key
from scanner.store.db import Store

_LOGGER = logging.getLogger(__name__)

SYSTEM_PATH = Path("/etc/checkpoint/seal.key")
CREDENTIAL = "seal.key"
ENV_PATH = "CHECKPOINT_SEAL_KEY"
LEGACY_SETTING = "site_key"  # where the key was kept in the store before it moved out
KEY_BYTES = 32  # HMAC-SHA256's block-safe key length: 256 bits, as the hash's output
FILE_MODE = 0o600
SINCE_WORD = "chain-keyed-since"


class SealKeyError(CheckpointError):
    """The key file is unreadable, malformed or has permissions that expose it."""


@dataclass(frozen=True, slots=True)
class SealKeys:
    """The current key, the earlier ones, and the file they came from."""

    current: bytes
    earlier: tuple[bytes, ...]
    path: Path
    chain_since: float | None = None  # from when every chain link is keyed (None: not said)

    @property
    def all(self) -> tuple[bytes, ...]:
        return (self.current, *self.earlier)

    @property
    def chain_keys(self) -> tuple[bytes, ...]:
        """The chain keys derived from each key, current first."""
        return tuple(derive_chain_key(k) for k in self.all)


def key_path(store_path: str | Path | None, explicit: str | Path | None = None) -> Path:
    """Where this process finds the key (see the module's order)."""
    if explicit:
        return Path(explicit)
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    if creds and (Path(creds) / CREDENTIAL).is_file():
        return Path(creds) / CREDENTIAL
    env = os.environ.get(ENV_PATH)
    if env:
        return Path(env)
    if SYSTEM_PATH.is_file():
        return SYSTEM_PATH
    if store_path is None:
        raise SealKeyError(
            f"no sealing key: none at {SYSTEM_PATH}; run firmware/provision.sh or pass --seal-key"
        )
    return Path(store_path).resolve().parent / CREDENTIAL


def read_keys(path: Path) -> SealKeys:
    """The keys in ``path``; SealKeyError when unreadable, malformed or open to others."""
    try:
        st = path.stat()
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise SealKeyError(f"sealing key {path} unreadable: {exc}") from exc
    if st.st_mode & 0o077 and not _is_credential(path):
        raise SealKeyError(
            f"sealing key {path} is readable by others (mode {st.st_mode & 0o777:o}): "
            f"chmod 600 {path}"
        )
    keys: list[bytes] = []
    since: float | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(SINCE_WORD):
            try:
                since = float(line[len(SINCE_WORD) :])
            except ValueError:
                raise SealKeyError(
                    f"sealing key {path} line {number}: {SINCE_WORD} needs unix seconds"
                ) from None
            continue
        try:
            key = bytes.fromhex(line)
        except ValueError:
            key = b""
        if len(key) != KEY_BYTES:
            raise SealKeyError(f"sealing key {path} line {number}: not {KEY_BYTES} bytes of hex")
        keys.append(key)
    if not keys:
        raise SealKeyError(f"sealing key {path} holds no key")
    return SealKeys(keys[0], tuple(keys[1:]), path, since)


def _is_credential(path: Path) -> bool:
    # systemd's credentials directory decides the mode of what it hands over.
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    return bool(creds) and path.parent == Path(creds or "")


def write_keys(
    path: Path, keys: list[bytes], chain_since: float | None = None, *, exclusive: bool = False
) -> bool:
    """Write the key file, 0600 from its first byte (never world-readable for a moment).

    The temporary file's name is this writer's own, so two processes starting at once (the core
    and the API of one unit) never take each other's half-written file. ``exclusive`` creates the
    file only if there is none yet and says whether it did: a new key must never replace a key
    another process already uses to link the chain."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=path.name + ".", suffix=".new", dir=path.parent)
    tmp = Path(name)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write("# checkpoint sealing key: first line current, later lines earlier keys\n")
            fh.writelines(k.hex() + "\n" for k in keys)
            if chain_since is not None:
                fh.write(f"{SINCE_WORD} {chain_since:.3f}\n")
            fh.flush()
            os.fsync(fh.fileno())
        if not exclusive:
            tmp.replace(path)
            return True
        try:
            # A hard link is created whole or not at all, and never over an existing file.
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        tmp.unlink(missing_ok=True)


def new_key_file(path: Path) -> SealKeys:
    """A fresh key (what provisioning does on a new unit); another process's, if it won."""
    key = secrets.token_bytes(KEY_BYTES)
    if write_keys(path, [key], time.time(), exclusive=True):
        _LOGGER.warning("made a new sealing key at %s", path)
    return read_keys(path)


def seal_keys(store: Store, explicit: str | Path | None = None, *, create: bool = True) -> SealKeys:
    """The site's keys for this store, moving a key kept in the store out to the file."""
    path = key_path(store.path, explicit)
    legacy = store.get_setting(LEGACY_SETTING)
    old = (
        bytes.fromhex(legacy) if isinstance(legacy, str) and len(legacy) == 2 * KEY_BYTES else None
    )
    if path.exists():
        keys = read_keys(path)
        if old is not None and old not in keys.all:
            # Never taken from the store once the file exists: whoever can write the store
            # could otherwise plant a key of their own and seal with it.
            _LOGGER.warning("a sealing key in the store's settings is ignored: %s is the key", path)
    elif old is not None:
        # The store's chain so far was linked without a key: from now on every link is keyed.
        write_keys(path, [old], time.time(), exclusive=True)
        keys = read_keys(path)
    elif create:
        keys = new_key_file(path)
    else:
        raise SealKeyError(f"no sealing key at {path}")
    if old is not None:
        with store.write(durable=True) as conn:
            conn.execute("DELETE FROM settings WHERE key = ?", (LEGACY_SETTING,))
        _LOGGER.warning("the sealing key moved out of the store to %s", path)
    return keys


def attach_chain_key(
    store: Store, explicit: str | Path | None = None, *, create: bool | None = None
) -> SealKeys:
    """Find the sealing key and hand the store its chain key, so its links are keyed.

    ``create`` defaults to making a development key beside the store only when not running
    as a systemd service with credentials (there the key must come from provisioning, and its
    absence is an error to fix, not a key to invent)."""
    if create is None:
        create = not os.environ.get("CREDENTIALS_DIRECTORY")
    keys = seal_keys(store, explicit, create=create)
    store.chain_key = derive_chain_key(keys.current)
    return keys
