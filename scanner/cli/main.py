"""`checkpoint`: the one entry point. Each subcommand lives in its own module of this package.

The parser is declared here in one table so `checkpoint --help` lists everything; the command
modules are imported only when their command runs, which keeps start-up fast and keeps radio
libraries out of commands that do not need them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence

from scanner import __version__

Configure = Callable[[argparse.ArgumentParser], None]
# What --since/--until take (scanner.export.timefmt parses it; not imported here, to start fast).
TIME_HELP = "ISO 8601 (UTC if no zone), unix seconds, now, today, yesterday, or -8h, -30m, -2d"


def _inspect(p: argparse.ArgumentParser) -> None:
    p.add_argument("radio", choices=["wifi", "ble", "sdr"])
    p.add_argument("file", help="recording to read (pcap/pcapng, ble.jsonl/btsnoop, SigMF/.cu8)")
    p.add_argument("--stats", action="store_true", help="print counters to stderr at the end")
    p.add_argument(
        "--region",
        default=None,
        help="sdr: the uplink band plan bursts are labelled by (eu, us, ...; default eu)",
    )


def _config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default="/etc/checkpoint/checkpoint.toml", help="TOML config file")


def _api(p: argparse.ArgumentParser) -> None:
    _config(p)
    p.add_argument(
        "--mode",
        choices=["gate", "command-post"],
        default=None,
        help="gate: one gate's tablet (default); command-post: every gate of the site, over "
        "the [mqtt] broker (overrides [api] mode)",
    )


def _capture(p: argparse.ArgumentParser) -> None:
    p.add_argument("radio", choices=["wifi", "ble", "sdr"])
    _config(p)
    p.add_argument("--record", metavar="PATH", help="also record what is captured (BLE: JSONL)")
    p.add_argument(
        "--replay",
        metavar="DIR",
        help="send this radio's recording from a scenario directory, at real-time pace and "
        "looping, instead of capturing live (to test a deployment without radios)",
    )
    p.add_argument("--speed", type=float, default=1.0, help="replay pace (1 = real time)")


def _demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--scenario", help="scenario directory (default: the bundled one)")
    p.add_argument("--data-dir", help="where the demo keeps its database (default: a temp dir)")
    p.add_argument("--speed", type=float, default=1.0, help="replay pace (1 = real time)")
    p.add_argument(
        "--sensors",
        type=int,
        choices=(1, 2),
        default=1,
        help="2: two sensor nodes publishing through a Mosquitto broker the demo starts itself",
    )


def _simulate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--minutes", type=float, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--profile", default="mixed", help="scenario profile (see docs)")
    p.add_argument(
        "--sensors",
        default=None,
        metavar="LIST",
        help="several sensors, e.g. inside,gate or hall:inside,pillar:gate (name:placement; "
        "the name is the placement unless given): writes the sensors/NAME/ layout and site.toml",
    )
    p.add_argument(
        "--clock-offset",
        action="append",
        default=[],
        metavar="NAME=S",
        help="a sensor's clock reads S seconds early (recorded in site.toml; repeatable)",
    )


def _ack_after(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--ack-after",
        type=float,
        default=20.0,
        metavar="S",
        help="a guard acknowledges each alarm S seconds after it starts (0: nobody does)",
    )


def _replay(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir")
    p.add_argument("--fast", action="store_true", help="as fast as possible, not real time")
    p.add_argument("--alerts", metavar="OUT", help="write the alert lines as NDJSON ('-': stdout)")
    p.add_argument("--counts", metavar="OUT", help="write handsets per minute as NDJSON")
    p.add_argument("--db", help="also keep the store here")
    p.add_argument("--config", help="the site's TOML (default: the scenario's own site.toml)")
    _only_sensors(p)
    _ack_after(p)


def _eval(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", nargs="+")
    p.add_argument("--json", action="store_true")
    p.add_argument("--config", help="the site's TOML (default: each scenario's own site.toml)")
    _only_sensors(p)
    _ack_after(p)


def _only_sensors(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--only-sensors",
        metavar="NAMES",
        help="replay only these sensors of a several-sensor scenario (comma-separated names; "
        "the other sensors' folders are ignored, as if never installed)",
    )


def _export(p: argparse.ArgumentParser) -> None:
    _config(p)
    p.add_argument("--since", required=True, help=TIME_HELP)
    p.add_argument("--until", required=True, help=TIME_HELP)
    p.add_argument("--out", required=True)
    p.add_argument("--pseudonymise", action="store_true", help="replace MACs with keyed hashes")
    p.add_argument("--db", help="store to export (default: from the config)")
    p.add_argument(
        "--seal-key", metavar="FILE", help="the sealing key's file (default: /etc/checkpoint)"
    )


def _verify(p: argparse.ArgumentParser) -> None:
    p.add_argument("file")
    p.add_argument("--db", help="the unit's store: also check the bundle's seal with its site key")
    p.add_argument(
        "--seal-key", metavar="FILE", help="the sealing key's file (default: /etc/checkpoint)"
    )
    p.add_argument("--previous", metavar="OLD", help="an earlier bundle: prove nothing was cut")


def _report(p: argparse.ArgumentParser) -> None:
    _config(p)
    p.add_argument("--since", required=True, help=TIME_HELP)
    p.add_argument("--until", required=True, help=TIME_HELP)
    p.add_argument("--out", required=True)
    p.add_argument("--db")


def _bench(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--soak", action="store_true", help="the long versions (10-minute load and memory soaks)"
    )
    p.add_argument(
        "--quick", action="store_true", help="the short versions: the default without --soak"
    )
    p.add_argument("--only", help="comma-separated benchmark names")


def _user(p: argparse.ArgumentParser) -> None:
    _config(p)
    p.add_argument("action", choices=["add", "remove", "list", "token", "passwd"])
    p.add_argument("username", nargs="?")
    p.add_argument("--role", choices=["guard", "supervisor", "admin"], default="guard")
    p.add_argument("--pin", action="store_true", help="set a PIN for the shared tablet")
    p.add_argument("--db")


def _calibrate(p: argparse.ArgumentParser) -> None:
    _config(p)
    p.add_argument("phase", choices=["phones", "boundary", "inside", "show", "apply"])
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument(
        "--phone",
        help="the reference phone: its numbers in the `calibrate phones` list, e.g. 1,3",
    )
    p.add_argument(
        "--carry",
        choices=["hand", "pocket"],
        default="hand",
        help="how the reference phone is carried during this phase (walk both)",
    )
    p.add_argument("--recording", help="calibrate from a scenario directory instead of live radios")
    p.add_argument("--db")


# name -> (module in scanner.cli, help, argument declarations)
COMMANDS: dict[str, tuple[str, str, Configure | None]] = {
    "demo": ("demo", "replay the bundled scenario and serve the tablet page", _demo),
    "run": ("run", "everything the config enables, in one process", _config),
    "capture": ("capture", "one capture daemon (for systemd)", _capture),
    "core": ("core", "the detection core daemon (for systemd)", _config),
    "node": ("node", "a sensor node: the enabled radios, published to the MQTT broker", _config),
    "api": ("api_server", "the API and tablet page daemon (for systemd)", _api),
    "inspect": ("inspect", "decode a recording to NDJSON", _inspect),
    "simulate": ("simulate", "write a simulated scenario with ground truth", _simulate),
    "replay": ("replay", "run the core on a scenario", _replay),
    "eval": ("evaluate", "replay and score against truth.json", _eval),
    "export": ("export", "after-action bundle", _export),
    "verify": ("verify", "check an after-action bundle", _verify),
    "report": ("report", "HTML report from the local store", _report),
    "bench": ("bench", "benchmarks with their baselines", _bench),
    "user": ("user", "manage users and API tokens", _user),
    "calibrate": ("calibrate", "record the zone boundary with a known phone", _calibrate),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="checkpoint",
        description="Receive-only detector of active handsets at a restricted zone's entrance.",
    )
    parser.add_argument("--version", action="version", version=f"checkpoint {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_module, help_text, configure) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if configure is not None:
            configure(p)
    return parser


# Files 0600 and directories 0700 at most.
PRIVATE_UMASK = 0o077


# Options whose value may start with "-" (a time back from now: --since -8h).
_DASH_VALUE_OPTIONS = ("--since", "--until")


def _join_dash_values(argv: Sequence[str]) -> list[str]:
    """``--since -8h`` -> ``--since=-8h``: argparse would take ``-8h`` for an option."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in _DASH_VALUE_OPTIONS and i + 1 < len(argv) and argv[i + 1].startswith("-"):
            out.append(f"{arg}={argv[i + 1]}")
            i += 2
            continue
        out.append(arg)
        i += 1
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_join_dash_values(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(
        level=logging.DEBUG
        if args.verbose > 1
        else logging.INFO
        if args.verbose
        else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    module_name = COMMANDS[args.command][0]
    module = importlib.import_module(f"scanner.cli.{module_name}")
    # Everything a command creates (the store with the site key, exports, recordings, sockets'
    # directories) is for its own user only, whatever umask it was started with; a socket the
    # capture daemons must reach is given its group mode explicitly (transport.socket_mode).
    previous_umask = os.umask(PRIVATE_UMASK)
    os.umask(previous_umask | PRIVATE_UMASK)
    try:
        return int(module.run(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `checkpoint inspect wifi X | head` closes our stdout early; that is not an error.
        return 0
    finally:
        os.umask(previous_umask)


if __name__ == "__main__":
    sys.exit(main())
