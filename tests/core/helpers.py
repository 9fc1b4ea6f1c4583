"""Builders of observation records for the core's tests."""

from __future__ import annotations

from scanner.observations import BleAdvert, SdrBurst, WifiFrame

START = 1_764_000_000.0


def probe(t: float, mac: str, rssi: int, fp: str = "fp-a", random_mac: bool = True) -> WifiFrame:
    return WifiFrame(
        ts=START + t,
        mono=t,
        subtype="probe_req",
        mac=mac,
        random_mac=random_mac,
        rssi_dbm=rssi,
        freq_mhz=2437,
        ssid="",
        seq=int(t * 10) % 4096,
        fingerprint=fp,
    )


def advert(t: float, address: str, rssi: int) -> BleAdvert:
    return BleAdvert(
        ts=START + t,
        mono=t,
        address=address,
        address_type="random",
        rssi_dbm=rssi,
        manufacturer_data={76: bytes.fromhex("1005031c5a0b2e")},
    )


def burst(t: float, snr: float, band: str = "LTE B20 UL") -> SdrBurst:
    return SdrBurst(
        ts=START + t,
        mono=t,
        t_end=START + t + 0.001,
        freq_mhz=847.0,
        bandwidth_khz=1000.0,
        power_dbfs=-30.0,
        snr_db=snr,
        band=band,
    )


class HandsetClass:
    """What the BLE classifier returns for an iPhone's Nearby Info (the fields the core reads)."""

    kind = "handset"
    vendor = "Apple"
    reason = "Apple Nearby Info"


def classify_all_handsets(_advert: BleAdvert) -> HandsetClass:
    return HandsetClass()
