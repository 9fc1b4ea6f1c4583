"""The after-action bundle: one tar.gz with everything a review of a period needs.

Layout (inside one top folder)::

    MANIFEST.json                 sha256 of every file, chain heads, digest and seal
    README.txt                    what each file is and how to check the bundle
    report.html                   the self-contained report (inline CSS and SVG)
    <table>.ndjson / <table>.csv  alerts, alert_history, acknowledgements, sightings, devices,
                                  audit, sensor_health, health_log, outages, allowlist,
                                  evidence_index
    config.json                   settings and configuration in force (secrets redacted)
    chain/alert_history.ndjson    EVERY alert-history record from the first one, with hashes
    chain/audit.ndjson            EVERY audit record from the first one, with hashes
    evidence/<alert>/wifi.pcap    frames behind the alert (link type 127)
    evidence/<alert>/ble.jsonl    advertisements behind the alert
    evidence/<alert>/sdr-N.sigmf-meta + .sigmf-data   IQ around SDR bursts

Why the whole chain and not only the period: a verifier can only prove nothing was removed
from the period if it can walk the links from the genesis record through the period to the
head. Records before the period are small (one per alert transition) and carry no radio data.
The export itself is audited (with the chain head at that moment) before the bundle is read,
so a later bundle proves the history was not cut back behind an earlier export.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sqlite3
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scanner import __version__
from scanner.config import Config
from scanner.export import tables
from scanner.export.collect import Period, PeriodData, collect_in_snapshot, redact, snapshot
from scanner.export.evidence import alert_evidence, safe_name
from scanner.export.manifest import FORMAT, MANIFEST_NAME, manifest_bytes, sha256
from scanner.export.pseudonym import Identity, Pseudonymiser
from scanner.export.report_html import ReportExtras, render
from scanner.export.salvage import SalvageReader, Unreadable
from scanner.export.seal_key import seal_keys
from scanner.export.timefmt import iso
from scanner.store.chain import append_audit
from scanner.store.db import Store
from scanner.store.integrity import describe, is_corrupt

_LOGGER = logging.getLogger(__name__)

CHAIN_FILES = {"alert_history": "chain/alert_history.ndjson", "audit": "chain/audit.ndjson"}
CHAIN_COLUMNS = {
    "alert_history": ("seq", "alert_id", "ts", "event", "actor", "detail", "prev_hash", "hash"),
    "audit": ("seq", "ts", "actor", "action", "detail", "prev_hash", "hash"),
}
EXPORT_ACTION = "export"


@dataclass(frozen=True, slots=True)
class BundleSummary:
    """What an export wrote."""

    path: Path
    files: int
    bytes: int
    alerts: int
    evidence_files: int
    chains: dict[str, dict[str, Any]] = field(default_factory=dict)
    # What a damaged store would not give back, in words; empty when it was intact.
    unreadable: tuple[str, ...] = ()
    # Why the export could not be recorded in the audit log; empty when it was.
    unaudited: str = ""


def top_folder(period: Period) -> str:
    def stamp(ts: float) -> str:
        return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y%m%dT%H%M%SZ")

    return f"checkpoint-export-{stamp(period.since)}-{stamp(period.until)}"


def _chain_rows(reader: SalvageReader, table: str) -> list[dict[str, Any]]:
    cols = ", ".join(CHAIN_COLUMNS[table])
    return reader.select(table, order=("seq",), what=f"the {table} chain", columns=cols)


def _pseudonymise_chain(rows: list[dict[str, Any]], pseudo: Pseudonymiser) -> None:
    for row in rows:
        changed = False
        for name in ("alert_id", "detail"):
            if name in row:
                new = pseudo.text(str(row[name]))
                if new != row[name]:
                    row[name] = new
                    changed = True
        if changed:
            # The content hash can no longer be recomputed; the verifier checks the links only.
            row["pseudonymised"] = True


def _pseudonymise_data(data: PeriodData, pseudo: Pseudonymiser) -> None:
    for rows in (
        data.alerts,
        data.history,
        data.acknowledgements,
        data.sightings,
        data.devices,
        data.audit,
        data.allowlist,
        data.sensors,
    ):
        for row in rows:
            for key in list(row):
                if key not in ("hash", "prev_hash"):
                    row[key] = pseudo.value(row[key])
    data.settings = pseudo.value(data.settings)


def _ndjson_lines(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(
        json.dumps(r, separators=(",", ":"), ensure_ascii=False).encode() + b"\n" for r in rows
    )


def _heads(rows: list[dict[str, Any]]) -> dict[str, Any]:
    last = rows[-1] if rows else None
    return {
        "rows": len(rows),
        "head_seq": last["seq"] if last else 0,
        "head_hash": last["hash"] if last else "0" * 64,
    }


def record_export(store: Store, actor: str, period: Period, pseudonymise: bool, now: float) -> None:
    """Audit the export, with the alert-history head it is about to carry."""
    with store.write(durable=True) as conn:
        row = conn.execute(
            "SELECT seq, hash FROM alert_history ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        append_audit(
            conn,
            now,
            actor,
            EXPORT_ACTION,
            {
                "since": period.since,
                "until": period.until,
                "pseudonymised": pseudonymise,
                "alert_history_seq": int(row["seq"]) if row else 0,
                "alert_history_head": str(row["hash"]) if row else "0" * 64,
            },
        )


def build_bundle(
    store: Store,
    period: Period,
    out: str | Path,
    *,
    pseudonymise: bool = False,
    actor: str = "cli",
    config: Config | None = None,
    now: float | None = None,
    seal_key: str | Path | None = None,
) -> BundleSummary:
    """Write the bundle for ``period`` to ``out`` (atomically: a temp file, then a rename).

    ``seal_key`` names the sealing key's file (else it is found as ``seal_key.key_path``
    says); a key file that cannot be read is ``SealKeyError``, before anything is written.
    """
    now = time.time() if now is None else now
    key = seal_keys(store, seal_key).current
    unrecorded = ""
    try:
        record_export(store, actor, period, pseudonymise, now)
    except sqlite3.DatabaseError as exc:
        # A damaged or full store must not cost the export; the bundle says it went unaudited.
        unrecorded = describe(exc)
        _LOGGER.warning("export not recorded in the audit log: %s", unrecorded)
    reader = SalvageReader(store)
    site = (
        config.site
        if config is not None
        else str(
            reader.attempt("settings", "the site name", lambda: store.get_setting("site_name"), "")
            or ""
        )
    )
    with snapshot(store):
        data = collect_in_snapshot(store, period, now, site)
        chains = {name: _chain_rows(reader, name) for name in CHAIN_FILES}
    store_ids = [str(a["id"]) for a in data.alerts]  # evidence is keyed by the real id
    pseudo: Pseudonymiser | Identity = Pseudonymiser(key) if pseudonymise else Identity()
    if isinstance(pseudo, Pseudonymiser):
        _pseudonymise_data(data, pseudo)
        for rows in chains.values():
            _pseudonymise_chain(rows, pseudo)
    heads = {name: {"file": CHAIN_FILES[name], **_heads(rows)} for name, rows in chains.items()}
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    folder = top_folder(period)
    digests: dict[str, dict[str, Any]] = {}
    evidence_index: list[dict[str, Any]] = []
    evidence_files = 0
    used_folders: set[str] = set()
    fd, tmp_name = tempfile.mkstemp(prefix=".export-", suffix=".tar.gz", dir=out_path.parent)
    os.close(fd)
    try:
        with tarfile.open(tmp_name, "w:gz", compresslevel=6) as tar:

            def add(name: str, payload: bytes) -> None:
                info = tarfile.TarInfo(f"{folder}/{name}")
                info.size = len(payload)
                info.mtime = int(now)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(payload))
                digests[name] = {"sha256": sha256(payload), "bytes": len(payload)}

            for name, payload in _table_files(data):
                add(name, payload)
            for name, rows in chains.items():
                add(CHAIN_FILES[name], _ndjson_lines(rows))
            add("config.json", _config_json(data, config))
            for alert, store_id in zip(data.alerts, store_ids, strict=True):
                folder_name = f"evidence/{safe_name(str(alert['id']))}"
                if folder_name in used_folders:
                    # Two ids that differ only in characters a file name cannot hold.
                    folder_name += f"-{len(used_folders)}"
                used_folders.add(folder_name)
                try:
                    found = list(alert_evidence(store, store_id, folder_name, pseudo))
                except sqlite3.DatabaseError as exc:
                    if not is_corrupt(exc):
                        raise
                    reader.unreadable.append(
                        Unreadable(
                            "evidence", f"evidence of alert {alert['id']}", None, None, str(exc)
                        )
                    )
                    found = []
                for ev in found:
                    if ev.name:
                        add(ev.name, ev.data)
                        evidence_files += 1
                    if ev.index:
                        evidence_index.append({**ev.index, "alert_id": alert["id"]})
            for suffix, writer in ((".ndjson", tables.to_ndjson), (".csv", tables.to_csv)):
                add(f"evidence_index{suffix}", writer(tables.EVIDENCE_INDEX, evidence_index))
            unreadable = _unreadable(data.unreadable + reader.report())
            data.unreadable = unreadable
            for suffix, writer in ((".ndjson", tables.to_ndjson), (".csv", tables.to_csv)):
                if unreadable:
                    add(f"unreadable{suffix}", writer(tables.UNREADABLE, unreadable))
            extras = ReportExtras(
                chains=heads,
                pseudonymised=pseudonymise,
                evidence=evidence_index,
                source=f"checkpoint {__version__}",
            )
            add("report.html", render(data, extras).encode("utf-8"))
            add("README.txt", _readme(period, pseudonymise, unreadable, unrecorded).encode("utf-8"))
            fields = {
                "format": FORMAT,
                "software": f"checkpoint {__version__}",
                "site": data.site,
                "since": period.since,
                "since_iso": iso(period.since),
                "until": period.until,
                "until_iso": iso(period.until),
                "generated": now,
                "generated_iso": iso(now),
                "pseudonymised": pseudonymise,
                "counts": {
                    "alerts": len(data.alerts),
                    "alert_history": len(data.history),
                    "sightings": len(data.sightings),
                    "audit": len(data.audit),
                    "evidence_files": evidence_files,
                    "unreadable": len(unreadable),
                },
                # What the store could not give back (damaged pages): the bundle holds the rest.
                "unreadable": unreadable,
                "audited": not unrecorded,
                "chains": heads,
                "files": dict(sorted(digests.items())),
            }
            manifest = manifest_bytes(fields, key)
            info = tarfile.TarInfo(f"{folder}/{MANIFEST_NAME}")
            info.size = len(manifest)
            info.mtime = int(now)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(manifest))
        Path(tmp_name).replace(out_path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    size = out_path.stat().st_size
    _LOGGER.info("export %s: %d files, %d bytes", out_path, len(digests) + 1, size)
    return BundleSummary(
        out_path,
        len(digests) + 1,
        size,
        len(data.alerts),
        evidence_files,
        heads,
        tuple(str(u["words"]) for u in unreadable),
        unrecorded,
    )


def _table_files(data: PeriodData) -> Iterator[tuple[str, bytes]]:
    pairs = (
        (tables.ALERTS, data.alerts),
        (tables.ALERT_HISTORY, data.history),
        (tables.ACKNOWLEDGEMENTS, data.acknowledgements),
        (tables.SIGHTINGS, data.sightings),
        (tables.DEVICES, data.devices),
        (tables.AUDIT, data.audit),
        (tables.SENSOR_HEALTH, data.sensors),
        (tables.HEALTH_LOG, data.health_log),
        (tables.OUTAGES, data.outages),
        (tables.ALLOWLIST, data.allowlist),
    )
    for table, rows in pairs:
        yield f"{table.name}.ndjson", tables.to_ndjson(table, rows)
        yield f"{table.name}.csv", tables.to_csv(table, rows)


def _config_json(data: PeriodData, config: Config | None) -> bytes:
    doc = {
        "settings": data.settings,
        "config_file": str(config.path) if config is not None and config.path else None,
        "config": redact(config.sections) if config is not None else None,
    }
    return json.dumps(doc, indent=1, sort_keys=True, default=str).encode() + b"\n"


def _unreadable(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per table and rowid range, in table order."""
    seen: dict[tuple[Any, Any, Any], dict[str, Any]] = {}
    for e in entries:
        key = (e["table"], e["first_rowid"], e["last_rowid"])
        if key in seen:
            whats = seen[key]["what"].split("; ")
            if e["what"] not in whats:
                seen[key] = {**seen[key], "what": "; ".join([*whats, e["what"]])}
        else:
            seen[key] = dict(e)
    out = [
        {
            **e,
            "words": Unreadable(
                e["table"], e["what"], e["first_rowid"], e["last_rowid"], e["error"]
            ).words(),
        }
        for e in seen.values()
    ]
    return sorted(out, key=lambda e: (e["table"], e["first_rowid"] or 0))


def _readme(
    period: Period, pseudonymise: bool, unreadable: list[dict[str, Any]], unrecorded: str
) -> str:
    damage = ""
    if unreadable:
        damage = (
            "\nTHE STORE WAS DAMAGED: these rows could not be read and are NOT in this bundle\n"
            "(unreadable.ndjson lists them; everything else was read and is checked as usual):\n"
            + "".join(f"  {e['words']}\n" for e in unreadable)
        )
    if unrecorded:
        damage += f"\nThis export could not be recorded in the audit log: {unrecorded}\n"
    return (
        "Checkpoint Scanner after-action bundle\n"
        f"Period: {iso(period.since)} to {iso(period.until)} (UTC; end excluded)\n"
        + damage
        + (
            "MAC and BLE addresses are pseudonymised with this site's key.\n"
            if pseudonymise
            else ""
        )
        + "\nOpen report.html in any browser (it needs no network).\n"
        "Each table is given twice: .ndjson (one JSON object per line) and .csv (header row;\n"
        "times as unix seconds and as ISO 8601 in the column named <name>_iso).\n"
        "chain/ holds every alert-history and audit record from the first, hash-chained.\n"
        "evidence/ holds Wi-Fi frames (pcap), BLE adverts (JSONL) and IQ (SigMF) per alert.\n"
        "\nCheck it:  checkpoint verify THIS_FILE.tar.gz\n"
        "MANIFEST.json lists the sha256 of every file and the head of each chain.\n"
    )
