"""Which processes talk to the broker, from the config: a core with [mqtt] host publishes, the
API in command-post mode needs the broker, and one Pi alone never starts a client."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.cli.main import build_parser
from scanner.config import ConfigError, parse_config
from scanner.runtime.build import api_plan, command_post_broker, core_broker


def test_a_core_publishes_only_when_mqtt_names_a_broker(tmp_path: Path) -> None:
    # The example config's [mqtt] with every key commented out is no broker at all.
    assert core_broker(parse_config("[mqtt]\n")) is None
    assert core_broker(parse_config("")) is None
    settings = core_broker(
        parse_config('[mqtt]\nhost = "10.0.0.5"\nsite = "north"\ngate = "g1"\nclient_id = "x"\n')
    )
    assert settings is not None and settings.host == "10.0.0.5"
    # The gate core's own session, whatever client_id names the process's other clients.
    assert settings.client_id == "gate-core-north-g1"


def test_command_post_mode_needs_the_broker(tmp_path: Path) -> None:
    db = tmp_path / "post.db"
    with pytest.raises(ConfigError, match=r"\[mqtt\] host"):
        api_plan({"mode": "command-post"}, db, broker=command_post_broker(parse_config("")))
    broker = command_post_broker(parse_config('[mqtt]\nhost = "127.0.0.1"\n'))
    plan = api_plan({"mode": "command-post"}, db, broker=broker)
    assert plan.settings.mode == "command-post"
    assert plan.settings.broker is not None and plan.settings.broker.client_id == "command-post"
    assert api_plan({}, db, broker=broker).settings.mode == "gate"
    with pytest.raises(ConfigError, match="mode must be one of"):
        api_plan({"mode": "barracks"}, db)


def test_api_mode_flag() -> None:
    args = build_parser().parse_args(["api", "--mode", "command-post"])
    assert args.mode == "command-post"
    assert build_parser().parse_args(["api"]).mode is None
    with pytest.raises(SystemExit):
        build_parser().parse_args(["api", "--mode", "tower"])
