"""SDR bursts with their IQ windows through the daemon socket, against bursts without IQ.

The live SDR capture sends each uplink burst with the IQ around it (about 22 KB: 2 ms each side
of a 577 us GSM burst at 2.4 MS/s, two bytes a sample) so the core can keep it as evidence. This
measures what that costs through the real transport (``SocketSender`` -> SEQPACKET ->
``SocketReceiver`` -> the core's queue), in CPU seconds of this process per burst (both ends run
here, as the capture daemon and the core do on one Pi), timed with the process CPU clock:

* ``ratio_iq_vs_plain``: a burst with IQ as the binary message the sender now writes, against
  the same burst without IQ;
* ``ratio_hex_vs_plain``: the same with the IQ as hex inside the JSON line (the earlier form);
* ``cpu_share_at_250_per_s_*``: the share of one core of this machine that 250 bursts a second
  cost (a busy cell: a handset's GSM bursts plus LTE's at every dwell's start), each form.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from scanner.observations import SdrBurst
from scanner.runtime import transport
from scanner.runtime.transport import EventQueue, SocketReceiver, SocketSender
from scanner.runtime.transport.codec import encode_line
from scanner.sources.sdr.iq_window import window_pair

RATE = 2.4e6
BURSTS_PER_S = 250.0
BURSTS = 4_000


def _bursts(n: int, iq: bool) -> list[SdrBurst]:
    rng = np.random.default_rng(7)
    out: list[SdrBurst] = []
    for i in range(n):
        t = 1.7e9 + i * 0.004
        burst = SdrBurst(
            ts=t,
            mono=100.0 + i * 0.004,
            t_end=t + 0.000577,
            freq_mhz=902.4,
            bandwidth_khz=200.0,
            power_dbfs=-30.0,
            snr_db=20.0,
            band="E-GSM-900 UL",
        )
        if iq:
            raw = rng.integers(0, 256, size=2 * int(RATE * 0.006), dtype=np.uint8)
            pair = window_pair(raw, "cu8", RATE, 902.0e6, t - 0.003, burst)
            if pair is not None:
                burst = dataclasses.replace(burst, iq_meta=pair[0], iq=pair[1])
        out.append(burst)
    return out


def _through(bursts: list[SdrBurst]) -> float:
    """CPU seconds of this process to carry ``bursts`` from the sender's sink to the queue."""
    folder = Path(tempfile.mkdtemp(prefix="cp-wire-", dir="/tmp"))
    events = EventQueue(len(bursts) + 16)
    receiver = SocketReceiver(folder / "core.sock", events)
    receiver.start()
    sender = SocketSender(folder / "core.sock", buffer_size=len(bursts) + 16)
    sender.start()
    try:
        deadline = time.monotonic() + 10
        while not sender.connected and time.monotonic() < deadline:
            time.sleep(0.01)
        cpu0 = time.process_time()
        for burst in bursts:
            sender.sink(burst)
        for _ in bursts:
            if events.get(timeout=10) is None:
                raise RuntimeError("the transport lost bursts under the bench")
        return time.process_time() - cpu0
    finally:
        sender.close()
        receiver.close()
        shutil.rmtree(folder, ignore_errors=True)


def _as_hex_lines(run: Callable[[], float]) -> float:
    """``run`` with the sender writing every record as its JSON line (IQ as hex)."""
    original = getattr(transport, "encode_message")  # noqa: B009 - not re-exported by name
    setattr(transport, "encode_message", encode_line)  # noqa: B010
    try:
        return run()
    finally:
        setattr(transport, "encode_message", original)  # noqa: B010


def run(quick: bool) -> dict[str, Any]:
    n = BURSTS // 4 if quick else BURSTS
    plain = _bursts(n, iq=False)
    with_iq = _bursts(n, iq=True)
    plain_s = _through(plain)
    binary_s = _through(with_iq)
    hex_s = _as_hex_lines(lambda: _through(with_iq))
    per = {k: v / n for k, v in (("plain", plain_s), ("binary", binary_s), ("hex", hex_s))}
    return {
        "bursts": n,
        "iq_bytes": len(with_iq[0].iq),
        "us_per_burst_plain": round(per["plain"] * 1e6, 1),
        "us_per_burst_iq": round(per["binary"] * 1e6, 1),
        "us_per_burst_hex": round(per["hex"] * 1e6, 1),
        "ratio_iq_vs_plain": round(per["binary"] / per["plain"], 2),
        "ratio_hex_vs_plain": round(per["hex"] / per["plain"], 2),
        "cpu_share_at_250_per_s_plain": round(per["plain"] * BURSTS_PER_S, 4),
        "cpu_share_at_250_per_s_iq": round(per["binary"] * BURSTS_PER_S, 4),
        "cpu_share_at_250_per_s_hex": round(per["hex"] * BURSTS_PER_S, 4),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=False), indent=1))
