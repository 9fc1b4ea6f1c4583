"""Identity Resolving Key resolution: the spec's sample data, rotation, BlueZ's info file."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from scanner.errors import RecordingError
from scanner.sources.ble.irk import (
    ah,
    e,
    is_resolvable,
    make_rpa,
    parse_irk,
    read_bluez_irk,
    resolve,
    resolves,
)

# Core Specification Vol 3 Part H, Appendix D.7 "ah random address hash function".
SPEC_IRK = bytes.fromhex("ec0234a357c8ad05341010a60a397d9b")
SPEC_PRAND = bytes.fromhex("708194")
SPEC_HASH = bytes.fromhex("0dfbaa")


def test_e_is_aes_128() -> None:
    # FIPS-197 Appendix C.1.
    key = bytes(range(16))
    block = bytes.fromhex("00112233445566778899aabbccddeeff")
    assert e(key, block) == bytes.fromhex("69c4e0d86a7b0430d8cdb78070b4c55a")


def test_ah_matches_the_spec_sample() -> None:
    assert ah(SPEC_IRK, SPEC_PRAND) == SPEC_HASH
    assert make_rpa(SPEC_IRK, SPEC_PRAND) == "70:81:94:0D:FB:AA"
    assert resolves("70:81:94:0D:FB:AA", SPEC_IRK)
    assert resolves("70:81:94:0d:fb:aa", SPEC_IRK)
    assert not resolves("70:81:94:0D:FB:AB", SPEC_IRK)  # one bit off in the hash


def test_a_phone_rotating_every_15_minutes_for_an_hour_stays_recognised() -> None:
    seed = 2026
    rng = random.Random(seed)
    guard = bytes(rng.getrandbits(8) for _ in range(16))
    stranger = bytes(rng.getrandbits(8) for _ in range(16))
    known = [guard]
    # One address per 15-minute period over an hour: t = 0, 15, 30, 45, 60 minutes.
    guard_addresses = [make_rpa(guard, rng.randbytes(3)) for _ in range(5)]
    stranger_addresses = [make_rpa(stranger, rng.randbytes(3)) for _ in range(5)]
    assert len(set(guard_addresses)) == 5, f"seed {seed}"
    for address in guard_addresses:
        assert is_resolvable(address)
        assert resolve(address, known) == guard, (seed, address)
        assert resolve(address, [stranger, guard]) == guard
    for address in stranger_addresses:
        assert resolve(address, known) is None, (seed, address)
        assert resolve(address, [guard, stranger]) == stranger


@pytest.mark.parametrize(
    "address",
    [
        "C0:11:22:33:44:55",  # static random (top bits 11)
        "00:1A:7D:DA:71:13",  # public (or a non-resolvable private address, top bits 00)
        "not an address",
        "70:81:94:0D:FB",
    ],
)
def test_addresses_that_are_not_resolvable_never_resolve(address: str) -> None:
    assert resolve(address, [SPEC_IRK]) is None
    assert not resolves(address, SPEC_IRK)


def _info(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "info"
    path.write_text(body, encoding="utf-8")
    return path


def test_irk_from_a_bluez_info_file(tmp_path: Path) -> None:
    # BlueZ writes the key least significant octet first, upper-case hex (src/adapter.c).
    stored = SPEC_IRK[::-1].hex().upper()
    path = _info(
        tmp_path,
        "[General]\nName=Guard phone\nAddressType=public\n\n"
        f"[IdentityResolvingKey]\nKey={stored}\n\n[LongTermKey]\nKey=00112233\n",
    )
    irk = read_bluez_irk(path)
    assert irk == SPEC_IRK
    assert resolve("70:81:94:0D:FB:AA", [irk]) == SPEC_IRK
    assert read_bluez_irk(_info(tmp_path, "[General]\nName=speaker\n")) is None
    with pytest.raises(RecordingError, match="32 hex digits"):
        read_bluez_irk(_info(tmp_path, "[IdentityResolvingKey]\nKey=ABCD\n"))
    with pytest.raises(RecordingError, match="not a BlueZ info file"):
        read_bluez_irk(_info(tmp_path, "Key=no section\n"))
    with pytest.raises(RecordingError, match="cannot read"):
        read_bluez_irk(tmp_path / "missing")


def test_parse_irk() -> None:
    assert parse_irk("0xEC0234A357C8AD05341010A60A397D9B") == SPEC_IRK
    assert parse_irk(" ec0234a357c8ad05341010a60a397d9b\n") == SPEC_IRK
    for bad in ("", "ec02", "zz0234a357c8ad05341010a60a397d9b", SPEC_IRK.hex() + "00"):
        with pytest.raises(ValueError, match="32 hex digits"):
            parse_irk(bad)
