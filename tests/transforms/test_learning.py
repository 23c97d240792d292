"""Attribution in the core and the learner's snapshots: exact, whatever the arrival order and the sealing schedule."""
import random

from shiftstream.transforms.config import load_config
from shiftstream.transforms.content import parse_experiments, parse_slots
from shiftstream.transforms.core import Core
from shiftstream.transforms.events import EVENT_TYPES, Ev
from shiftstream.transforms.learning import Learner
from shiftstream.transforms.outputs import Outcome

MIN = 60_000
T0 = 1_700_000_000_000
SLOTS = parse_slots([
    {"name": "hero", "policy": "thompson", "variants": ["h0", "h1"], "context": "none", "discount": 0.8},
    {"name": "rail", "policy": "linucb", "variants": ["r0", "r1", "r2"], "features": ["session_clicks"]},
])
EXPS = parse_experiments([{"name": "x", "slot": "hero", "arms": [{"name": "a"}, {"name": "b"}]}])
CFG = load_config().replace(**{"content.slots": SLOTS, "content.experiments": EXPS, "content.epoch": MIN,
                               "content.attribution_window": 10 * MIN})


def ev(ts, eid, kind, variant=None, cat="books"):
    return Ev(ts, eid, EVENT_TYPES.index(kind), cat, 10.0 if kind == "purchase" else None, None, None, None,
              "desktop", variant)


def outcomes(events, watermark_lag=2 * MIN):
    """Feed one user's events in the given order with a watermark trailing the latest time, then the end."""
    core = Core(CFG)
    st, got, latest = None, [], 0
    for e in events:
        latest = max(latest, e.ts)
        st, outs = core.accept(st, "u", e, latest - watermark_lag - 1)
        st, outs2 = core.advance(st, "u", latest - watermark_lag - 1)
        got += [o for o in outs + outs2 if type(o) is Outcome]
    st, outs = core.advance(st, "u", 2**62)
    return got + [o for o in outs if type(o) is Outcome]


STREAM = [ev(T0, "e1", "impression", "h0"), ev(T0 + MIN, "e2", "click", "h0"),
          ev(T0 + 2 * MIN, "e3", "impression", "h1"), ev(T0 + 20 * MIN, "e4", "click", "h1"),  # too late for e3
          ev(T0 + 30 * MIN, "e5", "impression", "r2"), ev(T0 + 31 * MIN, "e6", "purchase"),
          ev(T0 + 32 * MIN, "e7", "impression", "unknown-variant")]


def test_a_click_in_the_window_rewards_its_exposure_and_a_purchase_rewards_every_open_one():
    got = {o.event_id: o for o in outcomes(STREAM)}
    assert set(got) == {"e1", "e3", "e5"}
    assert (got["e1"].reward, got["e3"].reward, got["e5"].reward) == (1.0, 0.0, CFG.content.purchase_reward)
    assert got["e1"].at == T0 + 10 * MIN and got["e1"].first and not got["e3"].first
    assert got["e1"].arm in ("a", "b") and got["e5"].arm is None
    assert got["e5"].x is not None and got["e5"].x[0] == 1.0  # LinUCB's context vector, with its bias term


def test_outcomes_are_the_same_in_any_arrival_order_within_lateness():
    want = outcomes(STREAM)
    rng = random.Random(5)
    for _ in range(20):
        shuffled = STREAM[:]
        # swaps of neighbours (within the 2-minute lateness) and of events minutes apart
        for i in range(len(shuffled) - 1):
            if rng.random() < 0.5 and abs(shuffled[i].ts - shuffled[i + 1].ts) < 2 * MIN:
                shuffled[i], shuffled[i + 1] = shuffled[i + 1], shuffled[i]
        assert outcomes(shuffled) == want


def _random_outcomes(n, seed):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        s = SLOTS[rng.randrange(2)]
        k = rng.randrange(len(s.variants))
        x = (1.0, float(rng.randrange(5))) if s.policy == "linucb" else None
        out.append(Outcome(f"u{i % 17}", s.name, "*", k, s.variants[k].id, x, float(rng.random() < 0.3),
                           T0 + rng.randrange(60 * MIN), f"e{i}", None, False))
    return out


def test_a_snapshot_depends_on_the_outcome_set_alone_not_on_order_or_sealing():
    """Sealed incrementally as a watermark moves (the reference runner) or folded all at once (Beam), in any
    arrival order: every version's statistics are equal to the last bit."""
    outs = _random_outcomes(400, 1)
    whole = Learner(CFG.content, MIN)
    for o in outs:
        whole.add(o)
    whole.fold_all()
    rng = random.Random(2)
    stepped = Learner(CFG.content, MIN)
    by_time = sorted(outs, key=lambda o: o.at)
    i = 0
    for wm in range(T0, T0 + 62 * MIN, 7 * MIN // 3):
        batch = []
        while i < len(by_time) and by_time[i].at <= wm:
            batch.append(by_time[i])
            i += 1
        rng.shuffle(batch)
        for o in batch:
            stepped.add(o)
        stepped.seal(wm)
    stepped.seal(2**62)
    for v in range(T0 // MIN - 1, (T0 + 62 * MIN) // MIN):
        for s in SLOTS:
            assert whole.stats(v, s.name, "*") == stepped.stats(v, s.name, "*"), v


def test_an_outcome_after_its_epoch_was_sealed_is_refused_loudly():
    learner = Learner(CFG.content, MIN)
    learner.seal(T0 + 10 * MIN)
    o = _random_outcomes(1, 3)[0]._replace(at=T0)
    try:
        learner.add(o)
    except ValueError as exc:
        assert "sealed" in str(exc)
    else:
        raise AssertionError("an outcome behind the sealed epoch was taken")
