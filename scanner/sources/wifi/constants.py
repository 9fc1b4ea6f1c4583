"""Constants of the live Wi-Fi source: the kernel filter, timeouts, and error classification.

Errors from ``iw`` / nl80211 and from the capture socket arrive as strings. They are classified
here, by table, into a few classes that decide what the source does next (retry soon, retry
slowly, give up on a channel, give up) and what the operator is told.
"""

from __future__ import annotations

import errno
from enum import StrEnum

from scanner.sources.backoff import Schedule

# The kernel filter: only frames the parser keeps reach Python. libpcap's 802.11 primitives
# skip the radiotap header themselves. Probe requests; data, null, QoS data and QoS null
# ("qos" in libpcap's names: subtype 12) frames sent to an AP (ToDS set, FromDS clear:
# "dir tods"). Must stay in step with dot11.parse_frame (tests compile it and run it on the
# shared captures against the parser).
BPF_FILTER = (
    "(type mgt subtype probe-req) or "
    "(type data and dir tods and (subtype data or subtype null or subtype qos-data or subtype qos))"
)

# Every call to iw / ip gets this long; nl80211 answers in milliseconds unless the driver hangs.
IW_TIMEOUT_S = 5.0
# How long the capture socket blocks before the loop looks at the stop flag again.
SOCKET_POLL_S = 0.5
# Reopen backoff after the interface vanished or the socket failed: the first retry of a class
# after a second (a replugged adapter is back in about that), doubling up to a minute.
RETRY_FIRST_S = 1.0
RETRY_MAX_S = 60.0
# A channel that fails to tune this many times in a row is dropped from the plan.
CHANNEL_MAX_FAILURES = 3


class IwErrorClass(StrEnum):
    """What an ``iw``/nl80211 or socket error means for the source."""

    NO_MONITOR = "no_monitor"  # the adapter or driver cannot do monitor mode: give up
    NO_INTERFACE = "no_interface"  # the interface does not exist (unplugged, renamed)
    BUSY = "busy"  # the interface is in use (NetworkManager, wpa_supplicant)
    PERMISSION = "permission"  # not root / no CAP_NET_ADMIN
    BAD_CHANNEL = "bad_channel"  # the channel is not allowed (regulatory domain, band)
    NO_TOOL = "no_tool"  # iw is not installed
    BAD_FILTER = "bad_filter"  # the [wifi] bpf expression does not compile
    UNKNOWN = "unknown"


# Substrings of iw / nl80211 / kernel messages, most specific first.
IW_ERROR_TABLE: tuple[tuple[str, IwErrorClass], ...] = (
    ("command failed: operation not supported (-95)", IwErrorClass.NO_MONITOR),
    ("operation not supported", IwErrorClass.NO_MONITOR),
    ("not supported", IwErrorClass.NO_MONITOR),
    ("no such device (-19)", IwErrorClass.NO_INTERFACE),
    ("no such device", IwErrorClass.NO_INTERFACE),
    ("cannot find device", IwErrorClass.NO_INTERFACE),
    ("does not exist", IwErrorClass.NO_INTERFACE),
    ("device or resource busy (-16)", IwErrorClass.BUSY),
    ("resource busy", IwErrorClass.BUSY),
    ("operation not permitted (-1)", IwErrorClass.PERMISSION),
    ("operation not permitted", IwErrorClass.PERMISSION),
    ("permission denied", IwErrorClass.PERMISSION),
    ("invalid argument (-22)", IwErrorClass.BAD_CHANNEL),
    ("invalid argument", IwErrorClass.BAD_CHANNEL),
    ("no data available (-61)", IwErrorClass.BAD_CHANNEL),
)

# errno values from the capture socket, mapped the same way.
ERRNO_TABLE: dict[int, IwErrorClass] = {
    errno.ENODEV: IwErrorClass.NO_INTERFACE,
    errno.ENXIO: IwErrorClass.NO_INTERFACE,
    errno.ENETDOWN: IwErrorClass.NO_INTERFACE,
    errno.EBUSY: IwErrorClass.BUSY,
    errno.EPERM: IwErrorClass.PERMISSION,
    errno.EACCES: IwErrorClass.PERMISSION,
    errno.EOPNOTSUPP: IwErrorClass.NO_MONITOR,
}

# What to tell the operator, per class (the interface name is filled in).
ADVICE: dict[IwErrorClass, str] = {
    IwErrorClass.NO_MONITOR: (
        "{iface}: the adapter or its driver cannot do monitor mode; use an adapter that "
        "supports it (see hardware.md)"
    ),
    IwErrorClass.NO_INTERFACE: (
        "{iface}: interface not found; check the adapter is plugged in (unplug and replug it) "
        "and the interface name in [wifi] interface"
    ),
    IwErrorClass.BUSY: (
        "{iface}: interface busy; stop NetworkManager/wpa_supplicant from managing it "
        "(nmcli device set {iface} managed no)"
    ),
    IwErrorClass.PERMISSION: (
        "{iface}: not permitted; run the capture with CAP_NET_ADMIN and CAP_NET_RAW "
        "(the checkpoint-capture-wifi unit has them)"
    ),
    IwErrorClass.BAD_CHANNEL: "{iface}: channel not allowed here (regulatory domain or band)",
    IwErrorClass.NO_TOOL: "iw is not installed; install it (apt install iw)",
    IwErrorClass.BAD_FILTER: "{iface}: the [wifi] bpf filter does not compile; fix or remove it",
    IwErrorClass.UNKNOWN: "{iface}: unexpected error",
}

# Backoff before the next attempt, per class; None: do not retry, it will not help. A busy
# interface waits for NetworkManager or wpa_supplicant to let go: seconds, not one.
RETRY_SCHEDULES: dict[IwErrorClass, Schedule | None] = {
    IwErrorClass.NO_MONITOR: None,
    IwErrorClass.PERMISSION: None,
    IwErrorClass.NO_TOOL: None,
    IwErrorClass.BAD_FILTER: None,
    IwErrorClass.NO_INTERFACE: Schedule(RETRY_FIRST_S, RETRY_MAX_S),
    IwErrorClass.BUSY: Schedule(5.0, RETRY_MAX_S),
    IwErrorClass.BAD_CHANNEL: Schedule(RETRY_FIRST_S, RETRY_MAX_S),
    IwErrorClass.UNKNOWN: Schedule(RETRY_FIRST_S, RETRY_MAX_S),
}


def classify_message(message: str) -> IwErrorClass:
    """The class of an ``iw``/nl80211 error message (case-insensitive substring table)."""
    text = message.lower()
    for needle, cls in IW_ERROR_TABLE:
        if needle in text:
            return cls
    return IwErrorClass.UNKNOWN


def classify_errno(code: int | None) -> IwErrorClass:
    """The class of an OS error number from the capture socket."""
    if code is None:
        return IwErrorClass.UNKNOWN
    return ERRNO_TABLE.get(code, IwErrorClass.UNKNOWN)


# Channel number to centre frequency (MHz), 2.4 GHz and the common 5 GHz channels.
CHANNEL_FREQ_MHZ: dict[int, int] = {
    **{ch: 2407 + 5 * ch for ch in range(1, 14)},
    14: 2484,
    **{ch: 5000 + 5 * ch for ch in (36, 40, 44, 48, 52, 56, 60, 64)},
    **{ch: 5000 + 5 * ch for ch in range(100, 145, 4)},
    **{ch: 5000 + 5 * ch for ch in (149, 153, 157, 161, 165)},
}
