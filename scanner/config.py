"""The appliance's TOML configuration: one file, one section per component.

Each component owns the meaning of its section and turns it into its own typed options dataclass
(``WifiOptions.from_mapping`` and so on); this module finds and reads the file, refuses what is
not a table (a typo in a section name is an error, not a silently ignored block), and refuses
any number that is not finite or out of its range and any malformed identifier
(``scanner.config_check``) before a component sees the file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scanner.config_check import ConfigValueError, check_config

SECTIONS = ("site", "store", "wifi", "ble", "sdr", "core", "api", "transport", "export", "mqtt")
# Arrays of tables: ``[[sensors]]`` names each sensor of a zone and where it stands.
ARRAYS = ("sensors",)
# Where a sensor stands relative to the zone (FORMATS.md).
PLACEMENTS = ("inside", "gate", "outside")


@dataclass(frozen=True, slots=True)
class SensorPlace:
    """One ``[[sensors]]`` entry: a sensor's name, where it is, and its known clock offset."""

    name: str
    placement: str
    clock_offset_s: float = 0.0


DEFAULT_STATE_DIR = Path("/var/lib/checkpoint")


class ConfigError(Exception):
    """The configuration file is missing, unreadable or invalid; the message says where."""


@dataclass(frozen=True, slots=True)
class Config:
    """The parsed file: raw sections for the components, plus the few shared values."""

    path: Path | None
    site: str = "checkpoint"
    state_dir: Path = DEFAULT_STATE_DIR
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    sensors: tuple[SensorPlace, ...] = ()

    @property
    def db_path(self) -> Path:
        store = self.sections.get("store", {})
        return Path(store.get("path", self.state_dir / "checkpoint.db"))

    def section(self, name: str) -> dict[str, Any]:
        return self.sections.get(name, {})

    def enabled(self, name: str) -> bool:
        """A radio runs when its section exists and does not say ``enabled = false``."""
        sec = self.sections.get(name)
        return sec is not None and bool(sec.get("enabled", True))


def parse_config(text: str, path: Path | None = None) -> Config:
    where = str(path) if path else "<config>"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - set(SECTIONS) - set(ARRAYS))
    if unknown:
        raise ConfigError(
            f"{where}: unknown section(s) {', '.join(unknown)}; "
            f"expected some of {', '.join(SECTIONS + ARRAYS)}"
        )
    try:
        check_config(data)
    except ConfigValueError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    sensors = _sensors(data.pop("sensors", []), where)
    for name, value in data.items():
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: [{name}] must be a table")
    site = data.get("site", {})
    state_dir = Path(site.get("state_dir", DEFAULT_STATE_DIR))
    return Config(
        path=path,
        site=str(site.get("name", "checkpoint")),
        state_dir=state_dir,
        sections=data,
        sensors=sensors,
    )


def _sensors(raw: Any, where: str) -> tuple[SensorPlace, ...]:
    if not isinstance(raw, list) or not all(isinstance(s, dict) for s in raw):
        raise ConfigError(f"{where}: [[sensors]] must be an array of tables")
    out: list[SensorPlace] = []
    for entry in raw:
        name = entry.get("name")
        placement = entry.get("placement", "inside")
        offset = entry.get("clock_offset_s", 0.0)
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}: every [[sensors]] entry needs a name")
        if placement not in PLACEMENTS:
            raise ConfigError(
                f"{where}: sensor {name!r} placement must be one of {', '.join(PLACEMENTS)}"
            )
        if isinstance(offset, bool) or not isinstance(offset, int | float):
            raise ConfigError(f"{where}: sensor {name!r} clock_offset_s must be a number")
        if name in {s.name for s in out}:
            raise ConfigError(f"{where}: sensor {name!r} is named twice")
        out.append(SensorPlace(name, placement, float(offset)))
    return tuple(out)


def load_config(path: str | Path) -> Config:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {p}: {exc.strerror or exc}") from exc
    return parse_config(text, p)
