"""The report's allowlist: the configuration's entries marked read-only, the supervisor's with
who and when, inactive and expired entries said so, and an IRK never written out."""

from __future__ import annotations

from scanner.export.collect import Period, collect
from scanner.export.report_html import _allowlist_table
from scanner.store.allowlist import AllowlistEntry, replace_entries
from scanner.store.db import Store

IRK = "6b2f0f5e3d1c9a87b4e2d1c0f9a8b7c6"


def test_report_shows_the_allowlist_in_force() -> None:
    store = Store(":memory:")
    replace_entries(
        store,
        [
            AllowlistEntry("fingerprint", "ab12cd34ef56", "old rule"),
            AllowlistEntry("ble_irk", IRK, "visitor", expires_ts=150.0),
            AllowlistEntry("mac", "3a:00:00:00:01:01", "guard one"),
        ],
        "sup",
        100.0,
    )
    with store.write() as conn:
        store.set_setting(
            conn,
            "allowlist_config",
            [{"match": "mac", "value": "00:1b:63:00:00:01", "label": "issued radio"}],
        )
    data = collect(store, Period(0.0, 200.0), 200.0)
    html = _allowlist_table(data)
    assert "config (read-only)" in html and "00:1b:63:00:00:01" in html
    assert "inactive: a fingerprint names no device" in html
    assert "expired" in html and IRK not in html and IRK[:6] in html
    assert "in force" in html and "guard one" in html
