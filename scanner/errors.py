"""Errors that cross module boundaries, each with a message a user can act on."""

from __future__ import annotations


class CheckpointError(Exception):
    """Base of the errors the command line reports as one line, without a traceback."""


class RecordingError(CheckpointError):
    """A recording cannot be read at all (missing, unsupported link type, not a capture)."""


class HardwareError(CheckpointError):
    """A receiver cannot be used; the message says what to do (replug, free the interface)."""
