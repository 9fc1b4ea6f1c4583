"""Wi-Fi frames parsed per second: our parser vs scapy's dissector vs ``tshark -T fields``.

One generated pcap of probe requests (radiotap, link type 127) from a crowd of simulated phones:
each phone has its own capabilities and remembered networks, changes its random MAC every few
bursts, keeps its sequence counter running, and probes on channels 1/6/11. All three parsers
read the same file in the same run:

* ours: ``read_frames`` over the whole file (file reading + parsing to ``WifiFrame``), best of
  three runs, each starting with empty caches;
* scapy: ``RadioTap(bytes)`` over the first ``SCAPY_FRAMES`` frames (scapy is slow enough that
  the whole file would dominate the run), scaled per frame;
* tshark: ``tshark -r FILE -T fields -e ...`` on the whole file, best wall time of two runs,
  minus the wall time of the same command on a one-frame file (its start-up: loading
  dissectors), so the ratio compares per-frame throughput. The ratio including start-up is
  reported too.

Our parser caches per distinct radiotap layout and per distinct probe body; the generated crowd
repeats bodies the way real phones do (each phone a few SSIDs x channels), and the number of
distinct bodies is reported (``distinct_probe_bodies``, about 3% of the frames) so the cache's
share of the result is visible.

The same run also measures the parser without the body cache's help: a second capture, the same
crowd and the same random stream, where every probe request carries one more vendor element
holding the frame's number (as real probes carry WPS UUIDs or nonces), so every body is distinct
and every frame takes the element walk. Ours, tshark and scapy are timed on it the same way, and
``ours_uncached_fps``, ``ratio_vs_tshark_uncached`` and ``ratio_vs_scapy_uncached`` report it
next to the cached figures. The parser itself is untouched: a switch on its path would cost the
live capture a check per frame.

The element walk runs compiled where the C extension was built (``element_walk`` says which);
the uncached capture is also timed with the pure-Python walk (``ours_uncached_python_fps``), the
figure for a machine built without a C compiler.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from scanner.sources.wifi import build, dot11
from scanner.sources.wifi.dot11 import clear_caches
from scanner.sources.wifi.recorder import PcapWriter
from scanner.sources.wifi.replay import read_frames

FRAMES = 100_000
SCAPY_FRAMES = 5_000
SEED = 20_240_321
# Enough phones that about 9% of probe bodies are distinct, as in the Brno lab capture (1,841
# distinct bodies in 20,996 probe requests).
PHONES = 4_000
TSHARK_FIELDS = (
    "wlan.sa",
    "wlan.seq",
    "radiotap.dbm_antsignal",
    "radiotap.channel.freq",
    "wlan.ssid",
)
# The per-frame vendor element of the uncached capture: an OUI and type of our own choosing, then
# the frame number.
_UNIQUE_VENDOR_PREFIX = b"\x02\x00\x00\x01"
_NETWORKS = ["", "", "", "eduroam", "HomeNet", "Pixel_42", "CoffeeShop", "AndroidAP", "TP-Link"]


def _phone_profiles(rng: random.Random, count: int) -> list[list[bytes]]:
    """Probe bodies per phone: the same capabilities, a few different SSIDs each."""
    profiles = []
    for _ in range(count):
        ht = bytearray(build.DEFAULT_HT_CAPS)
        ht[0] = rng.choice([0x2D, 0x6F, 0xEF, 0x21])
        ht[3] = rng.choice([0xFF, 0x00])
        vendors = rng.sample(
            [b"\x00\x50\xf2\x08\x00\x10\x00", b"\x00\x10\x18\x02\x00\x00\x1c", b"\x00\x17\xf2\x0a"],
            k=rng.randint(0, 2),
        )
        ext_caps = bytes([0, 0, rng.choice([8, 10]), 4, 0, 0, 0, 0x40])
        ssids = rng.sample(_NETWORKS, k=rng.randint(1, 3))
        profiles.append(
            [
                build.probe_request_body(
                    ssid, ht_caps=bytes(ht), ext_caps=ext_caps, vendor=vendors, channel=ch
                )
                for ssid in ssids
                for ch in (1, 6, 11)
            ]
        )
    return profiles


def write_capture(
    path: Path, frames: int = FRAMES, seed: int = SEED, *, unique_bodies: bool = False
) -> int:
    """The benchmark's pcap: ``frames`` probe requests from a crowd of phones.

    With ``unique_bodies`` every probe body also ends in a vendor element holding the frame's
    number, so no two bodies are equal; the random stream, and so the crowd, is the same.
    Returns how many distinct probe bodies it holds (what the parser's caches see).
    """
    rng = random.Random(seed)
    profiles = _phone_profiles(rng, PHONES)
    seqs = [rng.randrange(4096) for _ in profiles]
    macs = ["" for _ in profiles]
    ts = 1_711_000_000.0
    written = 0
    distinct: set[bytes] = set()
    with PcapWriter(path) as writer:
        while written < frames:
            phone = rng.randrange(len(profiles))
            if not macs[phone] or rng.random() < 0.3:
                macs[phone] = ":".join(f"{rng.randrange(256):02x}" for _ in range(6))
                macs[phone] = f"{(int(macs[phone][:2], 16) | 0x02) & 0xFE:02x}" + macs[phone][2:]
            bodies = profiles[phone]
            body = bodies[rng.randrange(len(bodies))]
            freq = rng.choice((2412, 2437, 2462))
            rt = build.radiotap(rssi_dbm=rng.randint(-95, -30), freq_mhz=freq, tsft=written)
            for _ in range(min(rng.randint(2, 4), frames - written)):
                seqs[phone] = (seqs[phone] + 1) & 0xFFF
                sent = body
                if unique_bodies:
                    sent += build.element(
                        221, _UNIQUE_VENDOR_PREFIX + written.to_bytes(4, "little")
                    )
                distinct.add(sent)
                writer.write(ts, rt + build.probe_request(macs[phone], seqs[phone], sent))
                ts += 0.002
                written += 1
            ts += rng.random() * 0.05
    return len(distinct)


def _ours(path: Path) -> tuple[float, int]:
    best = float("inf")
    frames = 0
    for _ in range(3):
        clear_caches()
        counters: Counter[str] = Counter()
        t0 = time.perf_counter()
        frames = 0
        for _frame in read_frames(path, counters):
            frames += 1
        best = min(best, time.perf_counter() - t0)
    return best, frames


def _scapy(path: Path, limit: int) -> tuple[float, int]:
    from scapy.layers.dot11 import RadioTap
    from scapy.utils import RawPcapReader

    datas = []
    for data, _meta in RawPcapReader(str(path)):
        datas.append(data)
        if len(datas) >= limit:
            break
    t0 = time.perf_counter()
    for data in datas:
        RadioTap(data)
    return time.perf_counter() - t0, len(datas)


def _tshark_seconds(tshark: str, path: Path) -> float:
    cmd = [tshark, "-n", "-r", str(path), "-T", "fields"]
    for name in TSHARK_FIELDS:
        cmd += ["-e", name]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def run(quick: bool) -> dict[str, Any]:
    """Generate the captures, time the three parsers on them, return rates and ratios."""
    # quick halves the capture (tshark's two runs on each file are most of the time) and trims
    # scapy (600 frames/s: its share of the run grows fastest); the rates stay per frame.
    scapy_frames = 1_000 if quick else SCAPY_FRAMES
    frames_total = FRAMES // 2 if quick else FRAMES
    with tempfile.TemporaryDirectory(prefix="wifi-bench-") as tmp:
        path = Path(tmp) / "probes.pcap"
        distinct = write_capture(path, frames_total)
        ours_s, frames = _ours(path)
        scapy_s, scapy_n = _scapy(path, scapy_frames)
        unique = Path(tmp) / "probes-unique.pcap"
        unique_distinct = write_capture(unique, frames_total, unique_bodies=True)
        ours_u_s, frames_u = _ours(unique)
        scapy_u_s, scapy_u_n = _scapy(unique, scapy_frames)
        ours_u_fps = frames_u / ours_u_s
        walk = dot11.ELEMENT_WALK
        if walk == "compiled":
            dot11.use_compiled_walk(False)
            try:
                ours_py_s, _ = _ours(unique)
            finally:
                dot11.use_compiled_walk(True)
        else:
            ours_py_s = ours_u_s
        ours_py_fps = frames_u / ours_py_s
        result: dict[str, Any] = {
            "frames": frames,
            "distinct_probe_bodies": distinct,
            "ours_fps": round(frames / ours_s),
            "scapy_fps": round(scapy_n / scapy_s),
            "scapy_frames_timed": scapy_n,
            "ratio_vs_scapy": round((frames / ours_s) / (scapy_n / scapy_s), 1),
            "uncached_distinct_probe_bodies": unique_distinct,
            "ours_uncached_fps": round(ours_u_fps),
            "scapy_uncached_fps": round(scapy_u_n / scapy_u_s),
            "ratio_vs_scapy_uncached": round(ours_u_fps / (scapy_u_n / scapy_u_s), 1),
            "element_walk": walk,
            "ours_uncached_python_fps": round(ours_py_fps),
        }
        tshark = shutil.which("tshark")
        if tshark is None:
            result.update(
                tshark_fps=None,
                ratio_vs_tshark=None,
                tshark_uncached_fps=None,
                ratio_vs_tshark_uncached=None,
                ratio_vs_tshark_uncached_python=None,
                note="tshark not installed",
            )
            return result
        one = Path(tmp) / "one.pcap"
        write_capture(one, frames=1)
        # Best of two (one in the quick run), as ours is best of three: a busy machine slows
        # whichever runs then.
        runs = 1 if quick else 2
        startup_s = min(_tshark_seconds(tshark, one) for _ in range(2))
        total_s = min(_tshark_seconds(tshark, path) for _ in range(runs))
        per_frame_s = max(total_s - startup_s, 1e-9)
        result.update(
            tshark_fps=round(frames / per_frame_s),
            tshark_fps_with_startup=round(frames / total_s),
            tshark_startup_s=round(startup_s, 3),
            ratio_vs_tshark=round((frames / ours_s) / (frames / per_frame_s), 1),
            ratio_vs_tshark_with_startup=round((frames / ours_s) / (frames / total_s), 1),
        )
        # tshark has no body cache to defeat, but it reads the uncached capture too: its frames
        # are nine bytes longer, and both sides should pay for that.
        total_u_s = min(_tshark_seconds(tshark, unique) for _ in range(runs))
        per_frame_u_s = max(total_u_s - startup_s, 1e-9)
        result.update(
            tshark_uncached_fps=round(frames_u / per_frame_u_s),
            ratio_vs_tshark_uncached=round(ours_u_fps / (frames_u / per_frame_u_s), 1),
            ratio_vs_tshark_uncached_python=round(ours_py_fps / (frames_u / per_frame_u_s), 1),
        )
        return result
