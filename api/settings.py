"""The API's settings: one frozen class, built from the ``[api]`` config section or by the demo.

Outside demo mode the settings refuse to run with the demo's well-known accounts in the store:
their passwords are printed on every demo start, so a demo database must never guard a real door.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scanner.store.db import Store
from scanner.store.users import DEMO_USERS_KEY

STATIC_DIR = Path(__file__).resolve().parent / "static"


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
    # A comment line this often keeps proxies and the tablet's Wi-Fi from dropping the stream.
    heartbeat_s: float = 15.0
    # The EventSource reconnect delay we ask the browser for, in milliseconds.
    sse_retry_ms: int = 2000
    # A sensor whose last report is older than this is shown as silent (its daemon is gone).
    sensor_stale_s: float = 120.0
    site_name: str = "checkpoint"
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
            # Read by the server runner, not the app.
            "host",
            "port",
            "certfile",
            "keyfile",
        }
        unknown = sorted(set(section) - known)
        if unknown:
            raise SettingsError(f"[api]: unknown key(s) {', '.join(unknown)}")
        base = cls(store_path=str(store_path))
        try:
            return cls(
                store_path=str(store_path),
                demo=demo,
                tls=bool(section.get("tls", False)),
                static_dir=Path(section.get("static_dir", STATIC_DIR)),
                session_ttl_s=float(section.get("session_ttl_s", base.session_ttl_s)),
                max_body_bytes=int(section.get("max_body_bytes", base.max_body_bytes)),
                event_poll_s=float(section.get("event_poll_s", base.event_poll_s)),
                heartbeat_s=float(section.get("heartbeat_s", base.heartbeat_s)),
                sse_retry_ms=int(section.get("sse_retry_ms", base.sse_retry_ms)),
                sensor_stale_s=float(section.get("sensor_stale_s", base.sensor_stale_s)),
                site_name=str(section.get("site_name", base.site_name)),
            )
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"[api]: {exc}") from exc

    def check(self, store: Store) -> None:
        """Refuse what is only acceptable in the demo."""
        if self.session_ttl_s <= 0 or self.max_body_bytes <= 0 or self.event_poll_s <= 0:
            raise SettingsError("[api]: session_ttl_s, max_body_bytes, event_poll_s must be > 0")
        if self.demo:
            return
        demo_users = store.get_setting(DEMO_USERS_KEY, [])
        if demo_users:
            raise SettingsError(
                f"the store {self.store_path} has the demo accounts {', '.join(demo_users)} "
                "whose passwords are public; use a fresh store, or remove them with "
                "`checkpoint user remove NAME`"
            )
