"""The after-action bundle over HTTP (supervisor): the same tar.gz as ``checkpoint export``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from api.deps import ClockDep, StoreDep, SupervisorUser
from api.problems import ApiProblem
from scanner.export.bundle import build_bundle, top_folder
from scanner.export.collect import Period
from scanner.export.timefmt import HELP as TIME_HELP
from scanner.export.timefmt import TimeFormatError, parse_period

router = APIRouter(prefix="/api/v1", tags=["export"])

# How many parts of the period a damaged store could not give back (0 when intact).
UNREADABLE_HEADER = "X-Checkpoint-Unreadable"
# A longer period is a job for the command line on the unit, not a request that holds a worker.
MAX_PERIOD_S = 400 * 86400


@router.get(
    "/export",
    summary="After-action bundle for a period (tar.gz)",
    response_class=FileResponse,
    responses={
        200: {
            "description": "The bundle: tables as NDJSON and CSV, evidence, report.html, "
            "MANIFEST.json; check it with `checkpoint verify`.",
            "content": {"application/gzip": {"schema": {"type": "string", "format": "binary"}}},
            "headers": {
                UNREADABLE_HEADER: {
                    "description": "parts of the period the store could not read (damaged "
                    "pages); the bundle's unreadable.ndjson lists them",
                    "schema": {"type": "integer"},
                }
            },
        },
        400: {"description": "The period is not valid"},
    },
)
def get_export(
    store: StoreDep,
    user: SupervisorUser,
    clock: ClockDep,
    since: Annotated[str, Query(max_length=40, description=TIME_HELP)],
    until: Annotated[str, Query(max_length=40, description=TIME_HELP)],
    pseudonymise: Annotated[
        bool, Query(description="replace MAC and BLE addresses with keyed pseudonyms")
    ] = False,
) -> FileResponse:
    try:
        period = Period(*parse_period(since, until, clock()))
    except (TimeFormatError, ValueError) as exc:
        raise ApiProblem(400, str(exc), type_="bad-period") from exc
    if period.until - period.since > MAX_PERIOD_S:
        raise ApiProblem(400, "the period is longer than 400 days", type_="bad-period")
    folder = Path(tempfile.mkdtemp(prefix="checkpoint-export-"))
    name = f"{top_folder(period)}.tar.gz"
    out = folder / name
    try:
        summary = build_bundle(
            store, period, out, pseudonymise=pseudonymise, actor=user.username, now=clock()
        )
    except BaseException:
        _remove(folder)
        raise
    return FileResponse(
        out,
        media_type="application/gzip",
        filename=name,
        background=BackgroundTask(_remove, folder),
        # The page warns when the store was damaged: the bundle lists what it could not read.
        headers={UNREADABLE_HEADER: str(len(summary.unreadable))},
    )


def _remove(folder: Path) -> None:
    for child in folder.iterdir():
        child.unlink(missing_ok=True)
    folder.rmdir()
