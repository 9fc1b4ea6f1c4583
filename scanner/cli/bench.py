"""`checkpoint bench [--json] [--soak]`: every benchmark with its baseline, measured in one run.

Benchmarks live in the top-level ``bench`` package, one module per hot path, each with
``run(quick: bool) -> dict``. Results are ratios against a baseline measured in the same run
(scapy, tshark, naive numpy, the idle appliance), never absolute times alone, because machines
differ.

Without ``--soak`` every benchmark runs its short version (``quick=True``) and the whole run
takes under two minutes on a 2-core machine; ``--soak`` runs the long ones (the 10-minute load
and memory soaks). The output is a table: each figure, the baseline it is measured against in
the same run, and its target; ``--json`` prints every benchmark's full result instead (contract
keys: ``wifi_parse.ratio_vs_tshark``, ``wifi_parse.ratio_vs_scapy``, ``sdr_dsp.realtime_factor``,
``sdr_dsp.ratio_vs_naive_numpy``).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import sys
import time
from typing import Any

# name -> module; the JSON output is keyed by these names (contract: wifi_parse, sdr_dsp).
BENCHMARKS: dict[str, str] = {
    "wifi_parse": "bench.wifi_parse",
    "sdr_dsp": "bench.sdr_dsp",
    "sdr_wire": "bench.sdr_wire",
    "latency": "bench.latency",
    "memory": "bench.memory",
    "load": "bench.load",
}
# Run only with --soak (or when named with --only): the all-in-one load's figures need its
# 10-minute run (memory flat after the caps fill), and its 20 s version would not fit the
# two-minute budget beside the latency run, which loads the appliance the same way.
SOAK_ONLY = frozenset({"load"})


@dataclasses.dataclass(frozen=True, slots=True)
class Figure:
    """One line of the table: a result key, what it is measured against, and its target."""

    bench: str
    key: str
    label: str
    unit: str
    baseline: str  # the key of the same-run baseline, or "" when the figure is absolute
    baseline_unit: str
    target: float | None = None
    higher_is_better: bool = True

    def verdict(self, value: object) -> str:
        if self.target is None or not isinstance(value, int | float):
            return ""
        met = value >= self.target if self.higher_is_better else value <= self.target
        return "yes" if met else "NO"

    def target_text(self) -> str:
        if self.target is None:
            return ""
        return f"{'>=' if self.higher_is_better else '<='} {_number(self.target)} {self.unit}"


FIGURES: tuple[Figure, ...] = (
    Figure(
        "wifi_parse",
        "ratio_vs_tshark_uncached",
        "Wi-Fi parse, every probe body distinct",
        "x tshark",
        "tshark_uncached_fps",
        "frames/s tshark",
        target=10.0,
    ),
    Figure(
        "wifi_parse",
        "ratio_vs_tshark_uncached_python",
        "  same, pure-Python element walk",
        "x tshark",
        "tshark_uncached_fps",
        "frames/s tshark",
    ),
    Figure(
        "wifi_parse",
        "ratio_vs_tshark",
        "Wi-Fi parse, repeated probe bodies",
        "x tshark",
        "tshark_fps",
        "frames/s tshark",
    ),
    Figure(
        "wifi_parse",
        "ratio_vs_scapy",
        "Wi-Fi parse vs scapy's dissector",
        "x scapy",
        "scapy_fps",
        "frames/s scapy",
    ),
    Figure(
        "sdr_dsp",
        "realtime_factor",
        "SDR burst detector, one core, 2.4 MS/s",
        "x real time",
        "naive_realtime_factor",
        "x real time naive numpy",
        target=40.0,
    ),
    Figure(
        "sdr_dsp",
        "ratio_vs_naive_numpy",
        "SDR burst detector vs naive numpy",
        "x naive",
        "naive_realtime_factor",
        "x real time naive numpy",
    ),
    Figure(
        "sdr_wire",
        "ratio_iq_vs_plain",
        "SDR burst with its IQ through the socket",
        "x no IQ",
        "us_per_burst_plain",
        "us/burst without IQ",
    ),
    Figure(
        "latency",
        "loaded_p99_ms",
        "Frame to tablet alarm, p99 under load",
        "ms",
        "idle_p99_ms",
        "ms p99 idle",
        target=250.0,
        higher_is_better=False,
    ),
    Figure(
        "latency",
        "loaded_p50_ms",
        "Frame to tablet alarm, p50 under load",
        "ms",
        "idle_p50_ms",
        "ms p50 idle",
    ),
    Figure(
        "memory",
        "total_rss_end_mb",
        "Appliance RSS, five daemons, churning crowd",
        "MB",
        "total_rss_warm_mb",
        "MB after warm-up",
        target=250.0,
        higher_is_better=False,
    ),
    Figure(
        "memory",
        "total_rss_slope_mb_per_min",
        "  its slope after warm-up",
        "MB/min",
        "",
        "",
    ),
    Figure("memory", "core_rss_end_mb", "  of which the core", "MB", "", ""),
    Figure("memory", "api_rss_end_mb", "  of which the API", "MB", "", ""),
    Figure(
        "memory",
        "all_in_one_rss_end_mb",
        "All-in-one RSS (checkpoint demo), same crowd",
        "MB",
        "",
        "",
        target=120.0,
        higher_is_better=False,
    ),
    Figure(
        "load",
        "drop_ratio",
        "Load 5k Wi-Fi + 1k BLE + 250 SDR /s: dropped",
        "of records",
        "records_offered",
        "records offered",
        target=0.001,
        higher_is_better=False,
    ),
    Figure(
        "load",
        "rss_slope_mb_per_min",
        "Load: RSS slope after warm-up",
        "MB/min",
        "rss_end_mb",
        "MB RSS at the end",
    ),
)


def _number(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-" if value is None else str(value)
    if isinstance(value, int) or (value.is_integer() and abs(value) >= 1000):
        return f"{int(value):,}"
    return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 1 else f"{value:,.1f}"


def table(results: dict[str, dict[str, Any]], seconds: dict[str, float]) -> str:
    """The human-readable report: one row per figure of the benchmarks that ran."""
    rows = [("figure", "measured", "baseline (same run)", "target", "met")]
    for fig in FIGURES:
        result = results.get(fig.bench)
        if result is None:
            continue
        value = result.get(fig.key)
        baseline = result.get(fig.baseline) if fig.baseline else None
        rows.append(
            (
                fig.label,
                f"{_number(value)} {fig.unit}" if value is not None else "- (not measured)",
                f"{_number(baseline)} {fig.baseline_unit}" if fig.baseline else "",
                fig.target_text(),
                fig.verdict(value),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [f"{name}: {result['note']}" for name, result in results.items() if "note" in result]
    timing = ", ".join(f"{name} {secs:.0f} s" for name, secs in seconds.items())
    return "\n".join([line.rstrip() for line in lines] + notes + [f"took: {timing}"]) + "\n"


def run(args: argparse.Namespace) -> int:
    if args.only:
        names = [n.strip() for n in args.only.split(",")]
    else:
        names = [n for n in BENCHMARKS if args.soak or n not in SOAK_ONLY]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        sys.stderr.write(f"checkpoint bench: unknown benchmark(s): {', '.join(unknown)}\n")
        return 2
    quick = not args.soak
    results: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for name in names:
        try:
            module = importlib.import_module(BENCHMARKS[name])
        except ModuleNotFoundError as exc:
            if exc.name != "bench":
                raise
            # The benchmarks are not part of the installed package: they need the source tree.
            sys.stderr.write(
                "checkpoint bench: the benchmarks run from a source checkout "
                "(pip install -e . in the repository)\n"
            )
            return 2
        if not args.json:
            sys.stderr.write(f"running {name} ...\n")
        started = time.monotonic()
        results[name] = module.run(quick=quick)
        seconds[name] = time.monotonic() - started
    if args.json:
        sys.stdout.write(json.dumps(results, indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(table(results, seconds))
    return 0
