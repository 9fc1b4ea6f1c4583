"""Browser tests: the app served by uvicorn on a free port over a temp store, the core's writes
made by a thread on its own connection, and real headless Chromium driven by Playwright."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from api.app import create_app
from api.settings import ApiSettings
from scanner.store.db import Store
from scanner.store.users import ensure_demo_users
from tests.e2e.tablet_support import ARTIFACTS, CHROMIUM, CoreWriter, Site, free_port
from tests.helpers.servers import serving


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    path = str(tmp_path / "checkpoint.db")
    store = Store(path)
    creds = ensure_demo_users(store)
    with store.write() as conn:
        store.set_setting(conn, "zone", {"name": "North gate", "calibration": {}})
    writer = CoreWriter(path)
    writer.report()
    writer.start()
    # The default heartbeat; sensors stale after 3 s so a radio that stops reporting shows
    # within a test's patience (the writer reports every 0.5 s).
    settings = ApiSettings(store_path=path, demo=True, event_poll_s=0.1, sensor_stale_s=3.0)
    with serving(create_app(settings), port=free_port(), timeout_graceful_shutdown=2) as served:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        try:
            yield Site(served.url, store, writer, creds)
        finally:
            # The writer stops before the server, as the core stops before the API.
            writer.stop.set()
    writer.join(timeout=5)
