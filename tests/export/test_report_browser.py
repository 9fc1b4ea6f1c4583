"""The bundle's report opens in real headless Chromium with its plots and tables."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from scanner.export.bundle import build_bundle
from scanner.export.collect import Period
from tests.helpers.browser import CHROMIUM_ARGS

from .conftest import Day

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.browser
def test_report_renders_in_chromium(day: Day, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip("chromium is not installed at /usr/bin/chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    out = tmp_path / "day.tar.gz"
    build_bundle(day.store, Period(day.since, day.until), out, now=day.until + 600)
    with tarfile.open(out) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("/report.html"))
        handle = tar.extractfile(member)
        assert handle is not None
        page_file = tmp_path / "report.html"
        page_file.write_bytes(handle.read())
    requests: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("request", lambda r: requests.append(r.url))
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(page_file.as_uri())
            page.screenshot(path=str(ARTIFACTS / "export-report.png"), full_page=True)
            page.screenshot(path=str(ARTIFACTS / "export-report-top.png"))
            page.locator("#alerts").screenshot(path=str(ARTIFACTS / "export-report-alerts.png"))
            # The timeline draws one bar per alert and one lane per sensor, with real size.
            box = page.locator("#timeline-plot").bounding_box()
            assert box is not None and box["width"] > 800 and box["height"] > 100
            assert page.locator("#timeline-plot rect.alert").count() == len(day.alert_ids)
            bars = page.locator("#alerts-per-hour rect.bar")
            heights = [float(bars.nth(i).get_attribute("height") or 0) for i in range(bars.count())]
            assert bars.count() == 16 and sum(1 for h in heights if h > 0) >= 10
            rows = page.locator("#alerts tbody tr")
            assert rows.count() == len(day.alert_ids)
            assert page.locator("#outages tbody tr").count() == 3
            text = page.locator("#alerts").inner_text()
            assert "alert-001" in text and "guard1" in text
        finally:
            browser.close()
    # Self-contained: the only request is the page itself.
    assert [u for u in requests if not u.startswith("file://")] == []
    assert errors == []
