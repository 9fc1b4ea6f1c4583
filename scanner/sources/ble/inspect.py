"""``checkpoint inspect ble FILE``: one NDJSON line per advertisement, with its classification.

Reads ``ble.jsonl`` recordings and the capture formats of other tools (btsnoop HCI logs and
pcap/pcapng with Bluetooth link types, see ``capture_import``), sniffed by their magic bytes.
Contract fields (DESIGN.md): ts, address, address_type, rssi_dbm, kind, vendor, reason.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import IO, Any

from scanner.observations import BleAdvert
from scanner.sources.ble.classify import BleClass, classify
from scanner.sources.ble.replay import read_recording


def inspect_record(advert: BleAdvert, cls: BleClass) -> dict[str, Any]:
    """The NDJSON object of one classified advertisement."""
    return {
        "ts": advert.ts,
        "address": advert.address,
        "address_type": advert.address_type,
        "address_kind": cls.address_kind,
        "rssi_dbm": advert.rssi_dbm,
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


def inspect_file(path: str | Path, out: IO[str]) -> Counter[str]:
    """Write one JSON line per advertisement in ``path`` to ``out``; return the counters."""
    counters: Counter[str] = Counter()
    for advert in read_recording(path, counters):
        cls = classify(advert)
        counters[f"kind_{cls.kind}"] += 1
        if cls.malformed:
            counters["malformed_payload"] += 1
        out.write(json.dumps(inspect_record(advert, cls), separators=(",", ":")) + "\n")
    return counters
