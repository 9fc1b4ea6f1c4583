"""The raw evidence behind alerts in the store, and the digest that chains it.

Rows of the ``evidence`` table hold one item each: a Wi-Fi frame (radiotap + 802.11 bytes), a
BLE advertisement (one ``ble.jsonl`` line) or an IQ window (a SigMF archive: a tar holding the
``.sigmf-meta`` and ``.sigmf-data`` pair). When an alert's capture ends, one ``evidence``
record of its alert history (hash-chained like every transition) states, per radio, how many
items were kept and their digest: editing, adding or removing an item after that shows in
``checkpoint verify`` as a digest that no longer matches the bundle's files.

The digest of a radio's items does not depend on their order (items are added to an alert as
its devices become known, not in time order): ``sha256`` over the sorted ``sha256`` of each
item. An IQ item's own hash covers its metadata and its samples (``item_digest_sigmf``), so the
verifier, which sees the pair as two files, computes the same value.
"""

from __future__ import annotations

import hashlib
import io
import sqlite3
import struct
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from scanner.store.chain import append_alert_history

EVIDENCE_EVENT = "evidence"
FORMAT_WIFI = "wifi_frame"
FORMAT_BLE = "ble_advert"
FORMAT_SIGMF = "sigmf"
_LEN = struct.Struct(">Q")


@dataclass(frozen=True, slots=True)
class EvidenceRow:
    """One item of evidence kept for one alert."""

    alert_id: str
    device_id: str
    radio: str
    ts: float
    format: str
    payload: bytes


def item_digest(payload: bytes) -> bytes:
    """The hash of one frame or advertisement line, as the digest takes it."""
    return hashlib.sha256(payload).digest()


def item_digest_sigmf(meta: bytes, data: bytes) -> bytes:
    """The hash of one IQ window: its metadata's length, the metadata, then the samples."""
    h = hashlib.sha256(_LEN.pack(len(meta)))
    h.update(meta)
    h.update(data)
    return h.digest()


def digest_of(items: Iterable[bytes]) -> str:
    """The order-free digest of a radio's items, from each item's own hash."""
    h = hashlib.sha256()
    for d in sorted(items):
        h.update(d)
    return h.hexdigest()


def sigmf_archive(meta: bytes, data: bytes, stem: str) -> bytes:
    """A SigMF archive (an uncompressed tar of the pair) held as one evidence row."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for suffix, payload in ((".sigmf-meta", meta), (".sigmf-data", data)):
            info = tarfile.TarInfo(f"{stem}/{stem}{suffix}")
            info.size = len(payload)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(payload))
    return out.getvalue()


def insert_rows_in(conn: sqlite3.Connection, rows: Iterable[EvidenceRow]) -> int:
    """Store rows inside the caller's transaction; returns how many."""
    cur = conn.executemany(
        "INSERT INTO evidence (alert_id, device_id, radio, ts, format, payload) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [(r.alert_id, r.device_id, r.radio, r.ts, r.format, r.payload) for r in rows],
    )
    return cur.rowcount


def record_digest_in(
    conn: sqlite3.Connection,
    alert_id: str,
    ts: float,
    radios: dict[str, dict[str, Any]],
    *,
    final: bool,
    pre_roll_s: float,
    chain_key: bytes | None,
) -> str:
    """Chain the alert's evidence digest (per radio: count and digest) into its history.

    ``final`` is false when the capture ended without the alert resolving (the core stopped):
    a later record, if the capture resumes, supersedes it.
    """
    return append_alert_history(
        conn,
        alert_id,
        ts,
        EVIDENCE_EVENT,
        "core",
        {"radios": radios, "final": final, "pre_roll_s": pre_roll_s},
        chain_key,
    )
