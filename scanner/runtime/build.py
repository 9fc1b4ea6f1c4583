"""Building the parts of a process from the config: radio sources, the core, the API server.

Everything that reads the config happens here, before anything starts, so a bad value is one
clear ``ConfigError`` (exit status 2) and not a thread that dies a second later.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scanner.clock import SYSTEM_CLOCK, Clock
from scanner.config import Config, ConfigError
from scanner.core.options import CoreOptions
from scanner.observations import Radio, SensorState, SensorStatus, SourceEvent
from scanner.runtime.components import ApiServer, CoreLike, CoreLoop, SourceComponent, bind_tcp
from scanner.runtime.supervisor import Supervisor
from scanner.runtime.transport import EventQueue, FeedBell, Message, QueueNotifier
from scanner.runtime.transport.codec import InputsChanged
from scanner.sources.base import Sink, Source
from scanner.store.db import Store, StoreError

if TYPE_CHECKING:
    from api.feed import LiveFeed
    from api.settings import ApiSettings
    from scanner.mqtt.link import BrokerSettings
    from scanner.sinks import Sink as CoreSink

_LOGGER = logging.getLogger(__name__)

RADIOS = ("wifi", "ble", "sdr")
# The appliance's tablet reaches the API over the site network; TLS moves it to 8443.
DEFAULT_API_HOST = "0.0.0.0"
DEFAULT_API_PORT = 8080
DEFAULT_API_TLS_PORT = 8443

SourceBuilder = Callable[[Sink], Source]


def source_builder(
    radio: str, section: dict[str, Any], clock: Clock, record_path: str | None = None
) -> tuple[SourceBuilder, Source]:
    """A factory for the radio's live source, and one unstarted instance built from it.

    Building once checks the section now; the instance tells the sensor's name and radio.
    """
    try:
        module = importlib.import_module(f"scanner.sources.{radio}")
    except ImportError as exc:
        raise ConfigError(f"[{radio}]: this installation cannot capture {radio}: {exc}") from exc
    build = getattr(module, "build_source", None)
    if build is None:
        raise ConfigError(f"[{radio}]: live {radio} capture is not available in this version")
    options = {k: v for k, v in section.items() if k != "enabled"}
    extra: dict[str, Any] = {}
    if record_path is not None:
        if "record_path" not in inspect.signature(build).parameters:
            raise ConfigError(f"--record is not supported for {radio} capture")
        extra["record_path"] = record_path

    def make(sink: Sink) -> Source:
        source = build(options, sink, clock, **extra)
        if not isinstance(source, Source):
            raise TypeError(f"scanner.sources.{radio}.build_source did not return a Source")
        return source

    # Building is cheap (hardware is opened in start()), and it turns option errors into
    # config errors now rather than restart loops later.
    try:
        probe = make(_discard)
    except ConfigError:
        raise
    except ImportError as exc:
        # The package imports its capture libraries only now (lazy, so replay works without).
        raise ConfigError(f"[{radio}]: this installation cannot capture {radio}: {exc}") from exc
    except (TypeError, ValueError, KeyError) as exc:
        raise ConfigError(f"[{radio}]: {exc}") from exc
    return make, probe


def _discard(_event: SourceEvent) -> None:
    """The sink of the throw-away source built only to check options."""


class CoreWithStore:
    """The core run over the store: its events written there, its inputs read from there.

    The store connection is this object's own; it is closed with the core.
    """

    def __init__(
        self,
        store_path: str,
        options: CoreOptions,
        clock: Clock,
        outside_sensors: frozenset[str] = frozenset(),
        placements: Mapping[str, str] | None = None,
        mqtt: BrokerSettings | None = None,
        mqtt_options: dict[str, Any] | None = None,
        notify: Callable[[str], None] | None = None,
        bell: FeedBell | None = None,
    ) -> None:
        from scanner.core.pipeline import Core
        from scanner.export.seal_key import attach_chain_key
        from scanner.runtime.core_runner import CoreRunner
        from scanner.sinks.evidence import EvidenceKeeper
        from scanner.sinks.mqtt import MqttSink
        from scanner.sinks.store import StoreInputs, StoreSink

        self.store = Store(store_path)
        self.mqtt: MqttSink | None = None
        try:
            # The core is the store's one writer of alert history: its links are keyed.
            attach_chain_key(self.store)
            inputs = StoreInputs(self.store)
            self.core = Core(
                options,
                clock,
                run_tag=inputs.next_run(),
                outside_sensors=outside_sensors,
                placements=placements,
            )
            # The frames, adverts and IQ windows behind each alert (the SDR capture cuts each
            # burst's IQ from its ring and sends it with the burst).
            keeper = EvidenceKeeper(self.store)
            # The store sink rings the bell after each commit to the live feed: the API reads
            # an alert as soon as it is in the store.
            store_sink = StoreSink(self.store, on_feed=bell.ring if bell is not None else None)
            sinks: list[CoreSink] = [store_sink, keeper]
            if mqtt is not None:
                # After the store: the command post hears of an alert the gate has kept.
                # An acknowledgement from the command post is announced on the core's own
                # queue (``notify``), as the API announces the tablet's.
                self.mqtt = MqttSink(
                    mqtt,
                    store_path=store_path,
                    clock=clock,
                    notify=notify,
                    **(mqtt_options or {}),
                )
                sinks.append(self.mqtt)
            self.runner = CoreRunner(self.core, sinks, inputs, taps=[keeper])
            if self.mqtt is not None:
                self.mqtt.start()
        except BaseException:
            if self.mqtt is not None:
                self.mqtt.close()
            self.store.close()
            raise

    def handle(self, event: Message) -> None:
        if isinstance(event, InputsChanged):
            self.runner.inputs_changed(event.what)
        else:
            self.runner.handle(event)

    def tick(self, now_mono: float) -> None:
        self.runner.tick(now_mono)

    def close(self) -> None:
        try:
            self.runner.close()
        except Exception:
            _LOGGER.exception("closing the core failed")
        if self.mqtt is not None:
            self.mqtt.close()
        self.store.close()


def outside_sensors(config: Config) -> frozenset[str]:
    """The ``[[sensors]]`` placed outside the zone: never on their own a phone inside."""
    return frozenset(s.name for s in config.sensors if s.placement == "outside")


def sensor_placements(config: Config) -> dict[str, str]:
    """Every ``[[sensors]]`` name and placement: the core compares inside with the others."""
    return {s.name: s.placement for s in config.sensors}


def broker_settings(config: Config, default_client_id: str) -> BrokerSettings | None:
    """The ``[mqtt]`` section (checked now), or None when it names no broker.

    ``host`` is what turns MQTT on: the example config carries the section with every key
    commented out, and a Pi on its own must not spend its life reconnecting to nothing.
    """
    if "host" not in config.section("mqtt"):
        return None
    from scanner.mqtt.link import BrokerSettings

    try:
        return BrokerSettings.from_mapping(
            config.section("mqtt"), default_client_id=default_client_id
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[mqtt]: {exc}") from exc


def core_broker(config: Config) -> BrokerSettings | None:
    """Where a gate core publishes its alerts and health (``[mqtt]``), if anywhere.

    The client id is the gate's own, whatever ``client_id`` says (that one names the process's
    other clients): one persistent session per gate core, which keeps the command post's
    acknowledgements while the core restarts.
    """
    settings = broker_settings(config, "")
    if settings is None:
        return None
    from dataclasses import replace

    return replace(settings, client_id=gate_core_client_id(settings.site, settings.gate))


def gate_core_client_id(site: str, gate: str) -> str:
    return f"gate-core-{site}-{gate}"


def command_post_broker(config: Config) -> BrokerSettings | None:
    """The broker a command post subscribes to; its client id names it to the gates."""
    return broker_settings(config, "command-post")


def core_options(config: Config) -> CoreOptions:
    """The ``[core]`` section as the core's options (checked now)."""
    try:
        return CoreOptions.from_mapping(config.section("core"))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[core]: {exc}") from exc


# On first boot the core and API daemons start together and both migrate the new database; the
# loser of that race sees the other's tables half made. A second try a moment later finds the
# schema complete (migrations are one transaction each).
STORE_OPEN_ATTEMPTS = 3
STORE_RETRY_S = 0.5


def check_store(path: Path) -> None:
    """Open (and migrate) the store once, so an unwritable path is a config error."""
    for attempt in range(1, STORE_OPEN_ATTEMPTS + 1):
        try:
            Store(path).close()
        except sqlite3.OperationalError as exc:
            if attempt == STORE_OPEN_ATTEMPTS:
                raise ConfigError(f"[store]: cannot open {path}: {exc}") from exc
            _LOGGER.debug("store %s busy (%s); trying again", path, exc)
            time.sleep(STORE_RETRY_S)
            continue
        except (StoreError, OSError) as exc:
            raise ConfigError(f"[store]: {exc}") from exc
        except Exception as exc:
            raise ConfigError(f"[store]: cannot open {path}: {exc}") from exc
        return


def check_chain_key(path: Path) -> None:
    """The sealing key must be there before the core starts: every alert-history link the
    core writes is keyed by it. Missing or unreadable is a config error (one line, exit 2),
    not a core that fails at its first alert."""
    from scanner.export.seal_key import SealKeyError, attach_chain_key

    try:
        store = Store(path)
    except (StoreError, OSError, sqlite3.Error) as exc:
        raise ConfigError(f"[store]: cannot open {path}: {exc}") from exc
    try:
        attach_chain_key(store)
    except SealKeyError as exc:
        raise ConfigError(
            f"{exc} (the alert history is keyed with it: run firmware/provision.sh, and give "
            "the service LoadCredential=seal.key:/etc/checkpoint/seal.key)"
        ) from exc
    except StoreError as exc:
        raise ConfigError(f"[store]: {exc}") from exc
    finally:
        store.close()


def core_loop_factory(
    store_path: str,
    options: CoreOptions,
    events: EventQueue,
    clock: Clock,
    tick_clock: Callable[[], float] | None = None,
    outside_sensors: frozenset[str] = frozenset(),
    placements: Mapping[str, str] | None = None,
    mqtt: BrokerSettings | None = None,
    bell: FeedBell | None = None,
) -> Callable[[], CoreLoop]:
    """``bell`` is rung after each commit to the store's live feed (``FeedBell``)."""

    def make_core() -> CoreLike:
        return CoreWithStore(
            store_path,
            options,
            clock,
            outside_sensors,
            placements,
            mqtt=mqtt,
            notify=QueueNotifier(events),
            bell=bell,
        )

    def close(core: CoreLike) -> None:
        if isinstance(core, CoreWithStore):
            core.close()

    def factory() -> CoreLoop:
        return CoreLoop("core", make_core, events, clock, tick_clock=tick_clock, on_close=close)

    return factory


@dataclass(frozen=True, slots=True)
class ApiPlan:
    """How to serve the API: the app's settings and where to listen."""

    settings: ApiSettings
    host: str
    port: int
    certfile: str | None
    keyfile: str | None

    @property
    def scheme(self) -> str:
        return "https" if self.certfile else "http"


def api_plan(
    section: dict[str, Any],
    store_path: Path,
    *,
    demo: bool = False,
    broker: BrokerSettings | None = None,
) -> ApiPlan:
    """Check the ``[api]`` section: TLS needs both files, and they must be readable; a
    command post needs the broker (``broker``, from ``[mqtt]``)."""
    from dataclasses import replace

    from api.settings import ApiSettings, SettingsError

    section = {k: v for k, v in section.items() if k != "enabled"}
    certfile = section.get("certfile")
    keyfile = section.get("keyfile")
    if bool(certfile) != bool(keyfile):
        raise ConfigError("[api]: certfile and keyfile go together (TLS needs both)")
    for key, value in (("certfile", certfile), ("keyfile", keyfile)):
        if value is not None and (not isinstance(value, str) or not Path(value).is_file()):
            raise ConfigError(f"[api] {key}: {value!r} is not a readable file")
    tls = bool(certfile)
    port = section.get("port", DEFAULT_API_TLS_PORT if tls else DEFAULT_API_PORT)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"[api] port must be 0-65535, not {port!r}")
    host = section.get("host", DEFAULT_API_HOST)
    if not isinstance(host, str) or not host:
        raise ConfigError("[api] host must be a host name or address")
    app_section = dict(section)
    if tls:
        app_section["tls"] = True
    try:
        settings = ApiSettings.from_mapping(app_section, store_path, demo=demo)
        if settings.mode == "command-post":
            if broker is None:
                raise ConfigError("[api] mode = command-post needs the broker: [mqtt] host")
            settings = replace(settings, broker=broker)
        # What the app would refuse at start (the demo's public accounts in a real store) is
        # refused now, as a config error, instead of a restart loop.
        store = Store(store_path)
        try:
            settings.check(store)
        finally:
            store.close()
    except SettingsError as exc:
        raise ConfigError(str(exc)) from exc
    except StoreError as exc:
        raise ConfigError(f"[store]: {exc}") from exc
    return ApiPlan(settings, host, port, certfile, keyfile)


def api_server_factory(
    plan: ApiPlan,
    notify: Callable[[str], None] | None = None,
    feed: LiveFeed | None = None,
) -> tuple[Callable[[], ApiServer], int]:
    """Bind the API's port now (a busy port is an error before anything starts).

    ``notify`` tells the core a person changed something in the store; ``feed`` is woken when
    the core committed rows to the live feed (``create_app``). The same feed serves every app
    a restart makes.
    Returns the component factory and the port actually bound (port 0 picks a free one).
    """
    try:
        sock = bind_tcp(plan.host, plan.port)
    except OSError as exc:
        raise ConfigError(
            f"[api]: cannot listen on {plan.host}:{plan.port}: {exc.strerror or exc}"
        ) from exc
    port = int(sock.getsockname()[1])
    first: list[Any] = [sock]

    def make_app() -> Any:
        from api.app import create_app

        return create_app(plan.settings, notify=notify, feed=feed)

    def factory() -> ApiServer:
        s = first.pop() if first else None
        return ApiServer(
            "api", make_app, plan.host, port, plan.certfile, plan.keyfile, first_socket=s
        )

    return factory, port


class SourceHealthReporter:
    """Turns a supervisor report about a source into a health record for the core.

    A capture thread that dies cannot report its own fault; the supervisor does it for it, so
    the guard's sensor strip turns red within a second instead of going stale after minutes.
    """

    def __init__(self, sink: Sink, clock: Clock = SYSTEM_CLOCK) -> None:
        self._sink = sink
        self._clock = clock
        self._sources: dict[str, list[tuple[str, Radio]]] = {}

    def register(self, component_name: str, sensor: str, radio: Radio) -> None:
        """A sensor the component feeds (a replay feeds one per recorded radio)."""
        sensors = self._sources.setdefault(component_name, [])
        if (sensor, radio) not in sensors:
            sensors.append((sensor, radio))

    def __call__(self, name: str, state: str, message: str) -> None:
        # A restarted source reports its own state as soon as it runs; only faults come here.
        if state != "fault":
            return
        for sensor, radio in self._sources.get(name, ()):
            self._sink(
                SensorStatus(
                    ts=self._clock.wall(),
                    mono=self._clock.monotonic(),
                    sensor=sensor,
                    radio=radio,
                    state=SensorState.FAULT,
                    message=message,
                )
            )


def add_sources(
    supervisor: Supervisor,
    reporter: SourceHealthReporter,
    config: Config,
    sink: Sink,
    clock: Clock,
    radios: tuple[str, ...] = RADIOS,
    counters_extra: Callable[[], dict[str, int]] | None = None,
    record_path: str | None = None,
) -> list[str]:
    """Add a component per enabled radio; returns their names."""
    names: list[str] = []
    for radio in radios:
        if not config.enabled(radio):
            continue
        build, probe = source_builder(radio, config.section(radio), clock, record_path)
        reporter.register(radio, probe.options.sensor, probe.radio)
        supervisor.add(
            radio,
            _source_factory(radio, build, sink, counters_extra, probe.options.sensor),
            critical=False,
        )
        names.append(radio)
    return names


def _source_factory(
    name: str,
    build: SourceBuilder,
    sink: Sink,
    counters_extra: Callable[[], dict[str, int]] | None,
    sensor: str,
) -> Callable[[], SourceComponent]:
    def factory() -> SourceComponent:
        return SourceComponent(name, build, sink, counters_extra, sensor=sensor)

    return factory
