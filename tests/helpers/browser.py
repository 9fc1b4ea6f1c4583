"""What the browser tests hand headless Chromium: one set of flags for every test that runs it."""

from __future__ import annotations

# Headless without a GPU, sandbox or network side traffic (updates, sync, QUIC), so a page load
# makes only the requests the page under test asks for.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
