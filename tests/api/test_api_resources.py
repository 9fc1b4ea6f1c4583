"""Alerts, devices, sensors and health, allowlist, zone and users through the API, on a real
temp store filled with the store's own functions."""

from __future__ import annotations

import json
from collections.abc import Callable

from fastapi.testclient import TestClient

from api.settings import ApiSettings
from scanner.core.presence import calibrations_from_setting
from scanner.observations import Radio, SensorState, SensorStatus
from scanner.store import alerts as alert_store
from scanner.store.allowlist import allowlist_version
from scanner.store.db import Store
from scanner.store.health import record_status
from tests.api.api_helpers import FakeClock, make_alert


def _device(
    store: Store,
    device_id: str,
    macs: list[str],
    fps: list[str],
    ble: list[str],
    stable: tuple[list[str], list[str]] = ([], []),
) -> None:
    with store.write() as conn:
        conn.execute(
            "INSERT INTO devices (id, kind, vendor, first_seen, last_seen, radios, identifiers, "
            "evidence, last_rssi, in_zone) VALUES (?, 'handset', 'Acme', 1, 2, ?, ?, '[]', -50, 1)",
            (
                device_id,
                json.dumps(["wifi", "ble"]),
                json.dumps(
                    {
                        "macs": macs,
                        "fingerprints": fps,
                        "ble": ble,
                        "stable_macs": stable[0],
                        "stable_ble": stable[1],
                    }
                ),
            ),
        )


def test_alerts_filter_page_detail_and_ack(
    store: Store, login: Callable[[str], TestClient]
) -> None:
    for i in range(5):
        alert_store.raise_alert(store, make_alert(f"a{i}", 1000.0 + i * 10))
    alert_store.resolve_alert(store, "a0", 1100.0, "left_zone", 100.0)
    guard = login("guard")

    everything = guard.get("/api/v1/alerts").json()
    assert [a["id"] for a in everything["items"]] == ["a4", "a3", "a2", "a1", "a0"]
    assert [a["id"] for a in guard.get("/api/v1/alerts?state=open").json()["items"]] == [
        "a4",
        "a3",
        "a2",
        "a1",
    ]
    window = guard.get("/api/v1/alerts?since=1010&until=1030").json()["items"]
    assert [a["id"] for a in window] == ["a2", "a1"]
    first = guard.get("/api/v1/alerts?limit=2").json()
    second = guard.get(f"/api/v1/alerts?limit=2&offset={first['next_offset']}").json()
    last = guard.get("/api/v1/alerts?limit=2&offset=4").json()
    assert [a["id"] for a in first["items"] + second["items"]] == ["a4", "a3", "a2", "a1"]
    assert last["next_offset"] is None

    r = guard.post("/api/v1/alerts/a3/ack", json={"note": "visitor's phone, bagged"})
    assert r.status_code == 200
    assert (r.json()["acked_by"], r.json()["acknowledged"]) == ("guard", True)
    again = login("supervisor").post("/api/v1/alerts/a3/ack", json={})
    assert again.json()["acked_by"] == "guard"  # the first acknowledgement stands
    detail = guard.get("/api/v1/alerts/a3").json()
    assert [h["event"] for h in detail["history"]] == ["raised", "acknowledged"]
    assert detail["history"][1]["detail"]["note"] == "visitor's phone, bagged"
    missing = guard.get("/api/v1/alerts/nope")
    assert missing.status_code == 404 and missing.json()["type"].endswith("not-found")
    assert guard.post("/api/v1/alerts/nope/ack", json={}).status_code == 404


def test_allowlist_from_an_alert_device_and_replace(
    store: Store, login: Callable[[str], TestClient]
) -> None:
    # A phone heard by a randomised probe MAC, a rotating BLE address, its associated MAC and
    # a static BLE address: only the last two name it alone.
    _device(
        store,
        "d1",
        ["02:11:22:33:44:55", "06:00:00:00:00:01"],
        ["ab12cd34ef56"],
        ["ble-key-7", "d2:00:00:00:00:07"],
        stable=(["02:11:22:33:44:55"], ["d2:00:00:00:00:07"]),
    )
    alert_store.raise_alert(store, make_alert("a1", 100.0, device_ids=["d1", "gone"]))
    sup = login("supervisor")
    before = allowlist_version(store)
    preview = sup.post(
        "/api/v1/allowlist", json={"alert_id": "a1", "label": "chief's phone", "dry_run": True}
    )
    assert preview.status_code == 201 and allowlist_version(store) == before
    r = sup.post("/api/v1/allowlist", json={"alert_id": "a1", "label": "chief's phone"})
    assert r.status_code == 201
    added = {(e["match"], e["value"], e["fingerprint"]) for e in r.json()["added"]}
    assert added == {
        ("mac", "02:11:22:33:44:55", "ab12cd34ef56"),
        ("ble_identity", "d2:00:00:00:00:07", ""),
    }
    assert {(e["match"], e["value"]) for e in preview.json()["added"]} == {
        (m, v) for m, v, _ in added
    }
    assert allowlist_version(store) == before + 1
    # Adding again adds nothing; the device now shows as allowlisted.
    assert sup.post("/api/v1/allowlist", json={"device_id": "d1"}).json()["added"] == []
    assert login("guard").get("/api/v1/devices").json()["items"][0]["allowlisted"] is True

    entries = sup.get("/api/v1/allowlist").json()["entries"]
    keep = [{"match": e["match"], "value": e["value"], "label": e["label"]} for e in entries[:1]]
    keep.append({"match": "mac", "value": "AA:BB:CC:00:11:22", "label": "radio room"})
    put = sup.put("/api/v1/allowlist", json={"entries": keep}).json()
    assert [(e["match"], e["value"]) for e in put["entries"]] == [
        ("mac", "02:11:22:33:44:55"),
        ("mac", "aa:bb:cc:00:11:22"),
    ]
    assert put["entries"][0]["added_by"] == "sup"
    # Undo: the entry an addition made goes again by its id.
    radio = put["entries"][1]
    assert sup.delete(f"/api/v1/allowlist/{radio['id']}").status_code == 204
    assert [e["value"] for e in sup.get("/api/v1/allowlist").json()["entries"]] == [
        "02:11:22:33:44:55"
    ]
    assert sup.delete(f"/api/v1/allowlist/{radio['id']}").status_code == 404
    bad = sup.post("/api/v1/allowlist", json={"entry": {"match": "mac", "value": "not a mac"}})
    assert bad.status_code == 422
    assert sup.post("/api/v1/allowlist", json={"device_id": "nope"}).status_code == 404
    both = sup.post("/api/v1/allowlist", json={"device_id": "d1", "alert_id": "a1"})
    assert both.status_code == 422


def test_fingerprint_entries_are_refused_with_a_clear_problem(
    store: Store, login: Callable[[str], TestClient]
) -> None:
    sup = login("supervisor")
    one = sup.post(
        "/api/v1/allowlist", json={"entry": {"match": "fingerprint", "value": "ab12cd34ef56"}}
    )
    assert one.status_code == 422
    assert one.headers["content-type"].startswith("application/problem+json")
    problem = one.json()
    assert problem["type"].endswith("fingerprint-not-identity")
    assert "every phone of the same model" in problem["detail"]
    put = sup.put(
        "/api/v1/allowlist",
        json={"entries": [{"match": "fingerprint", "value": "ab12cd34ef56", "label": "x"}]},
    )
    assert put.status_code == 422 and put.json()["type"].endswith("fingerprint-not-identity")
    assert sup.get("/api/v1/allowlist").json()["entries"] == []
    # A device heard only by randomised probes and rotating addresses: nothing names it.
    _device(store, "d9", ["06:00:00:00:00:09"], ["ab12cd34ef56"], ["5a:00:00:00:00:09"])
    none = sup.post("/api/v1/allowlist", json={"device_id": "d9"})
    assert none.status_code == 409 and "IRK" in none.json()["detail"]


def test_flagged_and_config_entries_are_shown_not_in_force(
    store: Store, login: Callable[[str], TestClient]
) -> None:
    from scanner.store.allowlist import AllowlistEntry, replace_entries

    replace_entries(
        store,
        [
            AllowlistEntry("fingerprint", "ab12cd34ef56", "old rule"),
            AllowlistEntry("ble_irk", "0f" * 16, "visitor", expires_ts=50.0),
        ],
        "sup",
        10.0,
    )
    with store.write() as conn:
        store.set_setting(
            conn,
            "allowlist_config",
            [{"match": "mac", "value": "00:1b:63:00:00:01", "label": "issued radio"}],
        )
    sup = login("supervisor")
    body = sup.get("/api/v1/allowlist").json()
    flags = {e["match"]: (e["flag"], e["in_force"]) for e in body["entries"]}
    assert flags == {"fingerprint": ("fingerprint-not-identity", False), "ble_irk": ("", False)}
    assert [(c["value"], c["source"], c["in_force"]) for c in body["config"]] == [
        ("00:1b:63:00:00:01", "config", True)
    ]
    # The flagged entry may be kept through a replace (the page sends the list back) ...
    kept = [
        {"match": e["match"], "value": e["value"], "label": e["label"]} for e in body["entries"]
    ]
    assert sup.put("/api/v1/allowlist", json={"entries": kept}).status_code == 200


def test_zone_calibration_reaches_the_core(
    login: Callable[[str], TestClient], store: Store
) -> None:
    sup = login("supervisor")
    assert login("guard").get("/api/v1/zone").json()["version"] == 0
    body = {
        "name": "North gate",
        "calibration": {
            "wifi": {
                "boundary_dbm": -65,
                "inside_dbm": -50,
                "boundary_samples": [-64, -66, -65],
                "inside_samples": [-50],
            }
        },
    }
    zone = sup.put("/api/v1/zone", json=body).json()
    assert (zone["name"], zone["version"], zone["updated_by"]) == ("North gate", 1, "sup")
    wifi = zone["calibration"]["wifi"]
    # The thresholds shown are the ones the core derives from the stored setting.
    core_view = calibrations_from_setting(store.get_setting("zone_calibration"))["wifi"]
    th = core_view.thresholds()
    assert (wifi["enter_dbm"], wifi["exit_dbm"]) == (th.enter_dbm, th.exit_dbm)
    assert th.exit_dbm < th.enter_dbm < -50  # leave below enter; enter below inside
    assert wifi["boundary_samples"] == [-64, -66, -65]
    assert store.events_after(0)[-1]["type"] == "zone"
    inverted = {"name": "x", "calibration": {"ble": {"boundary_dbm": -60, "inside_dbm": -70}}}
    assert sup.put("/api/v1/zone", json=inverted).status_code == 422
    assert (
        sup.put("/api/v1/zone", json={"name": "x", "calibration": {"lte": {}}}).status_code == 422
    )


def test_sensors_turn_silent_and_healthz_reports_each(
    store: Store,
    login: Callable[[str], TestClient],
    anon: TestClient,
    clock: FakeClock,
    settings: ApiSettings,
) -> None:
    now = clock.now
    record_status(
        store,
        SensorStatus(
            now, 0.0, "wifi", Radio.WIFI, SensorState.OK, "hopping 1/6/11", {"frames": 10}
        ),
        now,
    )
    record_status(
        store, SensorStatus(now, 0.0, "sdr", Radio.SDR, SensorState.FAULT, "dongle unplugged"), None
    )
    guard = login("guard")
    by_name = {s["sensor"]: s for s in guard.get("/api/v1/sensors").json()}
    assert (by_name["wifi"]["status"], by_name["sdr"]["status"]) == ("ok", "fault")
    health = guard.get("/api/v1/health").json()
    assert health["status"] == "degraded" and health["store"]["ok"] is True
    assert health["sensors"]["sdr"]["message"] == "dongle unplugged"
    assert health["problems"] == ["Cellular: fault, dongle unplugged"]
    assert health["disk"]["total_bytes"] > 0
    public = anon.get("/healthz").json()
    assert public["status"] == "degraded"
    assert public["sensors"]["sdr"] == {"radio": "sdr", "state": "fault", "status": "fault"}
    assert "dongle" not in json.dumps(public)
    assert anon.get("/api/v1/health").status_code == 401
    clock.now += settings.sensor_stale_s + 1
    assert {s["sensor"]: s["status"] for s in guard.get("/api/v1/sensors").json()}[
        "wifi"
    ] == "silent"


def test_users_admin(login: Callable[[str], TestClient], anon: TestClient) -> None:
    admin = login("admin")
    r = admin.post("/api/v1/users", json={"username": "night1", "role": "guard", "pin": "55667"})
    assert r.status_code == 201 and r.json()["has_pin"] is True
    assert (
        admin.post(
            "/api/v1/users", json={"username": "night1", "role": "guard", "pin": "1234"}
        ).status_code
        == 409
    )
    assert admin.post("/api/v1/users", json={"username": "x", "role": "guard"}).status_code == 422
    # A PIN is for guards only: promotion needs the PIN gone, and then the PIN signs nobody in.
    refused = admin.patch("/api/v1/users/night1", json={"role": "supervisor"})
    assert refused.status_code == 422 and "guard role" in refused.json()["detail"]
    promoted = admin.patch(
        "/api/v1/users/night1",
        json={"role": "supervisor", "clear_pin": True, "password": "night-shift-lead-4"},
    )
    assert promoted.json()["role"] == "supervisor" and promoted.json()["has_pin"] is False
    assert anon.post("/api/v1/session", json={"pin": "55667"}).status_code == 401
    assert admin.patch("/api/v1/users/admin", json={"role": "guard"}).status_code == 409
    assert admin.delete("/api/v1/users/admin").status_code == 409
    assert admin.delete("/api/v1/users/night1").status_code == 204
    assert admin.delete("/api/v1/users/night1").status_code == 404
    assert {u["username"] for u in admin.get("/api/v1/users").json()} == {"admin", "sup", "guard"}
