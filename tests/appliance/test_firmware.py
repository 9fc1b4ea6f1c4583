"""The OS layer in firmware/: monitor-interface script, udev, modprobe, D-Bus, boot, time."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import signal
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.appliance.units import UNIT_DIR, one, parse_unit

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
WIFI_MONITOR = FIRMWARE / "wifi-monitor"

# iw and ip stand-ins: they log their arguments; `iw phy X info` lists monitor mode unless the
# phy is named in $FAKE_NO_MONITOR.
FAKE_IW = """#!/bin/sh
echo "iw $*" >> "$FAKE_LOG"
if [ "$1" = phy ] && [ "$3" = info ]; then
  echo "Wiphy $2"
  echo "	Supported interface modes:"
  echo "		 * managed"
  [ "$2" = "$FAKE_NO_MONITOR" ] || echo "		 * monitor"
fi
exit 0
"""
FAKE_IP = """#!/bin/sh
echo "ip $*" >> "$FAKE_LOG"
"""


class FakeHost:
    """A /sys/class/net tree and iw/ip on PATH that record what the script asks of them."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.sysfs = base / "sys"
        self.bin = base / "bin"
        self.log = base / "calls.log"
        self.bin.mkdir()
        for name, text in (("iw", FAKE_IW), ("ip", FAKE_IP)):
            (self.bin / name).write_text(text)
            (self.bin / name).chmod(0o755)

    def add_interface(self, name: str, phy: str) -> None:
        d = self.sysfs / "class/net" / name / "phy80211"
        d.mkdir(parents=True)
        (d / "name").write_text(phy + "\n")

    def run(self, *args: str, **env: str) -> tuple[int, list[str], str]:
        self.log.write_text("")
        full_env = {
            "PATH": f"{self.bin}:{os.environ['PATH']}",
            "FAKE_LOG": str(self.log),
            "CHECKPOINT_SYSFS": str(self.sysfs),
            **env,
        }
        result = subprocess.run(
            ["bash", str(WIFI_MONITOR), *args],
            env=full_env,
            capture_output=True,
            text=True,
            check=False,
        )
        return result.returncode, self.log.read_text().splitlines(), result.stderr


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    return FakeHost(tmp_path)


def test_up_adds_monitor_interface_and_silences_the_managed_one(host: FakeHost) -> None:
    host.add_interface("wlan1", "phy1")
    rc, calls, err = host.run("up", "wlan1")
    assert rc == 0, err
    assert calls == [
        "iw phy phy1 info",
        "iw phy phy1 interface add mon0 type monitor",
        "ip link set dev wlan1 down",
        "ip link set dev mon0 up",
    ]


def test_up_sets_the_regulatory_domain_and_honours_the_interface_name(host: FakeHost) -> None:
    host.add_interface("wlan1", "phy1")
    rc, calls, _ = host.run(
        "up", "wlan1", CHECKPOINT_WIFI_COUNTRY="DE", CHECKPOINT_MONITOR_IFACE="gate0"
    )
    assert rc == 0
    assert calls[0] == "iw reg set DE"
    assert "iw phy phy1 interface add gate0 type monitor" in calls


def test_the_monitor_interface_announcing_itself_changes_nothing(host: FakeHost) -> None:
    host.add_interface("wlan1", "phy1")
    host.add_interface("mon0", "phy1")
    assert host.run("up", "mon0")[:2] == (0, [])
    # rerun for the adapter: mon0 exists on the right phy; only the links are set again
    rc, calls, _ = host.run("up", "wlan1")
    assert rc == 0
    assert calls == ["ip link set dev wlan1 down", "ip link set dev mon0 up"]


def test_second_adapter_is_left_alone(host: FakeHost) -> None:
    host.add_interface("wlan1", "phy1")
    host.add_interface("mon0", "phy1")
    host.add_interface("wlan2", "phy2")
    rc, calls, err = host.run("up", "wlan2")
    assert (rc, calls) == (0, [])
    assert "stays unused" in err


def test_adapter_without_monitor_mode_is_an_error_that_says_what_to_do(host: FakeHost) -> None:
    host.add_interface("wlan1", "phy1")
    rc, calls, err = host.run("up", "wlan1", FAKE_NO_MONITOR="phy1")
    assert rc == 1
    assert not any("interface add" in c for c in calls)
    assert "cannot do monitor mode" in err
    assert "hardware.md" in err


def test_not_a_wireless_interface(host: FakeHost) -> None:
    rc, calls, err = host.run("up", "eth0")
    assert (rc, calls) == (1, [])
    assert "not a wireless interface" in err


def test_down_removes_only_our_monitor_interface(host: FakeHost) -> None:
    host.add_interface("wlan1", "phy1")
    host.add_interface("mon0", "phy1")
    assert host.run("down", "wlan1")[:2] == (0, ["iw dev mon0 del"])
    host.add_interface("wlan2", "phy2")
    assert host.run("down", "wlan2")[:2] == (0, [])
    assert host.run("down", "gone0")[:2] == (0, [])  # unplugged: nothing left to remove


def test_usage_errors(host: FakeHost) -> None:
    assert host.run()[0] == 2
    assert host.run("sideways", "wlan1")[0] == 2


# udev: KEY or KEY{attr}, an operator, a quoted value; pairs separated by commas.
_UDEV_PAIR = re.compile(r'^([A-Z_]+)(\{[A-Za-z0-9_]+\})?(==|!=|\+=|-=|:=|=)"([^"]*)"$')


def udev_rules(path: Path) -> list[list[tuple[str, str, str]]]:
    rules = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        pairs = []
        for part in line.split(", "):
            m = _UDEV_PAIR.match(part.strip())
            assert m, f"{path.name}: cannot parse {part!r}"
            pairs.append((m[1] + (m[2] or ""), m[3], m[4]))
        rules.append(pairs)
    return rules


def test_rtlsdr_rule_gives_the_dongle_to_the_sdr_units_group() -> None:
    rules = udev_rules(FIRMWARE / "60-checkpoint-rtlsdr.rules")
    sdr_group = one(
        parse_unit(UNIT_DIR / "checkpoint-capture-sdr.service"), "Service", "SupplementaryGroups"
    )
    ids = set()
    for rule in rules:
        fields = {key: (op, value) for key, op, value in rule}
        if "GROUP" not in fields:
            continue
        assert fields["GROUP"] == ("=", sdr_group)
        assert fields["MODE"] == ("=", "0660")
        ids.add((fields["ATTR{idVendor}"][1], fields["ATTR{idProduct}"][1]))
    assert {("0bda", "2838"), ("0bda", "2832")} <= ids
    # guards: only USB devices (not interfaces) reach the ID rules, and the label exists
    text = (FIRMWARE / "60-checkpoint-rtlsdr.rules").read_text()
    assert text.count('GOTO="checkpoint_rtlsdr_end"') == 2
    assert 'LABEL="checkpoint_rtlsdr_end"' in text


def test_wifi_rule_starts_the_monitor_template_for_usb_managed_interfaces() -> None:
    (rule,) = udev_rules(FIRMWARE / "70-checkpoint-wifi-monitor.rules")
    fields = {key: (op, value) for key, op, value in rule}
    assert fields["SUBSYSTEMS"] == ("==", "usb")
    assert fields["ATTR{type}"] == ("==", "1")
    assert fields["ENV{SYSTEMD_WANTS}"] == ("+=", "checkpoint-wifi-monitor@%k.service")
    assert (UNIT_DIR / "checkpoint-wifi-monitor@.service").is_file()


def test_dvb_driver_is_blacklisted() -> None:
    lines = (FIRMWARE / "checkpoint-blacklist-dvb.conf").read_text().splitlines()
    blacklisted = {ln.split()[1] for ln in lines if ln.startswith("blacklist ")}
    assert {"dvb_usb_rtl28xxu", "rtl2832", "rtl2832_sdr"} <= blacklisted
    assert all(ln.startswith(("#", "blacklist ")) or not ln.strip() for ln in lines)


def test_dbus_policy_lets_checkpoint_call_bluez_only() -> None:
    tree = ET.parse(FIRMWARE / "checkpoint-bluez.conf")
    policies = tree.getroot().findall("policy")
    assert [p.attrib for p in policies] == [{"user": "checkpoint"}]
    rules = [(r.tag, r.attrib) for r in policies[0]]
    assert rules == [("allow", {"send_destination": "org.bluez"})]


def test_dbus_daemon_accepts_the_policy(tmp_path: Path) -> None:
    daemon = shutil.which("dbus-daemon")
    if daemon is None:
        pytest.skip("dbus-daemon is not installed")
    config = tmp_path / "bus.conf"
    config.write_text(f"""<busconfig>
  <type>session</type>
  <listen>unix:dir={tmp_path}</listen>
  <policy context="default"><allow send_destination="*" eavesdrop="true"/><allow own="*"/></policy>
  <include>{FIRMWARE / "checkpoint-bluez.conf"}</include>
</busconfig>
""")
    proc = subprocess.Popen(
        [daemon, f"--config-file={config}", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        address = proc.stdout.readline()
        assert address.startswith("unix:"), proc.stderr.read() if proc.poll() is not None else ""
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def test_boot_fragment_is_one_marked_block_of_settings() -> None:
    lines = (FIRMWARE / "config.txt.fragment").read_text().splitlines()
    assert lines[0].startswith("# BEGIN checkpoint")
    assert lines[-1] == "# END checkpoint"
    settings = [ln for ln in lines if ln and not ln.startswith("#")]
    for line in settings:
        assert re.fullmatch(r"\[[a-z0-9]+\]|[a-z_0-9]+=[A-Za-z0-9_,=.-]+", line), line
    assert "dtparam=watchdog=on" in settings
    # the RTC options are offered, commented out (they need extra hardware)
    assert "#dtoverlay=i2c-rtc,ds3231" in lines


def test_systemd_pets_the_hardware_watchdog_within_its_range() -> None:
    conf = configparser.ConfigParser()
    conf.read(FIRMWARE / "system-watchdog.conf")
    seconds = int(conf["Manager"]["RuntimeWatchdogSec"].removesuffix("s"))
    assert 0 < seconds <= 15  # the Broadcom SoC watchdog cannot count longer
    assert conf["Manager"]["RebootWatchdogSec"]


def test_network_manager_leaves_capture_adapters_alone() -> None:
    conf = configparser.ConfigParser()
    conf.read(FIRMWARE / "NetworkManager-checkpoint.conf")
    specs = conf["keyfile"]["unmanaged-devices"].split(";")
    assert "interface-name:mon*" in specs
    assert conf["connection"]["wifi.powersave"] == "2"
    # every driver kept away from NetworkManager is one hardware.md names
    drivers = {s.removeprefix("driver:") for s in specs if s.startswith("driver:")}
    hardware = (ROOT / "hardware.md").read_text()
    for driver in drivers:
        assert f"`{driver}`" in hardware, driver


def test_time_sync_saves_the_clock_often() -> None:
    conf = configparser.ConfigParser()
    conf.read(FIRMWARE / "timesyncd-checkpoint.conf")
    assert int(conf["Time"]["SaveIntervalSec"]) <= 300
    assert conf["Time"]["FallbackNTP"].split()


def test_bluez_runs_with_the_advertisement_monitor_api() -> None:
    # Passive scanning (receive-only) needs BlueZ's experimental advertisement monitors; the
    # drop-in must clear the packaged ExecStart before replacing it.
    unit = parse_unit(FIRMWARE / "bluetooth-checkpoint.conf")
    exec_start = [v for k, v in unit["Service"] if k == "ExecStart"]
    assert exec_start[0] == ""
    assert exec_start[1].split() == ["/usr/libexec/bluetooth/bluetoothd", "--experimental"]


def test_journal_survives_reboots_within_bounds() -> None:
    conf = configparser.ConfigParser()
    conf.read(FIRMWARE / "journald-checkpoint.conf")
    assert conf["Journal"]["Storage"] == "persistent"
    assert conf["Journal"]["SystemMaxUse"].endswith("M")
    assert int(conf["Journal"]["SystemMaxUse"].removesuffix("M")) <= 500
    assert conf["Journal"]["MaxRetentionSec"]
