"""`python -m bench.bandits`: the policies judged in a closed loop, side by side with MABWiser's and River's.

A simulated population of user types (contexts) responds to what it is shown: each (type, variant) has a click
probability; on the shifting stream the probabilities change twice (preferences shift, the best variant with
them). Every policy sees the same rounds (the same contexts and the same uniform per round decides a click:
common random numbers), and every one learns in epochs (its statistics updated at each epoch's end, as the
engines' learner does in epochs of event time), one bandit per user type where the policy is context-free.

Reports per stream and policy: cumulative (dynamic) pseudo-regret against the best variant per type at each round,
click-through, and the same for a uniform random policy and the best fixed variant in hindsight; then off-policy
estimates (self-normalised IPS and doubly robust) of a learned policy from logged uniform-random impressions
against its true value, and what one choice costs. A plot of cumulative regret goes to docs/bandits.png.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

from shiftstream.transforms.content import parse_slots
from shiftstream.transforms.draws import unit
from shiftstream.transforms.policies import policy

K = 5
TYPES = 3
TYPE_SHARE = np.array([0.5, 0.3, 0.2])
# click probability per user type (rows) and variant (columns)
PHASES = [
    np.array([[0.040, 0.050, 0.060, 0.045, 0.070],
              [0.080, 0.050, 0.040, 0.060, 0.030],
              [0.030, 0.090, 0.050, 0.040, 0.060]]),
    np.array([[0.075, 0.050, 0.040, 0.045, 0.035],   # preferences shift: the best variant per type changes
              [0.030, 0.050, 0.085, 0.060, 0.040],
              [0.060, 0.035, 0.050, 0.095, 0.040]]),
    np.array([[0.040, 0.080, 0.050, 0.045, 0.040],
              [0.060, 0.030, 0.040, 0.050, 0.090],
              [0.090, 0.040, 0.050, 0.030, 0.045]]),
]


class Stream:
    def __init__(self, kind: str, rounds: int, seed: int):
        rng = np.random.default_rng(seed)
        self.kind, self.rounds = kind, rounds
        self.ctx = rng.choice(TYPES, size=rounds, p=TYPE_SHARE)
        self.u = rng.random(rounds)
        self.phase = np.zeros(rounds, dtype=int) if kind == "stationary" else \
            np.minimum(np.arange(rounds) * len(PHASES) // rounds, len(PHASES) - 1)

    def p(self, t: int) -> np.ndarray:
        return PHASES[self.phase[t]][self.ctx[t]]


# -- the policies under test: choose(t, c) -> arm; learn(batch of (c, arm, reward)) at each epoch's end --------

class Ours:
    def __init__(self, name: str, **settings):
        self.name = f"shiftstream {name}" + (" tuned" if settings.get("tuned") else "") + \
            ("" if settings.get("discount", 1.0) == 1.0 else f" (discount {settings['discount']})") + \
            (" (no drift reset)" if settings.get("drift") is False else "")
        self.kind = name
        onehot = name == "linucb"
        self.slot = parse_slots([{"name": "bench", "policy": name, "variants": [f"v{i}" for i in range(K)],
                                  **({"features": ["session_clicks"]} if onehot else {}), **settings}])[0]
        if onehot:  # x = (bias, one-hot type): built here, the slot's feature list only sets the dimension
            self.slot = type(self.slot)(**{**self.slot.__dict__, "features": tuple(f"t{i}" for i in range(TYPES))})
        self.p = policy(name)
        self.models = 1 if onehot else TYPES
        self.stats = [self.p.new(K, self.slot) for _ in range(self.models)]
        self.version = 0
        self._prepare()

    def _x(self, c):
        return (1.0, *(1.0 if i == c else 0.0 for i in range(TYPES))) if self.kind == "linucb" else None

    def _prepare(self):
        self.prepared = [self.p.prepare(st, ("bench", m, self.version), self.slot) for m, st in enumerate(self.stats)]

    def choose(self, t, c):
        m = 0 if self.models == 1 else c
        return self.p.choose(self.prepared[m], self._x(c), unit("bench", t, self.version))[0]

    def learn(self, batch):
        for st in self.stats:
            self.p.decay(st, 1, self.slot)
        for c, a, r in batch:
            self.p.update(self.stats[0 if self.models == 1 else c], a, r, self._x(c))
        self.version += 1
        self._prepare()


class Mabwiser:
    def __init__(self, name: str, seed: int):
        from mabwiser.mab import MAB, LearningPolicy

        lp = {"thompson": LearningPolicy.ThompsonSampling(), "ucb1": LearningPolicy.UCB1(alpha=1.0),
              "epsilon_greedy": LearningPolicy.EpsilonGreedy(epsilon=0.1),
              "linucb": LearningPolicy.LinUCB(alpha=1.0)}[name]
        self.name, self.kind = f"MABWiser {name}", name
        self.contextual = name == "linucb"
        self.models = [MAB(list(range(K)), lp, seed=seed + i) for i in range(1 if self.contextual else TYPES)]
        self.fitted = [False] * len(self.models)
        self.rng = np.random.default_rng(seed)

    def _x(self, c):
        return [[1.0 if i == c else 0.0 for i in range(TYPES)]]

    def choose(self, t, c):
        m = 0 if self.contextual else c
        if not self.fitted[m]:
            return int(self.rng.integers(K))
        mab = self.models[m]
        return int(mab.predict(self._x(c)) if self.contextual else mab.predict())

    def learn(self, batch):
        groups = {}
        for c, a, r in batch:
            groups.setdefault(0 if self.contextual else c, []).append((c, a, r))
        for m, rows in groups.items():
            d = [a for _, a, _ in rows]
            r = [r for _, _, r in rows]
            kw = {"contexts": [self._x(c)[0] for c, _, _ in rows]} if self.contextual else {}
            if self.fitted[m]:
                self.models[m].partial_fit(d, r, **kw)
            else:
                self.models[m].fit(d, r, **kw)
                self.fitted[m] = True


class River:
    def __init__(self, name: str, seed: int):
        from river import bandit, proba

        make = {"thompson": lambda s: bandit.ThompsonSampling(reward_obj=proba.Beta(), seed=s),
                "ucb1": lambda s: bandit.UCB(delta=1.0, seed=s),
                "epsilon_greedy": lambda s: bandit.EpsilonGreedy(epsilon=0.1, seed=s)}[name]
        self.name, self.kind = f"River {name}", name
        self.models = [make(seed + i) for i in range(TYPES)]
        self.arms = list(range(K))

    def choose(self, t, c):
        return int(self.models[c].pull(self.arms))

    def learn(self, batch):
        for c, a, r in batch:
            self.models[c].update(a, r)


class Uniform:
    name, kind = "uniform random", "uniform"

    def choose(self, t, c):
        return min(int(unit("uniform", t) * K), K - 1)

    def learn(self, batch):
        pass


def play(pol, s: Stream, epoch: int) -> np.ndarray:
    """Per-round pseudo-regret of a policy on a stream (and its clicks in `pol.clicks`)."""
    regret = np.empty(s.rounds)
    batch, clicks = [], 0
    for t in range(s.rounds):
        c = int(s.ctx[t])
        p = s.p(t)
        a = pol.choose(t, c)
        r = float(s.u[t] < p[a])
        clicks += r
        regret[t] = p.max() - p[a]
        batch.append((c, a, r))
        if len(batch) == epoch:
            pol.learn(batch)
            batch = []
    pol.clicks = clicks
    return regret


def best_fixed(s: Stream) -> tuple[float, float]:
    """Regret and clicks of the best fixed variant per user type in hindsight."""
    best = None
    ps = np.array([s.p(t) for t in range(s.rounds)])
    for_type = {}
    for c in range(TYPES):
        m = s.ctx == c
        for_type[c] = int(ps[m].sum(axis=0).argmax())
    arms = np.array([for_type[int(c)] for c in s.ctx])
    chosen = ps[np.arange(s.rounds), arms]
    regret = float((ps.max(axis=1) - chosen).sum())
    best = float((s.u < chosen).sum())
    return regret, best


def off_policy(rounds: int, seed: int, target) -> dict:
    """Logged uniform-random impressions (propensity 1/K) on the stationary stream; estimates of the target's
    value (probabilities per type: target[c][a]) by self-normalised IPS and doubly robust, and the truth."""
    s = Stream("stationary", rounds, seed)
    a = np.array([min(int(unit("log", t) * K), K - 1) for t in range(rounds)])
    p = PHASES[0][s.ctx, a]
    r = (s.u < p).astype(float)
    pi = np.asarray(target)[s.ctx, a]
    w = pi / (1.0 / K)
    snips = float((w * r).sum() / w.sum())
    q = np.zeros((TYPES, K))  # the reward model: mean reward per (type, variant) in the logs
    for c in range(TYPES):
        for k in range(K):
            m = (s.ctx == c) & (a == k)
            q[c, k] = r[m].mean() if m.any() else 0.0
    dm = (np.asarray(target)[s.ctx] * q[s.ctx]).sum(axis=1)
    dr = float((dm + w * (r - q[s.ctx, a])).mean())
    truth = float(sum(TYPE_SHARE[c] * (np.asarray(target)[c] * PHASES[0][c]).sum() for c in range(TYPES)))
    return {"truth": truth, "snips": snips, "dr": dr}


def choice_cost(n: int = 100_000) -> float:
    """Microseconds per context-free choice (Thompson from a prepared snapshot, the user's hashed draw included)."""
    o = Ours("thompson")
    t0 = time.perf_counter()
    for t in range(n):
        o.choose(t, t % TYPES)
    return (time.perf_counter() - t0) / n * 1e6


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bandits", description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=60_000, help="rounds per stream (default 60,000)")
    ap.add_argument("--epoch", type=int, default=500, help="rounds per learning epoch (default 500)")
    ap.add_argument("--ope-rounds", type=int, default=100_000, help="logged rounds for off-policy estimates")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-libraries", action="store_true", help="leave MABWiser and River out")
    ap.add_argument("--plot", default="docs/bandits.png", help="where the regret plot goes ('' for none)")
    args = ap.parse_args(argv)
    libraries = not args.no_libraries
    if libraries:
        if not all(importlib.util.find_spec(m) for m in ("mabwiser", "river")):
            print("bench.bandits: MABWiser and River are bench dependencies: `make bench` installs them "
                  "(requirements-bench.txt), or run with --no-libraries", file=sys.stderr)
            return 2
    print(f"closed loop: {TYPES} user types, {K} variants, {args.rounds:,} rounds per stream, learning every "
          f"{args.epoch} rounds; regret is expected clicks lost against the best variant per type at each round")
    curves, results = {}, {}
    for kind in ("stationary", "shifting"):
        s = Stream(kind, args.rounds, args.seed)
        # ours with the slot defaults (drift resets on, no fixed discount), plus Thompson without forgetting and
        # UCB1-Tuned with and without
        pols = [Ours("thompson"), Ours("ucb1"), Ours("epsilon_greedy"), Ours("linucb", discount=0.97),
                Ours("thompson", drift=False), Ours("ucb1", tuned=True), Ours("ucb1", tuned=True, drift=False)]
        if libraries:
            pols += [Mabwiser(n, args.seed) for n in ("thompson", "ucb1", "epsilon_greedy", "linucb")]
            pols += [River(n, args.seed) for n in ("thompson", "ucb1", "epsilon_greedy")]
        pols.append(Uniform())
        rows = []
        for pol in pols:
            t0 = time.perf_counter()
            reg = play(pol, s, args.epoch)
            curves.setdefault(kind, {})[pol.name] = np.cumsum(reg)
            rows.append((pol.name, float(reg.sum()), pol.clicks / args.rounds, time.perf_counter() - t0, pol.kind))
            print(f"  {kind:<10} {pol.name:<40} regret {reg.sum():>8.1f}  ctr {pol.clicks / args.rounds:.4f}  "
                  f"({time.perf_counter() - t0:.1f}s)", flush=True)
        fr, fc = best_fixed(s)
        rows.append(("best fixed variant per type (hindsight)", fr, fc / args.rounds, 0.0, "fixed"))
        results[kind] = rows
    print()
    print("| stream | policy | regret | CTR |\n|---|---|---|---|")
    for kind, rows in results.items():
        for name, reg, ctr, _, _ in rows:
            print(f"| {kind} | {name} | {reg:,.1f} | {ctr:.4f} |")
    if libraries:
        print()
        st = {n: r for n, r, *_ in results["stationary"]}
        sh = {n: r for n, r, *_ in results["shifting"]}
        lib_best = min(r for n, r in st.items() if n.startswith(("MABWiser", "River")))
        ours_best = min(r for n, r in st.items() if n.startswith("shiftstream"))
        print(f"stationary: our best regret {ours_best:,.1f} vs the libraries' best {lib_best:,.1f} "
              f"({ours_best / lib_best:.2f}x; aim: clicks within 5% of theirs)")
        ctr_s = {n: c for n, _, c, *_ in results["stationary"]}
        ours_ctr = max(c for n, c in ctr_s.items() if n.startswith("shiftstream"))
        lib_ctr = max(c for n, c in ctr_s.items() if n.startswith(("MABWiser", "River")))
        print(f"stationary: our best CTR {ours_ctr:.4f} vs the libraries' best {lib_ctr:.4f} "
              f"({ours_ctr / lib_ctr - 1:+.1%}; aim >= -5%)")
        for name, lib in (("thompson", "thompson"), ("ucb1", "ucb1"), ("ucb1 tuned", "ucb1"),
                          ("ucb1 tuned (no drift reset)", "ucb1")):
            ours = sh[f"shiftstream {name}"]
            theirs = sh[f"MABWiser {lib}"]
            print(f"shifting: shiftstream {name} dynamic regret {ours:,.1f} vs MABWiser {lib} {theirs:,.1f} "
                  f"({1 - ours / theirs:.0%} lower; aim >= 30%)")
    # off-policy evaluation of a learned policy: our Thompson after the stationary stream, frozen
    learned = Ours("thompson", drift=False)
    play(learned, Stream("stationary", args.rounds, args.seed), args.epoch)
    print()
    logs = 10  # independent logs: one log's estimate carries its own sampling error (about 2.5% here)
    opes = [off_policy(args.ope_rounds, args.seed + 7 + i, learned.prepared) for i in range(logs)]
    truth = opes[0]["truth"]
    for est, label in (("snips", "SNIPS"), ("dr", "doubly robust")):
        err = np.array([o[est] / truth - 1 for o in opes])
        print(f"off-policy, {label}, {logs} logs of {args.ope_rounds:,} uniform-random rounds: true value "
              f"{truth:.5f}, mean error {err.mean():+.1%} (bias), spread {err.std():.1%} (one log's error), "
              f"within 5% on {(abs(err) <= 0.05).sum()} of {logs}; aim within 5%")
    us = choice_cost()
    print(f"one context-free choice (Thompson, hashed draw included): {us:.1f} us ({1e6 / us:,.0f} choices/s/core; "
          f"aim <= 50 us)")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
        for ax, kind in zip(axes, ("stationary", "shifting")):
            for name, c in curves[kind].items():
                ax.plot(c, label=name, lw=2 if name.startswith("shiftstream") else 1,
                        ls="-" if name.startswith("shiftstream") else "--" if name.startswith("MABWiser") else ":")
            ax.set_title(f"{kind} stream: cumulative regret")
            ax.set_xlabel("round")
            ax.set_ylabel("expected clicks lost")
            if kind == "shifting":
                for x in range(1, len(PHASES)):
                    ax.axvline(x * args.rounds / len(PHASES), color="grey", lw=0.5)
        axes[1].legend(fontsize=7, loc="upper left")
        fig.tight_layout()
        Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.plot, dpi=110)
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
