"""The conformance scenarios: small simulated streams, each with one kind of imperfection a stream has."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from shiftstream.jobs.testing import shuffled_in_blocks
from shiftstream.runners.simulator import SimConfig, simulate, wire_messages
from shiftstream.schemas import MemoryRegistry, WireCodec, write_frames

CLEAN = dict(out_of_order=0.0, too_late=0.0, duplicates=0.0, malformed=0.0, privacy_rate=0.0)


@dataclass(frozen=True)
class Scenario:
    name: str
    sim: dict = field(default_factory=dict)   # SimConfig fields over CLEAN
    shuffle_block: int = 0                    # arrivals shuffled within blocks of this many (0: as simulated)
    models: bool = False                      # decisions scored with the shared trained model set
    privacy: bool = False                     # consent and erasure requests among the events
    future: tuple[int, ...] = ()              # hours ahead to date one event each by (absurd timestamps)
    config: dict = field(default_factory=dict)  # config keys changed for this scenario (dotted)
    users: int = 40
    events: int = 4000
    seed: int = 0


def _content() -> dict:
    """A catalogue for the simulator's variants (`<category>-v<0..3>`): one slot per policy, a flag switched off,
    an experiment with a fixed control arm and a holdout, a category cap, exploration in top_categories and
    threshold rules that pause arms."""
    from shiftstream.transforms.content import parse_experiments, parse_slots

    def vs(cat, ids=range(4)):
        return [{"id": f"{cat}-v{i}", "category": cat} for i in ids]

    slots = parse_slots([  # hero and rail share two categories: the cap of one per category binds between them
        {"name": "hero", "policy": "thompson", "variants": vs("electronics", (0, 1)) + vs("books", (0, 1)),
         "discount": 0.9},
        {"name": "rail", "policy": "linucb", "variants": vs("books", (2, 3)) + vs("electronics", (2, 3)),
         "features": ["session_page_views", "session_clicks"]},
        {"name": "deals", "policy": "epsilon_greedy", "variants": vs("fashion"), "context": "none"},
        {"name": "home", "policy": "ucb1", "variants": vs("home")},
        {"name": "sports", "policy": "thompson", "variants": vs("sports"), "enabled": False,
         "fallback": "sports-v2"},
    ])
    exps = parse_experiments([{"name": "deals_test", "slot": "deals", "holdout": 0.1,
                               "arms": [{"name": "control", "variant": "fashion-v0"}, {"name": "bandit"}]}])
    from shiftstream.transforms.config import parse_duration
    from shiftstream.transforms.thresholds import parse_thresholds

    rules = parse_thresholds([  # loose on purpose (this stream has few rewards): they fire, pause arms, clear
        {"name": "hero_arm", "slot": "hero", "action": "pause_arm", "window": "12h", "baseline": "1d",
         "below": 5, "min_exposures": 1, "hold": "3d"},
        {"name": "hero_alert", "slot": "hero", "action": "alert", "window": "6h", "baseline": "1d",
         "below": 0.95, "min_exposures": 1},
    ], parse_duration)
    return {"content.slots": slots, "content.experiments": exps, "content.epoch": 300_000,
            "content.attribution_window": 600_000, "content.max_per_category": 1, "content.explore_top": 1,
            "content.thresholds": rules}


SCENARIOS = (
    Scenario("in_order", seed=11),
    Scenario("shuffled_within_lateness", dict(out_of_order=0.2, max_delay_s=90), shuffle_block=8, seed=12),
    Scenario("duplicates", dict(duplicates=0.08), seed=13),
    Scenario("too_late", dict(out_of_order=0.1, too_late=0.03), seed=14),
    Scenario("malformed", dict(malformed=0.03), seed=15),
    Scenario("outliers", dict(out_of_order=0.1, max_delay_s=60), future=(23, 6 * 24 - 4, 2), seed=18),
    Scenario("expiry", dict(out_of_order=0.1, max_delay_s=60), config={"state.ttl": "2h"}, seed=19),
    Scenario("privacy", dict(privacy_rate=0.15), privacy=True, seed=16),
    Scenario("models", dict(out_of_order=0.2, max_delay_s=90, duplicates=0.03, too_late=0.01, malformed=0.01),
             shuffle_block=8, models=True, seed=17),
    Scenario("content", dict(out_of_order=0.2, max_delay_s=90, duplicates=0.03), shuffle_block=8,
             config=_content(), seed=20),
)


@dataclass
class Data:
    messages: list[bytes]                  # wire-format values in arrival order (broken ones mixed in)
    privacy: list[tuple[int, dict]]        # (arrival index, PrivacyRequest record)
    frames: Path                           # the messages as a .frames file
    users: int                             # distinct simulated users


_SIMS: dict = {}


def _sim(s: Scenario):
    if s.name not in _SIMS:
        _SIMS[s.name] = simulate(SimConfig(users=s.users, events=s.events, seed=s.seed, **{**CLEAN, **s.sim}))
    return _SIMS[s.name]


def outlier_positions(s: Scenario, n: int) -> list[int]:
    """Where the scenario's absurd timestamps go: spread over the middle of the stream."""
    return [n * (i + 1) // (len(s.future) + 1) for i in range(len(s.future))]


def events(s: Scenario) -> list[dict]:
    """The scenario's events in arrival order, absurd timestamps planted."""
    evs = _sim(s).events
    if s.future:
        evs = [dict(e) for e in evs]
        for pos, hours in zip(outlier_positions(s, len(evs)), s.future):
            evs[pos]["ts"] += hours * 3_600_000
    return evs


def data(s: Scenario, folder: Path) -> Data:
    sim = _sim(s)
    if s.future:
        from dataclasses import replace

        sim = replace(sim, events=events(s))
    msgs = list(wire_messages(sim, WireCodec(MemoryRegistry(), "interaction")))
    if s.shuffle_block:
        msgs = shuffled_in_blocks(msgs, s.shuffle_block, seed=s.seed)
    frames = folder / f"{s.name}.frames"
    if not frames.exists():
        write_frames(frames, msgs)
    # privacy requests arrive when event time reaches them, by the rule file runs apply them with (`shiftstream run
    # --privacy`, reference and Flink): before a message, those at or before the latest event time seen so far
    from shiftstream.jobs.ingest import ingest_for
    from shiftstream.transforms.config import load_config
    from shiftstream.transforms.ingest import PrivacySchedule
    from shiftstream.transforms.pseudonyms import DEV_KEY, Pseudonymiser

    ingest = ingest_for(load_config(), Pseudonymiser(DEV_KEY), "events")
    schedule = PrivacySchedule(sim.privacy)
    privacy = []
    for k, m in enumerate(msgs):
        privacy += [(k, p) for p in schedule.due(ingest.watermarks.high())]
        ingest.message(m, 0, k)
    privacy += [(len(msgs), p) for p in schedule.rest()]
    return Data(msgs, privacy, frames, sim.truth["counts"]["users"])
