"""Typed tables written twice: NDJSON for programs, CSV for spreadsheets.

Every table declares its columns with a kind, so both files carry the same typed values:

* ``time``: unix seconds in the store. NDJSON and CSV carry two columns, ``<name>`` with unix
  seconds (a number) and ``<name>_iso`` with ISO 8601 UTC: a spreadsheet sorts, a person reads.
* ``int`` / ``float``: unquoted numbers; ``bool``: ``true`` / ``false``.
* ``list``: a JSON list in NDJSON, ``;``-joined text in CSV.
* ``json``: any JSON value in NDJSON, its compact JSON text in CSV.
* ``str``: text; absent values are empty cells in CSV and ``null`` in NDJSON.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from scanner.export.timefmt import iso

KINDS = ("str", "int", "float", "bool", "time", "list", "json")


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: str = "str"


@dataclass(frozen=True, slots=True)
class Table:
    """A named table: ``<name>.ndjson`` and ``<name>.csv`` in the bundle."""

    name: str
    columns: tuple[Column, ...]

    def header(self) -> list[str]:
        names: list[str] = []
        for col in self.columns:
            names.append(col.name)
            if col.kind == "time":
                names.append(f"{col.name}_iso")
        return names

    def typed(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """One row as the NDJSON object: declared columns only, values coerced to their kind."""
        out: dict[str, Any] = {}
        for col in self.columns:
            value = _coerce(col, row.get(col.name))
            out[col.name] = value
            if col.kind == "time":
                out[f"{col.name}_iso"] = iso(value)
        return out


def _coerce(col: Column, value: Any) -> Any:
    if value is None:
        return [] if col.kind == "list" else None
    kind = col.kind
    if kind == "int":
        return int(value)
    if kind in ("float", "time"):
        number = float(value)
        return number if math.isfinite(number) else None
    if kind == "bool":
        return bool(value)
    if kind == "list":
        return list(value)
    if kind == "json":
        return value
    return str(value)


def _cell(col: Column, value: Any) -> str:
    if value is None:
        return ""
    if col.kind == "bool":
        return "true" if value else "false"
    if col.kind in ("float", "time"):
        # repr keeps every digit of a float and never uses a locale's decimal comma.
        return repr(float(value))
    if col.kind == "list":
        return ";".join(str(v) for v in value)
    if col.kind == "json":
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def to_ndjson(table: Table, rows: Iterable[Mapping[str, Any]]) -> bytes:
    lines = [
        json.dumps(table.typed(r), sort_keys=False, separators=(",", ":"), ensure_ascii=False)
        for r in rows
    ]
    return ("\n".join(lines) + ("\n" if lines else "")).encode("utf-8")


def to_csv(table: Table, rows: Iterable[Mapping[str, Any]]) -> bytes:
    buf = io.StringIO()
    # QUOTE_MINIMAL leaves numbers and ISO times bare, so a spreadsheet types them itself.
    writer = csv.writer(buf, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(table.header())
    for row in rows:
        typed = table.typed(row)
        cells: list[str] = []
        for col in table.columns:
            cells.append(_cell(col, typed[col.name]))
            if col.kind == "time":
                cells.append(typed[f"{col.name}_iso"] or "")
        writer.writerow(cells)
    return buf.getvalue().encode("utf-8")


def _cols(spec: str) -> tuple[Column, ...]:
    """``"id raised_ts:time handsets:int"`` -> columns (kind defaults to str)."""
    out: list[Column] = []
    for item in spec.split():
        name, _, kind = item.partition(":")
        out.append(Column(name, kind or "str"))
    return tuple(out)


ALERTS = Table(
    "alerts",
    _cols(
        "id kind state title raised_ts:time updated_ts:time resolved_ts:time resolution "
        "acked_ts:time acked_by ack_note confidence:float handsets:int sensors:list reasons:list "
        "device_ids:list duration_s:float time_to_ack_s:float"
    ),
)
ALERT_HISTORY = Table(
    "alert_history", _cols("seq:int alert_id ts:time event actor detail:json hash")
)
ACKNOWLEDGEMENTS = Table(
    "acknowledgements",
    _cols("alert_id ts:time actor note raised_ts:time time_to_ack_s:float seq:int"),
)
SIGHTINGS = Table(
    "sightings",
    _cols(
        "id:int device_id radio sensor first_ts:time last_ts:time count:int rssi_min:float "
        "rssi_max:float rssi_mean:float identifier alert_ids:list"
    ),
)
DEVICES = Table(
    "devices",
    _cols(
        "id kind vendor first_seen:time last_seen:time radios:list identifiers:json "
        "evidence:list last_rssi:float in_zone:bool ambient:bool"
    ),
)
AUDIT = Table("audit", _cols("seq:int ts:time actor action detail:json hash"))
SENSOR_HEALTH = Table(
    "sensor_health",
    _cols("sensor radio state message updated_ts:time last_obs_ts:time counters:json detail:json"),
)
HEALTH_LOG = Table("health_log", _cols("id:int ts:time sensor state message"))
OUTAGES = Table(
    "outages",
    _cols("sensor state start_ts:time end_ts:time duration_s:float message ongoing:bool"),
)
ALLOWLIST = Table("allowlist", _cols("id:int match value label added_by added_ts:time"))
EVIDENCE_INDEX = Table(
    "evidence_index",
    _cols("alert_id radio format count:int file first_ts:time last_ts:time note"),
)
# Rows a damaged store would not give back: by table and rowid range, and which part of the
# export needed them. Only in a bundle from a damaged store, so not in ALL_TABLES.
UNREADABLE = Table("unreadable", _cols("table what first_rowid:int last_rowid:int error words"))

ALL_TABLES = (
    ALERTS,
    ALERT_HISTORY,
    ACKNOWLEDGEMENTS,
    SIGHTINGS,
    DEVICES,
    AUDIT,
    SENSOR_HEALTH,
    HEALTH_LOG,
    OUTAGES,
    ALLOWLIST,
    EVIDENCE_INDEX,
)
