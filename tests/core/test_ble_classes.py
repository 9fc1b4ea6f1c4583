"""The core's BLE classifier remembers an advertisement's classification for its repeats."""

from __future__ import annotations

import dataclasses

from scanner.core.kinds import RememberingClassifier
from scanner.observations import BleAdvert
from scanner.sources.ble.classify import classify

NEARBY_INFO = {76: bytes.fromhex("1005031c5a0b2e")}


def _advert(i: int = 0, **changes: object) -> BleAdvert:
    advert = BleAdvert(
        ts=1764000000.0 + i,
        mono=1000.0 + i,
        address="4A:11:22:33:44:55",
        address_type="random",
        rssi_dbm=-60 - i,
        manufacturer_data=NEARBY_INFO,
    )
    return dataclasses.replace(advert, **changes)  # type: ignore[arg-type]


def test_a_repeat_is_classified_as_the_first_was() -> None:
    calls: list[BleAdvert] = []

    def counting(advert: BleAdvert) -> object:
        calls.append(advert)
        return classify(advert)

    remembering = RememberingClassifier(counting)
    first = remembering(_advert(0))
    assert first == classify(_advert(0))
    # Another time and level, the same address and payload: the same classification, not
    # worked out again.
    assert remembering(_advert(1)) is first
    assert len(calls) == 1


def test_what_the_classification_reads_is_the_key() -> None:
    remembering = RememberingClassifier()
    variants = [
        _advert(),
        _advert(address="4A:11:22:33:44:56"),
        _advert(address="CA:11:22:33:44:55"),  # random static, not resolvable
        _advert(address_type="public"),
        _advert(local_name="Galaxy S21"),
        _advert(manufacturer_data={76: bytes.fromhex("0719010f2022f58f0100")}),
        _advert(manufacturer_data={}, service_data={"0000fe9f-0000-1000-8000-00805f9b34fb": b""}),
        _advert(manufacturer_data={}, service_uuids=("0000fd6f-0000-1000-8000-00805f9b34fb",)),
    ]
    for advert in variants:
        assert remembering(advert) == classify(advert), advert
    assert len(remembering) == len(variants)
    for advert in variants:  # each remembered apart
        assert remembering(advert) == classify(advert), advert


def test_bounded() -> None:
    remembering = RememberingClassifier(kept=16)
    for i in range(100):
        address = f"4A:11:22:33:44:{i:02X}"
        assert remembering(_advert(address=address)) == classify(_advert(address=address))
        assert len(remembering) <= 16


def test_an_unhashable_payload_is_classified_without_remembering() -> None:
    remembering = RememberingClassifier()
    advert = _advert(manufacturer_data={76: bytearray(NEARBY_INFO[76])})
    assert remembering(advert) == classify(advert)
    assert len(remembering) == 0
