"""A clickstream simulator with ground truth: users with latent behaviour types, sessions, shifts, imperfections."""
from __future__ import annotations

import bisect
import math
import random
import struct
from dataclasses import dataclass, field
from typing import Iterator

from shiftstream.schemas import codec
from shiftstream.schemas.varint import read_long

START_TS = 1_767_571_200_000  # 2026-01-05T00:00:00Z, a Monday
MIN = 60_000
HOUR = 3_600_000
DAY = 86_400_000

CATEGORIES = (
    "electronics", "books", "fashion", "home", "sports", "beauty",
    "toys", "grocery", "garden", "automotive", "music", "health",
)
_PRICE_MEDIAN = {"electronics": 180, "books": 15, "fashion": 45, "home": 60, "sports": 55, "beauty": 25,
                 "toys": 30, "grocery": 8, "garden": 40, "automotive": 70, "music": 20, "health": 22}
EVENT_TYPES = ("page_view", "click", "scroll", "hover", "search", "add_to_cart", "purchase", "impression")
DEVICES = ("desktop", "mobile", "tablet", "other")
# diurnal weights for the hour a session starts (UTC), low at night, peaks at lunch and evening
_HOUR_WEIGHTS = (1, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 9, 10, 9, 8, 8, 8, 9, 11, 12, 11, 8, 5, 2)


@dataclass(frozen=True)
class Behaviour:
    """The latent type of a user: what drives their sessions."""

    name: str
    share: float                # fraction of users of this type
    activity: float             # relative number of events per user
    events_per_session: tuple[int, int]
    gap_s: float                # mean seconds between events in a session
    mix: tuple[float, ...]      # weights over EVENT_TYPES (purchase is drawn after carts, see below)
    buy_after_cart: float       # chance a cart add is followed by a purchase in the session
    price_factor: float         # < 1: prefers cheap items
    scroll: tuple[float, float]  # beta(a, b) of scroll depth
    growth: float = 0.0         # per-session growth of session length (rising durations)
    devices: tuple[float, ...] = (0.45, 0.45, 0.08, 0.02)


BEHAVIOURS = (
    Behaviour("engaged_browser", 0.15, 3.0, (70, 120), 3.2, (68, 6, 12, 8, 2, 2, 0, 6), 0.15, 1.0, (5, 2),
              devices=(0.65, 0.25, 0.08, 0.02)),
    Behaviour("quick_visitor", 0.30, 0.35, (2, 7), 6.0, (70, 5, 10, 3, 5, 1, 0, 6), 0.05, 1.0, (1.2, 4),
              devices=(0.25, 0.65, 0.08, 0.02)),
    Behaviour("bargain_hunter", 0.20, 1.2, (14, 30), 9.0, (45, 8, 8, 6, 14, 12, 0, 7), 0.03, 0.45, (2, 2)),
    Behaviour("loyal_customer", 0.20, 1.0, (10, 22), 12.0, (55, 10, 10, 6, 3, 8, 0, 8), 0.75, 1.1, (3, 2)),
    Behaviour("interested_buyer", 0.15, 1.2, (6, 10), 10.0, (55, 10, 12, 8, 4, 5, 0, 6), 0.25, 1.0, (3, 2),
              growth=0.35),
)


@dataclass
class SimConfig:
    users: int = 1000
    events: int = 100_000
    seed: int = 42
    days: float = 7.0
    shift_fraction: float = 0.2       # users whose interest moves from one category to another
    excursion_rate: float = 0.12      # chance a session wanders to a random category (noise, not a shift)
    out_of_order: float = 0.05        # events delivered late by up to max_delay_s
    max_delay_s: float = 60.0
    too_late: float = 0.002           # events delayed far beyond any sane lateness (1-3 h)
    duplicates: float = 0.01          # events delivered twice (same event_id)
    malformed: float = 0.002          # broken records among the wire-format messages
    privacy_rate: float = 0.01        # users who send a consent revoke or an erasure request


@dataclass
class Simulation:
    """What a run of the simulator produced: events in arrival order, the broken messages, and the truth."""

    events: list[dict]                 # in arrival order (duplicates included)
    privacy: list[dict]                # privacy requests, by time
    malformed: list[tuple[int, bytes]]  # (position in the arrival order to insert before, message bytes)
    truth: dict = field(default_factory=dict)


def _sessions_times(rng: random.Random, n: int, span_ms: int) -> list[int]:
    """n session start times over the span, diurnal, at least 40 min apart."""
    starts = []
    for _ in range(n):
        day = rng.randrange(max(1, int(span_ms // DAY)))
        hour = rng.choices(range(24), _HOUR_WEIGHTS)[0]
        starts.append(START_TS + day * DAY + hour * HOUR + rng.randrange(HOUR))
    return sorted(starts)


class _User:
    __slots__ = ("uid", "behaviour", "prefs", "cum", "device", "shift_at_event", "shift_to", "primary")

    def __init__(self, uid: str, b: Behaviour, rng: random.Random):
        self.uid = uid
        self.behaviour = b
        order = list(CATEGORIES)
        rng.shuffle(order)
        self.primary = order[0]
        weights = {c: 0.25 / (len(order) - 2) for c in order}
        weights[order[0]] = 0.55
        weights[order[1]] = 0.20
        self.prefs = weights
        self.cum = None
        self.device = rng.choices(DEVICES, b.devices)[0]
        self.shift_at_event = -1
        self.shift_to = None


def _cumulative(weights: dict[str, float]) -> tuple[list[str], list[float]]:
    cats = list(weights)
    acc, out = 0.0, []
    for c in cats:
        acc += weights[c]
        out.append(acc)
    return cats, out


def simulate(cfg: SimConfig, progress=None) -> Simulation:
    """Generate events, privacy requests, broken messages and the ground truth, deterministically per seed."""
    rng = random.Random(cfg.seed)
    span_ms = int(cfg.days * DAY)
    types = [rng.choices(BEHAVIOURS, [b.share for b in BEHAVIOURS])[0] for _ in range(cfg.users)]
    users = [_User(f"user-{i:06d}", b, rng) for i, b in enumerate(types)]
    total_activity = sum(u.behaviour.activity for u in users)
    budgets = [max(2, int(round(cfg.events * u.behaviour.activity / total_activity))) for u in users]
    # trim or pad so the total is exactly cfg.events (where there are enough users)
    diff = cfg.events - sum(budgets)
    i = 0
    while diff != 0 and users:
        j = i % len(users)
        if diff > 0:
            budgets[j] += 1
            diff -= 1
        elif budgets[j] > 2:
            budgets[j] -= 1
            diff += 1
        i += 1
        if i > 10 * len(users) + abs(diff) * 2:
            break
    shift_users = set(rng.sample(range(len(users)), int(round(cfg.shift_fraction * len(users)))))

    rows: list[tuple] = []  # (ts, user_index, event fields...) built in event time, per user
    truth_users: dict[str, dict] = {}
    truth_shifts: list[dict] = []
    truth_sessions: list[dict] = []
    mix_types = EVENT_TYPES
    for ui, u in enumerate(users):
        b = u.behaviour
        budget = budgets[ui]
        lo, hi = b.events_per_session
        mean_len = (lo + hi) / 2 * (1 + b.growth * 2)
        n_sessions = max(1, int(round(budget / mean_len)))
        starts = _sessions_times(rng, n_sessions, span_ms)
        shift_idx = -1
        if ui in shift_users and budget >= 30:
            shift_idx = int(budget * rng.uniform(0.4, 0.65))
            choices = [c for c in CATEGORIES if c != u.primary and u.prefs[c] < 0.2]
            u.shift_to = rng.choice(choices)
        cats, cum = _cumulative(u.prefs)
        produced = 0
        last_end = 0
        shifted = False
        for s_i in range(n_sessions):
            if produced >= budget:
                break
            length = rng.randint(lo, hi)
            if b.growth:
                length = int(length * (1 + b.growth * s_i))
            if s_i == n_sessions - 1:
                length = budget - produced
            length = max(1, min(length, budget - produced))
            t = max(starts[s_i], last_end + 40 * MIN + rng.randrange(20 * MIN))
            excursion = rng.random() < cfg.excursion_rate
            exc_cat = rng.choice(CATEGORIES) if excursion else None
            session_start = t
            session_first = produced
            hint = f"s{rng.getrandbits(48):012x}"  # opaque: free-text fields must not carry the raw user id
            cart: list[tuple[str, str, float]] = []
            target = produced + length
            while produced < target:
                if not shifted and shift_idx >= 0 and produced >= shift_idx:
                    shifted = True
                    w = dict(u.prefs)
                    old = u.primary
                    w[old], w[u.shift_to] = 0.08, 0.55
                    total = sum(w.values())
                    u.prefs = {c: v / total for c, v in w.items()}
                    cats, cum = _cumulative(u.prefs)
                    truth_shifts.append({"user_id": u.uid, "ts": t, "event_index": produced,
                                         "from": old, "to": u.shift_to})
                etype = rng.choices(mix_types, b.mix)[0]
                if exc_cat is not None and rng.random() < 0.7:
                    cat = exc_cat
                else:
                    cat = cats[bisect.bisect_left(cum, rng.random() * cum[-1])]
                item = f"{cat[:3]}-{rng.randrange(60):03d}"
                price = round(_PRICE_MEDIAN[cat] * b.price_factor * math.exp(rng.gauss(0, 0.5)), 2)
                dwell = scroll = hover = query = variant = None
                page_url = None
                if etype == "page_view":
                    dwell = int(rng.lognormvariate(math.log(b.gap_s * 1000 * 0.8), 0.6))
                    page_url = f"/{cat}/{item}"
                elif etype == "scroll":
                    scroll = round(rng.betavariate(*b.scroll), 3)
                elif etype == "hover":
                    hover = int(rng.lognormvariate(math.log(900), 0.7))
                elif etype == "search":
                    query = f"{cat} {rng.choice(('deal', 'best', 'new', 'cheap', 'gift', 'review'))}"
                elif etype == "impression":
                    variant = f"{cat}-v{rng.randrange(4)}"
                    cat = None if rng.random() < 0.5 else cat
                elif etype == "click":
                    variant = f"{cat}-v{rng.randrange(4)}"
                elif etype == "add_to_cart":
                    cart.append((cat, item, price))
                rows.append((t, ui, etype, cat, item if cat else None, price if etype in ("add_to_cart", "purchase", "page_view") and cat else None,
                             dwell, scroll, hover, page_url, query, variant, hint))
                produced += 1
                if cart and etype == "add_to_cart" and produced < target and rng.random() < b.buy_after_cart:
                    t += int(rng.expovariate(1 / (b.gap_s * 1000)))
                    pc, pi, pp = cart.pop()
                    rows.append((t, ui, "purchase", pc, pi, pp, None, None, None, None, None, None, hint))
                    produced += 1
                t += max(200, int(rng.expovariate(1 / (b.gap_s * 1000))))
            last_end = t
            truth_sessions.append({"user_id": u.uid, "hint": hint, "start": session_start, "end": rows[-1][0],
                                   "events": produced - session_first})
        truth_users[u.uid] = {"type": b.name, "primary": u.primary, "device": u.device, "events": produced,
                              "shift_to": u.shift_to if shifted else None}
        if progress is not None:
            progress(produced)
    # events: give ids, then arrival times and imperfections
    rows.sort(key=lambda r: (r[0], r[1]))
    seed_tag = f"{cfg.seed:x}"
    events: list[tuple[int, int, dict]] = []
    late_ids, dup_ids = [], []
    max_delay = int(cfg.max_delay_s * 1000)
    for k, r in enumerate(rows):
        u = users[r[1]]
        ev = {"event_id": f"ev-{seed_tag}-{k:09d}", "user_id": u.uid, "event_type": r[2], "ts": r[0],
              "session_hint": r[12], "item_id": r[4], "category": r[3], "price": r[5], "dwell_ms": r[6],
              "scroll_depth": r[7], "hover_ms": r[8], "page_url": r[9], "query": r[10], "variant": r[11],
              "device": u.device}
        x = rng.random()
        if x < cfg.too_late:
            arrival = r[0] + rng.randint(HOUR, 3 * HOUR)
            late_ids.append(ev["event_id"])
        elif x < cfg.too_late + cfg.out_of_order:
            arrival = r[0] + rng.randint(1, max(1, max_delay))
        else:
            arrival = r[0]
        events.append((arrival, k, ev))
        if rng.random() < cfg.duplicates:
            events.append((arrival + rng.randint(1, max(1, max_delay)), k, ev))
            dup_ids.append(ev["event_id"])
    events.sort(key=lambda e: (e[0], e[1]))
    ordered = [e[2] for e in events]

    privacy = []
    n_priv = int(round(cfg.privacy_rate * len(users)))
    for j, ui in enumerate(sorted(rng.sample(range(len(users)), min(n_priv, len(users))))):
        kind = "erasure" if j % 2 == 0 else "consent_revoked"
        ts = START_TS + rng.randrange(max(1, span_ms))
        privacy.append({"request_id": f"pr-{seed_tag}-{j:06d}", "user_id": users[ui].uid, "kind": kind,
                        "ts": ts, "source": "simulator"})
    privacy.sort(key=lambda p: p["ts"])

    malformed = _malformed(rng, ordered, cfg.malformed)
    truth = {
        "seed": cfg.seed, "params": cfg.__dict__, "start_ts": START_TS, "categories": list(CATEGORIES),
        "behaviours": [b.name for b in BEHAVIOURS],
        "users": truth_users, "shifts": truth_shifts, "sessions": truth_sessions,
        "privacy": privacy, "late_event_ids": late_ids, "duplicate_event_ids": dup_ids,
        "counts": {"events": len(rows), "deliveries": len(ordered), "users": len(users),
                   "shifts": len(truth_shifts), "sessions": len(truth_sessions), "late": len(late_ids),
                   "duplicates": len(dup_ids), "malformed": len(malformed), "privacy": len(privacy)},
    }
    return Simulation(ordered, privacy, malformed, truth)


def _malformed(rng: random.Random, events: list[dict], fraction: float) -> list[tuple[int, bytes]]:
    """Broken wire-format messages, each kind the dead-letter path must name, at random arrival positions."""
    from shiftstream.schemas import MemoryRegistry, WireCodec

    n = int(round(fraction * len(events)))
    if not n or not events:
        return []
    wire = WireCodec(MemoryRegistry(), "interaction")
    out = []
    kinds = ("truncated", "bad_magic_byte", "unknown_schema_id", "unknown_enum_symbol", "garbage")
    for j in range(n):
        pos = rng.randrange(len(events))
        good = wire.encode(events[pos])
        kind = kinds[j % len(kinds)]
        if kind == "truncated":
            msg = good[: rng.randint(6, max(6, len(good) - 3))]
        elif kind == "bad_magic_byte":
            msg = b"\x07" + good[1:]
        elif kind == "unknown_schema_id":
            msg = b"\x00" + struct.pack(">I", 999_999) + good[5:]
        elif kind == "unknown_enum_symbol":
            body = codec("interaction").encode(events[pos])
            # event_type follows the two strings event_id and user_id: rewrite its varint to 99
            p = 0
            for _ in range(2):
                ln, p2 = read_long(body, p)
                p = p2 + ln
            _, p_end = read_long(body, p)
            msg = good[:5] + body[:p] + bytes([99 << 1 & 0x7F | 0x80, (99 << 1) >> 7]) + body[p_end:]
        else:
            msg = bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
        out.append((pos, msg))
    out.sort(key=lambda x: x[0])
    return out


def wire_messages(sim: Simulation, wire) -> Iterator[bytes]:
    """The events as Kafka message values in arrival order, with the broken ones mixed in where they arrive."""
    bad = sim.malformed
    j = 0
    for i, ev in enumerate(sim.events):
        while j < len(bad) and bad[j][0] == i:
            yield bad[j][1]
            j += 1
        yield wire.encode(ev)
    while j < len(bad):
        yield bad[j][1]
        j += 1
