"""Shared test fixtures: paths to the real captures and the project root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Real over-the-air captures recorded by others; a user's clone has no ../shared.
SHARED_DATA = Path(os.environ.get("CHECKPOINT_SHARED_DATA", ROOT.parent / "shared" / "data"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak", action="store_true", help="run the long soak tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_soak = pytest.mark.skip(reason="long soak: run with --soak")
    skip_hw = pytest.mark.skip(reason="needs a real radio: set CHECKPOINT_HARDWARE=1")
    for item in items:
        if "slow" in item.keywords and not config.getoption("--soak"):
            item.add_marker(skip_soak)
        if "hardware" in item.keywords and os.environ.get("CHECKPOINT_HARDWARE") != "1":
            item.add_marker(skip_hw)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real captures; tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real captures not found at {SHARED_DATA} (set CHECKPOINT_SHARED_DATA)")
    return SHARED_DATA
