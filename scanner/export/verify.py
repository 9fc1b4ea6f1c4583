"""Checking an after-action bundle: files against the manifest, chains link by link, and the
alerts against their chained history.

Every problem is one line that names what was altered, removed, reordered, missing or added, so
the person holding the bundle knows which record to distrust. The first broken chain record is
always named first.
"""

from __future__ import annotations

import hmac
import tarfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from scanner import safe_json
from scanner.export.bundle import CHAIN_FILES, EXPORT_ACTION
from scanner.export.manifest import MANIFEST_NAME, ManifestError, parse_manifest, seal_of, sha256
from scanner.export.timefmt import iso
from scanner.store.chain import (
    ALERT_HISTORY_KEYS,
    AUDIT_KEYS,
    GENESIS,
    derive_chain_key,
    link,
)
from scanner.store.evidence import EVIDENCE_EVENT, digest_of, item_digest, item_digest_sigmf

CHAIN_KEYS = {"alert_history": ALERT_HISTORY_KEYS, "audit": AUDIT_KEYS}
# The chains whose links are keyed by a key derived from the sealing key (the audit log is
# written by the command line as well, which need not hold the key: plain SHA-256).
KEYED_CHAINS = frozenset({"alert_history"})
# Two records of one alert may be stamped by two clocks: the API stamps an acknowledgement with
# its wall clock, the core a transition with the capture time of the record behind it, which
# reaches the core through a queue (about a second behind at worst). Beyond that, out of order.
CLOCK_SKEW_S = 2.0
# Past this many chain problems the rest are summarised: the first one is what matters.
MAX_CHAIN_LINES = 8


@dataclass(slots=True)
class VerifyReport:
    """What ``checkpoint verify`` found: problems make it fail, notes only inform."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def read_bundle(path: str | Path) -> tuple[dict[str, bytes], list[str]]:
    """The bundle's regular files by name (top folder removed), and problems reading it."""
    files: dict[str, bytes] = {}
    problems: list[str] = []
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                name = PurePosixPath(member.name)
                if name.is_absolute() or ".." in name.parts:
                    problems.append(f"EXTRA: unsafe path {member.name!r} in the bundle")
                    continue
                if not member.isfile():
                    if not member.isdir():
                        problems.append(f"EXTRA: {member.name} is not a regular file")
                    continue
                handle = tar.extractfile(member)
                if handle is not None:
                    files[member.name] = handle.read()
            # tarfile stops quietly at a damaged header after the first member; reading the
            # compressed stream to its end makes gzip check its CRC and length.
            stream = tar.fileobj
            while stream is not None and stream.read(1 << 20):
                pass
    except (OSError, EOFError, tarfile.TarError, zlib.error) as exc:
        problems.append(f"UNREADABLE: {path} is not an intact tar.gz bundle ({exc})")
        return {}, problems
    tops = {n.split("/", 1)[0] for n in files}
    if len(tops) == 1 and all("/" in n for n in files):
        top = tops.pop()
        files = {n[len(top) + 1 :]: data for n, data in files.items()}
    return files, problems


def verify_bundle(
    path: str | Path,
    key: bytes | Sequence[bytes] | None = None,
    previous: str | Path | None = None,
    keyed_since: float | None = None,
) -> VerifyReport:
    """Check a bundle; ``key`` (the site key, on the unit) also checks the manifest's seal and
    the keyed links of the alert history; ``previous`` (an earlier bundle of the same unit)
    proves neither chain was cut back or rewritten since that bundle was made;
    ``keyed_since`` (from the key file) is when the chain became keyed: a plain link stamped
    after it was re-linked by someone without the key."""
    report = VerifyReport()
    files, problems = read_bundle(path)
    report.problems += problems
    if not files:
        if not problems:
            report.problems.append(f"UNREADABLE: {path} holds no files")
        return report
    raw = files.get(MANIFEST_NAME)
    if raw is None:
        report.problems.append("MISSING: MANIFEST.json (nothing in the bundle can be trusted)")
        return report
    try:
        manifest = parse_manifest(raw)
    except ManifestError as exc:
        report.problems.append(f"ALTERED: {exc}")
        return report
    _check_files(manifest, files, report)
    _check_seal(manifest, key, report)
    seal_keys = (key,) if isinstance(key, bytes) else tuple(key or ())
    chain_keys = tuple(derive_chain_key(k) for k in seal_keys)
    chains: dict[str, list[dict[str, Any]]] = {}
    declared = declared_unreadable(manifest)
    for name, file_name in CHAIN_FILES.items():
        rows = _ndjson(files.get(file_name), file_name, report)
        chains[name] = rows
        keyed = ChainKeys(chain_keys, keyed_since) if name in KEYED_CHAINS else None
        _check_chain(name, file_name, rows, manifest, report, keyed, declared.get(name, []))
    _check_alerts(manifest, files, chains["alert_history"], report, declared)
    _check_history_times(chains["alert_history"], report)
    _check_evidence(manifest, files, chains["alert_history"], report)
    _check_export_anchors(chains, report)
    if previous is not None:
        _check_previous(previous, chains, report)
    if report.ok:
        gaps = " (except across the records the export declared unreadable)" if declared else ""
        report.notes.append(
            f"intact: {len(manifest['files']) + 1} files match MANIFEST.json; "
            + "; ".join(
                f"{name} chain of {len(rows)} records links from genesis to its head"
                + (gaps if name in declared else "")
                for name, rows in chains.items()
            )
        )
        if declared:
            report.notes.append(
                "INCOMPLETE: the store was damaged when this bundle was made; "
                f"{len(manifest.get('unreadable', []))} unreadable range(s) are listed in "
                "unreadable.ndjson and are not in the bundle"
            )
    return report


def _check_files(manifest: dict[str, Any], files: dict[str, bytes], report: VerifyReport) -> None:
    listed: dict[str, dict[str, Any]] = manifest["files"]
    for name, entry in sorted(listed.items()):
        data = files.get(name)
        if data is None:
            report.problems.append(f"MISSING: {name} is listed in MANIFEST.json but absent")
        elif sha256(data) != entry["sha256"]:
            report.problems.append(
                f"ALTERED: {name} (its sha256 differs from the one in MANIFEST.json)"
            )
    for name in sorted(set(files) - set(listed) - {MANIFEST_NAME}):
        report.problems.append(f"EXTRA: {name} is not listed in MANIFEST.json")


def _check_seal(
    manifest: dict[str, Any], key: bytes | Sequence[bytes] | None, report: VerifyReport
) -> None:
    seal = manifest.get("seal")
    keys = (key,) if isinstance(key, bytes) else tuple(key or ())
    if not keys:
        report.notes.append(
            "seal not checked: on the unit, pass --db to prove this unit made the bundle"
        )
    elif not isinstance(seal, str) or not any(
        hmac.compare_digest(seal, seal_of(k, manifest)) for k in keys
    ):
        report.problems.append(
            "SEAL: MANIFEST.json was not sealed with this site's key (made elsewhere, or "
            "re-hashed after an edit)"
        )
    else:
        report.notes.append("seal: made by this unit (site key matches)")


def _ndjson(data: bytes | None, name: str, report: VerifyReport) -> list[dict[str, Any]]:
    if data is None:
        return []
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = safe_json.loads(line)
        except ValueError:
            report.problems.append(f"ALTERED: {name} line {number} is not a JSON record")
            continue
        if isinstance(row, dict):
            rows.append(row)
        else:
            report.problems.append(f"ALTERED: {name} line {number} is not a JSON object")
    return rows


def declared_unreadable(manifest: dict[str, Any]) -> dict[str, list[tuple[int, int]]]:
    """The rowid ranges per table that the export declared unreadable (a damaged store);
    a read that failed as a whole (no rowids) is declared as every rowid."""
    out: dict[str, list[tuple[int, int]]] = {}
    entries = manifest.get("unreadable")
    if not isinstance(entries, list):
        return out
    for e in entries:
        if not isinstance(e, dict) or not isinstance(e.get("table"), str):
            continue
        first, last = e.get("first_rowid"), e.get("last_rowid")
        if isinstance(first, int) and isinstance(last, int):
            out.setdefault(e["table"], []).append((first, last))
        else:
            out.setdefault(e["table"], []).append((0, 2**63 - 1))
    return out


def _covered(ranges: list[tuple[int, int]], first: int, last: int) -> bool:
    return any(a <= first and last <= b for a, b in ranges)


def _check_chain(
    name: str,
    file_name: str,
    rows: list[dict[str, Any]],
    manifest: dict[str, Any],
    report: VerifyReport,
    keyed: ChainKeys | None = None,
    unreadable: list[tuple[int, int]] | None = None,
) -> None:
    keys = CHAIN_KEYS[name]
    kinds = LinkKinds()
    skipped: list[str] = []
    found = chain_problems(
        rows, keys, keyed, kinds, lambda a, b: _covered(unreadable or [], a, b), skipped
    )
    if keyed is not None:
        report.notes += kinds.notes(name, keyed)
    label = f"CHAIN {name}"
    for line in skipped:
        report.notes.append(f"UNREADABLE AT EXPORT: {label}: {line}")
    for line in found[:MAX_CHAIN_LINES]:
        report.problems.append(f"{label}: {line}")
    if len(found) > MAX_CHAIN_LINES:
        report.problems.append(f"{label}: and {len(found) - MAX_CHAIN_LINES} more broken links")
    head = manifest.get("chains", {}).get(name, {})
    last = rows[-1] if rows else None
    if last is None and head.get("rows", 0) == 0:
        return
    if last is None or head.get("head_hash") != last.get("hash"):
        report.problems.append(
            f"{label}: the last record of {file_name} is not the head in MANIFEST.json "
            f"(seq {head.get('head_seq')}); records at the end were removed or added"
        )
    elif head.get("rows") != len(rows):
        report.problems.append(
            f"{label}: {file_name} holds {len(rows)} records, MANIFEST.json says {head.get('rows')}"
        )
    pseudo = sum(1 for r in rows if r.get("pseudonymised"))
    if pseudo and not manifest.get("pseudonymised"):
        first = next(r for r in rows if r.get("pseudonymised"))
        report.problems.append(
            f"{label}: record seq {first.get('seq')} is marked pseudonymised in a bundle that is "
            "not, which would exempt it from the content check: ALTERED"
        )
    elif pseudo:
        report.notes.append(
            f"{name}: {pseudo} pseudonymised record(s) are checked by their links only"
        )


@dataclass(frozen=True, slots=True)
class ChainKeys:
    """What checks a keyed chain: the unit's chain keys (none off the unit) and from when
    every link must be keyed."""

    keys: tuple[bytes, ...] = ()
    since: float | None = None


@dataclass(slots=True)
class LinkKinds:
    """How a keyed chain's links were made, counted while checking it."""

    keyed: int = 0
    legacy: list[Any] = field(default_factory=list)  # seqs of plain SHA-256 links
    unchecked: int = 0  # keyed links that could not be checked (no key at hand)

    def notes(self, name: str, chain: ChainKeys) -> list[str]:
        out: list[str] = []
        if self.keyed:
            out.append(f"{name}: {self.keyed} link(s) keyed by this unit's key")
        if self.unchecked:
            out.append(
                f"{name}: {self.unchecked} keyed link(s) not checked: their content can only be "
                "checked with the unit's key (pass --db or --seal-key)"
            )
        if self.legacy:
            since = f" (the key file says keyed since {iso(chain.since)})" if chain.since else ""
            out.append(
                f"{name}: {len(self.legacy)} LEGACY link(s), seq {self.legacy[0]}.."
                f"{self.legacy[-1]}, made before the chain was keyed{since}: plain SHA-256, "
                "which anyone able to write the store could have re-linked"
            )
        return out


def chain_problems(
    rows: list[dict[str, Any]],
    keys: tuple[str, ...],
    keyed: ChainKeys | None = None,
    kinds: LinkKinds | None = None,
    declared: Callable[[int, int], bool] | None = None,
    skipped: list[str] | None = None,
) -> list[str]:
    """Problems of a chain in file order, first broken record first, each classified as
    altered (content does not match its hash), removed (its predecessor is absent) or
    reordered (its predecessor is present elsewhere).

    A keyed chain (``keyed`` given) takes plain SHA-256 links only before its first keyed link
    and before the key file's ``since``: a plain link after either was re-linked by someone
    without the key. Without keys at hand a keyed link's content cannot be checked; it is
    counted, and a plain link after it is still refused.

    ``declared(first, last)`` says whether seqs ``first..last`` were declared unreadable by
    the export (a damaged store); such a gap is not a removal: it goes to ``skipped``, and the
    chain is checked again from the record after it."""
    problems: list[str] = []
    kinds = kinds if kinds is not None else LinkKinds()
    keyed_seen = False
    unchecked: list[tuple[int, str]] = []  # (where its problem would go, the record)
    position = {str(r.get("hash")): i for i, r in enumerate(rows)}
    expected = GENESIS
    prev_seq: int | None = None
    for i, row in enumerate(rows):
        seq = row.get("seq")
        where = f"record seq {seq} ({_when(row)})"
        try:
            fields = {k: row[k] for k in keys}
            prev_hash = str(row["prev_hash"])
            digest = str(row["hash"])
        except KeyError as exc:
            problems.append(f"{where}: ALTERED, field {exc} is missing")
            expected = str(row.get("hash", ""))
            continue
        if row.get("pseudonymised"):
            pass
        elif keyed is None:
            if link(prev_hash, fields) != digest:
                problems.append(f"{where}: ALTERED, its content does not match its hash")
        elif any(hmac.compare_digest(link(prev_hash, fields, k), digest) for k in keyed.keys):
            kinds.keyed += 1
            keyed_seen = True
        elif link(prev_hash, fields) == digest:
            late = keyed.since is not None and _ts(row) >= keyed.since
            if unchecked and not kinds.keyed:
                # Plain links after links no key was at hand for: those were no keyed links
                # but plain ones altered; each is named where it sits in the chain.
                for at, name in reversed(unchecked):
                    problems.insert(at, f"{name}: ALTERED, its content does not match its hash")
                kinds.unchecked -= len(unchecked)
                unchecked.clear()
                keyed_seen = False
            if keyed_seen or late:
                why = (
                    "after a keyed link"
                    if keyed_seen
                    else f"stamped after the chain was keyed ({iso(keyed.since or 0.0)})"
                )
                problems.append(
                    f"{where}: ALTERED, a plain SHA-256 link {why}: the chain was re-linked "
                    "without the unit's key"
                )
            else:
                kinds.legacy.append(seq)
        elif keyed.keys:
            problems.append(
                f"{where}: ALTERED, its content does not match its hash (keyed or plain)"
            )
        else:
            kinds.unchecked += 1
            unchecked.append((len(problems), where))
            keyed_seen = True
        if prev_hash != expected:
            j = position.get(prev_hash)
            if j is not None and j != i - 1:
                problems.append(
                    f"{where}: REORDERED, it follows record seq {rows[j].get('seq')} in the "
                    f"chain but sits after {'the start' if i == 0 else 'seq ' + str(prev_seq)}"
                )
            elif j is None and prev_hash == GENESIS:
                problems.append(f"{where}: REORDERED, the first record of the chain is not first")
            else:
                missing = ""
                gap: tuple[int, int] | None = None
                if isinstance(seq, int) and isinstance(prev_seq, int) and seq > prev_seq + 1:
                    gap = (prev_seq + 1, seq - 1)
                elif isinstance(seq, int) and prev_seq is None and seq > 1:
                    gap = (1, seq - 1)
                if gap is not None:
                    missing = f" (seq {gap[0]}..{gap[1]} absent)"
                if j is None and gap is not None and declared is not None and declared(*gap):
                    if skipped is not None:
                        skipped.append(
                            f"seq {gap[0]}..{gap[1]} could not be read from the damaged store; "
                            f"the link into record seq {seq} cannot be checked"
                        )
                    expected = digest
                    prev_seq = seq
                    continue
                problems.append(
                    f"{where}: REMOVED, the record(s) before it are missing{missing}"
                    if j is None
                    else f"{where}: ALTERED, its link to the previous record was changed"
                )
        expected = digest
        prev_seq = seq if isinstance(seq, int) else prev_seq
    return problems


def _ts(row: dict[str, Any]) -> float:
    ts = row.get("ts")
    return float(ts) if isinstance(ts, int | float) else float("inf")


def _when(row: dict[str, Any]) -> str:
    ts = row.get("ts")
    return (iso(float(ts)) or "") if isinstance(ts, int | float) else "no time"


# What each transition of an alert records in its chained history, and so what the alert's
# row must say: the raise records everything the core knew; an update what it learned; an
# acknowledgement who and the note (the actor is the guard); a resolution when and why.
_RAISED_FIELDS = ("title", "kind", "confidence", "handsets", "sensors", "reasons", "device_ids")
_UPDATED_FIELDS = ("title", "confidence", "handsets", "sensors", "reasons", "device_ids")


def _detail(row: dict[str, Any]) -> dict[str, Any]:
    try:
        detail = safe_json.loads(row.get("detail", "{}"))
    except (TypeError, ValueError):
        return {}
    return detail if isinstance(detail, dict) else {}


def _alert_state(history: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each alert as its chained history says it must be: only the fields the chain records
    (a record written before a field was chained leaves that field unchecked)."""
    state: dict[str, dict[str, Any]] = {}
    for row in history:
        detail = _detail(row)
        alert_id, event, ts = str(row.get("alert_id")), row.get("event"), row.get("ts")
        if event == "raised":
            raised: dict[str, Any] = {
                "raised_ts": ts,
                "state": "open",
                "acked_by": None,
                "acked_ts": None,
                "ack_note": None,
                "resolved_ts": None,
                "resolution": None,
            }
            raised.update({k: detail[k] for k in _RAISED_FIELDS if k in detail})
            state[alert_id] = raised
            continue
        current = state.get(alert_id)
        if current is None:
            continue
        if event == "updated":
            current.update({k: detail[k] for k in _UPDATED_FIELDS if k in detail})
        elif event == "acknowledged" and current["acked_by"] is None:
            current.update(acked_by=row.get("actor"), acked_ts=ts, ack_note=detail.get("note"))
        elif event == "resolved":
            current.update(state="resolved", resolved_ts=ts, resolution=detail.get("resolution"))
    return state


def _check_history_times(history: list[dict[str, Any]], report: VerifyReport) -> None:
    """Each alert's history runs forward from its raise: a record dated before the alert was
    raised, or before the record before it, was moved in time or in order."""
    raised: dict[str, float] = {}
    last: dict[str, tuple[float, Any]] = {}
    for row in history:
        alert_id, event, ts = str(row.get("alert_id")), row.get("event"), row.get("ts")
        if not isinstance(ts, int | float):
            continue
        seq = row.get("seq")
        if event == "raised":
            if alert_id in raised:
                report.problems.append(
                    f"HISTORY: alert {alert_id} record seq {seq} field event: raised a second time"
                )
            raised.setdefault(alert_id, float(ts))
        elif alert_id not in raised:
            report.problems.append(
                f"HISTORY: alert {alert_id} record seq {seq} ({event}) field ts: "
                "comes before the alert was raised in the history's order"
            )
        elif ts < raised[alert_id]:
            report.problems.append(
                f"HISTORY: alert {alert_id} record seq {seq} ({event}) field ts: {iso(ts)} "
                f"runs before the alert was raised at {iso(raised[alert_id])}"
            )
        before = last.get(alert_id)
        if before is not None and ts < before[0] - CLOCK_SKEW_S:
            report.problems.append(
                f"HISTORY: alert {alert_id} record seq {seq} ({event}) field ts: {iso(ts)} "
                f"runs before the record before it (seq {before[1]}, {iso(before[0])})"
            )
        last[alert_id] = (float(ts), seq)


def _gap_windows(
    history: list[dict[str, Any]], unreadable: list[tuple[int, int]]
) -> list[tuple[float, float]]:
    """The time spans of declared-unreadable history records: from the record before each
    gap to the record after it (open-ended at either end of the chain)."""
    windows: list[tuple[float, float]] = []
    times = [
        (r["seq"], float(r["ts"]))
        for r in history
        if isinstance(r.get("seq"), int) and isinstance(r.get("ts"), int | float)
    ]
    for first, last in unreadable:
        before = [t for s, t in times if s < first]
        after = [t for s, t in times if s > last]
        windows.append((before[-1] if before else 0.0, after[0] if after else float("inf")))
    return windows


def _check_alerts(
    manifest: dict[str, Any],
    files: dict[str, bytes],
    history: list[dict[str, Any]],
    report: VerifyReport,
    declared: dict[str, list[tuple[int, int]]] | None = None,
) -> None:
    """alerts.ndjson must say what the chain says, and hold every alert of the period.

    Where the export declared history records unreadable, an alert alive during such a gap
    cannot be compared with its history: its differences are notes, not problems. Likewise an
    alert missing from alerts.ndjson when rows of the alerts table were unreadable."""
    declared = declared or {}
    windows = _gap_windows(history, declared.get("alert_history", []))
    alerts_lost = bool(declared.get("alerts"))

    def excused(raised: Any, resolved: Any) -> bool:
        if not isinstance(raised, int | float):
            return bool(windows)
        end = resolved if isinstance(resolved, int | float) else float("inf")
        return any(raised <= b and a <= end for a, b in windows)

    problems = report.problems

    def problem(line: str, alive: tuple[Any, Any] | None, lost: bool = False) -> None:
        if lost or (alive is not None and excused(*alive)):
            report.notes.append(f"UNREADABLE AT EXPORT: {line}")
        else:
            problems.append(line)

    alerts = _ndjson(files.get("alerts.ndjson"), "alerts.ndjson", report)
    truth = _alert_state(history)
    since, until = float(manifest.get("since", 0)), float(manifest.get("until", 0))
    seen: set[str] = set()
    for alert in alerts:
        alert_id = str(alert.get("id"))
        seen.add(alert_id)
        expected = truth.get(alert_id)
        alive = (alert.get("raised_ts"), alert.get("resolved_ts"))
        if expected is None:
            problem(
                f"ALERTS: alert {alert_id} in alerts.ndjson has no 'raised' record in the chain",
                alive,
            )
            continue
        for name, want in expected.items():
            if not _same(alert.get(name), want):
                problem(
                    f"ALERTS: alert {alert_id} field {name} is {alert.get(name)!r} in "
                    f"alerts.ndjson but {want!r} in its chained history",
                    alive,
                )
    for alert_id, expected in truth.items():
        raised, resolved = expected["raised_ts"], expected["resolved_ts"]
        in_period = raised < until and (resolved is None or resolved >= since)
        if in_period and alert_id not in seen:
            problem(
                f"ALERTS: alert {alert_id} (raised {iso(raised)}) is in the chained history but "
                "missing from alerts.ndjson: removed from the store's alerts or from the file",
                None,
                alerts_lost,
            )
    period_rows = _ndjson(files.get("alert_history.ndjson"), "alert_history.ndjson", report)
    by_seq = {r.get("seq"): r for r in history}
    for row in period_rows:
        chained = by_seq.get(row.get("seq"))
        if chained is None or chained.get("hash") != row.get("hash"):
            report.problems.append(
                f"ALERTS: alert_history.ndjson record seq {row.get('seq')} is not in the chain"
            )


def _pcap_frames(data: bytes) -> list[bytes] | None:
    """The frames of a classic pcap as the export writes it; None if it is not one."""
    if len(data) < 24 or data[:4] not in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        return None
    frames: list[bytes] = []
    pos = 24
    # Hand-written bounds checks: a record whose length runs past the end is not a frame.
    while pos + 16 <= len(data):
        caplen = int.from_bytes(data[pos + 8 : pos + 12], "little")
        end = pos + 16 + caplen
        if end > len(data):
            return None
        frames.append(data[pos + 16 : end])
        pos = end
    return frames if pos == len(data) else None


def _bundle_items(
    files: dict[str, bytes], index: list[dict[str, Any]]
) -> dict[str, dict[str, list[bytes] | None]]:
    """Per alert and radio, each evidence item's own hash as the chain's digest takes it
    (None when a file cannot be read as what it should be)."""
    out: dict[str, dict[str, list[bytes] | None]] = {}
    for row in index:
        name, radio = str(row.get("file") or ""), str(row.get("radio") or "")
        if not name or name not in files:
            continue
        per = out.setdefault(str(row.get("alert_id")), {})
        have = per.get(radio, [])
        if have is None:
            continue
        data = files[name]
        if radio == "wifi":
            frames = _pcap_frames(data)
            per[radio] = None if frames is None else [*have, *(item_digest(f) for f in frames)]
        elif radio == "ble":
            lines = [line for line in data.split(b"\n") if line]
            per[radio] = [*have, *(item_digest(line) for line in lines)]
        elif radio == "sdr" and name.endswith(".sigmf-meta"):
            samples = files.get(name[: -len(".sigmf-meta")] + ".sigmf-data")
            per[radio] = None if samples is None else [*have, item_digest_sigmf(data, samples)]
    return out


def _check_evidence(
    manifest: dict[str, Any],
    files: dict[str, bytes],
    history: list[dict[str, Any]],
    report: VerifyReport,
) -> None:
    """The evidence files of each alert must be the items whose digest its history chains."""
    chained: dict[str, tuple[Any, dict[str, Any]]] = {}
    for row in history:
        if row.get("event") == EVIDENCE_EVENT:
            radios = _detail(row).get("radios")
            if isinstance(radios, dict):
                chained[str(row.get("alert_id"))] = (row.get("seq"), radios)
    alerts = {str(a.get("id")) for a in _ndjson(files.get("alerts.ndjson"), "alerts", report)}
    index = _ndjson(files.get("evidence_index.ndjson"), "evidence_index.ndjson", report)
    if manifest.get("pseudonymised"):
        if chained:
            report.notes.append(
                "evidence: addresses are pseudonymised, so the files cannot match the digests "
                "chained on the unit; checked by MANIFEST.json only"
            )
        return
    found = _bundle_items(files, index)
    checked = 0
    for alert_id, (seq, radios) in sorted(chained.items()):
        if alert_id not in alerts:
            continue
        mine = found.get(alert_id, {})
        if not mine:
            if any(int(v.get("count", 0)) for v in radios.values() if isinstance(v, dict)):
                report.notes.append(
                    f"evidence: alert {alert_id} has none in the bundle (shed by retention); "
                    f"its history (seq {seq}) chained some"
                )
            continue
        for radio, want in sorted(radios.items()):
            if not isinstance(want, dict):
                continue
            items = mine.get(radio, [])
            what = f"EVIDENCE: alert {alert_id} {radio}"
            if items is None:
                report.problems.append(f"{what}: a file of it cannot be read (ALTERED)")
            elif len(items) != want.get("count"):
                report.problems.append(
                    f"{what}: the bundle holds {len(items)} items, its history (seq {seq}) "
                    f"chained {want.get('count')}: items were removed or added"
                )
            elif digest_of(items) != want.get("sha256"):
                report.problems.append(
                    f"{what}: the items differ from the digest its history (seq {seq}) "
                    "chained: ALTERED"
                )
            else:
                checked += len(items)
        for radio in sorted(set(mine) - set(radios)):
            report.problems.append(
                f"EVIDENCE: alert {alert_id} {radio}: the bundle holds evidence its history "
                "never chained: ADDED"
            )
    if checked:
        report.notes.append(f"evidence: {checked} items match the digests in the alert history")


def _same(found: Any, want: Any) -> bool:
    """Equal as the chain recorded it; a guard's empty note and no note are the same."""
    if (want, found) in ((None, ""), ("", None)):
        return True
    return bool(found == want)


def _check_export_anchors(chains: dict[str, list[dict[str, Any]]], report: VerifyReport) -> None:
    """Every earlier export recorded the alert-history head; the chain must still contain it."""
    by_seq = {r.get("seq"): r.get("hash") for r in chains["alert_history"]}
    for row in chains["audit"]:
        if row.get("action") != EXPORT_ACTION:
            continue
        try:
            detail = safe_json.loads(row.get("detail", "{}"))
            seq, head = int(detail["alert_history_seq"]), str(detail["alert_history_head"])
        except (TypeError, ValueError, KeyError):
            continue
        if seq and by_seq.get(seq) != head:
            report.problems.append(
                f"CHAIN alert_history: an export at {_when(row)} recorded head seq {seq} "
                f"{head[:16]}…, which this chain does not contain: records up to it were "
                "removed or rewritten since"
            )


def _check_previous(
    previous: str | Path, chains: dict[str, list[dict[str, Any]]], report: VerifyReport
) -> None:
    """Each chain head of the earlier bundle must still be in this bundle's chain, unchanged."""
    files, problems = read_bundle(previous)
    raw = files.get(MANIFEST_NAME)
    if problems or raw is None:
        report.problems.append(f"PREVIOUS: {previous} cannot be read as a bundle")
        return
    try:
        earlier = parse_manifest(raw)
    except ManifestError as exc:
        report.problems.append(f"PREVIOUS: {previous}: {exc}")
        return
    for name, rows in chains.items():
        head = earlier.get("chains", {}).get(name, {})
        seq, digest = head.get("head_seq"), head.get("head_hash")
        if not seq:
            continue
        found = next((r for r in rows if r.get("seq") == seq), None)
        if found is None or found.get("hash") != digest:
            report.problems.append(
                f"CHAIN {name}: the earlier bundle {Path(previous).name} ended at seq {seq} "
                f"{str(digest)[:16]}…, which this chain does not contain: records were removed "
                "or rewritten since"
            )
        else:
            report.notes.append(
                f"{name}: contains the head of {Path(previous).name} (seq {seq}) unchanged"
            )
