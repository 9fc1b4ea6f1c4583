"""The core's input queue: a socket message's records put at once and a batch taken at once keep
the queue's order, bound, counted drops and deepest mark."""

from __future__ import annotations

import threading
import time

from scanner.runtime.transport import EventQueue, Message
from scanner.runtime.transport.codec import InputsChanged
from tests.runtime.runtime_support import sample_records


def _records(n: int) -> list[Message]:
    return [sample_records(i)[0] for i in range(n)]


def test_put_many_keeps_order_and_counts_what_the_bound_refuses() -> None:
    events = EventQueue(5)
    records = _records(7)
    assert events.put_many([*records, InputsChanged("ack")], 0.0) == 5
    assert events.qsize() == 5
    assert events.counters["dropped_queue_full"] == 2
    assert events.dropped_by_sensor == {"wifi:wlan1": 2}
    assert events.counters["dropped_inputs_changed"] == 1
    assert events.get(timeout=0) == records[0]
    assert events.deepest == 5
    assert events.get_many(3) == records[1:4]
    assert events.get_many(10) == records[4:5]
    assert events.get_many(10) == []
    assert events.get(timeout=0.01) is None
    assert events.get_nowait() is None


def test_a_waiting_put_gets_the_room_a_batch_taken_frees() -> None:
    events = EventQueue(3)
    records = _records(6)
    assert events.put_many(records[:3], 0.0) == 3
    took: list[list[Message]] = []

    def core() -> None:
        time.sleep(0.1)
        took.append(events.get_many(3))

    thread = threading.Thread(target=core)
    thread.start()
    t0 = time.monotonic()
    assert events.put_many(records[3:], 5.0) == 3
    assert time.monotonic() - t0 < 4.0
    thread.join()
    assert took == [records[:3]]
    assert events.get_many(10) == records[3:]
    assert events.counters["dropped_queue_full"] == 0


def test_a_wait_that_runs_out_ends_the_waiting_for_the_rest_of_the_message() -> None:
    events = EventQueue(1)
    records = _records(4)
    assert events.put(records[0])
    t0 = time.monotonic()
    assert events.put_many(records[1:], 0.2) == 0
    # One wait for the message, not one a record.
    assert time.monotonic() - t0 < 0.5
    assert events.counters["dropped_queue_full"] == 3
    assert not events.put_wait(records[1], 0.05)
    assert events.get_nowait() == records[0]
    assert events.put_wait(records[1], 0.05)
