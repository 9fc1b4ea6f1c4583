"""The after-action report: one self-contained HTML page (inline CSS and SVG, no scripts).

It opens from a USB stick on an air-gapped laptop: no fonts, images, scripts or styles are
fetched from anywhere. Every value that came from the store or the radio is escaped.
"""

from __future__ import annotations

import html
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scanner.export.collect import Period, PeriodData, collect
from scanner.export.timefmt import iso
from scanner.store.db import Store

STATE_COLOURS = {
    "ok": "#2e9d5b",
    "starting": "#7aa6d8",
    "degraded": "#e0a526",
    "fault": "#7a1c1c",
    "stopped": "#8a8f98",
}
UNKNOWN_COLOUR = "#d9dce1"
KIND_COLOURS = {"handset": "#e5483c", "unidentified_transmitter": "#8e44ad"}
# Tick spacings the time axis may use, smallest first (seconds).
TICK_STEPS = (300, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800)
MAX_TICKS = 12
MAX_ALERT_ROWS = 8  # stacked rows in the alert lane before overlapping alerts share a row

CSS = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:0;
 color:#1d232b;background:#f4f5f7}
header{background:#1d2b3a;color:#fff;padding:18px 28px}
header h1{margin:0 0 4px;font-size:22px}
header p{margin:0;color:#c9d3de}
main{padding:18px 28px;max-width:1600px}
section.damage{border:2px solid #b3261e;background:#fdecea}
section{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:14px 18px;
 margin:0 0 16px}
h2{font-size:17px;margin:0 0 10px}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{flex:1 1 150px;border:1px solid #dde1e6;border-radius:6px;padding:10px 12px;
 background:#fafbfc}
.card b{display:block;font-size:24px}
.card span{color:#5b6470;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid #e6e9ed;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f0f2f5}
.scroll{overflow-x:auto}
td{overflow-wrap:break-word}
.alert-card{border-top:1px solid #e6e9ed;padding:10px 0 6px}
.alert-card h3{margin:0 0 4px;font-size:15px}
.alert-card p{margin:0 0 6px}
.alert-card ul{margin:0;padding-left:18px}
.alert-card h4{margin:6px 0 2px;font-size:13px}
.cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:4px 18px}
svg.alert-lanes{max-width:1150px}
#alerts td:last-child{min-width:240px;font-size:12px}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
.hash{word-break:break-all}
.nowrap{white-space:nowrap}
#alerts td:nth-child(-n+2),#acknowledgements td:nth-child(-n+4),
#outages td:nth-child(-n+5),
#audit td:nth-child(-n+2),#sensors td:nth-child(-n+5){white-space:nowrap}
.pill{display:inline-block;padding:1px 7px;border-radius:9px;font-size:12px;color:#fff}
.legend span{display:inline-block;margin-right:14px;font-size:12px}
.legend i{display:inline-block;width:11px;height:11px;margin-right:4px;vertical-align:-1px}
.muted{color:#6b7480}
svg{width:100%;height:auto;display:block}
svg text{font:11px system-ui,Arial,sans-serif;fill:#3b434d}
@media print{body{background:#fff}main{padding:0}section{border:0;padding:6px 0}
 .alert-card,svg,tr{break-inside:avoid}.scroll{overflow:visible}
 table{font-size:10px}td,th{padding:3px 4px}a{color:inherit;text-decoration:none}}
@page{size:A4 landscape;margin:12mm}
"""


@dataclass(frozen=True, slots=True)
class ReportExtras:
    """What the report shows besides the period's rows."""

    chains: dict[str, dict[str, Any]] = field(default_factory=dict)
    pseudonymised: bool = False
    evidence: list[dict[str, Any]] = field(default_factory=list)
    source: str = ""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _when(ts: float | None) -> str:
    """A time for people: UTC to the second (the files keep the milliseconds)."""
    text = iso(None if ts is None else math.floor(ts))
    return "" if text is None else text.replace("T", " ").replace("Z", "")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


def render(data: PeriodData, extras: ReportExtras) -> str:
    """The whole page as text."""
    since, until = data.period.since, data.period.until
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>After-action report: {_e(data.site)} {_e(_when(since))}</title>",
        f"<style>{CSS}</style></head><body>",
        "<header>",
        f"<h1>After-action report: {_e(data.site or 'checkpoint')}</h1>",
        f"<p>{_e(_when(since))} to {_e(_when(until))} UTC · "
        f"generated {_e(_when(data.generated_ts))}"
        f" UTC{' · MAC addresses pseudonymised' if extras.pseudonymised else ''}"
        f"{' · ' + _e(extras.source) if extras.source else ''}</p>",
        "</header><main>",
        _unreadable(data),
        _summary(data),
        _timeline(data),
        _phones(data),
        _alert_cards(data, extras),
        _alerts_table(data),
        _acks_table(data),
        _per_hour(data),
        _outages_table(data),
        _sensors_table(data),
        _allowlist_table(data),
        _audit_table(data),
        _evidence_table(extras),
        _integrity(extras),
        "</main></body></html>",
    ]
    return "\n".join(p for p in parts if p)


def _summary(data: PeriodData) -> str:
    alerts = data.alerts
    acked = [a for a in alerts if a.get("acked_ts") is not None]
    ack_times = sorted(
        float(a["time_to_ack_s"]) for a in acked if a.get("time_to_ack_s") is not None
    )
    median_ack = ack_times[len(ack_times) // 2] if ack_times else None
    outage_s = sum(float(o["duration_s"]) for o in data.outages)
    running = _running_s(data)
    worst = min(
        (p for p in (uptime_percent(v) for v in data.uptime.values()) if p is not None),
        default=None,
    )
    phones = phones_of(data)
    cards = [
        ("phones heard", str(len(phones))),
        ("phones in the zone", str(sum(1 for p in phones if p.alerts))),
        ("visits (alerts)", str(len(alerts))),
        (
            "scanner running, of the period",
            _duration(running) if running else "not running",
        ),
        (
            "lowest sensor uptime while running",
            "–" if worst is None else f"{worst:.1f}%",
        ),
        ("acknowledged", f"{len(acked)} / {len(alerts)}"),
        ("median time to acknowledge", _duration(median_ack) or "–"),
        ("still open", str(sum(1 for a in alerts if a["state"] == "open"))),
        (f"sensor outages, {_duration(outage_s) or '0 s'} in all", str(len(data.outages))),
    ]
    body = "".join(f"<div class='card'><b>{_e(v)}</b><span>{_e(k)}</span></div>" for k, v in cards)
    return f"<section id='summary'><h2>Summary</h2><div class='cards'>{body}</div></section>"


def uptime_percent(segments: list[tuple[float, float, str, str]]) -> float | None:
    """A sensor's share of time ok, over the time it reported at all (the scanner ran): a
    period before the first report or after the last is not downtime, and is not listed as
    an outage either; None when it never reported."""
    running = sum(e - s for s, e, _st, _m in segments)
    ok = sum(e - s for s, e, st, _m in segments if st == "ok")
    return 100.0 * ok / running if running > 0 else None


def _running_s(data: PeriodData) -> float:
    """How long the scanner ran in the period: the union of every sensor's reported time."""
    spans = sorted((s, e) for segs in data.uptime.values() for s, e, _st, _m in segs)
    total, cur_s, cur_e = 0.0, None, None
    for s, e in spans:
        if cur_e is None or s > cur_e:
            if cur_s is not None and cur_e is not None:
                total += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_s is not None and cur_e is not None:
        total += cur_e - cur_s
    return total


def _ticks(since: float, until: float) -> tuple[list[float], str]:
    span = until - since
    step = next((s for s in TICK_STEPS if span / s <= MAX_TICKS), TICK_STEPS[-1])
    first = math.ceil(since / step) * step
    ticks = []
    t = float(first)
    while t <= until:
        ticks.append(t)
        t += step
    return ticks, ("%m-%d" if step >= 86400 else "%H:%M")


def _axis(x0: float, width: float, y: float, since: float, until: float) -> str:
    ticks, fmt = _ticks(since, until)
    span = until - since
    out = [f"<line x1='{x0}' y1='{y}' x2='{x0 + width}' y2='{y}' stroke='#9aa3ad'/>"]
    for t in ticks:
        x = x0 + (t - since) / span * width
        label = datetime.fromtimestamp(t, tz=UTC).strftime(fmt)
        out.append(f"<line x1='{x:.1f}' y1='{y}' x2='{x:.1f}' y2='{y + 5}' stroke='#9aa3ad'/>")
        out.append(f"<text x='{x:.1f}' y='{y + 17}' text-anchor='middle'>{label}</text>")
    return "".join(out)


def _pack(alerts: list[dict[str, Any]], end_of: Any) -> list[int]:
    """Greedy lane assignment so overlapping alerts sit on separate rows."""
    row_end: list[float] = []
    rows: list[int] = []
    for a in alerts:
        start, end = float(a["raised_ts"]), float(end_of(a))
        for i, free_at in enumerate(row_end):
            if free_at <= start:
                row_end[i] = end
                rows.append(i)
                break
        else:
            if len(row_end) < MAX_ALERT_ROWS:
                row_end.append(end)
                rows.append(len(row_end) - 1)
            else:
                best = min(range(len(row_end)), key=row_end.__getitem__)
                row_end[best] = max(row_end[best], end)
                rows.append(best)
    return rows


def _timeline(data: PeriodData) -> str:
    since, until = data.period.since, data.period.until
    span = until - since
    width, x0 = 980.0, 160.0
    now_edge = min(until, max(data.generated_ts, since))

    def end_of(a: dict[str, Any]) -> float:
        end = a.get("resolved_ts") or now_edge
        return float(min(max(end, float(a["raised_ts"]) + span / 400), until))

    def x(t: float) -> float:
        return x0 + (min(max(t, since), until) - since) / span * width

    alerts = sorted(data.alerts, key=lambda a: float(a["raised_ts"]))
    rows = _pack(alerts, end_of)
    alert_rows = max(rows, default=0) + 1
    row_h, lane_gap = 14.0, 10.0
    y = 10.0
    svg: list[str] = []
    alert_h = alert_rows * row_h
    svg.append(f"<text x='4' y='{y + alert_h / 2 + 4:.1f}'>Alerts ({len(alerts)})</text>")
    svg.append(
        f"<rect x='{x0}' y='{y}' width='{width}' height='{alert_h}' fill='#f7f8fa' "
        "stroke='#e3e6ea'/>"
    )
    for a, row in zip(alerts, rows, strict=True):
        ax, aend = x(float(a["raised_ts"])), x(end_of(a))
        colour = KIND_COLOURS.get(str(a["kind"]), "#e5483c")
        tip = (
            f"{a['id']}: {a['title']} · raised {_when(a['raised_ts'])} · "
            f"{a['handsets']} handset(s) · {a['state']}"
            + (f" · acknowledged by {a['acked_by']}" if a.get("acked_by") else "")
        )
        svg.append(
            f"<rect class='alert' x='{ax:.1f}' y='{y + row * row_h + 2:.1f}' "
            f"width='{max(aend - ax, 2.5):.1f}' height='{row_h - 4}' rx='2' fill='{colour}'>"
            f"<title>{_e(tip)}</title></rect>"
        )
        if a.get("acked_ts") is not None:
            kx = x(float(a["acked_ts"]))
            svg.append(
                f"<path d='M{kx:.1f} {y + row * row_h + 1:.1f} l3 -4 h-6 z' fill='#1d2b3a'>"
                f"<title>{_e('acknowledged by ' + str(a['acked_by']))}</title></path>"
            )
    y += alert_h + lane_gap
    sensor_h = 16.0
    for sensor, segments in sorted(data.uptime.items()):
        svg.append(f"<text x='4' y='{y + sensor_h / 2 + 4:.1f}'>{_e(sensor)}</text>")
        svg.append(
            f"<rect x='{x0}' y='{y}' width='{width}' height='{sensor_h}' fill='{UNKNOWN_COLOUR}'>"
            "<title>no health report</title></rect>"
        )
        for start, end, state, message in segments:
            sx, ex = x(start), x(end)
            svg.append(
                f"<rect x='{sx:.1f}' y='{y}' width='{max(ex - sx, 1.0):.1f}' height='{sensor_h}' "
                f"fill='{STATE_COLOURS.get(state, '#555')}'><title>{_e(sensor)} {_e(state)} "
                f"{_e(_when(start))}–{_e(_when(end))} {_e(message)}</title></rect>"
            )
        pct = uptime_percent(segments)
        svg.append(
            f"<text x='{x0 + width + 6}' y='{y + sensor_h / 2 + 4:.1f}'>"
            f"{'–' if pct is None else f'{pct:.1f}%'}</text>"
        )
        y += sensor_h + 6
    svg.append(_axis(x0, width, y + 2, since, until))
    height = y + 26
    legend = "".join(
        f"<span><i style='background:{c}'></i>{_e(k)}</span>" for k, c in STATE_COLOURS.items()
    ) + (
        f"<span><i style='background:{KIND_COLOURS['handset']}'></i>handset alert</span>"
        f"<span><i style='background:{KIND_COLOURS['unidentified_transmitter']}'></i>"
        "unidentified transmitter</span>"
        f"<span><i style='background:{UNKNOWN_COLOUR}'></i>no report</span>"
    )
    return (
        "<section id='timeline'><h2>Timeline: alerts and sensor uptime (UTC)</h2>"
        f"<svg id='timeline-plot' viewBox='0 0 {x0 + width + 50:.0f} {height:.0f}' "
        f"role='img' aria-label='timeline of alerts and sensor states'>{''.join(svg)}</svg>"
        f"<div class='legend'>{legend}</div>"
        "<p class='muted'>Percentages at the right are each sensor's time in state ok, of the "
        "time the scanner was running (grey: no report, the scanner was not running).</p>"
        "</section>"
    )


def _hour_bins(since: float, until: float) -> tuple[list[float], int]:
    step = 3600 if until - since <= 14 * 86400 else 86400
    first = math.floor(since / step) * step
    bins = []
    t = float(first)
    while t < until:
        bins.append(t)
        t += step
    return bins, step


def _bars(
    title: str, svg_id: str, bins: list[float], counts: list[int], step: int, colour: str
) -> str:
    width, height, x0, top = 1000.0, 160.0, 40.0, 20.0
    plot_h = height - 40
    peak = max(counts, default=0)
    scale = plot_h / peak if peak else 0.0
    bw = width / max(len(bins), 1)
    out = [
        f"<line x1='{x0}' y1='{top + plot_h}' x2='{x0 + width}' y2='{top + plot_h}' "
        "stroke='#9aa3ad'/>"
    ]
    out.append(f"<text x='{x0 - 6}' y='{top + 8}' text-anchor='end'>{peak}</text>")
    out.append(f"<text x='{x0 - 6}' y='{top + plot_h}' text-anchor='end'>0</text>")
    label_every = max(1, math.ceil(len(bins) / 24))
    fmt = "%H" if step == 3600 else "%m-%d"
    for i, (start, n) in enumerate(zip(bins, counts, strict=True)):
        h = n * scale
        bx = x0 + i * bw
        out.append(
            f"<rect class='bar' x='{bx + 1:.1f}' y='{top + plot_h - h:.1f}' "
            f"width='{max(bw - 2, 1):.1f}' height='{h:.1f}' fill='{colour}'>"
            f"<title>{_e(_when(start))}: {n}</title></rect>"
        )
        if n and bw >= 18:
            out.append(
                f"<text x='{bx + bw / 2:.1f}' y='{top + plot_h - h - 3:.1f}' "
                f"text-anchor='middle'>{n}</text>"
            )
        if i % label_every == 0:
            label = datetime.fromtimestamp(start, tz=UTC).strftime(fmt)
            out.append(
                f"<text x='{bx + bw / 2:.1f}' y='{top + plot_h + 15}' "
                f"text-anchor='middle'>{label}</text>"
            )
    unit = "hour (UTC)" if step == 3600 else "day (UTC)"
    return (
        f"<h3>{_e(title)} per {unit}</h3><svg id='{svg_id}' viewBox='0 0 {x0 + width + 10:.0f} "
        f"{height:.0f}' role='img' aria-label='{_e(title)} per {unit}'>{''.join(out)}</svg>"
    )


def _per_hour(data: PeriodData) -> str:
    since, until = data.period.since, data.period.until
    bins, step = _hour_bins(since, until)
    raised = Counter(
        int(float(a["raised_ts"]) // step) * step
        for a in data.alerts
        if since <= float(a["raised_ts"]) < until
    )
    sightings: Counter[int] = Counter()
    for hour, n in data.sightings_per_hour.items():
        sightings[int(hour // step) * step] += n
    return (
        "<section id='per-hour'><h2>Counts per hour</h2>"
        + _bars(
            "Alerts raised",
            "alerts-per-hour",
            bins,
            [raised[int(b)] for b in bins],
            step,
            "#e5483c",
        )
        + _bars(
            "Observations aggregated into sightings (all devices)",
            "sightings-per-hour",
            bins,
            [sightings[int(b)] for b in bins],
            step,
            "#3f7cc4",
        )
        + "</section>"
    )


def _table(
    section_id: str, title: str, headers: list[str], rows: list[list[str]], empty: str
) -> str:
    if not rows:
        return (
            f"<section id='{section_id}'><h2>{_e(title)}</h2>"
            f"<p class='muted'>{_e(empty)}</p></section>"
        )
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(r) + "</tr>" for r in rows)
    return (
        f"<section id='{section_id}'><h2>{_e(title)} ({len(rows)})</h2>"
        f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        "</div></section>"
    )


def _td(value: Any, cls: str = "") -> str:
    attr = f" class='{cls}'" if cls else ""
    return f"<td{attr}>{_e(value)}</td>"


def _alerts_table(data: PeriodData) -> str:
    rows = []
    for a in data.alerts:
        state = str(a["state"])
        colour = "#d0453b" if state == "open" else "#5b6470"
        rows.append(
            [
                f"<td><a class='mono' href='#alert-{_e(a['id'])}'>{_e(a['id'])}</a></td>",
                _td(_when(a["raised_ts"])),
                _td(_when(a.get("resolved_ts"))),
                _td(_duration(a.get("duration_s")), "num"),
                f"<td><span class='pill' style='background:{colour}'>{_e(state)}</span></td>",
                _td(a["kind"]),
                _td(a["handsets"], "num"),
                _td(", ".join(a["sensors"])),
                _td(a.get("acked_by") or ""),
                _td(_duration(a.get("time_to_ack_s")), "num"),
                _td(a.get("resolution") or ""),
            ]
        )
    return _table(
        "alerts",
        "Alerts",
        [
            "id",
            "raised (UTC)",
            "resolved (UTC)",
            "duration",
            "state",
            "kind",
            "handsets",
            "sensors",
            "acknowledged by",
            "time to ack",
            "resolution",
        ],
        rows,
        "No alert in this period.",
    )


def _acks_table(data: PeriodData) -> str:
    rows = [
        [
            _td(k["alert_id"], "mono"),
            _td(_when(k["ts"])),
            _td(k["actor"]),
            _td(_duration(k.get("time_to_ack_s")), "num"),
            _td(k.get("note", "")),
        ]
        for k in data.acknowledgements
    ]
    return _table(
        "acknowledgements",
        "Acknowledgements",
        ["alert", "at (UTC)", "by", "after", "note"],
        rows,
        "No acknowledgement in this period.",
    )


def _outages_table(data: PeriodData) -> str:
    rows = [
        [
            _td(o["sensor"]),
            f"<td><span class='pill' style='background:{STATE_COLOURS.get(o['state'], '#555')}'>"
            f"{_e(o['state'])}</span></td>",
            _td(_when(o["start_ts"])),
            _td(_when(o.get("end_ts")) or "ongoing"),
            _td(_duration(o["duration_s"]), "num"),
            _td(o["message"]),
        ]
        for o in data.outages
    ]
    return _table(
        "outages",
        "Sensor outages and degradations",
        ["sensor", "state", "from (UTC)", "to (UTC)", "for", "message"],
        rows,
        "Every sensor that reported stayed ok throughout the period.",
    )


def _sensors_table(data: PeriodData) -> str:
    rows = [
        [
            _td(s["sensor"]),
            _td(s["radio"]),
            _td(s["state"]),
            _td(_when(s["updated_ts"])),
            _td(_when(s.get("last_obs_ts"))),
            _td(s["message"]),
            _td(", ".join(f"{k}={v}" for k, v in sorted(s["counters"].items())), "mono"),
        ]
        for s in data.sensors
    ]
    return _table(
        "sensors",
        "Sensors at export time",
        [
            "sensor",
            "radio",
            "state",
            "updated (UTC)",
            "last observation (UTC)",
            "message",
            "counters",
        ],
        rows,
        "No sensor has reported.",
    )


def _allowlist_status(e: dict[str, Any], until: float) -> str:
    if e.get("flag") or e.get("match") == "fingerprint":
        return "inactive: a fingerprint names no device"
    expires = e.get("expires_ts")
    if isinstance(expires, int | float):
        return f"expired {_when(expires)}" if expires <= until else f"until {_when(expires)}"
    return "in force"


def _allowlist_value(e: dict[str, Any]) -> str:
    # An IRK tracks a phone wherever it goes: the report names it, never reveals it.
    value = str(e.get("value", ""))
    return f"{value[:6]}… (key)" if e.get("match") == "ble_irk" else value


def _allowlist_table(data: PeriodData) -> str:
    entries = [(e, "config (read-only)") for e in data.allowlist_config] + [
        (e, str(e.get("added_by", ""))) for e in data.allowlist
    ]
    rows = [
        [
            _td(e.get("match", "")),
            _td(_allowlist_value(e), "mono"),
            _td(e.get("label", "")),
            _td(who),
            _td(_when(e["added_ts"]) if e.get("added_ts") else ""),
            _td(_allowlist_status(e, data.period.until)),
        ]
        for e, who in entries
    ]
    return _table(
        "allowlist",
        "Allowlist in force in the period (configuration and supervisors' entries)",
        ["match", "value", "label", "added by", "added (UTC)", "status"],
        rows,
        "The allowlist was empty.",
    )


def _audit_table(data: PeriodData) -> str:
    rows = [
        [
            _td(r["seq"], "num"),
            _td(_when(r["ts"])),
            _td(r["actor"]),
            _td(r["action"]),
            _td(_short(r["detail"]), "mono"),
        ]
        for r in data.audit
    ]
    return _table(
        "audit",
        "Audit log",
        ["seq", "at (UTC)", "actor", "action", "detail"],
        rows,
        "Nobody changed anything in this period.",
    )


def _short(value: Any, limit: int = 240) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _evidence_table(extras: ReportExtras) -> str:
    if not extras.evidence:
        return ""
    # One row per alert and radio: an alert's IQ windows are many pairs of small files.
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for e in extras.evidence:
        grouped.setdefault((str(e["alert_id"]), str(e["radio"])), []).append(e)
    rows = []
    for (alert_id, radio), items in grouped.items():
        files = [e for e in items if e.get("file")]
        notes = "; ".join(str(e["note"]) for e in items if e.get("note") and not e.get("file"))
        if len(files) > 1:
            link = (
                f"<td class='mono'>{len(files)} files: <a href='{_e(files[0]['file'])}'>"
                f"{_e(files[0]['file'])}</a> … {_e(Path(files[-1]['file']).name)}</td>"
            )
        elif files:
            link = (
                f"<td class='mono'><a href='{_e(files[0]['file'])}'>{_e(files[0]['file'])}</a></td>"
            )
        else:
            link = _td("")
        rows.append(
            [
                _td(alert_id, "mono"),
                _td(radio),
                _td(files[0]["format"] if files else ""),
                _td(sum(int(e.get("count") or 0) for e in files), "num"),
                link,
                _td(_when(min((e["first_ts"] for e in files), default=None))),
                _td(notes),
            ]
        )
    return _table(
        "evidence",
        "Evidence in this bundle",
        ["alert", "radio", "format", "records", "files", "first record (UTC)", "note"],
        rows,
        "",
    )


def _unreadable(data: PeriodData) -> str:
    """First on the page when the store was damaged: what this report cannot show."""
    if not data.unreadable:
        return ""
    items = "".join(f"<li>{_e(u.get('words', ''))}</li>" for u in data.unreadable)
    return (
        "<section id='unreadable' class='damage'><h2>Store damaged: part of the period is "
        "missing</h2><p>The store had damaged pages when this report was made. Everything "
        "readable is below; these rows could not be read and are not counted anywhere in this "
        f"report (the bundle's <code>unreadable.ndjson</code> lists them too):</p><ul>{items}</ul>"
        "</section>"
    )


def _integrity(extras: ReportExtras) -> str:
    if not extras.chains:
        return ""
    rows = [
        [
            _td(name),
            _td(c.get("rows"), "num"),
            _td(c.get("head_seq"), "num"),
            _td(c.get("head_hash"), "mono hash"),
        ]
        for name, c in sorted(extras.chains.items())
    ]
    note = (
        "<p class='muted'>Alert history and audit records are hash-chained from the first record "
        "the unit ever stored. <code>checkpoint verify BUNDLE.tar.gz</code> recomputes every "
        "file hash and every link; compare the heads below with those of earlier exports.</p>"
    )
    table = _table(
        "chains",
        "Integrity: hash chain heads",
        ["chain", "records", "head seq", "head hash"],
        rows,
        "",
    )
    return table.replace("</h2>", "</h2>" + note, 1)


def store_heads(store: Store) -> dict[str, dict[str, Any]]:
    """Each chain's length and head in the store, for the report's integrity section."""
    heads: dict[str, dict[str, Any]] = {}
    for table in ("alert_history", "audit"):
        rows = store.query(
            f"SELECT COUNT(*) AS n, MAX(seq) AS s FROM {table}"  # noqa: S608 - table is one of our fixed names
        )
        last = store.query(f"SELECT hash FROM {table} ORDER BY seq DESC LIMIT 1")  # noqa: S608 - table is one of our fixed names
        heads[table] = {
            "rows": int(rows[0]["n"]),
            "head_seq": int(rows[0]["s"] or 0),
            "head_hash": str(last[0]["hash"]) if last else "0" * 64,
        }
    return heads


def stored_evidence(store: Store, data: PeriodData) -> list[dict[str, Any]]:
    """What the store keeps behind each alert of the period (the files are in a bundle)."""
    out: list[dict[str, Any]] = []
    ids = [str(a["id"]) for a in data.alerts]
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        marks = ",".join("?" * len(chunk))
        for r in store.query(
            f"SELECT alert_id, radio, format, COUNT(*) AS n, MIN(ts) AS first, MAX(ts) AS last "  # noqa: S608 - only "?" placeholders are formatted in
            f"FROM evidence WHERE alert_id IN ({marks}) GROUP BY alert_id, radio, format",
            tuple(chunk),
        ):
            out.append(
                {
                    "alert_id": r["alert_id"],
                    "radio": r["radio"],
                    "format": r["format"],
                    "count": int(r["n"]),
                    "file": "",
                    "first_ts": r["first"],
                    "last_ts": r["last"],
                    "note": f"{r['n']} {r['radio']} record(s) kept on the unit; "
                    "checkpoint export writes them to the bundle",
                }
            )
    return out


def write_report(
    store: Store, since: float, until: float, out: Path, now: float, site: str = ""
) -> int:
    """Render the period from the store into ``out``; returns the number of alerts shown."""
    data = collect(store, Period(since, until), now, site)
    extras = ReportExtras(
        chains=store_heads(store), source="local store", evidence=stored_evidence(store, data)
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(render(data, extras), encoding="utf-8")
    tmp.replace(out)
    return len(data.alerts)


# -- phones: every handset the scanner tracked, with its lanes -------------------------------
RADIO_COLOURS = {"wifi": "#3f7cc4", "ble": "#2e9d8f", "sdr": "#b0722a"}
IN_ZONE_COLOUR = "#e5483c"
# Minutes of sightings closer than this join into one "heard" span: a phone with its screen
# off probes or advertises every 30-60 s, so two sighting minutes 90 s apart are one stay.
HEARD_GAP_S = 90.0
# The level axis of a lane: -100 dBm (the floor of a phone's receivers) at the bottom, -30 dBm
# (a phone held against the sensor) at the top.
LEVEL_FLOOR_DBM, LEVEL_TOP_DBM = -100.0, -30.0
# Time shown around the phones' activity, so a bar at the edge is not cut.
LANE_MARGIN_S = 60.0


@dataclass(slots=True)
class Phone:
    """One phone: the devices the scanner joined into it (by an alert naming them together)."""

    name: str
    device_ids: list[str]
    vendor: str = ""
    identifiers: list[str] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    heard: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    levels: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    @property
    def in_zone(self) -> list[tuple[float, float | None, str]]:
        """From each alert's raise to its resolution (None: still inside at the end)."""
        return [
            (float(a["raised_ts"]), a.get("resolved_ts"), str(a["id"]))
            for a in sorted(self.alerts, key=lambda a: float(a["raised_ts"]))
        ]

    @property
    def first(self) -> float:
        spans = [s for v in self.heard.values() for s in v]
        starts = [s for s, _ in spans] + [float(a["raised_ts"]) for a in self.alerts]
        return min(starts, default=0.0)

    @property
    def last(self) -> float:
        ends = [e for v in self.heard.values() for _, e in v]
        ends += [float(a.get("resolved_ts") or a["updated_ts"]) for a in self.alerts]
        return max(ends, default=0.0)


def phones_of(data: PeriodData) -> list[Phone]:
    """Handset devices grouped into phones: devices one alert names together are one phone
    (the core joined them across radios); each phone's alerts, heard spans and levels."""
    kinds = {str(d["id"]): d for d in data.devices}
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for d in data.devices:
        if d.get("kind") == "handset":
            find(str(d["id"]))
    for a in data.alerts:
        ids = [str(i) for i in a["device_ids"] if not str(i).startswith("sdr:")]
        for other in ids[1:]:
            parent[find(other)] = find(ids[0])
        for i in ids[:1]:
            find(i)
    groups: dict[str, list[str]] = {}
    for device_id in list(parent):
        groups.setdefault(find(device_id), []).append(device_id)
    by_device: dict[str, list[dict[str, Any]]] = {}
    for s in data.sightings:
        by_device.setdefault(str(s["device_id"]), []).append(s)
    phones: list[Phone] = []
    for members in groups.values():
        members.sort()
        phone = Phone("", members)
        vendors = {str(kinds[m].get("vendor") or "") for m in members if m in kinds}
        phone.vendor = ", ".join(sorted(v for v in vendors if v))
        for m in members:
            idents = kinds.get(m, {}).get("identifiers") or {}
            if isinstance(idents, dict):
                phone.identifiers += [str(x) for x in idents.get("macs", [])]
                phone.identifiers += [str(x) for x in idents.get("ble", [])]
        phone.alerts = [a for a in data.alerts if any(str(i) in members for i in a["device_ids"])]
        rows = sorted(
            (s for m in members for s in by_device.get(m, [])), key=lambda s: s["first_ts"]
        )
        for s in rows:
            radio = str(s["radio"])
            spans = phone.heard.setdefault(radio, [])
            first, last = float(s["first_ts"]), float(s["last_ts"])
            if spans and first - spans[-1][1] <= HEARD_GAP_S:
                spans[-1] = (spans[-1][0], max(spans[-1][1], last))
            else:
                spans.append((first, last))
            if s.get("rssi_mean") is not None:
                phone.levels.setdefault(radio, []).append(
                    ((first + last) / 2, float(s["rssi_mean"]))
                )
        if phone.heard or phone.alerts:
            phones.append(phone)
    phones.sort(key=lambda p: (p.first, p.device_ids))
    for n, phone in enumerate(phones, start=1):
        phone.name = f"Phone {n}"
    return phones


def _clock(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, tz=UTC).strftime("%H:%M:%S")


def _intervals_text(phone: Phone) -> str:
    if not phone.alerts:
        return "never alerted (heard only)"
    return "; ".join(
        f"{_clock(start)}–{_clock(end) if end is not None else 'still in'} in zone"
        for start, end, _ in phone.in_zone
    )


def _phones(data: PeriodData) -> str:
    phones = phones_of(data)
    if not phones:
        return (
            "<section id='phones'><h2>Phones</h2><p class='muted'>No handset was heard in "
            "this period.</p></section>"
        )
    lo = max(data.period.since, min(p.first for p in phones) - LANE_MARGIN_S)
    now_edge = min(data.period.until, max(data.generated_ts, data.period.since))
    hi = min(now_edge, max(p.last for p in phones) + LANE_MARGIN_S)
    if hi <= lo:
        hi = lo + 2 * LANE_MARGIN_S
    width, x0 = 980.0, 160.0

    def x(t: float) -> float:
        return x0 + (min(max(t, lo), hi) - lo) / (hi - lo) * width

    row_h, gap = 15.0, 8.0
    y = 6.0
    svg: list[str] = []
    for phone in phones:
        svg.append(
            f"<text class='phone-name' x='4' y='{y + 11:.1f}' font-weight='bold'>"
            f"{_e(phone.name)}</text>"
        )
        lanes = ["in zone", *sorted(phone.heard)]
        for lane in lanes:
            label = lane if lane == "in zone" else f"heard: {lane}"
            svg.append(f"<text x='70' y='{y + 11:.1f}'>{_e(label)}</text>")
            svg.append(
                f"<rect x='{x0}' y='{y}' width='{width}' height='{row_h}' fill='#f7f8fa' "
                "stroke='#e3e6ea'/>"
            )
            if lane == "in zone":
                for start, end, alert_id in phone.in_zone:
                    sx = x(start)
                    ex = x(float(end) if end is not None else now_edge)
                    svg.append(
                        f"<rect class='in-zone' x='{sx:.1f}' y='{y + 2:.1f}' "
                        f"width='{max(ex - sx, 2.0):.1f}' height='{row_h - 4}' "
                        f"fill='{IN_ZONE_COLOUR}'><title>{_e(phone.name)} in the zone "
                        f"{_e(_when(start))}–{_e(_when(end) or 'end')} (alert "
                        f"{_e(alert_id)})</title></rect>"
                    )
            else:
                colour = RADIO_COLOURS.get(lane, "#555")
                for start, end in phone.heard[lane]:
                    sx, ex = x(start), x(end)
                    svg.append(
                        f"<rect class='heard' x='{sx:.1f}' y='{y + 4:.1f}' "
                        f"width='{max(ex - sx, 2.0):.1f}' height='{row_h - 8}' "
                        f"fill='{colour}' opacity='0.35'><title>{_e(phone.name)} heard on "
                        f"{_e(lane)} {_e(_when(start))}–{_e(_when(end))}</title></rect>"
                    )
                points = []
                for t, level in phone.levels.get(lane, []):
                    frac = (level - LEVEL_FLOOR_DBM) / (LEVEL_TOP_DBM - LEVEL_FLOOR_DBM)
                    ly = y + row_h - 1 - min(max(frac, 0.0), 1.0) * (row_h - 2)
                    points.append(f"{x(t):.1f},{ly:.1f}")
                if points:
                    svg.append(
                        f"<polyline class='level' points='{' '.join(points)}' fill='none' "
                        f"stroke='{colour}' stroke-width='1.5'><title>{_e(lane)} level, "
                        f"{LEVEL_FLOOR_DBM:.0f} to {LEVEL_TOP_DBM:.0f} dBm</title></polyline>"
                    )
            y += row_h + 2
        y += gap
    svg.append(
        _axis_fine(x0, width, y, lo, hi) if hi - lo <= 3 * 3600 else _axis(x0, width, y, lo, hi)
    )
    height = y + 26
    legend = (
        f"<span><i style='background:{IN_ZONE_COLOUR}'></i>in the zone (alert raised to "
        "resolved)</span>"
        + "".join(
            f"<span><i style='background:{c}'></i>heard on {_e(r)} (line: level, "
            f"{LEVEL_FLOOR_DBM:.0f} to {LEVEL_TOP_DBM:.0f} dBm)</span>"
            for r, c in RADIO_COLOURS.items()
        )
    )
    rows = [
        [
            _td(p.name, "nowrap"),
            _td(p.vendor or "unknown"),
            _td(", ".join(sorted(set(p.identifiers))) or ", ".join(p.device_ids), "mono"),
            _td(", ".join(sorted(p.heard)) or "–"),
            _td(_when(p.first), "nowrap"),
            _td(_when(p.last), "nowrap"),
            _td(_intervals_text(p)),
            "<td>"
            + ", ".join(
                f"<a class='mono' href='#alert-{_e(a['id'])}'>{_e(a['id'])}</a>" for a in p.alerts
            )
            + "</td>",
        ]
        for p in phones
    ]
    table = (
        _table(
            "phones-table",
            "Every phone, with its times in the zone",
            [
                "phone",
                "vendor",
                "addresses",
                "heard on",
                "first heard (UTC)",
                "last heard (UTC)",
                "in the zone (UTC)",
                "alerts",
            ],
            rows,
            "",
        )
        .replace("<section id='phones-table'>", "<div id='phones-table'>")
        .replace("</section>", "</div>")
    )
    return (
        f"<section id='phones'><h2>Phones ({len(phones)})</h2>"
        "<p class='muted'>Every handset the scanner tracked in the period. Devices one alert "
        "names together (a phone's Wi-Fi and Bluetooth) are one phone. In the zone: from the "
        "alert's raise to its resolution, as the guard was told.</p>"
        f"<svg id='phone-lanes' viewBox='0 0 {x0 + width + 10:.0f} {height:.0f}' role='img' "
        f"aria-label='each phone: in the zone, and heard on each radio'>{''.join(svg)}</svg>"
        f"<div class='legend'>{legend}</div>{table}</section>"
    )


# -- per alert: what was raised, who acknowledged, its phones' lanes, its evidence -----------
ALERT_PRE_S = 120.0  # the lanes start this long before the raise: the evidence's pre-roll
ALERT_POST_S = 60.0


def _alert_cards(data: PeriodData, extras: ReportExtras) -> str:
    if not data.alerts:
        return ""
    phones = phones_of(data)
    acks: dict[str, list[dict[str, Any]]] = {}
    for k in data.acknowledgements:
        acks.setdefault(str(k["alert_id"]), []).append(k)
    files: dict[str, list[dict[str, Any]]] = {}
    for e in extras.evidence:
        files.setdefault(str(e["alert_id"]), []).append(e)
    now_edge = min(data.period.until, max(data.generated_ts, data.period.since))
    cards = []
    for a in sorted(data.alerts, key=lambda a: float(a["raised_ts"])):
        alert_id = str(a["id"])
        mine = [p for p in phones if any(x["id"] == a["id"] for x in p.alerts)]
        raised = float(a["raised_ts"])
        end = float(a["resolved_ts"]) if a.get("resolved_ts") is not None else now_edge
        lo, hi = raised - ALERT_PRE_S, max(end, raised + 1.0) + ALERT_POST_S
        ack_lines = (
            "".join(
                f"<li>acknowledged {_e(_when(k['ts']))} UTC by <b>{_e(k['actor'])}</b> after "
                f"{_e(_duration(k.get('time_to_ack_s')))}"
                + (f": “{_e(k['note'])}”" if k.get("note") else " (no note)")
                + "</li>"
                for k in acks.get(alert_id, [])
            )
            or "<li>not acknowledged</li>"
        )
        evidence = files.get(alert_id, [])
        ev_lines = "".join(
            (
                f"<li><a class='mono' href='{_e(e['file'])}'>{_e(e['file'])}</a> · "
                f"{_e(e['radio'])} · {_e(e['format'])} · {_e(e['count'])} record(s)</li>"
            )
            if e.get("file")
            else f"<li class='muted'>{_e(e.get('note', ''))}</li>"
            for e in evidence
        )
        sdr = [e for e in evidence if e.get("radio") == "sdr" and e.get("file")]
        if len(sdr) > 1:
            # One line for the IQ windows: each is a pair of files, listed in the index.
            ev_lines = "".join(
                (
                    f"<li><a class='mono' href='{_e(e['file'])}'>{_e(e['file'])}</a> · "
                    f"{_e(e['radio'])} · {_e(e['format'])} · {_e(e['count'])} record(s)</li>"
                )
                if e.get("file")
                else f"<li class='muted'>{_e(e.get('note', ''))}</li>"
                for e in evidence
                if e.get("radio") != "sdr"
            ) + (
                f"<li>{len(sdr)} IQ windows (SigMF): "
                + ", ".join(
                    f"<a class='mono' href='{_e(e['file'])}'>{_e(Path(e['file']).stem)}</a>"
                    for e in sdr
                )
                + "</li>"
            )
        if not evidence:
            ev_lines = f"<li class='muted'>{_e(_no_evidence(extras))}</li>"
        bursts = [float(e["first_ts"]) for e in sdr if e.get("first_ts") is not None]
        svg = _alert_lanes(a, mine, lo, hi, end, acks.get(alert_id, []), bursts)
        reasons = "".join(f"<li>{_e(r)}</li>" for r in a["reasons"])
        cards.append(
            f"<article class='alert-card' id='alert-{_e(alert_id)}'>"
            f"<h3>{_e(a['title'])} <span class='mono muted'>{_e(alert_id)}</span></h3>"
            f"<p>{_e(a['kind'])} · raised {_e(_when(raised))} UTC · "
            + (
                f"resolved {_e(_when(a.get('resolved_ts')))} UTC ({_e(a.get('resolution'))})"
                if a.get("resolved_ts") is not None
                else "still open"
            )
            + f" · {_e(a['handsets'])} handset(s) · heard on {_e(', '.join(a['sensors']))} · "
            f"confidence {float(a['confidence']):.2f} · phones: "
            + (", ".join(_e(p.name) for p in mine) or "none tracked")
            + "</p>"
            f"{svg}<div class='cols'><div><h4>Why</h4><ul>{reasons}</ul></div>"
            f"<div><h4>Guard</h4><ul>{ack_lines}</ul></div>"
            f"<div><h4>Evidence</h4><ul>{ev_lines}</ul></div></div></article>"
        )
    return f"<section id='alert-detail'><h2>Each alert</h2>{''.join(cards)}</section>"


def _no_evidence(extras: ReportExtras) -> str:
    if extras.source == "local store":
        return "evidence is in the export bundle (checkpoint export), not in this page"
    return "no evidence kept for this alert"


def _alert_lanes(
    alert: dict[str, Any],
    phones: list[Phone],
    lo: float,
    hi: float,
    end: float,
    acks: list[dict[str, Any]],
    bursts: Sequence[float] = (),
) -> str:
    width, x0, row_h = 980.0, 160.0, 15.0

    def x(t: float) -> float:
        return x0 + (min(max(t, lo), hi) - lo) / (hi - lo) * width

    svg: list[str] = []
    y = 4.0
    raised = float(alert["raised_ts"])
    svg.append(f"<text x='4' y='{y + 11:.1f}'>alert</text>")
    svg.append(
        f"<rect x='{x0}' y='{y}' width='{width}' height='{row_h}' fill='#f7f8fa' stroke='#e3e6ea'/>"
    )
    colour = KIND_COLOURS.get(str(alert["kind"]), IN_ZONE_COLOUR)
    svg.append(
        f"<rect x='{x(raised):.1f}' y='{y + 2}' width='{max(x(end) - x(raised), 2.0):.1f}' "
        f"height='{row_h - 4}' fill='{colour}'><title>raised {_e(_when(raised))}, "
        f"{'resolved' if alert.get('resolved_ts') else 'open at'} {_e(_when(end))}</title></rect>"
    )
    for k in acks:
        kx = x(float(k["ts"]))
        svg.append(
            f"<path d='M{kx:.1f} {y + row_h:.1f} l4 6 h-8 z' fill='#1d2b3a'><title>"
            f"acknowledged by {_e(k['actor'])} {_e(_when(k['ts']))}</title></path>"
        )
    y += row_h + 8
    for phone in phones:
        for radio in sorted(phone.heard):
            spans = [(s, e) for s, e in phone.heard[radio] if e >= lo and s <= hi]
            svg.append(f"<text x='4' y='{y + 11:.1f}'>{_e(phone.name)}: {_e(radio)}</text>")
            svg.append(
                f"<rect x='{x0}' y='{y}' width='{width}' height='{row_h}' fill='#f7f8fa' "
                "stroke='#e3e6ea'/>"
            )
            c = RADIO_COLOURS.get(radio, "#555")
            for s, e in spans:
                svg.append(
                    f"<rect x='{x(s):.1f}' y='{y + 4}' width='{max(x(e) - x(s), 2.0):.1f}' "
                    f"height='{row_h - 8}' fill='{c}' opacity='0.35'/>"
                )
            points = []
            for t, level in phone.levels.get(radio, []):
                if lo <= t <= hi:
                    frac = (level - LEVEL_FLOOR_DBM) / (LEVEL_TOP_DBM - LEVEL_FLOOR_DBM)
                    ly = y + row_h - 1 - min(max(frac, 0.0), 1.0) * (row_h - 2)
                    points.append(f"{x(t):.1f},{ly:.1f}")
            if points:
                svg.append(
                    f"<polyline points='{' '.join(points)}' fill='none' stroke='{c}' "
                    "stroke-width='1.5'/>"
                )
            y += row_h + 2
    if bursts:
        # The SDR hears uplink energy, not a device: one tick per burst whose IQ was kept.
        svg.append(f"<text x='4' y='{y + 11:.1f}'>uplink energy: sdr</text>")
        svg.append(
            f"<rect x='{x0}' y='{y}' width='{width}' height='{row_h}' fill='#f7f8fa' "
            "stroke='#e3e6ea'/>"
        )
        c = RADIO_COLOURS["sdr"]
        for t in bursts:
            if lo <= t <= hi:
                svg.append(
                    f"<line class='burst' x1='{x(t):.1f}' y1='{y + 2}' x2='{x(t):.1f}' "
                    f"y2='{y + row_h - 2}' stroke='{c}' stroke-width='1.5'/>"
                )
        y += row_h + 2
    svg.append(_axis_fine(x0, width, y + 2, lo, hi))
    return (
        f"<svg class='alert-lanes' viewBox='0 0 {x0 + width + 10:.0f} {y + 28:.0f}' role='img' "
        f"aria-label='the alert and its phones over time'>{''.join(svg)}</svg>"
    )


def _axis_fine(x0: float, width: float, y: float, since: float, until: float) -> str:
    """A time axis with seconds, for spans of minutes."""
    span = until - since
    step = next(
        (s for s in (10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600) if span / s <= 10), 3600
    )
    out = [f"<line x1='{x0}' y1='{y}' x2='{x0 + width}' y2='{y}' stroke='#9aa3ad'/>"]
    t = math.ceil(since / step) * step
    while t <= until:
        px = x0 + (t - since) / span * width
        out.append(f"<line x1='{px:.1f}' y1='{y}' x2='{px:.1f}' y2='{y + 5}' stroke='#9aa3ad'/>")
        out.append(
            f"<text x='{px:.1f}' y='{y + 17}' text-anchor='middle'>{_clock(float(t))}</text>"
        )
        t += step
    return "".join(out)
