"""Bandit policies, one per file, the same verbs everywhere (River style), state as plain lists:

    new(k, p)                         -> stats: the prior, one entry per arm (p: the slot's settings)
    update(stats, arm, reward, x)     fold one outcome in (in place); x: the context vector (LinUCB only)
    decay(stats, epochs, p)           forget, `epochs` epochs of event time on (discounting, drift resets)
    prepare(stats, seed, p)           -> what choices from this snapshot share (computed once per snapshot)
    choose(prepared, x, u, allowed)   -> (arm index, propensity); u: the user's uniform draw in [0, 1); allowed:
                                         the arm indices a diversity cap leaves (None: all), the propensity
                                         then being the policy's probability given that restriction

A choice is a function of the snapshot and one hashed uniform, so it is exact and replayable, and its propensity
(the probability this policy had of choosing that arm) is exact too: what off-policy evaluation needs.
"""
from __future__ import annotations

from . import epsilon_greedy, fixed, linucb, thompson, ucb1

POLICIES = {"thompson": thompson, "ucb1": ucb1, "linucb": linucb, "epsilon_greedy": epsilon_greedy, "fixed": fixed}


def policy(name: str):
    try:
        return POLICIES[name]
    except KeyError:
        raise ValueError(f"unknown policy {name!r} (known: {', '.join(POLICIES)})") from None
