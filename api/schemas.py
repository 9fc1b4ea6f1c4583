"""The API's public documents. Separate from the store's rows so storage can change freely."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from scanner.store.users import MIN_PASSWORD_LEN, Role


class SensorHealthStatus(StrEnum):
    """What the page shows of a sensor: its own state, or 'silent' when it stopped reporting."""

    OK = "ok"
    STARTING = "starting"
    DEGRADED = "degraded"
    FAULT = "fault"
    STOPPED = "stopped"
    SILENT = "silent"


class OverallStatus(StrEnum):
    """The scanner as a whole, for /healthz."""

    OK = "ok"
    DEGRADED = "degraded"
    FAULT = "fault"


# "fingerprint" parses so that the refusal can say why; it names no device and is never added.
MatchKind = Literal["mac", "ble_identity", "ble_irk", "fingerprint"]

_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
_HEX_RE = re.compile(r"^[0-9a-fA-F]{8,128}$")
_BLE_RE = re.compile(r"^[\w:.-]{1,64}$")
_IRK_RE = re.compile(r"^(0x)?[0-9a-fA-F]{32}$")


class _In(BaseModel):
    # Unknown fields in a request are a client bug; say so rather than ignore them.
    model_config = ConfigDict(extra="forbid")


class Problem(BaseModel):
    """An error, as RFC 9457 problem details."""

    type: str = Field(default="about:blank", description="problem type URI")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="for validation errors: where and what"
    )


# -- session -------------------------------------------------------------------------------
class LoginRequest(_In):
    """Either ``username`` + ``password``, or ``pin`` (the shared tablet; ``username`` optional)."""

    username: str | None = Field(default=None, min_length=1, max_length=32)
    password: str | None = Field(default=None, min_length=1, max_length=256)
    pin: str | None = Field(default=None, min_length=4, max_length=12, pattern=r"^[0-9]+$")

    @model_validator(mode="after")
    def _one_way(self) -> LoginRequest:
        if self.pin is None and (self.username is None or self.password is None):
            raise ValueError("give username and password, or a pin")
        if self.pin is not None and self.password is not None:
            raise ValueError("give a password or a pin, not both")
        return self


class SessionOut(BaseModel):
    username: str
    role: Role
    expires_ts: float | None = Field(default=None, description="null for API tokens")
    via: Literal["session", "token"]
    demo: bool
    site: str


# -- alerts --------------------------------------------------------------------------------
class AlertOut(BaseModel):
    id: str
    kind: str
    state: Literal["open", "resolved"]
    title: str
    raised_ts: float
    updated_ts: float
    confidence: float
    handsets: int
    sensors: list[str]
    reasons: list[str]
    device_ids: list[str]
    resolved_ts: float | None
    resolution: str | None
    acked_ts: float | None
    acked_by: str | None
    ack_note: str | None
    duration_s: float
    acknowledged: bool


class AlertPage(BaseModel):
    items: list[AlertOut]
    limit: int
    offset: int
    next_offset: int | None = Field(description="offset of the next page, null on the last")


class HistoryEntryOut(BaseModel):
    seq: int
    ts: float
    event: str
    actor: str
    detail: dict[str, Any]


class AlertDetail(BaseModel):
    alert: AlertOut
    history: list[HistoryEntryOut]


class AckRequest(_In):
    note: str = Field(default="", max_length=500)


# -- devices and sensors ---------------------------------------------------------------------
class Identifiers(BaseModel):
    macs: list[str] = []
    fingerprints: list[str] = []
    ble: list[str] = []
    stable_macs: list[str] = Field(
        default=[], description="MACs that name this device alone (global, or associated)"
    )
    stable_ble: list[str] = Field(
        default=[], description="BLE addresses that name this device alone (public, static)"
    )


class DeviceOut(BaseModel):
    id: str
    kind: str
    vendor: str | None
    first_seen: float
    last_seen: float
    radios: list[str]
    identifiers: Identifiers
    evidence: list[Any]
    last_rssi: float | None
    in_zone: bool
    ambient: bool
    allowlisted: bool


class SightingOut(BaseModel):
    """One device heard by one sensor over (at most) a minute."""

    radio: str
    sensor: str
    first_ts: float
    last_ts: float
    count: int = Field(description="frames, adverts or bursts heard in the span")
    rssi_min: float | None
    rssi_max: float | None
    rssi_mean: float | None
    identifier: str = Field(description="the MAC, BLE address or band heard")


class DeviceDetail(BaseModel):
    """A device, its timeline over the period asked for, and the alerts it was behind."""

    device: DeviceOut
    since: float
    until: float
    sightings: list[SightingOut]
    truncated: bool = Field(description="more sightings in the period than were returned")
    alerts: list[AlertOut]


class DevicePage(BaseModel):
    items: list[DeviceOut]
    limit: int
    offset: int
    next_offset: int | None


class SensorOut(BaseModel):
    sensor: str
    radio: str
    state: str = Field(description="as the sensor last reported it")
    status: SensorHealthStatus = Field(
        description="what the page shows: 'silent' when the sensor stopped reporting"
    )
    message: str
    updated_ts: float
    last_obs_ts: float | None
    age_s: float = Field(description="seconds since the last report")
    dropped: int = Field(
        default=0,
        description="records of this sensor dropped anywhere on the way to the core "
        "(source queue, unparsable, capture daemon buffer, core queue); details in counters",
    )
    counters: dict[str, Any]
    detail: dict[str, Any]


class StoreHealth(BaseModel):
    ok: bool
    error: str | None = None
    schema_version: int | None = None


class DiskHealth(BaseModel):
    path: str
    total_bytes: int
    free_bytes: int
    used_fraction: float


class RuntimeProcess(BaseModel):
    """What one checkpoint process (run, core, demo) last wrote about its components."""

    # Each process adds its own parts (queue, socket, retention); they pass through as written.
    model_config = ConfigDict(extra="allow")

    components: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per component: state, restarts, last_error"
    )
    updated_ts: float | None = None
    age_s: float | None = Field(default=None, description="seconds since the process wrote it")
    stale: bool = Field(
        default=False, description="not written for longer than sensors may stay silent"
    )


class Healthz(BaseModel):
    status: OverallStatus
    version: str
    time: float
    store: StoreHealth
    disk: DiskHealth | None
    sensors: dict[str, SensorOut] = Field(description="per sensor, by name")
    runtime: dict[str, RuntimeProcess] = Field(
        default_factory=dict,
        description="per process: component restarts, core queue depth and drops, retention",
    )


# -- allowlist -----------------------------------------------------------------------------
class AllowlistEntryIn(_In):
    match: MatchKind
    value: str = Field(min_length=1, max_length=128)
    label: str = Field(default="", max_length=100)
    expires_ts: float | None = Field(
        default=None, ge=0, le=1e11, description="when it stops exempting (none: never)"
    )
    fingerprint: str = Field(
        default="",
        max_length=128,
        description="the IE fingerprint this device probes with while it randomises its MAC: "
        "lets the phone account for one probing cluster of its model, never a match",
    )

    @model_validator(mode="after")
    def _value_shape(self) -> AllowlistEntryIn:
        check_identifier(self.match, self.value)
        if self.fingerprint and not _HEX_RE.match(self.fingerprint.strip()):
            raise ValueError(f"{self.fingerprint!r} is not a fingerprint (hex)")
        return self


def check_identifier(match: str, value: str) -> None:
    pattern = {"mac": _MAC_RE, "fingerprint": _HEX_RE, "ble_identity": _BLE_RE, "ble_irk": _IRK_RE}[
        match
    ]
    if not pattern.match(value.strip()):
        raise ValueError(f"{value!r} is not a valid {match}")


class AllowlistEntryOut(BaseModel):
    id: int | None
    match: MatchKind
    value: str
    label: str
    added_by: str
    added_ts: float
    expires_ts: float | None = None
    fingerprint: str = ""
    source: Literal["store", "config"] = Field(
        default="store", description="config entries are the site's configuration: read-only"
    )
    flag: str = Field(
        default="", description="why it exempts nothing ('fingerprint-not-identity'), else ''"
    )
    in_force: bool = Field(default=True, description="exempts now: not flagged, not expired")


class AllowlistOut(BaseModel):
    version: int
    entries: list[AllowlistEntryOut] = Field(description="the supervisor's entries (editable)")
    config: list[AllowlistEntryOut] = Field(
        default_factory=list, description="the site configuration's entries (read-only)"
    )


class AllowlistReplace(_In):
    entries: list[AllowlistEntryIn] = Field(max_length=2000)


class AllowlistAdd(_In):
    """One entry, or every identity of a device (``device_id``) or of an alert's devices."""

    entry: AllowlistEntryIn | None = None
    device_id: str | None = Field(default=None, min_length=1, max_length=128)
    alert_id: str | None = Field(default=None, min_length=1, max_length=128)
    label: str = Field(
        default="", max_length=100, description="label for entries made from a device"
    )
    expires_ts: float | None = Field(
        default=None, ge=0, le=1e11, description="for entries made from a device or an alert"
    )
    dry_run: bool = Field(
        default=False, description="answer with what would be added, and add nothing"
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> AllowlistAdd:
        given = [x for x in (self.entry, self.device_id, self.alert_id) if x is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of entry, device_id, alert_id")
        return self


class AllowlistAdded(AllowlistOut):
    added: list[AllowlistEntryOut]


# -- zone ----------------------------------------------------------------------------------
Radio = Literal["wifi", "ble", "sdr"]


class RadioCalibration(_In):
    """Levels of a known phone measured on the calibration walk (dBm; dBFS for the SDR).

    The core turns them into its presence thresholds (``scanner.core.presence.Calibration``).
    """

    boundary_dbm: float = Field(
        ge=-150, le=0, description="median level just outside the zone's edge (must not alert)"
    )
    inside_dbm: float = Field(ge=-150, le=0, description="median level inside the zone")
    boundary_samples: list[float] = Field(default=[], max_length=1000)
    inside_samples: list[float] = Field(default=[], max_length=1000)

    @model_validator(mode="after")
    def _inside_is_stronger(self) -> RadioCalibration:
        if self.inside_dbm < self.boundary_dbm:
            raise ValueError(
                "inside the zone the phone must be at least as strong as on the boundary"
            )
        return self


class ZoneIn(_In):
    name: str = Field(min_length=1, max_length=80)
    calibration: dict[Radio, RadioCalibration] = Field(
        default_factory=dict, description="per radio; a radio left out uses the configured defaults"
    )


class RadioCalibrationOut(BaseModel):
    boundary_dbm: float
    inside_dbm: float
    enter_dbm: float = Field(description="the presence threshold the core derives")
    exit_dbm: float
    boundary_samples: list[float] = []
    inside_samples: list[float] = []


class ZoneOut(BaseModel):
    name: str
    calibration: dict[str, RadioCalibrationOut]
    version: int
    updated_ts: float | None
    updated_by: str | None


# -- users, tokens, audit --------------------------------------------------------------------
class UserOut(BaseModel):
    username: str
    role: Role
    has_password: bool
    has_pin: bool
    disabled: bool
    locked: bool
    created_ts: float


class UserCreate(_In):
    username: str = Field(min_length=1, max_length=32, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    role: Role
    password: str | None = Field(default=None, min_length=MIN_PASSWORD_LEN, max_length=256)
    pin: str | None = Field(default=None, min_length=4, max_length=12, pattern=r"^[0-9]+$")


class UserPatch(_In):
    role: Role | None = None
    disabled: bool | None = None
    password: str | None = Field(default=None, min_length=MIN_PASSWORD_LEN, max_length=256)
    pin: str | None = Field(default=None, min_length=4, max_length=12, pattern=r"^[0-9]+$")
    clear_pin: bool = False


class TokenCreate(_In):
    label: str = Field(min_length=1, max_length=100)
    username: str | None = Field(
        None, min_length=1, max_length=32, description="admin only: a token for another user"
    )
    role: Role | None = Field(
        None, description="what the token may do: its owner's role (the default) or lower"
    )
    ttl_s: float | None = Field(
        None,
        gt=0,
        le=3650 * 86400,
        description="lifetime in seconds (default and maximum in the [api] settings)",
    )
    can_mint: bool = Field(
        False, description="may create tokens itself: only for an admin's admin-role token"
    )


class TokenOut(BaseModel):
    id: str
    username: str
    label: str
    created_ts: float
    expires_ts: float
    role: Role
    can_mint: bool
    parent_id: str | None = Field(None, description="the token that minted this one")


class TokenCreated(TokenOut):
    token: str = Field(description="shown once; send as `Authorization: Bearer <token>`")


class AuditEntryOut(BaseModel):
    seq: int
    ts: float
    actor: str
    action: str
    detail: dict[str, Any]
    hash: str


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    limit: int
    offset: int
    next_offset: int | None


# -- the command post: every gate of the site ----------------------------------------------
class GateAlertOut(BaseModel):
    """A gate's alert as the command post knows it (the gate's store has the full record)."""

    id: str = Field(description="site/gate/alert_id: unique across the site")
    site: str
    gate: str
    alert_id: str = Field(description="the alert's id at its gate")
    kind: str
    state: Literal["open", "resolved"]
    title: str
    raised_ts: float
    updated_ts: float
    confidence: float
    handsets: int
    sensors: list[str]
    reasons: list[str]
    duration_s: float
    alarm: bool = Field(description="the gate alarmed for it")
    resolved_ts: float | None
    resolution: str | None
    acked_ts: float | None = Field(description="when the gate recorded an acknowledgement")
    acked_by: str | None
    ack_note: str | None
    ack_sent_ts: float | None = Field(description="when this command post acknowledged")
    ack_sent_by: str | None
    ack_state: Literal["none", "sent", "confirmed"]
    acknowledged: bool = Field(description="acknowledged here or at the gate: no alarm here")


class GateOut(BaseModel):
    site: str
    gate: str
    state: Literal["online", "offline"] = Field(description="what the gate's core last said")
    status: Literal["online", "stale", "offline"] = Field(
        description="stale: no word from the gate for three of its health beats"
    )
    health_ts: float | None
    heard_ts: float
    age_s: float
    sensors: dict[str, dict[str, Any]]
    open_alerts: int
    alarming: int


class GatesOut(BaseModel):
    command_post: str
    broker_connected: bool
    gates: list[GateOut]
    alerts: list[GateAlertOut] = Field(
        description="open alerts, alerts not yet acknowledged, and today's (since `since`)"
    )


class GateAckOut(BaseModel):
    alert: GateAlertOut
    delivered: bool = Field(description="the broker took it now (else it is sent on reconnect)")
