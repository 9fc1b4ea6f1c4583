"""The allowlist names devices, never models: guards' phones of one model are recognised by their
stable identities, a stranger of the same model and OS alarms, and uplink energy is explained
only as far as the allowlisted phones present can explain it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from scanner.config import ConfigError
from scanner.core.allowlist import Accounting, Allowlist
from scanner.core.events import AlertRaised, AlertUpdated
from scanner.core.identity import AddressBleIdentity, AddressWifiIdentity
from scanner.core.options import CoreOptions
from scanner.observations import BleAdvert, SourceEvent, WifiFrame
from scanner.sources.ble.irk import make_rpa
from tests.core.helpers import START, Harness, burst, classify_all_handsets, probe

SITE_AP = "00:1a:2b:3c:4d:5e"


@dataclass(frozen=True, slots=True)
class Model:
    """What a phone model and OS version look like on the air (shared by all such phones)."""

    fingerprint: str
    company: int
    payload: str


IPHONE = Model("a1b2c3d4e5f60718", 76, "1005031c5a0b2e")
GALAXY = Model("9f8e7d6c5b4a3921", 117, "42040180")


@dataclass(frozen=True, slots=True)
class Phone:
    model: Model
    network_mac: str  # the per-network MAC it keeps for the site's AP (locally administered)
    probe_mac: str  # a randomised probe MAC
    irk: bytes

    def rpa(self, t: float, rotate_s: float = 900.0) -> str:
        epoch = int(t // rotate_s)
        prand = bytes([0x40 | (epoch * 7 + self.irk[0]) % 0x40, epoch % 256, self.irk[1]])
        return make_rpa(self.irk, prand).upper()


def _null(t: float, mac: str, rssi: int) -> WifiFrame:
    return WifiFrame(
        ts=START + t,
        mono=t,
        subtype="qos_null",
        mac=mac,
        random_mac=True,
        rssi_dbm=rssi,
        freq_mhz=5180,
        ssid=None,
        seq=int(t) % 4096,
        fingerprint="",
        bssid=SITE_AP,
        dst=SITE_AP,
    )


def _advert(t: float, phone: Phone, rssi: int) -> BleAdvert:
    return BleAdvert(
        ts=START + t,
        mono=t,
        address=phone.rpa(t),
        address_type="random",
        rssi_dbm=rssi,
        manufacturer_data={phone.model.company: bytes.fromhex(phone.model.payload)},
    )


def _phone(model: Model, n: int) -> Phone:
    return Phone(
        model,
        network_mac=f"3a:00:00:00:0{n}:01",
        probe_mac=f"06:00:00:00:0{n}:02",
        irk=os.urandom(16),
    )


def _entries(phone: Phone, label: str) -> list[dict[str, str]]:
    """What an installer enters for a guard's phone: its stable identities only."""
    return [
        {
            "match": "mac",
            "value": phone.network_mac,
            "label": label,
            "fingerprint": phone.model.fingerprint,
        },
        {"match": "ble_irk", "value": phone.irk.hex(), "label": label},
    ]


def _core(entries: list[dict[str, str]]) -> Harness:
    return Harness(
        None,
        CoreOptions(allowlist=tuple(entries)),
        wifi_tracker=AddressWifiIdentity(),
        ble_tracker=AddressBleIdentity(),
        classify=classify_all_handsets,
    )


def _in_booth(phone: Phone, t0: float, t1: float, rssi: int = -45) -> Iterator[SourceEvent]:
    """A phone in the zone: associated null frames every 10 s, probes every 30 s (two frames)
    from its first half-minute on (it joined the site's network as it came in), BLE adverts
    every 2 s."""
    t = t0
    while t < t1:
        if int(t - t0) % 10 == 0:
            yield _null(t, phone.network_mac, rssi)
        if int(t - t0) % 30 == 0 and t - t0 >= 30.0:
            yield probe(t + 0.2, phone.probe_mac, rssi, fp=phone.model.fingerprint)
            yield probe(t + 0.25, phone.probe_mac, rssi, fp=phone.model.fingerprint)
        yield _advert(t + 0.5, phone, rssi)
        t += 2.0


def _play(core: Harness, *streams: Iterator[SourceEvent]) -> None:
    records = sorted((r for s in streams for r in s), key=lambda r: r.mono)
    for record in records:
        core.handle(record)


def _alert_devices(core: Harness) -> set[str]:
    """The devices the alerts named (the tracker's ids: ``wifi:MAC``, ``ble:ADDRESS``)."""
    return {
        d
        for event in core.events
        if isinstance(event, AlertRaised | AlertUpdated)
        for d in event.alert.device_ids
    }


@pytest.mark.parametrize("model", [IPHONE, GALAXY], ids=["iphone", "galaxy"])
def test_intruder_of_the_guards_model_alarms_and_the_guards_do_not(model: Model) -> None:
    g1, g2, intruder = _phone(model, 1), _phone(model, 2), _phone(model, 3)
    core = _core([*_entries(g1, "guard one"), *_entries(g2, "guard two")])
    _play(core, _in_booth(g1, 0.0, 600.0), _in_booth(g2, 1.0, 600.0))
    assert core.lines == []
    _play(
        core,
        _in_booth(g1, 600.0, 900.0),
        _in_booth(g2, 601.0, 900.0),
        _in_booth(intruder, 700.0, 900.0),
    )
    raised = [ln for ln in core.lines if ln["event"] == "raised"]
    assert raised and 700.0 <= raised[0]["ts"] - START <= 712.0
    alerted = _alert_devices(core)
    guards = {f"wifi:{g.probe_mac}" for g in (g1, g2)} | {f"wifi:{g.network_mac}" for g in (g1, g2)}
    assert not alerted & guards, alerted
    assert f"wifi:{intruder.probe_mac}" in alerted
    assert any(d.startswith("ble:") for d in alerted)  # its addresses resolve by no guard's key
    assert core.counters["accounted_clusters"] > 0


def test_a_fingerprint_is_refused_as_config_and_inactive_from_the_store() -> None:
    with pytest.raises(ConfigError, match="names no device"):
        CoreOptions.from_mapping(
            {"allowlist": [{"match": "fingerprint", "value": IPHONE.fingerprint}]}
        )
    allow = Allowlist()
    allow.set_stored([{"match": "fingerprint", "value": IPHONE.fingerprint, "label": "x"}])
    assert [e.match for e in allow.inactive()] == ["fingerprint"]
    assert allow.match("fingerprint", IPHONE.fingerprint, START) is None


def test_irk_keeps_a_phone_rotating_every_15_minutes_allowlisted_for_an_hour() -> None:
    guard = _phone(IPHONE, 1)
    core = _core([{"match": "ble_irk", "value": guard.irk.hex(), "label": "guard"}])
    adverts = [_advert(t, guard, -45) for t in range(0, 3600, 2)]
    addresses = {a.address for a in adverts}
    assert len(addresses) == 4  # four 15-minute addresses in the hour
    _play(core, iter(adverts))
    assert core.lines == []
    # Every address resolved to the one device the key names, as it appeared.
    (named,) = [d for d in core.devices if d.allowlisted == "guard"]
    assert set(named.ble) == {a.lower() for a in addresses}
    assert "".join(named.id.split()).find(guard.irk.hex()) == -1  # the key is a secret

    # The same phone without its key alarms: the recognition is the key's doing.
    stranger = _core([])
    _play(stranger, iter(_advert(t, guard, -45) for t in range(0, 600, 2)))
    assert [ln["event"] for ln in stranger.lines][:1] == ["raised"]


def test_expired_entry_stops_exempting() -> None:
    guard = _phone(IPHONE, 1)
    entry = {"match": "ble_irk", "value": guard.irk.hex(), "label": "visitor"}
    core = _core([{**entry, "expires_ts": str(START + 300.0)}])
    _play(core, iter(_advert(t, guard, -45) for t in range(0, 600, 2)))
    raised = [ln for ln in core.lines if ln["event"] == "raised"]
    assert len(raised) == 1 and raised[0]["ts"] - START >= 300.0


def _call(t0: float, t1: float, band: str, every_s: float = 2.0) -> Iterator[SourceEvent]:
    t = t0
    while t < t1:
        yield burst(t + 0.3, 40.0, band=band)
        t += every_s


def test_guards_on_a_call_in_the_booth_for_eight_hours_do_not_alarm() -> None:
    g1, g2 = _phone(IPHONE, 1), _phone(GALAXY, 2)
    core = _core([*_entries(g1, "guard one"), *_entries(g2, "guard two")])
    hours = 8 * 3600.0
    _play(
        core,
        _in_booth(g1, 0.0, hours),
        _in_booth(g2, 1.0, hours),
        _call(30.0, hours, "LTE B20 UL"),
        _call(31.0, hours, "LTE B3 UL"),
    )
    assert core.lines == []
    assert core.counters["uplink_accounted"] > 10_000


def test_uplink_beyond_what_the_guards_present_can_send_alarms() -> None:
    g1 = _phone(IPHONE, 1)
    core = _core(_entries(g1, "guard one"))
    _play(
        core,
        _in_booth(g1, 0.0, 900.0),
        _call(30.0, 900.0, "LTE B20 UL"),
        _call(400.0, 900.0, "LTE B3 UL"),  # a second transmitter: nobody allowlisted explains it
    )
    raised = [ln for ln in core.lines if ln["event"] == "raised"]
    assert raised and raised[0]["kind"] == "unidentified_transmitter"
    assert 400.0 <= raised[0]["ts"] - START <= 410.0


def test_uplink_after_the_guards_leave_alarms() -> None:
    g1 = _phone(IPHONE, 1)
    core = _core(_entries(g1, "guard one"))
    _play(core, _in_booth(g1, 0.0, 300.0), _call(30.0, 900.0, "LTE B20 UL"))
    raised = [ln for ln in core.lines if ln["event"] == "raised"]
    assert raised and 300.0 <= raised[0]["ts"] - START <= 340.0


def test_accounting_gives_each_present_phone_one_cluster_of_its_fingerprint() -> None:
    acc = Accounting(hold_s=10.0)
    allow = Allowlist([{"match": "mac", "value": "3a:00:00:00:01:01", "fingerprint": "fp"}])
    from scanner.core.devices import Device

    guard = Device("wifi:g", "wifi", START, 0.0, START, 0.0, macs=("3a:00:00:00:01:01",))
    guard.in_zone = True
    acc.allowlisted(guard, allow.entry_for(guard, START))
    keys = [f"wifi:06:00:00:00:00:0{n}" for n in range(3)]
    for n, key in enumerate(keys):
        acc.cluster(key, ["fp"], True, float(n))
    assert [acc.explains(k, ["fp"], 5.0) is not None for k in keys] == [True, False, False]
    guard.in_zone = False
    acc.allowlisted(guard, allow.entry_for(guard, START), mono=10.0)
    assert acc.explains(keys[0], ["fp"], 15.0) is not None  # a moment out: a rotation, perhaps
    assert [acc.explains(k, ["fp"], 25.0) for k in keys] == [None, None, None]
    # A transmitter silent between probe bursts keeps its place; one gone for minutes does not.
    guard.in_zone = True
    acc.allowlisted(guard, allow.entry_for(guard, START), mono=30.0)
    acc.cluster(keys[1], ["fp"], True, 100.0)
    assert acc.explains(keys[0], ["fp"], 150.0) is not None
    assert acc.explains(keys[1], ["fp"], 190.0) is not None  # keys[0] last in at 0.0


def test_only_an_allowlisted_phone_accounts_for_uplink_not_the_guards_tablet() -> None:
    from scanner.core.devices import Device

    acc = Accounting(hold_s=10.0)
    allow = Allowlist([{"match": "mac", "value": "3a:00:00:00:02:02", "label": "tablet"}])
    tablet = Device("wifi:t", "wifi", START, 0.0, START, 0.0, macs=("3a:00:00:00:02:02",))
    tablet.kind = "computer"
    tablet.in_zone = True
    acc.allowlisted(tablet, allow.entry_for(tablet, START))
    # A visitor's phone heard only on the uplink while the tablet is in the booth.
    assert not acc.band("sdr:LTE B20 UL", True, 1.0)
    tablet.kind = "handset"  # the same entry naming a phone: its one band is explained
    acc.allowlisted(tablet, allow.entry_for(tablet, START))
    assert acc.band("sdr:LTE B20 UL", True, 2.0)
    assert not acc.band("sdr:LTE B3 UL", True, 3.0)
