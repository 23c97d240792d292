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
    users: int = 40
    events: int = 4000
    seed: int = 0


SCENARIOS = (
    Scenario("in_order", seed=11),
    Scenario("shuffled_within_lateness", dict(out_of_order=0.2, max_delay_s=90), shuffle_block=8, seed=12),
    Scenario("duplicates", dict(duplicates=0.08), seed=13),
    Scenario("too_late", dict(out_of_order=0.1, too_late=0.03), seed=14),
    Scenario("malformed", dict(malformed=0.03), seed=15),
    Scenario("privacy", dict(privacy_rate=0.15), privacy=True, seed=16),
    Scenario("models", dict(out_of_order=0.2, max_delay_s=90, duplicates=0.03, too_late=0.01, malformed=0.01),
             shuffle_block=8, models=True, seed=17),
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


def data(s: Scenario, folder: Path) -> Data:
    sim = _sim(s)
    msgs = list(wire_messages(sim, WireCodec(MemoryRegistry(), "interaction")))
    if s.shuffle_block:
        msgs = shuffled_in_blocks(msgs, s.shuffle_block, seed=s.seed)
    frames = folder / f"{s.name}.frames"
    if not frames.exists():
        write_frames(frames, msgs)
    # privacy requests arrive when event time reaches them (as `shiftstream run --privacy` applies them)
    ts = [r["ts"] for r in sim.events]
    privacy = []
    for p in sim.privacy:
        i = next((k for k, t in enumerate(ts) if t >= p["ts"]), len(ts))
        privacy.append((i, p))
    return Data(msgs, privacy, frames, sim.truth["counts"]["users"])
