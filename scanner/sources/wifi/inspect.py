"""`checkpoint inspect wifi FILE`: one NDJSON line per 802.11 frame the scanner uses.

Contract fields (DESIGN.md): ts, subtype, mac, random_mac, rssi_dbm, freq_mhz, ssid, seq,
fingerprint; bssid and dst are added. Frames the scanner does not use or cannot parse are
counted, not printed; a file that cannot be read raises ``RecordingError``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TextIO

from scanner.sources.wifi.replay import read_frames


def inspect_file(path: str | Path, out: TextIO) -> Counter[str]:
    """Write the frames of ``path`` to ``out`` as NDJSON; return the counters."""
    counters: Counter[str] = Counter()
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    write = out.write
    for frame in read_frames(path, counters):
        counters["frames"] += 1
        write(
            dumps(
                {
                    "ts": frame.ts,
                    "subtype": frame.subtype,
                    "mac": frame.mac,
                    "random_mac": frame.random_mac,
                    "rssi_dbm": frame.rssi_dbm,
                    "freq_mhz": frame.freq_mhz,
                    "ssid": frame.ssid,
                    "seq": frame.seq,
                    "fingerprint": frame.fingerprint,
                    "bssid": frame.bssid,
                    "dst": frame.dst,
                }
            )
            + "\n"
        )
    return counters
