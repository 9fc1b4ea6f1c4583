"""Read and write SDR recordings: SigMF (several capture segments) and rtl_433-style ``.cu8``.

A recording is a sequence of **dwells**: stretches of contiguous IQ at one centre frequency
starting at one wall-clock time. In SigMF each capture segment is a dwell with its own
``core:frequency`` and ``core:datetime``; the time of sample ``i`` is the segment's datetime plus
``(i - core:sample_start) / rate``. A scenario file of a 30-minute simulation holds only short
windows (tens of milliseconds each), so segments need not be contiguous in time.

The JSON is written and read here directly (it is small and the schema is fixed); the tests
check the files against the ``sigmf`` package's own reader.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from scanner import safe_json
from scanner.errors import RecordingError
from scanner.sources.sdr.constants import MAX_SAMPLE_RATE_HZ, MIN_SAMPLE_RATE_HZ
from scanner.sources.sdr.samples import DATATYPES, SAMPLE_BYTES, scalar_dtype

SIGMF_VERSION = "1.0.0"
# Read big files in pieces so a long recording never needs its whole size in memory.
CHUNK_SAMPLES = 1 << 18


@dataclass(frozen=True, slots=True)
class Dwell:
    """One capture segment of a recording: contiguous samples at one tuning."""

    t0: float  # wall-clock unix seconds of the first sample
    centre_hz: float
    rate: float
    datatype: str
    raw: npt.NDArray[np.generic]  # interleaved scalars (a memory map for files)
    sample_start: int = 0  # index of the first sample in the whole file
    # The magnitude of one I or Q scalar taken as full scale (0 dBFS), in the file's units, and
    # how it was chosen: "datatype" (integers: the type's own range), "unit" (floats within
    # +-1, the normalised convention) or "file_peak" (floats beyond +-1: raw-scale values whose
    # full scale the file does not state, so its own largest scalar stands for it).
    full_scale: float = 1.0
    scale: str = "datatype"

    @property
    def n_samples(self) -> int:
        return self.raw.size // 2

    def chunks(self, n: int = CHUNK_SAMPLES) -> Iterator[npt.NDArray[np.generic]]:
        """The raw interleaved scalars in pieces of ``n`` samples."""
        for i in range(0, self.raw.size, 2 * n):
            yield self.raw[i : i + 2 * n]


@dataclass(frozen=True, slots=True)
class Segment:
    """A capture segment to write: IQ as cu8 bytes (uint8, interleaved) or complex samples."""

    start_unix: float
    centre_hz: float
    rate: float
    iq: npt.NDArray[Any]


@dataclass(frozen=True, slots=True)
class Annotation:
    """A detected burst to note in the SigMF metadata; times are absolute sample indices."""

    sample_start: int
    sample_count: int
    freq_lower_hz: float
    freq_upper_hz: float
    label: str = "uplink burst"
    extra: dict[str, Any] = field(default_factory=dict)


# -- time --------------------------------------------------------------------------------------
def iso_utc(t: float) -> str:
    """Unix seconds -> ISO 8601 UTC with microseconds and a ``Z``, as SigMF wants."""
    whole = math.floor(t)
    micro = round((t - whole) * 1e6)
    if micro >= 1_000_000:
        whole, micro = whole + 1, 0
    stamp = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{micro:06d}Z"


def parse_iso_utc(text: str) -> float:
    """ISO 8601 -> unix seconds, keeping fractions finer than a microsecond."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?", text)
    if m is None:
        raise ValueError(f"not an ISO 8601 time: {text!r}")
    base, frac, zone = m.groups()
    zone = "+00:00" if zone in (None, "Z") else zone
    whole = datetime.fromisoformat(base + zone).timestamp()
    return whole + (float("0." + frac) if frac else 0.0)


# -- reading -----------------------------------------------------------------------------------
def open_recording(path: str | Path) -> list[Dwell]:
    """All dwells of a SigMF pair (either file's path) or an rtl_433-style ``.cu8`` file.

    Raises ``RecordingError`` with a one-line reason when the file cannot be used at all.
    """
    p = Path(path)
    name = p.name.lower()
    if name.endswith((".sigmf-meta", ".sigmf-data", ".sigmf")):
        return _open_sigmf(p)
    if name.endswith(tuple(NAME_DATATYPES)):
        return [_open_named(p)]
    raise RecordingError(
        f"{p}: not a SigMF recording or an rtl_433-style raw IQ file ({', '.join(NAME_DATATYPES)})"
    )


def _stem(p: Path) -> Path:
    for suffix in (".sigmf-meta", ".sigmf-data", ".sigmf"):
        if p.name.lower().endswith(suffix):
            return p.with_name(p.name[: -len(suffix)])
    return p


def _open_sigmf(p: Path) -> list[Dwell]:
    stem = _stem(p)
    meta_path = stem.with_name(stem.name + ".sigmf-meta")
    data_path = stem.with_name(stem.name + ".sigmf-data")
    try:
        meta = safe_json.load_path(meta_path, safe_json.SIGMF_META_MAX_BYTES)
    except OSError as exc:
        raise RecordingError(f"cannot read {meta_path}: {exc.strerror or exc}") from exc
    except safe_json.JsonLimitError as exc:
        raise RecordingError(f"{meta_path}: {exc}") from None
    except ValueError as exc:
        raise RecordingError(f"{meta_path}: not valid JSON ({exc})") from exc
    if not isinstance(meta, dict) or not isinstance(meta.get("global"), dict):
        raise RecordingError(f"{meta_path}: no 'global' object")
    glob = meta["global"]
    datatype = str(glob.get("core:datatype", ""))
    if datatype not in DATATYPES:
        raise RecordingError(
            f"{meta_path}: datatype {datatype!r} not supported "
            f"(expected one of {', '.join(DATATYPES)})"
        )
    try:
        rate = float(glob["core:sample_rate"])
    except (KeyError, TypeError, ValueError):
        raise RecordingError(f"{meta_path}: missing or invalid core:sample_rate") from None
    _check_rate(rate, f"{meta_path}: core:sample_rate")
    raw: npt.NDArray[np.generic]
    try:
        if data_path.stat().st_size == 0:
            raw = np.zeros(0, dtype=scalar_dtype(datatype))
        else:
            raw = np.memmap(data_path, dtype=scalar_dtype(datatype), mode="r")
    except (OSError, ValueError) as exc:
        raise RecordingError(f"cannot read {data_path}: {exc}") from exc
    total = raw.size // 2
    full_scale, scale = float_full_scale(raw, datatype)
    captures = meta.get("captures") or [{"core:sample_start": 0}]
    if not isinstance(captures, list):
        raise RecordingError(f"{meta_path}: 'captures' must be a list")
    parsed: list[tuple[int, float, float | None]] = []
    for i, cap in enumerate(captures):
        if not isinstance(cap, dict):
            raise RecordingError(f"{meta_path}: capture {i} is not an object")
        # A capture's start is also where the capture before it ends, so one unusable start
        # leaves two segments without bounds: the segment table is unreadable and the whole
        # file is refused, as for a start that is not a number at all.
        try:
            start = _sample_start(cap.get("core:sample_start", 0))
            freq = float(cap.get("core:frequency", 0.0))
            if not math.isfinite(freq):
                raise ValueError(f"core:frequency must be finite, not {freq!r}")
            stamp = cap.get("core:datetime")
            t0 = parse_iso_utc(stamp) if isinstance(stamp, str) else None
        except (TypeError, ValueError, OverflowError) as exc:
            raise RecordingError(f"{meta_path}: capture {i}: {exc}") from exc
        parsed.append((start, freq, t0))
    parsed.sort(key=lambda c: c[0])
    dwells: list[Dwell] = []
    for i, (first, freq, t0) in enumerate(parsed):
        end = parsed[i + 1][0] if i + 1 < len(parsed) else total
        start, end = min(first, total), min(end, total)
        if end <= start:
            continue
        # Without a datetime a segment continues the file's sample clock from zero.
        when = t0 if t0 is not None else start / rate
        dwells.append(
            Dwell(when, freq, rate, datatype, raw[2 * start : 2 * end], start, full_scale, scale)
        )
    return dwells


def float_full_scale(raw: npt.NDArray[np.generic], datatype: str) -> tuple[float, str]:
    """The full scale of a recording's scalars and how it was chosen (see ``Dwell.scale``).

    Integer types carry their own range. Floats have none: recorders that normalise (GNU Radio
    from a dongle, SDR++, the sigmf convention) stay within +-1, so a file that does is taken
    at that scale; a file with larger values is at some raw scale (a USRP's 16-bit counts kept
    as floats read in the thousands), and the only reference it carries is its own largest
    scalar. Powers are then dB below that peak, never the +55..+72 "dBFS" that treating raw
    counts as +-1 would report. Non-finite scalars are ignored here (the detector sees them).
    """
    if datatype != "cf32_le":
        return 1.0, "datatype"
    peak = 0.0
    step = 1 << 21
    for i in range(0, raw.size, step):
        part = np.abs(np.asarray(raw[i : i + step], dtype=np.float32))
        top = float(part.max(initial=0.0))
        if not math.isfinite(top):
            finite = part[np.isfinite(part)]
            top = float(finite.max(initial=0.0))
        peak = max(peak, top)
    if peak <= 1.0:
        return 1.0, "unit"
    return peak, "file_peak"


def _check_rate(rate: float, what: str) -> None:
    """Refuse a rate the burst detector cannot use (see ``constants.MIN_SAMPLE_RATE_HZ``)."""
    if not (math.isfinite(rate) and MIN_SAMPLE_RATE_HZ <= rate <= MAX_SAMPLE_RATE_HZ):
        raise RecordingError(
            f"{what} {rate:g} S/s is outside the rates the detector supports "
            f"({MIN_SAMPLE_RATE_HZ:g} to {MAX_SAMPLE_RATE_HZ:g} S/s)"
        )


def _sample_start(value: object) -> int:
    """A capture's ``core:sample_start``: a whole, non-negative sample index."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"core:sample_start must be a whole number, not {value!r}")
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise ValueError(f"core:sample_start must be a whole number, not {value!r}")
    if value < 0:
        raise ValueError(f"core:sample_start must not be negative, not {value!r}")
    return int(value)


# Raw IQ file extensions (rtl_433's names for them) and the SigMF datatype each holds.
NAME_DATATYPES: dict[str, str] = {
    ".cu8": "cu8",
    ".cs8": "ci8",
    ".cs16": "ci16_le",
    ".cf32": "cf32_le",
}
_UNITS = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9}
# One token of a name, split at "_" (and "-" or spaces): a number with what follows it.
_HZ = re.compile(r"(\d+(?:\.\d+)?)([kmg]?)hz", re.IGNORECASE)  # 868950000Hz, 868.95MHz
_SPS = re.compile(r"(\d+(?:\.\d+)?)([km]?)sps", re.IGNORECASE)  # 250ksps, 2.4Msps
_K = re.compile(r"(\d+(?:\.\d+)?)k", re.IGNORECASE)  # rtl_433: 250k is a sample rate
_M = re.compile(
    r"(\d+(?:\.\d+)?)M", re.IGNORECASE
)  # rtl_433: 868.3M is a frequency (but 2.4M may be a rate)
_RKM = re.compile(
    r"(\d+)([kmg])(\d+)", re.IGNORECASE
)  # engineering style: 1M6 = 1.6 M, 2M4, 250k is _K
_PLAIN = re.compile(r"\d+(?:\.\d+)?")  # 868950000, 1600000: plain Hz or S/s


def parse_cu8_name(name: str) -> tuple[float, float] | None:
    """(centre Hz, rate S/s) from a raw IQ file name; None when it carries no tuning.

    Raises ``ValueError`` when the name holds numbers that cannot be told apart.
    """
    parsed = parse_iq_name(name)
    return None if parsed is None else (parsed[0], parsed[1])


def parse_iq_name(name: str) -> tuple[float, float, str] | None:
    """(centre Hz, rate S/s, datatype) from names as rtl_433, rtl_sdr users and rtl-wmbus write.

    ``g005_868.3M_250k.cu8`` (rtl_433), ``rtlsdr_868.950M_1M6_samples2.cu8`` (``1M6`` is 1.6
    MS/s), ``x_868.3M_2.4M.cs16``, ``cap_868950000Hz_1600ksps.cf32``,
    ``cap_868950000_1600000.cu8``. Tokens with a unit that says what they are (``Hz``,
    ``sps``, rtl_433's ``k`` for a rate) are taken as said; then ``M`` and ``1M6`` tokens, then
    plain numbers (only when still needed: otherwise they are counters or dates) fill what is
    missing, the larger as the centre: a complex recording of a radio band is centred far
    above its own sample rate (24 MHz and up against at most a few MS/s for an RTL-SDR).
    Returns None when the name has no frequency or no rate; ``ValueError`` when more numbers
    of one kind are left than fields to fill, as the name is then ambiguous.
    """
    lower = name.lower()
    ext = next((e for e in NAME_DATATYPES if lower.endswith(e)), None)
    if ext is None:
        return None
    stem = name[: -len(ext)]
    freq: float | None = None
    rate: float | None = None
    scaled: list[float] = []  # "M" and "1M6" tokens: magnitudes without a role
    plain: list[float] = []  # bare numbers: used only when the name has nothing better
    for token in re.split(r"[_\s-]+", stem):
        if m := _HZ.fullmatch(token):
            freq = float(m.group(1)) * _UNITS[m.group(2).lower()]
        elif m := _SPS.fullmatch(token):
            rate = float(m.group(1)) * _UNITS[m.group(2).lower()]
        elif m := _K.fullmatch(token):
            rate = float(m.group(1)) * 1e3
        elif m := _M.fullmatch(token):
            scaled.append(float(m.group(1)) * 1e6)
        elif m := _RKM.fullmatch(token):
            scaled.append(float(f"{m.group(1)}.{m.group(3)}") * _UNITS[m.group(2).lower()])
        elif _PLAIN.fullmatch(token):
            plain.append(float(token))
    for loose in (scaled, plain):
        missing = int(freq is None) + int(rate is None)
        if not missing or not loose:
            continue
        if len(loose) > missing:
            raise ValueError(
                f"{name}: cannot tell the centre frequency and sample rate apart among "
                f"{', '.join(f'{v:g}' for v in loose)} (write the rate as <n>k or <n>sps)"
            )
        loose.sort(reverse=True)
        if freq is None:
            freq = loose.pop(0)
        if rate is None and loose:
            rate = loose.pop(0)
    if freq is None or rate is None:
        return None
    return freq, rate, NAME_DATATYPES[ext]


def _open_named(p: Path) -> Dwell:
    try:
        parsed = parse_iq_name(p.name)
    except ValueError as exc:
        raise RecordingError(str(exc)) from None
    if parsed is None:
        raise RecordingError(
            f"{p}: a raw IQ file must carry its tuning in its name, e.g. "
            "g005_868.3M_250k.cu8 (rtl_433), NAME_868.95M_1M6.cu8 or NAME_868950000Hz_1600ksps.cf32"
        )
    freq, rate, datatype = parsed
    raw: npt.NDArray[np.generic]
    try:
        t0 = p.stat().st_mtime
        dtype = scalar_dtype(datatype)
        raw = np.memmap(p, dtype=dtype, mode="r") if p.stat().st_size else np.zeros(0, dtype)
    except (OSError, ValueError) as exc:
        raise RecordingError(f"cannot read {p}: {exc}") from exc
    if not math.isfinite(freq):
        raise RecordingError(f"{p}: the centre frequency in the name is not a usable number")
    _check_rate(rate, f"{p}: the rate in the name,")
    # mtime is when the file was closed: the capture began its duration earlier.
    t0 -= (raw.size // 2) / rate
    full_scale, scale = float_full_scale(raw, datatype)
    return Dwell(t0, freq, rate, datatype, raw, 0, full_scale, scale)


# -- writing -----------------------------------------------------------------------------------
def _as_scalars(iq: npt.NDArray[Any]) -> tuple[str, npt.NDArray[Any]]:
    if iq.dtype == np.uint8:
        return "cu8", iq.reshape(-1)
    if np.iscomplexobj(iq):
        return "cf32_le", np.ascontiguousarray(iq, dtype=np.complex64).view("<f4")
    raise ValueError(f"IQ must be cu8 bytes (uint8) or complex samples, not {iq.dtype}")


def write_sigmf(
    path_stem: str | Path,
    segments: Sequence[Segment],
    annotations: Sequence[Annotation] = (),
    description: str = "",
    extra_global: dict[str, Any] | None = None,
) -> Path:
    """Write ``STEM.sigmf-data`` + ``STEM.sigmf-meta`` with one capture per segment.

    All segments share one sample rate and one datatype (a SigMF file has one of each); the
    data file is written first and the metadata last, so a reader never sees metadata that
    points past the data. Returns the meta path.
    """
    stem = _stem(Path(path_stem))
    if not segments:
        raise ValueError("a SigMF recording needs at least one segment")
    rate = segments[0].rate
    datatype = _as_scalars(segments[0].iq)[0]
    captures: list[dict[str, Any]] = []
    data_path = stem.with_name(stem.name + ".sigmf-data")
    meta_path = stem.with_name(stem.name + ".sigmf-meta")
    start = 0
    with data_path.open("wb") as fh:
        for seg in segments:
            dt, scalars = _as_scalars(seg.iq)
            if dt != datatype or seg.rate != rate:
                raise ValueError("all segments of one SigMF file need one datatype and rate")
            captures.append(
                {
                    "core:sample_start": start,
                    "core:frequency": float(seg.centre_hz),
                    "core:datetime": iso_utc(seg.start_unix),
                }
            )
            fh.write(scalars.tobytes())
            start += scalars.size // 2
    glob: dict[str, Any] = {
        "core:datatype": datatype,
        "core:sample_rate": float(rate),
        "core:version": SIGMF_VERSION,
        "core:recorder": "checkpoint-scanner",
        "core:extensions": [{"name": "checkpoint", "version": "1.0.0", "optional": True}],
    }
    if description:
        glob["core:description"] = description
    if extra_global:
        glob.update(extra_global)
    notes = []
    for a in sorted(annotations, key=lambda a: a.sample_start):
        note: dict[str, Any] = {
            "core:sample_start": int(a.sample_start),
            "core:sample_count": int(a.sample_count),
            "core:freq_lower_edge": float(a.freq_lower_hz),
            "core:freq_upper_edge": float(a.freq_upper_hz),
            "core:label": a.label,
        }
        note.update({f"checkpoint:{k}": v for k, v in a.extra.items()})
        notes.append(note)
    meta = {"global": glob, "captures": captures, "annotations": notes}
    tmp = meta_path.with_name(meta_path.name + ".tmp")
    tmp.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    tmp.replace(meta_path)
    return meta_path


def write_scenario_segments(
    path_stem: str | Path,
    segments: Sequence[Segment],
    annotations: Sequence[Annotation] = (),
    description: str = "simulated uplink: short windows, one capture segment each",
) -> Path:
    """The simulator's writer: short windows, each its own segment with time and frequency.

    ``segments`` may be given in any order; they are written in time order. Each becomes a
    separate dwell when read back (see :func:`open_recording`).
    """
    ordered = sorted(segments, key=lambda s: s.start_unix)
    return write_sigmf(path_stem, ordered, annotations, description)


def read_meta(path: str | Path) -> dict[str, Any]:
    """The parsed ``.sigmf-meta`` of a recording (for annotations and descriptions)."""
    stem = _stem(Path(path))
    meta_path = stem.with_name(stem.name + ".sigmf-meta")
    try:
        loaded = safe_json.load_path(meta_path, safe_json.SIGMF_META_MAX_BYTES)
    except (OSError, ValueError) as exc:
        raise RecordingError(f"cannot read {meta_path}: {exc}") from exc
    if not isinstance(loaded, dict):
        raise RecordingError(f"{meta_path}: not a JSON object")
    return loaded


__all__ = [
    "SAMPLE_BYTES",
    "Annotation",
    "Dwell",
    "Segment",
    "iso_utc",
    "open_recording",
    "parse_cu8_name",
    "parse_iq_name",
    "parse_iso_utc",
    "read_meta",
    "write_scenario_segments",
    "write_sigmf",
]
