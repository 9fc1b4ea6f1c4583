"""`checkpoint user`: the first admin from the console, PIN accounts, tokens for the API."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings, SettingsError
from scanner.cli.main import main
from scanner.store import users as user_store
from scanner.store.db import Store


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_first_admin_pin_account_token_and_removal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = str(tmp_path / "c.db")
    monkeypatch.setenv("CHECKPOINT_PASSWORD", "first-admin-pw")
    assert _run(capsys, "user", "add", "chief", "--role", "admin", "--db", db)[0] == 0
    monkeypatch.delenv("CHECKPOINT_PASSWORD")
    monkeypatch.setenv("CHECKPOINT_PIN", "80808")
    assert _run(capsys, "user", "add", "tablet", "--pin", "--db", db)[0] == 0

    code, out, _ = _run(capsys, "user", "list", "--db", db)
    assert code == 0
    assert any(line.split()[:3] == ["chief", "admin", "password"] for line in out.splitlines())
    assert any(line.split()[:3] == ["tablet", "guard", "PIN"] for line in out.splitlines())

    code, token, err = _run(capsys, "user", "token", "chief", "--db", db)
    assert code == 0 and token.startswith("cpk_") and "shown once" in err
    client = TestClient(create_app(ApiSettings(store_path=db)), base_url="http://localhost")
    me = client.get("/api/v1/session", headers={"Authorization": f"Bearer {token.strip()}"})
    assert me.json()["username"] == "chief"
    assert client.post("/api/v1/session", json={"pin": "80808"}).json()["username"] == "tablet"

    code, _, err = _run(capsys, "user", "remove", "chief", "--db", db)
    assert code == 2 and "last administrator" in err
    assert _run(capsys, "user", "remove", "tablet", "--db", db)[0] == 0
    assert _run(capsys, "user", "remove", "tablet", "--db", db)[0] == 1
    actions = [r["action"] for r in Store(db).query("SELECT action FROM audit ORDER BY seq")]
    assert actions[:3] == ["user.add", "user.add", "token.create"] and "user.remove" in actions


def test_refusals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = str(tmp_path / "c.db")
    monkeypatch.delenv("CHECKPOINT_PASSWORD", raising=False)
    # No terminal and no environment variable: no password, no account.
    monkeypatch.setattr("sys.stdin", open("/dev/null"))  # noqa: SIM115 - pytest restores stdin
    code, _, err = _run(capsys, "user", "add", "x", "--db", db)
    assert code == 2 and "CHECKPOINT_PASSWORD" in err
    monkeypatch.setenv("CHECKPOINT_PASSWORD", "short")
    code, _, err = _run(capsys, "user", "add", "x", "--db", db)
    assert code == 2 and "at least" in err
    code, _, err = _run(capsys, "user", "add", "Bad Name", "--db", db)
    assert code == 2 and "user name" in err
    assert user_store.list_users(Store(db)) == []
    code, _, err = _run(capsys, "user", "list", "--config", str(tmp_path / "missing.toml"))
    assert code == 2 and "cannot read config" in err


def test_settings_from_the_config_section(tmp_path: Path) -> None:
    settings = ApiSettings.from_mapping(
        {"tls": True, "heartbeat_s": 5, "port": 8443}, tmp_path / "c.db"
    )
    assert settings.tls and settings.heartbeat_s == 5.0
    with pytest.raises(SettingsError, match="unknown key"):
        ApiSettings.from_mapping({"secret": "x"}, tmp_path / "c.db")
