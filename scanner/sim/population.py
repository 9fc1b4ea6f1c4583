"""Who is at the site: the people and things of a scenario, with their paths and habits.

A profile says how busy and how hard a scenario is; ``populate`` draws from it, with one seeded
random generator, the visitors who walk into the zone, those who stand at its boundary or pass
outside, the ambient infrastructure that is always there, and the allowlisted equipment.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from scanner.sim.physics import Site, Track


@dataclass(frozen=True, slots=True)
class Profile:
    """How a scenario is drawn; see ``PROFILES``."""

    name: str
    site: Site
    walk_ins_per_hour: float
    boundary_per_hour: float
    passers_per_hour: float
    ambient: tuple[str, ...]  # kinds of ambient devices present all the time
    allowlisted: tuple[str, ...]
    android_share: float = 0.45
    cell_only_share: float = 0.0
    screen_on_share: float = 0.4
    active_share: float = 0.25
    # How close to the zone boundary loiterers stand (metres outside it).
    boundary_gap_m: tuple[float, float] = (1.0, 3.0)
    first_entry_s: float | None = None  # make the first visitor enter at about this time
    # A calibration walk: one known phone held just outside ("boundary") or inside the edge.
    calibration: str | None = None
    # Behaviours the detection core does not assume (each off unless a profile sets it):
    # the share of handsets that are all one model (same probe elements, same BLE flags),
    same_model_share: float = 0.0
    # the share carried in a pocket or bag (6-12 dB of body loss on every radio),
    pocket_share: float = 0.0
    # how long a screen-off phone waits between scans, when it scans rarely (seconds),
    screen_off_gap_s: tuple[float, float] | None = None
    # uplink power set by the network and drifting over a visit, 23 dBm down to -10 dBm,
    power_control: bool = False
    # the share of boundary loiterers on a call (continuous uplink at full power),
    loiter_call_share: float = 0.0
    # desk PCs and TVs with global MACs, and how many of them stand inside the zone.
    desks: int = 0
    desks_inside: int = 0
    # A fenced zone with its gate facing +x: visitors come through the gate and loiterers wait
    # in front of it, within this angle of the gate's direction (radians; None: from anywhere),
    gate_spread_rad: float | None = None
    # and the share of visitors who stay just inside the fence (0.5-1.5 m in from it).
    edge_dwell_share: float = 0.0


AMBIENT_DEFAULT = ("access_point", "access_point", "tv", "car", "beacon", "laptop")

PROFILES: dict[str, Profile] = {
    # A quiet gate: few visitors, thick walls.
    "easy": Profile(
        "easy", Site(wall_db=14.0, slow_sigma_db=2.0), 20, 4, 20, AMBIENT_DEFAULT, ("tablet",)
    ),
    # The default: a steady flow, loiterers at the door, passers-by in the corridor.
    "mixed": Profile("mixed", Site(), 30, 8, 40, AMBIENT_DEFAULT, ("tablet", "radio")),
    # A crowded corridor outside a thinner wall.
    "crowded": Profile(
        "crowded",
        Site(wall_db=11.0),
        36,
        12,
        120,
        (*AMBIENT_DEFAULT, "tv", "car"),
        ("tablet", "radio"),
    ),
    # People who linger at the boundary, closer to it, with more shadowing.
    "boundary": Profile(
        "boundary",
        Site(wall_db=11.0, slow_sigma_db=3.0),
        24,
        20,
        30,
        AMBIENT_DEFAULT,
        ("tablet",),
        boundary_gap_m=(0.8, 2.0),
    ),
    # Phones with screens off, few on calls, some with Wi-Fi and Bluetooth off.
    "quiet": Profile(
        "quiet",
        Site(),
        24,
        8,
        30,
        AMBIENT_DEFAULT,
        ("tablet",),
        screen_on_share=0.15,
        active_share=0.1,
        cell_only_share=0.05,
    ),
    # Many phones of one model at once (a unit issued the same phone; an iPhone-heavy crowd).
    "same-model": Profile(
        "same-model",
        Site(wall_db=11.0),
        40,
        10,
        80,
        AMBIENT_DEFAULT,
        ("tablet",),
        same_model_share=0.85,
    ),
    # Phones in pockets and bags: 6-12 dB of body loss on Wi-Fi, BLE and the uplink.
    "pocket": Profile("pocket", Site(), 30, 8, 40, AMBIENT_DEFAULT, ("tablet",), pocket_share=0.8),
    # Screen-off phones that scan rarely (every 2-10 minutes), uplink under power control.
    "screen-off": Profile(
        "screen-off",
        Site(),
        30,
        8,
        40,
        AMBIENT_DEFAULT,
        ("tablet",),
        screen_on_share=0.0,
        active_share=0.1,
        screen_off_gap_s=(120.0, 600.0),
        power_control=True,
    ),
    # People waiting just outside the fence, many on calls at full uplink power.
    "loiter": Profile(
        "loiter",
        Site(wall_db=10.0),
        16,
        40,
        30,
        AMBIENT_DEFAULT,
        ("tablet",),
        boundary_gap_m=(0.3, 1.5),
        power_control=True,
        loiter_call_share=0.5,
    ),
    # An office: desk PCs and TVs with global MACs, some inside the zone, probing all day.
    "desk": Profile(
        "desk",
        Site(),
        12,
        4,
        20,
        AMBIENT_DEFAULT,
        ("tablet",),
        desks=6,
        desks_inside=2,
    ),
    # A fence with a gate: people wait 1-4 m outside it in front of the gate (many on calls,
    # phones in pockets, uplink under power control) while visitors pass through the gate and
    # some stay just inside the fence. The scenario several sensors are for.
    "fence": Profile(
        "fence",
        Site(wall_db=10.0),
        20,
        40,
        30,
        AMBIENT_DEFAULT,
        ("tablet",),
        boundary_gap_m=(1.0, 4.0),
        pocket_share=0.5,
        power_control=True,
        loiter_call_share=0.5,
        gate_spread_rad=0.9,
        edge_dwell_share=0.4,
    ),
    # Nobody visits: only what is always there (the eight-hour ambient test).
    "ambient": Profile(
        "ambient",
        Site(),
        0,
        0,
        0,
        (*AMBIENT_DEFAULT, "tv", "car", "beacon", "printer"),
        ("tablet",),
    ),
    # `checkpoint calibrate --recording`: the installer's phone just outside / just inside.
    "calibrate-boundary": Profile(
        "calibrate-boundary",
        Site(),
        0,
        0,
        0,
        AMBIENT_DEFAULT,
        ("tablet",),
        calibration="boundary",
    ),
    "calibrate-inside": Profile(
        "calibrate-inside",
        Site(),
        0,
        0,
        0,
        AMBIENT_DEFAULT,
        ("tablet",),
        calibration="inside",
    ),
    # The bundled demo: the first visitor walks in within half a minute.
    "demo": Profile(
        "demo", Site(), 40, 6, 30, ("access_point", "tv", "beacon"), ("tablet",), first_entry_s=22.0
    ),
}


@dataclass(slots=True)
class Person:
    """One simulated device and how it behaves."""

    id: str
    kind: str  # truth kind: handset, wearable, audio, tag, computer, access_point, beacon, other
    role: str  # walk_in | boundary | passer | ambient | allowlisted
    track: Track
    platform: str = (
        ""  # ios | android | cell_only | tv | car | ap | beacon | laptop | tablet | radio
    )
    wifi: bool = False
    ble: bool = False
    cell: bool = False
    allowlisted: bool = False
    screen_on: bool = False
    scanning: bool = False  # Wi-Fi settings open: a scan every few seconds
    active: bool = False
    model: int = 0
    pocket_db: float = 0.0  # body loss of a pocket or bag, on every radio
    off_gap_s: tuple[float, float] | None = None  # scan interval with the screen off
    power_control: bool = False
    # Filled in by the emitters: the addresses it used (the allowlist needs the stable ones).
    macs: list[str] = field(default_factory=list)
    ble_addresses: list[str] = field(default_factory=list)


def _walk(
    rng: random.Random,
    track: Track,
    t: float,
    frm: tuple[float, float],
    to: tuple[float, float],
    speed: float,
) -> float:
    d = math.dist(frm, to)
    t += d / speed
    track.add(t, to[0], to[1])
    return t


def _far_point(rng: random.Random, r: tuple[float, float] = (30.0, 40.0)) -> tuple[float, float]:
    a = rng.uniform(0, 2 * math.pi)
    d = rng.uniform(*r)
    return d * math.cos(a), d * math.sin(a)


def _gate_side(rng: random.Random, spread: float, r: tuple[float, float]) -> tuple[float, float]:
    """A far point on the gate's side (+x), within ``spread`` radians of its direction."""
    a = rng.uniform(-spread, spread)
    d = rng.uniform(*r)
    return d * math.cos(a), d * math.sin(a)


def _point_at(rng: random.Random, r: float, near: float | None = None) -> tuple[float, float]:
    a = rng.uniform(0, 2 * math.pi) if near is None else near + rng.uniform(-0.4, 0.4)
    return r * math.cos(a), r * math.sin(a)


def _handset(rng: random.Random, pid: str, role: str, track: Track, prof: Profile) -> Person:
    roll = rng.random()
    if roll < prof.cell_only_share:
        platform = "cell_only"
    elif roll < prof.cell_only_share + prof.android_share:
        platform = "android"
    else:
        platform = "ios"
    person = Person(
        pid,
        "handset",
        role,
        track,
        platform,
        cell=True,
        screen_on=rng.random() < prof.screen_on_share,
        active=rng.random() < prof.active_share,
    )
    if platform == "ios":
        person.wifi = rng.random() < 0.95
        person.ble = True
        person.model = rng.randrange(3)
    elif platform == "android":
        person.wifi = rng.random() < 0.9
        # Quick Share / Nearby presence, or a companion app, keeps most Android phones
        # advertising; the rest are heard on Wi-Fi and the uplink only.
        person.ble = rng.random() < 0.75
        person.model = 3 + rng.randrange(5)
    # Extra behaviours draw from their own generator, so profiles without them are unchanged.
    extra = random.Random(f"{pid}:{rng.random()}") if _has_extras(prof) else None
    if extra is not None:
        if platform != "cell_only" and extra.random() < prof.same_model_share:
            person.platform, person.model = "ios", 0
            person.ble = True
        if extra.random() < prof.pocket_share:
            person.pocket_db = extra.uniform(6.0, 12.0)
        person.off_gap_s = prof.screen_off_gap_s
        person.power_control = prof.power_control
        if role == "boundary" and extra.random() < prof.loiter_call_share:
            person.active = True
    return person


def _has_extras(prof: Profile) -> bool:
    return bool(
        prof.same_model_share
        or prof.pocket_share
        or prof.screen_off_gap_s
        or prof.power_control
        or prof.loiter_call_share
    )


def populate(prof: Profile, rng: random.Random, duration_s: float) -> list[Person]:
    """Draw everyone of a scenario."""
    site = prof.site
    people: list[Person] = []
    radius = site.zone_radius_m

    def arrivals(per_hour: float) -> list[float]:
        out: list[float] = []
        if per_hour <= 0:
            return out
        t = rng.expovariate(per_hour / 3600.0)
        while t < duration_s - 60:
            out.append(t)
            t += rng.expovariate(per_hour / 3600.0)
        return out

    # Visitors: walk in from far, wander inside, leave the way they came or another way.
    starts = arrivals(prof.walk_ins_per_hour)
    if prof.first_entry_s is not None:
        walk_time = 28.0 / 1.25
        starts = [max(0.0, prof.first_entry_s - walk_time), *[s + 30 for s in starts]]
    for n, t0 in enumerate(starts):
        speed = rng.uniform(1.0, 1.5)
        track = Track()
        frm = _far_point(rng, (26.0, 34.0)) if prof.first_entry_s is None or n else (28.0, 0.0)
        if prof.gate_spread_rad is not None:
            frm = _gate_side(rng, prof.gate_spread_rad, (26.0, 34.0))
        track.add(t0, *frm)
        heading = math.atan2(frm[1], frm[0])
        depth = (0.5, radius - 1.5)
        if prof.edge_dwell_share and rng.random() < prof.edge_dwell_share:
            depth = (radius - 1.5, radius - 0.5)  # stays just inside the fence
        inside = _point_at(rng, rng.uniform(*depth), heading)
        t = _walk(rng, track, t0, frm, inside, speed)
        dwell_end = t + rng.uniform(20.0, 200.0)
        here = inside
        while t < dwell_end - 5:
            if depth[0] > 0.5:  # an edge dweller moves along the fence, near where it stands
                nxt = _point_at(rng, rng.uniform(*depth), heading)
            else:
                nxt = _point_at(rng, rng.uniform(0.3, radius - 1.5))
            t = _walk(rng, track, t, here, nxt, 0.4)
            t += rng.uniform(3.0, 25.0)
            track.add(t, *nxt)
            here = nxt
        t = _walk(rng, track, t, here, _far_point(rng), speed)
        people.append(_handset(rng, f"h{n + 1}", "walk_in", track, prof))

    # Loiterers at the boundary: close to the zone, never in it.
    for n, t0 in enumerate(arrivals(prof.boundary_per_hour)):
        track = Track()
        frm = _far_point(rng)
        if prof.gate_spread_rad is not None:
            frm = _gate_side(rng, prof.gate_spread_rad, (30.0, 40.0))
        track.add(t0, *frm)
        spot_r = radius + rng.uniform(*prof.boundary_gap_m)
        spot = _point_at(rng, spot_r, math.atan2(frm[1], frm[0]))
        t = _walk(rng, track, t0, frm, spot, 1.2)
        t += rng.uniform(60.0, 400.0)
        track.add(t, *spot)
        # They leave on their own side, around the zone rather than through it.
        back = _point_at(rng, rng.uniform(30.0, 40.0), math.atan2(spot[1], spot[0]))
        _walk(rng, track, t, spot, back, 1.2)
        people.append(_handset(rng, f"b{n + 1}", "boundary", track, prof))

    # Passers-by: a straight line through the corridor, outside the zone.
    for n, t0 in enumerate(arrivals(prof.passers_per_hour)):
        track = Track()
        miss = radius + rng.uniform(3.0, 15.0)
        a = rng.uniform(0, 2 * math.pi)
        cx, cy = miss * math.cos(a), miss * math.sin(a)
        dx, dy = -math.sin(a) * 35, math.cos(a) * 35
        track.add(t0, cx - dx, cy - dy)
        _walk(rng, track, t0, (cx - dx, cy - dy), (cx + dx, cy + dy), rng.uniform(1.0, 1.6))
        people.append(_handset(rng, f"p{n + 1}", "passer", track, prof))

    if prof.calibration is not None:
        edge = radius + 0.5 if prof.calibration == "boundary" else radius - 0.5
        track = Track()
        track.add(0.0, edge, 0.0)
        track.add(duration_s, edge, 0.0)
        known = _handset(rng, "cal1", "calibration", track, prof)
        known.platform, known.wifi, known.ble = "ios", True, True
        # The same phone on both walks: its model (and so its probe elements) from the seed.
        known.model = 0
        known.screen_on, known.active = True, True
        known.scanning = True  # the installer keeps the Wi-Fi settings page open
        people.append(known)

    # Companions of visitors: a watch or earbuds walking with their phone.
    for person in list(people):
        if person.platform == "ios" and rng.random() < 0.3:
            kind = "wearable" if rng.random() < 0.5 else "audio"
            people.append(
                Person(
                    f"{person.id}-{kind[:1]}",
                    kind,
                    person.role,
                    person.track,
                    "watch" if kind == "wearable" else "airpods",
                    ble=True,
                )
            )

    # Ambient: always there, outside the zone (the building's APs, the neighbour's TV...).
    for n, what in enumerate(prof.ambient):
        track = Track()
        r = {
            "access_point": rng.uniform(12.0, 20.0),
            "tv": rng.uniform(9.0, 14.0),
            "car": rng.uniform(14.0, 25.0),
            "beacon": rng.uniform(10.0, 18.0),
            "laptop": rng.uniform(10.0, 16.0),
            # Inside the zone: the room's own printer, heard strongly all the time.
            "printer": rng.uniform(2.0, 3.5),
        }[what]
        x, y = _point_at(rng, r)
        track.add(0.0, x, y)
        track.add(duration_s, x, y)
        kind = {
            "access_point": "access_point",
            "tv": "other",
            "car": "audio",
            "beacon": "beacon",
            "laptop": "computer",
            "printer": "other",
        }[what]
        platform = {
            "access_point": "ap",
            "tv": "tv",
            "car": "car",
            "beacon": "beacon",
            "laptop": "laptop",
            "printer": "printer",
        }[what]
        people.append(
            Person(
                f"amb{n + 1}",
                kind,
                "ambient",
                track,
                platform,
                wifi=what in ("access_point", "tv", "laptop", "printer"),
                ble=what in ("tv", "car", "beacon", "laptop"),
                model=10 + n % 3,
            )
        )

    # Desks: PCs and TVs with global MACs (Intel and Samsung OUIs), probing and sending data
    # all day; the first ``desks_inside`` stand inside the zone.
    for n in range(prof.desks):
        track = Track()
        in_room = n < prof.desks_inside
        x, y = _point_at(rng, rng.uniform(1.5, 4.0) if in_room else rng.uniform(7.0, 15.0))
        track.add(0.0, x, y)
        track.add(duration_s, x, y)
        what = "desktv" if n % 3 == 1 else "desk"
        people.append(
            Person(
                f"desk{n + 1}",
                "other" if what == "desktv" else "computer",
                "ambient",
                track,
                what,
                wifi=True,
                model=10 + n % 3,
            )
        )

    # Allowlisted equipment inside the zone: the guard's tablet, an issued radio-phone.
    for n, what in enumerate(prof.allowlisted):
        track = Track()
        x, y = _point_at(rng, rng.uniform(1.0, 2.5))
        track.add(0.0, x, y)
        track.add(duration_s, x, y)
        kind = "computer" if what == "tablet" else "handset"
        people.append(
            Person(
                f"allow{n + 1}",
                kind,
                "allowlisted",
                track,
                what,
                wifi=True,
                ble=True,
                allowlisted=True,
                model=8 + n,
            )
        )
    # The issued handset talks over Wi-Fi to the site's network (no cellular uplink), so the
    # SDR hears nothing of it: uplink energy cannot be allowlisted.
    return people
