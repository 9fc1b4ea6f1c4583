"""The evidence keeper's rings and caps, driven by the core's own event types, over a real store;
and a Wi-Fi record's bytes crossing the daemon socket's wire form."""

from __future__ import annotations

import gc
import json
import tracemalloc
from pathlib import Path
from typing import Any

from scanner.core.events import (
    AlertRaised,
    AlertResolved,
    AlertView,
    DeviceChanged,
    EvidenceWanted,
)
from scanner.observations import BleAdvert, SdrBurst, WifiFrame
from scanner.runtime.transport.codec import decode_line, encode_line
from scanner.sinks.evidence import (
    BURST_OVERHEAD_BYTES,
    ITEM_OVERHEAD_BYTES,
    EvidenceKeeper,
    EvidenceOptions,
)
from scanner.store.db import Store
from scanner.store.evidence import digest_of, item_digest

from .conftest import radiotap_probe

T0 = 1_764_000_000.0
PHONE = "5e:54:1c:bc:dc:b8"
OTHER = "32:19:ad:c4:0f:e4"


def _frame(mac: str, t: float, seq: int) -> WifiFrame:
    raw = radiotap_probe(mac, seq, -50)
    return WifiFrame(t, t, "probe_req", mac, True, -50, 2437, "", seq, "f" * 16, raw=raw)


def _view(alert_id: str, device: str) -> AlertView:
    return AlertView(
        alert_id, "handset", "Handset in zone", T0, 0.9, 1, ("wifi",), (), (device,), 0.0
    )


def _device(device: str, mac: str) -> DeviceChanged:
    return DeviceChanged(
        {"id": device, "identifiers": {"macs": [mac], "ble": [], "fingerprints": []}}
    )


def _rows(store: Store) -> list[dict[str, Any]]:
    return [dict(r) for r in store.query("SELECT * FROM evidence ORDER BY id")]


def test_pre_roll_then_live_then_the_digest_is_chained(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    keeper = EvidenceKeeper(store, EvidenceOptions(pre_roll_s=30.0))
    # Frames at -60 s (outside the pre-roll), -20 s and -10 s (inside), and another phone's.
    for dt in (-60.0, -20.0, -10.0):
        keeper.observe(_frame(PHONE, T0 + dt, int(dt + 100)))
    keeper.observe(_frame(OTHER, T0 - 5, 7))
    view = _view("al-1", "wifi:d1")
    keeper.handle(
        [_device("wifi:d1", PHONE), AlertRaised(T0, view), EvidenceWanted(T0, "al-1", ("wifi:d1",))]
    )
    keeper.observe(_frame(PHONE, T0 + 5, 200))
    keeper.observe(_frame(OTHER, T0 + 6, 8))
    keeper.handle([AlertResolved(T0 + 30, view, "left_zone")])
    keeper.observe(_frame(PHONE, T0 + 40, 201))  # after the alert: not kept
    keeper.close()
    rows = _rows(store)
    assert [float(str(r["ts"])) - T0 for r in rows] == [-20.0, -10.0, 5.0]
    assert {r["alert_id"] for r in rows} == {"al-1"}
    (record,) = store.query("SELECT detail FROM alert_history WHERE event = 'evidence'")
    detail = json.loads(record["detail"])
    assert detail["final"] is True
    wifi = detail["radios"]["wifi"]
    assert wifi["count"] == 3
    assert wifi["sha256"] == digest_of(item_digest(bytes(r["payload"])) for r in rows)
    store.close()


def test_caps_bound_the_ring_and_the_alert(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    # A frame's bytes and what holding it costs in memory.
    one = len(radiotap_probe(PHONE, 1, -50)) + ITEM_OVERHEAD_BYTES
    # The ring holds four frames' cost; an alert keeps at most three items per radio.
    keeper = EvidenceKeeper(
        store, EvidenceOptions(pre_roll_s=600.0, ring_bytes=4 * one, alert_items=3)
    )
    for i in range(10):
        keeper.observe(_frame(PHONE, T0 - 10 + i, i))
    assert keeper.counters["wifi_ring_full"] == 6
    view = _view("al-2", "wifi:d2")
    keeper.handle([_device("wifi:d2", PHONE), AlertRaised(T0, view)])
    for i in range(5):
        keeper.observe(_frame(PHONE, T0 + i, 50 + i))
    keeper.handle([AlertResolved(T0 + 10, view, "left_zone")])
    keeper.close()
    assert len(_rows(store)) == 3
    assert keeper.counters["wifi_over_alert_cap"] == 6
    detail = json.loads(
        store.query("SELECT detail FROM alert_history WHERE event = 'evidence'")[0]["detail"]
    )
    assert detail["radios"]["wifi"] == {
        "count": 3,
        "not_kept": 6,
        "sha256": detail["radios"]["wifi"]["sha256"],
    }
    store.close()


def test_a_rotating_ble_address_joins_the_open_alert(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    keeper = EvidenceKeeper(store)
    first, second = "4D:D1:F1:3B:BF:95", "51:E4:A2:13:22:55"

    def advert(address: str, t: float) -> BleAdvert:
        return BleAdvert(t, t, address, "random", -60, manufacturer_data={76: b"\x10\x05"})

    keeper.observe(advert(first, T0 - 1))
    keeper.observe(advert(second, T0 - 0.5))  # not yet known to be this phone
    view = AlertView("al-3", "handset", "t", T0, 0.9, 1, ("ble",), (), ("ble:b1",), 0.0)
    device = {"id": "ble:b1", "identifiers": {"macs": [], "ble": [first.lower()]}}
    keeper.handle([DeviceChanged(device), AlertRaised(T0, view)])
    # The core joins the phone's next address: its ring records are kept then.
    device = {"id": "ble:b1", "identifiers": {"macs": [], "ble": [first.lower(), second.lower()]}}
    keeper.handle([DeviceChanged(device)])
    keeper.observe(advert(second, T0 + 1))
    keeper.close()
    lines = [json.loads(bytes(r["payload"])) for r in _rows(store)]
    assert sorted((x["address"], x["ts"]) for x in lines) == sorted(
        [(first, T0 - 1), (second, T0 - 0.5), (second, T0 + 1)]
    )
    # Closed while open: the digest so far is chained, marked not final.
    detail = json.loads(
        store.query("SELECT detail FROM alert_history WHERE event = 'evidence'")[0]["detail"]
    )
    assert detail["final"] is False and detail["radios"]["ble"]["count"] == 3
    store.close()


def test_a_frames_bytes_cross_the_daemon_socket() -> None:
    frame = _frame(PHONE, T0, 3)
    back = decode_line(encode_line(frame))
    assert isinstance(back, WifiFrame)
    assert back == frame and back.raw == frame.raw


def test_a_bursts_iq_crosses_the_daemon_socket_and_is_kept(tmp_path: Path) -> None:
    from scanner.observations import SdrBurst

    burst = SdrBurst(
        T0, T0, T0 + 0.000577, 897.4, 200.0, -30.0, 20.0, "E-GSM-900 UL",
        iq_meta=b'{"global": {}}\n', iq=bytes(range(256)) * 8,
    )  # fmt: skip
    back = decode_line(encode_line(burst))
    assert isinstance(back, SdrBurst) and back.iq == burst.iq and back.iq_meta == burst.iq_meta
    store = Store(tmp_path / "s.db")
    keeper = EvidenceKeeper(store)  # no recordings: the burst's own IQ is what is kept
    keeper.observe(back)
    view = AlertView("al-4", "handset", "t", T0, 0.9, 1, ("sdr",), (), (), 0.0)
    keeper.handle([AlertRaised(T0, view)])
    keeper.close()
    (row,) = _rows(store)
    assert row["format"] == "sigmf" and burst.iq in bytes(row["payload"])
    store.close()


def test_a_crowd_of_small_frames_holds_the_ring_to_its_cap_in_memory(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    cap = 2 * 1024 * 1024
    keeper = EvidenceKeeper(store, EvidenceOptions(pre_roll_s=600.0, ring_bytes=cap))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(40_000):  # a crowd: a new MAC every 20 frames, all within the pre-roll
            n = i // 20
            mac = f"da:00:00:{(n >> 8) & 0xFF:02x}:{n & 0xFF:02x}:01"
            keeper.observe(_frame(mac, T0, i % 4096))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
        keeper.close()
        store.close()
    # The cap counts each frame at its bytes and ITEM_OVERHEAD_BYTES: the ring holds as many
    # frames as that count allows, all of the same cost, and lets the rest go.
    one = len(radiotap_probe(PHONE, 1, -50)) + ITEM_OVERHEAD_BYTES
    assert keeper.counters["wifi_ring_full"] == 40_000 - cap // one
    # What the ring holds in memory, not only its frames' bytes, stays well within the cap: an
    # item costs some 50 bytes beside its frame, not the 256 counted, and its frame, sealed in
    # a block with 255 others, a fraction of its bytes (the crowd's frames differ in their MAC
    # and sequence number).
    assert held < cap * 0.35, held


def test_an_alert_open_for_hours_holds_its_item_hashes_compactly(tmp_path: Path) -> None:
    # A phone left inside keeps its alert open while thousands of its frames are kept: what
    # the open alert holds for them, once their rows are written, is their hashes for the
    # digest, and the digest still covers every item as the rows hold it.
    store = Store(tmp_path / "s.db")
    one = len(radiotap_probe(PHONE, 1, -50)) + ITEM_OVERHEAD_BYTES
    items = 4_000
    keeper = EvidenceKeeper(
        store, EvidenceOptions(pre_roll_s=30.0, ring_bytes=4 * one, alert_items=items)
    )
    view = _view("al-9", "wifi:d9")
    keeper.handle([_device("wifi:d9", PHONE), AlertRaised(T0, view)])
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(items):
            keeper.observe(_frame(PHONE, T0 + i * 0.01, i % 4096))
        keeper.flush()
        # A full collection empties the interpreter's free lists (it keeps up to 2,000 freed
        # tuples of each size for reuse, the written rows' among them), so what is left
        # traced is what is held.
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    keeper.handle([AlertResolved(T0 + 60, view, "left_zone")])
    keeper.close()
    rows = _rows(store)
    detail = json.loads(
        store.query("SELECT detail FROM alert_history WHERE event = 'evidence'")[0]["detail"]
    )
    store.close()
    assert len(rows) == items
    assert detail["radios"]["wifi"]["count"] == items
    assert detail["radios"]["wifi"]["sha256"] == digest_of(
        item_digest(bytes(r["payload"])) for r in rows
    )
    # 32 bytes of SHA-256 an item, and a little for the ring's four frames; a bytes object of
    # its own in a list took 73 bytes an item (292 kB here).
    assert held < items * 48, held


def test_items_sealed_in_blocks_come_back_as_they_entered(tmp_path: Path) -> None:
    # Frames and adverts of varied lengths from a crowd; the cap lets the oldest go part way
    # into a block. What an alert takes from sealed blocks, its phone's frames and its tag's
    # adverts, is byte for byte what entered, in order, and what had left is not taken.
    store = Store(tmp_path / "s.db")
    one = len(radiotap_probe(PHONE, 1, -50)) + ITEM_OVERHEAD_BYTES
    keeper = EvidenceKeeper(store, EvidenceOptions(pre_roll_s=600.0, ring_bytes=1000 * one))
    sent: list[bytes] = []
    adverts: list[BleAdvert] = []
    for i in range(3_000):
        mac = PHONE if i % 7 == 0 else f"da:00:00:{(i >> 8) & 0xFF:02x}:{i & 0xFF:02x}:01"
        ssid = bytes(range(i % 29))  # lengths vary, so the offsets in a block do
        frame = _frame(mac, T0 - 300 + i * 0.1, i % 4096)
        frame = WifiFrame(frame.ts, frame.mono, "probe_req", mac, True, -50, 2437, "", i % 4096,
                          "f" * 16, raw=radiotap_probe(mac, i % 4096, -50, ssid))  # fmt: skip
        keeper.observe(frame)
        if mac == PHONE:
            sent.append(frame.raw)
        address = "7A:11:22:33:44:55" if i % 5 == 0 else f"4E:00:00:00:{i & 0xFF:02X}:01"
        advert = BleAdvert(frame.ts, frame.mono, address, "random", -60 - i % 30,
                           manufacturer_data={76: bytes([16, i % 256])})  # fmt: skip
        keeper.observe(advert)
        if address == "7A:11:22:33:44:55":
            adverts.append(advert)
    # Frames all cost the same but the last 29: about 1,000 are held, the rest left.
    held = 3_000 - keeper.counters["wifi_ring_full"]
    assert 900 < held < 1_100
    device = {
        "id": "wifi:d9",
        "identifiers": {"macs": [PHONE], "ble": ["7A:11:22:33:44:55"]},
    }
    keeper.handle([DeviceChanged(device), AlertRaised(T0, _view("al-9", "wifi:d9"))])
    keeper.close()
    rows = _rows(store)
    wifi = [bytes(r["payload"]) for r in rows if r["radio"] == "wifi"]
    assert len(wifi) > 100 and wifi == sent[-len(wifi) :]
    # The frames before the ones kept had left the ring: the oldest kept is near the cut.
    assert len(sent) - len(wifi) > 250
    ble = [json.loads(bytes(r["payload"])) for r in rows if r["radio"] == "ble"]
    assert len(ble) > 50
    assert [line["rssi"] for line in ble] == [a.rssi_dbm for a in adverts[-len(ble) :]]
    assert [line["manufacturer_data"] for line in ble] == [
        {"76": a.manufacturer_data[76].hex()} for a in adverts[-len(ble) :]
    ]
    store.close()


def test_a_devices_pre_roll_comes_from_the_index_in_ring_order(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    one = len(radiotap_probe(PHONE, 1, -50)) + ITEM_OVERHEAD_BYTES
    keeper = EvidenceKeeper(store, EvidenceOptions(pre_roll_s=600.0, ring_bytes=6 * one))
    second = "5e:54:1c:bc:dc:b9"
    # Two MACs of one phone interleaved with a crowd's; the ring holds the last six frames, so
    # the phone's first frame has left it (and its key's index) before the alert.
    sent = [(PHONE, 0), (OTHER, 1), (second, 2), (OTHER, 3), (PHONE, 4), (second, 5), (PHONE, 6)]
    for mac, seq in sent:
        keeper.observe(_frame(mac, T0 - 10 + seq, seq))
    assert keeper.counters["wifi_ring_full"] == 1
    view = _view("al-5", "wifi:d5")
    device = {"id": "wifi:d5", "identifiers": {"macs": [PHONE, second], "ble": []}}
    keeper.handle([DeviceChanged(device), AlertRaised(T0, view)])
    keeper.close()
    kept = [float(str(r["ts"])) - T0 for r in _rows(store)]
    assert kept == [-8.0, -6.0, -5.0, -4.0]
    store.close()


class _WindowsOfBursts:
    """The far end of the IQ: a recording's window of a burst, named by the burst itself."""

    def window(self, burst: SdrBurst) -> tuple[bytes, bytes] | None:
        return repr(burst).encode(), b"\x01\x02" * 8


def test_a_long_run_through_small_rings_keeps_the_newest_items_as_they_came(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "s.db")
    one = len(radiotap_probe(PHONE, 1, -50)) + ITEM_OVERHEAD_BYTES
    options = EvidenceOptions(pre_roll_s=1e6, ring_bytes=300 * one, iq_windows=64)
    keeper = EvidenceKeeper(store, options, _WindowsOfBursts())
    sent: list[tuple[str, int]] = []
    bursts: list[SdrBurst] = []
    # Thousands of items through rings of a few hundred: the rings' arrays are cut many times.
    for i in range(5000):
        t = T0 - 5000 + i
        mac = PHONE if i % 7 == 0 else f"da:00:00:00:{i % 50:02x}:01"
        keeper.observe(_frame(mac, t, i % 4096))
        sent.append((mac, i % 4096))
        if i % 2 == 0:
            gain = None if i % 6 == 0 else 20.0 + i / 7
            burst = SdrBurst(t, t, t + 0.000577, 897.4 + i / 1000, 200.0, -40.0 - i / 3,
                             9.0 + i / 11, "E-GSM-900 UL", gain)  # fmt: skip
            keeper.observe(burst)
            bursts.append(burst)
    held = sent[-300:]  # the ring holds the newest 300 frames (each counted at ``one``)
    view = AlertView("al-6", "handset", "t", T0, 0.9, 1, ("wifi", "sdr"), (), ("wifi:d6",), 0.0)
    keeper.handle([_device("wifi:d6", PHONE), AlertRaised(T0, view)])
    keeper.close()
    rows = _rows(store)
    wifi = [bytes(r["payload"]) for r in rows if r["radio"] == "wifi"]
    assert wifi == [radiotap_probe(PHONE, seq, -50) for mac, seq in held if mac == PHONE]
    # The SDR ring holds its newest bursts; the alert keeps the oldest 64 of them, each the
    # burst as it came (its window is named by the burst's every field).
    per_burst = ITEM_OVERHEAD_BYTES + BURST_OVERHEAD_BYTES
    in_ring = bursts[-(300 * one // per_burst) :]
    sdr = [bytes(r["payload"]) for r in rows if r["radio"] == "sdr"]
    assert len(sdr) == 64
    for payload, burst in zip(sdr, in_ring[:64], strict=True):
        assert repr(burst).encode() in payload
    detail = json.loads(
        store.query("SELECT detail FROM alert_history WHERE event = 'evidence'")[0]["detail"]
    )
    assert detail["radios"]["sdr"]["not_kept"] == len(in_ring) - 64
    store.close()


def test_bursts_without_iq_and_nowhere_to_cut_it_are_counted_as_not_kept(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    keeper = EvidenceKeeper(store)  # the core daemon's keeper: no recording to cut IQ from
    for i in range(1000):
        t = T0 - 100 + i * 0.05
        keeper.observe(SdrBurst(t, t, t + 0.000577, 897.4, 200.0, -50.0, 9.0, "E-GSM-900 UL"))
    view = AlertView("al-7", "handset", "t", T0, 0.9, 1, ("sdr",), (), (), 0.0)
    keeper.handle([AlertRaised(T0, view)])
    keeper.close()
    assert _rows(store) == []
    assert keeper.counters["sdr_no_iq"] == 1000
    detail = json.loads(
        store.query("SELECT detail FROM alert_history WHERE event = 'evidence'")[0]["detail"]
    )
    assert detail["radios"]["sdr"]["count"] == 0
    assert detail["radios"]["sdr"]["not_kept"] == 1000
    store.close()
