"""LinUCB with disjoint models (Li et al. 2010) over a small context vector, discounted: per arm A = lambda I +
sum x x^T and b = sum r x; the arm with the highest theta.x + alpha * sqrt(x^T A^-1 x), theta = A^-1 b.

Pure-Python Cholesky (the context has a handful of dimensions): the same result on every build, where a BLAS-backed
solve may differ in the last bits between machines. A^-1 is formed once per snapshot (`prepare`).

stats: [[A as a flat row-major list, b], ...] per arm."""
from __future__ import annotations

import math

from ._pick import argmax_ties


def new(k: int, p):
    dim, ridge = p.dim, p.ridge
    return [[[ridge if i == j else 0.0 for i in range(dim) for j in range(dim)], [0.0] * dim] for _ in range(k)]


def update(stats, arm: int, reward: float, x) -> None:
    a, b = stats[arm]
    d = len(b)
    for i in range(d):
        xi = x[i]
        if xi:
            row = i * d
            for j in range(d):
                a[row + j] += xi * x[j]
            b[i] += reward * xi


def decay(stats, epochs: int, p) -> None:
    """A -> f * A + (1 - f) * ridge * I (the prior is kept), b -> f * b, f = discount ** epochs."""
    if epochs <= 0 or p.discount == 1.0:
        return
    factor = p.discount ** epochs
    for a, b in stats:
        d = len(b)
        for k in range(d * d):
            a[k] *= factor
        for i in range(d):
            a[i * d + i] += (1 - factor) * p.ridge
            b[i] *= factor


def cholesky(a, d):
    low = [0.0] * (d * d)
    for i in range(d):
        for j in range(i + 1):
            s = a[i * d + j] - sum(low[i * d + k] * low[j * d + k] for k in range(j))
            if i == j:
                low[i * d + i] = math.sqrt(max(s, 1e-12))
            else:
                low[i * d + j] = s / low[j * d + j]
    return low


def inverse(a, d):
    """A^-1 of a symmetric positive definite A, by Cholesky."""
    low = cholesky(a, d)
    inv = [0.0] * (d * d)
    for c in range(d):
        y = [0.0] * d  # solve L y = e_c
        for i in range(d):
            y[i] = ((1.0 if i == c else 0.0) - sum(low[i * d + k] * y[k] for k in range(i))) / low[i * d + i]
        z = [0.0] * d  # solve L^T z = y
        for i in reversed(range(d)):
            z[i] = (y[i] - sum(low[k * d + i] * z[k] for k in range(i + 1, d))) / low[i * d + i]
        for i in range(d):
            inv[i * d + c] = z[i]
    return inv


def prepare(stats, seed, p):
    out = []
    for a, b in stats:
        d = len(b)
        inv = inverse(a, d)
        theta = [sum(inv[i * d + j] * b[j] for j in range(d)) for i in range(d)]
        out.append((inv, theta))
    return p.alpha, out


def scores(prepared, x):
    alpha, models = prepared
    out = []
    for inv, theta in models:
        d = len(theta)
        mean = sum(theta[i] * x[i] for i in range(d))
        var = sum(x[i] * sum(inv[i * d + j] * x[j] for j in range(d)) for i in range(d))
        out.append(mean + alpha * math.sqrt(max(var, 0.0)))
    return out


def choose(prepared, x, u: float, allowed=None) -> tuple[int, float]:
    return argmax_ties(scores(prepared, x), u, allowed)
