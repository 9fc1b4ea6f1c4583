"""Options of the live SDR source, from the config's ``[sdr]`` section.

Everything a configuration can set lives here, typed and checked: the source (``SdrOptions``),
the sweep (``SweepOptions``, ``Tuning``), the detector (``DetectorParams``) and the nearness
calibration. Importing it loads no numpy and no librtlsdr, so a process that only validates a
configuration (or shows it) stays small.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from scanner.sources.base import SourceOptions
from scanner.sources.sdr.bands import DEFAULT_REGION, BandPlan

# Frames per sub-block of a floor block (the detector takes the floor from the median of the
# sub-block means, which ignores bursts in fewer than half the sub-blocks).
SUB_FRAMES = 8


@dataclass(frozen=True, slots=True)
class Tuning:
    """One place to park the tuner."""

    band: str
    centre_hz: float


@dataclass(frozen=True, slots=True)
class SweepOptions:
    """Dwell length and how strongly activity pulls the tuner."""

    dwell_s: float = 0.25
    settle_s: float = 0.005
    activity_gain: float = 0.05  # extra weight per burst/s
    max_weight: float = 8.0
    activity_half_life_s: float = 60.0
    downlink_prior: float = 3.0  # weight of a tuning with a base station on its downlink


@dataclass(frozen=True, slots=True)
class DetectorParams:
    """Tuning of the detector; units are in the names."""

    fft_size: int = 128  # 53 us frames at 2.4 MS/s: a 577 us timeslot spans 10
    half_channel_bins: int = 4  # cell = 8 bins = 150 kHz at 2.4 MS/s
    pfa: float = 1e-4  # false-alarm probability per cell and frame (sets the CFAR factor)
    min_duration_s: float = 150e-6  # shorter hot runs are noise (and no uplink burst is shorter)
    max_gap_frames: int = 1  # a burst survives one missed frame
    # A wide burst at low SNR lights its cells patchily; pieces this many cells apart are one.
    merge_cells: int = 1
    max_burst_s: float = 0.05  # a longer transmission is reported in pieces, for latency
    floor_rise_db_per_s: float = 3.0  # how fast a floor may climb under a long transmission
    floor_fall_db: float = 3.0  # a block this far under the floor resets it at once
    floor_track_db: float = 1.8  # blocks within this above the floor are averaged in
    floor_alpha: float = 0.1  # averaging weight of one block (about 35 ms at 2.4 MS/s)
    block_frames: int = 128  # floor update period (6.8 ms at 2.4 MS/s: 16 sub-blocks)
    interpolate_dc: bool = True
    band_threshold_db: float = 10.0  # burst band = bins within this of the peak excess
    edge_db: float = 20.0  # burst time edges = frames within this of the burst's median level

    @classmethod
    def from_mapping(cls, section: dict[str, Any]) -> DetectorParams:
        """Detector keys of the ``[sdr]`` config section (unknown keys are ignored here)."""
        kwargs: dict[str, Any] = {}
        for name in cls.__dataclass_fields__:
            if name in section:
                kwargs[name] = type(getattr(cls(), name))(section[name])
        params = cls(**kwargs)
        params.validate()
        return params

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first parameter the detector cannot work with."""
        if self.half_channel_bins < 1:
            raise ValueError("half_channel_bins must be at least 1")
        if self.fft_size % (self.half_channel_bins * 2) or self.fft_size < 16:
            raise ValueError("fft_size must be >= 16 and a multiple of 2 * half_channel_bins")
        if self.block_frames < 2 * SUB_FRAMES or self.block_frames % (2 * SUB_FRAMES):
            raise ValueError(f"block_frames must be a positive multiple of {2 * SUB_FRAMES}")
        if self.max_gap_frames < 0 or self.merge_cells < 0:
            raise ValueError("max_gap_frames and merge_cells must not be negative")
        # Non-finite values would reach 10 ** (...) and frame counts as inf or NaN.
        for name, low, high in _FLOAT_BOUNDS:
            value = getattr(self, name)
            if not (math.isfinite(value) and low <= value <= high):
                raise ValueError(f"{name} must be a finite number in [{low:g}, {high:g}]")
        if not 0.0 < self.pfa < 1.0:
            raise ValueError("pfa must be a probability strictly between 0 and 1")
        if not 0.0 < self.floor_alpha <= 1.0:
            raise ValueError("floor_alpha must be in (0, 1]")


# (parameter, lowest, highest): the bounds keep every power of ten in the detector finite.
_FLOAT_BOUNDS: tuple[tuple[str, float, float], ...] = (
    ("pfa", 0.0, 1.0),
    ("min_duration_s", 0.0, 10.0),
    ("max_burst_s", 1e-6, 60.0),
    ("floor_rise_db_per_s", 0.0, 100.0),
    ("floor_fall_db", 0.0, 100.0),
    ("floor_track_db", 0.0, 100.0),
    ("floor_alpha", 0.0, 1.0),
    ("band_threshold_db", 0.0, 100.0),
    ("edge_db", 0.0, 100.0),
)


@dataclass(frozen=True, slots=True)
class NearnessCalibration:
    """Maps burst power to a distance guess; set ``dbm_at_0dbfs_0db_gain`` by the calibration walk.

    The default offset is typical of an R820T dongle (full scale at 0 dB gain near -10 dBm).
    Handsets are power-controlled, so this is an order of magnitude, not a range finder.
    """

    dbm_at_0dbfs_0db_gain: float = -10.0
    handset_tx_dbm: float = 10.0  # a typical uplink level near a cell's edge, not the 33 dBm max
    path_loss_1m_db: float = 31.5  # free space at 900 MHz
    path_loss_exponent: float = 2.7  # a gate with people and walls around it


@dataclass(frozen=True, slots=True)
class SdrOptions(SourceOptions):
    """The ``[sdr]`` section, typed."""

    transport: str = "usb"  # "usb" | "rtl_tcp"
    host: str = "127.0.0.1"
    port: int = 1234
    device_index: int = 0
    serial: str | None = None
    rate: float = 2.4e6
    region: str = DEFAULT_REGION  # the band plan: "eu", "us", "ua-ru", "jp", "au", "in"
    bands: tuple[str, ...] = ()  # band names; empty = the region's preset
    centres_mhz: tuple[float, ...] = ()  # fixed tunings instead of a sweep
    gain_db: float | None = None  # None = automatic (our controller, not the tuner's AGC)
    ppm: int = 0
    read_bytes: int = 1 << 16  # one chunk: 32768 samples, 13.7 ms at 2.4 MS/s
    queue_chunks: int = 64  # about 0.9 s of IQ between capture and DSP
    connect_timeout_s: float = 3.0
    stall_s: float = 2.0
    healthy_after_s: float = 10.0  # streaming this long resets the backoff
    status_every_s: float = 10.0
    record: str | None = None  # SigMF path stem to record everything to
    snippet_keep_s: float = 1.0  # IQ kept in memory for evidence snippets
    backoff_scale: float = 1.0  # multiplies every retry delay (tests shorten them)
    survey_downlink: bool = False  # listen to the paired downlinks for local cells first
    survey_every_s: float = 3600.0
    survey_dwell_s: float = 0.1
    sweep: SweepOptions = field(default_factory=SweepOptions)
    detector: DetectorParams = field(default_factory=DetectorParams)
    calibration: NearnessCalibration = field(default_factory=NearnessCalibration)

    def __post_init__(self) -> None:
        """Refuse options the source cannot run with (ValueError naming the parameter).

        Checked here rather than only in ``from_mapping`` so options built in code (or by
        ``dataclasses.replace``) cannot bypass it. The alternative, a source that starts in a
        "fault" state, was rejected: bad options are not a hardware failure the start ladder
        could retry its way out of, and a sensor sitting in fault forever hides a typo the
        runner would otherwise report at startup as a config error naming the key.
        """
        if self.transport not in ("usb", "rtl_tcp"):
            raise ValueError(f"[sdr]: transport must be 'usb' or 'rtl_tcp', not {self.transport!r}")
        # Also refuses NaN (every comparison is false).
        if not 225e3 <= self.rate <= 3.2e6:
            raise ValueError("[sdr]: rate must be between 225 kHz and 3.2 MHz (RTL2832U)")
        if self.queue_chunks < 1:
            # queue.Queue(maxsize=0) is unbounded: the capture thread could outrun the DSP forever.
            raise ValueError("[sdr]: queue_chunks must be at least 1")
        if self.read_bytes < 2:
            raise ValueError("[sdr]: read_bytes must be at least 2 (one I/Q sample)")
        try:
            self.detector.validate()
            self.plan()  # an unknown region or band, now rather than in the capture thread
        except ValueError as exc:
            raise ValueError(f"[sdr]: {exc}") from exc

    @classmethod
    def from_mapping(cls, section: dict[str, Any]) -> SdrOptions:
        """Parse the ``[sdr]`` table (ValueError with the key's name on bad values)."""
        known = {
            "transport", "host", "port", "device_index", "serial", "rate", "region", "bands",
            "centres_mhz", "gain_db", "ppm", "read_bytes", "queue_chunks", "connect_timeout_s",
            "stall_s", "healthy_after_s", "status_every_s", "record", "snippet_keep_s",
            "backoff_scale", "silence_after_s", "survey_downlink", "survey_every_s",
            "survey_dwell_s", "sensor", "enabled", "dwell_s", "settle_s",
            "detector",
            "calibration",
        }  # fmt: skip
        unknown = sorted(set(section) - known)
        if unknown:
            raise ValueError(f"[sdr]: unknown key(s) {', '.join(unknown)}")
        kw: dict[str, Any] = {"sensor": str(section.get("sensor", "sdr"))}
        try:
            for key in ("host", "transport", "region"):
                if key in section:
                    kw[key] = str(section[key])
            for key in ("port", "device_index", "ppm", "read_bytes", "queue_chunks"):
                if key in section:
                    kw[key] = int(section[key])
            for key in ("rate", "connect_timeout_s", "stall_s", "healthy_after_s",
                        "status_every_s", "snippet_keep_s", "silence_after_s",
                        "backoff_scale", "survey_every_s", "survey_dwell_s"):  # fmt: skip
                if key in section:
                    kw[key] = float(section[key])
            if section.get("serial") is not None:
                kw["serial"] = str(section["serial"])
            if "survey_downlink" in section:
                kw["survey_downlink"] = bool(section["survey_downlink"])
            if section.get("record"):
                kw["record"] = str(section["record"])
            gain = section.get("gain_db", "auto")
            kw["gain_db"] = None if gain in ("auto", None) else float(gain)
            kw["bands"] = tuple(str(b) for b in section.get("bands", ()))
            kw["centres_mhz"] = tuple(float(c) for c in section.get("centres_mhz", ()))
            kw["sweep"] = SweepOptions(
                dwell_s=float(section.get("dwell_s", 0.25)),
                settle_s=float(section.get("settle_s", 0.005)),
            )
            kw["detector"] = DetectorParams.from_mapping(dict(section.get("detector", {})))
            kw["calibration"] = NearnessCalibration(**dict(section.get("calibration", {})))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"[sdr]: {exc}") from exc
        # __post_init__ checks transport, rate, queue, detector and band plan (ValueError).
        return cls(**kw)

    def plan(self) -> BandPlan:
        return BandPlan.named(list(self.bands)) if self.bands else BandPlan.for_region(self.region)

    def tunings(self) -> list[Tuning]:
        if self.centres_mhz:
            plan = self.plan()
            return [Tuning(plan.band_for(c * 1e6) or "fixed", c * 1e6) for c in self.centres_mhz]
        return [Tuning(b, c) for b, c in self.plan().tunings(self.rate)]
