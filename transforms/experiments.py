"""A/B/N experiments: deterministic assignment, and the statistics of a report.

Assignment: a user's arm is a pure function of (experiment salt, pseudonym): a hashed uniform in [0, 1) falls in
the holdout share first, then in the arms' weight intervals. The same function serves every engine and the API.

Statistics (`report`), from per-arm counts of exposures, conversions (exposures with a reward) and reward sums:
- lift of each arm's conversion rate over the control (the first arm) with a 95% confidence interval (normal
  approximation on the difference of proportions);
- an always-valid p-value (mixture SPRT, Johari et al. 2017, normal mixture of variance `tau2` on the difference),
  valid under continuous monitoring: checking after every event keeps the false-positive rate at alpha;
- a sample-ratio-mismatch check: Pearson's chi-square of exposed users per arm against the configured weights
  (warn at p < 0.01, alert at p < 0.001): a broken assignment shows here before it biases the lift;
- guardrails: metrics an arm must not worsen by more than `max_drop` of the control's value (reward per exposure,
  or conversion rate): `breached` when the 95% interval of the arm's difference lies wholly below that
  tolerance, `at_risk` when only its estimate does, `ok` otherwise.
"""
from __future__ import annotations

import math

from .content import Experiment
from .draws import unit

HOLDOUT = "holdout"
SRM_WARN, SRM_ALERT = 0.01, 0.001


def assign(exp: Experiment, pseudonym: str) -> str:
    """The user's arm name (or "holdout")."""
    u = unit("experiment", exp.salt or exp.name, pseudonym)
    if u < exp.holdout:
        return HOLDOUT
    u = (u - exp.holdout) / (1.0 - exp.holdout)
    total = sum(a.weight for a in exp.arms)
    acc = 0.0
    for a in exp.arms:
        acc += a.weight / total
        if u < acc:
            return a.name
    return exp.arms[-1].name


def _norm_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def chi2_sf(x: float, k: int) -> float:
    """Survival function of the chi-square distribution with k degrees of freedom (regularised upper gamma)."""
    if x <= 0:
        return 1.0
    a = k / 2.0
    y = x / 2.0
    if y < a + 1:  # series for the lower gamma
        term = s = 1.0 / a
        n = a
        while term > s * 1e-15:
            n += 1
            term *= y / n
            s += term
        return max(0.0, 1.0 - s * math.exp(-y + a * math.log(y) - math.lgamma(a)))
    # continued fraction (Lentz) for the upper gamma
    b = y + 1 - a
    c = 1e300
    d = 1 / b
    h = d
    for i in range(1, 500):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = 1e-300 if abs(d) < 1e-300 else d
        c = b + an / c
        c = 1e-300 if abs(c) < 1e-300 else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return min(1.0, math.exp(-y + a * math.log(y) - math.lgamma(a)) * h)


def srm(counts: list[float], weights: list[float]) -> tuple[float, float]:
    """(chi-square, p-value) of observed counts against the expected shares."""
    n = sum(counts)
    if n == 0 or len(counts) < 2:
        return 0.0, 1.0
    tw = sum(weights)
    x2 = sum((c - n * w / tw) ** 2 / (n * w / tw) for c, w in zip(counts, weights))
    return x2, chi2_sf(x2, len(counts) - 1)


def msprt_p(n_a: float, x_a: float, n_b: float, x_b: float, tau2: float = 1e-3) -> float:
    """Always-valid p-value of H0: equal rates, after n_a / n_b trials with x_a / x_b successes (mixture SPRT with
    a N(0, tau2) mixture over the difference, the variance estimated from the pooled rate). The running minimum
    of these over the monitoring is what stays valid: `Sequential` keeps it."""
    if n_a < 1 or n_b < 1:
        return 1.0
    p = (x_a + x_b) / (n_a + n_b)
    v = p * (1 - p) * (1 / n_a + 1 / n_b)  # variance of the difference of the rates
    if v <= 0:
        return 1.0
    d = x_b / n_b - x_a / n_a
    lam = math.sqrt(v / (v + tau2)) * math.exp(tau2 * d * d / (2 * v * (v + tau2)))
    return min(1.0, 1.0 / lam)


class Sequential:
    """An always-valid p-value under continuous monitoring: the running minimum of `msprt_p`."""

    def __init__(self, tau2: float = 1e-3):
        self.tau2 = tau2
        self.p = 1.0

    def update(self, n_a, x_a, n_b, x_b) -> float:
        self.p = min(self.p, msprt_p(n_a, x_a, n_b, x_b, self.tau2))
        return self.p


def _mean_var(metric: str, c) -> tuple[float, float, float]:
    """(n, mean, variance) of a guardrail metric per exposure from an arm's counts."""
    n = c[0]
    if not n:
        return 0, 0.0, 0.0
    if metric == "conversion_rate":
        m = c[1] / n
        return n, m, m * (1 - m)
    m = c[2] / n
    ss = c[4] if len(c) > 4 else c[2]  # (without squares: rewards of 1)
    return n, m, max(ss / n - m * m, 0.0)


def reward_interval(c) -> tuple[float, float | None, float | None]:
    """(mean reward per exposure, its 95% interval low, high) from an arm's counts (the layout `count` keeps);
    no interval below two exposures."""
    n, m, v = _mean_var("reward_per_exposure", c)
    if n < 2:
        return m, None, None
    half = 1.959963984540054 * math.sqrt(v / n)
    return m, m - half, m + half


def guardrail(g, control, arm) -> dict:
    """One guardrail for an arm against the control: the difference with its 95% interval, and the status."""
    n0, m0, v0 = _mean_var(g.metric, control)
    n1, m1, v1 = _mean_var(g.metric, arm)
    out = {"metric": g.metric, "max_drop": g.max_drop, "control": m0, "arm": m1}
    if not n0 or not n1:
        return {**out, "status": "no_data"}
    diff = m1 - m0
    se = math.sqrt(v0 / n0 + v1 / n1)
    lo, hi = diff - 1.959963984540054 * se, diff + 1.959963984540054 * se
    floor = -g.max_drop * m0
    status = "breached" if hi < floor else "at_risk" if diff < floor else "ok"
    return {**out, "diff": diff, "diff_ci95": [lo, hi], "tolerance": floor, "status": status}


def report(exp: Experiment, counts: dict, alpha: float = 0.05, p_min: dict | None = None) -> dict:
    """The experiment's report as plain data (the CLI prints it; the dashboard reads it as JSON).

    counts: {arm: [exposures, conversions, reward_sum, users, reward_sum_of_squares]}; p_min: {arm: the running
    minimum p kept in stream} (None: the p-value at these counts only)."""
    arms = [a.name for a in exp.arms]
    rows = []
    c0 = counts.get(arms[0], [0, 0, 0.0, 0, 0.0])
    n0, x0 = c0[0], c0[1]
    r0 = x0 / n0 if n0 else 0.0
    for a in arms + ([HOLDOUT] if exp.holdout else []):
        n, x, rs, users = counts.get(a, [0, 0, 0.0, 0, 0.0])[:4]
        rate = x / n if n else 0.0
        row = {"arm": a, "exposures": n, "conversions": x, "rate": rate, "reward_per_exposure": rs / n if n else 0.0,
               "users": users}
        if a != arms[0] and a != HOLDOUT and n and n0:
            se = math.sqrt(r0 * (1 - r0) / n0 + rate * (1 - rate) / n)
            z = 1.959963984540054
            diff = rate - r0
            row["lift"] = diff / r0 if r0 else None
            row["diff"] = diff
            row["diff_ci95"] = [diff - z * se, diff + z * se]
            p = msprt_p(n0, x0, n, x)
            if p_min and a in p_min:
                p = min(p, p_min[a])
            row["p_always_valid"] = p
            row["significant"] = p < alpha
            if exp.guardrails:
                row["guardrails"] = [guardrail(g, c0, counts.get(a)) for g in exp.guardrails]
        rows.append(row)
    users = [counts.get(a.name, [0, 0, 0.0, 0])[3] for a in exp.arms]
    weights = [a.weight for a in exp.arms]
    x2, p_srm = srm(users, weights)
    level = "alert" if p_srm < SRM_ALERT else "warn" if p_srm < SRM_WARN else "ok"
    return {"experiment": exp.name, "slot": exp.slot, "alpha": alpha, "arms": rows,
            "srm": {"chi2": x2, "p": p_srm, "level": level}}


def count(counts: dict, arm: str, reward: float, first: bool) -> list:
    """Add one exposure's outcome to an experiment's per-arm counts: [exposures, conversions, reward sum, users
    (first exposures), reward sum of squares] (the layout `report` reads). Returns the arm's counts."""
    c = counts.setdefault(arm, [0, 0, 0.0, 0, 0.0])
    c[0] += 1
    c[1] += reward > 0
    c[2] += reward
    c[3] += bool(first)
    c[4] += reward * reward
    return c


def reports(experiments, outcomes, alpha: float = 0.05) -> list[dict]:
    """Every experiment's report from outcome records (dicts with slot, arm, reward, first, at, event_id; any
    order): replayed in event order with the always-valid p-value updated after every outcome, as a live stream
    is monitored."""
    exps = {e.slot: e for e in experiments}
    counts = {e.name: {} for e in exps.values()}
    seq = {e.name: {a.name: Sequential() for a in e.arms[1:]} for e in exps.values()}
    for o in sorted(outcomes, key=lambda o: (o["at"], o["event_id"], o["slot"])):
        e = exps.get(o["slot"])
        if e is None or o.get("arm") is None:
            continue
        count(counts[e.name], o["arm"], o["reward"], o["first"])
        control = counts[e.name].get(e.arms[0].name)
        if control and o["arm"] != HOLDOUT:
            for a, s in seq[e.name].items():
                t = counts[e.name].get(a)
                if t:
                    s.update(control[0], control[1], t[0], t[1])
    return [report(e, counts[e.name], alpha, {a: s.p for a, s in seq[e.name].items()}) for e in exps.values()]
