"""Uplink bursts of one band split into the transmitters that sent them, and counted so."""

from __future__ import annotations

import math
import random
from typing import Any

from scanner.core.uplink import CARRIER_SPAN_HZ, UplinkTransmitters, band_of
from scanner.observations import SdrBurst
from tests.core.helpers import START, Harness, address_harness, advert

B20 = "LTE B20 UL"


def _burst(
    t: float, snr: float, mhz: float = 847.0, dur_s: float = 0.001, khz: float = 540.0
) -> SdrBurst:
    return SdrBurst(
        ts=START + t,
        mono=t,
        t_end=START + t + dur_s,
        freq_mhz=mhz,
        bandwidth_khz=khz,
        power_dbfs=-30.0,
        snr_db=snr,
        band=B20,
    )


def _key(tx: UplinkTransmitters, b: SdrBurst, band: str = B20) -> str:
    return tx.key(band, b, b.snr_db)


def _rayleigh_db(rng: random.Random, median_db: float) -> float:
    """One burst's level under Rayleigh fading (exponential power) about a median."""
    power = max(rng.expovariate(1.0), 1e-9) / math.log(2.0)  # median power 1
    return median_db + 10.0 * math.log10(power)


def test_two_phones_on_one_band_are_two_transmitters() -> None:
    # A phone inside sending at 44 dB SNR and one outside on a call at 15-20 dB, both on B20,
    # their bursts interleaved.
    tx = UplinkTransmitters(hold_s=15.0)
    keys: dict[str, set[str]] = {"inside": set(), "outside": set()}
    for i in range(40):
        t = 100.0 + i * 0.5
        keys["outside"].add(_key(tx, _burst(t, 15.0 + (i % 6))))
        if i % 3 == 0:
            keys["inside"].add(_key(tx, _burst(t + 0.2, 44.0 - (i % 2))))
    assert keys["inside"].isdisjoint(keys["outside"])
    assert len(keys["inside"]) == len(keys["outside"]) == 1
    assert {band_of(k) for k in keys["inside"] | keys["outside"]} == {f"sdr:{B20}"}


def test_two_bursts_on_the_air_at_once_on_two_channels_are_two_phones() -> None:
    # Same level, same band: only that they overlap in time at 10 MHz apart tells them apart.
    tx = UplinkTransmitters(hold_s=15.0)
    a = _key(tx, _burst(100.0, 35.0, mhz=837.0))
    b = _key(tx, _burst(100.0003, 35.0, mhz=847.0))
    assert a != b
    # One after the other on those two channels, they may be one phone hopping.
    tx = UplinkTransmitters(hold_s=15.0)
    assert _key(tx, _burst(100.0, 35.0, mhz=837.0)) == _key(tx, _burst(100.002, 35.0, mhz=847.0))


def test_one_lte_phones_two_pucch_edges_are_one_transmitter() -> None:
    # A 10 MHz carrier centred on 847 MHz: PUCCH in the outermost resource block at each edge,
    # hopping at the slot boundary (0.5 ms at one edge, then 0.5 ms at the other), a few dB of
    # fading; now and then a PUSCH grant inside the carrier.
    rng = random.Random(5)
    tx = UplinkTransmitters(hold_s=15.0)
    lo, hi = 847.0 - 4.5 + 0.09, 847.0 + 4.5 - 0.09
    keys = set()
    for i in range(60):
        t = 100.0 + i * 0.04
        keys.add(_key(tx, _burst(t, 36.0 + rng.uniform(-3, 3), mhz=lo, dur_s=0.0005, khz=180)))
        keys.add(
            _key(tx, _burst(t + 0.0005, 36.0 + rng.uniform(-3, 3), mhz=hi, dur_s=0.0005, khz=180))
        )
        if i % 5 == 0:
            keys.add(_key(tx, _burst(t + 0.02, 36.0, mhz=845.0 + rng.uniform(0, 3))))
    assert keys == {f"sdr:{B20}"}


def test_one_fading_phone_stays_mostly_one_transmitter() -> None:
    # Rayleigh fading (no line of sight, the worst case) about a steady median: a phone
    # outside on a call. Its own transmitter keeps nearly every burst, and none of the bursts
    # it loses is louder than what fading itself gives.
    rng = random.Random(11)
    tx = UplinkTransmitters(hold_s=15.0)
    keys = [_key(tx, _burst(100.0 + i * 0.5, _rayleigh_db(rng, 24.0))) for i in range(400)]
    first = keys.count(f"sdr:{B20}")
    assert first >= 0.9 * len(keys)


def test_bursts_wider_apart_than_one_carrier_are_two_transmitters() -> None:
    band = "LTE B28 UL"  # 703-748 MHz: wider than one phone's carrier
    tx = UplinkTransmitters(hold_s=15.0)
    a = _key(tx, _burst(100.0, 35.0, mhz=704.0), band)
    b = _key(tx, _burst(101.0, 35.0, mhz=704.0 + CARRIER_SPAN_HZ / 1e6 + 1.0), band)
    assert a != b


def test_a_silent_transmitters_number_is_given_again_only_after_the_hold() -> None:
    tx = UplinkTransmitters(hold_s=15.0)
    assert _key(tx, _burst(100.0, 44.0)) == f"sdr:{B20}"
    assert _key(tx, _burst(101.0, 15.0)) == f"sdr:{B20} #2"
    assert _key(tx, _burst(110.0, 15.0)) == f"sdr:{B20} #2"
    # The loud one has been silent longer than the hold: its number is free, and a phone
    # heard now at any level is the band's first again.
    assert _key(tx, _burst(120.0, 30.0)) == f"sdr:{B20}"
    tx.prune(200.0)
    assert len(tx) == 0


def _alarms(core: Harness) -> list[tuple[str, str]]:
    return [(ln["kind"], ln["event"]) for ln in core.all_lines if ln["alarm"]]


def _named_phone_on_b20(core: Harness, t: float, snr: float) -> None:
    """An iPhone in the zone named by BLE, its uplink on B20."""
    core.handle(advert(t, "5C:00:00:00:00:01", -50))
    core.handle(_burst(t + 0.2, snr))


def test_a_known_phone_on_a_band_does_not_explain_a_second_phone_on_it() -> None:
    # One phone named inside (BLE, its uplink on B20 at 33 dB: turned down by the network),
    # acknowledged; a second phone with Wi-Fi and Bluetooth off walks in and keeps its uplink
    # busy on B20 too, at 44 dB. Keyed by band, the second was the first's energy.
    core = address_harness(ack_after_s=20.0)
    t = 100.0
    while t < 160.0:
        _named_phone_on_b20(core, t, 33.0)
        core.tick(t + 0.4)
        t += 0.5
    assert _alarms(core) == [("handset", "raised")]
    while t < 180.0:
        _named_phone_on_b20(core, t, 33.0)
        core.handle(_burst(t + 0.3, 44.0, mhz=849.5))
        core.tick(t + 0.4)
        t += 0.5
    assert _alarms(core) == [("handset", "raised"), ("unidentified_transmitter", "raised")]


def test_a_named_phone_louder_out_of_its_pocket_is_not_a_phone_more() -> None:
    # The named phone's uplink jumps 11 dB (taken out of a pocket): a transmitter of its own
    # for the splitting, but heard after the first fell silent, not interleaved with it.
    core = address_harness(ack_after_s=20.0)
    t = 100.0
    while t < 200.0:
        _named_phone_on_b20(core, t, 33.0 if t < 150.0 else 44.0)
        core.tick(t + 0.4)
        t += 0.5
    assert _alarms(core) == [("handset", "raised")]


def test_a_phone_inside_is_not_averaged_with_a_phone_outside_on_its_band() -> None:
    # A phone inside with only cellular emissions, idle: keep-alives of a few bursts at 44 dB
    # every few seconds. A phone outside on a call on the same band sends twice a second at
    # 12-22 dB. Keyed by band, the median over the window was the outside phone's.
    core = address_harness()
    lines: list[dict[str, Any]] = core.lines
    for i in range(80):
        t = 100.0 + i * 0.5
        core.handle(_burst(t, 12.0 + (i * 7) % 11))
        if i % 4 == 0:
            core.handle(_burst(t + 0.2, 44.0))
        core.tick(t + 0.4)
    assert [(ln["event"], ln["kind"]) for ln in lines] == [("raised", "unidentified_transmitter")]
