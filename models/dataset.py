"""Training data from event logs, built by running the core itself, so models see exactly the job's features."""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

import numpy as np

from shiftstream.transforms.config import Config
from shiftstream.transforms.core import Core
from shiftstream.transforms.events import INTEREST_WEIGHT, PURCHASE, check_record, from_record
from shiftstream.transforms.features import feature_names, feature_row, recent_categories

SEQ_LEN = 10


@dataclass
class Dataset:
    """Rows in event-time order: features X, propensity labels y, times ts; sequences for next interest."""

    names: tuple[str, ...]
    X: np.ndarray          # float32 [n, features]
    y: np.ndarray          # int [n]: the session goes on to convert
    ts: np.ndarray         # int64 [n]
    session_X: np.ndarray  # float32 [m, features]: one row per closed session (for clustering)
    seq: np.ndarray        # int64 [k, SEQ_LEN]: recent interest categories (0 = padding), for next interest
    seq_next: np.ndarray   # int64 [k]: the category that came next
    seq_ts: np.ndarray
    vocabulary: tuple[str, ...]

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for a in (self.X, self.y, self.ts, self.seq, self.seq_next):
            h.update(np.ascontiguousarray(a).tobytes())
        return "sha256:" + h.hexdigest()


def build(records, cfg: Config, vocabulary: tuple[str, ...], max_rows: int = 60_000, seed: int = 0) -> Dataset:
    """Replay events per user through the core in event time and sample feature rows with their outcomes."""
    rng = random.Random(seed)
    recs = sorted((r for r in records if check_record(r) is None), key=lambda r: (r["ts"], r["event_id"]))
    core = Core(cfg)
    states: dict = {}
    seen: set = set()
    open_rows: dict = {}  # user -> rows of the current session awaiting their label
    rows, labels, times, session_rows = [], [], [], []
    index = {c: i + 1 for i, c in enumerate(vocabulary)}
    seqs, nexts, seq_ts = [], [], []
    keep = 1.0
    for r in recs:
        if r["event_id"] in seen:
            continue
        seen.add(r["event_id"])
        u = r["user_id"]
        ev = from_record(r)
        st = states.get(u)
        if st is not None and st.session_open and st.session.ends_before(ev.ts, core.gap, core.max_length):
            _close(open_rows.pop(u, None), rows, labels, times)
            session_rows.append(feature_row(st, cfg))
        if ev.category is not None and INTEREST_WEIGHT[ev.code] and st is not None:
            recent = recent_categories(st, SEQ_LEN)
            if len(recent) >= 3 and ev.category in index and rng.random() < 0.5:
                seqs.append([0] * (SEQ_LEN - len(recent)) + [index.get(c, 0) for c in recent])
                nexts.append(index[ev.category])
                seq_ts.append(ev.ts)
        st, _ = core.accept(st, u, ev, ev.ts - 1)
        st, _ = core.advance(st, u, ev.ts)
        states[u] = st
        pending = open_rows.setdefault(u, [[], False])
        if ev.code == PURCHASE:
            pending[1] = True
        elif not pending[1] and rng.random() < keep:
            pending[0].append((feature_row(st, cfg), ev.ts))
    for u, pending in open_rows.items():
        _close(pending, rows, labels, times)
    names = feature_names(cfg)
    order = np.argsort(np.array(times, dtype=np.int64), kind="stable")
    if len(order) > max_rows:  # thin evenly in time, keeping the order
        order = order[np.linspace(0, len(order) - 1, max_rows).astype(int)]
    X = np.asarray(rows, dtype=np.float32)[order]
    return Dataset(names, X, np.asarray(labels, dtype=np.int64)[order], np.asarray(times, dtype=np.int64)[order],
                   np.asarray(session_rows, dtype=np.float32).reshape(-1, len(names)),
                   np.asarray(seqs, dtype=np.int64).reshape(-1, SEQ_LEN), np.asarray(nexts, dtype=np.int64),
                   np.asarray(seq_ts, dtype=np.int64), tuple(vocabulary))


def _close(pending, rows, labels, times) -> None:
    """A session ended: its sampled rows get the label 'a purchase came after'."""
    if not pending:
        return
    samples, converted = pending
    for values, ts in samples:
        rows.append(values)
        labels.append(1 if converted else 0)
        times.append(ts)


def temporal_split(n: int, fractions=(0.6, 0.2)) -> tuple[slice, slice, slice]:
    """Train, validation and test slices of time-ordered rows: no future leaks into the past."""
    a = int(n * fractions[0])
    b = int(n * (fractions[0] + fractions[1]))
    return slice(0, a), slice(a, b), slice(b, n)
