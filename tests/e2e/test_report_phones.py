"""The after-action report of a replayed scenario, in real headless Chromium at 1280 px: every
phone the scanner tracked with its times in the zone, every alert with its guard and evidence,
nothing cut off at the right, and a PDF from Chromium's print."""

from __future__ import annotations

import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scanner.export.bundle import build_bundle
from scanner.export.collect import Period, collect
from scanner.export.report_html import phones_of
from scanner.sim.run import replay_fast
from scanner.store.db import Store
from tests.helpers.browser import CHROMIUM_ARGS

pytestmark = pytest.mark.browser

SCENARIO = Path(__file__).resolve().parents[2] / "scanner" / "demo" / "scenario"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")


def test_report_lists_every_phone_with_its_intervals(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api")
    store = Store(tmp_path / "checkpoint.db")
    try:
        replay_fast(SCENARIO, store=store)
        row = store.query("SELECT MIN(raised_ts) AS a, MAX(resolved_ts) AS b FROM alerts")[0]
        period = Period(float(row["a"]) - 300, float(row["b"]) + 300)
        now = period.until + 60
        bundle = tmp_path / "bundle.tar.gz"
        build_bundle(store, period, bundle, now=now)
        phones = phones_of(collect(store, period, now))
        alerts = store.query("SELECT id, acked_by FROM alerts")
    finally:
        store.close()
    with tarfile.open(bundle) as tar:
        tar.extractall(tmp_path / "b", filter="data")
    (page_file,) = (tmp_path / "b").glob("*/report.html")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(page_file.as_uri())
            page.screenshot(path=str(ARTIFACTS / "report-1280.png"), full_page=True)
            page.locator("#phones").screenshot(path=str(ARTIFACTS / "report-phones.png"))
            # Nothing runs off the right edge at 1280 px.
            assert page.evaluate("document.documentElement.scrollWidth") <= 1280
            # One row and one lane group per phone; each phone in the zone says when.
            rows = page.locator("#phones-table tbody tr")
            assert rows.count() == len(phones) >= 4
            assert page.locator("#phone-lanes text.phone-name").count() == len(phones)
            in_zone = [p for p in phones if p.alerts]
            assert len(in_zone) >= 3
            assert page.locator("#phone-lanes rect.in-zone").count() == sum(
                len(p.alerts) for p in in_zone
            )
            for phone in in_zone:
                text = rows.nth(phones.index(phone)).inner_text()
                for start, _end, alert_id in phone.in_zone:
                    clock = datetime.fromtimestamp(start, tz=UTC).strftime("%H:%M:%S")
                    assert alert_id in text and f"{clock}–" in text
            # Each alert's card: who acknowledged, and links to its evidence files.
            for alert in alerts:
                card = page.locator(f"#alert-{alert['id']}")
                assert str(alert["acked_by"]) in card.inner_text()
                hrefs = [
                    card.locator("a").nth(i).get_attribute("href")
                    for i in range(card.locator("a").count())
                ]
                assert hrefs and all((page_file.parent / str(h)).is_file() for h in hrefs), hrefs
            pdf = page.pdf(format="A4", landscape=True, print_background=True)
            (ARTIFACTS / "report.pdf").write_bytes(pdf)
            assert pdf.startswith(b"%PDF") and len(pdf) > 20_000
        finally:
            browser.close()
