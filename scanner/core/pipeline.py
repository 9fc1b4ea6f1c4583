"""The detection core: where an observation becomes an alert.

    observation -> device tracking -> zone presence -> detectors -> fusion -> alerting -> sinks

``Core.handle`` takes every record a source delivers (frames, adverts, bursts, health) in time
order; ``Core.tick`` moves time on when nothing arrives, so silence ends presences and resolves
alerts. All decisions use ``mono``; ``ts`` goes only into records. The store is optional.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scanner.clock import SYSTEM_CLOCK, Clock
from scanner.core import presence as zone
from scanner.core.alerting import Alerting, AlertSink
from scanner.core.allowlist import Allowlist
from scanner.core.ambient import AmbientBaseline
from scanner.core.detectors import DetectorBank, DetectorInput, Finding, build_registry
from scanner.core.devices import Device, DeviceTable
from scanner.core.fusion import Fusion
from scanner.core.identity import BleIdentity, WifiIdentity, ble_identity, wifi_identity
from scanner.core.kinds import ble_classifier, ble_kind, wifi_kind
from scanner.core.options import CoreOptions
from scanner.core.presence import Presence, PresenceParams, ZoneModel, calibrations_from_setting
from scanner.observations import BleAdvert, SdrBurst, SensorStatus, SourceEvent, WifiFrame
from scanner.store.db import Store

_LOGGER = logging.getLogger(__name__)

# Housekeeping runs on the observation timeline at most this often.
TICK_EVERY_S = 1.0
AMBIENT_EVERY_S = 10.0
AMBIENT_SETTING = "ambient_baseline"
RUN_SETTING = "core_runs"  # how many times a core has started on this store
# Per-transmitter state of silent transmitters is swept this often (amortised: a sweep walks
# every transmitter, so it must not run on every tick under a flood of new MACs).
PRUNE_EVERY_S = 5.0
# A device record unheard this long is dropped from memory once written to the store: beyond
# the trackers' join window a random MAC cannot come back as the same station anyway.
DEVICE_FORGET_S = 300.0
# Hard cap on device records in memory (a MAC flood); the longest silent go first.
MAX_DEVICES = 10_000


@dataclass(frozen=True, slots=True)
class CoreStats:
    """What a replay reports at the end."""

    counters: dict[str, int]
    detectors: dict[str, dict[str, int]]
    devices: int
    handsets_counted: int
    alerts: dict[str, int]


class Core:
    """The pipeline, one instance per site. Not thread-safe: one consumer feeds it."""

    def __init__(
        self,
        store: Store | None = None,
        options: CoreOptions | None = None,
        clock: Clock = SYSTEM_CLOCK,
        sinks: list[AlertSink] | None = None,
        wifi_tracker: WifiIdentity | None = None,
        ble_tracker: BleIdentity | None = None,
        classify: Callable[[BleAdvert], Any] | None = None,
    ) -> None:
        self.options = options or CoreOptions()
        self.store = store
        self.clock = clock
        self.counters: Counter[str] = Counter()
        self.devices = DeviceTable()
        self.zone = ZoneModel(self.options)
        self.detectors = DetectorBank(build_registry(self.options))
        self.fusion = Fusion(self.options)
        self.alerting = Alerting(self.options, store, sinks, self._identifiers_of)
        self.ambient = AmbientBaseline(self.options)
        self.allowlist = Allowlist(self.options.allowlist)
        self.sensors: dict[str, SensorStatus] = {}
        # Tracker ids are counters; with a store they carry this run's number, so a restarted
        # core never reuses an id already naming another device in the ``devices`` table.
        self.run_tag = _next_run(store) if store is not None else ""
        self._wifi = wifi_tracker or wifi_identity(self.options.trackers, self.run_tag)
        self._ble = ble_tracker or ble_identity(self.options.trackers, self.run_tag)
        self._classify = classify or ble_classifier()
        self._params = {
            r: PresenceParams.for_radio(self.options, r) for r in ("wifi", "ble", "sdr")
        }
        self._presence: dict[str, Presence] = {}
        self._owner: dict[str, str] = {}  # transmitter key -> device id
        self._in_zone: set[str] = set()
        self._wall_offset: float | None = None  # ts - mono of the latest record
        self._last_tick = float("-inf")
        self._last_ambient = float("-inf")
        self._last_poll = float("-inf")
        self._last_store = float("-inf")
        self._last_prune = float("-inf")
        self._sightings: Any = None
        self._noted: dict[str, float] = {}  # sensor -> mono of the last observation stored
        if store is not None:
            from scanner.store.sightings import SightingAggregator

            self._sightings = SightingAggregator()
            self._poll_store(force=True)
            # The site need not be learned again after a restart.
            self.ambient.restore(store.get_setting(AMBIENT_SETTING), clock.monotonic())

    # -- input -------------------------------------------------------------------------------
    def handle(self, event: SourceEvent) -> None:
        """Process one record from a source."""
        self._wall_offset = event.ts - event.mono
        if isinstance(event, WifiFrame):
            self._wifi_frame(event)
        elif isinstance(event, BleAdvert):
            self._ble_advert(event)
        elif isinstance(event, SdrBurst):
            self._sdr_burst(event)
        elif isinstance(event, SensorStatus):
            self._status(event)
        else:
            self.counters["unknown_event"] += 1
            return
        if self.store is not None and not isinstance(event, SensorStatus):
            self._note_observation(event.sensor, event.ts, event.mono)
        if event.mono - self._last_tick >= TICK_EVERY_S:
            self.tick(event.mono)

    def _wifi_frame(self, frame: WifiFrame) -> None:
        self.counters["wifi_frames"] += 1
        try:
            raw_id = self._wifi.observe(frame)
        except Exception:  # a tracker bug must cost one frame, never the core
            _LOGGER.exception("Wi-Fi tracker failed on a frame")
            self.counters["tracker_errors"] += 1
            return
        key = _key("wifi", raw_id)
        device = self.devices.touch(key, "wifi", frame.ts, frame.mono)
        new_mac = frame.mac not in device.macs
        device.note(frame.ts, frame.mono, frame.rssi_dbm)
        if new_mac:
            device.add_identifier(device.macs, frame.mac)
        if frame.fingerprint and frame.fingerprint not in device.fingerprints:
            device.add_identifier(device.fingerprints, frame.fingerprint)
            new_mac = True
        if device.kind == "unknown" or device.count == 1:
            kind, reason = wifi_kind(frame)
            device.set_kind(kind, None, reason)
        if new_mac:
            self._check_allowlist(device)
        if self._sightings is not None:
            self._sightings.add(key, "wifi", frame.sensor, frame.mac, frame.ts, frame.rssi_dbm)
        if frame.rssi_dbm is None:
            self.counters["wifi_no_rssi"] += 1
            return
        self._observe_level(
            f"wifi:{frame.mac}",
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
        key = _key("ble", raw_id)
        device = self.devices.touch(key, "ble", advert.ts, advert.mono)
        device.note(advert.ts, advert.mono, advert.rssi_dbm)
        kind, vendor, reason = ble_kind(cls)
        device.set_kind(kind, vendor, reason)
        address = advert.address.lower()
        if address not in device.ble:
            device.add_identifier(device.ble, address)
            self._check_allowlist(device)
        if self._sightings is not None:
            self._sightings.add(key, "ble", advert.sensor, address, advert.ts, advert.rssi_dbm)
        if advert.rssi_dbm is None:
            return
        self._observe_level(
            f"ble:{address}",
            device,
            "ble",
            advert.sensor,
            advert.mono,
            advert.ts,
            advert.rssi_dbm,
            _short_reason(reason),
        )

    def _sdr_burst(self, burst: SdrBurst) -> None:
        self.counters["sdr_bursts"] += 1
        band = burst.band or f"{burst.freq_mhz:.1f} MHz"
        key = f"sdr:{band}"
        if self._sightings is not None:
            self._sightings.add(key, "sdr", burst.sensor, band, burst.ts, burst.snr_db)
        level = burst.snr_db - self.zone.offset(burst.sensor)
        th = self.zone.thresholds(burst.sensor, "sdr")
        pres = self._presence.setdefault(key, Presence())
        zone.update(pres, burst.mono, level, th, self._params["sdr"])
        self._after_presence(key, "sdr", pres, None, _short_band(band), burst.mono, burst.ts)

    def _observe_level(
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
        # Presence is judged per transmitter (MAC, BLE address): a tracker that wrongly joins
        # two phones must not mix their levels into one.
        level = rssi - self.zone.offset(sensor)
        th = self.zone.thresholds(sensor, radio)
        pres = self._presence.setdefault(key, Presence())
        self._owner[key] = device.id
        was_in = pres.in_zone
        zone.update(pres, mono, level, th, self._params[radio])
        self.ambient.observe(key, mono, level, th.enter_dbm)
        if pres.in_zone and not was_in:
            self.ambient.note_entered(key)
        self._after_presence(key, radio, pres, device, label, mono, ts)

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
        if pres.in_zone:
            self._in_zone.add(key)
        else:
            self._in_zone.discard(key)
        if device is not None:
            inside = pres.in_zone or any(self._owner.get(k) == device.id for k in self._in_zone)
            if device.in_zone != inside:
                device.in_zone = inside
                device.dirty = True
        ambient = device is not None and self.ambient.suppresses(key, pres.level)
        if ambient and device is not None and not device.ambient:
            device.ambient = True
            device.dirty = True
        findings = self.detectors.run(
            DetectorInput(
                radio=radio, key=key, presence=pres, device=device, label=label, ambient=ambient
            )
        )
        identity = device.id if device is not None else key
        self._fuse(key, identity, radio, findings, mono, ts)

    def _fuse(
        self, key: str, identity: str, radio: str, findings: list[Finding], mono: float, ts: float
    ) -> None:
        if radio == "sdr":
            if findings:
                self.fusion.energy_in(findings[0], mono, ts)
            else:
                self.fusion.energy_out(key)
        elif findings:
            self.fusion.device_in(findings[0], identity, mono, ts)
        else:
            self.fusion.device_out(key, mono)
        self._sync_alerts(ts, mono)

    def _sync_alerts(self, ts: float, mono: float) -> None:
        before = self.alerting.counters["raised"] + self.alerting.counters["updated"]
        self.alerting.sync(self.fusion, ts, mono)
        if (
            self.store is not None
            and self.alerting.counters["raised"] + self.alerting.counters["updated"] != before
        ):
            # An alert's devices are in the store when the alert is: the API turns them into
            # allowlist entries, and a core restarted a moment later recognises them by them.
            self.flush(ts)

    def _identifiers_of(self, device_id: str) -> dict[str, list[str]] | None:
        device = self.devices.get(device_id)
        return device.identifiers() if device is not None else None

    def _status(self, status: SensorStatus) -> None:
        self.sensors[status.sensor] = status
        if self.store is not None:
            from scanner.store.health import record_status

            record_status(self.store, status)

    def _note_observation(self, sensor: str, ts: float, mono: float) -> None:
        """The sensor strip shows when each radio last heard something (once a second)."""
        # Throttled on the monotonic clock: after the wall clock steps back (NTP at boot, no
        # RTC) a wall-clock throttle would keep "last heard" frozen at the pre-step time.
        if mono - self._noted.get(sensor, float("-inf")) < 1.0 or self.store is None:
            return
        self._noted[sensor] = mono
        from scanner.store.health import note_observation

        note_observation(self.store, sensor, ts)

    # -- allowlist ---------------------------------------------------------------------------
    def _check_allowlist(self, device: Device) -> None:
        label = self.allowlist.match_device(device)
        if label != device.allowlisted:
            device.allowlisted = label
            device.dirty = True
            if label is not None:
                self.counters["allowlisted_devices"] += 1
                self.fusion.drop_identity(device.id)

    def _recheck_allowlist(self, mono: float) -> None:
        had_handsets = bool(self.fusion.active)
        for device in self.devices:
            self._check_allowlist(device)
        ts = self._ts(mono)
        if had_handsets and not self.fusion.active and self.alerting.handset is not None:
            # Everything the alert was about is now authorised: close it as such at once.
            self.alerting.resolve_handset(ts, mono, "allowlisted")
        self.alerting.sync(self.fusion, ts, mono)

    # -- time --------------------------------------------------------------------------------
    def _ts(self, mono: float) -> float:
        offset = self._wall_offset
        if offset is None:
            return self.clock.wall() - self.clock.monotonic() + mono
        return mono + offset

    def tick(self, now_mono: float | None = None) -> None:
        """Move time on: silence ends presences, alerts resolve, housekeeping runs."""
        mono = self.clock.monotonic() if now_mono is None else now_mono
        self._last_tick = mono
        ts = self._ts(mono)
        for key in list(self._in_zone):
            pres = self._presence[key]
            radio = "sdr" if key.startswith("sdr:") else key.split(":", 1)[0]
            th = self.zone.thresholds(radio, radio)
            if zone.expire(pres, mono, th, self._params[radio]) and not pres.in_zone:
                self._in_zone.discard(key)
                device = self.devices.get(self._owner.get(key, key))
                if device is not None:
                    device.in_zone = False
                    device.dirty = True
                if radio == "sdr":
                    self.fusion.energy_out(key)
                else:
                    self.fusion.device_out(key, mono)
        self.fusion.expire(mono)
        self._sync_alerts(ts, mono)
        if mono - self._last_ambient >= AMBIENT_EVERY_S:
            self._last_ambient = mono
            learned = self.ambient.tick(mono)
            for key in learned:
                device = self.devices.get(self._owner.get(key, key))
                if device is not None:
                    device.ambient = True
                    device.dirty = True
                self.counters["ambient_learned"] += 1
            if learned and self.store is not None:
                with self.store.write() as conn:
                    self.store.set_setting(conn, AMBIENT_SETTING, self.ambient.snapshot())
        if mono - self._last_prune >= PRUNE_EVERY_S:
            self._last_prune = mono
            self._prune(mono)
        if self.store is not None:
            if mono - self._last_poll >= self.options.allowlist_poll_s:
                self._last_poll = mono
                if self._poll_store():
                    self._recheck_allowlist(mono)
            if mono - self._last_store >= self.options.store_devices_every_s:
                self._last_store = mono
                self.flush(ts)

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
        self.counters["pruned_transmitters"] += len(gone)
        self.counters["pruned_ambient_candidates"] += self.ambient.prune(mono)
        presence, ambient = self._presence, self.ambient
        for key in [k for k in self._owner if k not in presence and not ambient.watches(k)]:
            del self._owner[key]
        self._prune_devices(mono)

    def _prune_devices(self, mono: float) -> None:
        keep = {p.identity for p in self.fusion.active.values()}
        handset = self.alerting.handset
        if handset is not None:
            keep.update(handset.device_ids)
        written = self.store is None  # without a store nothing waits to be written

        def removable(device: Device) -> bool:
            return not device.in_zone and device.id not in keep and (written or not device.dirty)

        dropped = self.devices.forget(
            lambda d: mono - d.last_mono > DEVICE_FORGET_S and removable(d)
        )
        if len(self.devices) > MAX_DEVICES:
            dropped += self.devices.evict_oldest(len(self.devices) - MAX_DEVICES, removable)
        self.counters["pruned_devices"] += dropped

    def _poll_store(self, force: bool = False) -> bool:
        store = self.store
        if store is None:
            return False
        self.zone.set_calibrations(calibrations_from_setting(store.get_setting("zone_calibration")))
        return self.allowlist.refresh(store) or force

    def flush(self, ts: float | None = None) -> None:
        """Write changed devices and finished sighting minutes to the store."""
        if self.store is None:
            return
        from scanner.store.devices import upsert_devices

        upsert_devices(self.store, [d.to_dict() for d in self.devices.dirty()])
        if self._sightings is not None:
            self._sightings.flush(self.store, ts)

    def close(self, now_mono: float | None = None) -> None:
        """End of input: store what is pending. Open alerts stay open (they are still true)."""
        mono = self.clock.monotonic() if now_mono is None else now_mono
        if self.store is not None:
            self.flush(None)
        _LOGGER.debug("core closed at %.1f", mono)

    def stats(self) -> CoreStats:
        return CoreStats(
            counters=dict(self.counters),
            detectors=self.detectors.snapshot(),
            devices=len(self.devices),
            handsets_counted=self.fusion.handset_count(),
            alerts=dict(self.alerting.counters),
        )


def _next_run(store: Store) -> str:
    """Count this start in the store and return its number, as a tag for device ids."""
    with store.write() as conn:
        runs = store.get_setting(RUN_SETTING, 0)
        run = (runs if isinstance(runs, int) and runs >= 0 else 0) + 1
        store.set_setting(conn, RUN_SETTING, run)
    return str(run)


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
