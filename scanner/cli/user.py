"""`checkpoint user add|remove|list|passwd|token`: accounts and API tokens from the console.

The first administrator is made here (there is no default password outside the demo).
Passwords are asked for twice without echo, or read from ``CHECKPOINT_PASSWORD`` (and a PIN from
``CHECKPOINT_PIN``) for provisioning scripts.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
import time
from pathlib import Path

from scanner.config import ConfigError, load_config
from scanner.store import sessions, users
from scanner.store.db import Store, StoreError
from scanner.store.users import ensure_demo_users

__all__ = ["ensure_demo_users", "run"]

_LOGGER = logging.getLogger(__name__)


class _CliError(Exception):
    pass


def _db_path(args: argparse.Namespace) -> Path:
    if getattr(args, "db", None):
        return Path(args.db)
    try:
        return load_config(args.config).db_path
    except ConfigError as exc:
        raise _CliError(f"{exc} (or give --db PATH)") from exc


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _ask(what: str, env: str) -> str:
    value = os.environ.get(env)
    if value is not None:
        return value
    if not sys.stdin.isatty():
        raise _CliError(f"no terminal to ask for the {what}; set {env}")
    first = getpass.getpass(f"New {what}: ")
    second = getpass.getpass(f"Repeat the {what}: ")
    if first != second:
        raise _CliError(f"the two {what}s differ")
    return first


def _need_name(args: argparse.Namespace) -> str:
    if not args.username:
        raise _CliError(f"`checkpoint user {args.action}` needs a user name")
    return str(args.username)


def _add(store: Store, args: argparse.Namespace) -> int:
    name = _need_name(args)
    password: str | None = None
    pin: str | None = None
    if args.pin:
        pin = _ask("PIN", "CHECKPOINT_PIN")
        if "CHECKPOINT_PASSWORD" in os.environ:
            password = os.environ["CHECKPOINT_PASSWORD"]
    else:
        password = _ask("password", "CHECKPOINT_PASSWORD")
    user = users.add_user(store, name, args.role, time.time(), _actor(), password=password, pin=pin)
    print(f"added {user.username} ({user.role}{', PIN' if user.has_pin else ''})")
    return 0


def _passwd(store: Store, args: argparse.Namespace) -> int:
    name = _need_name(args)
    if args.pin:
        users.update_user(store, name, time.time(), _actor(), pin=_ask("PIN", "CHECKPOINT_PIN"))
        print(f"new PIN set for {name}")
    else:
        users.update_user(
            store, name, time.time(), _actor(), password=_ask("password", "CHECKPOINT_PASSWORD")
        )
        print(f"new password set for {name}; their sessions were ended")
    return 0


def _list(store: Store, _args: argparse.Namespace) -> int:
    now = time.time()
    rows = users.list_users(store)
    if not rows:
        print("no users; add the first administrator with `checkpoint user add NAME --role admin`")
        return 0
    print(f"{'user':<20} {'role':<11} {'login':<14} state")
    for u in rows:
        login = "+".join(x for x, on in (("password", u.has_password), ("PIN", u.has_pin)) if on)
        state = "disabled" if u.disabled else "locked" if u.locked_until > now else "active"
        print(f"{u.username:<20} {u.role:<11} {login:<14} {state}")
    tokens = sessions.list_tokens(store)
    if tokens:
        print()
        print(f"{'token id':<13} {'user':<20} label")
        for t in tokens:
            print(f"{t.id:<13} {t.username:<20} {t.label}")
    return 0


def _remove(store: Store, args: argparse.Namespace) -> int:
    name = _need_name(args)
    user = users.get_user(store, name)
    if user.role == "admin" and not user.disabled and users.count_admins(store) <= 1:
        raise _CliError(f"{name} is the last administrator; add another first")
    users.remove_user(store, name, time.time(), _actor())
    print(f"removed {name}")
    return 0


def _token(store: Store, args: argparse.Namespace) -> int:
    name = _need_name(args)
    label = f"made with `checkpoint user token` on {time.strftime('%Y-%m-%d')}"
    token = sessions.create_token(store, name, label, time.time(), _actor())
    # The token itself goes to stdout alone, so `TOKEN=$(checkpoint user token x)` works.
    print(token)
    print("shown once: send it as `Authorization: Bearer <token>`", file=sys.stderr)
    return 0


_ACTIONS = {"add": _add, "passwd": _passwd, "list": _list, "remove": _remove, "token": _token}


def run(args: argparse.Namespace) -> int:
    try:
        store = Store(_db_path(args))
    except (_CliError, StoreError) as exc:
        print(f"checkpoint user: {exc}", file=sys.stderr)
        return 2
    try:
        return _ACTIONS[args.action](store, args)
    except (_CliError, users.UserError) as exc:
        print(f"checkpoint user: {exc}", file=sys.stderr)
        return 2
    except users.UserNotFoundError as exc:
        print(f"checkpoint user: no user {exc.args[0]!r}", file=sys.stderr)
        return 1
    finally:
        store.close()
