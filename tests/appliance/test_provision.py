"""firmware/provision.sh --root: every file written, nothing else touched, twice the same."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from scanner.export.seal_key import read_keys

ROOT = Path(__file__).resolve().parents[2]
PROVISION = ROOT / "firmware" / "provision.sh"
# A private key is random by design: two fresh stagings differ in these two files and nowhere
# else. Running again over the same staging keeps them (it must: tablets trust the certificate).
RANDOM_BY_DESIGN = {
    "etc/checkpoint/tls/key.pem",
    "etc/checkpoint/tls/cert.pem",
    "etc/checkpoint/seal.key",
}


# Commands that change the running system: in --root mode they must never be executed.
SYSTEM_COMMANDS = ("apt-get", "pip", "python3", "systemctl", "systemd-sysusers",
                   "systemd-tmpfiles", "udevadm", "modprobe", "chown", "useradd")  # fmt: skip


def provision(stage: Path) -> subprocess.CompletedProcess[str]:
    # Stand-ins that record any call, first on PATH.
    fakes = stage.parent / f"{stage.name}-fakebin"
    fakes.mkdir(exist_ok=True)
    called = fakes / "called.log"
    for name in SYSTEM_COMMANDS:
        (fakes / name).write_text(f'#!/bin/sh\necho "{name} $*" >> "{called}"\n')
        (fakes / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{fakes}:{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", str(PROVISION), "--root", str(stage)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert not called.exists(), f"--root mode ran system commands: {called.read_text()}"
    return result


# Every entry under a stage: path -> (mode, content hash or link target or 'dir').
Tree = dict[str, tuple[str, str]]
# The stage, the first and second runs' logs, and the tree after each run.
Staged = tuple[Path, str, str, Tree, Tree]


def snapshot(stage: Path) -> Tree:
    """Every entry under the stage: mode and content hash (or link target, or 'dir')."""
    tree: dict[str, tuple[str, str]] = {}
    for path in sorted(stage.rglob("*")):
        rel = str(path.relative_to(stage))
        mode = oct(path.lstat().st_mode & 0o7777)
        if path.is_symlink():
            tree[rel] = (mode, "-> " + str(path.readlink()))
        elif path.is_dir():
            tree[rel] = (mode, "dir")
        else:
            tree[rel] = (mode, hashlib.sha256(path.read_bytes()).hexdigest())
    return tree


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> Staged:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    stage = tmp_path_factory.mktemp("stage") / "root"
    first = provision(stage)
    tree1 = snapshot(stage)
    second = provision(stage)
    tree2 = snapshot(stage)
    return stage, first.stderr, second.stderr, tree1, tree2


def test_shellcheck_clean() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt install shellcheck)")
    scripts = [PROVISION, ROOT / "firmware" / "wifi-monitor"]
    result = subprocess.run(
        ["shellcheck", "--severity=style", *map(str, scripts)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_second_run_produces_the_same_tree(staged: Staged) -> None:
    _, _, second_log, tree1, tree2 = staged
    assert len(tree1) > 20
    assert tree1 == tree2
    # and it did not even rewrite anything
    assert "provision: wrote" not in second_log


def test_a_fresh_staging_differs_only_in_the_random_key(staged: Staged, tmp_path: Path) -> None:
    _, _, _, tree1, _ = staged
    other = tmp_path / "root"
    provision(other)
    tree3 = snapshot(other)
    assert tree3.keys() == tree1.keys()
    differing = {k for k in tree1 if tree1[k] != tree3[k]}
    assert differing <= RANDOM_BY_DESIGN


def test_the_sealing_key_is_root_only_and_kept(staged: Staged) -> None:
    root, _, second_log, _, _ = staged
    key = root / "etc/checkpoint/seal.key"
    assert key.stat().st_mode & 0o777 == 0o600
    keys = read_keys(key)
    assert len(keys.current) == 32 and not keys.earlier
    # From when every alert-history link is keyed: the first provisioning, kept by the second.
    assert keys.chain_since is not None
    assert key.read_text().count("chain-keyed-since ") == 1
    assert "kept /etc/checkpoint/seal.key" in second_log


def test_files_are_installed_where_systemd_udev_and_the_daemons_look(staged: Staged) -> None:
    stage = staged[0]
    for unit in (ROOT / "systemd").glob("*.service"):
        assert (stage / "etc/systemd/system" / unit.name).read_bytes() == unit.read_bytes()
    assert (stage / "etc/systemd/system/checkpoint.target").is_file()
    expected = {
        "etc/sysusers.d/checkpoint.conf": 0o644,
        "etc/tmpfiles.d/checkpoint.conf": 0o644,
        "etc/udev/rules.d/60-checkpoint-rtlsdr.rules": 0o644,
        "etc/udev/rules.d/70-checkpoint-wifi-monitor.rules": 0o644,
        "etc/modprobe.d/checkpoint-blacklist-dvb.conf": 0o644,
        "etc/dbus-1/system.d/checkpoint-bluez.conf": 0o644,
        "etc/NetworkManager/conf.d/90-checkpoint.conf": 0o644,
        "etc/systemd/system/bluetooth.service.d/checkpoint.conf": 0o644,
        "etc/systemd/timesyncd.conf.d/checkpoint.conf": 0o644,
        "etc/systemd/system.conf.d/checkpoint-watchdog.conf": 0o644,
        "etc/systemd/journald.conf.d/checkpoint.conf": 0o644,
        "etc/default/checkpoint-wifi-monitor": 0o644,
        "opt/checkpoint/libexec/wifi-monitor": 0o755,
        "opt/checkpoint/share/hardware.md": 0o644,
        "etc/checkpoint/checkpoint.toml": 0o640,
        "etc/checkpoint/tls/key.pem": 0o640,
        "etc/checkpoint/tls/cert.pem": 0o644,
    }
    for rel, mode in expected.items():
        path = stage / rel
        assert path.is_file(), rel
        assert path.stat().st_mode & 0o7777 == mode, rel
    assert (stage / "etc/checkpoint").stat().st_mode & 0o777 == 0o750
    config = (stage / "etc/checkpoint/checkpoint.toml").read_bytes()
    assert config == (ROOT / "firmware/checkpoint.toml.example").read_bytes()
    boot = (stage / "boot/firmware/config.txt").read_text()
    assert boot == (ROOT / "firmware/config.txt.fragment").read_text()


def test_root_mode_only_logs_system_changes(staged: Staged) -> None:
    first_log = staged[1]
    lines = first_log.splitlines()
    assert not [ln for ln in lines if ln.startswith("provision: run:")], "ran a system command"
    would = "\n".join(ln for ln in lines if ln.startswith("provision: would run:"))
    for command in (
        "apt-get install",
        "pip install",
        "systemd-sysusers",
        "systemctl enable",
        "udevadm control --reload",
        "systemctl daemon-reload",
        "chown root:checkpoint",
    ):
        assert command in would, command
    # Written files carry no timestamp or staging path that would make the tree unreproducible.
    stage = staged[0]
    for path in stage.rglob("*"):
        if path.is_file() and path.suffix != ".pem":
            assert str(stage) not in path.read_text(errors="replace"), path


def test_certificate_is_valid_for_the_host_name(staged: Staged) -> None:
    cert = staged[0] / "etc/checkpoint/tls/cert.pem"
    out = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-subject", "-ext", "subjectAltName"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "CN = checkpoint" in out
    assert "DNS:checkpoint.local" in out
    key = staged[0] / "etc/checkpoint/tls/key.pem"
    subprocess.run(["openssl", "pkey", "-in", str(key), "-noout"], check=True)


def test_operator_edits_survive_and_managed_files_are_restored(tmp_path: Path) -> None:
    stage = tmp_path / "root"
    boot = stage / "boot/firmware/config.txt"
    boot.parent.mkdir(parents=True)
    boot.write_text(
        "arm_64bit=1\n# BEGIN checkpoint old\ndtparam=watchdog=off\n"
        "# END checkpoint\nenable_uart=1\n"
    )
    (stage / "etc").mkdir()
    (stage / "etc/hostname").write_text("gate-north\n")
    provision(stage)
    text = boot.read_text()
    assert text.startswith("arm_64bit=1\nenable_uart=1\n# BEGIN checkpoint")
    assert text.count("# BEGIN checkpoint") == 1
    assert "dtparam=watchdog=off" not in text
    cert = stage / "etc/checkpoint/tls/cert.pem"
    subject = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-subject"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "gate-north" in subject

    config = stage / "etc/checkpoint/checkpoint.toml"
    config.write_text('[site]\nname = "gate north"\n')
    unit = stage / "etc/systemd/system/checkpoint-core.service"
    unit.write_text("tampered\n")
    unit.chmod(0o600)
    cert_before = cert.read_bytes()
    second = provision(stage)
    assert config.read_text() == '[site]\nname = "gate north"\n'
    assert "kept /etc/checkpoint/checkpoint.toml" in second.stderr
    assert unit.read_bytes() == (ROOT / "systemd/checkpoint-core.service").read_bytes()
    assert unit.stat().st_mode & 0o777 == 0o644
    assert cert.read_bytes() == cert_before
    assert boot.read_text() == text


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    for argv in (["--bogus"], ["--root"]):
        result = subprocess.run(
            ["bash", str(PROVISION), *argv], capture_output=True, text=True, check=False
        )
        assert result.returncode == 2, argv
        assert "usage: provision.sh" in result.stderr


def test_refuses_to_change_the_system_without_root(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to drop to an unprivileged user")
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "bash", str(PROVISION)],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1
    assert "run as root" in result.stderr
