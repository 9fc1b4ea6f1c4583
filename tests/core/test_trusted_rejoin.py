"""After an acknowledgement, an address first heard inside the zone is taken for the
acknowledged phone only where no other phone could be it: its new address, when its old one has
just fallen silent where it stood while its other radio still speaks and no other handset
inside could own it. Every other newcomer alarms: a radio of another kind first heard inside
(a phone with its BLE off looks the same), one heard walking in or at the edge, one beside a
second handset, a new address at another level, one whose phone's other radio is silent, one
heard beside the old address, and one whose old address is heard again afterwards.
"""

from __future__ import annotations

from dataclasses import replace

from scanner.core.identity import AddressBleIdentity
from scanner.core.options import CoreOptions
from scanner.core.wifi_tracking import WifiTracker
from scanner.observations import BleAdvert, WifiFrame
from tests.core.helpers import (
    START,
    Harness,
    address_harness,
    advert,
    classify_all_handsets,
    probe,
)

MODEL_FP = "fp-model-x"
BLE_A = "5C:00:00:00:00:0A"
BLE_B = "5C:00:00:00:00:0B"
BLE_C = "5C:00:00:00:00:0C"
MAC_1 = "02:11:11:11:11:01"
MAC_2 = "06:22:22:22:22:02"
MAC_3 = "0a:33:33:33:33:03"

Record = WifiFrame | BleAdvert


def _ble(address: str, t0: float, t1: float, *, walks_in: bool, rssi: int = -55) -> list[Record]:
    """A phone's BLE advertising once a second from ``t0`` to ``t1``; walking in, it is heard
    from the corridor first (-86 dBm and rising) and crosses at ``t0``."""
    out: list[Record] = []
    if walks_in:
        out += [advert(t0 - 5 + i, address, -86 + 3 * i) for i in range(5)]
    t = t0
    while t < t1:
        out.append(advert(t, address, rssi))
        t += 1.0
    return out


def _wifi(mac: str, t: float, rssi: int, seq0: int, fp: str = MODEL_FP) -> list[Record]:
    """One probe burst: three frames 20 ms apart, a sequence counter of its own."""
    return [replace(probe(t + 0.02 * i, mac, rssi, fp=fp), seq=(seq0 + i) % 4096) for i in range(3)]


def _play(core: Harness, records: list[Record], until: float) -> list[float]:
    """Feed the records in time order, ticking every second; the alarm times."""
    records = sorted(records, key=lambda r: r.mono)
    tick = records[0].mono
    for record in records:
        while tick < record.mono:
            core.tick(tick)
            tick += 1.0
        core.handle(record)
    while tick <= until:
        core.tick(tick)
        tick += 1.0
    return [round(ln["ts"] - START, 1) for ln in core.all_lines if ln["alarm"]]


def _tracked(ack_after_s: float = 5.0) -> tuple[Harness, WifiTracker]:
    """A core with the real Wi-Fi tracker (it joins a model's random addresses by their shared
    fingerprint) and one BLE device per address."""
    tracker = WifiTracker()
    core = Harness(
        None,
        CoreOptions(),
        ack_after_s=ack_after_s,
        wifi_tracker=tracker,
        ble_tracker=AddressBleIdentity(),
        classify=classify_all_handsets,
    )
    return core, tracker


# -- the other radio of the one handset inside ---------------------------------------------------
def test_a_wifi_only_phone_first_heard_inside_beside_a_ble_only_handset_alarms() -> None:
    core = address_harness(ack_after_s=5.0)
    # Phone A walks in on BLE at 100 s (alarm, acknowledged at 105 s). A second phone, its BLE
    # off, probes first from inside at 143 s: it cannot be told from A's Wi-Fi, and must alarm.
    records = _ble(BLE_A, 100.0, 220.0, walks_in=True)
    records += _wifi(MAC_1, 143.0, -39, 100, fp="fp-1") + _wifi(MAC_1, 180.0, -40, 200, fp="fp-1")
    alarms = _play(core, records, 230.0)
    assert len(alarms) == 2 and 143.0 <= alarms[1] <= 144.0, alarms
    assert core.fusion.rejoined == 0


def test_a_wifi_heard_walking_in_alarms_beside_the_one_handset_inside() -> None:
    core = address_harness(ack_after_s=5.0)
    records = _ble(BLE_A, 100.0, 220.0, walks_in=True)
    # A second phone, Wi-Fi only, probing twice a second from the corridor and crossing at 160.
    for i, rssi in enumerate((-75, -72, -68, -64, -60, -45, -44, -43, -42, -42)):
        records += _wifi(MAC_1, 155.0 + 0.5 * i, rssi, 16 * i, fp="fp-1")
    alarms = _play(core, records, 230.0)
    assert alarms[0] <= 101.0
    assert any(157.0 <= t <= 161.0 for t in alarms[1:]), alarms


def test_a_wifi_heard_at_the_edge_after_the_handset_entered_alarms_when_it_comes_in() -> None:
    core = address_harness(ack_after_s=5.0)
    records = _ble(BLE_A, 100.0, 220.0, walks_in=True)
    # A second phone probes once from the corridor at 130 s, and next from inside at 170 s:
    # at the edge while phone A was inside, it is not phone A.
    records += _wifi(MAC_1, 130.0, -75, 10, fp="fp-1") + _wifi(MAC_1, 170.0, -42, 90, fp="fp-1")
    alarms = _play(core, records, 230.0)
    assert len(alarms) == 2 and 170.0 <= alarms[1] <= 171.0, alarms
    assert core.fusion.rejoined == 0


def test_a_wifi_first_heard_inside_beside_two_handsets_alarms() -> None:
    core = address_harness(ack_after_s=5.0)
    # Phone A at 100 s, phone B walking in at 130 s (both acknowledged): a Wi-Fi first heard
    # inside at 160 s could be either's, or a third phone's.
    records = _ble(BLE_A, 100.0, 220.0, walks_in=True) + _ble(BLE_B, 130.0, 220.0, walks_in=True)
    records += _wifi(MAC_1, 160.0, -42, 100, fp="fp-1")
    alarms = _play(core, records, 230.0)
    assert len(alarms) == 3, alarms
    assert 100.0 <= alarms[0] <= 101.0 and 130.0 <= alarms[1] <= 131.0
    assert 160.0 <= alarms[2] <= 161.0
    assert core.fusion.rejoined == 0


def test_a_radio_first_heard_long_after_its_handset_entered_alarms() -> None:
    core = address_harness(ack_after_s=5.0)
    # Past link_alone_window_s (90 s) after the phone entered, a Wi-Fi first heard is as likely
    # a phone that came in quietly.
    records = _ble(BLE_A, 100.0, 300.0, walks_in=True) + _wifi(MAC_1, 250.0, -42, 7, fp="fp-1")
    alarms = _play(core, records, 310.0)
    assert len(alarms) == 2 and 250.0 <= alarms[1] <= 251.0, alarms


def test_a_phone_switched_on_inside_alarms_on_its_second_radio_at_the_latest() -> None:
    core = address_harness(ack_after_s=5.0)
    # Phone A is inside on BLE; a phone switched on inside probes first (which cannot be told
    # from A's Wi-Fi), then advertises: A's BLE is still heard, so that BLE is another phone.
    records = _ble(BLE_A, 100.0, 220.0, walks_in=True)
    records += _wifi(MAC_1, 150.0, -42, 100, fp="fp-1") + _ble(BLE_C, 152.0, 220.0, walks_in=False)
    alarms = _play(core, records, 230.0)
    assert alarms[0] <= 101.0
    assert any(150.0 <= t <= 153.0 for t in alarms[1:]), alarms


# -- the new address of the one handset inside --------------------------------------------------
def _visitor_one(until: float) -> list[Record]:
    """A phone walking in at 100 s: BLE every second, Wi-Fi bursts every 8 s from 102 s."""
    records = _ble(BLE_A, 100.0, until, walks_in=True)
    seq, t = 100, 102.0
    while t < 135.0:
        records += _wifi(MAC_1, t, -45, seq)
        seq += 3
        t += 8.0
    return records


def test_a_rotated_address_where_the_phone_stood_is_the_same_phone() -> None:
    core, tracker = _tracked()
    # Its last burst from MAC_1 at 134 s; at 142 s it probes from a new address with a new
    # counter (the tracker can join them on the model's fingerprint alone).
    records = _visitor_one(200.0) + _wifi(MAC_2, 142.0, -46, 3000)
    alarms = _play(core, records, 210.0)
    assert tracker.joined_by_model(MAC_2)
    assert len(alarms) == 1, alarms
    assert core.fusion.rejoined == 1


def test_a_new_address_at_another_level_alarms() -> None:
    core, tracker = _tracked()
    # 14 dB louder than the old address: more than fading moves one phone where it stands.
    records = _visitor_one(200.0) + _wifi(MAC_2, 142.0, -31, 3000)
    alarms = _play(core, records, 210.0)
    assert tracker.joined_by_model(MAC_2)
    assert len(alarms) == 2 and 142.0 <= alarms[1] <= 143.0, alarms


def test_a_new_address_while_the_old_is_still_heard_alarms() -> None:
    core, _tracker = _tracked()
    # MAC_1 probes again a second before MAC_2 starts: one phone sends from one address.
    records = _visitor_one(200.0) + _wifi(MAC_1, 141.0, -45, 130) + _wifi(MAC_2, 142.0, -45, 3000)
    alarms = _play(core, records, 210.0)
    assert len(alarms) == 2 and 142.0 <= alarms[1] <= 143.0, alarms


def test_a_new_address_while_the_phones_other_radio_is_silent_alarms() -> None:
    core, _tracker = _tracked()
    # Visitor one's BLE stops at 130 s: by 142 s nothing says that phone is still here, and a
    # phone of its model stepping in where it stood must alarm.
    records = _visitor_one(130.0) + _wifi(MAC_2, 142.0, -45, 3000)
    alarms = _play(core, records, 210.0)
    assert len(alarms) == 2 and 142.0 <= alarms[1] <= 143.0, alarms


def test_a_second_phone_probing_with_another_fingerprint_is_not_the_owner() -> None:
    core, _tracker = _tracked()
    # Phone B walks in at 120 s on BLE and Wi-Fi (another model: fingerprint fp-2) and probes
    # on: B cannot be the phone of visitor one's model's new address at 142 s; visitor one is.
    records = _visitor_one(200.0) + _ble(BLE_B, 120.0, 200.0, walks_in=True)
    for t in (121.0, 136.0, 151.0, 166.0):
        records += _wifi(MAC_3, t, -44, 2000 + int(t), fp="fp-2")
    records += _wifi(MAC_2, 142.0, -46, 3000)
    alarms = _play(core, records, 210.0)
    assert len(alarms) == 2, alarms
    assert 100.0 <= alarms[0] <= 101.0 and 120.0 <= alarms[1] <= 121.0
    assert core.fusion.rejoined == 1


def test_a_new_address_of_the_model_beside_a_second_phone_alarms() -> None:
    core, _tracker = _tracked()
    # A second phone (BLE) walked in at 120 s: the new address of the model could be its Wi-Fi.
    records = _visitor_one(200.0) + _ble(BLE_B, 120.0, 200.0, walks_in=True)
    records += _wifi(MAC_2, 142.0, -45, 3000)
    alarms = _play(core, records, 210.0)
    assert len(alarms) == 3, alarms
    assert 120.0 <= alarms[1] <= 121.0 and 142.0 <= alarms[2] <= 143.0


def test_the_old_address_heard_again_proves_the_new_one_another_phone() -> None:
    core, _tracker = _tracked()
    # MAC_2 is taken for visitor one's new address at 142 s; at 150 s MAC_1 probes again: one
    # phone sends from one address at a time, so MAC_2 was another phone of the model.
    records = _visitor_one(200.0) + _wifi(MAC_2, 142.0, -46, 3000) + _wifi(MAC_1, 150.0, -45, 130)
    records += _wifi(MAC_2, 158.0, -46, 3010)
    alarms = _play(core, records, 210.0)
    assert core.fusion.rejoined == 1 and core.fusion.disputed == 1
    assert len(alarms) == 2 and 150.0 <= alarms[1] <= 151.0, alarms
