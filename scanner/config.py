"""The appliance's TOML configuration: one file, one section per component.

Each component owns the meaning of its section and turns it into its own typed options dataclass
(``WifiOptions.from_mapping`` and so on); this module only finds and reads the file and refuses
what is not a table, so a typo in a section name is an error, not a silently ignored block.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SECTIONS = ("site", "store", "wifi", "ble", "sdr", "core", "api", "transport", "export")

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
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise ConfigError(
            f"{where}: unknown section(s) {', '.join(unknown)}; "
            f"expected some of {', '.join(SECTIONS)}"
        )
    for name, value in data.items():
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: [{name}] must be a table")
    site = data.get("site", {})
    state_dir = Path(site.get("state_dir", DEFAULT_STATE_DIR))
    return Config(
        path=path, site=str(site.get("name", "checkpoint")), state_dir=state_dir, sections=data
    )


def load_config(path: str | Path) -> Config:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {p}: {exc.strerror or exc}") from exc
    return parse_config(text, p)
