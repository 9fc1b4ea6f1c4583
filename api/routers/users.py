"""User accounts (admin): list, add, change role, disable, reset password or PIN, remove."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from api.deps import AdminUser, ClockDep, StoreDep, ThrottleDep
from api.problems import ApiProblem
from api.schemas import UserCreate, UserOut, UserPatch
from scanner.store import users as user_store

router = APIRouter(prefix="/api/v1/users", tags=["users"])

Username = Annotated[str, Path(min_length=1, max_length=32)]


def user_out(user: user_store.User, locked: bool) -> UserOut:
    return UserOut(
        username=user.username,
        role=user.role,
        has_password=user.has_password,
        has_pin=user.has_pin,
        disabled=user.disabled,
        locked=locked,
        created_ts=user.created_ts,
    )


def _not_found(username: str) -> ApiProblem:
    return ApiProblem(404, f"no user {username!r}", type_="not-found")


@router.get("", response_model=list[UserOut], summary="Every account")
def list_users(store: StoreDep, _admin: AdminUser, throttle: ThrottleDep) -> list[UserOut]:
    return [user_out(u, throttle.account_locked(u.username)) for u in user_store.list_users(store)]


@router.post(
    "",
    response_model=UserOut,
    status_code=201,
    summary="Add an account (with a password, a PIN, or both)",
    responses={409: {"description": "the name is taken"}},
)
def add_user(
    body: UserCreate, store: StoreDep, admin: AdminUser, clock: ClockDep, throttle: ThrottleDep
) -> UserOut:
    ts = clock()
    try:
        user = user_store.add_user(
            store,
            body.username,
            body.role,
            ts,
            admin.username,
            password=body.password,
            pin=body.pin,
        )
    except user_store.UserError as exc:
        status = 409 if "already exists" in str(exc) else 422
        raise ApiProblem(status, str(exc), type_="user") from None
    return user_out(user, throttle.account_locked(user.username))


@router.patch(
    "/{username}",
    response_model=UserOut,
    summary="Change role, disable or enable, set a new password or PIN",
    responses={
        404: {"description": "no such user"},
        409: {"description": "would leave no enabled administrator, or is your own account"},
    },
)
def update_user(
    username: Username,
    body: UserPatch,
    store: StoreDep,
    admin: AdminUser,
    clock: ClockDep,
    throttle: ThrottleDep,
) -> UserOut:
    ts = clock()
    try:
        current = user_store.get_user(store, username)
    except user_store.UserNotFoundError:
        raise _not_found(username) from None
    if username == admin.username and (body.disabled or (body.role not in (None, "admin"))):
        raise ApiProblem(409, "you cannot disable or demote your own account", type_="self")
    demoting = current.role == "admin" and (
        (body.role is not None and body.role != "admin") or body.disabled
    )
    if demoting and not current.disabled and user_store.count_admins(store) <= 1:
        raise ApiProblem(409, "this is the last enabled administrator", type_="last-admin")
    try:
        user = user_store.update_user(
            store,
            username,
            ts,
            admin.username,
            role=body.role,
            disabled=body.disabled,
            password=body.password,
            pin=body.pin,
            clear_pin=body.clear_pin,
        )
    except user_store.UserError as exc:
        raise ApiProblem(422, str(exc), type_="user") from None
    except user_store.UserNotFoundError:
        raise _not_found(username) from None
    if body.password is not None or body.disabled is False:
        # A new password or re-enabling is an administrator letting the user back in.
        throttle.clear_account(username)
    return user_out(user, throttle.account_locked(username))


@router.delete(
    "/{username}",
    status_code=204,
    summary="Remove an account, its sessions and tokens",
    responses={
        404: {"description": "no such user"},
        409: {"description": "would leave no enabled administrator, or is your own account"},
    },
)
def remove_user(username: Username, store: StoreDep, admin: AdminUser, clock: ClockDep) -> Response:
    try:
        current = user_store.get_user(store, username)
    except user_store.UserNotFoundError:
        raise _not_found(username) from None
    if username == admin.username:
        raise ApiProblem(409, "you cannot remove your own account", type_="self")
    if current.role == "admin" and not current.disabled and user_store.count_admins(store) <= 1:
        raise ApiProblem(409, "this is the last enabled administrator", type_="last-admin")
    try:
        user_store.remove_user(store, username, clock(), admin.username)
    except user_store.UserNotFoundError:
        raise _not_found(username) from None
    return Response(status_code=204)
