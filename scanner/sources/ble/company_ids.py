"""Bluetooth SIG company identifiers and 16-bit service UUID names, shipped offline.

The table lives in ``data/assigned_numbers.json`` (see ``tables_build`` for where it comes from);
it is read once, on first use, so importing the classifier costs nothing.
"""

from __future__ import annotations

import logging
from functools import cache
from importlib import resources

from scanner import safe_json

_LOGGER = logging.getLogger(__name__)

# The suffix every 16-bit SIG UUID shares once widened to 128 bits (Core spec Vol 3 Part B 2.5.1).
BASE_UUID_SUFFIX = "-0000-1000-8000-00805f9b34fb"


@cache
def _tables() -> tuple[dict[int, str], dict[int, str]]:
    try:
        text = (
            resources.files(__package__)
            .joinpath("data/assigned_numbers.json")
            .read_text(encoding="utf-8")
        )
        raw = safe_json.loads(text)
        companies = {int(k): str(v) for k, v in raw["companies"].items()}
        services = {int(k, 16): str(v) for k, v in raw["services16"].items()}
    except (OSError, ValueError, KeyError) as exc:
        # A broken install must not stop capture: names are decoration, ids still classify.
        _LOGGER.warning("assigned numbers unreadable (%s); vendor names fall back to ids", exc)
        return {}, {}
    return companies, services


def company_name(company_id: int) -> str | None:
    """The registered name of a SIG company id, or None when unknown."""
    return _tables()[0].get(company_id)


def service_name(uuid16: int) -> str | None:
    """The registered name of a 16-bit service UUID (member services included), or None."""
    return _tables()[1].get(uuid16)


def uuid16_of(uuid: str) -> int | None:
    """The 16-bit form of a SIG-based 128-bit UUID string, or None for a vendor UUID."""
    u = uuid.lower()
    if len(u) == 36 and u.endswith(BASE_UUID_SUFFIX) and u.startswith("0000"):
        try:
            return int(u[4:8], 16)
        except ValueError:
            return None
    if len(u) == 4:
        try:
            return int(u, 16)
        except ValueError:
            return None
    return None


def uuid128(uuid16: int) -> str:
    """The full lower-case string form of a 16-bit SIG UUID, as BlueZ and bleak report it."""
    return f"0000{uuid16:04x}{BASE_UUID_SUFFIX}"
