"""The batch's wire form: what a node sends decodes to the same records; bad input is refused
with a reason, one bad record costs only itself; chrony's tracking line read right."""

from __future__ import annotations

import json

import pytest

from scanner.mqtt.batch import ClockSync, decode_batch, encode_batch, parse_chrony_tracking
from scanner.observations import (
    BleAdvert,
    Radio,
    SdrBurst,
    SensorState,
    SensorStatus,
    SourceEvent,
    WifiFrame,
)
from scanner.runtime.transport.codec import FrameError, encode_line

RECORDS: list[SourceEvent] = [
    WifiFrame(
        ts=1.5,
        mono=2.5,
        subtype="probe_req",
        mac="02:00:00:00:00:01",
        random_mac=True,
        rssi_dbm=-40,
        freq_mhz=2412,
        ssid="",
        seq=7,
        fingerprint="ab",
        sensor="n1",
    ),
    BleAdvert(
        ts=1.6,
        mono=2.6,
        address="4A:00:00:00:00:01",
        address_type="random",
        rssi_dbm=-70,
        manufacturer_data={76: b"\x10\x05"},
        sensor="n1",
    ),
    SdrBurst(
        ts=1.7,
        mono=2.7,
        t_end=1.8,
        freq_mhz=900.2,
        bandwidth_khz=200.0,
        power_dbfs=-30.0,
        snr_db=12.0,
        band="E-GSM-900 UL",
        sensor="n1",
    ),
    SensorStatus(
        ts=1.9, mono=2.9, sensor="n1", radio=Radio.WIFI, state=SensorState.OK, counters={"a": 1}
    ),
]
CLOCK = ClockSync(True, "chrony", -0.25)


def test_a_batch_decodes_to_the_records_it_was_made_of() -> None:
    payload = encode_batch("n1", "wifi", 41, 100.0, CLOCK, [encode_line(r) for r in RECORDS])
    batch = decode_batch(payload)
    assert (batch.node, batch.stream, batch.seq, batch.sent) == ("n1", "wifi", 41, 100.0)
    assert batch.clock == CLOCK
    assert list(batch.records) == RECORDS
    assert batch.malformed == 0


def test_one_bad_record_is_counted_and_the_rest_kept() -> None:
    lines = [encode_line(RECORDS[0]), b'{"v":1,"t":"wifi","ts":"soon"}', encode_line(RECORDS[1])]
    batch = decode_batch(encode_batch("n1", "s", 0, 1.0, CLOCK, lines))
    assert list(batch.records) == RECORDS[:2]
    assert batch.malformed == 1


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"v": 2}, "version"),
        ({"node": ""}, "'node'"),
        ({"seq": -1}, "'seq'"),
        ({"seq": True}, "'seq'"),
        ({"sent": "now"}, "'sent'"),
        ({"clock": {"synced": True, "source": "x", "offset_s": 1e9}}, "more than a day"),
        ({"clock": {"synced": "yes", "source": "x", "offset_s": 0}}, "'synced'"),
        ({"records": {}}, "'records'"),
    ],
)
def test_a_malformed_batch_is_refused_with_its_reason(change: dict[str, object], why: str) -> None:
    obj = json.loads(encode_batch("n1", "s", 0, 1.0, CLOCK, []))
    obj.update(change)
    with pytest.raises(FrameError, match=why):
        decode_batch(json.dumps(obj).encode())


@pytest.mark.parametrize("payload", [b"", b"\xff\xfe", b"[1,2]", b"{" * 100_000])
def test_garbage_is_refused_not_raised(payload: bytes) -> None:
    with pytest.raises(FrameError):
        decode_batch(payload)


def test_chrony_tracking_gives_the_correction_to_add() -> None:
    # chronyc -c tracking: field 5 is the system clock's correction (positive: it is slow).
    synced = (
        "A9FEA97B,169.254.169.123,4,1764000000.1,0.002000,0.000001,0.000002,-12.3,0.0,0.01,"
        "0.0005,0.0001,64.1,Normal"
    )
    assert parse_chrony_tracking(synced) == ClockSync(True, "chrony", 0.002)
    unsynced = "00000000,,0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,1.0,1.0,0.0,Not synchronised"
    assert parse_chrony_tracking(unsynced) == ClockSync(False, "chrony", 0.0)
    assert parse_chrony_tracking("506 Cannot talk to daemon") is None
