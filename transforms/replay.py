"""The replay method (Li, Chu, Langford, Wang 2011): a slot's configured policy judged on logged impressions
whose variants were shown uniformly at random, without running it on live users.

Walk the logged exposures in event order; at each, the policy chooses from the snapshot it would have had, built
from the logged outcomes it has *matched* so far (only there does it see a reward for its own choice); where its
choice is the logged variant, the outcome counts, and the policy learns from it. With a uniform logging policy
the matched outcomes are an unbiased sample of what the policy would have got, so their mean reward estimates
its click-through as it learns (about 1 / arms of the log is used). The input is an `outcomes.jsonl` any engine
wrote (they write the same records), so the method runs on files through every engine. Deterministic: choices
draw from hashes, snapshots come from `learning.Learner` in epochs as everywhere else.
"""
from __future__ import annotations

import copy
import math

from .draws import unit
from .experiments import chi2_sf
from .learning import Learner
from .outputs import Outcome
from .policies import policy


def replay(content, outcomes, delay: int) -> dict:
    """{slot: its replay estimate} for every configured slot with logged outcomes. `content`: the config's
    `content` section (the slots' policies); `outcomes`: Outcome records; `delay`: the snapshot delay in epochs."""
    epoch, window = content.epoch, content.attribution_window
    slots = {s.name: s for s in content.slots if s.enabled}
    by_slot: dict = {}
    for o in outcomes:
        if o.slot in slots and 0 <= o.arm_index < len(slots[o.slot].variants):
            by_slot.setdefault(o.slot, []).append(o)
    out = {}
    for name, logged in sorted(by_slot.items()):
        s = slots[name]
        p = policy(s.policy)
        k = len(s.variants)
        learner = Learner(type(content)(slots=(s,), epoch=epoch), epoch)
        logged.sort(key=lambda o: (o.at, o.event_id))
        shown = [0] * k
        matched = clicks = 0
        reward = reward_sq = 0.0
        cache: dict = {}
        for o in logged:
            t = o.at - window  # the exposure's time
            shown[o.arm_index] += 1
            learner.seal(t)
            version = t // epoch - delay
            ck = (o.context, version)
            prepared = cache.get(ck)
            if prepared is None:
                st, lag = learner.stats(version, name, o.context)
                if st is None:
                    st = p.new(k, s)
                elif lag:
                    st = copy.deepcopy(st)
                    p.decay(st, lag, s)
                prepared = cache[ck] = p.prepare(st, (name, o.context, version), s)
            arm, _ = p.choose(prepared, tuple(o.x) if o.x is not None else None,
                              unit("replay", name, o.key, o.event_id, version))
            if arm != o.arm_index:
                continue
            matched += 1
            clicks += o.reward > 0
            reward += o.reward
            reward_sq += o.reward * o.reward
            learner.add(o)  # (it closes after the sealed epochs: the snapshots cached stay what they were)
        n = len(logged)
        expected = n / k
        x2 = sum((c - expected) ** 2 / expected for c in shown) if n else 0.0
        logged_ctr = sum(o.reward > 0 for o in logged) / n if n else 0.0
        ctr = clicks / matched if matched else None
        se = math.sqrt(ctr * (1 - ctr) / matched) if matched else None
        out[name] = {
            "policy": s.policy, "logged": n, "matched": matched, "logged_ctr": logged_ctr,
            "replay_ctr": ctr, "ctr_ci95": [ctr - 1.96 * se, ctr + 1.96 * se] if matched else None,
            "replay_reward_per_exposure": reward / matched if matched else None,
            "lift_over_logged": (ctr / logged_ctr - 1) if matched and logged_ctr else None,
            # the method needs uniform logging: a chi-square of the shown variants against equal shares
            "uniform_logging_p": chi2_sf(x2, k - 1) if n and k > 1 else 1.0,
        }
    return out


def outcome_from_dict(d: dict) -> Outcome:
    return Outcome(**{f: d[f] for f in Outcome._fields})
