"""The systemd units: systemd itself accepts them, and each carries its hardening and privileges."""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

import pytest

from scanner.cli.main import build_parser
from tests.appliance.units import (
    CAPTURES,
    DAEMONS,
    UNIT_DIR,
    make_stage_root,
    one,
    parse_unit,
    values,
    words,
)

ALL_UNITS = sorted(p for p in UNIT_DIR.iterdir() if p.suffix in {".service", ".target"})
# What systemd-analyze should be asked to load: a template needs an instance.
LOADABLE = [p.name.replace("@.", "@wlan1.") for p in ALL_UNITS]

HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "ProtectClock": "yes",
    "ProtectHostname": "yes",
    "RestrictNamespaces": "yes",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "SystemCallArchitectures": "native",
    "SystemCallFilter": "@system-service",
    "UMask": "0027",
}
DAEMON_SETTINGS = {
    "Type": "notify",
    "NotifyAccess": "main",
    "Restart": "on-failure",
    "User": "checkpoint",
    "Group": "checkpoint",
    "RuntimeDirectory": "checkpoint",
    "RuntimeDirectoryPreserve": "yes",
}
FAMILIES = {
    "checkpoint-core.service": {"AF_UNIX"},
    "checkpoint-api.service": {"AF_UNIX", "AF_INET", "AF_INET6"},
    "checkpoint-capture-wifi.service": {"AF_UNIX", "AF_NETLINK", "AF_PACKET"},
    "checkpoint-capture-ble.service": {"AF_UNIX", "AF_BLUETOOTH"},
    "checkpoint-capture-sdr.service": {"AF_UNIX", "AF_NETLINK", "AF_INET", "AF_INET6"},
}
CAPABILITIES: dict[str, set[str]] = {name: set() for name in DAEMONS} | {
    "checkpoint-capture-wifi.service": {"CAP_NET_RAW", "CAP_NET_ADMIN"},
}


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (apt install systemd)")
    if not Path("/usr/lib/systemd/system/sysinit.target").exists():
        pytest.skip("no systemd unit directory on this machine")
    return make_stage_root(tmp_path_factory.mktemp("units"), ALL_UNITS)


@pytest.mark.parametrize("unit", LOADABLE)
def test_systemd_analyze_verify_accepts_unit(stage: Path, unit: str) -> None:
    # --root: the units are checked as installed (/etc/systemd/system) with their real ExecStart
    # paths, which exist in the stage as stubs; --man=no: Documentation= is a local file.
    result = subprocess.run(
        ["systemd-analyze", "verify", f"--root={stage}", "--man=no", "--generators=no", unit],
        capture_output=True,
        text=True,
        check=False,
        cwd=stage,
    )
    # verify exits 0 on unknown keys and bad values ("ignoring"): any output is a failure too.
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr
    assert result.stdout.strip() == "", result.stdout


def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: a misspelt option and a missing binary are both reported."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    broken = tmp_path / "checkpoint-core.service"
    text = (UNIT_DIR / "checkpoint-core.service").read_text()
    broken.write_text(text.replace("ProtectHome=yes", "ProtectHomes=yes"))
    root = make_stage_root(tmp_path / "root", [broken])
    result = subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", "--man=no", "--generators=no", broken.name],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "ProtectHomes" in result.stderr
    (root / "opt/checkpoint/venv/bin/checkpoint").unlink()
    result = subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", "--man=no", "--generators=no", broken.name],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "is not executable" in result.stderr


@pytest.mark.parametrize("unit", [n for n in LOADABLE if n.endswith(".service")])
def test_systemd_exposure_score_is_low(stage: Path, unit: str) -> None:
    # systemd's own hardening audit, offline: 0 is locked down, 10 is a plain root service.
    # --threshold=25 fails above an exposure of 2.5 ("OK" starts below 3.9).
    result = subprocess.run(
        [
            "systemd-analyze",
            "security",
            "--offline=yes",
            f"--root={stage}",
            "--threshold=25",
            "--no-pager",
            unit,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr


@pytest.mark.parametrize(
    "unit", [p for p in ALL_UNITS if p.suffix == ".service"], ids=lambda p: p.name
)
def test_hardening_options_present(unit: Path) -> None:
    parsed = parse_unit(unit)
    for key, expected in HARDENING.items():
        assert expected in values(parsed, "Service", key), f"{unit.name}: {key}={expected}"
    assert one(parsed, "Service", "SystemCallErrorNumber") == "EPERM"
    assert one(parsed, "Service", "MemoryDenyWriteExecute") in {"yes", "no"}, "decide W^X"
    assert words(parsed, "Service", "RestrictAddressFamilies"), "no address family limit"
    assert one(parsed, "Service", "PrivateDevices") in {"yes", "no"}


@pytest.mark.parametrize("unit", sorted(DAEMONS))
def test_daemon_units_notify_restart_and_run_unprivileged(unit: str) -> None:
    parsed = parse_unit(UNIT_DIR / unit)
    for key, expected in DAEMON_SETTINGS.items():
        assert one(parsed, "Service", key) == expected, f"{unit}: {key}"
    assert one(parsed, "Service", "WatchdogSignal") == "SIGABRT"
    assert "PYTHONFAULTHANDLER=1" in values(parsed, "Service", "Environment")
    watchdog = one(parsed, "Service", "WatchdogSec")
    assert watchdog is not None
    assert watchdog.endswith("s")
    assert 10 <= int(watchdog.removesuffix("s")) <= 120
    assert int(one(parsed, "Unit", "StartLimitBurst") or 0) >= 1
    assert one(parsed, "Unit", "StartLimitIntervalSec")
    assert one(parsed, "Service", "MemoryMax")
    assert one(parsed, "Unit", "PartOf") == "checkpoint.target"
    assert values(parsed, "Install", "WantedBy") == ["checkpoint.target"]
    assert words(parsed, "Service", "RestrictAddressFamilies") == FAMILIES[unit]
    caps = CAPABILITIES[unit]
    assert words(parsed, "Service", "CapabilityBoundingSet") == caps
    assert words(parsed, "Service", "AmbientCapabilities") == caps


@pytest.mark.parametrize("unit", sorted(DAEMONS))
def test_exec_start_is_the_cli_contract(unit: str) -> None:
    exec_start = one(parse_unit(UNIT_DIR / unit), "Service", "ExecStart")
    assert exec_start is not None
    argv = exec_start.split()
    assert argv[0] == "/opt/checkpoint/venv/bin/checkpoint"
    assert argv[1:] == [*DAEMONS[unit], "--config", "/etc/checkpoint/checkpoint.toml"]
    # The real command-line parser accepts it (the subcommand and its options exist).
    args = build_parser().parse_args(argv[1:])
    assert isinstance(args, argparse.Namespace)
    assert args.config == "/etc/checkpoint/checkpoint.toml"


@pytest.mark.parametrize("unit", CAPTURES)
def test_capture_daemons_cannot_reach_the_database(unit: str) -> None:
    # They parse over-the-air input: a parser exploit must not reach stored evidence.
    parsed = parse_unit(UNIT_DIR / unit)
    assert one(parsed, "Service", "StateDirectory") is None
    assert "-/var/lib/checkpoint" in values(parsed, "Service", "InaccessiblePaths")
    assert one(parsed, "Unit", "After") is not None
    assert "checkpoint-core.service" in words(parsed, "Unit", "After")


def test_only_the_sdr_unit_sees_devices() -> None:
    for unit in DAEMONS:
        parsed = parse_unit(UNIT_DIR / unit)
        if unit == "checkpoint-capture-sdr.service":
            assert one(parsed, "Service", "PrivateDevices") == "no"
            assert one(parsed, "Service", "DevicePolicy") == "closed"
            assert values(parsed, "Service", "DeviceAllow") == ["char-usb_device rw"]
            assert one(parsed, "Service", "SupplementaryGroups") == "plugdev"
        else:
            assert one(parsed, "Service", "PrivateDevices") == "yes", unit


def test_core_and_api_share_the_state_directory_and_target_pulls_them() -> None:
    for unit in ("checkpoint-core.service", "checkpoint-api.service"):
        parsed = parse_unit(UNIT_DIR / unit)
        assert one(parsed, "Service", "StateDirectory") == "checkpoint"
    target = parse_unit(UNIT_DIR / "checkpoint.target")
    assert {"checkpoint-core.service", "checkpoint-api.service"} <= words(target, "Unit", "Wants")
    assert values(target, "Install", "WantedBy") == ["multi-user.target"]


def test_tmpfiles_and_sysusers_agree_with_the_units() -> None:
    sysusers = [
        ln.split()
        for ln in (UNIT_DIR / "checkpoint.sysusers").read_text().splitlines()
        if ln and not ln.startswith("#")
    ]
    assert [(f[0], f[1]) for f in sysusers] == [("u", "checkpoint")]
    tmpfiles = {
        ln.split()[1]: ln.split()
        for ln in (UNIT_DIR / "checkpoint.tmpfiles").read_text().splitlines()
        if ln and not ln.startswith("#")
    }
    assert tmpfiles["/run/checkpoint"][2:5] == ["0750", "checkpoint", "checkpoint"]
    assert "/var/lib/checkpoint" in tmpfiles
