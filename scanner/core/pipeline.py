"""The detection core: where an observation becomes an alert.

    observation -> device tracking -> zone presence -> detectors -> fusion -> alerting -> sinks

With placed sensors on both sides of the boundary (``[[sensors]]``), zone presence is decided on
the level difference between them (``scanner.core.placement``).

``Core.handle`` takes every record a source delivers (frames, adverts, bursts, health) in time
order, and the inputs a person or the previous run gives (``scanner.core.events``: allowlist,
acknowledgement, calibration, alerts left open); ``Core.tick`` moves time on when nothing
arrives, so silence ends presences and resolves alerts. Both return what happened as a list of
events; the core writes nothing itself (sinks do, ``scanner/sinks/``). All decisions use
``mono``; ``ts`` goes only into records.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from scanner.clock import SYSTEM_CLOCK, Clock
from scanner.core import presence as zone
from scanner.core.alerting import Alerting
from scanner.core.allowlist import (
    CONFIG_SETTING,
    Accounting,
    Allowlist,
    Entry,
    named_id,
    stable_ble_address,
    stable_mac,
)
from scanner.core.ambient import AmbientBaseline
from scanner.core.detectors import DetectorBank, Finding, build_registry
from scanner.core.devices import MAX_DEVICES, Device, DeviceTable
from scanner.core.events import (
    Acknowledge,
    AdoptAlerts,
    AllowlistChanged,
    CalibrationChanged,
    CoreEvent,
    CoreInput,
    DeviceChanged,
    HandsetMinute,
    RestoreAmbient,
    SensorHealth,
    SensorHeard,
    SettingChanged,
)
from scanner.core.fusion import Fusion
from scanner.core.identity import BleIdentity, WifiIdentity, ble_identity, wifi_identity
from scanner.core.kinds import ble_classifier, ble_kind, wifi_kind
from scanner.core.options import CoreOptions
from scanner.core.placement import Change, Pair, SensorSites, evidence
from scanner.core.presence import Presence, PresenceParams, ZoneModel
from scanner.core.sightings import SightingAggregator
from scanner.core.uplink import UplinkTransmitters
from scanner.observations import (
    BleAdvert,
    Radio,
    SdrBurst,
    SensorState,
    SensorStatus,
    SourceEvent,
    WifiFrame,
)

_LOGGER = logging.getLogger(__name__)

# Housekeeping runs on the observation timeline at most this often.
TICK_EVERY_S = 1.0
AMBIENT_EVERY_S = 10.0
AMBIENT_SETTING = "ambient_baseline"
# Per-transmitter state of silent transmitters is swept this often (amortised: a sweep walks
# every transmitter, so it must not run on every tick under a flood of new MACs).
PRUNE_EVERY_S = 5.0
# A device record unheard this long is dropped from memory once written to the store: beyond
# the trackers' join window a random MAC cannot come back as the same station anyway.
DEVICE_FORGET_S = 300.0
# A record from a sensor that was down, this close to the core's timeline, is live again: a
# node sends its batches every second or two, plus the link's latency. Further behind, it is
# the node's spool replaying what it heard during the outage.
CAUGHT_UP_S = 5.0
# One phone's Wi-Fi and BLE read its position alike: a transmitter heard this far below its
# radio's enter level was outside the zone, whatever a radio of another phone said then. Fast
# fading (2.5 dB a packet) and slow shadowing (2.5 dB) are independent on the two bands, so
# one packet of each differs with a standard deviation of 5 dB: 10 dB is two of them.
RADIOS_DISAGREE_DB = 10.0
# ... allowing for the crossing itself: the wall's half metre at walking pace, during which one
# radio may be through the door and the other's packets still behind it.
CROSSING_S = 1.0
_NEVER = float("-inf")
# Sensor states in which a sensor hears nothing (its daemon died, its node lost the broker).
_DOWN_STATES = (SensorState.FAULT, SensorState.STOPPED)


@dataclass(slots=True)
class _Outage:
    """A sensor's radio that cannot hear: the phones only it heard are held in the zone."""

    since_mono: float
    since_ts: float
    lost: bool = False  # held for ``sensor_hold_s``: holds no longer
    replayed_mono: float = float("-inf")  # its replay's timeline, as far as decided


@dataclass(frozen=True, slots=True)
class CoreStats:
    """What a replay reports at the end."""

    counters: dict[str, int]
    detectors: dict[str, dict[str, int]]
    devices: int
    handsets_counted: int
    alerts: dict[str, int]


_RECORDS = (WifiFrame, BleAdvert, SdrBurst, SensorStatus)


class Core:
    """The pipeline, one instance per site. Not thread-safe: one consumer feeds it."""

    def __init__(
        self,
        options: CoreOptions | None = None,
        clock: Clock = SYSTEM_CLOCK,
        *,
        run_tag: str = "",
        sightings: bool = True,
        outside_sensors: frozenset[str] = frozenset(),
        placements: Mapping[str, str] | None = None,
        wifi_tracker: WifiIdentity | None = None,
        ble_tracker: BleIdentity | None = None,
        classify: Callable[[BleAdvert], Any] | None = None,
    ) -> None:
        self.options = options or CoreOptions()
        self.clock = clock
        self.counters: Counter[str] = Counter()
        self.devices = DeviceTable()
        self.zone = ZoneModel(self.options)
        self.detectors = DetectorBank(build_registry(self.options))
        self.fusion = Fusion(self.options)
        self._out: list[CoreEvent] = []
        self.alerting = Alerting(self.options, self._out.append, self._identifiers_of)
        self.ambient = AmbientBaseline(self.options)
        self.allowlist = Allowlist(self.options.allowlist)
        self.accounting = Accounting(self.options.leave_hold_s)
        self._allow_entry: dict[str, Entry] = {}  # allowlisted device id -> its entry
        # When an entry next expires; -inf checks at the first tick (config entries may expire).
        self._allow_expiry: float | None = float("-inf")
        self._allow_published = False
        self.sensors: dict[str, SensorStatus] = {}
        # Tracker ids are counters; over a store they carry this run's number, so a restarted
        # core never reuses an id already naming another device in the ``devices`` table.
        self.run_tag = run_tag
        # Sensors placed outside the zone: what they hear is a device heard, never on its own
        # a device inside; beside a sensor inside, their levels are the reference of the
        # difference (``placements``: every ``[[sensors]]`` name and placement).
        placed = dict(placements or {})
        self._outside = outside_sensors | {n for n, p in placed.items() if p == "outside"}
        self._sites = SensorSites.from_options(placed, self.options)
        self._placing = self._sites.enabled
        self._judge: dict[str, Presence] = {}  # transmitter key -> presence on the difference
        self._evidence: dict[str, str] = {}  # transmitter key -> how its zone state was decided
        # Transmitter key -> when it was last judged short of the zone (``Presence.below_mono``),
        # kept past its presence for the longest join window (``_last_below``).
        self._below: dict[str, float] = {}
        self._node_radios: dict[str, set[Radio]] = {}  # placed sensor -> radios heard from it
        self._wifi = wifi_tracker or wifi_identity(self.options.trackers, self.run_tag)
        self._ble = ble_tracker or ble_identity(self.options.trackers, self.run_tag)
        self._classify = classify or ble_classifier()
        self._params = {
            r: PresenceParams.for_radio(self.options, r) for r in ("wifi", "ble", "sdr")
        }
        self._presence: dict[str, Presence] = {}
        # Uplink bursts split by band into the transmitters that sent them; one silent for as
        # long as its presence is held is gone.
        self._uplink = UplinkTransmitters(self.options.sdr_absent_s)
        self._owner: dict[str, str] = {}  # transmitter key -> device id
        self._in_zone: set[str] = set()
        self._wall_offset: float | None = None  # ts - mono of the latest record
        self._last_tick = float("-inf")
        self._last_ambient = float("-inf")
        self._last_flush = float("-inf")
        self._last_prune = float("-inf")
        self._last_mono: float | None = None
        self._sightings = SightingAggregator() if sightings else None
        self._noted: dict[str, float] = {}  # sensor -> mono of the last "heard" event
        # Handsets per minute (FORMATS.md counts): the minute, and device ids heard / inside.
        self._minute: int | None = None
        self._heard_minute: dict[str, str] = {}  # transmitter key -> device id
        self._inside_minute: set[str] = set()  # transmitter keys in the zone
        # Sensor radios that cannot hear, (sensor, radio) -> since when; and whether alerts
        # were last told of a hold (so they are told when it ends).
        self._down: dict[tuple[str, str], _Outage] = {}
        self._holding = False

    # -- input -------------------------------------------------------------------------------
    def handle(self, event: SourceEvent | CoreInput) -> list[CoreEvent]:
        """Process one record from a source, or one input; returns what happened."""
        if isinstance(event, _RECORDS):
            self._record(event)
        elif isinstance(event, Acknowledge):
            self.alerting.acknowledge(event, self._now())
        elif isinstance(event, AllowlistChanged):
            self.allowlist.set_stored(event.entries)
            self._recheck_allowlist()
        elif isinstance(event, CalibrationChanged):
            self.zone.set_calibrations(event.calibrations)
        elif isinstance(event, AdoptAlerts):
            self.alerting.adopt(event.alerts)
        elif isinstance(event, RestoreAmbient):
            # The site need not be learned again after a restart.
            self.ambient.restore(event.snapshot, self._now())
        else:
            self.counters["unknown_event"] += 1
        return self._take()

    def _take(self) -> list[CoreEvent]:
        if not self._out:
            return []
        out = list(self._out)
        self._out.clear()
        return out

    def now(self) -> float:
        """Where the timeline is: the latest record's time, else the clock's."""
        return self._now()

    def _now(self) -> float:
        """Where the timeline is: the latest record's time, else the clock's."""
        return self._last_mono if self._last_mono is not None else self.clock.monotonic()

    def _record(self, event: SourceEvent) -> None:
        self._wall_offset = event.ts - event.mono
        self._last_mono = event.mono
        if self._placing and not isinstance(event, SensorStatus):
            self._placed_heard(event)
        if isinstance(event, WifiFrame):
            self._wifi_frame(event)
        elif isinstance(event, BleAdvert):
            self._ble_advert(event)
        elif isinstance(event, SdrBurst):
            self._sdr_burst(event)
        else:
            self._status(event)
            return
        if self._down:
            self._heard_from_down(event)
        mono = event.mono
        # ``_note_observation``'s throttle asked here: once a second it has something to do
        # (its own test negated, not ``>=``, which would differ on a NaN).
        if not mono - self._noted.get(event.sensor, _NEVER) < 1.0:
            self._note_observation(event.sensor, event.ts, mono)
        if mono - self._last_tick >= TICK_EVERY_S:
            self._tick(mono)

    def _wifi_frame(self, frame: WifiFrame) -> None:
        self.counters["wifi_frames"] += 1
        try:
            raw_id = self._wifi.observe(frame)
        except Exception:  # a tracker bug must cost one frame, never the core
            _LOGGER.exception("Wi-Fi tracker failed on a frame")
            self.counters["tracker_errors"] += 1
            return
        named = self.allowlist.named("mac", frame.mac, frame.ts)
        if named is not None:
            raw_id = named_id(named)  # never joined to what the tracker joined it with
        key = _key("wifi", raw_id)
        device = self.devices.touch(key, "wifi", frame.ts, frame.mono)
        new_mac = frame.mac not in device.macs
        device.note(frame.ts, frame.mono, frame.rssi_dbm)
        if new_mac:
            device.macs = device.with_new_identifier(device.macs, frame.mac)
        if stable_mac(frame) and frame.mac not in device.stable_macs:
            device.stable_macs = device.with_new_identifier(device.stable_macs, frame.mac)
        if frame.fingerprint and frame.fingerprint not in device.fingerprints:
            device.fingerprints = device.with_new_identifier(device.fingerprints, frame.fingerprint)
            new_mac = True
        if device.kind == "unknown" or device.count == 1:
            kind, reason = wifi_kind(frame)
            device.set_kind(kind, None, reason)
        if new_mac:
            self._check_allowlist(device)
        if self._sightings is not None:
            self._sightings.add(key, "wifi", frame.sensor, frame.mac, frame.ts, frame.rssi_dbm)
        transmitter = f"wifi:{frame.mac}"
        self._heard(device, transmitter, frame.ts)
        if frame.rssi_dbm is None:
            self.counters["wifi_no_rssi"] += 1
            return
        self._observe(
            transmitter,
            device,
            "wifi",
            frame.sensor,
            frame.mono,
            frame.ts,
            frame.rssi_dbm,
            frame.subtype,
        )

    def _ble_advert(self, advert: BleAdvert) -> None:
        self.counters["ble_adverts"] += 1
        try:
            cls = self._classify(advert)
            raw_id = self._ble.observe(advert, cls)
        except Exception:
            _LOGGER.exception("BLE classification or tracking failed on an advertisement")
            self.counters["tracker_errors"] += 1
            return
        named = self.allowlist.named("ble", advert.address, advert.ts)
        if named is not None:
            raw_id = named_id(named)
        key = _key("ble", raw_id)
        device = self.devices.touch(key, "ble", advert.ts, advert.mono)
        device.note(advert.ts, advert.mono, advert.rssi_dbm)
        kind, vendor, reason = ble_kind(cls)
        device.set_kind(kind, vendor, reason)
        address = advert.address.lower()
        if address not in device.ble:
            earlier = list(device.ble)
            device.ble = device.with_new_identifier(device.ble, address)
            if stable_ble_address(advert):
                device.stable_ble = device.with_identifier(device.stable_ble, address)
            self._check_allowlist(device)
            if earlier:
                self._continue_history(f"ble:{address}", [f"ble:{a}" for a in earlier])
        if self._sightings is not None:
            self._sightings.add(key, "ble", advert.sensor, address, advert.ts, advert.rssi_dbm)
        transmitter = f"ble:{address}"
        self._heard(device, transmitter, advert.ts)
        if advert.rssi_dbm is None:
            return
        self._observe(
            transmitter,
            device,
            "ble",
            advert.sensor,
            advert.mono,
            advert.ts,
            advert.rssi_dbm,
            _short_reason(reason),
        )

    def _continue_history(self, key: str, earlier: list[str]) -> None:
        """The tracker joined a new address (``key``) to a device heard under ``earlier`` ones:
        the address it replaced (the latest heard) hands on its established level, so a
        loiterer whose phone rotates its address is still a transmitter long heard outside
        (``loiter_dwell_s``), not a fresh one. Levels themselves stay per address (a wrong join
        must not mix two phones' samples); a wrong join costs at most the dwell at a marginal
        level, never an entry at a clear one."""
        params = self._params["ble"]
        for table in (self._presence, self._judge):
            pres = table.get(key)
            if pres is None:
                continue
            before = [p for k in earlier if (p := table.get(k)) is not None and p is not pres]
            if before and zone.continue_history(
                pres, max(before, key=lambda p: p.last_mono), params
            ):
                self.counters["ble_history_continued"] += 1

    def _sdr_burst(self, burst: SdrBurst) -> None:
        self.counters["sdr_bursts"] += 1
        band = burst.band or f"{burst.freq_mhz:.1f} MHz"
        level = burst.snr_db - self.zone.offset(burst.sensor)
        placing = self._placing and burst.sensor in self._sites.placements
        # One band's bursts are split into the transmitters that sent them (``uplink``). Placed
        # sensors compare one key's levels across sensors, which hear one phone at different
        # levels, so there a band stays one key; a sensor outside decides nothing.
        if placing or burst.sensor in self._outside:
            key = f"sdr:{band}"
        else:
            key = self._uplink.key(band, burst, level)
        if self._sightings is not None:
            self._sightings.add(key, "sdr", burst.sensor, band, burst.ts, burst.snr_db)
        if placing:
            placed = self._placed_presence(key, "sdr", burst.sensor, burst.mono, level)
            if placed is None:
                return
            if self._uplink_accounted(key, placed, burst.mono, burst.ts):
                return
            self._after_presence(key, "sdr", placed, None, _short_band(band), burst.mono, burst.ts)
            return
        if burst.sensor in self._outside:
            self.counters["outside_sensor_records"] += 1
            return
        th = self.zone.thresholds(burst.sensor, "sdr")
        pres = self._presence_of(key)
        pres.sensor = burst.sensor
        zone.update(pres, burst.mono, level, th, self._params["sdr"])
        if self._uplink_accounted(key, pres, burst.mono, burst.ts):
            return
        self._after_presence(key, "sdr", pres, None, _short_band(band), burst.mono, burst.ts)

    def _observe(
        self,
        key: str,
        device: Device,
        radio: str,
        sensor: str,
        mono: float,
        ts: float,
        rssi: int,
        label: str,
    ) -> None:
        """One level of a transmitter: its presence judged (a placed sensor's on the difference
        while both sides are heard, else on the level), the ambient baseline taught."""
        level = rssi - self.zone.offset(sensor)
        learned: float | None
        if self._placing and sensor in self._sites.placements:
            pres = self._placed_presence(key, radio, sensor, mono, level)
            if pres is None:
                return
            # The ambient baseline learns the level the presence shows (the inside sensor's).
            learned = pres.level
            entered = pres.in_zone and pres.changed
            judging = pres.sensor if pres.sensor is not None else sensor
            th = self.zone.thresholds(judging, radio)
        elif sensor in self._outside:
            self.counters["outside_sensor_records"] += 1
            return
        else:
            # Presence is judged per transmitter (MAC, BLE address): a tracker that wrongly
            # joins two phones must not mix their levels into one.
            pres = self._presence_of(key)
            pres.sensor = sensor
            was_in = pres.in_zone
            th = self.zone.thresholds(sensor, radio)
            zone.update(pres, mono, level, th, self._params[radio])
            learned = level
            entered = pres.in_zone and not was_in
            if pres.below_mono is not None:
                self._below[key] = pres.below_mono
        self._owner[key] = device.id
        if learned is not None:
            self.ambient.observe(key, mono, learned, th.enter_dbm)
        if entered:
            self.ambient.note_entered(key)
        self._after_presence(key, radio, pres, device, label, mono, ts)

    def _placed_presence(
        self, key: str, radio: str, sensor: str, mono: float, level: float
    ) -> Presence | None:
        """Decide a placed sensor's transmitter: on the difference between the sides while
        both are alive, else on the absolute level of the sensor left (never an outside one
        alone). None when this copy decides nothing yet (it waits for the other side's)."""
        pres = self._presence_of(key)
        pres.changed = False
        params = self._params[radio]
        if self._sites.fused:
            pair = self._sites.pair(key, sensor, mono, level)
            if pair is None:
                self.counters["placed_waiting"] += 1
                return None
            self.counters["placed_pairs"] += 1
            judge = self._judge.get(key)
            if judge is None:
                # Switching from the absolute decision: the state carries over, the
                # samples (of another scale) do not.
                judge = self._judge[key] = Presence(in_zone=pres.in_zone)
                pres.samples.clear()
            thresholds = self.zone.difference_thresholds()
            difference = pair.difference_db
            if not judge.in_zone and self._near_sensitivity(radio, pair):
                # A copy the inside receiver heard only because a fade lifted it: it says the
                # phone is far from the inside sensor, not how far. It counts as a copy that
                # does not put the phone inside (dropping it would leave the luckier copies
                # above the margin to decide alone: the same bias, a few dB higher).
                self.counters["placed_near_sensitivity"] += 1
                difference = min(difference, thresholds.exit_dbm)
            zone.update(judge, mono, difference, thresholds, params)
            zone.follow(pres, mono, pair.inside_dbm, judge, params)
            pres.sensor = pair.inside_sensor
            self._evidence[key] = evidence(pair)
            return pres
        if sensor in self._outside:
            self.counters["outside_sensor_records"] += 1
            return None
        if self._judge.pop(key, None) is not None:
            pres.samples.clear()
        self.counters["placed_absolute"] += 1
        pres.sensor = sensor
        zone.update(pres, mono, level, self.zone.thresholds(sensor, radio), params)
        silent = ", ".join(self._sites.silent) or "the other side"
        self._evidence[key] = f"{sensor} level alone ({silent} silent)"
        return pres

    def _presence_of(self, key: str) -> Presence:
        """The transmitter's presence, made when it is new (not with ``setdefault``, which
        would build one on every record the core judges)."""
        pres = self._presence.get(key)
        if pres is None:
            pres = self._presence[key] = Presence()
        return pres

    def _near_sensitivity(self, radio: str, pair: Pair) -> bool:
        """True when the inside sensor heard this copy so close to its receiver's sensitivity
        that a fade, not the phone's place, decided its level (``selection_margin_db``). Uplink
        SNRs have no such floor here (the burst detector's threshold is far below any zone
        level)."""
        opts = self.options
        if radio == "ble":
            sensitivity = opts.sensitivity_ble_dbm
        elif radio == "wifi":
            sensitivity = opts.sensitivity_wifi_dbm
        else:
            return False
        rssi = pair.inside_dbm + self.zone.offset(pair.inside_sensor)
        return rssi < sensitivity + opts.selection_margin_db

    def _placed_heard(self, event: WifiFrame | BleAdvert | SdrBurst) -> None:
        sensor = event.sensor
        if sensor not in self._sites.placements:
            return
        radio = (
            Radio.WIFI
            if isinstance(event, WifiFrame)
            else Radio.BLE
            if isinstance(event, BleAdvert)
            else Radio.SDR
        )
        self._node_radios.setdefault(sensor, set()).add(radio)
        change = self._sites.heard(sensor, event.mono)
        if change is not None:
            self._placed_changed(change, event.ts, event.mono)

    def _placed_changed(self, change: Change, ts: float, mono: float) -> None:
        """A placed sensor fell silent or came back: its health says how the zone is decided."""
        self.counters["placed_silent" if change.silent else "placed_back"] += 1
        state = SensorState.FAULT if change.silent else SensorState.OK
        radios = [str(r) for r in sorted(self._node_radios.get(change.sensor, {Radio.WIFI}))]
        if change.silent:
            self._sensor_down(change.sensor, radios, ts, mono)
        else:
            for radio in radios:
                self._sensor_up(change.sensor, radio, ts, mono)
        for radio in sorted(self._node_radios.get(change.sensor, {Radio.WIFI})):
            self._out.append(
                SensorHealth(
                    SensorStatus(
                        ts=ts,
                        mono=mono,
                        sensor=change.sensor,
                        radio=radio,
                        state=state,
                        message=change.message,
                        detail={"zone_decision": "difference" if change.fused else "absolute"},
                    )
                )
            )

    def _after_presence(
        self,
        key: str,
        radio: str,
        pres: Presence,
        device: Device | None,
        label: str,
        mono: float,
        ts: float,
    ) -> None:
        in_zone = self._in_zone
        if pres.in_zone:
            in_zone.add(key)
            if device is not None and _counts_as_handset(device):
                self._inside_minute.add(key)
        else:
            in_zone.discard(key)
        if device is not None:
            owner = self._owner
            device_id = device.id
            inside = pres.in_zone or (
                bool(in_zone) and any(owner.get(k) == device_id for k in in_zone)
            )
            if device.in_zone != inside:
                device.in_zone = inside
                device.dirty = True
        if device is not None and self._accounted(key, radio, pres, device, mono):
            return
        ambient = device is not None and self.ambient.suppresses(key, pres.level)
        if ambient and device is not None and not device.ambient:
            device.ambient = True
            device.dirty = True
        findings = self.detectors.judge(radio, key, pres, device, label, ambient)
        how = self._evidence.get(key) if self._placing else None
        if how is not None and findings:
            findings = [replace(f, reason=f"{f.reason}, {how}") for f in findings]
        if not findings and radio != "sdr" and key not in self.fusion.active:
            return  # what ``_fuse`` does with it: nothing (a crowd's record, nearly every one)
        identity = device.id if device is not None else key
        self._fuse(key, identity, radio, findings, mono, ts, device)

    def _fuse(
        self,
        key: str,
        identity: str,
        radio: str,
        findings: list[Finding],
        mono: float,
        ts: float,
        device: Device | None = None,
    ) -> None:
        if radio == "sdr":
            if findings:
                self.fusion.energy_in(findings[0], mono, ts)
            else:
                self.fusion.energy_out(key)
        elif findings:
            # A Wi-Fi key is ``wifi:<mac>``: whether the tracker joined that MAC on its model's
            # fingerprint alone decides whether an alarm may trust the join.
            by_model = radio == "wifi" and self._wifi.joined_by_model(key.split(":", 1)[1])
            entering = key not in self.fusion.active
            outside = self._heard_outside(key, radio) if entering else None
            self.fusion.device_in(
                findings[0],
                identity,
                mono,
                ts,
                by_model=by_model,
                heard_outside_mono=outside,
                last_below_mono=self._last_below(key) if entering else float("inf"),
                fingerprints=frozenset(device.fingerprints)
                if entering and device is not None
                else frozenset(),
            )
        elif key in self.fusion.active:
            self.fusion.device_out(key, mono)
        else:
            # A transmitter not in the zone and not held by fusion: nothing an alert depends
            # on changed (silence and time are the tick's, which syncs on its own beat). Under
            # a crowd this is nearly every record, and the sync was a tenth of the core's time.
            return
        self._sync_alerts(ts, mono)

    def _heard_outside(self, key: str, radio: str) -> float | None:
        """When this transmitter, entering now, was last heard clearly outside the zone (its
        recent samples), or None. A phone's other radio already inside by then was another
        phone's (``Fusion._co_entry``). Decided on absolute levels only: with placed sensors
        the zone is the difference's, which these samples do not hold."""
        if self._placing:
            return None
        pres = self._presence.get(key)
        if pres is None:
            return None
        sensor = pres.sensor
        if sensor is None:
            return None
        below = self.zone.thresholds(sensor, radio).enter_dbm - RADIOS_DISAGREE_DB
        # Judged as entering is (the median of a few packets), so one deep fade is not taken
        # for the phone standing outside.
        n = self._params[radio].enter_samples
        samples = list(pres.samples)
        for i in range(len(samples) - n, -1, -1):
            if statistics.median(level for _, level in samples[i : i + n]) < below:
                return samples[i + n - 1][0] - CROSSING_S
        return None

    def _last_below(self, key: str) -> float | None:
        """When this transmitter, entering now, was last judged short of the zone (its level
        below the enter level, ``Presence.below_mono``), allowing for the crossing; None: not
        within the longest join window (see ``_prune``). Infinity when unsure (placed sensors
        decide on a difference between sensors, which these levels do not hold)."""
        if self._placing:
            return float("inf")
        below = self._below.get(key)
        return None if below is None else below - CROSSING_S

    def _sync_alerts(self, ts: float, mono: float) -> None:
        before = self.alerting.counters["raised"] + self.alerting.counters["updated"]
        self.alerting.sync(self.fusion, ts, mono)
        if self.alerting.counters["raised"] + self.alerting.counters["updated"] != before:
            # An alert's devices go out with the alert: the API turns them into allowlist
            # entries, and a core restarted a moment later recognises them by them.
            self._emit_devices()

    def _emit_devices(self) -> None:
        self._out.extend(DeviceChanged(d.to_dict()) for d in self.devices.dirty())

    def _identifiers_of(self, device_id: str) -> dict[str, list[str]] | None:
        device = self.devices.get(device_id)
        return device.identifiers() if device is not None else None

    def _status(self, status: SensorStatus) -> None:
        self.sensors[status.sensor] = status
        self._out.append(SensorHealth(status))
        radio = str(status.radio)
        if status.state in _DOWN_STATES:
            self._sensor_down(status.sensor, (radio,), status.ts, status.mono)
        elif (status.sensor, radio) in self._down and self._caught_up(status.mono):
            self._sensor_up(status.sensor, radio, status.ts, status.mono)
        if self._placing:
            healthy = status.state in (SensorState.OK, SensorState.DEGRADED, SensorState.STARTING)
            change = self._sites.status(status.sensor, healthy, status.mono)
            if change is not None:
                self._placed_changed(change, status.ts, status.mono)

    def _note_observation(self, sensor: str, ts: float, mono: float) -> None:
        """The sensor strip shows when each radio last heard something (once a second)."""
        # Throttled on the monotonic clock: after the wall clock steps back (NTP at boot, no
        # RTC) a wall-clock throttle would keep "last heard" frozen at the pre-step time.
        if mono - self._noted.get(sensor, _NEVER) < 1.0:
            return
        self._noted[sensor] = mono
        self._out.append(SensorHeard(sensor, ts))

    # -- handsets per minute -----------------------------------------------------------------
    def _heard(self, device: Device, key: str, ts: float) -> None:
        if self._minute is None or int(ts // 60) > self._minute:  # (once a minute)
            self._roll_minute(ts)
        if _counts_as_handset(device):
            self._heard_minute[key] = device.id

    def _roll_minute(self, ts: float) -> None:
        minute = int(ts // 60)
        if self._minute is None:
            self._minute = minute
        while self._minute < minute:
            self._end_minute()
            self._minute += 1

    def _end_minute(self) -> None:
        """Hand out the minute's handsets: transmitters joined into handsets by fusion where
        it knows them (inside the zone), else by the trackers' device ids."""
        if self._minute is None:
            return
        fusion = self.fusion
        seen = fusion.seen
        inside = {fusion.handset_of(k) for k in self._inside_minute}
        heard = {
            fusion.handset_of(k) if k in seen else device_id
            for k, device_id in self._heard_minute.items()
        }
        self._out.append(HandsetMinute(self._minute * 60.0, len(inside), len(heard | inside)))
        self._heard_minute = {}
        # Still inside as the next minute starts: inside during it too.
        self._inside_minute = {k for k in self._inside_minute if k in self._in_zone}

    # -- allowlist (scanner.core.allowlist: identities, then accounting) -----------------------
    def _check_allowlist(self, device: Device) -> None:
        now = device.last_ts
        entry = self.allowlist.entry_of_id(device.id, now) or self.allowlist.names_all(device, now)
        label = entry.label if entry is not None else None
        if entry is None:
            self._allow_entry.pop(device.id, None)
        else:
            self._allow_entry[device.id] = entry
        if label != device.allowlisted:
            device.allowlisted = label
            device.dirty = True
            if label is not None:
                self.counters["allowlisted_devices"] += 1
                self.fusion.drop_identity(device.id)
        self._account(device, device.last_mono)

    def _account(self, device: Device, mono: float) -> None:
        """Tell the accounting where an allowlisted device is."""
        if device.allowlisted is not None or device.id in self.accounting.present:
            entry = self._allow_entry.get(device.id)
            fps = self.allowlist.fingerprints_of(entry.label) if entry is not None else ()
            self.accounting.allowlisted(device, entry, fps, mono)

    def _accounted(self, key: str, radio: str, pres: Presence, device: Device, mono: float) -> bool:
        """True when an unnamed probing transmitter is one an allowlisted phone present
        accounts for: it is kept out of fusion (the ones beyond those still alarm)."""
        self._account(device, mono)
        if radio != "wifi" or device.allowlisted is not None or not device.fingerprints:
            return False
        if not pres.in_zone and not self.accounting.present:
            return False  # no cluster counts it, and no allowlisted phone present explains it
        self.accounting.cluster(key, device.fingerprints, pres.in_zone, mono)
        if self.accounting.explains(key, device.fingerprints, mono) is None:
            return False
        self.counters["accounted_clusters"] += 1
        self.fusion.drop_device(key)
        return True

    def _uplink_accounted(self, key: str, pres: Presence, mono: float, ts: float) -> bool:
        """True when this transmitter's uplink energy is within what allowlisted phones present
        can send (one transmitter each): it is kept out of fusion; energy beyond still alarms."""
        if not self.accounting.band(key, pres.in_zone, mono):
            return False
        self.counters["uplink_accounted"] += 1
        self._in_zone.add(key)  # the tick still ends it when it falls silent
        self.fusion.energy_out(key)
        self._sync_alerts(ts, mono)
        return True

    def _recheck_allowlist(self) -> None:
        # Entries changed (or one expired): every device is checked against them again.
        had_handsets = bool(self.fusion.active)
        for device in self.devices:
            self._check_allowlist(device)
        mono = self._last_mono
        self._allow_expiry = None
        if not self._allow_published:
            # The configuration's entries, for the page and the report to show as read-only;
            # published at once, even before the first record (the store's list arrives then).
            self._allow_published = True
            self._out.append(SettingChanged(CONFIG_SETTING, self.allowlist.config_view()))
        if mono is None:
            return  # before the first record: nothing is open on this run's timeline yet
        ts = self._ts(mono)
        self._allow_expiry = self.allowlist.next_expiry(ts)
        if had_handsets:
            # An alert whose every handset is now authorised closes as such at once.
            self.alerting.resolve_emptied(self.fusion, ts, mono, "allowlisted")
        self.alerting.sync(self.fusion, ts, mono)

    # -- time --------------------------------------------------------------------------------
    def ts_at(self, mono: float) -> float:
        """The wall-clock time of a point on the monotonic timeline."""
        return self._ts(mono)

    def _ts(self, mono: float) -> float:
        offset = self._wall_offset
        if offset is None:
            return self.clock.wall() - self.clock.monotonic() + mono
        return mono + offset

    def tick(self, now_mono: float | None = None) -> list[CoreEvent]:
        """Move time on: silence ends presences, alerts resolve, housekeeping runs."""
        mono = self.clock.monotonic() if now_mono is None else now_mono
        self._tick(mono)
        return self._take()

    def _tick(self, mono: float) -> None:
        self._last_tick = mono
        if self._last_mono is None or mono > self._last_mono:
            self._last_mono = mono
        ts = self._ts(mono)
        if self._allow_expiry is not None and ts >= self._allow_expiry:
            self._recheck_allowlist()  # an entry expired: it stops exempting now
        self._roll_minute(ts)
        if self._placing:
            for change in self._sites.check(mono):
                self._placed_changed(change, ts, mono)
            self._sites.prune(mono)
        if self._down:
            self._hold_bound(ts, mono)
        for key in list(self._in_zone):
            if self._held_by(key) is not None:
                # Its sensor cannot hear: its silence says nothing of the phone.
                self.counters["held_ticks"] += 1
                continue
            self._expire_key(key, mono)
        self.fusion.expire(mono)
        self._sync_alerts(ts, mono)
        # A flood reached the aggregator's bound: its rows go out now, not with the periodic
        # flush, so they are not held in memory in another form meanwhile.
        self._hand_out_spilled()
        if self._down or self._holding:
            self._tell_held(ts, mono)
        if mono - self._last_ambient >= AMBIENT_EVERY_S:
            self._last_ambient = mono
            learned = self.ambient.tick(mono)
            for key in learned:
                device = self.devices.get(self._owner.get(key, key))
                if device is not None:
                    device.ambient = True
                    device.dirty = True
                self.counters["ambient_learned"] += 1
            if learned:
                self._out.append(SettingChanged(AMBIENT_SETTING, self.ambient.snapshot()))
        if mono - self._last_prune >= PRUNE_EVERY_S:
            self._last_prune = mono
            self._prune(mono)
        if mono - self._last_flush >= self.options.store_devices_every_s:
            self._last_flush = mono
            self._flush(ts)

    def _expire_key(self, key: str, mono: float) -> bool:
        """Re-decide a transmitter in the zone at ``mono`` without a new sample (silence);
        True when it left."""
        pres = self._presence[key]
        radio = _radio_of(key)
        judge = self._judge.get(key)
        if judge is not None:
            # Decided on the difference: silence and hysteresis on the difference.
            zone.expire(judge, mono, self.zone.difference_thresholds(), self._params[radio])
            left = zone.adopt(pres, mono, judge)
            if left and not judge.samples:
                pres.samples.clear()
                pres.level = pres.window_level = None
        else:
            # The sensor that put it in the zone judges it leaving, with that sensor's own
            # calibration (the same thresholds as on entry).
            th = self.zone.thresholds(pres.sensor if pres.sensor is not None else radio, radio)
            left = zone.expire(pres, mono, th, self._params[radio])
        if not (left and not pres.in_zone):
            return False
        self._left(key, radio, mono)
        return True

    def _left(self, key: str, radio: str, mono: float) -> None:
        self._in_zone.discard(key)
        device = self.devices.get(self._owner.get(key, key))
        if device is not None:
            device.in_zone = False
            device.dirty = True
            self._account(device, mono)
        if radio == "sdr":
            self.accounting.forget_band(key)
            self.fusion.energy_out(key)
        else:
            self.fusion.device_out(key, mono)

    # -- sensors that cannot hear ------------------------------------------------------------
    def _sensor_judging(self, key: str) -> str | None:
        """The sensor whose levels (or whose side of the difference) judge this transmitter
        now, None when none does yet (``Presence.sensor``)."""
        pres = self._presence.get(key)
        return None if pres is None else pres.sensor

    def _held_by(self, key: str) -> _Outage | None:
        """The outage holding this transmitter in the zone: the sensor radio judging it is
        down (and has not been down for longer than the hold)."""
        sensor = self._sensor_judging(key)
        if sensor is None:
            return None
        outage = self._down.get((sensor, _radio_of(key)))
        return outage if outage is not None and not outage.lost else None

    def _caught_up(self, mono: float) -> bool:
        return mono >= self._last_tick - CAUGHT_UP_S

    def _sensor_down(self, sensor: str, radios: Iterable[str], ts: float, mono: float) -> None:
        for radio in radios:
            if (sensor, radio) not in self._down:
                self._down[(sensor, radio)] = _Outage(mono, ts)
                self.counters["sensor_outages"] += 1
                _LOGGER.warning(
                    "sensor %s (%s) down: its phones are held in the zone", sensor, radio
                )
        self._tell_held(ts, mono)

    def _sensor_up(self, sensor: str, radio: str, ts: float, mono: float) -> None:
        outage = self._down.pop((sensor, radio), None)
        if outage is None:
            return
        _LOGGER.info("sensor %s (%s) hears again", sensor, radio)
        if not outage.lost:
            # Silence counts only while the sensor could hear: a phone last heard before the
            # outage has the outage's length added to its last time (a replay that covered
            # the outage has already decided the ones it heard, at their own times).
            deaf_s = mono - outage.since_mono
            for key in list(self._in_zone):
                if self._sensor_judging(key) != sensor or _radio_of(key) != radio:
                    continue
                for pres in (self._presence[key], self._judge.get(key)):
                    if pres is not None and pres.last_mono <= outage.since_mono:
                        pres.last_mono += deaf_s
        self._tell_held(ts, mono)

    def _heard_from_down(self, event: WifiFrame | BleAdvert | SdrBurst) -> None:
        """A record from a sensor radio that was down: live again, or its spool's replay."""
        radio = str(
            Radio.WIFI
            if isinstance(event, WifiFrame)
            else Radio.BLE
            if isinstance(event, BleAdvert)
            else Radio.SDR
        )
        outage = self._down.get((event.sensor, radio))
        if outage is None or event.mono < outage.since_mono:
            return  # (heard before it went down: a batch that was in flight)
        # The sensor's radios that went down with this one (a node's link: all its radios at
        # once) come back with it, and its replay (one ordered stream) speaks for all of them.
        radios = {
            r
            for (s, r), o in self._down.items()
            if s == event.sensor and o.since_mono == outage.since_mono
        }
        if self._caught_up(event.mono):
            for r in sorted(radios):
                self._sensor_up(event.sensor, r, event.ts, event.mono)
            return
        # Its replay: the sensor could hear at this time, so silence on the replay's own
        # timeline is evidence, decided at the time it says (once a second of that timeline).
        if event.mono - outage.replayed_mono < TICK_EVERY_S:
            return
        outage.replayed_mono = event.mono
        for key in list(self._in_zone):
            if self._sensor_judging(key) == event.sensor and _radio_of(key) in radios:
                self._expire_key(key, event.mono)
        # Leave holds and alert closes run on that timeline too, so an alert closes at the
        # time the replay says, not when the replay arrived.
        self.fusion.expire(event.mono)
        self._sync_alerts(event.ts, event.mono)
        self._tell_held(event.ts, event.mono)

    def _hold_bound(self, ts: float, mono: float) -> None:
        """Holds longer than ``sensor_hold_s`` end: their alerts close as ``sensor_lost``."""
        ended = False
        for (sensor, radio), outage in self._down.items():
            if outage.lost or mono - outage.since_mono <= self.options.sensor_hold_s:
                continue
            outage.lost = True
            _LOGGER.warning(
                "sensor %s (%s) down for %.0f s: its phones are no longer held",
                sensor,
                radio,
                mono - outage.since_mono,
            )
            for key in list(self._in_zone):
                if self._sensor_judging(key) != sensor or _radio_of(key) != radio:
                    continue
                pres = self._presence[key]
                pres.samples.clear()
                pres.level = pres.window_level = None
                zone.adopt(pres, mono, Presence())
                self._judge.pop(key, None)
                self._left(key, radio, mono)
                if radio != "sdr":
                    self.fusion.drop_device(key)  # gone now: no leave hold to wait out
                self.counters["held_lost"] += 1
                ended = True
        if ended:
            self.alerting.resolve_emptied(self.fusion, ts, mono, "sensor_lost")
            self._tell_held(ts, mono)

    def _tell_held(self, ts: float, mono: float) -> None:
        """Tell the alerts which of their handsets are held, and by which sensor."""
        notes: dict[str, str] = {}
        for key in self._in_zone:
            outage = self._held_by(key)
            if outage is not None:
                since = time.strftime("%H:%M:%S", time.gmtime(outage.since_ts))
                notes[key] = f"held: sensor {self._sensor_judging(key)} offline since {since}Z"
        if notes or self._holding:
            self.alerting.hold(notes, ts, mono)
        self._holding = bool(notes)

    def _prune(self, mono: float) -> None:
        """Forget per-transmitter state of transmitters silent longer than it can matter.

        A presence outside the zone whose samples have all left its windows decides exactly as
        a new one would, so it goes; one in the zone or still held open by fusion stays. The
        owner (transmitter -> device) stays while the ambient baseline still watches the
        transmitter, so a device learned as ambient is marked so.
        """
        opts = self.options
        window_s = max(opts.window_s, opts.confirm_window_s, opts.sdr_window_s)
        keep = self._in_zone | self.fusion.active.keys()
        gone = [
            key
            for key, pres in self._presence.items()
            if key not in keep and not pres.in_zone and mono - pres.last_mono > window_s
        ]
        for key in gone:
            del self._presence[key]
            self.accounting.forget_cluster(key)
            self._judge.pop(key, None)
            self._evidence.pop(key, None)
        self.counters["pruned_transmitters"] += len(gone)
        self._uplink.prune(mono)
        # A transmitter judged short of the zone longer ago than the longest join of addresses
        # may span (``identity_gap_s``, an address rotating within a visit) is as one never
        # heard there: what it did then decides no join now.
        horizon = opts.identity_gap_s
        for key in [k for k, t in self._below.items() if mono - t > horizon]:
            del self._below[key]
        self.counters["pruned_ambient_candidates"] += self.ambient.prune(mono)
        presence, ambient = self._presence, self.ambient
        for key in [k for k in self._owner if k not in presence and not ambient.watches(k)]:
            del self._owner[key]
        self._prune_devices(mono)

    def _prune_devices(self, mono: float) -> None:
        keep = {p.identity for p in self.fusion.active.values()}
        for alert in self.alerting.handsets:
            keep.update(alert.device_ids)

        def removable(device: Device) -> bool:
            # A dirty device has a change not yet handed out: it goes after the next flush.
            return not device.in_zone and device.id not in keep and not device.dirty

        dropped = self.devices.forget(
            lambda d: mono - d.last_mono > DEVICE_FORGET_S and removable(d)
        )
        if len(self.devices) > MAX_DEVICES:
            dropped += self.devices.evict_oldest(len(self.devices) - MAX_DEVICES, removable)
        self.counters["pruned_devices"] += dropped

    def _flush(self, ts: float | None) -> None:
        """Hand out changed devices and finished sighting minutes (all of them: ``ts`` None)."""
        self._emit_devices()
        if self._sightings is not None:
            self._hand_out_spilled()
            self._out.extend(self._sightings.take(ts))

    def _hand_out_spilled(self) -> None:
        """The sighting rows the aggregator's bound handed out early, counted, then out."""
        if self._sightings is not None and self._sightings.spilled:
            spilled = self._sightings.take_spilled()
            self.counters["sightings_spilled"] += len(spilled)
            self._out.extend(spilled)

    def flush(self, ts: float | None = None) -> list[CoreEvent]:
        """Changed devices and finished sighting minutes now, not at the next periodic flush."""
        self._flush(ts)
        return self._take()

    def close(self, now_mono: float | None = None) -> list[CoreEvent]:
        """End of input: hand out what is pending. Open alerts stay open (they are still true)."""
        mono = self.clock.monotonic() if now_mono is None else now_mono
        if self._minute is not None:
            self._end_minute()
            self._minute = None
        self._flush(None)
        _LOGGER.debug("core closed at %.1f", mono)
        return self._take()

    def unacknowledged_alerts(self) -> list[str]:
        """Ids of the open alerts no guard has acknowledged yet."""
        return [a.id for a in self.alerting.open_alerts() if not a.acknowledged]

    def table_sizes(self) -> dict[str, int]:
        """How many entries each table that grows with transmitters, visits, alerts or time
        holds, by ``part.table``: each has a bound (an age or a cap), and tests drive crowds
        through the core and check these stay within them."""
        sizes: dict[str, int] = {
            "core.presence": len(self._presence),
            "core.uplink_transmitters": len(self._uplink),
            "core.owner": len(self._owner),
            "core.in_zone": len(self._in_zone),
            "core.judge": len(self._judge),
            "core.below": len(self._below),
            "core.evidence": len(self._evidence),
            "core.heard_minute": len(self._heard_minute),
            "core.inside_minute": len(self._inside_minute),
            "core.allow_entry": len(self._allow_entry),
            "core.sensors": len(self.sensors),
            "core.noted": len(self._noted),
            "devices.devices": len(self.devices),
            "ambient.watched": len(self.ambient),
        }
        if self._sightings is not None:
            sizes["sightings.buckets"] = len(self._sightings)
            sizes["sightings.spilled"] = self._sightings.spilled
        parts: list[tuple[str, object]] = [
            ("fusion", self.fusion),
            ("alerting", self.alerting),
            ("accounting", self.accounting),
            ("wifi_tracker", self._wifi),
            ("ble_tracker", self._ble),
        ]
        for name, part in parts:
            table_sizes = getattr(part, "table_sizes", None)
            if callable(table_sizes):
                sizes.update({f"{name}.{k}": v for k, v in table_sizes().items()})
        return sizes

    def stats(self) -> CoreStats:
        return CoreStats(
            counters=dict(self.counters),
            detectors=self.detectors.snapshot(),
            devices=len(self.devices),
            handsets_counted=self.fusion.handset_count(),
            alerts=dict(self.alerting.counters),
        )


def _counts_as_handset(device: Device) -> bool:
    """A handset for the counts: classified as one (an unknown kind may alert, but is not
    counted as a phone), not ambient, not allowlisted."""
    return device.kind == "handset" and not device.ambient and device.allowlisted is None


def _radio_of(key: str) -> str:
    """ "wifi:<mac>" -> "wifi"; "sdr:<band>" -> "sdr"."""
    return key.split(":", 1)[0]


def _key(radio: str, raw_id: str) -> str:
    prefix = f"{radio}:"
    return raw_id if raw_id.startswith(prefix) else prefix + raw_id


def _short_reason(reason: str) -> str:
    """ "Apple Nearby Info, iPhone action code 0x03 (idle)" -> "Apple Nearby Info, iPhone"."""
    return reason.split(" action code", 1)[0]


def _short_band(band: str) -> str:
    """ "LTE B20 UL" -> "B20"; "E-GSM-900 UL" -> "GSM-900": how a guard's reason reads."""
    words = [w for w in band.replace("E-GSM", "GSM").split() if w not in ("UL", "LTE")]
    return " ".join(words) or band
