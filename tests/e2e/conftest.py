"""Browser tests: the app served by uvicorn on a free port over a temp store, the core's writes
made by a thread on its own connection, and real headless Chromium driven by Playwright."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from tablet_support import ARTIFACTS, CHROMIUM, CoreWriter, Site, free_port

from api.app import create_app
from api.settings import ApiSettings
from scanner.store.db import Store
from scanner.store.users import ensure_demo_users


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
    settings = ApiSettings(store_path=path, demo=True, event_poll_s=0.1, heartbeat_s=5.0)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        yield Site(f"http://127.0.0.1:{port}", store, writer, creds)
    finally:
        writer.stop.set()
        server.should_exit = True
        thread.join(timeout=10)
        writer.join(timeout=5)
