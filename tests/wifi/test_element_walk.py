"""The compiled element walk against the pure-Python one: the same SSID, fingerprint and reason.

The pure-Python ``summarise_elements`` is the reference (and what a machine without a C compiler
runs); ``_ewalk.c`` must return exactly the same for every probe body of every real capture, for
fuzzed element lists and for random bytes, and the parser must give the same records and counts
whichever walk it uses.
"""

from __future__ import annotations

import random
import shutil
import sysconfig
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st

from scanner.errors import RecordingError
from scanner.sources.wifi import build, dot11, radiotap
from scanner.sources.wifi.fingerprint import RangeWalk, compiled_walk, summarise_elements
from scanner.sources.wifi.pcapfile import read_records
from scanner.sources.wifi.replay import read_frames

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "wifi"
FUZZ_SEED = 20261204
# Element ids the walk treats specially, drawn more often than chance would.
SPECIAL_IDS = [0, 1, 3, 45, 50, 127, 191, 221, 255]


@pytest.fixture
def walk() -> RangeWalk:
    found = compiled_walk()
    if found is None:
        pytest.skip("the compiled element walk is not built here (no C compiler or headers)")
    return found


def _captures(shared_data: Path | None) -> list[Path]:
    paths = sorted(FIXTURES.glob("*.pcap"))
    if shared_data is not None:
        paths += sorted(
            p for p in (shared_data / "wifi").rglob("*") if p.suffix in (".pcap", ".cap", ".pcapng")
        )
    return paths


def _probe_bodies(path: Path) -> Iterator[tuple[bytes, int, int]]:
    """(frame, body start, body end) of every probe request in ``path``, radiotap or plain."""
    try:
        for _ts, linktype, data in read_records(path):
            counters: Counter[str] = Counter()
            frame = dot11.parse_frame(data, linktype, 0.0, 0.0, counters)
            if frame is None or frame.subtype != "probe_req":
                continue
            # Where the parser found the body: after radiotap, the 24-byte header and an HT
            # Control field when Order is set; before an FCS flagged present.
            rt_len = data[2] | data[3] << 8 if linktype == 127 else 0
            start = rt_len + 24 + (4 if data[rt_len + 1] & 0x80 else 0)
            end = len(data) - (4 if linktype == 127 and _fcs_at_end(data) else 0)
            yield data, start, end
    except RecordingError:
        return


def _fcs_at_end(data: bytes) -> bool:
    layout, _ = radiotap.compute_layout(data)
    return layout is not None and layout[1] >= 0 and bool(data[layout[1]] & 0x10)


def test_compiled_walk_is_built_where_a_compiler_is() -> None:
    # The build hook compiles it wherever cc and Python.h exist; a silent fallback there would
    # cost the parser two thirds of its speed on distinct probe bodies.
    has_headers = Path(sysconfig.get_paths()["include"], "Python.h").is_file()
    if shutil.which("cc") is None or not has_headers:
        pytest.skip("no C compiler or Python headers: the pure-Python walk is expected")
    assert compiled_walk() is not None
    assert dot11.ELEMENT_WALK == "compiled"


def _compare_bodies(walk: RangeWalk, paths: list[Path]) -> int:
    compared = 0
    for path in paths:
        for data, start, end in _probe_bodies(path):
            assert walk(data, start, end) == summarise_elements(data[start:end]), path
            compared += 1
    return compared


def test_every_probe_body_of_every_capture(walk: RangeWalk, shared_data: Path) -> None:
    assert _compare_bodies(walk, _captures(shared_data)) > 20_000


def test_every_probe_body_of_the_fixture_captures(walk: RangeWalk) -> None:
    # These run without ../shared too.
    assert _compare_bodies(walk, _captures(None)) >= 5


@st.composite
def _element_lists(draw: st.DrawFn) -> bytes:
    """Element lists with special ids, odd lengths, and a cut or trailing byte at the end."""
    body = b""
    for _ in range(draw(st.integers(0, 12))):
        eid = draw(st.one_of(st.sampled_from(SPECIAL_IDS), st.integers(0, 255)))
        payload = draw(st.binary(max_size=40))
        if eid == 255 and payload and draw(st.booleans()):
            payload = bytes([35]) + payload[1:]  # HE capabilities
        body += build.element(eid, payload)
    tail = draw(st.sampled_from(["", "byte", "cut"]))
    if tail == "byte":
        body += bytes([draw(st.integers(0, 255))])
    elif tail == "cut" and body:
        body = body[: draw(st.integers(0, len(body) - 1))]
    return body


@seed(FUZZ_SEED)
@settings(max_examples=2_000, deadline=None)
@given(body=_element_lists(), prefix=st.binary(max_size=8), suffix=st.binary(max_size=8))
def test_fuzzed_element_lists(body: bytes, prefix: bytes, suffix: bytes) -> None:
    walk = compiled_walk()
    if walk is None:
        pytest.skip("the compiled element walk is not built here")
    data = prefix + body + suffix
    assert walk(data, len(prefix), len(prefix) + len(body)) == summarise_elements(body)


def test_random_bytes_and_out_of_range_bounds(walk: RangeWalk) -> None:
    rng = random.Random(FUZZ_SEED)
    for _ in range(20_000):
        data = bytes(
            rng.choice(SPECIAL_IDS) if rng.random() < 0.4 else rng.randrange(256)
            for _ in range(rng.randrange(64))
        )
        # Bounds behave as a slice's: clamped to the data, an empty range when reversed.
        start = rng.randint(-4, len(data) + 4)
        end = rng.randint(-4, len(data) + 4)
        expected = summarise_elements(data[max(start, 0) : max(end, 0)])
        assert walk(data, start, end) == expected, (data, start, end)
    # Invalid UTF-8 in the SSID is replaced, as bytes.decode("utf-8", "replace") does.
    body = build.element(0, b"caf\xe9\xff") + build.element(1, b"\x82")
    assert walk(body, 0, len(body))[0] == "caf\ufffd\ufffd"


@pytest.fixture
def restore_walk() -> Iterator[None]:
    yield
    dot11.use_compiled_walk(True)


def _same_records_either_walk(paths: list[Path]) -> None:
    for path in paths:
        results = []
        for compiled in (True, False):
            dot11.use_compiled_walk(compiled)
            dot11.clear_caches()
            counters: Counter[str] = Counter()
            try:
                frames = list(read_frames(path, counters))
            except RecordingError:
                frames = []
            results.append((frames, counters))
        assert results[0] == results[1], path


@pytest.mark.usefixtures("restore_walk")
def test_parser_gives_the_same_records_with_either_walk(walk: RangeWalk, shared_data: Path) -> None:
    assert dot11.ELEMENT_WALK == "compiled"
    _same_records_either_walk(_captures(shared_data))


@pytest.mark.usefixtures("restore_walk")
def test_parser_fixtures_same_records_with_either_walk(walk: RangeWalk) -> None:
    _same_records_either_walk(_captures(None))
