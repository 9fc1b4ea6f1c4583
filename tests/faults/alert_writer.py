"""A writer process for the power-loss tests: writes the store and acknowledges on stdout.

Run as ``python alert_writer.py MODE DB [ARG]``; each line on stdout is printed (and flushed)
only after the write it names has returned, so it is a write the program was told is done:

* ``store DB TAG``: alerts through ``scanner.store.alerts`` (raise, update, acknowledge,
  resolve) as the core and the API do, each printed as ``<event> <alert id>``.
* ``core DB SCENARIO OFFSET``: the real core replaying a scenario as fast as it can, its
  timeline shifted by OFFSET seconds so every run raises new alerts; the core's alert sink
  prints ``<event> <alert id>`` after the store has committed the transition.

The test kills this process with SIGKILL at random moments and checks the store afterwards.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any


def _ack(event: str, alert_id: str) -> None:
    sys.stdout.write(f"{event} {alert_id}\n")
    sys.stdout.flush()


def store_mode(db: str, tag: str) -> None:
    from scanner.store import alerts
    from scanner.store.db import Store

    store = Store(db)
    n = 0
    while True:
        n += 1
        alert_id = f"al-{tag}-{n}"
        ts = 1_764_000_000.0 + n
        alerts.raise_alert(
            store,
            alerts.AlertRecord(
                id=alert_id,
                kind="handset",
                state="open",
                title="Handset in zone",
                raised_ts=ts,
                updated_ts=ts,
                confidence=0.9,
                handsets=1,
                sensors=["wifi"],
                reasons=["Wi-Fi probe -44 dBm"],
                device_ids=[f"dev-{n}"],
            ),
        )
        _ack("raised", alert_id)
        alerts.update_alert(
            store,
            alert_id,
            ts + 1,
            confidence=0.95,
            handsets=2,
            sensors=["ble", "wifi"],
            reasons=["Wi-Fi probe -44 dBm", "BLE Apple Nearby Info -50 dBm"],
            device_ids=[f"dev-{n}", f"dev-{n}b"],
            duration_s=1.0,
        )
        _ack("updated", alert_id)
        alerts.touch_alert(store, alert_id, ts + 2, 2.0)
        alerts.acknowledge_alert(store, alert_id, ts + 3, "guard", "seen")
        _ack("acknowledged", alert_id)
        alerts.resolve_alert(store, alert_id, ts + 4, "left_zone", 4.0)
        _ack("resolved", alert_id)


def core_mode(db: str, scenario: str, offset: float) -> None:
    from scanner.core.pipeline import Core
    from scanner.runtime.core_runner import CoreRunner
    from scanner.sinks.ndjson import NdjsonSink
    from scanner.sinks.store import StoreInputs, StoreSink
    from scanner.sources.replay import iter_scenario, shifted
    from scanner.store.db import Store

    def note(line: dict[str, Any]) -> None:
        if line["event"] in ("raised", "updated"):
            _ack(str(line["event"]), str(line["alert_id"]))

    store = Store(db)
    inputs = StoreInputs(store)
    # The store first: a line is acknowledged to the parent only once its row is committed.
    core = CoreRunner(Core(run_tag=inputs.next_run()), [StoreSink(store), NdjsonSink(note)], inputs)
    counters: Counter[str] = Counter()
    while True:
        last = offset
        for event in iter_scenario(Path(scenario), counters):
            core.handle(shifted(event, offset, offset))
            last = event.mono + offset
        # The runtime ticks the core twice a second; silence after the recording resolves.
        for t in range(1, 120):
            core.tick(last + t)
        offset += 100_000.0


def main(argv: list[str]) -> int:
    mode, db = argv[1], argv[2]
    if mode == "store":
        store_mode(db, argv[3])
    elif mode == "core":
        core_mode(db, argv[3], float(argv[4]))
    else:
        sys.stderr.write(f"unknown mode {mode}\n")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
