"""Regenerate ``wifi_vendors.json`` from a Wireshark ``manuf`` file (IEEE OUI assignments).

    python scanner/core/data/make_wifi_vendors.py /usr/share/wireshark/manuf

Only organisation names matter: phone makers (handset evidence for a probing station with a
global MAC), makers of phones and other things under the same OUIs (no evidence either way),
and makers of PCs, Wi-Fi modules and IoT boards (evidence against).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

# Makers whose OUIs (these organisation names) go into phones and little else.
PHONE = {
    "Huawei": r"^Huawei Device Co",
    "Xiaomi": r"^(Xiaomi Communications|Beijing Xiaomi Mobile Software)",
    "Oppo": r"^Guangdong Oppo Mobile",
    "vivo": r"^vivo Mobile Communication",
    "Motorola": r"^Motorola (Mobility LLC|\(Wuhan\) Mobility)",
    "Realme": r"^Realme Chongqing",
    "Honor": r"^Honor Device",
    "HMD": r"^HMD Global",
    "OnePlus": r"^OnePlus (Technology|Tech|Electronics)",
    "Nothing": r"^Nothing Technology",
}
# Makers of phones and of TVs, appliances, streaming sticks or network gear under the same
# OUIs: a global address of theirs says who made it, not that it is a phone. Modern phones of
# theirs probe from random addresses; a global one probing is as likely a TV (Samsung), a
# Chromecast (Google) or a router (Huawei Technologies).
MIXED = {
    "Samsung": r"^Samsung Electronics Co\.,Ltd$",
    "Google": r"^Google, Inc\.$",
    "Huawei": r"^Huawei Technologies Co",
}
COMPUTER = {
    "Intel": r"^Intel Corporate",
    "Liteon": r"^Liteon Technology",
    "Realtek": r"^Realtek Semiconductor",
    "AzureWave": r"^AzureWave Technology",
    "Raspberry Pi": r"^Raspberry Pi",
    "TP-Link": r"^TP-LINK (TECHNOLOGIES|CORPORATION)",
    "Foxconn": r"^(CLOUD NETWORK TECHNOLOGY SINGAPORE|Hon Hai Precision|CHONGQING FUGUI)",
    "Dell": r"^Dell Inc",
    "HP": r"^(Hewlett Packard|HP Inc)",
    "Lenovo": r"^LCFC\(HeFei\)",
    "Espressif": r"^Espressif Inc",
    "Microsoft": r"^Microsoft Corporation",
    "Wistron": r"^Wistron",
    "Quanta": r"^Quanta",
    "Compal": r"^Compal",
    "Pegatron": r"^PEGATRON",
    "Gemtek": r"^Gemtek",
}


def main(manuf: str) -> None:
    out: dict[str, dict[str, list[str]]] = {"phone": {}, "mixed": {}, "computer": {}}
    for line in Path(manuf).read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if line.startswith("#") or len(parts) < 3 or len(parts[0]) != 8:
            continue
        oui, name = parts[0].lower().replace(":", ""), parts[2]
        for group, table in (("phone", PHONE), ("mixed", MIXED), ("computer", COMPUTER)):
            for vendor, rx in table.items():
                if re.search(rx, name, re.IGNORECASE):
                    out[group].setdefault(vendor, []).append(oui)
    doc = {
        "source": "IEEE MA-L assignments (OUI to organisation), selected by organisation name",
        **{g: {v: sorted(x) for v, x in t.items()} for g, t in out.items()},
    }
    target = Path(__file__).with_name("wifi_vendors.json")
    target.write_text(json.dumps(doc, separators=(",", ":"), sort_keys=True) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
