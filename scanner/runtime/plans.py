"""What each checkpoint process is made of, built from the config before anything starts.

* ``plan_run``: sources, core and API in one process, joined by the in-process queue.
* ``plan_capture``: one radio whose records go to the core over the Unix socket, or to the MQTT
  broker when ``[mqtt] node`` names this Pi as a sensor node.
* ``plan_core``: the socket receiver and the core loop (and the MQTT subscription with ``[mqtt]``).
* ``plan_node``: every enabled radio of a sensor node, published to the MQTT broker.
* ``plan_api``: the API server alone.

Every function raises ``ConfigError`` for a bad config; none starts a thread.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from scanner.clock import SYSTEM_CLOCK, Clock
from scanner.config import Config, ConfigError
from scanner.mqtt.runtime import (
    NodeComponent,
    add_ingest,
    ingest_health,
    node_name,
    node_publisher,
)
from scanner.runtime.build import (
    RADIOS,
    SourceHealthReporter,
    add_sources,
    api_plan,
    api_server_factory,
    check_chain_key,
    check_store,
    command_post_broker,
    core_broker,
    core_loop_factory,
    core_options,
    outside_sensors,
    sensor_placements,
)
from scanner.runtime.components import FeedWatchComponent, ReceiverComponent, SenderComponent
from scanner.runtime.components.replay import add_replay, check_scenario, radio_view
from scanner.runtime.components.retention import RetentionSchedule, add_retention, retention_health
from scanner.runtime.serve import HealthWriter
from scanner.runtime.supervisor import Supervisor
from scanner.runtime.transport import (
    EventQueue,
    FeedBell,
    FeedWatcher,
    InProcessTransport,
    QueueNotifier,
    SocketNotifier,
    SocketSender,
    TransportOptions,
)

if TYPE_CHECKING:
    from api.feed import LiveFeed

_LOGGER = logging.getLogger(__name__)


@dataclass(slots=True)
class Plan:
    """A process ready to ``serve``: its supervisor and how it reports itself."""

    supervisor: Supervisor
    ready_text: str
    health: HealthWriter | None = None
    status_text: Callable[[], str] | None = None
    cleanup: list[Callable[[], None]] = field(default_factory=list)
    url: str | None = None


def _transport_options(config: Config) -> TransportOptions:
    return TransportOptions.from_mapping(config.section("transport"), config.state_dir)


def plan_run(config: Config, clock: Clock = SYSTEM_CLOCK) -> Plan:
    """Everything the config enables, in one process."""
    topts = _transport_options(config)
    store_path = config.db_path
    check_store(store_path)
    options = core_options(config)
    schedule = RetentionSchedule.from_mapping(config.section("store"))
    events = EventQueue(topts.queue_size)
    transport = InProcessTransport(events)
    reporter = SourceHealthReporter(transport.sink, clock)
    supervisor = Supervisor(clock, reporter)
    bell = FeedBell()
    # The core first: it must be consuming before the sources start filling its queue.
    supervisor.add(
        "core",
        core_loop_factory(
            str(store_path),
            options,
            events,
            clock,
            outside_sensors=outside_sensors(config),
            placements=sensor_placements(config),
            mqtt=core_broker(config),
            bell=bell,
        ),
    )
    retention = add_retention(supervisor, str(store_path), schedule, clock)
    ingest = add_ingest(supervisor, config, events, clock)
    radios = add_sources(supervisor, reporter, config, transport.sink, clock)
    url = None
    parts = list(radios)
    if ingest:
        parts.append(f"sensor nodes via {ingest[0].topics.base}")
    if config.enabled("api"):
        plan = api_plan(config.section("api"), store_path, broker=command_post_broker(config))
        factory, port = api_server_factory(plan, QueueNotifier(events), in_process_feed(bell))
        supervisor.add("api", factory, critical=False)
        url = f"{plan.scheme}://{plan.host}:{port}/"
        parts.append(f"api on {url}")
    # Last of the checks: a config error must not leave a development key made beside the store.
    check_chain_key(store_path)
    if not radios:
        _LOGGER.warning(
            "no radio is enabled in %s; the core will only see what arrives", config.path
        )

    def status() -> str:
        dropped = events.counters["dropped_queue_full"]
        return f"queue {events.qsize()}/{events.maxsize}, dropped {dropped}"

    return Plan(
        supervisor,
        f"running core + {', '.join(parts) or 'no sources'}",
        HealthWriter(
            str(store_path),
            "run",
            extra=lambda: {
                "queue": queue_health(events),
                "retention": retention_health(retention),
                **({"mqtt": ingest_health(ingest)} if ingest else {}),
            },
        ),
        status,
        url=url,
    )


def in_process_feed(bell: FeedBell) -> LiveFeed:
    """The API's live-feed wake-up, rung by the core's bell in the same process."""
    from api.feed import LiveFeed

    feed = LiveFeed()
    bell.listen(feed.wake)
    return feed


def queue_health(events: EventQueue) -> dict[str, object]:
    """The core's input queue for runtime health: depth, size and drops (total, per sensor)."""
    return {
        "depth": events.qsize(),
        "deepest": events.deepest,
        "size": events.maxsize,
        "dropped": events.counters["dropped_queue_full"],
        "dropped_by_sensor": dict(events.dropped_by_sensor),
    }


def plan_capture(
    config: Config,
    radio: str,
    clock: Clock = SYSTEM_CLOCK,
    *,
    record_path: str | None = None,
    replay: Path | None = None,
    speed: float = 1.0,
) -> Plan:
    """One capture daemon: the radio's source (or its recording), sending to the core's socket."""
    if replay is None and not config.enabled(radio):
        raise ConfigError(f"{config.path}: [{radio}] is missing or has enabled = false")
    if node_name(config) is not None:
        return _plan_publisher(config, (radio,), radio, clock, record_path, replay, speed)
    topts = _transport_options(config)
    sender = SocketSender(topts.socket_path, topts.send_buffer)

    def transport_counters() -> dict[str, int]:
        return dict(sender.counters)

    reporter = SourceHealthReporter(sender.sink, clock)
    supervisor = Supervisor(clock, reporter)
    supervisor.add("transport", lambda: SenderComponent("transport", sender), critical=True)
    cleanup: list[Callable[[], None]] = []
    if replay is not None:
        check_scenario(replay)
        view = radio_view(replay, radio)
        cleanup.append(lambda: shutil.rmtree(view, ignore_errors=True))
        add_replay(supervisor, reporter, view, sender.sink, clock, speed, transport_counters)
    else:
        add_sources(
            supervisor,
            reporter,
            config,
            sender.sink,
            clock,
            radios=(radio,),
            counters_extra=transport_counters,
            record_path=record_path,
        )

    def status() -> str:
        state = "connected" if sender.connected else "core unreachable"
        counts = sender.counters
        dropped = counts["dropped_buffer_full"]
        pending = sender.pending()
        return f"{radio}: {state}, sent {counts['sent']}, buffered {pending}, dropped {dropped}"

    what = f"replaying {radio} from {replay}" if replay is not None else f"capturing {radio}"
    return Plan(supervisor, f"{what} for the core at {topts.socket_path}", None, status, cleanup)


def plan_core(config: Config, clock: Clock = SYSTEM_CLOCK) -> Plan:
    """The core daemon: listens for capture daemons and runs the detection core."""
    topts = _transport_options(config)
    store_path = config.db_path
    check_store(store_path)
    options = core_options(config)
    schedule = RetentionSchedule.from_mapping(config.section("store"))
    # Last of the checks: a config error must not leave a development key made beside the store.
    check_chain_key(store_path)
    events = EventQueue(topts.queue_size)
    supervisor = Supervisor(clock)
    # Rung by the store sink after each commit to the live feed; the receiver passes the word to
    # the API's connection that asked for it.
    bell = FeedBell()
    supervisor.add(
        "core",
        core_loop_factory(
            str(store_path),
            options,
            events,
            clock,
            outside_sensors=outside_sensors(config),
            placements=sensor_placements(config),
            mqtt=core_broker(config),
            bell=bell,
        ),
    )
    retention = add_retention(supervisor, str(store_path), schedule, clock)
    receivers: list[ReceiverComponent] = []
    ingest = add_ingest(supervisor, config, events, clock)

    def make_receiver() -> ReceiverComponent:
        component = ReceiverComponent(
            "receiver", topts.socket_path, events, topts.socket_mode, bell
        )
        receivers[:] = [component]
        return component

    supervisor.add("receiver", make_receiver)

    def transport_health() -> dict[str, object]:
        counters = dict(receivers[0].receiver.counters) if receivers else {}
        clients = receivers[0].receiver.clients if receivers else 0
        watchers = receivers[0].receiver.watchers if receivers else 0
        return {
            "queue": queue_health(events),
            "socket": {**counters, "clients": clients, "feed_watchers": watchers},
            "retention": retention_health(retention),
            **({"mqtt": ingest_health(ingest)} if ingest else {}),
        }

    def status() -> str:
        health = transport_health()
        return f"{health['socket']}, queue {health['queue']}"

    nodes = f" and sensor nodes via {ingest[0].topics.base}" if ingest else ""
    return Plan(
        supervisor,
        f"core listening on {topts.socket_path}{nodes}",
        HealthWriter(str(store_path), "core", extra=transport_health),
        status,
    )


def plan_node(config: Config, clock: Clock = SYSTEM_CLOCK) -> Plan:
    """A sensor node: every radio the config enables, published to the broker as one stream."""
    if node_name(config) is None:
        raise ConfigError(f"{config.path}: [mqtt] node (this sensor node's name) is not set")
    radios = tuple(r for r in RADIOS if config.enabled(r))
    if not radios:
        raise ConfigError(f"{config.path}: no radio is enabled for this node to capture")
    return _plan_publisher(config, radios, "node", clock, None, None, 1.0)


def _plan_publisher(
    config: Config,
    radios: tuple[str, ...],
    stream: str,
    clock: Clock,
    record_path: str | None,
    replay: Path | None,
    speed: float,
) -> Plan:
    """Radios (or one radio's recording) whose records go to the broker as one node stream."""
    publisher = node_publisher(config, stream, clock)
    reporter = SourceHealthReporter(publisher.sink, clock)
    supervisor = Supervisor(clock, reporter)
    supervisor.add("mqtt", lambda: NodeComponent("mqtt", publisher), critical=True)
    cleanup: list[Callable[[], None]] = []
    if replay is not None:
        check_scenario(replay)
        view = radio_view(replay, radios[0])
        cleanup.append(lambda: shutil.rmtree(view, ignore_errors=True))
        add_replay(
            supervisor, reporter, view, publisher.sink, clock, speed, publisher.transport_counters
        )
    else:
        add_sources(
            supervisor,
            reporter,
            config,
            publisher.sink,
            clock,
            radios=radios,
            counters_extra=publisher.transport_counters,
            record_path=record_path,
        )

    def status() -> str:
        state = "connected" if publisher.connected else "broker unreachable"
        counts = publisher.counters
        spool = publisher.spool.health()
        return (
            f"node {publisher.options.node}/{stream}: {state}, acked {counts['records_acked']}, "
            f"spooled {spool['pending_records']}, dropped {spool['dropped_records']}"
        )

    what = "replaying" if replay is not None else "capturing"
    settings = publisher.settings
    return Plan(
        supervisor,
        f"{what} {', '.join(radios)} as node {publisher.options.node} for "
        f"{settings.host}:{settings.port}",
        None,
        status,
        cleanup,
    )


def plan_api(config: Config, mode: str | None = None) -> Plan:
    """The API daemon; ``mode`` (``--mode``) overrides ``[api] mode``."""
    store_path = config.db_path
    check_store(store_path)
    section = dict(config.section("api"))
    if mode is not None:
        section["mode"] = mode
    plan = api_plan(section, store_path, broker=command_post_broker(config))
    check_chain_key(store_path)
    from api.feed import LiveFeed

    # The core daemon listens on the transport's socket: an acknowledgement or an allowlist
    # change is announced there, so the core need not wait for its poll of the store; and on a
    # connection of its own there the API hears when the core committed rows to the live feed.
    socket_path = _transport_options(config).socket_path
    feed = LiveFeed()
    factory, port = api_server_factory(plan, SocketNotifier(socket_path), feed)
    supervisor = Supervisor()
    supervisor.add("api", factory)
    supervisor.add(
        "feed",
        lambda: FeedWatchComponent("feed", FeedWatcher(socket_path, feed.wake)),
        critical=False,
    )
    url = f"{plan.scheme}://{plan.host}:{port}/"
    return Plan(supervisor, f"serving {url}", None, None, url=url)
