"""Recording what the SDR sees: SigMF with burst annotations, and evidence snippets.

``SigmfRecorder`` streams IQ to ``NAME.sigmf-data`` as it arrives (one capture segment per
retune) and rewrites ``NAME.sigmf-meta`` after every segment, so a power cut leaves a valid
recording of everything up to the last segment. ``save_snippet`` writes a short SigMF around
one burst: the IQ evidence kept with an alert.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from scanner.sources.sdr.dsp import Burst
from scanner.sources.sdr.sigmf_io import (
    SIGMF_VERSION,
    Annotation,
    Segment,
    iso_utc,
    write_sigmf,
)

_LOGGER = logging.getLogger(__name__)


def burst_annotation(burst: Burst, sample_offset: int = 0) -> Annotation:
    """A detector burst as a SigMF annotation; ``sample_offset`` is its dwell's file index."""
    return Annotation(
        sample_start=sample_offset + burst.sample_start,
        sample_count=burst.sample_count,
        freq_lower_hz=burst.freq_hz - burst.bandwidth_hz / 2,
        freq_upper_hz=burst.freq_hz + burst.bandwidth_hz / 2,
        label=f"uplink burst ({burst.shape})",
        extra={"power_dbfs": round(burst.power_dbfs, 2), "snr_db": round(burst.snr_db, 2)},
    )


class SigmfRecorder:
    """Append-only SigMF writer for live capture (cu8 as the dongle delivers it)."""

    def __init__(self, path_stem: str | Path, rate: float, datatype: str = "cu8") -> None:
        self.stem = Path(path_stem)
        self.rate = float(rate)
        self.datatype = datatype
        self.data_path = self.stem.with_name(self.stem.name + ".sigmf-data")
        self.meta_path = self.stem.with_name(self.stem.name + ".sigmf-meta")
        self._fh = self.data_path.open("wb")
        self._samples = 0
        self._captures: list[dict[str, Any]] = []
        self._annotations: list[dict[str, Any]] = []
        self._segment_start = 0

    @property
    def samples(self) -> int:
        return self._samples

    def begin_segment(self, start_unix: float, centre_hz: float) -> None:
        """A new capture segment (after a retune) starting at ``start_unix``."""
        self._segment_start = self._samples
        self._captures.append(
            {
                "core:sample_start": self._samples,
                "core:frequency": float(centre_hz),
                "core:datetime": iso_utc(start_unix),
            }
        )
        self._write_meta()

    def write(self, raw: npt.NDArray[Any]) -> None:
        """Append raw interleaved scalars of this recording's datatype."""
        if not self._captures:
            raise ValueError("begin_segment() before write()")
        self._fh.write(np.ascontiguousarray(raw).tobytes())
        self._samples += raw.size // 2

    def annotate(self, burst: Burst) -> None:
        """Note a burst of the current segment."""
        a = burst_annotation(burst, self._segment_start)
        note: dict[str, Any] = {
            "core:sample_start": a.sample_start,
            "core:sample_count": a.sample_count,
            "core:freq_lower_edge": a.freq_lower_hz,
            "core:freq_upper_edge": a.freq_upper_hz,
            "core:label": a.label,
        }
        note.update({f"checkpoint:{k}": v for k, v in a.extra.items()})
        self._annotations.append(note)

    def flush(self) -> None:
        self._fh.flush()
        self._write_meta()

    def close(self) -> None:
        """Finish the data file and write the final metadata."""
        if not self._fh.closed:
            self._fh.close()
        self._write_meta()

    def _write_meta(self) -> None:
        meta = {
            "global": {
                "core:datatype": self.datatype,
                "core:sample_rate": self.rate,
                "core:version": SIGMF_VERSION,
                "core:recorder": "checkpoint-scanner",
                "core:extensions": [{"name": "checkpoint", "version": "1.0.0", "optional": True}],
            },
            "captures": self._captures,
            "annotations": sorted(self._annotations, key=lambda a: a["core:sample_start"]),
        }
        tmp = self.meta_path.with_name(self.meta_path.name + ".tmp")
        tmp.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        tmp.replace(self.meta_path)


_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def save_snippet(
    out_dir: str | Path,
    name: str,
    iq: npt.NDArray[Any],
    rate: float,
    centre_hz: float,
    iq_t0: float,
    burst: Burst,
    margin_s: float = 0.002,
) -> Path:
    """Write the IQ around ``burst`` (plus ``margin_s`` each side) as SigMF evidence.

    ``iq`` holds cu8 bytes (uint8, interleaved) or complex samples whose first sample is at
    wall time ``iq_t0``. Returns the meta path; ValueError if the burst is not in ``iq``.
    """
    n = iq.size // 2 if iq.dtype == np.uint8 else iq.size
    first = max(0, int((burst.t_start - margin_s - iq_t0) * rate))
    last = min(n, int(np.ceil((burst.t_end + margin_s - iq_t0) * rate)))
    if last <= first:
        raise ValueError("the burst is not inside the IQ given")
    cut = iq[2 * first : 2 * last] if iq.dtype == np.uint8 else iq[first:last]
    start = iq_t0 + first / rate
    ann = Annotation(
        sample_start=max(0, round((burst.t_start - start) * rate)),
        sample_count=max(1, round(burst.duration_s * rate)),
        freq_lower_hz=burst.freq_hz - burst.bandwidth_hz / 2,
        freq_upper_hz=burst.freq_hz + burst.bandwidth_hz / 2,
        label=f"uplink burst ({burst.shape})",
        extra={"power_dbfs": round(burst.power_dbfs, 2), "snr_db": round(burst.snr_db, 2)},
    )
    path = Path(out_dir)
    path.mkdir(parents=True, exist_ok=True)
    stem = path / _SAFE.sub("_", name)
    meta = write_sigmf(
        stem, [Segment(start, centre_hz, rate, cut)], [ann], description="evidence snippet"
    )
    _LOGGER.debug("saved IQ snippet %s (%d samples)", meta, last - first)
    return meta
