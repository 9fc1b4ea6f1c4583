"""The shared tail of every long-running command: build the plan, report errors, serve."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from scanner.config import Config, ConfigError, load_config
from scanner.errors import CheckpointError
from scanner.runtime.processes import Plan
from scanner.runtime.runner import serve

_LOGGER = logging.getLogger(__name__)

# Exit statuses: 2 for a configuration the operator must fix (systemd retries a few times, up to
# the units' StartLimitBurst, then shows the one-line reason), 1 for a failure at run time.
EXIT_CONFIG = 2
EXIT_FAILURE = 1


def fail(command: str, message: str, status: int) -> int:
    """One line on stderr, no traceback."""
    print(f"checkpoint {command}: {message}", file=sys.stderr)
    return status


def load(command: str, path: str) -> Config | int:
    """The config, or the exit status after saying what is wrong with it."""
    try:
        return load_config(path)
    except ConfigError as exc:
        return fail(command, str(exc), EXIT_CONFIG)


def launch(
    command: str,
    build: Callable[[], Plan],
    on_ready: Callable[[Plan], None] | None = None,
) -> int:
    """Build the process's plan and serve it until SIGTERM/SIGINT."""
    try:
        plan = build()
    except ConfigError as exc:
        return fail(command, str(exc), EXIT_CONFIG)
    except CheckpointError as exc:
        return fail(command, str(exc), EXIT_FAILURE)
    try:
        return serve(
            plan.supervisor,
            ready_text=plan.ready_text,
            health=plan.health,
            status_text=plan.status_text,
            on_ready=(lambda: on_ready(plan)) if on_ready is not None else None,
        )
    finally:
        for cleanup in reversed(plan.cleanup):
            try:
                cleanup()
            except Exception:
                _LOGGER.exception("cleanup failed")
