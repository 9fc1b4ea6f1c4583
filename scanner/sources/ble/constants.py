"""Constants of the BLE capture source: BlueZ names, error classes and their backoff.

Every D-Bus/bleak error string the source can meet is classified here, by one table, so the
start ladder in ``live.py`` reacts to a *class* of failure (retry soon, wait for bluetoothd,
ask the operator to unblock the radio) instead of to individual strings scattered in code.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from scanner.observations import SensorState
from scanner.sources.backoff import Schedule

BLUEZ_SERVICE = "org.bluez"
ADAPTER_INTERFACE = "org.bluez.Adapter1"
DEVICE_INTERFACE = "org.bluez.Device1"
PROPERTIES_INTERFACE = "org.freedesktop.DBus.Properties"
OBJECT_MANAGER_INTERFACE = "org.freedesktop.DBus.ObjectManager"

# HCI reports RSSI as a signed byte in dBm, -127 to +20, and 127 for "not available" (Core
# Vol 4 Part E 7.7.65.2); BlueZ passes a 127 on, and bleak substitutes -127 when BlueZ gives no
# RSSI. Neither is a reading, and no BLE receiver hears anything at -127 dBm (sensitivity ends
# near -100 dBm): a value outside -126..+20 is unknown (None), never a level.
RSSI_NOT_AVAILABLE = 127
RSSI_BLEAK_MISSING = -127
RSSI_MIN_DBM = -126
RSSI_MAX_DBM = 20


def rssi_dbm_or_none(value: int | None) -> int | None:
    """An RSSI as reported by HCI, BlueZ or bleak, or None when it is not a reading."""
    if value is None or not RSSI_MIN_DBM <= value <= RSSI_MAX_DBM:
        return None
    return value


# Every D-Bus call the source makes itself is bounded: a wedged bluetoothd must not hang us.
DBUS_CALL_TIMEOUT_S = 5.0
# Starting a scan is several calls in bleak (filter, start): bounded as a whole.
SCAN_START_TIMEOUT_S = 10.0
# Or-patterns one advertisement monitor may hold. The kernel takes 16 (its
# HCI_MAX_ADV_MONITOR_NUM_PATTERNS), but bluetoothd up to at least 5.66 (Debian 12, Raspberry
# Pi OS Bookworm) sizes its mgmt command in a byte: 1 + 34 bytes per pattern wraps past 7
# patterns, the kernel answers Invalid Parameters and bluetoothd's heap is overwritten (seen
# crashing it with "malloc(): invalid size").
MONITOR_MAX_PATTERNS = 7
SCAN_STOP_TIMEOUT_S = 3.0
# BlueZ tells a passive client (advertisement monitors) about a device when it creates the
# device's object, and after that only when a property changes: RSSI by 8 dB or more, or new
# advertising data (DuplicateData applies to discoveries only). A phone lying still with an
# unchanging payload is heard once, then the core counts it absent after its absent_s (25 s);
# and a device whose object outlived an earlier scan (BlueZ keeps it 30 s after its last
# advert) is not reported at all. Dropping the cached objects this often makes the next advert
# of each device in range (phones advertise every 0.1 to 2 s) a fresh report: a sighting about
# every 10 to 12 s, two inside the core's absence window.
REREPORT_S = 10.0
# How long to wait for org.bluez to get an owner before reporting bluetoothd as absent;
# systemd restarts bluetoothd in about a second.
OWNER_WAIT_S = 3.0


class BleErrorClass(StrEnum):
    """Failure classes of the start ladder, each with its own backoff and message."""

    IN_PROGRESS = "in_progress"
    NOT_READY = "not_ready"
    POWERED_OFF = "powered_off"
    BLOCKED = "blocked"
    BLUEZ_GONE = "bluez_gone"
    ADAPTER_MISSING = "adapter_missing"
    DBUS_GONE = "dbus_gone"
    PERMISSION = "permission"
    TIMEOUT = "timeout"
    PASSIVE_UNSUPPORTED = "passive_unsupported"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class ErrorPolicy:
    """What to do about one class of failure."""

    state: SensorState  # health state shown while it lasts
    retry: Schedule  # backoff: first retry after retry.first_s, doubling up to retry.max_s
    message: str  # what the operator should do; "{adapter}" is filled in


# Why each backoff: InProgress/NotReady clear in a second or two (a discovery being torn down,
# an adapter initialising); bluetoothd coming back is waited for by signal, so its retries only
# catch races; a radio blocked or off needs a person, so retry slowly; D-Bus gone means the
# system is in trouble, back off to 30 s.
ERROR_POLICIES: dict[BleErrorClass, ErrorPolicy] = {
    BleErrorClass.IN_PROGRESS: ErrorPolicy(
        SensorState.STARTING,
        Schedule(0.5, 5.0),
        "a discovery on {adapter} is already running; taking it over",
    ),
    BleErrorClass.NOT_READY: ErrorPolicy(
        SensorState.STARTING,
        Schedule(1.0, 10.0),
        "{adapter} is not ready yet (initialising); retrying",
    ),
    BleErrorClass.POWERED_OFF: ErrorPolicy(
        SensorState.FAULT,
        Schedule(5.0, 60.0),
        "Bluetooth adapter {adapter} is powered off and did not power on: "
        "run `bluetoothctl power on` or check `rfkill list`",
    ),
    BleErrorClass.BLOCKED: ErrorPolicy(
        SensorState.FAULT,
        Schedule(5.0, 60.0),
        "Bluetooth adapter {adapter} is blocked by rfkill: run `rfkill unblock bluetooth`",
    ),
    BleErrorClass.BLUEZ_GONE: ErrorPolicy(
        SensorState.FAULT,
        Schedule(0.5, 5.0),
        "bluetoothd is not running: `systemctl start bluetooth` (waiting for it to return)",
    ),
    BleErrorClass.ADAPTER_MISSING: ErrorPolicy(
        SensorState.FAULT,
        Schedule(0.5, 30.0),
        "Bluetooth adapter {adapter} not found: check `bluetoothctl list`, "
        "replug the dongle or fix [ble] adapter in the config",
    ),
    BleErrorClass.DBUS_GONE: ErrorPolicy(
        SensorState.FAULT,
        Schedule(1.0, 30.0),
        "the system D-Bus is unavailable: check `systemctl status dbus`",
    ),
    BleErrorClass.PERMISSION: ErrorPolicy(
        SensorState.FAULT,
        Schedule(30.0, 300.0),
        "not allowed to use BlueZ over D-Bus: run as a user in the `bluetooth` group "
        "or install the checkpoint D-Bus policy",
    ),
    BleErrorClass.TIMEOUT: ErrorPolicy(
        SensorState.DEGRADED, Schedule(2.0, 30.0), "bluetoothd did not answer in time; retrying"
    ),
    # Never a fallback to active scanning: that would transmit. Needs a person (install the
    # drop-in, restart bluetoothd); a bluetoothd restart wakes the retry at once, see live.py.
    BleErrorClass.PASSIVE_UNSUPPORTED: ErrorPolicy(
        SensorState.FAULT,
        Schedule(5.0, 60.0),
        "passive BLE scanning on {adapter} needs bluetoothd --experimental (BlueZ 5.56+; "
        "firmware/provision.sh installs the drop-in firmware/bluetooth-checkpoint.conf, then "
        '`systemctl restart bluetooth`); or set [ble] scanning_mode = "active", which '
        "transmits scan requests",
    ),
    BleErrorClass.UNKNOWN: ErrorPolicy(
        SensorState.FAULT, Schedule(2.0, 60.0), "BLE capture failed on {adapter}: {detail}"
    ),
}

# Substrings of D-Bus error names and messages (BlueZ doc/org.bluez.Adapter.rst, bleak's
# messages, dbus-daemon's errors), most specific first.
ERROR_PATTERNS: tuple[tuple[str, BleErrorClass], ...] = (
    ("passive scanning on Linux requires", BleErrorClass.PASSIVE_UNSUPPORTED),
    ("org.bluez.AdvertisementMonitorManager1", BleErrorClass.PASSIVE_UNSUPPORTED),
    ("org.bluez.Error.InProgress", BleErrorClass.IN_PROGRESS),
    ("Operation already in progress", BleErrorClass.IN_PROGRESS),
    ("org.bluez.Error.NotReady", BleErrorClass.NOT_READY),
    ("Resource Not Ready", BleErrorClass.NOT_READY),
    ("rfkill", BleErrorClass.BLOCKED),
    ("org.bluez.Error.Blocked", BleErrorClass.BLOCKED),
    ("No powered Bluetooth adapters", BleErrorClass.POWERED_OFF),
    ("powered off", BleErrorClass.POWERED_OFF),
    ("org.freedesktop.DBus.Error.ServiceUnknown", BleErrorClass.BLUEZ_GONE),
    ("org.freedesktop.DBus.Error.NameHasNoOwner", BleErrorClass.BLUEZ_GONE),
    ("was not provided by any .service files", BleErrorClass.BLUEZ_GONE),
    ("bluetoothd is not running", BleErrorClass.BLUEZ_GONE),
    ("org.freedesktop.DBus.Error.AccessDenied", BleErrorClass.PERMISSION),
    ("org.bluez.Error.NotAuthorized", BleErrorClass.PERMISSION),
    ("org.bluez.Error.NotPermitted", BleErrorClass.PERMISSION),
    ("org.freedesktop.DBus.Error.UnknownObject", BleErrorClass.ADAPTER_MISSING),
    ("org.freedesktop.DBus.Error.UnknownMethod", BleErrorClass.ADAPTER_MISSING),
    ("No Bluetooth adapters found", BleErrorClass.ADAPTER_MISSING),
    ("adapter '", BleErrorClass.ADAPTER_MISSING),  # bleak: "adapter 'hci1' not found"
    ("org.freedesktop.DBus.Error.NoReply", BleErrorClass.TIMEOUT),
    ("org.freedesktop.DBus.Error.Timeout", BleErrorClass.TIMEOUT),
    ("org.freedesktop.DBus.Error.NoServer", BleErrorClass.DBUS_GONE),
    ("org.freedesktop.DBus.Error.Disconnected", BleErrorClass.DBUS_GONE),
    ("Failed to connect", BleErrorClass.DBUS_GONE),
    ("not connected", BleErrorClass.DBUS_GONE),
)

# Exceptions raised by the socket itself when the bus is gone.
DBUS_GONE_EXCEPTIONS: tuple[type[BaseException], ...] = (
    FileNotFoundError,
    ConnectionRefusedError,
    ConnectionResetError,
    BrokenPipeError,
    EOFError,
)


def classify_error(exc: BaseException) -> BleErrorClass:
    """The failure class of an exception from bleak, dbus-fast or the socket."""
    if isinstance(exc, TimeoutError):
        return BleErrorClass.TIMEOUT
    if isinstance(exc, DBUS_GONE_EXCEPTIONS):
        return BleErrorClass.DBUS_GONE
    if isinstance(exc, PermissionError):
        return BleErrorClass.PERMISSION
    return classify_text(error_text(exc))


def classify_text(text: str) -> BleErrorClass:
    """The failure class of an error name or message."""
    for needle, cls in ERROR_PATTERNS:
        if needle in text:
            return cls
    return BleErrorClass.UNKNOWN


def error_text(exc: BaseException) -> str:
    """Error name and message of an exception, as one string to match against the table."""
    parts = [type(exc).__name__, str(exc)]
    for attr in ("dbus_error", "type", "error_name"):
        value = getattr(exc, attr, None)
        if isinstance(value, str):
            parts.append(value)
    return " ".join(parts)
