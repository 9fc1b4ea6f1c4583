"""The allowlist (supervisor): read, replace, or add the identities of a device or an alert."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ClockDep, StoreDep, SupervisorUser
from api.problems import ApiProblem
from api.routers.devices import IDENTIFIER_KINDS, device_identifiers
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
    list_entries,
    normalise,
    replace_entries,
)
from scanner.store.db import Store
from scanner.store.devices import get_device

router = APIRouter(prefix="/api/v1/allowlist", tags=["allowlist"])


def _out(store: Store) -> AllowlistOut:
    return AllowlistOut(
        version=allowlist_version(store),
        entries=[AllowlistEntryOut.model_validate(e.to_dict()) for e in list_entries(store)],
    )


@router.get("", response_model=AllowlistOut, summary="The allowlist")
def get_allowlist(store: StoreDep, _user: SupervisorUser) -> AllowlistOut:
    return _out(store)


@router.put("", response_model=AllowlistOut, summary="Replace the whole allowlist")
def put_allowlist(
    body: AllowlistReplace, store: StoreDep, user: SupervisorUser, clock: ClockDep
) -> AllowlistOut:
    ts = clock()
    previous = {(e.match, e.value): e for e in list_entries(store)}
    entries: list[AllowlistEntry] = []
    seen: set[tuple[str, str]] = set()
    for item in body.entries:
        key = (item.match, normalise(item.match, item.value))
        if key in seen:
            continue
        seen.add(key)
        old = previous.get(key)
        entries.append(
            AllowlistEntry(
                match=item.match,
                value=key[1],
                label=item.label,
                # An entry that was already there keeps who added it and when.
                added_by=old.added_by if old else user.username,
                added_ts=old.added_ts if old else ts,
            )
        )
    replace_entries(store, entries, user.username, ts)
    return _out(store)


def _device_entries(store: Store, device_id: str, label: str) -> list[tuple[str, str, str]]:
    device = get_device(store, device_id)
    if device is None:
        raise ApiProblem(404, f"no device {device_id!r}", type_="not-found")
    ids = device_identifiers(device["identifiers"])
    text = label or f"{device['vendor'] or device['kind']} {device_id}"
    found: list[tuple[str, str, str]] = []
    for key, kind in IDENTIFIER_KINDS.items():
        for value in getattr(ids, key):
            try:
                check_identifier(kind, value)
            except ValueError:
                continue  # a malformed identifier from the core cannot become an entry
            found.append((kind, normalise(kind, value), text[:100]))
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
    body: AllowlistAdd, store: StoreDep, user: SupervisorUser, clock: ClockDep
) -> AllowlistAdded:
    ts = clock()
    wanted: list[tuple[str, str, str]] = []
    if body.entry is not None:
        wanted.append(
            (body.entry.match, normalise(body.entry.match, body.entry.value), body.entry.label)
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
        raise ApiProblem(409, "nothing to add: no usable identifier", type_="no-identifier")
    current = list_entries(store)
    have = {(e.match, e.value) for e in current}
    added = [
        AllowlistEntry(match=m, value=v, label=lab, added_by=user.username, added_ts=ts)
        for m, v, lab in dict.fromkeys(wanted)
        if (m, v) not in have
    ]
    if added:
        replace_entries(store, [*current, *added], user.username, ts)
    out = _out(store)
    keys = {(a.match, a.value) for a in added}
    return AllowlistAdded(
        version=out.version,
        entries=out.entries,
        added=[e for e in out.entries if (e.match, e.value) in keys],
    )
