"""Per-client request rate limits and sign-in throttling, in the API process's memory.

Sign-in failures are counted twice. Per client address: a few failures, then that address waits
(doubling each time it comes back for more, up to an hour), whatever names it tries, so one
host can neither guess one account's password nor spray a common password across many names.
Per account name: many more failures from all addresses together, then a short pause; this
stops a guesser spread over many hosts. The account pause never applies to a client that has
signed in as that user before (it holds a device cookie) nor to a trusted address (the kiosk
browser on the Pi itself), so a stranger cannot lock the real owner out of the tablet.

Names are counted whether or not an account has them, and a refused attempt answers the same
for both, so the answers tell nothing about which names exist. Attempts take their slot before
their (slow) password check, so guesses sent in parallel cannot outrun the count.

The state is in memory on purpose: the API is one process, a restart forgetting the counts is
harmless, and the store is not written on every guess. Every table is bounded.
"""

from __future__ import annotations

import ipaddress
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

V = TypeVar("V")

# Clients and names remembered at most; the least recently seen go first. A Pi on a site network
# sees a few hundred addresses; a spray of unknown names is what fills the name table.
MAX_TRACKED = 10_000
# A client's block doubles each time it comes back for more, up to this.
MAX_CLIENT_BLOCK_S = 3600.0


def parse_networks(
    specs: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(s, strict=False) for s in specs)


def is_trusted(
    client: str, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
) -> bool:
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in net for net in networks)


class _Lru(Generic[V]):
    """A dict bounded to ``MAX_TRACKED`` entries, least recently used first out."""

    def __init__(self, make: Callable[[], V]) -> None:
        self._make = make
        self._items: OrderedDict[str, V] = OrderedDict()

    def get(self, key: str) -> V:
        item = self._items.get(key)
        if item is None:
            item = self._make()
            self._items[key] = item
            if len(self._items) > MAX_TRACKED:
                self._items.popitem(last=False)
        else:
            self._items.move_to_end(key)
        return item

    def peek(self, key: str) -> V | None:
        return self._items.get(key)


@dataclass
class _Bucket:
    tokens: float = -1.0
    at: float = 0.0


class RateLimiter:
    """A token bucket per client: ``burst`` requests at once, ``rate_per_s`` sustained."""

    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float]) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._clock = clock
        self._buckets: _Lru[_Bucket] = _Lru(_Bucket)
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """0 when the request may go ahead, else the seconds until it could."""
        now = self._clock()
        with self._lock:
            b = self._buckets.get(client)
            if b.tokens < 0:
                b.tokens, b.at = float(self.burst), now
            # A clock stepped back (the Pi has no RTC: NTP may set it back after boot) is no
            # time elapsed, never a debt that would refuse every request until it is paid.
            elapsed = max(0.0, now - b.at)
            b.tokens = min(float(self.burst), b.tokens + elapsed * self.rate_per_s)
            b.at = now
            if b.tokens >= 1.0:
                b.tokens -= 1.0
                return 0.0
            return (1.0 - b.tokens) / self.rate_per_s


@dataclass
class _Failures:
    count: int = 0
    blocked_until: float = 0.0
    blocks: int = 0  # how many times blocked in a row (the next block is twice as long)
    last: float = 0.0


class LoginThrottle:
    """Counts sign-in failures per client address and per account name."""

    def __init__(
        self,
        *,
        client_failures: int,
        client_block_s: float,
        account_failures: int,
        account_lock_s: float,
        clock: Callable[[], float],
    ) -> None:
        self.client_failures = client_failures
        self.client_block_s = client_block_s
        self.account_failures = account_failures
        self.account_lock_s = account_lock_s
        self._clock = clock
        self._clients: _Lru[_Failures] = _Lru(_Failures)
        self._accounts: _Lru[_Failures] = _Lru(_Failures)
        self._lock = threading.Lock()

    def reserve(self, client: str | None, account: str, *, account_exempt: bool) -> float:
        """Take a failure slot before checking a secret: 0 to go ahead, else Retry-After.

        ``client`` is None for a trusted client (no per-client count). ``account_exempt`` is
        true when this client has signed in as ``account`` before, or is trusted.
        """
        now = self._clock()
        with self._lock:
            c = self._clients.get(client) if client is not None else None
            a = self._accounts.get(account)
            if c is not None:
                self._forget_old(c, now, self.client_block_s)
                if c.blocked_until > now:
                    return c.blocked_until - now
            self._forget_old(a, now, self.account_lock_s)
            if a.blocked_until > now and not account_exempt:
                return a.blocked_until - now
            if c is not None:
                c.count += 1
                c.last = now
                if c.count >= self.client_failures:
                    # This is the last attempt the client gets before it waits.
                    c.blocks += 1
                    block = min(MAX_CLIENT_BLOCK_S, self.client_block_s * 2 ** (c.blocks - 1))
                    c.blocked_until = now + block
                    c.count = 0
            if not account_exempt:
                a.count += 1
                a.last = now
                if a.count >= self.account_failures:
                    a.blocked_until = now + self.account_lock_s
                    a.count = 0
            return 0.0

    def succeeded(self, client: str | None, account: str, *, account_exempt: bool) -> None:
        """The secret was right: give the slots back and clear the client's record."""
        with self._lock:
            if client is not None:
                c = self._clients.get(client)
                c.count, c.blocked_until, c.blocks = 0, 0.0, 0
            if not account_exempt:
                a = self._accounts.get(account)
                a.count = max(0, a.count - 1)

    def clear_account(self, account: str) -> None:
        """An administrator let the user back in (new password, re-enabled)."""
        with self._lock:
            a = self._accounts.peek(account)
            if a is not None:
                a.count, a.blocked_until = 0, 0.0

    def account_locked(self, account: str) -> bool:
        a = self._accounts.peek(account)
        return a is not None and a.blocked_until > self._clock()

    def _forget_old(self, f: _Failures, now: float, period: float) -> None:
        # Failures older than ten block periods are forgotten: a guard who mistyped last week
        # starts afresh, a guesser coming back within the hour does not.
        if f.blocked_until <= now and now - f.last > 10 * period:
            f.count, f.blocks = 0, 0
