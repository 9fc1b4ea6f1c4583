"""Checks every value of the configuration at load time, before any component starts.

A number that is not finite or is out of its range would not fail loudly later: ``window_s =
nan`` makes every comparison false, so that radio silently never alarms again. Every float in
the file must therefore be finite, and every key named in ``RANGES`` must lie in its documented
range; identifiers (MAC addresses, IRKs, names) must have their shape. The first problem found
is refused with one line naming the key, e.g. ``[core] window_s = nan: not a finite number``.

The ranges are wide: they refuse what cannot be meant (a negative time, a zone threshold above
what a receiver reports, a year-long window), not what a site might tune.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class ConfigValueError(ValueError):
    """One value of the configuration is refused; the message names its key."""


@dataclass(frozen=True, slots=True)
class Range:
    """Inclusive bounds and the kind of number a key takes."""

    lo: float
    hi: float
    integer: bool = False


def _f(lo: float, hi: float) -> Range:
    return Range(lo, hi)


def _i(lo: int, hi: int) -> Range:
    return Range(lo, hi, integer=True)


# Seconds: a day is the longest any timer or window here can mean.
_DAY = 86_400.0
_SECONDS = _f(0.0, _DAY)
_POSITIVE_SECONDS = _f(0.001, _DAY)
_SECONDS_SIGNED = _f(-_DAY, _DAY)
# Received levels: a receiver reports RSSI between about -120 dBm (noise) and 0 dBm (touching
# the antenna); SDR zone thresholds are SNRs in dB, 0 to 100.
_RSSI = _f(-130.0, 20.0)
_DB = _f(0.0, 100.0)
_COUNT = _i(1, 10_000)
_QUEUE = _i(1, 10_000_000)

RANGES: dict[str, dict[str, Range]] = {
    "core": {
        "window_s": _POSITIVE_SECONDS,
        "absent_s": _POSITIVE_SECONDS,
        "min_samples": _COUNT,
        "enter_samples": _COUNT,
        "confirm_margin_db": _DB,
        "confirm_samples": _COUNT,
        "confirm_window_s": _POSITIVE_SECONDS,
        "history_s": _POSITIVE_SECONDS,
        "loiter_dwell_s": _SECONDS,
        "leave_hold_s": _SECONDS,
        "resolve_after_s": _SECONDS,
        "adopt_grace_s": _SECONDS,
        "link_window_s": _SECONDS,
        "link_alone_window_s": _SECONDS,
        "identity_gap_s": _SECONDS,
        "sdr_min_bursts": _COUNT,
        "sdr_enter_bursts": _COUNT,
        "sdr_confirm_bursts": _COUNT,
        "sdr_window_s": _POSITIVE_SECONDS,
        "sdr_alone_after_s": _SECONDS,
        "sdr_absent_s": _POSITIVE_SECONDS,
        "sdr_idle_hold_s": _POSITIVE_SECONDS,
        "sdr_alone_min_snr_db": _DB,
        "ambient_learning_s": _f(0.0, 30 * _DAY),
        "ambient_min_fraction": _f(0.0, 1.0),
        "ambient_first_seen_s": _SECONDS,
        "ambient_margin_db": _DB,
        "selection_margin_db": _DB,
        "sensitivity_wifi_dbm": _RSSI,
        "sensitivity_ble_dbm": _RSSI,
        "allowlist_poll_s": _f(0.1, 3600.0),
        "store_devices_every_s": _f(1.0, _DAY),
    },
    "api": {
        "port": _i(0, 65_535),
        "session_ttl_s": _f(60.0, 7 * _DAY),
        "max_body_bytes": _i(1024, 16 * 1024 * 1024),
        "event_poll_s": _f(0.01, 60.0),
        "heartbeat_s": _f(0.05, 300.0),
        "sse_retry_ms": _i(100, 600_000),
        "sensor_stale_s": _f(1.0, _DAY),
        "max_connections": _i(8, 65_536),
        "max_connections_per_client": _i(1, 65_536),
        "head_timeout_s": _f(0.1, 300.0),
        "body_timeout_s": _f(0.1, 3600.0),
        "keep_alive_s": _i(1, 3600),
        "max_head_bytes": _i(4096, 1024 * 1024),
        "rate_per_s": _f(0.1, 10_000.0),
        "rate_burst": _i(1, 100_000),
        "login_client_failures": _i(1, 1000),
        "login_client_block_s": _f(1.0, _DAY),
        "login_account_failures": _i(1, 100_000),
        "login_account_lock_s": _f(1.0, _DAY),
        "token_ttl_s": _f(60.0, 3650 * _DAY),
        "token_max_ttl_s": _f(60.0, 3650 * _DAY),
    },
    "wifi": {
        "silence_after_s": _POSITIVE_SECONDS,
        "dwell_ms": _f(1.0, 60_000.0),
        "queue_size": _QUEUE,
        "status_interval_s": _POSITIVE_SECONDS,
    },
    "ble": {
        "silence_after_s": _POSITIVE_SECONDS,
        # 0 turns re-reporting off; past a minute the core has long counted a phone absent.
        "rereport_s": _f(0.0, 60.0),
        "queue_size": _QUEUE,
        "status_interval_s": _POSITIVE_SECONDS,
    },
    "sdr": {
        "port": _i(1, 65_535),
        "device_index": _i(0, 255),
        # A TCXO dongle is within 1 ppm and a plain crystal within 100; more is a typo.
        "ppm": _i(-500, 500),
        "read_bytes": _i(512, 64 * 1024 * 1024),
        "queue_chunks": _i(1, 100_000),
        # The RTL2832U's usable sample rates lie between 225 kS/s and 3.2 MS/s.
        "rate": _f(225e3, 3.2e6),
        "connect_timeout_s": _POSITIVE_SECONDS,
        "stall_s": _POSITIVE_SECONDS,
        "healthy_after_s": _SECONDS,
        "status_every_s": _POSITIVE_SECONDS,
        "snippet_keep_s": _SECONDS,
        "backoff_scale": _f(0.0, 1000.0),
        "silence_after_s": _POSITIVE_SECONDS,
        "survey_every_s": _POSITIVE_SECONDS,
        "survey_dwell_s": _POSITIVE_SECONDS,
        "dwell_s": _f(0.001, 60.0),
        "settle_s": _f(0.0, 10.0),
        # The R820T's gain steps run from 0 to 49.6 dB.
        "gain_db": _f(0.0, 60.0),
    },
    "transport": {
        "queue_size": _QUEUE,
        "send_buffer": _QUEUE,
    },
    "mqtt": {
        "port": _i(1, 65_535),
        # MQTT keepalive: under 5 s floods a Pi's broker with pings; over 10 min hides a dead node.
        "keepalive_s": _i(5, 600),
        # A node's disk buffer: from a bench's 1 MB to most of a 1 TB disk.
        "spool_mb": _f(1.0, 1_000_000.0),
        # Records per message: one, up to what a broker's 256 MB message limit holds with room.
        "batch_records": _i(1, 100_000),
        # How long a partial batch waits: a millisecond, to the ten seconds an alarm may wait.
        "batch_linger_s": _f(0.001, 10.0),
    },
    "store": {
        # From a bench store of a few hundred kilobytes to most of a 1 TB disk.
        "budget_mb": _f(0.01, 1_000_000.0),
        "retention_every_s": _POSITIVE_SECONDS,
    },
}
# [store] *_days: how long each kind of record is kept; ten years is the longest any policy asks.
_DAYS = _f(0.0, 3650.0)
# The zone thresholds of [core.zone.RADIO]: RSSI for Wi-Fi and BLE, SNR for the SDR.
ZONE_RANGES = {"wifi": _RSSI, "ble": _RSSI, "sdr": _DB}

_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$")
_HEX_RE = re.compile(r"^[0-9a-fA-F]+$")
# Names shown on the tablet and written in exports: printable, no control characters.
_NAME_RE = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$")
_SENSOR_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_HOST_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9-]{1,63})*\.?$")


def check_number(where: str, key: str, value: Any, rng: Range | None = None) -> float | int:
    """``value`` as a number in ``rng``; else ``ConfigValueError`` naming ``[where] key``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigValueError(f"[{where}] {key} = {value!r}: not a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigValueError(f"[{where}] {key} = {value}: not a finite number")
    if rng is None:
        return value
    if rng.integer and not (isinstance(value, int) or value.is_integer()):
        raise ConfigValueError(f"[{where}] {key} = {value}: must be a whole number")
    if not rng.lo <= value <= rng.hi:
        raise ConfigValueError(
            f"[{where}] {key} = {value}: out of range ({_num(rng.lo)} to {_num(rng.hi)})"
        )
    return int(value) if rng.integer else float(value)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def check_mac(where: str, value: Any) -> str:
    if not isinstance(value, str) or not _MAC_RE.match(value):
        raise ConfigValueError(f"{where} = {value!r}: not a MAC address (aa:bb:cc:dd:ee:ff)")
    return value


def check_ble_identity(where: str, value: Any) -> str:
    """A BLE identity: a public/static address, or an IRK (16 bytes, 32 hex digits)."""
    if isinstance(value, str):
        bare = value.removeprefix("irk:")
        if _MAC_RE.match(value) or (len(bare) == 32 and _HEX_RE.match(bare)):
            return value
    raise ConfigValueError(
        f"{where} = {value!r}: not a BLE identity (an address aa:bb:cc:dd:ee:ff or a 32-hex IRK)"
    )


def check_host_name(where: str, value: Any) -> str:
    if isinstance(value, str):
        if _HOST_RE.match(value):
            return value
        try:
            ipaddress.ip_address(value)
            return value
        except ValueError:
            pass
    raise ConfigValueError(f"{where} = {value!r}: not a host name or address")


def check_network(where: str, value: Any) -> str:
    try:
        ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        raise ConfigValueError(f"{where} = {value!r}: not an address or network") from None
    if not isinstance(value, str):
        raise ConfigValueError(f"{where} = {value!r}: not an address or network")
    return value


def check_config(data: Mapping[str, Any]) -> None:
    """Refuse the first value of a parsed config file that is not acceptable."""
    _all_finite("", data)
    for section, ranges in RANGES.items():
        table = data.get(section)
        if not isinstance(table, Mapping):
            continue
        for key, rng in ranges.items():
            value = table.get(key)
            if value is None or (section == "sdr" and key == "gain_db" and value == "auto"):
                continue
            check_number(section, key, value, rng)
    store = data.get("store")
    if isinstance(store, Mapping):
        for key, value in store.items():
            if str(key).endswith("_days"):
                check_number("store", str(key), value, _DAYS)
    _check_site(data.get("site"))
    # A scenario's site.toml names its sensors in a top-level [[sensors]] array.
    _check_sensors("[sensors]", data.get("sensors"))
    core = data.get("core")
    if isinstance(core, Mapping):
        _check_core(core)
    api = data.get("api")
    if isinstance(api, Mapping):
        for i, host in enumerate(_list(api, "allowed_hosts", "api")):
            check_host_name(f"[api] allowed_hosts[{i}]", host)
        for i, net in enumerate(_list(api, "trusted_clients", "api")):
            check_network(f"[api] trusted_clients[{i}]", net)
    mqtt = data.get("mqtt")
    if isinstance(mqtt, Mapping):
        if "host" in mqtt:
            check_host_name("[mqtt] host", mqtt["host"])
        # Site, gate and client id become MQTT topic levels and session keys: the sensor-name
        # shape has no '/', '+' or '#' that would split a level or match as a wildcard.
        for key in ("site", "gate", "client_id", "node"):
            if key in mqtt:
                _sensor_name(f"[mqtt] {key}", mqtt[key])
    for radio in ("wifi", "ble", "sdr"):
        table = data.get(radio)
        if isinstance(table, Mapping) and "sensor" in table:
            _sensor_name(f"[{radio}] sensor", table["sensor"])


def _all_finite(path: str, value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        section, _, key = path.partition(".")
        raise ConfigValueError(f"[{section}] {key} = {value}: not a finite number")
    if isinstance(value, Mapping):
        for k, v in value.items():
            _all_finite(f"{path}.{k}" if path else str(k), v)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _all_finite(f"{path}[{i}]", v)


def _list(table: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = table.get(key, [])
    if not isinstance(value, list):
        raise ConfigValueError(f"[{where}] {key} must be a list")
    return value


def _sensor_name(where: str, value: Any) -> str:
    if not isinstance(value, str) or not _SENSOR_RE.match(value):
        raise ConfigValueError(
            f"{where} = {value!r}: a sensor name is 1-64 letters, digits, '_', '.', ':', '-'"
        )
    return value


def _check_site(site: Any) -> None:
    if not isinstance(site, Mapping):
        return
    name = site.get("name")
    if name is not None and (not isinstance(name, str) or not _NAME_RE.match(name)):
        raise ConfigValueError(
            f"[site] name = {name!r}: 1-64 printable characters, no control characters"
        )
    _check_sensors("[site] sensors", site.get("sensors"))


def _check_sensors(where: str, sensors: Any) -> None:
    if sensors is None:
        return
    if not isinstance(sensors, list):
        raise ConfigValueError(f"{where} must be an array of tables")
    for i, sensor in enumerate(sensors):
        if not isinstance(sensor, Mapping):
            continue
        if "name" in sensor:
            _sensor_name(f"{where}[{i}].name", sensor["name"])
        if "clock_offset_s" in sensor:
            # A sensor's clock is set by NTP or by hand: a day off is the most that can be meant.
            check_number(
                f"{where}[{i}]", "clock_offset_s", sensor["clock_offset_s"], _SECONDS_SIGNED
            )


def _check_core(core: Mapping[str, Any]) -> None:
    zone = core.get("zone")
    if isinstance(zone, Mapping):
        for radio, spec in zone.items():
            rng = ZONE_RANGES.get(str(radio))
            if rng is None or not isinstance(spec, Mapping):
                continue
            for key in ("enter_dbm", "exit_dbm"):
                if key in spec:
                    check_number(f"core.zone.{radio}", key, spec[key], rng)
    offsets = core.get("sensor_offsets_db")
    if isinstance(offsets, Mapping):
        for name, value in offsets.items():
            _sensor_name("[core] sensor_offsets_db key", name)
            # A per-sensor gain correction: antennas and dongles differ by a few dB, never 40.
            check_number("core", f"sensor_offsets_db.{name}", value, _f(-40.0, 40.0))
    allowlist = core.get("allowlist")
    if isinstance(allowlist, list):
        for i, item in enumerate(allowlist):
            if not isinstance(item, Mapping):
                continue
            where = f"[core] allowlist[{i}].value"
            match, value = item.get("match"), item.get("value")
            if match == "mac":
                check_mac(where, value)
            elif match == "ble_identity":
                check_ble_identity(where, value)
            elif match == "fingerprint" and (
                not isinstance(value, str) or not _HEX_RE.match(value) or len(value) > 64
            ):
                raise ConfigValueError(f"{where} = {value!r}: not a hex fingerprint")
            label = item.get("label", "")
            if not isinstance(label, str) or len(label) > 128 or re.search(r"[\x00-\x1f]", label):
                raise ConfigValueError(
                    f"[core] allowlist[{i}].label: up to 128 printable characters"
                )
