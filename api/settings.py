"""The API's settings: one frozen class, built from the ``[api]`` config section or by the demo.

Outside demo mode the settings refuse to run with the demo's well-known accounts in the store:
their passwords are printed on every demo start, so a demo database must never guard a real door.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scanner.config_check import (
    RANGES,
    ConfigValueError,
    check_host_name,
    check_network,
    check_number,
)
from scanner.mqtt.link import BrokerSettings
from scanner.store.db import Store
from scanner.store.users import DEMO_USERS_KEY

STATIC_DIR = Path(__file__).resolve().parent / "static"
# ``gate``: the tablet of one gate (its own core's store). ``command-post``: the site's view of
# every gate, fed by their cores over the MQTT broker (``[mqtt]``).
MODES = ("gate", "command-post")


# The [api] keys that are numbers, each with its range in scanner.config_check.RANGES.
_NUMBERS = tuple(k for k in RANGES["api"] if k != "port")


def _strings(section: dict[str, Any], key: str) -> list[Any]:
    value = section.get(key, [])
    if not isinstance(value, list):
        raise ConfigValueError(f"[api] {key} must be a list")
    return value


class SettingsError(ValueError):
    """The API cannot start with these settings; the message says what to change."""


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """Everything ``create_app`` needs; no module-level state anywhere in ``api``."""

    store_path: str
    demo: bool = False
    # Served over TLS (uvicorn with the provisioning certificate): the cookie gets ``Secure``.
    tls: bool = False
    static_dir: Path = STATIC_DIR
    # A guard shift plus handover; the tablet logs in again after that.
    session_ttl_s: float = 14 * 3600.0
    # Requests are small JSON documents; the largest is a full allowlist PUT.
    max_body_bytes: int = 256 * 1024
    # How often the SSE stream looks for new rows in the events table (the core may be
    # another process, so the table is the only channel); sets the alarm's latency floor.
    # A poll is one indexed SELECT on a WAL reader: at 20 a second per tablet it costs about 1%
    # of a core, and it keeps the wait for the next poll (uniform up to this) to a fifth of
    # the 250 ms the whole frame-to-tablet path may take (bench/latency.py).
    event_poll_s: float = 0.05
    # The live feed's data heartbeat: the tablet shows NO CONNECTION after missing about three
    # (a stalled link rarely announces itself), so this sets how soon a frozen screen is
    # flagged. A ~100-byte event every 2 s is nothing even on a weak Wi-Fi link. The session
    # is re-checked on the same beat.
    heartbeat_s: float = 2.0
    # The EventSource reconnect delay we ask the browser for, in milliseconds.
    sse_retry_ms: int = 2000
    # A sensor whose last report is older than this is shown as silent (its daemon, or the core
    # that stores its reports, is gone). Sources report at least every 10 s (a replay and the
    # SDR's status beat; live Wi-Fi and BLE every 5 s): three missed reports is a dead reporter.
    sensor_stale_s: float = 30.0
    site_name: str = "checkpoint"
    # -- limits that keep the API answering the guard under abuse (api/server.py) ------------
    # A Pi serves a handful of tablets and scripts; each browser opens at most 6 connections to
    # one host. 256 connections fit the 1,024 open files systemd gives by default with room for
    # the store, and the cap is lowered further when the process's limit is smaller.
    max_connections: int = 256
    # One address (a tablet, a script, or a host on the site network trying to starve the
    # others) gets this many: a browser's six plus an event stream, with room to spare.
    max_connections_per_client: int = 32
    # A request head is under 16 KB: even on a congested 2.4 GHz link it arrives, TLS
    # handshake included, within a second or two. A client still sending it after this long
    # is holding the connection on purpose.
    head_timeout_s: float = 10.0
    # The largest body (a full allowlist, 256 KB) takes 20 s at 100 kbit/s, the worst a tablet
    # at the edge of the site's Wi-Fi manages.
    body_timeout_s: float = 30.0
    # An idle keep-alive connection is closed after this (uvicorn's own timer).
    keep_alive_s: int = 5
    # Request line and headers together; a browser sends under 4 KB (cookies included).
    max_head_bytes: int = 16 * 1024
    # Requests per second per client address, with a burst: the tablet page loads in about 15
    # requests and then polls a few times a minute; a script paging the alerts stays far below.
    rate_per_s: float = 20.0
    rate_burst: int = 100
    # Sign-in guessing. A client address gets a few failures, then waits (doubling each time,
    # up to an hour); an account name gets many more failures from all clients together, then
    # pauses briefly. The client limit stops one guesser; the account limit stops a guesser
    # spread over many addresses without locking the real owner out for long, and never from
    # a client that has signed in as that user before (its device cookie) or from loopback.
    login_client_failures: int = 5
    login_client_block_s: float = 60.0
    login_account_failures: int = 20
    login_account_lock_s: float = 60.0
    # API tokens: the default lifetime of a new token, and the longest one may be given.
    token_ttl_s: float = 90 * 86_400.0
    token_max_ttl_s: float = 365 * 86_400.0
    # Clients exempt from rate limits and sign-in lockout: the kiosk browser on the Pi itself.
    trusted_clients: tuple[str, ...] = ("127.0.0.0/8", "::1")
    # Host names the API answers to besides IP literals, localhost and this machine's own
    # names: a page on a foreign name (DNS rebinding) gets 421 on every route.
    allowed_hosts: tuple[str, ...] = ()
    mode: str = "gate"
    # The broker a command post subscribes to (from ``[mqtt]``); None for a gate's API.
    broker: BrokerSettings | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(
        cls, section: dict[str, Any], store_path: str | Path, *, demo: bool = False
    ) -> ApiSettings:
        """Build from the config's ``[api]`` table; unknown keys are an error."""
        known = {
            "tls",
            "static_dir",
            "session_ttl_s",
            "max_body_bytes",
            "event_poll_s",
            "heartbeat_s",
            "sse_retry_ms",
            "sensor_stale_s",
            "site_name",
            *_NUMBERS,
            "trusted_clients",
            "allowed_hosts",
            "mode",
            # Read by the server runner, not the app.
            "host",
            "port",
            "certfile",
            "keyfile",
        }
        unknown = sorted(set(section) - known)
        if unknown:
            raise SettingsError(f"[api]: unknown key(s) {', '.join(unknown)}")
        try:
            numbers: dict[str, Any] = {
                key: check_number("api", key, section[key], RANGES["api"][key])
                for key in _NUMBERS
                if key in section
            }
            trusted = tuple(
                check_network(f"[api] trusted_clients[{i}]", v)
                for i, v in enumerate(_strings(section, "trusted_clients"))
            )
            hosts = tuple(
                check_host_name(f"[api] allowed_hosts[{i}]", v).lower().rstrip(".")
                for i, v in enumerate(_strings(section, "allowed_hosts"))
            )
        except ConfigValueError as exc:
            raise SettingsError(str(exc)) from exc
        mode = section.get("mode", "gate")
        if mode not in MODES:
            raise SettingsError(f"[api] mode must be one of {', '.join(MODES)}, not {mode!r}")
        extra: dict[str, Any] = {}
        if "trusted_clients" in section:
            extra["trusted_clients"] = trusted
        if "allowed_hosts" in section:
            extra["allowed_hosts"] = hosts
        try:
            settings = cls(
                store_path=str(store_path),
                demo=demo,
                tls=bool(section.get("tls", False)),
                static_dir=Path(section.get("static_dir", STATIC_DIR)),
                site_name=str(section.get("site_name", "checkpoint")),
                mode=mode,
                **numbers,
                **extra,
            )
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"[api]: {exc}") from exc
        settings.check_ranges()
        return settings

    def check_ranges(self) -> None:
        """Every number finite, in its documented range, and consistent with the others."""
        try:
            for key in _NUMBERS:
                if key != "port":
                    check_number("api", key, getattr(self, key), RANGES["api"][key])
        except ConfigValueError as exc:
            raise SettingsError(str(exc)) from exc
        if self.token_ttl_s > self.token_max_ttl_s:
            raise SettingsError("[api] token_ttl_s must not exceed token_max_ttl_s")
        if self.max_connections_per_client > self.max_connections:
            raise SettingsError("[api] max_connections_per_client must not exceed max_connections")

    def check(self, store: Store) -> None:
        """Refuse what is out of range, and what is only acceptable in the demo."""
        self.check_ranges()
        if self.demo:
            return
        demo_users = store.get_setting(DEMO_USERS_KEY, [])
        if demo_users:
            raise SettingsError(
                f"the store {self.store_path} has the demo accounts {', '.join(demo_users)} "
                "whose passwords are public; use a fresh store, or remove them with "
                "`checkpoint user remove NAME`"
            )
