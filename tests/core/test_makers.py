"""The records' faster constructors make what the records' own constructors make."""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

import pytest

from scanner.core.detectors import DetectorInput
from scanner.core.presence import Presence
from scanner.makers import maker
from scanner.observations import BleAdvert, SensorStatus, WifiFrame


@dataclasses.dataclass(frozen=True, slots=True)
class RingItem:
    """As an evidence ring's item: bytes left out of equality, defaults."""

    mono: float
    key: str
    payload: bytes = dataclasses.field(default=b"", compare=False)
    seq: int = 0


def _same(made: object, built: object) -> None:
    assert type(made) is type(built)
    assert made == built
    try:
        assert hash(made) == hash(built)
    except TypeError:  # a record holding a dict is not hashable, made either way
        with pytest.raises(TypeError):
            hash(built)
    assert repr(made) == repr(built)
    # Every field, the ones left out of equality too (a frame's bytes).
    for f in dataclasses.fields(built):  # type: ignore[arg-type]
        assert getattr(made, f.name) is getattr(built, f.name)
    assert pickle.loads(pickle.dumps(made)) == built


def test_a_wifi_frame_as_its_constructor_makes_it() -> None:
    fields = (
        1764000000.25, 1000.25, "probe_req", "da:a1:19:00:00:01", True, -48, 2412, "",
        17, "fp:1", None, "ff:ff:ff:ff:ff:ff", "wifi", b"\x00\x01raw",
    )  # fmt: skip
    made = maker(WifiFrame)(*fields)
    _same(made, WifiFrame(*fields))
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.mac = "00:00:00:00:00:00"  # type: ignore[misc]
    # The bytes are not part of equality: a frame made with other bytes is still equal.
    assert maker(WifiFrame)(*fields[:-1], b"") == made


def test_an_advert_a_ring_item_and_a_detector_input() -> None:
    advert_fields: tuple[Any, ...] = (
        1.5, 2.5, "AA:BB:CC:DD:EE:FF", "random", -60, None, "x", {76: b"\x10\x05"}, {},
        ("fe9f",), "hci0", "ble",
    )  # fmt: skip
    _same(maker(BleAdvert)(*advert_fields), BleAdvert(*advert_fields))
    _same(maker(RingItem)(2.5, "ble:AA:BB", b"{}", 7), RingItem(2.5, "ble:AA:BB", b"{}", 7))
    pres = Presence()
    made = maker(DetectorInput)("wifi", "wifi:aa", pres, None, "probe_req", True)
    built = DetectorInput("wifi", "wifi:aa", pres, None, "probe_req", True)
    assert made.presence is pres
    assert (made.radio, made.key, made.device, made.label, made.ambient) == (
        built.radio,
        built.key,
        built.device,
        built.label,
        built.ambient,
    )


def test_every_field_is_wanted() -> None:
    with pytest.raises(TypeError):
        maker(WifiFrame)(1.0, 2.0)


def test_refuses_what_init_does_more_for() -> None:
    with pytest.raises(TypeError, match="__post_init__"):
        maker(SensorStatus)  # turns a state's name into its member

    @dataclasses.dataclass(frozen=True, slots=True)
    class Derived:
        a: int
        b: int = dataclasses.field(init=False, default=0)

    with pytest.raises(TypeError, match="exactly its fields"):
        maker(Derived)

    @dataclasses.dataclass(frozen=True)
    class Unslotted:
        a: int

    with pytest.raises(TypeError, match="slotted"):
        maker(Unslotted)
