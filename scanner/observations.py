"""The typed records every source hands to the core.

A source turns radio input into one of these small, immutable records. Live capture and
replay produce exactly the same records, so the core cannot tell them apart.

Two clocks travel with every record:

* ``ts``: wall-clock UTC seconds (the capture timestamp). Shown to people and stored.
* ``mono``: a monotonic time in seconds used for every duration and ordering decision in the
  core. Live sources take it from ``time.monotonic()``; replay uses the recording's own
  timeline (``mono == ts``), which is monotonic by construction.

The Pi has no real-time clock, so ``ts`` may leap by hours when NTP syncs; ``mono`` never does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Radio(StrEnum):
    """The three receivers of a checkpoint."""

    WIFI = "wifi"
    BLE = "ble"
    SDR = "sdr"


class SensorState(StrEnum):
    """What a source says of itself in its health reports."""

    OK = "ok"
    STARTING = "starting"
    DEGRADED = "degraded"
    FAULT = "fault"
    STOPPED = "stopped"


_NO_BYTES_MAP: dict[int, bytes] = {}
_NO_STR_BYTES_MAP: dict[str, bytes] = {}


@dataclass(frozen=True, slots=True)
class WifiFrame:
    """One 802.11 frame sent by a station (probe request, data or null frame)."""

    ts: float
    mono: float
    subtype: str  # "probe_req", "data", "qos_data", "null", "qos_null", ...
    mac: str  # transmitter address, lower-case colon form
    random_mac: bool  # locally administered bit set
    rssi_dbm: int | None
    freq_mhz: int | None
    ssid: str | None  # "" for the wildcard SSID, None when absent
    seq: int
    fingerprint: str  # information-element fingerprint, stable across randomised MACs
    bssid: str | None = None
    dst: str | None = None
    sensor: str = "wifi"
    # The captured bytes (radiotap + 802.11) the record was parsed from, kept so the evidence
    # behind an alert can be written as the frames themselves; empty when not available. Not
    # part of equality: two records of the same frame are equal whatever carries the bytes.
    raw: bytes = field(default=b"", compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class BleAdvert:
    """One BLE advertisement as a BlueZ scanner reports it (bleak's AdvertisementData)."""

    ts: float
    mono: float
    address: str  # upper-case colon form, as BlueZ reports it
    address_type: str  # "public" | "random"
    rssi_dbm: int | None
    tx_power: int | None = None
    local_name: str | None = None
    manufacturer_data: dict[int, bytes] = field(default_factory=lambda: _NO_BYTES_MAP)
    service_data: dict[str, bytes] = field(default_factory=lambda: _NO_STR_BYTES_MAP)
    service_uuids: tuple[str, ...] = ()
    adapter: str = "hci0"
    sensor: str = "ble"


@dataclass(frozen=True, slots=True)
class SdrBurst:
    """One burst of uplink energy found by the SDR detector."""

    ts: float  # t_start, wall clock
    mono: float  # t_start, monotonic
    t_end: float  # wall clock
    freq_mhz: float
    bandwidth_khz: float
    power_dbfs: float
    snr_db: float
    band: str | None  # band-plan name, e.g. "E-GSM-900 UL", "LTE B20 UL"; None off-plan
    gain_db: float | None = None
    sensor: str = "sdr"
    # The IQ around the burst as a SigMF pair (metadata JSON, samples), cut by the live capture
    # from its ring so the evidence behind an alert can hold it; empty when not cut. Not part
    # of equality, like ``WifiFrame.raw``.
    iq_meta: bytes = field(default=b"", compare=False, repr=False)
    iq: bytes = field(default=b"", compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class SensorStatus:
    """A health report from a source: sent on every state change and periodically."""

    ts: float
    mono: float
    sensor: str  # "wifi", "ble", "sdr" (or "wifi:wlan1" when several)
    radio: Radio
    state: SensorState
    message: str = ""
    counters: dict[str, int] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A state given by its name ("ok", from a decoded line or a test) becomes the member;
        # a name that is not a state is refused here, not carried into the core.
        if not isinstance(self.state, SensorState):
            object.__setattr__(self, "state", SensorState(self.state))


Observation = WifiFrame | BleAdvert | SdrBurst
SourceEvent = WifiFrame | BleAdvert | SdrBurst | SensorStatus
