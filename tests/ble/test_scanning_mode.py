"""Scanning mode and or-patterns: passive (receive-only) by default, and the default patterns
let through every advertisement the classifier can place."""

from __future__ import annotations

import pytest

from scanner.config import ConfigError
from scanner.observations import BleAdvert
from scanner.sources.ble import vendors
from scanner.sources.ble.classify import classify
from scanner.sources.ble.company_ids import BASE_UUID_SUFFIX
from scanner.sources.ble.constants import ERROR_POLICIES, BleErrorClass
from scanner.sources.ble.options import DEFAULT_OR_PATTERNS, BleOptions

AdStructure = tuple[int, bytes]


def _matches(patterns: tuple[tuple[int, int, bytes], ...], ads: list[AdStructure]) -> bool:
    """BlueZ's or-pattern rule (src/adv_monitor.c): some AD structure of the pattern's type
    holds the pattern's bytes at the pattern's start offset."""
    return any(
        ad_type == p_type and data[start : start + len(content)] == content
        for start, p_type, content in patterns
        for ad_type, data in ads
    )


def _uuid128(uuid16: int) -> str:
    return f"0000{uuid16:04x}{BASE_UUID_SUFFIX}"


def _advert(
    mfr: dict[int, bytes] | None = None,
    svc: dict[str, bytes] | None = None,
    uuids: tuple[str, ...] = (),
    name: str | None = None,
) -> BleAdvert:
    return BleAdvert(
        ts=0.0,
        mono=0.0,
        address="42:00:00:00:00:01",
        address_type="random",
        rssi_dbm=-60,
        local_name=name,
        manufacturer_data=mfr or {},
        service_data=svc or {},
        service_uuids=uuids,
    )


def test_default_is_passive() -> None:
    assert BleOptions().scanning_mode == "passive"
    assert BleOptions.from_mapping({}).scanning_mode == "passive"
    assert BleOptions.from_mapping({"scanning_mode": "active"}).scanning_mode == "active"
    with pytest.raises(ConfigError, match="transmits scan requests"):
        BleOptions.from_mapping({"scanning_mode": "Active"})


def test_passive_unsupported_is_a_fault_that_says_what_to_do() -> None:
    policy = ERROR_POLICIES[BleErrorClass.PASSIVE_UNSUPPORTED]
    assert policy.state == "fault"
    assert policy.retry.first_s > 0  # retried with a backoff, not a tight loop
    assert "--experimental" in policy.message
    assert 'scanning_mode = "active"' in policy.message
    assert "transmits" in policy.message


def test_every_company_the_classifier_decodes_passes_the_default_patterns() -> None:
    """Every company id whose manufacturer data yields a protocol finding must be let through;
    found by asking the classifier itself about all 65536 ids."""
    payload = bytes.fromhex("0105031c5a0b2e")
    decoded = [
        company for company in range(0x10000) if classify(_advert(mfr={company: payload})).protocols
    ]
    assert {0x004C, 0x0006, 0x0075} <= set(decoded)
    for company in decoded:
        ad = (0xFF, company.to_bytes(2, "little") + payload)
        assert _matches(DEFAULT_OR_PATTERNS, [ad]), hex(company)


def test_every_service_the_classifier_places_passes_the_default_patterns() -> None:
    """Every 16-bit service the classifier knows, as service data and as the first UUID of a
    complete or incomplete service list."""
    known = [u for u in range(0x10000) if vendors.service_uuid16(u, b"\x00\x00\x00") is not None]
    assert {0xFE2C, 0xFD6F, 0xFEAA, 0xFEF3} <= set(known)
    for uuid in known:
        le = uuid.to_bytes(2, "little")
        assert _matches(DEFAULT_OR_PATTERNS, [(0x16, le + b"\x00\x01")]), hex(uuid)
        assert _matches(DEFAULT_OR_PATTERNS, [(0x03, le)]), hex(uuid)
        assert _matches(DEFAULT_OR_PATTERNS, [(0x02, le + b"\x0f\x18")]), hex(uuid)


@pytest.mark.parametrize(
    "ads",
    [
        [(0xFF, bytes.fromhex("99040512fc"))],  # Ruuvi sensor
        [(0x09, b"iPhone")],  # a name alone (passive scanning gets no scan responses anyway)
        [(0x16, bytes.fromhex("0f18") + b"\x50")],  # battery service data
        [(0x03, bytes.fromhex("0f18") + bytes.fromhex("2cfe"))],  # Fast Pair second in the list
        [(0x16, b"\x4c\x00")],  # Apple's id in the wrong AD type
    ],
)
def test_what_the_classifier_cannot_place_is_not_reported(ads: list[AdStructure]) -> None:
    assert not _matches(DEFAULT_OR_PATTERNS, ads)


def test_default_patterns_are_valid_for_bluez() -> None:
    """BlueZ refuses a monitor whose pattern does not fit a legacy advert (31 bytes)."""
    assert len(set(DEFAULT_OR_PATTERNS)) == len(DEFAULT_OR_PATTERNS)
    for start, ad_type, content in DEFAULT_OR_PATTERNS:
        assert start >= 0 and content and start + len(content) <= 31
        assert ad_type in (0x02, 0x03, 0x16, 0xFF)
    tile = _uuid128(0xFEED)
    assert classify(_advert(uuids=(tile,))).kind == "tag"
