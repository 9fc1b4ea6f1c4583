"""API tokens for scripts (supervisor): create (the secret is shown once), list, revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from api.deps import ClockDep, SettingsDep, StoreDep, SupervisorUser
from api.problems import ApiProblem
from api.schemas import TokenCreate, TokenCreated, TokenOut
from scanner.store import sessions as session_store
from scanner.store.sessions import TokenError
from scanner.store.users import UserNotFoundError

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])

TokenId = Annotated[str, Path(min_length=12, max_length=12, pattern=r"^[0-9a-f]{12}$")]


@router.get("", response_model=list[TokenOut], summary="Your tokens (an admin sees all)")
def list_tokens(store: StoreDep, user: SupervisorUser) -> list[TokenOut]:
    owner = None if user.role == "admin" else user.username
    return [
        TokenOut.model_validate(t, from_attributes=True)
        for t in session_store.list_tokens(store, owner)
    ]


@router.post(
    "",
    response_model=TokenCreated,
    status_code=201,
    summary="Create a token; the secret is in this response only",
    responses={
        403: {"description": "not allowed to make this token"},
        404: {"description": "no such user"},
        422: {"description": "a role or lifetime the token cannot have"},
    },
)
def create_token(
    body: TokenCreate,
    store: StoreDep,
    user: SupervisorUser,
    clock: ClockDep,
    settings: SettingsDep,
) -> TokenCreated:
    owner = body.username or user.username
    if owner != user.username and user.role != "admin":
        raise ApiProblem(403, "only an admin can make tokens for others", type_="forbidden")
    if user.grant is not None and not user.grant.can_mint:
        # A leaked script token must not be able to make itself a longer-lived twin.
        raise ApiProblem(
            403,
            "a token can make tokens only when it is an admin's token allowed to",
            type_="forbidden",
        )
    ttl = settings.token_ttl_s if body.ttl_s is None else body.ttl_s
    if ttl > settings.token_max_ttl_s:
        raise ApiProblem(
            422,
            f"a token lives at most {settings.token_max_ttl_s:.0f} seconds",
            type_="token",
        )
    ts = clock()
    try:
        token = session_store.create_token(
            store,
            owner,
            body.label,
            ts,
            user.username,
            ttl_s=ttl,
            role=body.role,
            can_mint=body.can_mint,
            parent=user.grant,
        )
    except UserNotFoundError:
        raise ApiProblem(404, f"no user {owner!r}", type_="not-found") from None
    except TokenError as exc:
        raise ApiProblem(422, str(exc), type_="token") from None
    info = next(
        t
        for t in session_store.list_tokens(store, owner)
        if t.id == session_store.token_hash(token)[:12]
    )
    return TokenCreated(
        **TokenOut.model_validate(info, from_attributes=True).model_dump(), token=token
    )


@router.delete(
    "/{token_id}",
    status_code=204,
    summary="Revoke a token",
    responses={404: {"description": "no such token"}},
)
def revoke_token(
    token_id: TokenId, store: StoreDep, user: SupervisorUser, clock: ClockDep
) -> Response:
    mine = {t.id for t in session_store.list_tokens(store, user.username)}
    if user.role != "admin" and token_id not in mine:
        raise ApiProblem(404, "no such token", type_="not-found")
    if not session_store.revoke_token(store, token_id, clock(), user.username):
        raise ApiProblem(404, "no such token", type_="not-found")
    return Response(status_code=204)
