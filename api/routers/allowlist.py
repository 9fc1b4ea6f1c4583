"""The allowlist (supervisor): read, replace, add the identities of a device or an alert, undo.

Only identities that name one device become entries: a stable Wi-Fi MAC, a BLE public or
random-static address, a BLE IRK. A Wi-Fi IE fingerprint is shared by every phone of one model
and OS version, so an entry by fingerprint is refused with a problem document saying so.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from api.deps import ClockDep, NotifyDep, StoreDep, SupervisorUser
from api.problems import ApiProblem
from api.routers.devices import STABLE_KINDS, device_identifiers
from api.schemas import (
    AllowlistAdd,
    AllowlistAdded,
    AllowlistEntryOut,
    AllowlistOut,
    AllowlistReplace,
    check_identifier,
)
from scanner.store import alerts as alert_store
from scanner.store.allowlist import (
    AllowlistEntry,
    allowlist_version,
    config_entries,
    list_entries,
    normalise,
    replace_entries,
)
from scanner.store.db import Store
from scanner.store.devices import get_device

router = APIRouter(prefix="/api/v1/allowlist", tags=["allowlist"])


NOT_IDENTITY = (
    "a Wi-Fi fingerprint names no device: every phone of the same model and OS version has it, "
    "so an entry by fingerprint would exempt a stranger carrying the same phone. Add the "
    "device's stable MAC, BLE address or IRK instead (hardware.md, 'Allowlisting a device')"
)


def _refuse_fingerprint(value: str) -> None:
    raise ApiProblem(422, f"{NOT_IDENTITY} ({value!r})", type_="fingerprint-not-identity")


def _entry_out(e: AllowlistEntry, now: float) -> AllowlistEntryOut:
    expired = e.expires_ts is not None and e.expires_ts <= now
    return AllowlistEntryOut.model_validate(
        {**e.to_dict(), "source": "store", "in_force": not e.flag and not expired}
    )


def _config_out(raw: dict[str, Any], now: float) -> AllowlistEntryOut | None:
    try:
        expires = raw.get("expires_ts")
        return AllowlistEntryOut(
            id=None,
            match=raw["match"],
            value=str(raw["value"]),
            label=str(raw.get("label", "")),
            added_by="config",
            added_ts=0.0,
            expires_ts=float(expires) if expires is not None else None,
            fingerprint=str(raw.get("fingerprint", "") or ""),
            source="config",
            in_force=expires is None or float(expires) > now,
        )
    except (KeyError, TypeError, ValueError):
        return None  # the core published something this API does not know: not shown


def _out(store: Store, now: float) -> AllowlistOut:
    config = [_config_out(e, now) for e in config_entries(store)]
    return AllowlistOut(
        version=allowlist_version(store),
        entries=[_entry_out(e, now) for e in list_entries(store)],
        config=[c for c in config if c is not None],
    )


@router.get("", response_model=AllowlistOut, summary="The allowlist")
def get_allowlist(store: StoreDep, _user: SupervisorUser, clock: ClockDep) -> AllowlistOut:
    return _out(store, clock())


@router.put("", response_model=AllowlistOut, summary="Replace the whole allowlist")
def put_allowlist(
    body: AllowlistReplace,
    store: StoreDep,
    user: SupervisorUser,
    clock: ClockDep,
    notify: NotifyDep,
) -> AllowlistOut:
    ts = clock()
    previous = {(e.match, e.value): e for e in list_entries(store)}
    entries: list[AllowlistEntry] = []
    seen: set[tuple[str, str]] = set()
    for item in body.entries:
        key = (item.match, normalise(item.match, item.value))
        if key in seen:
            continue
        old = previous.get(key)
        if item.match == "fingerprint" and old is None:
            # One kept from before the rule may stay (flagged, inactive); no new one comes in.
            _refuse_fingerprint(item.value)
        seen.add(key)
        entries.append(
            AllowlistEntry(
                match=item.match,
                value=key[1],
                label=item.label,
                # An entry that was already there keeps who added it and when.
                added_by=old.added_by if old else user.username,
                added_ts=old.added_ts if old else ts,
                expires_ts=item.expires_ts,
                fingerprint=item.fingerprint.strip().lower(),
            )
        )
    replace_entries(store, entries, user.username, ts)
    notify("allowlist")
    return _out(store, ts)


def _device_entries(store: Store, device_id: str, label: str) -> list[tuple[str, str, str, str]]:
    """The entries that name this device alone (kind, value, label, its fingerprint)."""
    device = get_device(store, device_id)
    if device is None:
        raise ApiProblem(404, f"no device {device_id!r}", type_="not-found")
    ids = device_identifiers(device["identifiers"])
    text = label or f"{device['vendor'] or device['kind']} {device_id}"
    # The phone's model fingerprint goes with its Wi-Fi identity, for accounting only.
    fingerprint = ids.fingerprints[0].lower() if len(ids.fingerprints) == 1 else ""
    found: list[tuple[str, str, str, str]] = []
    for key, kind in STABLE_KINDS.items():
        for value in getattr(ids, key):
            try:
                check_identifier(kind, value)
            except ValueError:
                continue  # a malformed identifier from the core cannot become an entry
            found.append(
                (kind, normalise(kind, value), text[:100], fingerprint if kind == "mac" else "")
            )
    return found


@router.post(
    "",
    response_model=AllowlistAdded,
    status_code=201,
    summary="Add one entry, or every identity of a device or of an alert's devices",
    responses={
        404: {"description": "no such device or alert"},
        409: {"description": "the device has no identity that can be allowlisted"},
    },
)
def add_to_allowlist(
    body: AllowlistAdd,
    store: StoreDep,
    user: SupervisorUser,
    clock: ClockDep,
    notify: NotifyDep,
) -> AllowlistAdded:
    ts = clock()
    wanted: list[tuple[str, str, str, str]] = []
    if body.entry is not None:
        if body.entry.match == "fingerprint":
            _refuse_fingerprint(body.entry.value)
        wanted.append(
            (
                body.entry.match,
                normalise(body.entry.match, body.entry.value),
                body.entry.label,
                body.entry.fingerprint.strip().lower(),
            )
        )
    elif body.device_id is not None:
        wanted = _device_entries(store, body.device_id, body.label)
    elif body.alert_id is not None:
        try:
            alert = alert_store.get_alert(store, body.alert_id)
        except alert_store.AlertNotFoundError:
            raise ApiProblem(404, f"no alert {body.alert_id!r}", type_="not-found") from None
        label = body.label or f"from alert {alert.id}"
        for device_id in alert.device_ids:
            try:
                wanted.extend(_device_entries(store, device_id, label))
            except ApiProblem:
                continue  # the core may have pruned an old device; use the others
    if not wanted:
        raise ApiProblem(
            409,
            "nothing to add: no identity that names this device alone was heard (its MACs "
            "were randomised probes, its BLE addresses rotating). Add its stable MAC or its "
            "BLE IRK by hand (hardware.md, 'Allowlisting a device')",
            type_="no-identifier",
        )
    current = list_entries(store)
    have = {(e.match, e.value) for e in current}
    expires = body.entry.expires_ts if body.entry is not None else body.expires_ts
    added = [
        AllowlistEntry(
            match=m,
            value=v,
            label=lab,
            added_by=user.username,
            added_ts=ts,
            expires_ts=expires,
            fingerprint=fp,
        )
        for m, v, lab, fp in dict.fromkeys(wanted)
        if (m, v) not in have
    ]
    if body.dry_run:
        # What the page shows before asking for a label: nothing is written.
        out = _out(store, ts)
        return AllowlistAdded(
            version=out.version,
            entries=out.entries,
            config=out.config,
            added=[_entry_out(a, ts) for a in added],
        )
    if added:
        replace_entries(store, [*current, *added], user.username, ts)
        notify("allowlist")
    out = _out(store, ts)
    keys = {(a.match, a.value) for a in added}
    return AllowlistAdded(
        version=out.version,
        entries=out.entries,
        config=out.config,
        added=[e for e in out.entries if (e.match, e.value) in keys],
    )


@router.delete(
    "/{entry_id}",
    status_code=204,
    summary="Remove one entry (undo an addition)",
    responses={404: {"description": "no such entry"}},
)
def remove_from_allowlist(
    entry_id: int, store: StoreDep, user: SupervisorUser, clock: ClockDep, notify: NotifyDep
) -> Response:
    current = list_entries(store)
    keep = [e for e in current if e.id != entry_id]
    if len(keep) == len(current):
        raise ApiProblem(404, f"no allowlist entry {entry_id}", type_="not-found")
    replace_entries(store, keep, user.username, clock())
    notify("allowlist")
    return Response(status_code=204)
