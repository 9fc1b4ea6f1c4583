"""Monitor-mode setup and tuning through ``iw`` and ``ip``, with classified errors.

Every call runs with a timeout (a wedged driver must not hang the source) and its failure is
classified by ``constants.classify_message`` into a ``MonitorError`` whose message tells the
operator what to do.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

from scanner.sources.wifi.constants import (
    ADVICE,
    IW_TIMEOUT_S,
    IwErrorClass,
    classify_message,
)
from scanner.sources.wifi.errors import MonitorError
from scanner.sources.wifi.pcapfile import LINKTYPE_IEEE802_11, LINKTYPE_IEEE802_11_RADIOTAP

_LOGGER = logging.getLogger(__name__)

SYS_CLASS_NET = Path("/sys/class/net")
# ARPHRD_* of /sys/class/net/IFACE/type for 802.11 interfaces, to pcap link types.
ARPHRD_TO_LINKTYPE = {
    803: LINKTYPE_IEEE802_11_RADIOTAP,  # ARPHRD_IEEE80211_RADIOTAP: monitor mode, the usual
    801: LINKTYPE_IEEE802_11,  # ARPHRD_IEEE80211
    802: 119,  # ARPHRD_IEEE80211_PRISM: old drivers; refused by the parser
}
ARPHRD_ETHER = 1  # a managed-mode Wi-Fi interface looks like Ethernet


def _advice(cls: IwErrorClass, iface: str, detail: str) -> str:
    text = ADVICE[cls].format(iface=iface)
    return f"{text} ({detail})" if detail else text


def run_tool(tool: str, args: list[str], iface: str, timeout_s: float = IW_TIMEOUT_S) -> str:
    """Run ``tool args``; return stdout, or raise a classified ``MonitorError``."""
    try:
        done = subprocess.run(
            [tool, *args], capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except FileNotFoundError as exc:
        cls = IwErrorClass.NO_TOOL
        raise MonitorError(
            cls, f"{tool} is not installed; install it (apt install {tool})"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        cls = IwErrorClass.UNKNOWN
        raise MonitorError(cls, f"{iface}: {tool} {' '.join(args)} timed out") from exc
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        message = detail[-1] if detail else f"exit status {done.returncode}"
        cls = classify_message(message)
        raise MonitorError(cls, _advice(cls, iface, f"{tool} {' '.join(args)}: {message}"))
    return done.stdout


def interface_exists(iface: str) -> bool:
    """True when the kernel knows the interface."""
    return (SYS_CLASS_NET / iface).exists()


def interface_arphrd(iface: str) -> int | None:
    """The interface's hardware type (ARPHRD_*), or None if it cannot be read."""
    try:
        return int((SYS_CLASS_NET / iface / "type").read_text().strip())
    except (OSError, ValueError):
        return None


def interface_linktype(iface: str) -> int:
    """The pcap link type of frames captured on ``iface`` (127 for a monitor interface)."""
    arphrd = interface_arphrd(iface)
    if arphrd is None:
        raise MonitorError(IwErrorClass.NO_INTERFACE, _advice(IwErrorClass.NO_INTERFACE, iface, ""))
    linktype = ARPHRD_TO_LINKTYPE.get(arphrd)
    if linktype is None:
        raise MonitorError(
            IwErrorClass.NO_MONITOR,
            f"{iface}: not in monitor mode (hardware type {arphrd}); "
            "set [wifi] setup_monitor = true or put it in monitor mode",
        )
    return linktype


def is_monitor(iface: str) -> bool:
    """True when ``iw dev IFACE info`` reports type monitor."""
    info = run_tool("iw", ["dev", iface, "info"], iface)
    return any(line.strip() == "type monitor" for line in info.splitlines())


def ensure_monitor(iface: str) -> None:
    """Put ``iface`` in monitor mode (no-op if it already is).

    Ladder: 1. the interface must exist; 2. already monitor: done; 3. ip link set down,
    iw set type monitor, ip link set up. A failure at any step raises a classified error:
    NO_MONITOR (adapter cannot), BUSY (NetworkManager holds it), PERMISSION, NO_INTERFACE.
    """
    if not interface_exists(iface):
        raise MonitorError(IwErrorClass.NO_INTERFACE, _advice(IwErrorClass.NO_INTERFACE, iface, ""))
    if is_monitor(iface):
        return
    _LOGGER.info("%s: switching to monitor mode", iface)
    run_tool("ip", ["link", "set", iface, "down"], iface)
    run_tool("iw", ["dev", iface, "set", "type", "monitor"], iface)
    run_tool("ip", ["link", "set", iface, "up"], iface)


def set_channel(iface: str, channel: int) -> None:
    """Tune ``iface`` to ``channel`` (20 MHz)."""
    run_tool("iw", ["dev", iface, "set", "channel", str(channel)], iface)
