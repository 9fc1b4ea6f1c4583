"""A supervisor allowlists the device of an alert through the API, and the real detection core,
reading the same store, raises nothing on that device's next visit (another phone still alerts)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from scanner.store import alerts as alert_store
from scanner.store.db import Store
from tests.core.helpers import START, Harness, probe

KNOWN = ("00:5e:0c:00:00:0a", "a1b2c3d4e5f60718")  # the chief's phone: a phone maker's global MAC
STRANGER = ("02:00:00:00:00:0b", "0f1e2d3c4b5a6978")


def _visit(core: Harness, phone: tuple[str, str], t0: float, t1: float) -> None:
    """Probes every 2 s: weak in the corridor, strong inside the zone from t0 to t1."""
    t = t0 - 20
    while t < t1 + 40:
        rssi = -42 if t0 <= t < t1 else -78
        random_mac = phone is not KNOWN
        core.handle(probe(t, phone[0], rssi, fp=phone[1], random_mac=random_mac))
        core.handle(probe(t + 0.05, phone[0], rssi, fp=phone[1], random_mac=random_mac))
        t += 2.0


def test_allowlisting_an_alerts_device_silences_its_next_visit(
    store: Store, login: Callable[[str], TestClient]
) -> None:
    core = Harness(store)
    _visit(core, KNOWN, 100.0, 160.0)
    core.tick(300.0)
    (first,) = alert_store.list_alerts(store)

    sup = login("supervisor")
    added = sup.post("/api/v1/allowlist", json={"alert_id": first.id, "label": "chief's phone"})
    assert added.status_code == 201, added.text
    assert ("mac", KNOWN[0]) in {(e["match"], e["value"]) for e in added.json()["added"]}

    # The stranger carries the same model (same fingerprint): nothing exempts it.
    _visit(core, KNOWN, 400.0, 460.0)
    _visit(core, (STRANGER[0], KNOWN[1]), 600.0, 660.0)
    core.tick(900.0)
    alerts = alert_store.list_alerts(store)
    assert len(alerts) == 2, [a.reasons for a in alerts]
    newest = alerts[0]
    assert newest.id != first.id and START + 600.0 <= newest.raised_ts <= START + 605.0
