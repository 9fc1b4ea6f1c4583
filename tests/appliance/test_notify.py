"""The systemd notify protocol: datagrams reach the socket, and a stalled loop stops pinging."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from scanner import notify
from scanner.clock import ManualClock
from tests.appliance.notify_listener import NotifyListener

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def listener(monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifyListener]:
    with NotifyListener() as sd:
        monkeypatch.setenv("NOTIFY_SOCKET", sd.address)
        monkeypatch.delenv("WATCHDOG_USEC", raising=False)
        monkeypatch.delenv("WATCHDOG_PID", raising=False)
        yield sd


def test_ready_status_stopping_reach_an_abstract_socket(listener: NotifyListener) -> None:
    assert notify.ready("capturing on mon0")
    assert listener.receive(2.0) == {"READY": "1", "STATUS": "capturing on mon0"}
    assert notify.status("channel 6\nsecond line")
    assert listener.receive(2.0) == {"STATUS": "channel 6 second line"}
    assert notify.stopping()
    assert listener.receive(2.0) == {"STOPPING": "1"}


def test_socket_file_address(monkeypatch: pytest.MonkeyPatch) -> None:
    with NotifyListener(abstract=False) as sd:
        monkeypatch.setenv("NOTIFY_SOCKET", sd.address)
        assert notify.watchdog_ping()
        assert sd.receive(2.0) == {"WATCHDOG": "1"}


def test_everything_is_a_no_op_without_notify_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    assert not notify.ready("x")
    assert not notify.status("x")
    assert not notify.stopping()
    dog = notify.Watchdog(ManualClock())
    dog.progress()
    assert not dog.enabled
    assert not dog.tick()


def test_a_vanished_socket_is_reported_not_raised(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "/tmp/checkpoint-no-such-dir/notify")
    assert not notify.ready()
    assert not notify.ready()
    assert "cannot notify systemd" in caplog.text


def test_unsupported_address_form_disables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "vsock:2:1234")
    assert not notify.Notifier.from_environment().enabled
    assert not notify.ready()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 30.0),
        ({"WATCHDOG_USEC": "500000", "WATCHDOG_PID": str(os.getpid())}, 0.5),
        ({"WATCHDOG_USEC": "500000", "WATCHDOG_PID": "1"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval_from_environment(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: float | None
) -> None:
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert notify.watchdog_interval_s() == expected


def test_watchdog_pings_at_half_interval_only_while_progressing(listener: NotifyListener) -> None:
    clock = ManualClock()
    dog = notify.Watchdog(clock, notifier=notify.Notifier(listener.address), interval_s=30.0)
    assert dog.enabled
    assert not dog.tick(), "no ping before the loop has gone round once"
    sent = []
    for _ in range(60):  # a healthy loop for 60 s, going round once a second
        dog.progress()
        sent.append(dog.tick())
        clock.advance(1.0)
    assert sum(sent) == 4  # t = 0, 15, 30, 45
    assert [listener.receive(1.0) for _ in range(4)] == [{"WATCHDOG": "1"}] * 4
    # The loop hangs: the ticker keeps running (a thread would) but must stop pinging.
    stalled = []
    for _ in range(120):
        clock.advance(1.0)
        stalled.append(dog.tick())
    # The ping due at t = 60 s still goes (progress was 1 s old); none after the stall is seen.
    assert stalled[0]
    assert not any(stalled[1:])
    assert listener.receive(1.0) == {"WATCHDOG": "1"}
    assert listener.receive(0.2) is None
    dog.progress()  # the loop recovers
    assert dog.tick()
    assert listener.receive(1.0) == {"WATCHDOG": "1"}


# A daemon-shaped loop in its own process: ready, then progress + watchdog, then a hang on cue.
_LOOP = textwrap.dedent(
    """
    import sys, time, pathlib
    from scanner import notify
    mode, stall_flag = sys.argv[1], pathlib.Path(sys.argv[2])
    dog = notify.Watchdog()
    if mode == "thread":
        dog.start()
    notify.ready("looping")
    while True:
        if stall_flag.exists():
            notify.status("stalled")
            time.sleep(600)  # the hang: nothing below runs again
        dog.progress()
        if mode == "inline":
            dog.tick()
        time.sleep(0.01)
    """
)


@pytest.mark.parametrize("mode", ["inline", "thread"])
def test_a_looping_process_pings_and_a_stalled_one_stops(mode: str, tmp_path: Path) -> None:
    flag = tmp_path / "stall"
    with NotifyListener() as sd:
        proc = subprocess.Popen(
            [sys.executable, "-c", _LOOP, mode, str(flag)], env=sd.env(watchdog_s=0.2), cwd=ROOT
        )
        try:
            assert sd.wait_for("READY")["STATUS"] == "looping"
            healthy = sd.collect(1.0)
            pings = sum("WATCHDOG" in m for m in healthy)
            # 0.2 s interval -> one ping per 0.1 s: about ten in a second; allow a slow CI box.
            assert 5 <= pings <= 12, healthy
            flag.touch()
            sd.wait_for("STATUS")
            after = sd.collect(1.0)
            # At most one ping already due when the hang began; then silence for 5 intervals.
            assert sum("WATCHDOG" in m for m in after) <= 1, after
            assert proc.poll() is None, "the process is alive: only its loop stalled"
        finally:
            proc.kill()
            proc.wait(timeout=10)


def test_a_child_that_inherited_the_watchdog_does_not_ping(tmp_path: Path) -> None:
    flag = tmp_path / "stall"
    with NotifyListener() as sd:
        proc = subprocess.Popen(
            [sys.executable, "-c", _LOOP, "inline", str(flag)],
            env=sd.env(watchdog_s=0.2, pid=1),
            cwd=ROOT,
        )
        try:
            sd.wait_for("READY")
            assert not any("WATCHDOG" in m for m in sd.collect(0.6))
        finally:
            proc.kill()
            proc.wait(timeout=10)
