"""Issue 9, hostile recordings: seeded fuzzing of the readers the parsers' own tests do not fuzz.

Already fuzzed elsewhere (not repeated): the 802.11 frame parser (tests/wifi), the BLE capture
importers and Continuity parsers (tests/ble), the runtime's socket codec (tests/runtime). Here:

* Wi-Fi pcap/pcapng *files* mutated byte by byte and cut short, through the replay reader;
* ``ble.jsonl`` lines whose fields carry any JSON value at all, through the line parser and on
  into the classifier;
* SigMF recordings with fuzzed metadata (datatypes, rates, capture segments, datetimes) and
  random sample bytes (NaN and infinities included for cf32), and rtl_433-style ``.cu8`` names,
  through the reader and the burst detector.

A bad input may only ever be skipped and counted, or refused as a whole with ``RecordingError``;
any other exception is a crash of a capture daemon or of ``checkpoint inspect``. Each run prints
its seed (set ``CHECKPOINT_FUZZ_SEED`` to repeat one); the example counts keep it to seconds.
Inputs the fuzzing once found to crash are kept as explicit cases at the end, each asserting
the clear refusal or counted drop that replaced the crash; the strategies include them too.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from scanner.errors import RecordingError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SEED = int(os.environ.get("CHECKPOINT_FUZZ_SEED", random.randrange(1 << 30)))
FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)


@pytest.fixture(autouse=True)
def _say_seed() -> None:
    print(f"fuzz seed {SEED} (set CHECKPOINT_FUZZ_SEED to repeat)")


# -- Wi-Fi capture files ------------------------------------------------------------------------
def test_mutated_wifi_capture_files_are_read_or_refused(tmp_path: Path) -> None:
    from scanner.sources.wifi.replay import read_frames

    rng = random.Random(SEED)
    sources = sorted((FIXTURES / "wifi").glob("*.pcap*"))
    assert sources
    outcomes: Counter[str] = Counter()
    for i in range(400):
        original = rng.choice(sources).read_bytes()
        data = bytearray(original)
        for _ in range(rng.randint(1, 12)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            del data[rng.randrange(len(data)) :]
        path = tmp_path / f"f{i}.pcap"
        path.write_bytes(bytes(data))
        counters: Counter[str] = Counter()
        try:
            frames = list(read_frames(path, counters))
        except RecordingError:
            outcomes["refused"] += 1
            continue
        outcomes["read"] += 1
        for frame in frames:
            assert frame.mac and isinstance(frame.seq, int)
    assert outcomes["read"] > 0
    print(dict(outcomes))


# -- ble.jsonl lines ----------------------------------------------------------------------------
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=24),
    st.sampled_from(["1005031c5a0b2e", "zz", "", "4C:11:22:33:44:55", "random", "public"]),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
_FIELDS = [
    "ts", "address", "address_type", "rssi", "tx_power", "local_name", "manufacturer_data",
    "service_data", "service_uuids", "adapter",
]  # fmt: skip
_GOOD_LINE: dict[str, Any] = {
    "ts": 1764000000.125, "address": "4C:11:22:33:44:55", "address_type": "random", "rssi": -52,
    "tx_power": None, "local_name": None, "manufacturer_data": {"76": "1005031c5a0b2e"},
    "service_data": {"0000fd6f-0000-1000-8000-00805f9b34fb": "00ff"}, "service_uuids": [],
    "adapter": "hci0",
}  # fmt: skip


@FUZZ
@seed(SEED)
@given(
    overrides=st.dictionaries(st.sampled_from([*_FIELDS, "extra"]), _VALUES, max_size=5),
    address_type=st.one_of(_VALUES, st.just("random")),
)
def test_any_json_in_a_ble_line_is_parsed_or_counted(
    overrides: dict[str, Any], address_type: Any
) -> None:
    from scanner.sources.ble.classify import classify
    from scanner.sources.ble.replay import parse_line

    line = {**_GOOD_LINE, **overrides}
    line["address_type"] = address_type if "address_type" in overrides else "random"
    counters: Counter[str] = Counter()
    advert = parse_line(json.dumps(line), counters)
    if advert is None:
        assert counters["malformed"] == 1
        return
    assert advert.address_type in ("public", "random")
    result = classify(advert)
    assert result.kind


# -- SigMF and .cu8 -----------------------------------------------------------------------------
def _read(path: Path) -> int:
    from scanner.sources.sdr.replay import read_bursts

    return len(list(read_bursts(path, Counter())))


_DATATYPES = ["cu8", "ci8", "ci16_le", "cf32_le"]
_DATETIMES = [
    "2025-11-24T10:00:00Z",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999Z",
    "2025-11-24T10:00:00.123456789+05:30",
    "2025-02-30T00:00:00Z",
]
_CAPTURE = st.fixed_dictionaries(
    {},
    optional={
        "core:sample_start": st.one_of(
            st.integers(min_value=-(2**40), max_value=2**40),
            st.floats(allow_nan=True, allow_infinity=True),
            st.text(max_size=6),
            st.none(),
        ),
        "core:frequency": st.one_of(st.floats(allow_nan=True), st.text(max_size=6)),
        "core:datetime": st.one_of(st.text(max_size=30), st.sampled_from(_DATETIMES)),
    },
)


@FUZZ
@seed(SEED)
@given(
    datatype=st.one_of(st.sampled_from(_DATATYPES), st.text(max_size=8)),
    rate=st.one_of(
        st.floats(min_value=2e4, max_value=3.2e6),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from([0, -1, "x", None, 1, 999.9, 1e309]),
    ),
    captures=st.one_of(st.lists(_CAPTURE, max_size=5), st.none(), st.just("all")),
    data=st.binary(max_size=6000),
    mode=st.sampled_from(["random", "nan"]),
)
def test_fuzzed_sigmf_recordings_are_read_or_refused(
    datatype: str, rate: Any, captures: Any, data: bytes, mode: str
) -> None:
    meta: dict[str, Any] = {"global": {"core:datatype": datatype, "core:sample_rate": rate}}
    if captures is not None:
        meta["captures"] = captures
    if mode == "nan" and datatype == "cf32_le":
        samples = np.frombuffer(data[: len(data) // 4 * 4], dtype=np.float32).copy()
        samples[::5] = np.nan
        samples[1::7] = np.inf
        data = samples.tobytes()
    with tempfile.TemporaryDirectory() as tmp:
        stem = Path(tmp) / "rec"
        stem.with_suffix(".sigmf-meta").write_text(json.dumps(meta))
        stem.with_suffix(".sigmf-data").write_bytes(data)
        with contextlib.suppress(RecordingError):
            assert _read(stem.with_suffix(".sigmf-meta")) >= 0


@FUZZ
@seed(SEED)
@given(
    freq=st.floats(min_value=0, max_value=1e4),
    rate=st.one_of(st.floats(min_value=1.0, max_value=1e5), st.floats(min_value=0, max_value=1.0)),
    data=st.binary(max_size=4000),
)
def test_fuzzed_cu8_files_are_read_or_refused(freq: float, rate: float, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"g001_{freq:.3f}M_{rate:.3f}k.cu8"
        path.write_bytes(data)
        with contextlib.suppress(RecordingError):
            assert _read(path) >= 0


# -- what the fuzzing found ----------------------------------------------------------------------
def _sigmf(tmp: Path, meta_text: str) -> Path:
    rng = np.random.default_rng(SEED)
    (tmp / "rec.sigmf-data").write_bytes(rng.integers(0, 256, 40_000, dtype=np.uint8).tobytes())
    (tmp / "rec.sigmf-meta").write_text(meta_text)
    return tmp / "rec.sigmf-meta"


FOUND: list[Any] = [
    pytest.param(
        '{"global": {"core:datatype": "cu8", "core:sample_rate": 1e6},'
        ' "captures": [{"core:sample_start": 1e309}]}',
        id="sigmf-sample-start-infinite",
    ),
    pytest.param(
        '{"global": {"core:datatype": "cu8", "core:sample_rate": 1e309}}',
        id="sigmf-rate-infinite",
    ),
    pytest.param(
        '{"global": {"core:datatype": "cu8", "core:sample_rate": 1}}',
        id="sigmf-rate-1-hz",
    ),
]


@pytest.mark.parametrize("meta_text", FOUND)
def test_found_sigmf_metadata_is_refused_cleanly(tmp_path: Path, meta_text: str) -> None:
    with pytest.raises(RecordingError, match=r"core:sample_(start|rate)"):
        _read(_sigmf(tmp_path, meta_text))


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            "g001_868.0M_0.0k.cu8",
        ),
        pytest.param(
            "g001_868.0M_0.000001k.cu8",
        ),
    ],
)
def test_found_cu8_names_are_refused_cleanly(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(np.random.default_rng(SEED).integers(0, 256, 40_000, dtype=np.uint8).tobytes())
    with pytest.raises(RecordingError, match="rate in the name"):
        _read(path)


@pytest.mark.parametrize("value", [{}, [], ["random"]], ids=["object", "empty-list", "list"])
def test_found_ble_line_with_a_container_as_address_type_is_counted(value: object) -> None:
    from scanner.sources.ble.replay import parse_line

    counters: Counter[str] = Counter()
    assert parse_line(json.dumps({**_GOOD_LINE, "address_type": value}), counters) is None
    assert counters["malformed"] == 1
