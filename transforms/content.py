"""The content catalogue, its policies and its experiments, as configured (`content:` in the config file).

A slot (a place on a page, e.g. `homepage_hero`) has variants (content ids with a category and tags) and a policy
that chooses among them per user (transforms/policies); a feature flag (`enabled: false`) switches the slot's
personalization off, so everyone gets its fallback. An experiment splits users by a hash of (salt, pseudonym) into
weighted arms (plus a holdout), each arm either the slot's policy or one fixed variant.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .policies import POLICIES

CONTEXTS = ("none", "segment")


@dataclass(frozen=True)
class Variant:
    id: str
    category: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Slot:
    name: str
    variants: tuple[Variant, ...]
    policy: str = "thompson"
    fallback: str = ""                   # a variant id; "" -> the first variant
    enabled: bool = True                 # the feature flag: false -> the fallback for everyone
    context: str = "segment"             # what the statistics are split by: none | segment (the rule segment)
    features: tuple[str, ...] = ()       # LinUCB's context vector: these decision features (plus a bias term)
    discount: float = 1.0                # long-run statistics times this at every epoch (1: kept)
    prior: tuple[float, float] = (1.0, 1.0)  # Thompson's Beta prior
    alpha: float = 1.0                   # UCB1 / LinUCB exploration weight
    epsilon: float = 0.1                 # epsilon-greedy exploration rate
    ridge: float = 1.0                   # LinUCB's prior precision
    drift: bool = True                   # an arm whose recent mean moved from its long-run one forgets the past
    drift_discount: float = 0.7          # the recent statistics' discount per epoch (their memory)
    drift_z: float = 2.0                 # how many standard errors of movement count as a shift
    drift_min: float = 30.0              # recent (discounted) exposures needed before a shift can be called
    tuned: bool = False                  # UCB1: UCB1-Tuned's variance-aware bonus

    @property
    def dim(self) -> int:
        return len(self.features) + 1

    @property
    def fallback_index(self) -> int:
        ids = [v.id for v in self.variants]
        return ids.index(self.fallback) if self.fallback else 0


@dataclass(frozen=True)
class Arm:
    name: str
    weight: float = 1.0
    variant: str | None = None           # a fixed variant of the slot; None: the slot's policy chooses


GUARDRAIL_METRICS = ("reward_per_exposure", "conversion_rate")


@dataclass(frozen=True)
class Guardrail:
    metric: str = "reward_per_exposure"  # reward_per_exposure (a purchase counts its value) | conversion_rate
    max_drop: float = 0.05               # the relative drop against the control an arm may not be shown to cause


@dataclass(frozen=True)
class Experiment:
    name: str
    slot: str
    arms: tuple[Arm, ...]
    salt: str = ""                       # "" -> the experiment's name
    holdout: float = 0.0                 # share of users held out: they get the slot's fallback, and are counted
    enabled: bool = True
    guardrails: tuple[Guardrail, ...] = ()  # metrics no arm may worsen beyond a tolerance (the report flags it)


@dataclass(frozen=True)
class ContentConfig:
    slots: tuple[Slot, ...] = ()
    experiments: tuple[Experiment, ...] = ()


_SLOT_KEYS = ("name", "variants", "policy", "fallback", "enabled", "context", "features", "discount", "prior",
              "alpha", "epsilon", "ridge", "drift", "drift_discount", "drift_z", "drift_min", "tuned")
_EXP_KEYS = ("name", "slot", "arms", "salt", "holdout", "enabled", "guardrails")


def _num(where: str, v: Any, lo: float, hi: float) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
        raise ValueError(f"{where}: expected a number from {lo} to {hi}, got {v!r}")
    return float(v)


def _name(where: str, v: Any) -> str:
    if not isinstance(v, str) or not v or len(v) > 128:
        raise ValueError(f"{where}: expected a non-empty name (up to 128 characters), got {v!r}")
    return v


def _flag(where: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"{where}: expected true or false, got {v!r}")
    return v


def _keys(where: str, d: Any, known: tuple) -> dict:
    if not isinstance(d, dict):
        raise ValueError(f"{where}: expected a mapping, got {d!r}")
    unknown = sorted(set(d) - set(known))
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(known)})")
    return d


def _entry(kind: str, i: int, d: Any, known: tuple, seen: set) -> tuple[dict, str, str]:
    """One named entry of a list: its keys checked, its name unique; (the mapping, the name, how to call it)."""
    d = _keys(f"{kind} {i}", d, known)
    name = _name(f"{kind} {i}: name", d.get("name"))
    w = f"{kind} {name!r}"
    if name in seen:
        raise ValueError(f"{w}: defined twice")
    seen.add(name)
    return d, name, w


def parse_slots(value: Any) -> tuple[Slot, ...]:
    if not isinstance(value, list):
        raise ValueError(f"expected a list of slots, got {value!r}")
    slots, seen_slots, seen_variants = [], set(), {}
    for i, d in enumerate(value):
        d, name, w = _entry("slot", i, d, _SLOT_KEYS, seen_slots)
        vs = d.get("variants")
        if not isinstance(vs, list) or len(vs) < 1:
            raise ValueError(f"{w}: variants: expected a list of at least one {{id, category, tags}}")
        variants = []
        for j, v in enumerate(vs):
            v = {"id": v} if isinstance(v, str) else _keys(f"{w}: variant {j}", v, ("id", "category", "tags"))
            vid = _name(f"{w}: variant {j}: id", v.get("id"))
            if vid in seen_variants:
                raise ValueError(f"{w}: variant {vid!r} is also in slot {seen_variants[vid]!r} (an impression's "
                                 "variant must name one slot)")
            seen_variants[vid] = name
            tags = v.get("tags", [])
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise ValueError(f"{w}: variant {vid!r}: tags: expected a list of strings, got {tags!r}")
            cat = v.get("category")
            if cat is not None and not isinstance(cat, str):
                raise ValueError(f"{w}: variant {vid!r}: category: expected a string, got {cat!r}")
            variants.append(Variant(vid, cat, tuple(tags)))
        policy = d.get("policy", "thompson")
        if policy not in POLICIES:
            raise ValueError(f"{w}: policy: must be one of {', '.join(POLICIES)}, got {policy!r}")
        ids = [v.id for v in variants]
        fallback = d.get("fallback", "")
        if fallback and fallback not in ids:
            raise ValueError(f"{w}: fallback {fallback!r} is not one of its variants ({', '.join(ids)})")
        context = d.get("context", "segment")
        if context not in CONTEXTS:
            raise ValueError(f"{w}: context: must be one of {', '.join(CONTEXTS)}, got {context!r}")
        feats = d.get("features", [])
        if not isinstance(feats, list) or not all(isinstance(f, str) for f in feats) or len(feats) > 16:
            raise ValueError(f"{w}: features: expected a list of up to 16 decision feature names, got {feats!r}")
        if policy == "linucb" and not feats:
            raise ValueError(f"{w}: linucb needs features (decision feature names for its context vector)")
        prior = d.get("prior", [1.0, 1.0])
        if not isinstance(prior, list) or len(prior) != 2:
            raise ValueError(f"{w}: prior: expected [alpha, beta], got {prior!r}")
        slots.append(Slot(
            name, tuple(variants), policy, fallback, _flag(f"{w}: enabled", d.get("enabled", True)), context,
            tuple(feats), _num(f"{w}: discount", d.get("discount", 1.0), 0.01, 1.0),
            (_num(f"{w}: prior", prior[0], 1e-3, 1e6), _num(f"{w}: prior", prior[1], 1e-3, 1e6)),
            _num(f"{w}: alpha", d.get("alpha", 1.0), 0.0, 100.0),
            _num(f"{w}: epsilon", d.get("epsilon", 0.1), 0.0, 0.99),
            _num(f"{w}: ridge", d.get("ridge", 1.0), 1e-6, 1e6),
            _flag(f"{w}: drift", d.get("drift", True)),
            _num(f"{w}: drift_discount", d.get("drift_discount", 0.7), 0.01, 0.999),
            _num(f"{w}: drift_z", d.get("drift_z", 2.0), 0.5, 100.0),
            _num(f"{w}: drift_min", d.get("drift_min", 30.0), 1.0, 1e9),
            _flag(f"{w}: tuned", d.get("tuned", False))))
    return tuple(slots)


def parse_experiments(value: Any) -> tuple[Experiment, ...]:
    if not isinstance(value, list):
        raise ValueError(f"expected a list of experiments, got {value!r}")
    out, seen = [], set()
    for i, d in enumerate(value):
        d, name, w = _entry("experiment", i, d, _EXP_KEYS, seen)
        arms_in = d.get("arms")
        if not isinstance(arms_in, list) or len(arms_in) < 2:
            raise ValueError(f"{w}: arms: expected a list of at least two {{name, weight, variant}}")
        arms, names = [], set()
        for j, a in enumerate(arms_in):
            a = _keys(f"{w}: arm {j}", a, ("name", "weight", "variant"))
            an = _name(f"{w}: arm {j}: name", a.get("name"))
            if an in names or an == "holdout":
                raise ValueError(f"{w}: arm {an!r}: names must be unique and not 'holdout'")
            names.add(an)
            v = a.get("variant")
            if v is not None:
                _name(f"{w}: arm {an!r}: variant", v)
            arms.append(Arm(an, _num(f"{w}: arm {an!r}: weight", a.get("weight", 1.0), 1e-6, 1e6), v))
        salt = d.get("salt", "")
        if not isinstance(salt, str):
            raise ValueError(f"{w}: salt: expected a string, got {salt!r}")
        guards = d.get("guardrails", [])
        if not isinstance(guards, list):
            raise ValueError(f"{w}: guardrails: expected a list of {{metric, max_drop}}, got {guards!r}")
        rails = []
        for j, g in enumerate(guards):
            g = _keys(f"{w}: guardrail {j}", g, ("metric", "max_drop"))
            metric = g.get("metric", "reward_per_exposure")
            if metric not in GUARDRAIL_METRICS:
                raise ValueError(f"{w}: guardrail {j}: metric: must be one of {', '.join(GUARDRAIL_METRICS)}, "
                                 f"got {metric!r}")
            rails.append(Guardrail(metric, _num(f"{w}: guardrail {j}: max_drop", g.get("max_drop", 0.05), 0.0, 1.0)))
        out.append(Experiment(name, _name(f"{w}: slot", d.get("slot")), tuple(arms), salt,
                              _num(f"{w}: holdout", d.get("holdout", 0.0), 0.0, 0.5),
                              _flag(f"{w}: enabled", d.get("enabled", True)), tuple(rails)))
    return tuple(out)


def cross_check(slots: tuple[Slot, ...], experiments: tuple[Experiment, ...], features: list[str]) -> list[str]:
    problems = []
    by_name = {s.name: s for s in slots}
    for s in slots:
        for f in s.features:
            if f not in features:
                problems.append(f"content.slots: slot {s.name!r}: feature {f!r} is not a decision feature "
                                f"(known: {', '.join(features)})")
    used = set()
    for e in experiments:
        s = by_name.get(e.slot)
        if s is None:
            problems.append(f"content.experiments: {e.name!r}: slot {e.slot!r} is not a configured slot")
            continue
        if e.slot in used:
            problems.append(f"content.experiments: {e.name!r}: slot {e.slot!r} already has an experiment")
        used.add(e.slot)
        ids = {v.id for v in s.variants}
        for a in e.arms:
            if a.variant is not None and a.variant not in ids:
                problems.append(f"content.experiments: {e.name!r}: arm {a.name!r}: variant {a.variant!r} is not "
                                f"in slot {s.name!r}")
    return problems
