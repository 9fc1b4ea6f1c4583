"""Checkpoint Scanner: a receive-only detector of active handsets at a restricted zone's entrance.

Importing this package loads no radio library: scapy, bleak and librtlsdr are imported lazily by
the sources that need them, so replay and the tests run on machines without them.
"""

__version__ = "0.1.0"
