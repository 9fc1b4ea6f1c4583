"""Evidence behind each alert, in the formats other tools open.

* ``wifi_frame`` rows (raw radiotap + 802.11 bytes) -> one pcap per alert, link type 127, which
  Wireshark, tshark and scapy read as they are.
* ``ble_advert`` rows (JSON as in FORMATS.md) -> one JSONL per alert, the same format
  ``checkpoint inspect ble`` reads.
* ``sigmf`` rows -> the SigMF pair (``.sigmf-meta`` + ``.sigmf-data``). The payload is either the
  UTF-8 path of a recording (``NAME``, ``NAME.sigmf-meta`` or ``NAME.sigmf-data``) or the bytes of a
  SigMF archive (a tar holding the pair).

A payload that cannot be read is listed in the evidence index with the reason, never dropped
silently and never fatal to the export.
"""

from __future__ import annotations

import io
import json
import logging
import re
import struct
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from scanner.store.db import Store

_LOGGER = logging.getLogger(__name__)

LINKTYPE_IEEE802_11_RADIOTAP = 127
_PCAP_HEADER = struct.Struct("<IHHiIII")
_PCAP_RECORD = struct.Struct("<IIII")
PCAP_MAGIC = 0xA1B2C3D4
SNAPLEN = 65535
# A SigMF recording larger than this is listed, not copied: a bundle must stay shareable.
MAX_SIGMF_BYTES = 64 * 1024 * 1024


class _Pseudo(Protocol):
    changes_addresses: bool

    def value(self, value: Any) -> Any: ...

    def mac(self, address: str) -> str: ...

    def wifi_frame(self, frame: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True)
class EvidenceFile:
    """One file of evidence and the index row that describes it."""

    name: str
    data: bytes
    index: dict[str, Any]


def pcap_bytes(frames: list[tuple[float, bytes]]) -> bytes:
    """A classic little-endian pcap with radiotap link type, microsecond timestamps."""
    out = io.BytesIO()
    out.write(_PCAP_HEADER.pack(PCAP_MAGIC, 2, 4, 0, 0, SNAPLEN, LINKTYPE_IEEE802_11_RADIOTAP))
    for ts, frame in frames:
        sec = int(ts)
        usec = min(round((ts - sec) * 1_000_000), 999_999)
        captured = frame[:SNAPLEN]
        out.write(_PCAP_RECORD.pack(sec, usec, len(captured), len(frame)))
        out.write(captured)
    return out.getvalue()


def safe_name(text: str) -> str:
    """A file-name-safe rendering of an alert id."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")
    return cleaned[:80] or "alert"


def alert_evidence(
    store: Store, alert_id: str, folder: str, pseudo: _Pseudo
) -> Iterator[EvidenceFile]:
    """The evidence files of one alert (none when the store holds no evidence for it)."""
    rows = store.query(
        # As a blob whatever its storage class: a payload written as text (by hand, or by a
        # damaged row) must not stop the export on a decoding error.
        "SELECT id, radio, ts, format, CAST(payload AS BLOB) AS payload FROM evidence "
        "WHERE alert_id = ? ORDER BY ts, id",
        (alert_id,),
    )
    frames: list[tuple[float, bytes]] = []
    adverts: list[tuple[float, str]] = []
    sigmf: list[tuple[float, int, bytes]] = []
    skipped: list[str] = []
    for r in rows:
        payload = r["payload"]
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        if r["format"] == "wifi_frame":
            frames.append((float(r["ts"]), pseudo.wifi_frame(bytes(payload))))
        elif r["format"] == "ble_advert":
            line = _advert_line(bytes(payload), float(r["ts"]), pseudo)
            if line is None:
                skipped.append(f"evidence row {r['id']}: BLE advert is not JSON")
            else:
                adverts.append((float(r["ts"]), line))
        elif r["format"] == "sigmf":
            sigmf.append((float(r["ts"]), int(r["id"]), bytes(payload)))
        else:
            skipped.append(f"evidence row {r['id']}: unknown format {r['format']!r}")
    base = {"alert_id": alert_id}
    if frames:
        name = f"{folder}/wifi.pcap"
        yield EvidenceFile(
            name,
            pcap_bytes(frames),
            {
                **base,
                "radio": "wifi",
                "format": "pcap (link type 127)",
                "count": len(frames),
                "file": name,
                "first_ts": frames[0][0],
                "last_ts": frames[-1][0],
                "note": "",
            },
        )
    if adverts:
        name = f"{folder}/ble.jsonl"
        text = "".join(line + "\n" for _, line in adverts)
        yield EvidenceFile(
            name,
            text.encode("utf-8"),
            {
                **base,
                "radio": "ble",
                "format": "jsonl",
                "count": len(adverts),
                "file": name,
                "first_ts": adverts[0][0],
                "last_ts": adverts[-1][0],
                "note": "",
            },
        )
    for ts, row_id, payload in sigmf:
        pair, note = _sigmf_pair(payload)
        if pair is None:
            skipped.append(f"evidence row {row_id}: {note}")
            continue
        stem = f"{folder}/sdr-{row_id}"
        meta, data = pair
        yield EvidenceFile(f"{stem}.sigmf-data", data, {})
        yield EvidenceFile(
            f"{stem}.sigmf-meta",
            meta,
            {
                **base,
                "radio": "sdr",
                "format": "sigmf",
                "count": 1,
                "file": f"{stem}.sigmf-meta",
                "first_ts": ts,
                "last_ts": ts,
                "note": note,
            },
        )
    for problem in skipped:
        _LOGGER.warning("alert %s: %s", alert_id, problem)
        yield EvidenceFile(
            "",
            b"",
            {
                **base,
                "radio": "",
                "format": "",
                "count": 0,
                "file": "",
                "first_ts": None,
                "last_ts": None,
                "note": problem,
            },
        )


def _advert_line(payload: bytes, ts: float, pseudo: _Pseudo) -> str | None:
    """The advert's ``ble.jsonl`` line: as kept (its chained digest covers those bytes), or
    re-written with its address pseudonymised."""
    if not pseudo.changes_addresses:
        try:
            text = payload.decode("utf-8").strip()
        except UnicodeDecodeError:
            return None
        return text if text.startswith("{") and "\n" not in text else None
    try:
        advert = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(advert, dict):
        return None
    advert.setdefault("ts", ts)
    if isinstance(advert.get("address"), str):
        advert["address"] = pseudo.mac(advert["address"])
    return json.dumps(advert, separators=(", ", ": "))


def _sigmf_pair(payload: bytes) -> tuple[tuple[bytes, bytes] | None, str]:
    """(meta, data) from an archive's bytes or a recording's path; else None and why."""
    if len(payload) >= 512 and payload[257:262] == b"ustar":
        return _from_archive(payload)
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None, "SigMF payload is neither a path nor a SigMF archive"
    if not text or "\n" in text or len(text) > 4096:
        return None, "SigMF payload is neither a path nor a SigMF archive"
    base = re.sub(r"\.sigmf-(meta|data)$", "", text)
    meta_path, data_path = Path(base + ".sigmf-meta"), Path(base + ".sigmf-data")
    try:
        size = data_path.stat().st_size
        if size > MAX_SIGMF_BYTES:
            return None, f"SigMF recording {data_path} is {size} bytes; not copied"
        return (meta_path.read_bytes(), data_path.read_bytes()), f"from {base}"
    except OSError as exc:
        return None, f"SigMF recording {base} unreadable: {exc.strerror or exc}"


def _from_archive(payload: bytes) -> tuple[tuple[bytes, bytes] | None, str]:
    try:
        with tarfile.open(fileobj=io.BytesIO(payload), mode="r:") as tar:
            meta = data = None
            for member in tar.getmembers():
                if not member.isfile():
                    continue
                handle = tar.extractfile(member)
                if handle is None:
                    continue
                if member.name.endswith(".sigmf-meta"):
                    meta = handle.read()
                elif member.name.endswith(".sigmf-data"):
                    data = handle.read()
    except (tarfile.TarError, OSError) as exc:
        return None, f"SigMF archive unreadable: {exc}"
    if meta is None or data is None:
        return None, "SigMF archive lacks its .sigmf-meta or .sigmf-data"
    return (meta, data), "from a SigMF archive"
