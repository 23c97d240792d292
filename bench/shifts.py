"""Preference-shift detection scored against the simulator's ground truth, beside River's ADWIN and Page-Hinkley.

    python -m bench.shifts [--users N --events M --seed S --plot PATH]

Every detector sees the same per-user streams of interest events (the categories of page views, clicks,
hovers, searches, cart adds and purchases, in event time). A detection counts as a hit when it names the true
shift's target category, comes after the shift and within `--max-delay-h` hours; each true shift is hit once.
"""
from __future__ import annotations

import argparse
import statistics
from collections import Counter, defaultdict, deque
from dataclasses import dataclass

from shiftstream.runners.simulator import SimConfig, simulate
from shiftstream.transforms.config import Config, load_config
from shiftstream.transforms.events import CODE, INTEREST_WEIGHT
from shiftstream.transforms.shift import ShiftDetector, ShiftParams

HOUR = 3_600_000


@dataclass
class Score:
    name: str
    detections: int
    hits: int
    truths: int
    delays_events: list
    delays_s: list

    @property
    def precision(self) -> float:
        return self.hits / self.detections if self.detections else 0.0

    @property
    def recall(self) -> float:
        return self.hits / self.truths if self.truths else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def row(self) -> str:
        med_e = statistics.median(self.delays_events) if self.delays_events else float("nan")
        med_s = statistics.median(self.delays_s) if self.delays_s else float("nan")
        return (f"| {self.name} | {self.detections} | {self.precision:.2f} | {self.recall:.2f} | {self.f1:.2f} | "
                f"{med_e:.0f} | {med_s / 60:.0f} |")


def interest_streams(events: list[dict], gap_ms: int = 30 * 60_000) -> dict[str, list[tuple[int, str, int]]]:
    """Per user, (ts, category, session start) of interest events in event time, duplicates removed by id;
    sessions split on `gap_ms` of inactivity over all of the user's events."""
    seen = set()
    streams: dict[str, list] = defaultdict(list)
    last: dict[str, int] = {}
    start: dict[str, int] = {}
    for e in sorted(events, key=lambda e: (e["ts"], e["event_id"])):
        if e["event_id"] in seen:
            continue
        seen.add(e["event_id"])
        u, ts = e["user_id"], e["ts"]
        if u not in last or ts - last[u] >= gap_ms:
            start[u] = ts
        last[u] = ts
        if e["category"] is None or not INTEREST_WEIGHT[CODE[e["event_type"]]]:
            continue
        streams[u].append((ts, e["category"], start[u]))
    return streams


def detect_core(stream: list[tuple[int, str]], cfg: Config) -> list[tuple[int, str, str]]:
    """shiftstream's detector (transforms/shift.py) with the configured settings."""
    sh = cfg.shift
    d = ShiftDetector()
    params = ShiftParams.from_config(sh, cfg.profile.max_categories)
    out = []
    for ts, cat, session in stream:
        det = d.update(cat, ts, params, session if sh.confirm_across_sessions else None)
        if det:
            out.append((det.ts, det.from_category, det.to_category))
    return out


def detect_river(stream: list[tuple[int, str]], make, recent: int = 10) -> list[tuple[int, str, str]]:
    """A River drift detector on the 0/1 signal 'this event is in the long-term top category'.

    On drift: from = the top category so far, to = the most frequent one in the last `recent` events; the
    long-term counts restart from the recent window."""
    det = make()
    counts: Counter = Counter()
    window: deque = deque(maxlen=recent)
    out = []
    for ts, cat, _session in stream:
        top = counts.most_common(1)[0][0] if counts else cat
        det.update(1.0 if cat == top else 0.0)
        counts[cat] += 1
        window.append(cat)
        if det.drift_detected and len(counts) > 1:
            to = Counter(window).most_common(1)[0][0]
            if to != top:
                out.append((ts, top, to))
                counts = Counter(window)
                det = make()
    return out


def score(name: str, detections: dict[str, list], truth: dict, streams: dict, max_delay_ms: int) -> Score:
    shifts = {s["user_id"]: s for s in truth["shifts"]}
    hits, n_det, de, ds = 0, 0, [], []
    for user, dets in detections.items():
        n_det += len(dets)
        s = shifts.get(user)
        if s is None:
            continue
        for ts, _frm, to in dets:
            if to == s["to"] and s["ts"] <= ts <= s["ts"] + max_delay_ms:
                hits += 1
                ds.append((ts - s["ts"]) / 1000)
                de.append(sum(1 for t, *_ in streams[user] if s["ts"] <= t <= ts))
                break
    return Score(name, n_det, hits, len(shifts), de, ds)


def evaluate(events: list[dict], truth: dict, cfg: Config, max_delay_ms: int = 72 * HOUR,
             detections_out: dict | None = None) -> list[Score]:
    """Scores of shiftstream's detector and River's ADWIN and Page-Hinkley on the same streams."""
    from river.drift import ADWIN, PageHinkley

    streams = interest_streams(events)
    methods = {
        "shiftstream (short/long EW divergence)": lambda s: detect_core(s, cfg),
        "shiftstream, no cross-session confirmation": lambda s: detect_core(
            s, cfg.replace(**{"shift.confirm_across_sessions": False})),
        # River's detectors with the settings that scored best on the tuning seeds (42, 99), and ADWIN's default
        "River ADWIN (delta=0.6, tuned)": lambda s: detect_river(s, lambda: ADWIN(delta=0.6), recent=20),
        "River Page-Hinkley (threshold=12, tuned)": lambda s: detect_river(
            s, lambda: PageHinkley(min_instances=20, delta=0.005, threshold=12.0, mode="down"), recent=20),
        "River ADWIN (delta=0.002, default)": lambda s: detect_river(s, lambda: ADWIN(delta=0.002), recent=20),
    }
    scores = []
    for name, fn in methods.items():
        dets = {u: fn(s) for u, s in streams.items()}
        if detections_out is not None:
            detections_out[name] = dets
        scores.append(score(name, dets, truth, streams, max_delay_ms))
    return scores


def plot_user(path: str, user: str, events: list[dict], truth: dict, detections: dict) -> None:
    """One user's interest over time (rolling share per category), the true shift and each method's detections."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stream = interest_streams(events)[user]
    shift = next(s for s in truth["shifts"] if s["user_id"] == user)
    cats = [shift["from"], shift["to"]]
    xs = list(range(len(stream)))
    fig, ax = plt.subplots(figsize=(13, 4.4))
    for c in cats:
        win: deque = deque(maxlen=15)
        ys = []
        for _, cat, _s in stream:
            win.append(cat == c)
            ys.append(sum(win) / len(win))
        ax.plot(xs, ys, label=f"share of '{c}' (last 15 interest events)")
    idx = lambda ts: next((i for i, (t, *_) in enumerate(stream) if t >= ts), len(stream) - 1)  # noqa: E731
    ax.axvline(idx(shift["ts"]), color="black", linestyle="--", label="true shift")
    markers = ["o", "s", "^", "D", "v", "P"]
    for k, (name, dets) in enumerate(detections.items()):
        for j, (ts, _f, to) in enumerate(dets.get(user, [])):
            ax.scatter([idx(ts)], [1.03 + 0.035 * k], marker=markers[k % len(markers)], s=55, color=f"C{k + 2}",
                       label=f"{name}: detects -> {to}" if j == 0 else None)
    ax.set_xlabel("interest events of one user (event-time order)")
    ax.set_ylabel("share")
    ax.set_ylim(-0.02, 1.25)
    ax.set_title(f"Preference shift {shift['from']} -> {shift['to']} (simulated {user})")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--seed", type=int, default=7, help="7 is held out: settings were tuned on 42 and 99")
    ap.add_argument("--max-delay-h", type=float, default=72)
    ap.add_argument("--plot", default="docs/shift-timeline.png")
    a = ap.parse_args(argv)
    sim = simulate(SimConfig(users=a.users, events=a.events, seed=a.seed))
    dets: dict = {}
    scores = evaluate(sim.events, sim.truth, load_config(), int(a.max_delay_h * HOUR), dets)
    print(f"{a.users} users, {a.events} events, seed {a.seed}, {len(sim.truth['shifts'])} true shifts, "
          f"hit = right target within {a.max_delay_h:g} h")
    print("| detector | detections | precision | recall | F1 | median delay (events) | median delay (min) |")
    print("|---|---|---|---|---|---|---|")
    for s in scores:
        print(s.row())
    if a.plot:
        core = dets[scores[0].name]
        shifts = {s["user_id"]: s for s in sim.truth["shifts"]}
        user = next((u for u in sorted(shifts) if any(d[2] == shifts[u]["to"] for d in core.get(u, []))),
                    sorted(shifts)[0])
        plot_user(a.plot, user, sim.events, sim.truth, dets)
        print(f"plot: {a.plot} ({user}: the first simulated shift, by user id, that shiftstream caught)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
