"""``checkpoint inspect ble FILE``: one NDJSON line per advertisement, with its classification.

Reads ``ble.jsonl`` recordings and the capture formats of other tools (btsnoop HCI logs and
pcap/pcapng with Bluetooth link types, see ``capture_import``), sniffed by their magic bytes.
Contract fields (DESIGN.md): ts, address, address_type, rssi_dbm, kind, vendor, reason.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from scanner.errors import RecordingError
from scanner.observations import BleAdvert
from scanner.sources.ble.classify import BleClass, classify


def inspect_record(advert: BleAdvert, cls: BleClass) -> dict[str, Any]:
    """The NDJSON object of one classified advertisement."""
    return {
        "ts": advert.ts,
        "address": advert.address,
        "address_type": advert.address_type,
        "address_kind": cls.address_kind,
        "rssi_dbm": advert.rssi,
        "kind": cls.kind,
        "vendor": cls.vendor,
        "reason": cls.reason,
        "model": cls.model,
        "confidence": cls.confidence,
        "protocols": list(cls.protocols),
        "local_name": advert.local_name,
        "tx_power": advert.tx_power,
        "adapter": advert.adapter,
    }


def read_any(path: str | Path, counters: Counter[str]) -> Iterator[BleAdvert]:
    """Adverts from any supported recording, chosen by the file's first bytes."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise RecordingError(f"cannot read {p}: {exc.strerror or exc}") from exc
    from scanner.sources.ble import capture_import

    fmt = capture_import.sniff(head)
    if fmt is not None:
        counters[f"format_{fmt}"] = 1
        return capture_import.read_capture(p, counters)
    from scanner.sources.ble.jsonl import read_jsonl

    counters["format_jsonl"] = 1
    return read_jsonl(p, counters)


def inspect_file(path: str | Path, out: IO[str]) -> Counter[str]:
    """Write one JSON line per advertisement in ``path`` to ``out``; return the counters."""
    counters: Counter[str] = Counter()
    for advert in read_any(path, counters):
        cls = classify(advert)
        counters[f"kind_{cls.kind}"] += 1
        if cls.malformed:
            counters["malformed_payload"] += 1
        out.write(json.dumps(inspect_record(advert, cls), separators=(",", ":")) + "\n")
    return counters
