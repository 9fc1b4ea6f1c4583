"""The real BLE captures in ../shared/data/ble/, one test per folder, against its README truth.

Each folder's README says what devices it holds and what to check; these tests check exactly
that, field by field against tshark (when installed) and, for the MIT LL folder, against the
authors' own per-packet CSV. Devices are counted through the BLE tracker, so one phone that
rotates its address must still be one device. A device "is a handset" here when any of its
adverts is classified so: the strictest reading of "never a handset".
"""

from __future__ import annotations

import csv
import gzip
import shutil
import subprocess
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

from scanner.core.ble_tracking import BleTracker
from scanner.observations import BleAdvert
from scanner.sources.ble import link_layer as ll
from scanner.sources.ble.capture_import import parse_ll, pcapng_frames, read_capture
from scanner.sources.ble.classify import HANDSET, classify


def _folder(shared_data: Path, name: str) -> Path:
    folder = shared_data / "ble" / name
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent: no such capture to check")
    return folder


def _tshark(path: Path, fields: list[str], display_filter: str = "") -> list[list[str]]:
    exe = shutil.which("tshark")
    if exe is None:
        pytest.skip("tshark is not installed (Debian package tshark)")
    cmd = [exe, "-r", str(path), "-T", "fields", "-E", "separator=|", "-E", "occurrence=f"]
    if display_filter:
        cmd += ["-Y", display_filter]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120).stdout
    return [line.split("|") for line in out.splitlines()]


@dataclass(frozen=True, slots=True)
class Devices:
    """What the tracker made of a capture: device id -> addresses and kinds of its adverts."""

    addresses: dict[str, set[str]]
    kinds: dict[str, Counter[str]]

    def of(self, address: str) -> str:
        return next(d for d, addrs in self.addresses.items() if address.upper() in addrs)

    def handsets(self) -> list[set[str]]:
        return [self.addresses[d] for d, k in self.kinds.items() if k[HANDSET]]

    def is_handset(self, address: str) -> bool:
        return self.kinds[self.of(address)][HANDSET] > 0


def _track(adverts: list[BleAdvert]) -> Devices:
    tracker = BleTracker()
    ids: list[tuple[str, str]] = []
    kinds: dict[str, Counter[str]] = defaultdict(Counter)
    for advert in adverts:
        ids.append((advert.address, tracker.observe(advert, cls := classify(advert))))
        kinds[advert.address][cls.kind] += 1
    # Linking settles later than the first adverts: attribute every address at the end.
    addresses: dict[str, set[str]] = defaultdict(set)
    by_device: dict[str, Counter[str]] = defaultdict(Counter)
    for address, _first_id in ids:
        device = tracker.device_of(address)
        if device is None:
            raise AssertionError(f"{address} has no device")
        addresses[device].add(address)
    for device, addrs in addresses.items():
        for address in addrs:
            by_device[device] += kinds[address]
    return Devices(dict(addresses), dict(by_device))


@dataclass(frozen=True, slots=True)
class SnifferPacket:
    ts: float
    header: ll.NordicHeader
    pkt: bytes  # the LL packet, access address onwards
    advert: BleAdvert | None


def _sniffer_packets(path: Path, counters: Counter[str]) -> list[SnifferPacket]:
    """Every frame of a link-type-272 capture with its header, and the advert when there is one
    (the same calls the importer makes, kept per frame so fields can be compared)."""
    out = []
    for ts, linktype, frame in pcapng_frames(path.read_bytes(), counters):
        assert linktype == 272
        split = ll.parse_nordic(frame, counters)
        assert split is not None
        header, pkt = split
        advert = parse_ll(ts, pkt, header.rssi_dbm, counters, "ll", crc_verdict=header.crc_ok)
        out.append(SnifferPacket(ts, header, pkt, advert))
    return out


def _agrees_with_tshark(path: Path, packets: list[SnifferPacket]) -> Counter[str]:
    """Per frame, our header and advert vs tshark's nordic_ble/btle fields; returns mismatches."""
    rows = _tshark(
        path,
        [
            "nordic_ble.crcok",
            "nordic_ble.channel",
            "nordic_ble.rssi",
            "btle.access_address",
            "btle.advertising_header.pdu_type",
            "btle.advertising_address",
        ],
    )
    assert len(rows) == len(packets)
    bad: Counter[str] = Counter()
    for row, p in zip(rows, packets, strict=True):
        crc_ok, channel, rssi, access, pdu, address = row
        bad["crc"] += (crc_ok == "1") != p.header.crc_ok
        bad["channel"] += int(channel) != p.header.channel
        bad["rssi"] += int(rssi) != p.header.rssi_dbm
        legacy_adv = access == "0x8e89bed6" and pdu in ("0x00", "0x02", "0x04", "0x06")
        if p.advert is None:
            bad["advert_missing"] += p.header.crc_ok and legacy_adv
            continue
        bad["advert_from_bad_crc"] += not p.header.crc_ok
        bad["address"] += p.advert.address.lower() != address
        bad["advert_rssi"] += p.advert.rssi_dbm != int(rssi)
    return +bad


# -- mitll-anechoic-phones ---------------------------------------------------------------------
MITLL = {
    # file prefix: (the phone's addresses, other handsets' addresses)
    "iPhone_11-1": ({"50:C9:02:BF:5F:FC", "5E:CB:2E:28:BD:BD"}, []),
    "Samsung_Galaxy_S10-2": ({"6A:22:28:25:B4:50", "42:18:6D:34:86:60"}, [{"57:A0:12:26:48:B2"}]),
    "Samsung_Galaxy_S7-2": ({"5C:D0:7E:37:D7:A7", "78:56:5A:C4:1E:0F"}, []),
}


@pytest.mark.parametrize("prefix", list(MITLL))
def test_mitll_anechoic_phones(shared_data: Path, prefix: str) -> None:
    """One handset per phone across its rotating addresses (the S10 file's bystander iPhone a
    second); RSSI and channel of every advert equal the authors' CSV; all CRCs ok."""
    folder = _folder(shared_data, "mitll-anechoic-phones")
    (path,) = folder.glob(f"{prefix}__*.pcapng")
    counters: Counter[str] = Counter()
    packets = _sniffer_packets(path, counters)
    adverts = [p.advert for p in packets if p.advert is not None]
    assert len(adverts) == len(packets)  # all frames are CRC-ok legacy adverts
    assert counters["crc_bad"] == 0

    with gzip.open(path.with_suffix(".csv.gz"), "rt", encoding="utf-8") as fh:
        rows = [r for r in csv.reader(fh) if len(r) >= 7 and r[1] == "Bluetooth"]
    ours = {(round(p.ts, 6), p.advert.address.lower()): p for p in packets if p.advert}
    mismatch: Counter[str] = Counter()
    for _stamp, _tag, address, rssi, _tx, epoch, channel in (r[:7] for r in rows):
        p = ours.get((round(float(epoch), 6), address.lower()))
        if p is None or p.advert is None:
            mismatch["csv_row_not_found"] += 1
            continue
        mismatch["rssi"] += p.advert.rssi_dbm != int(rssi)
        mismatch["channel"] += p.header.channel != int(channel)
    assert len(rows) > 4000
    assert +mismatch == Counter()

    phone, others = MITLL[prefix]
    devices = _track(adverts)
    handsets = devices.handsets()
    assert phone in handsets, handsets  # the phone's addresses make exactly one device
    assert sorted(map(sorted, handsets)) == sorted(map(sorted, [phone, *others]))


# -- nrf-sniffer-airpods -----------------------------------------------------------------------
def test_nrf_sniffer_airpods(shared_data: Path) -> None:
    """Link type 272 read; the sniffer's 200 CRC-bad frames make no device; kinds vs README."""
    path = _folder(shared_data, "nrf-sniffer-airpods") / "airpods.pcapng"
    counters: Counter[str] = Counter()
    packets = _sniffer_packets(path, counters)
    assert len(packets) == 1328
    assert counters["crc_bad"] == sum(not p.header.crc_ok for p in packets) == 200
    good = {p.advert.address for p in packets if p.advert is not None}
    adverts = list(read_capture(path, Counter()))
    assert {a.address for a in adverts} == good
    # The addresses in bad-CRC advertising frames that no good frame carries are the
    # bit-flipped phantoms: none may become a device.
    phantoms = {
        p.pkt[6:12][::-1].hex(":").upper()
        for p in packets
        if not p.header.crc_ok and p.pkt[:4] == b"\xd6\xbe\x89\x8e" and len(p.pkt) >= 12
    } - good
    assert len(phantoms) > 20
    assert not phantoms & {a.address for a in adverts}
    devices = _track(adverts)
    for address, kind in {
        "CA:28:01:F3:AD:E7": "audio",  # AirPods (Find My near owner, AirPods type)
        "61:C3:00:D4:5C:D2": "audio",  # Sony WH-1000XM5
        "7D:4B:EA:A5:7B:F1": "audio",  # Jabra Elite 85h
        "30:F9:70:97:4B:B9": "computer",  # Windows laptop
        "7D:40:4F:B0:07:A6": "wearable",  # Apple Watch
    }.items():
        kinds = devices.kinds[devices.of(address)]
        assert kinds[kind] > 0 and not kinds[HANDSET], (address, kinds)
    for address in ("D0:C8:03:86:2B:3B", "D4:9D:C0:7F:43:6B"):  # Govee, the Samsung device
        assert not devices.is_handset(address)
    # The handsets are the ~8 iPhones sending Nearby Info, and nothing else (no Find My
    # near-owner sender).
    nearby = {
        a.address
        for a in adverts
        if classify(a).reason.startswith("Apple Nearby Info, iPhone")
        and 0x4C in a.manufacturer_data
    }
    handsets = devices.handsets()
    assert set().union(*handsets) <= nearby
    assert 6 <= len(handsets) <= 9
    assert _agrees_with_tshark(path, packets) == Counter()


# -- nrf-sniffer-garmin ------------------------------------------------------------------------
def test_nrf_sniffer_garmin(shared_data: Path) -> None:
    """The Garmin is not a handset; data-channel PDUs skipped; 289 CRC-bad frames dropped."""
    path = _folder(shared_data, "nrf-sniffer-garmin") / "garmin.pcapng"
    counters: Counter[str] = Counter()
    packets = _sniffer_packets(path, counters)
    assert len(packets) == 4881
    assert counters["crc_bad"] == 289
    data_channel = [p for p in packets if p.header.crc_ok and p.advert is None]
    assert counters["skipped_ll_data"] > 400  # the followed connection
    assert all(p.header.channel < 37 for p in data_channel if p.header.packet_id == 0x06)
    adverts = [p.advert for p in packets if p.advert is not None]
    devices = _track(adverts)
    garmin = devices.kinds[devices.of("D1:5C:F0:EE:02:8F")]
    assert garmin["wearable"] > 0 and not garmin[HANDSET], garmin
    assert devices.is_handset("40:63:DE:11:1C:3D")  # the owner's Apple device, Nearby Info
    for pc in ("3B:16:D4:5D:0C:38", "2A:6A:F5:15:0C:94", "13:6A:CA:CB:85:66"):
        assert devices.kinds[devices.of(pc)]["computer"] > 0
        assert not devices.is_handset(pc)
    assert _agrees_with_tshark(path, packets) == Counter()
    # tshark's count of data-channel PDUs with a good CRC is what we skipped, not read.
    rows = _tshark(
        path, ["frame.number"], "btle.access_address != 0x8e89bed6 && nordic_ble.crcok == 1"
    )
    assert counters["skipped_ll_data"] == len(rows)


# -- android-btsnoop-dsd6 ----------------------------------------------------------------------
def test_android_btsnoop_dsd6(shared_data: Path) -> None:
    """145/145 LE Advertising Reports vs tshark; bands, speaker and headset never handsets; the
    two Nearby Info senders the only Apple handsets."""
    folder = _folder(shared_data, "android-btsnoop-dsd6")
    (path,) = folder.glob("btsnoop_hci.log*")
    counters: Counter[str] = Counter()
    adverts = list(read_capture(path, counters))
    assert len(adverts) == 145
    rows = _tshark(path, ["bthci_evt.bd_addr", "bthci_evt.rssi"], "bthci_evt.le_meta_subevent == 2")
    assert len(rows) == 145
    for (address, rssi), advert in zip(rows, adverts, strict=True):
        assert (advert.address.lower(), advert.rssi_dbm) == (address, int(rssi))
    devices = _track(adverts)
    never = {
        "E2:68:A2:4A:56:B0": "wearable",  # MI Band 2
        "C6:40:17:1B:F6:E9": "wearable",  # Mi Smart Band 4
        "2C:41:A1:F7:00:03": "audio",  # Bose Revolve SoundLink
        "2C:26:17:16:16:3C": "wearable",  # Oculus headset
        "07:9D:B2:C4:D2:86": "computer",  # Windows 10 PC
    }
    for address, kind in never.items():
        kinds = devices.kinds[devices.of(address)]
        assert kinds[kind] > 0 and not kinds[HANDSET], (address, kinds)
    assert sorted(map(sorted, devices.handsets())) == [["40:9A:8D:E3:F0:7A"], ["75:0B:22:98:05:EE"]]
