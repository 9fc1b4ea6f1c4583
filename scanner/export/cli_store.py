"""Finding the store for the export commands: ``--db`` wins, else the config's path."""

from __future__ import annotations

import argparse
from pathlib import Path

from scanner.config import Config, ConfigError, load_config
from scanner.store.db import Store


def open_store(args: argparse.Namespace) -> tuple[Store, Config | None]:
    """The store named by ``--db`` or the config; raises ConfigError when neither works."""
    config_path = getattr(args, "config", None)
    db = getattr(args, "db", None)
    config: Config | None = None
    if config_path and (db is None or Path(config_path).exists()):
        config = load_config(config_path)
    if db is None:
        if config is None:
            raise ConfigError("no store: pass --db PATH or --config FILE")
        db = config.db_path
    if not Path(db).exists():
        raise ConfigError(f"no store at {db}")
    return Store(db), config
