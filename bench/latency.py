"""Frame-to-tablet latency: a phone's probe request entering a capture daemon to the alarm drawn.

The appliance runs as systemd runs it: ``checkpoint core`` and ``checkpoint api`` as separate
processes, the tablet page in headless Chromium (Debian's ``/usr/bin/chromium`` driven by
Playwright) signed in as a guard. Three generator processes stand in for the three capture
daemons, each with its own ``SocketSender`` connection to the core, as a daemon has, and every
Wi-Fi record is raw radiotap bytes put through the real parser first, as the live source does
with what the monitor socket gives it. Each is paced by the clock and sends late at most what a
capture socket's kernel buffer would have held (``CATCH_UP_S``): the rates achieved and what was
skipped are reported. The visitor's probes come from the Wi-Fi generator, behind the crowd's
frames in the same send buffer, as one daemon sends everything its radio hears.

A sample: a visitor's phone (a new random MAC and probe body each time) probes at -40 dBm every
``VISITOR_EVERY_S``. Each frame is stamped with the wall clock as it enters the source, so the
alert's ``raised_ts`` is the stamp of the frame that raised it (checked: ``raised_by_frame``).
An observer in the page notes the wall clock when the alarm overlay shows that alert, after the
browser's next frame is drawn; the latency is that minus ``raised_ts``. The visitor then goes
quiet and the next sample waits until the alert has resolved and the page is clear again; the
core's presence and resolve windows are shortened in this run's config so a visit cycle takes
about two seconds instead of a minute (the detection thresholds are the defaults).

Two phases: idle (only the visitor) and under load (a crowd far outside the zone adding 5,000
Wi-Fi frames, 1,000 BLE adverts and 250 SDR bursts a second, as in ``bench/load.py``). The
baseline of the loaded figure is the idle one, measured in the same run. The core's input queue
while loaded is read from the runtime health it writes to the store (its depth at each write
and its high-water mark). ``python -m bench.latency --daemons-from DIR`` runs the core and API
of another source tree (an older commit) under the same generators and page, so runs of old
and new code can alternate under the same conditions.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from bench.memory import rss_mb
from scanner.observations import BleAdvert, SdrBurst, SourceEvent
from scanner.runtime.transport import SocketSender
from scanner.sources.wifi import build
from scanner.sources.wifi.dot11 import parse_frame
from scanner.sources.wifi.pcapfile import LINKTYPE_IEEE802_11_RADIOTAP

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
except ImportError:  # a machine without the test extras: run() says so instead of measuring
    PlaywrightTimeout = TimeoutError  # type: ignore[assignment,misc]

CHROMIUM = os.environ.get("CHECKPOINT_CHROMIUM", "/usr/bin/chromium")
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
# The offered load: a crowded corridor at a busy gate (as bench/load.py).
WIFI_RATE = 5000.0
BLE_RATE = 1000.0
SDR_RATE = 250.0
SLICE_S = 0.01  # a capture loop hands over what one socket read gave, about every 10 ms
# Each daemon and generator in a session of its own. With the kernel's autogroup scheduling
# (built into Debian's kernels, and on here) the CPU is shared fairly between sessions first: in
# the bench's session the core shared one session's share with Chromium, the API and the
# generators, and on a machine busy with other sessions that share was about what the core alone
# needs. On the appliance systemd gives each service a control group of its own, and the tablet
# is another device.
SESSION_PER_PROCESS = True
# The most a generator held off the CPU sends late: a monitor socket's default receive buffer
# (208 KiB, each small frame charged about 0.5-1 kB of it) holds a few hundred probe requests,
# about 0.1 s at 5,000 a second; a capture daemon away longer loses the rest in the kernel.
CATCH_UP_S = 0.1
# A phone actively scanning sends a burst of probes on each channel it visits, a few tens of
# milliseconds apart.
VISITOR_EVERY_S = 0.05
VISITOR_RSSI_DBM = -40
SAMPLE_TIMEOUT_S = 15.0
QUIET_TIMEOUT_S = 60.0
# Longer than any poll or tick period on the path (the API's store poll, the core's tick).
PHASE_SPREAD_S = 0.5
# Visits per phase: the short run's p99 is nearly its maximum; the soak's is a real p99.
SAMPLES_QUICK = 6
SAMPLES_SOAK = 100
# Shortened visit cycle (see the docstring): out of the zone 2 s after the last frame (the
# shortest absence the core accepts), then the presence and alert close within a second. The
# enter thresholds stay the defaults.
CORE_SECTION = "absent_s = 2.0\nleave_hold_s = 0.3\nresolve_after_s = 0.3\nsdr_absent_s = 1.0\n"
# Before the page's own scripts: note when each alert first arrives over the live feed, so the
# latency splits into the part up to the tablet's network and the page's own part.
_SSE_SPY = """
(() => {
  window.__sse = {};
  const Original = window.EventSource;
  function Spied(url, options) {
    const source = new Original(url, options);
    source.addEventListener("alert", (e) => {
      try {
        const payload = JSON.parse(e.data);
        const id = payload.data && payload.data.alert && payload.data.alert.id;
        if (id && !(id in window.__sse)) window.__sse[id] = Date.now();
      } catch (err) { /* not ours to judge */ }
    });
    return source;
  }
  Spied.prototype = Original.prototype;
  Spied.CONNECTING = 0; Spied.OPEN = 1; Spied.CLOSED = 2;
  window.EventSource = Spied;
})();
"""
API_SECTION = ""  # the API's defaults (its event poll included): the appliance as shipped
# The page marks an alarm drawn after the browser's next frame: requestAnimationFrame runs just
# before the frame is painted, and a task queued from it runs once the frame is out.
_OBSERVER = """
() => {
  window.__drawn = {};
  const note = () => {
    const overlay = document.getElementById("alarm");
    if (!overlay || overlay.hidden) return;
    const id = overlay.dataset.id;
    if (!id || id in window.__drawn) return;
    window.__drawn[id] = null;
    requestAnimationFrame(() => setTimeout(() => { window.__drawn[id] = Date.now(); }, 0));
  };
  new MutationObserver(note).observe(document.body, {
    attributes: true, subtree: true, childList: true, attributeFilter: ["hidden", "data-id"],
  });
  note();
}
"""


class Daemons:
    """``checkpoint core`` and ``checkpoint api`` on a fresh store in ``workdir``."""

    def __init__(self, workdir: Path, code: Path | None = None) -> None:
        self.workdir = workdir
        self.code = code
        self.socket = workdir / "core.sock"
        self.db = workdir / "checkpoint.db"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.config = workdir / "checkpoint.toml"
        self.config.write_text(
            f'[site]\nstate_dir = "{workdir}"\n'
            f'[transport]\nsocket = "{self.socket}"\n'
            f'[api]\nhost = "127.0.0.1"\nport = {self.port}\n{API_SECTION}'
            f"[core]\n{CORE_SECTION}"
        )
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.log_level: list[str] = []  # ["-v"]: the daemons log each alert (with ms times)
        self.username = "bench-guard"
        self.password = secrets.token_urlsafe(18)

    def start(self) -> None:
        from scanner.store.db import Store
        from scanner.store.users import add_user

        store = Store(self.db)
        try:
            add_user(store, self.username, "guard", time.time(), "bench", password=self.password)
        finally:
            store.close()
        for name in ("core", "api"):
            log = (self.workdir / f"{name}.log").open("wb")
            self.procs[name] = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "scanner.cli.main",
                    *self.log_level,
                    name,
                    "--config",
                    str(self.config),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(),
                cwd=str(self.code) if self.code is not None else None,
                start_new_session=SESSION_PER_PROCESS,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.procs.values()):
                raise RuntimeError(f"a daemon exited at start:\n{self.logs()}")
            if self.socket.exists() and _listening(self.url):
                return
            time.sleep(0.2)
        raise RuntimeError(f"daemons not up within 60 s:\n{self.logs()}")

    def _env(self) -> dict[str, str]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if self.code is not None:
            # Ahead of this tree's editable install (and run from there, as ``-m`` puts the
            # working directory first on the path).
            env["PYTHONPATH"] = str(self.code)
        return env

    def pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc in self.procs.items()}

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-1500:]}"
            for p in sorted(self.workdir.glob("*.log"))
        )

    def stop(self) -> None:
        # The API first, then the core, as systemd stops the target in reverse order.
        for name in ("api", "core"):
            proc = self.procs.get(name)
            if proc is None:
                continue
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc (NaN once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    # After the command name: state is field 3, utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(url: str) -> bool:
    try:
        return httpx.get(url + "healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


class Generator:
    """One capture daemon's stand-in, in a process of its own (``python -m bench.latency
    --generate KIND``): its crowd at ``rate`` a second to the core once told to load, and on
    the Wi-Fi one the visitor's probes too, through the same connection and send buffer as the
    crowd's, as one capture daemon sends everything its radio hears.

    Commands on its stdin, one a line, each answered with one JSON line on its stdout:
    ``load`` (the crowd starts), ``visit N`` (visitor N starts probing), ``leave`` (it stops;
    the answer lists the wall-clock stamps of its frames), ``count`` (records sent and
    skipped so far), ``stop``.
    """

    def __init__(self, kind: str, socket_path: Path, rate: float, env: dict[str, str]) -> None:
        self.kind = kind
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.latency",
                "--generate",
                kind,
                "--socket",
                str(socket_path),
                "--rate",
                str(rate),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            cwd=str(Path(__file__).resolve().parent.parent),
            start_new_session=SESSION_PER_PROCESS,
        )

    def ask(self, command: str) -> dict[str, Any]:
        stdin, stdout = self.proc.stdin, self.proc.stdout
        if stdin is None or stdout is None:
            raise RuntimeError(f"the {self.kind} generator has no pipes")
        stdin.write(command.encode() + b"\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.kind} generator exited (code {self.proc.poll()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError, RuntimeError, ValueError):
                self.ask("stop")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Visitor:
    """The phone whose frames raise the alarm, probing from inside the Wi-Fi generator."""

    def __init__(self, wifi: Generator) -> None:
        self.wifi = wifi
        self.sent_ts: set[float] = set()

    def visit(self, number: int) -> None:
        self.sent_ts.clear()
        self.wifi.ask(f"visit {number}")

    def leave(self) -> None:
        self.sent_ts = set(self.wifi.ask("leave")["sent_ts"])


class _Crowd(threading.Thread):
    """Inside a generator: the crowd's records, paced by the monotonic clock.

    Paced by the clock, not by a count of loop turns: after the process was held off the CPU,
    it sends what fell due meanwhile, but never more than ``CATCH_UP_S`` of it (the rest is
    counted as skipped, and the achieved rate reported): a capture daemon held off longer than
    its socket's receive buffer lasts loses the rest in the kernel, it does not deliver it late.
    """

    def __init__(
        self,
        sender: SocketSender,
        rate: float,
        make: Callable[[int, float, float], SourceEvent | None],
    ) -> None:
        super().__init__(name="generator-crowd", daemon=True)
        self.sender = sender
        self.rate = rate
        self.make = make
        self.halt = threading.Event()
        self.sent = 0
        self.skipped = 0

    def run(self) -> None:
        start = time.monotonic()
        made = 0
        most = max(1, int(self.rate * CATCH_UP_S))
        while not self.halt.is_set():
            due = int((time.monotonic() - start) * self.rate)
            if due - made > most:
                self.skipped += due - made - most
                made = due - most
            while made < due:
                record = self.make(made, time.time(), time.monotonic())
                made += 1
                if record is not None:
                    self.sender.sink(record)
                    self.sent += 1
            self.halt.wait(SLICE_S)


class _Probing(threading.Thread):
    """Inside the Wi-Fi generator: visitor ``number`` probing every ``VISITOR_EVERY_S``."""

    def __init__(self, sender: SocketSender, number: int) -> None:
        super().__init__(name="generator-visitor", daemon=True)
        self.sender = sender
        self.halt = threading.Event()
        self.sent_ts: list[float] = []
        self.counters: Counter[str] = Counter()
        self.header = build.radiotap(rssi_dbm=VISITOR_RSSI_DBM, freq_mhz=2437)
        self.mac = f"5a:{(number >> 8) & 0xFF:02x}:{number & 0xFF:02x}:00:be:01"
        # A different phone each time: its own vendor element, so its own fingerprint.
        self.body = build.probe_request_body(
            "", vendor=[b"\x00\x17\xf2\x0a" + number.to_bytes(2, "big")]
        )

    def run(self) -> None:
        seq = 0
        while not self.halt.is_set():
            frame = self.header + build.probe_request(self.mac, seq, self.body)
            ts = time.time()
            parsed = parse_frame(
                frame, LINKTYPE_IEEE802_11_RADIOTAP, ts, time.monotonic(), self.counters
            )
            if parsed is not None:
                self.sent_ts.append(ts)
                self.sender.sink(parsed)
            seq = (seq + 1) & 0xFFF
            self.halt.wait(VISITOR_EVERY_S)


def generate(kind: str, socket_path: Path, rate: float) -> None:
    """A generator process's life (see ``Generator``): commands on stdin, answers on stdout."""
    makers = {"wifi": _wifi_crowd, "ble": _ble_crowd, "sdr": _sdr_crowd}
    sender = SocketSender(socket_path)
    sender.start()
    crowd = _Crowd(sender, rate, makers[kind]())
    probing: _Probing | None = None
    out = sys.stdout
    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        answer: dict[str, Any] = {}
        if command == "load":
            crowd.start()
        elif command == "visit":
            probing = _Probing(sender, int(arg))
            probing.start()
        elif command == "leave" and probing is not None:
            probing.halt.set()
            probing.join(timeout=5)
            answer["sent_ts"] = probing.sent_ts
            probing = None
        elif command == "count":
            answer = {
                "sent": crowd.sent,
                "skipped": crowd.skipped,
                "dropped": sender.counters["dropped_buffer_full"],
                "mono": time.monotonic(),
            }
        out.write(json.dumps(answer) + "\n")
        out.flush()
        if command == "stop":
            break
    crowd.halt.set()
    if crowd.is_alive():
        crowd.join(timeout=5)
    sender.close()


def _wifi_crowd() -> Callable[[int, float, float], SourceEvent | None]:
    bodies = [
        build.probe_request_body("", vendor=[bytes([0x00, 0x50, 0xF2, 8, n, 0])]) for n in range(40)
    ]
    headers = {rssi: build.radiotap(rssi_dbm=rssi, freq_mhz=2437) for rssi in range(-95, -65)}
    counters: Counter[str] = Counter()

    def make(i: int, wall: float, mono: float) -> SourceEvent | None:
        k = i // 20  # 250 new MACs a second at 5,000 frames a second
        mac = f"da:{(k >> 16) & 0xFF:02x}:{(k >> 8) & 0xFF:02x}:{k & 0xFF:02x}:00:01"
        frame = headers[-90 + (k % 25)] + build.probe_request(mac, i & 0xFFF, bodies[k % 40])
        return parse_frame(frame, LINKTYPE_IEEE802_11_RADIOTAP, wall, mono, counters)

    return make


def _ble_crowd() -> Callable[[int, float, float], SourceEvent | None]:
    def make(i: int, wall: float, mono: float) -> SourceEvent | None:
        k = i // 10
        return BleAdvert(
            ts=wall,
            mono=mono,
            address=f"4{k % 4:X}:{(k >> 16) & 0xFF:02X}:{(k >> 8) & 0xFF:02X}:{k & 0xFF:02X}:00:01",
            address_type="random",
            rssi_dbm=-92 + (k % 18),
            manufacturer_data={76: bytes.fromhex("1005031c5a0b2e")},
        )

    return make


def _sdr_crowd() -> Callable[[int, float, float], SourceEvent | None]:
    def make(i: int, wall: float, mono: float) -> SourceEvent | None:
        snr = 6.0 + (i % 9)  # far phones: well under the zone's enter level
        return SdrBurst(
            ts=wall,
            mono=mono,
            t_end=wall + 0.000577,
            freq_mhz=897.4 + (i % 7) * 0.2,
            bandwidth_khz=200.0,
            power_dbfs=-60.0 + snr,
            snr_db=snr,
            band="E-GSM-900 UL",
            gain_db=33.8,
        )

    return make


class Lateness(threading.Thread):
    """How late a 5 ms sleep wakes up in this process: the machine's scheduling delay (and this
    process's GIL), the floor under every latency measured at the same time."""

    def __init__(self) -> None:
        super().__init__(name="bench-lateness", daemon=True)
        self.halt = threading.Event()
        self.late_ms: list[float] = []

    def run(self) -> None:
        while not self.halt.is_set():
            t0 = time.perf_counter()
            time.sleep(0.005)
            self.late_ms.append((time.perf_counter() - t0 - 0.005) * 1000.0)


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@contextlib.contextmanager
def _browser(url: str, username: str, password: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            reply = context.request.post(
                url + "api/v1/session", data={"username": username, "password": password}
            )
            if not reply.ok:
                raise RuntimeError(f"login failed: {reply.status} {reply.text()[:200]}")
            context.add_init_script(_SSE_SPY)
            page = context.new_page()
            page.goto(url)
            page.wait_for_function("() => document.body.dataset.conn === 'live'", timeout=30_000)
            page.evaluate(_OBSERVER)
            yield page
        finally:
            browser.close()


def _sample(
    page: Any,
    visitor: Visitor,
    number: int,
    api: httpx.Client,
    rng: random.Random,
    seen: set[str],
) -> dict[str, Any] | None:
    """One visit: latency in ms from the raising frame to the drawn alarm, and checks.

    None when no new alarm was drawn within ``SAMPLE_TIMEOUT_S`` (counted as missed).
    """
    # The previous visit ended when the page left the alarm, which it does right after one of
    # the API's polls of the store: starting at once would put every alert at the same point
    # of the poll cycle. A phone arrives at any moment, so the start is drawn at random.
    time.sleep(rng.uniform(0.0, PHASE_SPREAD_S))
    visitor.visit(number)
    try:
        handle = page.wait_for_function(
            """seen => {
              const done = Object.entries(window.__drawn)
                .filter(([id, t]) => t !== null && !seen.includes(id));
              return done.length ? done : null;
            }""",
            arg=sorted(seen),
            timeout=SAMPLE_TIMEOUT_S * 1000,
            polling=20,
        )
    except PlaywrightTimeout:
        return None
    finally:
        visitor.leave()
    drawn: list[tuple[str, int]] = handle.json_value()
    alert_id, drawn_ms = drawn[0]
    seen.add(alert_id)
    reply = api.get(f"api/v1/alerts/{alert_id}")
    reply.raise_for_status()
    detail = reply.json()
    raised_ts = float(detail["alert"]["raised_ts"])
    by_frame = raised_ts in visitor.sent_ts
    arrived_ms = page.evaluate("id => window.__sse[id] ?? null", alert_id)
    # The page latches an alarm until a guard acknowledges it (also once the phone has left):
    # acknowledge it as the tablet's button does, so the page can go quiet for the next visit.
    api.post(f"api/v1/alerts/{alert_id}/ack", json={"note": "latency bench"}).raise_for_status()
    _wait_quiet(page)
    return {
        "alert": alert_id,
        "raised_ts": raised_ts,
        "ms": drawn_ms - raised_ts * 1000.0,
        "feed_ms": arrived_ms - raised_ts * 1000.0 if arrived_ms is not None else math.nan,
        "raised_by_frame": by_frame,
    }


def _wait_quiet(page: Any) -> bool:
    """Back to quiet before the next visit: the alert resolves and the page leaves the alarm.

    False when it did not within ``QUIET_TIMEOUT_S`` (a starved core can take that long); the
    next visit then still waits for an alert id not seen before.
    """
    try:
        page.wait_for_function(
            "() => document.body.dataset.state !== 'alarm'", timeout=QUIET_TIMEOUT_S * 1000
        )
    except PlaywrightTimeout:
        return False
    finally:
        page.evaluate("() => { window.__drawn = {}; }")
    return True


def _phase(
    page: Any, visitor: Visitor, samples: int, first: int, api: httpx.Client
) -> dict[str, Any]:
    rng = random.Random(first)
    seen: set[str] = set()
    tried = [_sample(page, visitor, first + i, api, rng, seen) for i in range(samples)]
    results = [r for r in tried if r is not None]
    if not results:
        raise RuntimeError(f"no alarm was drawn in {samples} visits")
    ms = [r["ms"] for r in results]
    feed = [r["feed_ms"] for r in results if not math.isnan(r["feed_ms"])]
    page_ms = [r["ms"] - r["feed_ms"] for r in results if not math.isnan(r["feed_ms"])]
    return {
        "samples": len(ms),
        "missed": len(tried) - len(results),
        "p50_ms": round(percentile(ms, 0.5), 1),
        "p99_ms": round(percentile(ms, 0.99), 1),
        "max_ms": round(max(ms), 1),
        # Up to the alert's arrival on the page's live feed (capture, socket, core, store,
        # the core's word to the API and its read of the store, SSE), and from there to the
        # drawn alarm.
        "to_feed_p50_ms": round(percentile(feed, 0.5), 1),
        "to_feed_p99_ms": round(percentile(feed, 0.99), 1),
        "page_p50_ms": round(percentile(page_ms, 0.5), 1),
        "page_p99_ms": round(percentile(page_ms, 0.99), 1),
        "raised_by_frame": sum(1 for r in results if r["raised_by_frame"]),
    }


class QueueWatch(threading.Thread):
    """The core's input queue while loaded, from the runtime health the core writes to the
    store (every ``HEALTH_COUNTERS_EVERY_S`` while it moves): its depth at each write, and the
    deepest it has been (a high-water mark the core keeps, where the core reports one)."""

    def __init__(self, db: Path) -> None:
        super().__init__(name="bench-queue", daemon=True)
        self.db = db
        self.halt = threading.Event()
        self.depths: list[int] = []
        self.deepest: int | None = None
        self.dropped: int | None = None

    def run(self) -> None:
        from scanner.store.db import Store

        store = Store(self.db)
        last = None
        try:
            while not self.halt.wait(0.5):
                health = store.get_setting("runtime_health", {})
                queue = _core_queue(health)
                if queue is None or queue.get("updated_ts") == last:
                    continue
                last = queue.get("updated_ts")
                self.depths.append(int(queue.get("depth", 0)))
                if "deepest" in queue:
                    self.deepest = int(queue["deepest"])
                self.dropped = int(queue.get("dropped", 0))
        finally:
            store.close()


def _core_queue(health: object) -> dict[str, Any] | None:
    """The core daemon's queue figures from the store's runtime health (with its write time)."""
    if not isinstance(health, dict):
        return None
    core = health.get("core")
    if not isinstance(core, dict) or not isinstance(core.get("queue"), dict):
        return None
    return {**core["queue"], "updated_ts": core.get("updated_ts")}


def run(
    quick: bool, samples: int | None = None, daemons_from: Path | None = None
) -> dict[str, Any]:
    """Start the daemons, the generators and the browser, then time visits idle and under load.

    ``samples``: visits per phase (default by ``quick``). ``daemons_from``: a source tree (an
    older commit, say) whose ``checkpoint core`` and ``checkpoint api`` are run instead of this
    one's, for a baseline under the same conditions; the generators and the page's checks stay
    this tree's.
    """
    if not Path(CHROMIUM).exists():
        return {"note": f"no Chromium at {CHROMIUM}", "loaded_p99_ms": None}
    if importlib.util.find_spec("playwright") is None:
        return {"note": "Playwright is not installed (the [test] extra)", "loaded_p99_ms": None}
    if samples is None:
        samples = SAMPLES_QUICK if quick else SAMPLES_SOAK
    workdir = Path(tempfile.mkdtemp(prefix="checkpoint-latency-", dir="/tmp"))
    daemons = Daemons(workdir, daemons_from)
    generators: dict[str, Generator] = {}
    watch = QueueWatch(daemons.db)
    try:
        daemons.start()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        for kind, rate in (("wifi", WIFI_RATE), ("ble", BLE_RATE), ("sdr", SDR_RATE)):
            generators[kind] = Generator(kind, daemons.socket, rate, env)
        for generator in generators.values():
            generator.ask("count")  # up and connected before the first visit
        visitor = Visitor(generators["wifi"])
        with (
            _browser(daemons.url, daemons.username, daemons.password) as page,
            httpx.Client(base_url=daemons.url, timeout=10) as api,
        ):
            api.post(
                "api/v1/session", json={"username": daemons.username, "password": daemons.password}
            ).raise_for_status()
            # The page's first alarm also lays out the overlay and starts the siren's audio
            # for the first time: reported on its own, not mixed into the percentiles.
            first = _sample(page, visitor, 9999, api, random.Random(0), set())
            idle = _phase(page, visitor, samples, 0, api)
            for generator in generators.values():
                generator.ask("load")
            time.sleep(2.0)  # the crowd's first MACs and addresses reach the trackers
            started = time.monotonic()
            before = {kind: g.ask("count") for kind, g in generators.items()}
            cpu_before = {name: cpu_seconds(pid) for name, pid in daemons.pids().items()}
            cpu_before |= {kind: cpu_seconds(g.proc.pid) for kind, g in generators.items()}
            cpu_before["bench"] = time.process_time()
            lateness = Lateness()
            lateness.start()
            watch.start()
            load_before = os.getloadavg()[0]
            loaded = _phase(page, visitor, samples, 1000, api)
            load_after = os.getloadavg()[0]
            lateness.halt.set()
            lateness.join()
            watch.halt.set()
            watch.join()
            loaded_s = time.monotonic() - started
            after = {kind: g.ask("count") for kind, g in generators.items()}
            cpu = {name: cpu_seconds(pid) for name, pid in daemons.pids().items()}
            cpu |= {kind: cpu_seconds(g.proc.pid) for kind, g in generators.items()}
            cpu["bench"] = time.process_time()
            # Share of one core each process used while loaded: how near the core is to full.
            cpu_share = {k: round((cpu[k] - cpu_before[k]) / loaded_s, 2) for k in cpu}
            # The daemons' size after minutes of a churning crowd (250 new MACs and 100 new
            # BLE addresses a second): the trackers near their caps, unlike a quiet replay.
            rss = {name: round(rss_mb(pid), 1) for name, pid in daemons.pids().items()}
        # Each generator's own count over its own clock between the two questions.
        achieved = {
            kind: round(
                (after[kind]["sent"] - before[kind]["sent"])
                / (after[kind]["mono"] - before[kind]["mono"])
            )
            for kind in generators
        }
        result: dict[str, Any] = {
            "idle": idle,
            "loaded": loaded,
            "first_alarm_ms": round(first["ms"], 1) if first is not None else None,
            "idle_p50_ms": idle["p50_ms"],
            "idle_p99_ms": idle["p99_ms"],
            "loaded_p50_ms": loaded["p50_ms"],
            "loaded_p99_ms": loaded["p99_ms"],
            "ratio_loaded_vs_idle_p99": round(loaded["p99_ms"] / idle["p99_ms"], 2)
            if idle["p99_ms"] > 0
            else None,
            "offered_per_s": round(WIFI_RATE + BLE_RATE + SDR_RATE),
            "loaded_sent_per_s": achieved,
            # Records a generator did not send because it was held off the CPU longer than
            # ``CATCH_UP_S`` (what a capture daemon's kernel buffer would have dropped).
            "loaded_skipped": {
                kind: after[kind]["skipped"] - before[kind]["skipped"] for kind in generators
            },
            "sender_dropped": sum(a["dropped"] for a in after.values()),
            "loaded_cpu_share": cpu_share,
            "loaded_rss_mb": rss,
            "core_queue_depth_p50": round(percentile([float(d) for d in watch.depths], 0.5)),
            "core_queue_depth_max": max(watch.depths, default=None),
            "core_queue_deepest": watch.deepest,
            "core_queue_dropped": watch.dropped,
            "load_average_1min": [round(load_before, 1), round(load_after, 1)],
            "loaded_wakeup_late_p99_ms": round(percentile(lateness.late_ms, 0.99), 1),
            "daemons_from": str(daemons_from) if daemons_from is not None else None,
            "session_per_process": SESSION_PER_PROCESS,
        }
        return result
    finally:
        for generator in generators.values():
            generator.stop()
        daemons.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.latency``: one run printed as JSON (or a generator process)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__)
    parser.add_argument("--samples", type=int, default=SAMPLES_QUICK, help="visits per phase")
    parser.add_argument(
        "--daemons-from",
        type=Path,
        help="run the core and API daemons from this source tree (a baseline's checkout)",
    )
    parser.add_argument(
        "--one-session",
        action="store_true",
        help="keep the daemons and generators in the bench's session (see SESSION_PER_PROCESS)",
    )
    parser.add_argument("--generate", choices=("wifi", "ble", "sdr"), help=argparse.SUPPRESS)
    parser.add_argument("--socket", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.generate is not None:
        generate(args.generate, args.socket, args.rate)
        return 0
    if args.one_session:
        global SESSION_PER_PROCESS  # noqa: PLW0603 - a run's setting, before anything starts
        SESSION_PER_PROCESS = False
    result = run(quick=True, samples=args.samples, daemons_from=args.daemons_from)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
