"""Fusion: Wi-Fi, BLE and SDR findings become the handsets an alert reports.

Each transmitter that enters the zone (a Wi-Fi MAC, a BLE address) is a **presence** of its
own, and a new one always reaches the alert: a radio tracker can wrongly group two phones of
one model, and a second phone must never hide behind the first. How many *handsets* those
presences are is a separate, softer question, answered by joining presences:

* the radio trackers' device ids (rotating MACs and BLE addresses of one phone), when the
  transmitters they join were in the zone within ``identity_gap_s`` of each other: a tracker
  that joins an address to one that fell silent minutes ago may be joining two visitors, and
* the same MAC or BLE address seen again, and
* co-presence: a Wi-Fi and a BLE transmitter in the zone together, the earlier not yet joined
  to a transmitter of the later one's radio, are one phone when they entered within
  ``link_window_s`` of each other, or within ``link_alone_window_s`` when there is no other
  phone it could be.

The joins an alarm trusts (whether a transmitter is a handset an acknowledged alert already
names) are stricter: the trackers' on a phone's own evidence (not a model's shared fingerprint),
radios entering within ``link_window_s``, and an address first heard inside that only the one
handset in the zone could own, its new address where it stood (``_sole_owner``). That last join
is undone for the alarm when the old address it was taken to replace is heard again
(``take_disputed``). A radio of another kind first heard inside long after its handset entered
is not joined for the alarm: a second phone heard on that radio alone (BLE off, or no Wi-Fi
probing) looks the same, and it must alarm.

A presence ends when its transmitter has been out of the zone for ``leave_hold_s``.

What a handset's transmitters left behind (their joins, when each was in the zone) is kept
while it can still change an answer, and then **settled**: a group of joined transmitters none
of which has been in the zone for ``SETTLE_AFTER_S`` can gain nothing more (a tracker's join
needs ``identity_gap_s``, a co-entry an open presence), so its handsets are added to a running
count and its tables dropped. Only its addresses are remembered (``MAX_SETTLED_KEYS``, the
oldest forgotten first), so the same address back later is still the handset already counted.
A flood of transmitters in the zone settles its oldest groups early once ``MAX_LIVE_KEYS``
transmitters are held (counted in ``settled_early``). Without this every visit left a few
hundred bytes here for the life of the process.

The count of handsets checks the trackers' joins against what a radio cannot do: a phone sends
from one address at a time, so a join that would make one phone of two transmitters of one
radio heard in the zone at once (the tracker joined phones of one model, directly or through
the phones' other radio) is not counted.

Uplink energy names no device. While a handset is present it is supporting evidence; on its
own, for longer than ``sdr_alone_after_s``, it is an unidentified transmitter, and so is
energy from more uplink transmitters at once than there are handsets present (a phone sends
on one band at a time, as one transmitter: ``uplink``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scanner.core.detectors import Finding
from scanner.core.options import CoreOptions
from scanner.core.uplink import band_of

# Frames from several sensors arrive slightly out of order: a rotation (the old address falls
# silent as the new one starts) may look like an overlap this long.
OVERLAP_TOLERANCE_S = 2.0
# One phone where it stood, heard under its new address: a presence's level is the median of a
# few packets, and fast fading (2.5 dB a packet) and slow shadowing (2.5 dB) are independent
# between the two readings, which differ with a standard deviation of about 5 dB; 10 dB is two
# of them. Further apart, the new address is as likely another phone elsewhere in the zone.
ROTATION_LEVEL_DB = 10.0
# A phone's BLE advertises every 0.2 to 2 s: heard within this, with two adverts in a row
# missed, the phone is still in the zone at the moment its Wi-Fi address changes.
STILL_HEARD_S = 5.0
# Handsets in the zone beyond which no sole owner of a new transmitter is sought (it alarms): a
# crowd, or a flood of addresses, where one owner left after the others are ruled out by their
# fingerprints is not believable, and the search would cost a walk of every transmitter held.
MAX_OWNERS = 8
# A handset none of whose transmitters has been in the zone for this long is settled (see the
# module docstring). Longer than any join window (``identity_gap_s`` is at most a few minutes):
# a phone's addresses rotate within about fifteen minutes (BLE resolvable private addresses;
# Wi-Fi probe MACs far sooner), so past that a phone still about is heard under new addresses,
# and its old group could only grow by the same address coming back, which
# ``_settled_keys`` still recognises.
SETTLE_AFTER_S = 900.0
# How often settling runs: it walks every held transmitter, and minutes-old state may wait.
SETTLE_EVERY_S = 10.0
# Transmitters held unsettled at most (about 300 bytes each with their joins and spans): tens
# of visitors a minute for fifteen minutes is a few thousand; beyond this it is a flood of
# addresses in the zone, and the longest-gone groups settle early.
MAX_LIVE_KEYS = 20_000
# Addresses of settled handsets remembered, so one back later is not a new handset (about 100
# bytes each): thousands of visits at a gate.
MAX_SETTLED_KEYS = 20_000


@dataclass(slots=True)
class Presence:
    """One transmitter in the zone and the latest finding that shows it."""

    key: str
    radio: str
    identity: str  # the tracker's device id: rotating addresses of one phone share it
    finding: Finding
    started_mono: float
    started_ts: float
    fingerprints: frozenset[str] = frozenset()  # Wi-Fi: its probe fingerprints
    in_zone: bool = True
    out_since: float | None = None


@dataclass(slots=True)
class EnergyState:
    """Uplink energy heard at in-zone strength, per transmitter key (``uplink``)."""

    findings: dict[str, Finding] = field(default_factory=dict)
    heard_mono: dict[str, float] = field(default_factory=dict)  # latest burst per transmitter
    first_mono: dict[str, float] = field(default_factory=dict)  # first at in-zone strength
    since_mono: float | None = None
    since_ts: float | None = None


class Fusion:
    """The open presences, the uplink energy state, and the handsets they make up."""

    def __init__(self, options: CoreOptions) -> None:
        self._options = options
        self.active: dict[str, Presence] = {}
        self.energy = EnergyState()
        self._parent: dict[str, str] = {}
        self._radios: dict[str, set[str]] = {}  # root -> radios joined into it
        self._seen: set[str] = set()  # transmitters that were ever in the zone
        self._last_active: dict[str, dict[str, float]] = {}  # identity -> key -> last in zone
        self._span: dict[str, list[float]] = {}  # key -> [first, last] heard in the zone
        # Joins in the order they were made: (a, b, made by the tracker rather than co-entry).
        self._links: list[tuple[str, str, bool]] = []
        # The joins an alarm trusts: a tracker's on the phone's own evidence (a continuing
        # sequence counter, the same address), not on a fingerprint every phone of that model
        # shares: a new phone of the guards' model walking in must alarm; and radios entering
        # within ``link_window_s`` (not the looser "no other phone it could be": a second
        # visitor can be that phone).
        self._strict: dict[str, str] = {}
        self._strict_first: dict[str, float] = {}  # strict root -> first in the zone
        self.rejoined = 0  # addresses taken for the sole handset's new one (``_sole_owner``)
        # An address taken for replaced by a new one (old -> new), while the new one is held:
        # the old heard again proves the new one another phone (``take_disputed``).
        self._replaced_by: dict[str, str] = {}
        self._disputed: set[str] = set()
        self.disputed = 0
        self.presences_total = 0
        # Settled handsets (module docstring): how many, their addresses (oldest first), and
        # the addresses back since (their handset is counted already).
        self._settled_handsets = 0
        self._settled_keys: dict[str, None] = {}
        self._returning: set[str] = set()
        self._last_settle = float("-inf")
        self.settled = 0  # groups settled
        self.settled_early = 0  # of them, by MAX_LIVE_KEYS
        self.forgotten_keys = 0  # settled addresses forgotten by MAX_SETTLED_KEYS

    # -- transmitters ------------------------------------------------------------------------
    def device_in(
        self,
        finding: Finding,
        identity: str,
        mono: float,
        ts: float,
        *,
        by_model: bool = False,
        heard_outside_mono: float | None = None,
        last_below_mono: float | None = float("inf"),
        fingerprints: frozenset[str] = frozenset(),
    ) -> bool:
        """A transmitter is in the zone; True when it has just entered (a new presence).

        ``by_model``: the tracker put this transmitter in its device on a shared model
        fingerprint alone (random addresses of one phone model): the join groups it for the
        count, but an alarm does not trust it (see ``_strict``). ``heard_outside_mono``: when
        this transmitter was last heard clearly outside the zone, if lately (see ``_co_entry``).
        ``last_below_mono``: when this transmitter was last heard below the zone's enter level
        (None: never, as far as its recent samples go; infinity, the default: unknown, so it is
        never taken for a handset's new address or other radio, see ``_sole_owner``).
        ``fingerprints``: a Wi-Fi transmitter's probe fingerprints (its model's and OS's).
        """
        key = finding.key
        current = self.active.get(key)
        first_heard = key not in self._span
        span = self._span.setdefault(key, [mono, mono])
        span[1] = max(span[1], mono)
        replacement = self._replaced_by.get(key)
        if replacement is not None and mono > self._span[replacement][0] + OVERLAP_TOLERANCE_S:
            # The address taken for replaced is heard again after its replacement began: one
            # phone sends from one address at a time, so the replacement is another phone.
            del self._replaced_by[key]
            self._disputed.add(replacement)
            self.disputed += 1
        if current is not None:
            self._last_active.setdefault(identity, {})[key] = mono
            current.finding = finding
            current.in_zone = True
            current.out_since = None
            return False
        presence = Presence(key, finding.radio, identity, finding, mono, ts, fingerprints)
        if key not in self._parent and key in self._settled_keys:
            del self._settled_keys[key]
            self._returning.add(key)  # its handset was counted when it settled
        self._node(key, finding.radio)
        self._strict_first.setdefault(self.surely_handset_of(key), mono)
        siblings = self._last_active.setdefault(identity, {})
        trusted = False
        for other, last in siblings.items():
            if other != key and mono - last <= self._options.identity_gap_s:
                self._union(key, other)
                self._links.append((other, key, True))
                if not by_model:
                    self._strict_union(key, other)
                    trusted = True
        siblings[key] = mono
        partner = self._co_entry(presence, heard_outside_mono)
        if partner is not None:
            self._union(key, partner.key)
            self._links.append((key, partner.key, False))
            if presence.started_mono - partner.started_mono <= self._options.link_window_s:
                self._strict_union(key, partner.key)
                trusted = True
        if first_heard and not trusted and key not in self._returning:
            owner = self._sole_owner(presence, last_below_mono)
            if owner is not None:
                self._strict_union(key, owner)
                self.rejoined += 1
                self._replaced_by[owner] = key
        self.active[key] = presence
        self._seen.add(key)
        self.presences_total += 1
        return True

    def device_out(self, key: str, mono: float) -> None:
        """The transmitter is no longer evidence (left, silent, ambient)."""
        presence = self.active.get(key)
        if presence is not None and presence.in_zone:
            presence.in_zone = False
            presence.out_since = mono

    def drop_device(self, key: str) -> None:
        """Forget a transmitter's presence at once (it was allowlisted)."""
        self.active.pop(key, None)

    def drop_identity(self, identity: str) -> None:
        for key in [k for k, p in self.active.items() if p.identity == identity]:
            del self.active[key]

    def _co_entry(self, new: Presence, heard_outside_mono: float | None) -> Presence | None:
        """The presence of another radio that is most likely the same phone, if any.

        Candidates are open presences of another radio whose handset has no transmitter of
        the new one's radio yet. The one that entered within ``link_window_s`` wins; failing
        that, a single candidate is taken (its phone's other radio was simply quiet until now).
        A presence that was already in the zone while the new transmitter was heard clearly
        outside it (``heard_outside_mono``) is not a candidate: one phone is in one place, and
        a phone whose address rotated inside the zone must not take a visitor walking in.
        """
        candidates: dict[str, Presence] = {}
        for p in self.active.values():
            if p.radio == new.radio:
                continue
            if heard_outside_mono is not None and p.in_zone and p.started_mono < heard_outside_mono:
                continue
            root = self._find(p.key)
            if new.radio in self._radios.get(root, set()):
                continue  # that phone already has a transmitter of this radio
            best = candidates.get(root)
            if best is None or p.started_mono > best.started_mono:
                candidates[root] = p
        if not candidates:
            return None
        window = self._options.link_window_s
        close = [p for p in candidates.values() if new.started_mono - p.started_mono <= window]
        if close:
            return max(close, key=lambda p: p.started_mono)
        if len(candidates) == 1:
            only = next(iter(candidates.values()))
            if new.started_mono - only.started_mono <= self._options.link_alone_window_s:
                return only
        return None

    def expire(self, mono: float) -> list[Presence]:
        """End presences whose transmitter has been out for the hold time."""
        hold = self._options.leave_hold_s
        ended = [
            p
            for p in self.active.values()
            if not p.in_zone and p.out_since is not None and mono - p.out_since >= hold
        ]
        for p in ended:
            del self.active[p.key]
        if ended and self._replaced_by:
            gone = {p.key for p in ended}
            self._replaced_by = {
                old: new for old, new in self._replaced_by.items() if new not in gone
            }
        self._forget_siblings(mono)
        if mono - self._last_settle >= SETTLE_EVERY_S or len(self._parent) > MAX_LIVE_KEYS:
            self._last_settle = mono
            self._settle(mono)
        return ended

    def _settle(self, mono: float) -> None:
        """Count and drop the groups that can no longer change (see the module docstring)."""
        groups: dict[str, list[str]] = {}
        for key in list(self._parent):
            groups.setdefault(self._find(key), []).append(key)
        last: dict[str, float] = {}  # root -> the latest any member was in the zone
        for root, keys in groups.items():
            if any(k in self.active for k in keys):
                continue  # (a presence open, or held by its leave hold)
            last[root] = max(self.last_in_zone(k) for k in keys)
        done = [r for r, t in last.items() if mono - t > SETTLE_AFTER_S]
        excess = len(self._parent) - sum(len(groups[r]) for r in done) - MAX_LIVE_KEYS
        if excess > 0:
            # A flood in the zone: the longest-gone groups go early, down to nine tenths of the
            # cap so the sort is paid once per many new transmitters.
            excess += MAX_LIVE_KEYS // 10
            early = set(done)
            for root in sorted((r for r in last if r not in early), key=last.__getitem__):
                if excess <= 0:
                    break
                done.append(root)
                excess -= len(groups[root])
                self.settled_early += 1
        if not done:
            return
        gone = {k for r in done for k in groups[r]}
        links = [link for link in self._links if link[0] in gone]
        self._settled_handsets += self._count({k for k in gone if k in self._seen}, links)
        self._links = [link for link in self._links if link[0] not in gone]
        for key in gone:
            del self._parent[key]
            self._radios.pop(key, None)
            self._span.pop(key, None)
            self._returning.discard(key)
            if key in self._seen:
                self._seen.discard(key)
                self._remember_settled(key)
        # A strict group lies within one group of ``_parent`` (both join together), so whole
        # groups go; what remains outside ``_parent`` are lookups of settled keys (singletons).
        for key in [k for k in self._strict if k not in self._parent]:
            del self._strict[key]
        for key in [k for k in self._strict_first if k not in self._parent]:
            del self._strict_first[key]
        self.settled += len(done)

    def last_in_zone(self, key: str) -> float:
        """When ``key`` was last in the zone (-inf: not held, or settled)."""
        span = self._span.get(key)
        return span[1] if span is not None else float("-inf")

    def _remember_settled(self, key: str) -> None:
        self._settled_keys[key] = None
        while len(self._settled_keys) > MAX_SETTLED_KEYS:
            del self._settled_keys[next(iter(self._settled_keys))]
            self.forgotten_keys += 1

    def table_sizes(self) -> dict[str, int]:
        """How many entries each table holds (memory bounds are checked on these)."""
        return {
            "active": len(self.active),
            "nodes": len(self._parent),
            "radios": len(self._radios),
            "seen": len(self._seen),
            "last_active": sum(len(v) for v in self._last_active.values()),
            "spans": len(self._span),
            "links": len(self._links),
            "strict": len(self._strict),
            "strict_first": len(self._strict_first),
            "replaced_by": len(self._replaced_by),
            "settled_keys": len(self._settled_keys),
            "returning": len(self._returning),
        }

    def _forget_siblings(self, mono: float) -> None:
        """Drop the tracker-join candidates that can no longer join anything: a transmitter
        last in the zone more than ``identity_gap_s`` ago is past every sibling join (without
        this, every transmitter that ever entered stayed here for the life of the process)."""
        gap = self._options.identity_gap_s
        for identity in list(self._last_active):
            keys = self._last_active[identity]
            for key in [k for k, last in keys.items() if mono - last > gap]:
                del keys[key]
            if not keys:
                del self._last_active[identity]

    @property
    def seen(self) -> set[str]:
        """Transmitters that were ever in the zone (read-only use)."""
        return self._seen

    # -- handsets ----------------------------------------------------------------------------
    def _node(self, identity: str, radio: str) -> None:
        if identity not in self._parent:
            self._parent[identity] = identity
        self._radios.setdefault(self._find(identity), set()).add(radio)

    def _find(self, key: str) -> str:
        return _root(self._parent, key)

    def _union(self, a: str, b: str) -> None:
        ra, rb = self._find(a), self._find(b)
        if ra != rb:
            self._parent[ra] = rb
            self._radios.setdefault(rb, set()).update(self._radios.pop(ra, set()))

    def handset_of(self, key: str) -> str:
        """The handset (a group of joined transmitters) this transmitter belongs to."""
        return self._find(key)

    def surely_handset_of(self, key: str) -> str:
        """The handset of this transmitter by the joins an alarm trusts (see ``_strict``)."""
        return _root(self._strict, key)

    def _strict_union(self, a: str, b: str) -> None:
        ra, rb = self.surely_handset_of(a), self.surely_handset_of(b)
        if ra != rb:
            self._strict[ra] = rb
            first = self._strict_first.pop(ra, None)
            if first is not None:
                self._strict_first[rb] = min(first, self._strict_first.get(rb, first))

    def _sole_owner(self, new: Presence, last_below_mono: float | None) -> str | None:
        """The address of the one handset in the zone that ``new`` surely replaced, if any.

        ``new`` was first heard in the zone just now, with no join an alarm trusts. A phone
        walking in is heard at the edge first when it sends there; one that does not is taken
        for a phone already inside only when all of the below hold, each of which a newcomer
        breaks:

        * exactly one handset (by the joins an alarm trusts) in the zone could be its phone:
          with two, ``new`` could be either's, or a third's (two phones of one model inside are
          two owners, so ambiguity alarms). A handset whose Wi-Fi probes with fingerprints none
          of which ``new`` carries is not a Wi-Fi transmitter's owner (a phone's probe requests
          carry the elements of its model and OS, whatever address it sends from);
        * ``new`` was not heard below the zone's enter level since that handset entered: one
          phone is in one place, and a transmitter at the edge while the handset was inside is
          another phone (before it entered, it may be that phone walking in);
        * the handset's latest transmitter of ``new``'s radio, joined to ``new`` by the tracker
          (the same model fingerprint, which alone an alarm does not trust), has fallen silent
          (one phone sends from one address at a time) and is still held by the zone (silent
          less than ``absent_s`` plus ``leave_hold_s``: its level says where that phone last
          was), and ``new`` is heard within ``ROTATION_LEVEL_DB`` of that level (the same phone
          where it stood);
        * another radio of the handset was heard within ``STILL_HEARD_S`` (the phone is still
          here, not gone and replaced by another of its model at the same spot: without that
          radio, an address falling silent says nothing about where its phone went).

        A handset's radio of another kind first heard inside is never taken for it: a phone
        with its BLE off or not probing walks in looking just like that, and must alarm.
        What this cannot tell apart: a second phone of the model, heard on that radio alone and
        first inside, standing where the handset stood as the handset's address fell silent.
        """
        inside: dict[str, list[Presence]] = {}
        held: dict[str, set[str]] = {}  # root -> fingerprints of its held Wi-Fi presences
        for p in self.active.values():
            if p.key == new.key:
                continue
            root = self.surely_handset_of(p.key)
            if p.in_zone:
                inside.setdefault(root, []).append(p)
                if len(inside) > MAX_OWNERS:
                    return None
            if new.fingerprints and p.radio == new.radio and p.fingerprints:
                held.setdefault(root, set()).update(p.fingerprints)
        for root in [r for r in inside if r in held and held[r].isdisjoint(new.fingerprints)]:
            del inside[root]
        if len(inside) != 1:
            return None
        ((root, presences),) = inside.items()
        entered = self._strict_first.get(root, new.started_mono)
        if last_below_mono is not None and last_below_mono >= entered:
            return None
        old: Presence | None = None
        for p in self.active.values():
            if p.radio != new.radio or p.key == new.key:
                continue
            if self.surely_handset_of(p.key) != root:
                continue
            if self.last_in_zone(p.key) >= new.started_mono - OVERLAP_TOLERANCE_S:
                return None  # still heard: two addresses of one radio at once are two phones
            if old is None or self.last_in_zone(p.key) > self.last_in_zone(old.key):
                old = p
        if old is None or old.identity != new.identity:
            return None
        if abs(new.finding.level - old.finding.level) > ROTATION_LEVEL_DB:
            return None
        if not any(
            p.radio != new.radio and new.started_mono - self.last_in_zone(p.key) <= STILL_HEARD_S
            for p in presences
        ):
            return None
        return old.key

    def take_disputed(self) -> set[str]:
        """The transmitters taken for a handset's new address whose old address has been heard
        again since (they are another phone: the alert must treat them as a new handset)."""
        disputed, self._disputed = self._disputed, set()
        return {k for k in disputed if k in self.active}

    def heard_at_once(self, earlier: str, later: str) -> bool:
        """True when ``earlier`` was still heard in the zone as ``later`` entered: two
        transmitters of one radio at once are two phones (one phone sends from one address)."""
        se, sl = self._span.get(earlier), self._span.get(later)
        if se is None or sl is None:
            return False
        return se[1] >= sl[0] - OVERLAP_TOLERANCE_S and se[0] < sl[0]

    def handsets_now(self) -> int:
        """Distinct handsets among the open presences."""
        return len({self._find(p.key) for p in self.active.values()})

    def handset_count(self) -> int:
        """Distinct handsets that have been in the zone so far.

        As the live grouping, except that a tracker's join is left out when it would make one
        phone of two transmitters of one radio heard in the zone at once (see the module
        docstring): joins are replayed in the order they were made, each checked against the
        group built so far. Settled handsets were counted so when they settled.
        """
        return self._settled_handsets + self._count(self._seen, self._links)

    def _count(self, keys: set[str], links: list[tuple[str, str, bool]]) -> int:
        """The handsets ``keys`` make by ``links`` (see ``handset_count``), less those an
        address back after settling says were counted already."""
        parent: dict[str, str] = {k: k for k in keys}
        members: dict[str, list[str]] = {k: [k] for k in keys}

        def find(k: str) -> str:
            while parent[k] != k:
                parent[k] = parent[parent[k]]
                k = parent[k]
            return k

        for a, b, by_tracker in links:
            if a not in parent or b not in parent:
                continue
            ra, rb = find(a), find(b)
            if ra == rb or (by_tracker and self._clash(members[ra], members[rb])):
                continue
            parent[ra] = rb
            members[rb].extend(members.pop(ra))
        returning = self._returning
        return sum(1 for group in members.values() if returning.isdisjoint(group))

    def _clash(self, group_a: list[str], group_b: list[str]) -> bool:
        """True when the groups hold transmitters of one radio heard in the zone at once."""
        return any(
            a.split(":", 1)[0] == b.split(":", 1)[0] and self._overlap(a, b)
            for a in group_a
            for b in group_b
        )

    def _overlap(self, a: str, b: str) -> bool:
        """True when transmitters ``a`` and ``b`` were both heard in the zone at once."""
        sa, sb = self._span.get(a), self._span.get(b)
        if sa is None or sb is None:
            return False
        earlier, later = (sa, sb) if sa[0] <= sb[0] else (sb, sa)
        # The earlier one heard again after the later one began: not one address replacing
        # another (a short span inside a long one counts too).
        return earlier[1] - later[0] > OVERLAP_TOLERANCE_S

    # -- uplink energy -----------------------------------------------------------------------
    def energy_in(self, finding: Finding, mono: float, ts: float) -> None:
        if not self.energy.findings:
            self.energy.since_mono = mono
            self.energy.since_ts = ts
        self.energy.findings[finding.key] = finding
        self.energy.heard_mono[finding.key] = mono
        self.energy.first_mono.setdefault(finding.key, mono)

    def energy_out(self, key: str) -> None:
        self.energy.findings.pop(key, None)
        self.energy.heard_mono.pop(key, None)
        self.energy.first_mono.pop(key, None)
        if not self.energy.findings:
            self.energy.since_mono = None
            self.energy.since_ts = None

    def unidentified(self, mono: float) -> bool:
        """True when uplink energy has been in the zone long enough with no handset named, or
        from more transmitters at once than the handsets named in the zone (``uplink``)."""
        since = self.energy.since_mono
        if since is None or mono - since < self._options.sdr_alone_after_s:
            return False
        # Alone, energy must stand on its own (sustained at the zone's level and not explained
        # by a phone the other radios hear just outside: ``Finding.alone``) ...
        # ... and be heard just now: the last burst of a phone that has walked out is not a
        # transmitter in the zone, however strong it was.
        fresh = [
            f
            for k, f in self.energy.findings.items()
            if mono - self.energy.heard_mono.get(k, since) <= self._options.sdr_window_s
        ]
        if not any(f.alone for f in fresh):
            return False
        if not self.active:
            return True
        # Handsets are named in the zone. A phone sends its uplink on one band at a time (its
        # serving cell's) as one transmitter, so more transmitters sending at once than there
        # are handsets inside, one of them standing on its own, is a phone more that names
        # itself on no other radio.
        return self._transmitters_at_once(fresh, since) > self.handsets_now()

    def _transmitters_at_once(self, fresh: list[Finding], since: float) -> int:
        """How many phones these transmitters are at least. A phone sends on one band at a
        time, so each band holds one at least (as a phone handed from one band to another
        counts twice for a moment, so it did before bands were split into transmitters).
        Within a band, two transmitters are two phones only if they were heard interleaved:
        the latest of each after the first of the other. One phone sends one burst at a time,
        so transmitters heard in turn, the second starting after the first fell silent (its
        level jumping as it came through a wall or out of a pocket), may be one phone: of
        those, the most whose spans (first to latest burst at in-zone strength) share an
        instant count."""
        first, heard = self.energy.first_mono, self.energy.heard_mono
        edges: dict[str, list[tuple[float, int]]] = {}
        for f in fresh:
            band = edges.setdefault(band_of(f.key), [])
            band.append((first.get(f.key, since), 1))
            band.append((heard.get(f.key, since), -1))
        total = 0
        for spans in edges.values():
            # Starts before ends at one instant: a span of one burst, or spans touching, count.
            spans.sort(key=lambda e: (e[0], -e[1]))
            most = now = 0
            for _t, step in spans:
                now += step
                most = max(most, now)
            total += most
        return total


def _root(parent: dict[str, str], key: str) -> str:
    """The group ``key`` belongs to in the union-find ``parent`` (a new key is a group of its
    own); ``key`` is pointed straight at it so the next look is one step."""
    root = parent.setdefault(key, key)
    while root != parent[root]:
        root = parent[root]
    parent[key] = root
    return root
