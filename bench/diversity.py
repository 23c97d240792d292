"""`python -m bench.diversity`: what a category cap across a page's slots buys in diversity and costs in clicks.

A closed loop through the core itself (transforms.choosing.Chooser on transforms.learning.Learner snapshots, as
every engine runs them): a page of `SLOTS` slots, each offering two variants of each of `CATS` categories; user
types that each prefer one category. Left alone, Thompson sampling fills every slot with the user type's
favourite category (a filter bubble); with `content.max_per_category` the page's later slots choose among the
categories not yet shown. Reported per cap: click-through per slot shown, intra-list diversity (the share of a
page's slot pairs with different categories), page coverage (the share of the catalogue's categories on a page)
and the share of slots showing something other than the user type's favourite, side by side in one run.
"""
from __future__ import annotations

import argparse

import numpy as np

from shiftstream.transforms.choosing import Chooser
from shiftstream.transforms.config import load_config
from shiftstream.transforms.content import parse_slots
from shiftstream.transforms.diversity import coverage, intra_list_diversity
from shiftstream.transforms.features import feature_names
from shiftstream.transforms.learning import Learner
from shiftstream.transforms.outputs import Outcome

CATS = ("books", "games", "music", "sports")
SLOTS = 3
TYPES = 3
EPOCH = 60_000          # ms of simulated event time per learning epoch
# click probability per user type (rows) and category (columns): each type's favourite is twice the rest or more
CTR = np.array([[0.090, 0.035, 0.030, 0.025],
                [0.030, 0.080, 0.040, 0.030],
                [0.035, 0.030, 0.025, 0.085]])
VARIANT_LIFT = (1.0, 0.85)  # the second variant of a category converts a little less


def catalogue():
    return parse_slots([{"name": f"slot{i}", "policy": "thompson", "context": "segment",
                         "variants": [{"id": f"slot{i}-{c}-{j}", "category": c} for c in CATS for j in range(2)]}
                        for i in range(SLOTS)])


def run(cap: int, pages: int, per_epoch: int, seed: int) -> dict:
    slots = catalogue()
    cfg = load_config().replace(**{"content.slots": slots, "content.epoch": EPOCH, "content.delay_epochs": 1,
                                   "content.max_per_category": cap})
    chooser, learner = Chooser(cfg), Learner(cfg.content, EPOCH)
    values = [0.0] * len(feature_names(cfg))
    rng = np.random.default_rng(seed)  # the same users and click draws for every cap (common random numbers)
    types = rng.integers(0, TYPES, size=pages)
    u = rng.random((pages, SLOTS))
    clicks = shown = 0
    ild, cover, outside = [], [], []
    for n in range(pages):
        t = n * EPOCH // per_epoch
        if n % per_epoch == 0:
            learner.seal(t - 1)
        c = int(types[n])
        choice = chooser.choose(f"user{n % 5000}", t, values, f"type{c}", learner)
        cats = []
        for i, s in enumerate(slots):
            vid = choice[s.name]["variant"]
            _, cat, j = vid.split("-")
            p = CTR[c, CATS.index(cat)] * VARIANT_LIFT[int(j)]
            r = float(u[n, i] < p)
            clicks += r
            shown += 1
            cats.append(cat)
            k = [v.id for v in s.variants].index(vid)
            learner.add(Outcome(f"user{n}", s.name, f"type{c}", k, vid, None, r, t, f"e{n}", None, False))
        if n >= pages * 3 // 4:  # the measures once learning has settled
            ild.append(intra_list_diversity(cats))
            cover.append(coverage(cats, CATS))
            fav = CATS[int(CTR[c].argmax())]
            outside.append(sum(x != fav for x in cats) / len(cats))
    return {"ctr": clicks / shown, "ild": float(np.mean(ild)), "coverage": float(np.mean(cover)),
            "outside": float(np.mean(outside))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.diversity", description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=40_000, help="pages shown (default 40,000)")
    ap.add_argument("--per-epoch", type=int, default=400, help="pages per learning epoch (default 400)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    print(f"closed loop through the core's Chooser and Learner: {args.pages:,} pages of {SLOTS} Thompson slots, "
          f"{len(CATS)} categories x 2 variants per slot, {TYPES} user types, a snapshot every {args.per_epoch} "
          "pages\n")
    print("| max_per_category | CTR per slot | vs no cap | intra-list diversity | page coverage of the catalogue | "
          "slots outside the favourite |")
    print("|---|---|---|---|---|---|")
    base = None
    for cap in (0, 2, 1):
        r = run(cap, args.pages, args.per_epoch, args.seed)
        base = base or r["ctr"]
        print(f"| {cap or 'none'} | {r['ctr']:.4f} | {r['ctr'] / base - 1:+.1%} | {r['ild']:.2f} | "
              f"{r['coverage']:.2f} | {r['outside']:.0%} |")
    top = np.sort(CTR, axis=1)[:, ::-1]
    best = {0: top[:, 0].mean(), 2: (2 * top[:, 0] + top[:, 1]).mean() / 3, 1: top[:, :3].mean()}
    print("\n(the diversity and coverage columns are over the last quarter of the pages, once learning settled; a "
          "page's best possible CTR per slot, knowing each type's rates: " +
          ", ".join(f"cap {k or 'none'} {v * VARIANT_LIFT[0]:.4f}" for k, v in best.items()) + ")")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
