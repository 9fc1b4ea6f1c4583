"""The store's word after a commit that added rows to the live feed: once per transaction, after
the commit, and never for a transaction that added none or was rolled back."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.store.db import Store


def test_listeners_hear_each_commit_that_added_events(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    heard: list[int] = []
    # What a listener sees when called: the rows are already committed (readable).
    store.on_feed_commit(lambda: heard.append(store.last_event_id()))
    with store.write() as conn:
        store.add_event(conn, 1.0, "zone", {"n": 1})
        store.add_event(conn, 1.0, "zone", {"n": 2})
        assert heard == []  # not before the commit
    assert heard == [2]
    with store.write() as conn:
        store.set_setting(conn, "k", 1)  # no event: no word
    assert heard == [2]
    with pytest.raises(RuntimeError), store.write() as conn:
        store.add_event(conn, 2.0, "zone", {"n": 3})
        raise RuntimeError("refused")
    assert heard == [2] and store.last_event_id() == 2
    with store.write() as conn:
        store.add_event(conn, 3.0, "zone", {"n": 4})
    assert len(heard) == 2
    store.close()


def test_a_failing_listener_does_not_fail_the_write(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    heard: list[str] = []

    def broken() -> None:
        raise OSError("loop gone")

    store.on_feed_commit(broken)
    store.on_feed_commit(lambda: heard.append("woken"))
    with store.write() as conn:
        store.add_event(conn, 1.0, "zone", {})
    assert heard == ["woken"] and store.last_event_id() == 1
    store.close()
