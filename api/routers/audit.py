"""The audit log (supervisor): who signed in, acknowledged and changed what."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import StoreDep, SupervisorUser
from api.schemas import AuditEntryOut, AuditPage
from scanner.store.audit import list_audit

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("", response_model=AuditPage, summary="Audit records, newest first")
def get_audit(
    store: StoreDep,
    _user: SupervisorUser,
    since: Annotated[float | None, Query(ge=0, le=1e11)] = None,
    until: Annotated[float | None, Query(ge=0, le=1e11)] = None,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> AuditPage:
    rows = list_audit(store, since=since, until=until, actor=actor, limit=limit + 1, offset=offset)
    return AuditPage(
        items=[AuditEntryOut.model_validate(r) for r in rows[:limit]],
        limit=limit,
        offset=offset,
        next_offset=offset + limit if len(rows) > limit else None,
    )
