"""Live BLE capture: bleak's ``BleakScanner`` over BlueZ, with a start ladder and a bounded
handoff to the sink.

Threads: an asyncio loop thread runs bleak and the ladder; its detection callback turns each
report into a ``BleAdvert``, records it when ``--record`` is on, and puts it in a bounded queue
(a full queue is a counted drop, never a block of the D-Bus loop). A delivery thread drains the
queue into the sink. bleak is imported only when the source starts.

START LADDER (each rung's failures are classified by ``constants.ERROR_PATTERNS`` and retried
with that class's backoff; the message shown is the class's, logged once at warning):

 1. Connect to the system bus.                 D-Bus gone    -> fault, retry 1..30 s
 2. Wait for org.bluez to have an owner.        bluetoothd gone -> fault, wait for the name
 3. Find the adapter (configured or first).     missing       -> fault, retry 0.5..30 s
 4. Adapter powered? If not, ask to power on.   refused/rfkill -> fault, retry 5..60 s
 5. Start bleak's scan. Passive (the default): register a BlueZ advertisement monitor with
    the or-patterns; nothing is transmitted. Active (explicit opt-in only: it transmits scan
    requests): SetDiscoveryFilter with DuplicateData, StartDiscovery.
      no monitors -> fault, retry 5..60 s, and at once when bluetoothd restarts; NEVER a
                     fallback to active scanning (bluetoothd needs --experimental)
      InProgress  -> stop the stale discovery ourselves and retry 0.5..5 s
      NotReady    -> adapter initialising, retry 1..10 s
 6. Scanning: state ok. Passive: before the monitors and then every ``rereport_s``, drop
    BlueZ's cached objects of passing devices, since BlueZ reports a known device again only
    when its RSSI or data change. Leave on stop, bluetoothd restart (name owner change),
    adapter powered off, or D-Bus lost; then go back to rung 1 at once - no process restart.
 7. Degrade: a class failing again and again keeps its last message and retries at its
    maximum backoff for as long as the daemon runs.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from typing import Any

from scanner.clock import SYSTEM_CLOCK, Clock
from scanner.observations import BleAdvert, Radio, SensorState
from scanner.sources.backoff import Backoff
from scanner.sources.base import BoundedHandoff, Sink, Source
from scanner.sources.ble.bluez_watch import BluezWatch
from scanner.sources.ble.constants import (
    ERROR_POLICIES,
    MONITOR_MAX_PATTERNS,
    OWNER_WAIT_S,
    SCAN_START_TIMEOUT_S,
    SCAN_STOP_TIMEOUT_S,
    BleErrorClass,
    classify_error,
    error_text,
    rssi_dbm_or_none,
)
from scanner.sources.ble.errors import CaptureError
from scanner.sources.ble.options import ACTIVE, PASSIVE, BleOptions

_LOGGER = logging.getLogger(__name__)

_NO_MFR: dict[int, bytes] = {}
_NO_SVC: dict[str, bytes] = {}


class BleSource(Source):
    """The live BLE capture source (BlueZ via bleak)."""

    radio = Radio.BLE

    def __init__(self, options: BleOptions, sink: Sink, clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__(options, sink, clock)
        self.ble_options = options
        self._handoff = BoundedHandoff(options.queue_size, self.counters)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_async: asyncio.Event | None = None
        self._threads: list[threading.Thread] = []
        self._loop_thread: threading.Thread | None = None
        self._recorder: Any = None
        self._adapter_name = options.adapter or "hci0"
        self.last_error: BleErrorClass | None = None
        self.scan_starts = 0
        self._warned_active = False
        self._warned_foreign_discovery = False
        self._started = threading.Event()
        # Every counter exists from the start: status() copies the Counter from another thread,
        # and a key appearing during that copy would break it.
        for key in (
            "adverts_in",
            "delivered",
            "dropped_queue_full",
            "dropped_unparsable",
            "scan_starts",
            "rescans",
            "cached_dropped",
            *(f"error_{c}" for c in BleErrorClass),
        ):
            self.counters[key] = 0

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the capture and delivery threads; returns once the loop runs."""
        if self.ble_options.record_path:
            from scanner.sources.ble.recorder import JsonlRecorder

            self._recorder = JsonlRecorder(self.ble_options.record_path)
        self._stop.clear()
        if self.ble_options.scanning_mode == ACTIVE and not self._warned_active:
            self._warned_active = True
            _LOGGER.warning(
                '%s: [ble] scanning_mode = "active": active scanning transmits scan requests, '
                "so the appliance is NOT receive-only while it runs",
                self.options.sensor,
            )
        self.set_state(SensorState.STARTING, f"starting BLE capture on {self._adapter_name}")
        loop_thread = threading.Thread(target=self._run_loop, name="ble-dbus", daemon=True)
        delivery = threading.Thread(target=self._deliver_loop, name="ble-deliver", daemon=True)
        self._threads = [loop_thread, delivery]
        self._loop_thread = loop_thread
        for t in self._threads:
            t.start()
        self._started.wait(5.0)

    def stop(self) -> None:
        """Stop scanning, drain the queue to the sink, close the recording."""
        super().stop()
        loop, ev = self._loop, self._stop_async
        if loop is not None and ev is not None and not loop.is_closed():
            loop.call_soon_threadsafe(ev.set)
        for t in self._threads:
            t.join(timeout=10.0)
        self._threads = []
        if self._recorder is not None:
            self._recorder.close()
            self._recorder = None
        self.set_state(SensorState.STOPPED, "")

    def health_detail(self) -> dict[str, object]:
        detail = super().health_detail()
        detail.update(
            {
                "adapter": self._adapter_name,
                "scanning_mode": self.ble_options.scanning_mode,
                "queue": self._handoff.qsize(),
                "last_error": str(self.last_error) if self.last_error else None,
            }
        )
        return detail

    # -- delivery thread ---------------------------------------------------------------------------
    def _deliver_loop(self) -> None:
        while True:
            event = self._handoff.get(timeout=0.1)
            if event is not None:
                self.deliver(event)
                continue
            loop_thread = self._loop_thread
            done = loop_thread is None or not loop_thread.is_alive()
            if self.stopping and self._handoff.qsize() == 0 and done:
                return

    # -- D-Bus thread --------------------------------------------------------------------------
    def _run_loop(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception:  # a bug must show up in the health state, not kill silently
            _LOGGER.exception("BLE capture loop crashed")
            self.set_state(SensorState.FAULT, "BLE capture loop crashed; see the log")
        finally:
            self._started.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.set_exception_handler(_quiet_dead_socket)
        self._stop_async = asyncio.Event()
        if self._stop.is_set():
            self._stop_async.set()
        self._started.set()
        watchdog = asyncio.create_task(self._watchdog())
        backoff = Backoff({cls: policy.retry for cls, policy in ERROR_POLICIES.items()})
        try:
            while not self._stop_async.is_set():
                await self._scan_once(backoff)
        finally:
            watchdog.cancel()

    async def _scan_once(self, backoff: Backoff[BleErrorClass]) -> None:
        """One climb of the ladder, and its backoff when a rung fails."""
        watch = BluezWatch()
        try:
            try:
                await self._climb(watch)
                backoff.reset()
            except CaptureError as exc:
                await self._backoff(exc.failure, exc.detail, backoff, watch)
            except Exception as exc:  # classified below; every failure is retried
                await self._backoff(classify_error(exc), error_text(exc), backoff, watch)
        finally:
            watch.close()

    async def _backoff(
        self,
        cls: BleErrorClass,
        detail: str,
        backoff: Backoff[BleErrorClass],
        watch: BluezWatch,
    ) -> None:
        """Show the class's message (warning once via set_state), wait its backoff."""
        self.last_error = cls
        self.counters[f"error_{cls}"] += 1
        policy = ERROR_POLICIES[cls]
        message = policy.message.format(adapter=self._adapter_name, detail=detail[:200])
        self.set_state(policy.state, message)
        # Every class has a schedule: the ladder retries everything.
        delay = backoff.failed(cls) or policy.retry.max_s
        _LOGGER.debug("BLE ladder: %s (%s); retry in %.1f s", cls, detail, delay)
        if self._stop_async is None:
            return
        waits = {asyncio.ensure_future(self._stop_async.wait())}
        if cls is BleErrorClass.PASSIVE_UNSUPPORTED:
            # The fix is a bluetoothd restart with --experimental: retry as soon as it happens
            # rather than at the end of a long backoff.
            waits.add(asyncio.ensure_future(watch.changed.wait()))
        try:
            await asyncio.wait(waits, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()

    async def _climb(self, watch: BluezWatch) -> None:
        assert_stop = self._stop_async
        if assert_stop is None:
            return
        # 1. system bus
        try:
            await watch.connect()
        except Exception as exc:
            cls = classify_error(exc)
            raise CaptureError(
                cls if cls is not BleErrorClass.UNKNOWN else BleErrorClass.DBUS_GONE,
                error_text(exc),
            ) from exc
        # 2. bluetoothd
        if not await watch.wait_owner(OWNER_WAIT_S):
            raise CaptureError(BleErrorClass.BLUEZ_GONE, "org.bluez has no owner")
        # 3. adapter
        await watch.find_adapter(self.ble_options.adapter)
        self._adapter_name = (watch.adapter_path or "").rsplit("/", 1)[-1] or self._adapter_name
        # 4. power
        props = await watch.adapter_properties()
        if not props.get("Powered", False):
            if not self.ble_options.power_on:
                raise CaptureError(BleErrorClass.POWERED_OFF, "adapter is powered off")
            try:
                await watch.power_on()
            except Exception as exc:
                cls = classify_error(exc)
                if cls not in (BleErrorClass.BLOCKED, BleErrorClass.PERMISSION):
                    cls = BleErrorClass.POWERED_OFF
                raise CaptureError(cls, f"power on refused: {error_text(exc)}") from exc
            props = await watch.adapter_properties()
            if not props.get("Powered", False):
                raise CaptureError(BleErrorClass.POWERED_OFF, "adapter stayed powered off")
        # 5. scan
        if self._passive and props.get("Discovering", False) and not self._warned_foreign_discovery:
            # Not ours to stop (bluetoothctl, another program): say that the radio transmits.
            self._warned_foreign_discovery = True
            _LOGGER.warning(
                "%s: another BlueZ client is running an active discovery on %s; the adapter "
                "sends scan requests until it stops (this source only listens)",
                self.options.sensor,
                self._adapter_name,
            )
        if self._passive:
            # Before the monitors: the scan they start must find no object left from an
            # earlier scan, or an unchanged advertiser's reports change nothing and reach no one.
            await self._forget_cached(watch)
        scanners = self._make_scanners()
        started: list[Any] = []
        try:
            for scanner in scanners:
                await asyncio.wait_for(scanner.start(), SCAN_START_TIMEOUT_S)
                started.append(scanner)
        except Exception as exc:
            await self._stop_scanners(started)
            cls = classify_error(exc)
            if cls is BleErrorClass.IN_PROGRESS and not self._passive:
                # A discovery left by a crashed predecessor of ours: take it over.
                await watch.stop_discovery()
            raise CaptureError(cls, error_text(exc)) from exc
        self.scan_starts += 1
        self.counters["scan_starts"] += 1
        self.last_error = None
        mode = PASSIVE if self._passive else "active: transmits scan requests"
        self.set_state(SensorState.OK, f"scanning on {self._adapter_name} ({mode})")
        # 6. scanning until something moves; a passive scan has BlueZ report the devices in
        #    range again on their next advert (constants.REREPORT_S says why)
        period = self.ble_options.rereport_s if self._passive else 0.0
        stop_wait = asyncio.create_task(assert_stop.wait())
        changed_wait = asyncio.create_task(watch.changed.wait())
        try:
            while True:
                done, _ = await asyncio.wait(
                    {stop_wait, changed_wait},
                    timeout=period if period > 0 else None,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if done:
                    break
                await self._forget_cached(watch)
        finally:
            stop_wait.cancel()
            changed_wait.cancel()
            await self._stop_scanners(started)
        if watch.changed.is_set() and not assert_stop.is_set():
            self.counters["rescans"] += 1
            _LOGGER.info("BLE: %s; restarting the scan", watch.reason)
            self.set_state(SensorState.STARTING, f"{watch.reason}; restarting the scan")

    async def _forget_cached(self, watch: BluezWatch) -> None:
        try:
            self.counters["cached_dropped"] += await watch.forget_cached_devices()
        except Exception as exc:  # bluetoothd leaving is the watch's to report, not this
            _LOGGER.debug("dropping BlueZ's cached devices: %s", error_text(exc))

    async def _stop_scanners(self, scanners: list[Any]) -> None:
        for scanner in scanners:
            try:
                await asyncio.wait_for(scanner.stop(), SCAN_STOP_TIMEOUT_S)
            except Exception as exc:  # bluetoothd may already be gone: nothing to stop
                _LOGGER.debug("stopping the scan: %s", error_text(exc))

    def _make_scanners(self) -> list[Any]:
        """One scanner, or in passive mode one per advertisement monitor of at most
        ``MONITOR_MAX_PATTERNS`` or-patterns (a larger monitor is refused, and BlueZ then
        releases it without an error reaching bleak: a scan that hears nothing)."""
        from bleak import BleakScanner
        from bleak.args.bluez import BlueZScannerArgs

        opts = self.ble_options
        bluez: BlueZScannerArgs = {"filters": {"DuplicateData": opts.duplicate_data}}
        if opts.adapter:
            bluez["adapter"] = self._adapter_name
        if not self._passive:
            return [BleakScanner(self._on_advert, None, "active", bluez=bluez)]
        from bleak.args.bluez import OrPattern
        from bleak.assigned_numbers import AdvertisementDataType

        patterns: list[OrPattern | tuple[int, AdvertisementDataType, bytes]] = [
            OrPattern(start, AdvertisementDataType(ad_type), content)
            for start, ad_type, content in opts.or_patterns
        ]
        scanners = []
        for first in range(0, len(patterns), MONITOR_MAX_PATTERNS):
            chunk = patterns[first : first + MONITOR_MAX_PATTERNS]
            # bleak hands every device report of the adapter to every passive scanner on it,
            # whichever monitor matched: only the first calls us, or each advert came N times.
            callback = self._on_advert if first == 0 else _ignore_advert
            scanners.append(
                BleakScanner(callback, None, "passive", bluez={**bluez, "or_patterns": chunk})
            )
        return scanners

    @property
    def _passive(self) -> bool:
        # Anything but an explicit "active" listens only.
        return self.ble_options.scanning_mode != ACTIVE

    def _on_advert(self, device: Any, adv: Any) -> None:
        """bleak's detection callback: runs on the D-Bus loop, so it only converts and queues."""
        self.counters["adverts_in"] += 1
        advert = advert_from_bleak(device, adv, self.clock, self._adapter_name)
        if advert is None:
            self.counters["dropped_unparsable"] += 1
            return
        if self._recorder is not None:
            self._recorder.write(advert)
        self._handoff.put(advert)

    async def _watchdog(self) -> None:
        # Cheap: the tick only compares two clock readings; a short period keeps a test with an
        # injected clock fast.
        period = 0.5
        since_status = 0.0
        interval = self.ble_options.status_interval_s
        while True:
            await asyncio.sleep(period)
            self.check_silence()
            if self._recorder is not None:
                self._recorder.flush_due()
            since_status += period
            if interval > 0 and since_status >= interval:
                since_status = 0.0
                self._handoff.put(self.status())


def _ignore_advert(_device: Any, _adv: Any) -> None:
    """The callback of the extra passive scanners (see ``_make_scanners``)."""


def _quiet_dead_socket(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """A write to a bus socket that died with the D-Bus daemon leaves an unretrieved OSError in
    dbus-fast; the ladder has already handled the loss, so it is debug noise, not an error."""
    exc = context.get("exception")
    if isinstance(exc, OSError):
        _LOGGER.debug("after the bus was lost: %s", exc)
        return
    loop.default_exception_handler(context)


def advert_from_bleak(device: Any, adv: Any, clock: Clock, adapter: str) -> BleAdvert | None:
    """A ``BleAdvert`` from bleak's (BLEDevice, AdvertisementData) on BlueZ."""
    props: Mapping[str, Any] = {}
    platform = getattr(adv, "platform_data", None)
    if isinstance(platform, tuple) and len(platform) == 2 and isinstance(platform[1], Mapping):
        props = platform[1]
    address = props.get("Address", getattr(device, "address", None))
    if not isinstance(address, str):
        return None
    address_type = props.get("AddressType", "public")
    rssi = rssi_dbm_or_none(adv.rssi) if isinstance(adv.rssi, int) else None
    mfr = {int(k): bytes(v) for k, v in adv.manufacturer_data.items()} or _NO_MFR
    svc = {str(k).lower(): bytes(v) for k, v in adv.service_data.items()} or _NO_SVC
    return BleAdvert(
        ts=clock.wall(),
        mono=clock.monotonic(),
        address=address.upper(),
        address_type=address_type if address_type in ("public", "random") else "public",
        rssi_dbm=rssi,
        tx_power=adv.tx_power if isinstance(adv.tx_power, int) else None,
        local_name=adv.local_name or None,
        manufacturer_data=mfr,
        service_data=svc,
        service_uuids=tuple(str(u).lower() for u in adv.service_uuids),
        adapter=adapter,
    )


def build_source(
    section: Mapping[str, Any],
    sink: Sink,
    clock: Clock = SYSTEM_CLOCK,
    record_path: str | None = None,
) -> BleSource:
    """The BLE source for a ``[ble]`` config section (``record_path`` from ``--record``)."""
    options = BleOptions.from_mapping(section)
    if record_path is not None:
        from dataclasses import replace

        options = replace(options, record_path=record_path)
    return BleSource(options, sink, clock)
