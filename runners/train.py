"""`shiftstream train` and `shiftstream models compare`: model sets from event logs, and live-vs-shadow checks."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from shiftstream.schemas import read_container, read_frames


def _records(path: Path, cfg):
    if path.suffix == ".frames":
        from shiftstream.schemas import wire_codec
        from shiftstream.schemas.errors import DecodeError

        decode = wire_codec(cfg.kafka.schema_registry_url, "interaction", cfg.kafka.writer_schemas).decode
        for m in read_frames(path):
            try:
                yield decode(m)
            except DecodeError:
                continue
    else:
        yield from read_container(path, "interaction")


def add_train_arguments(p) -> None:
    p.add_argument("--events", type=Path, required=True, help=".avro or .frames events to learn from")
    p.add_argument("--truth", type=Path, help="the simulator's truth sidecar (gives the category vocabulary)")
    p.add_argument("--out", type=Path, required=True, help="models directory; the set goes to OUT/<version>/")
    p.add_argument("--version", help="model-set version (default: v<UTC time>)")
    p.add_argument("--config")
    p.add_argument("--shadow", action="store_true", help="point SHADOW at the new set instead of LIVE")
    p.add_argument("--max-rows", type=int, default=20_000)
    p.add_argument("--trees", type=int, default=60)
    p.add_argument("--epochs", type=int, default=3)


def train_main(args) -> int:
    from shiftstream.models.train import set_pointer, train_all
    from shiftstream.transforms.config import load_config

    from .errors import usage

    if not args.events.is_file():
        raise usage(f"--events {args.events}: no such file")
    cfg = load_config(args.config)
    records = list(_records(args.events, cfg))
    if args.truth:
        vocabulary = json.loads(args.truth.read_text())["categories"]
    else:
        vocabulary = sorted({r["category"] for r in records if r["category"]})
    args.out.mkdir(parents=True, exist_ok=True)
    report = train_all(records, cfg, vocabulary, args.out, args.version, promote=not args.shadow,
                       max_rows=args.max_rows, n_estimators=args.trees, epochs=args.epochs)
    version = sorted(p.name for p in args.out.iterdir() if p.is_dir())[-1] if not args.version else args.version
    if args.shadow:
        set_pointer(args.out, "SHADOW", version)
    print(f"train: model set {version} in {args.out} ({'SHADOW' if args.shadow else 'LIVE'})")
    print(json.dumps({k: v.get("test", v) for k, v in report.items()}, indent=1))
    return 0


def add_compare_arguments(p) -> None:
    p.add_argument("--models", type=Path, required=True)
    p.add_argument("--events", type=Path, required=True, help="events to score both sets on")
    p.add_argument("--live", help="version (default: the LIVE pointer)")
    p.add_argument("--shadow", help="version (default: the SHADOW pointer)")
    p.add_argument("--config")
    p.add_argument("--rows", type=int, default=5000)


def compare(live, shadow, rows) -> dict:
    """Agreement and score deltas of two model sets on the same decision rows."""
    from sklearn.metrics import adjusted_rand_score

    a, b = live.score(rows), shadow.score(rows)
    out: dict = {"rows": len(rows), "live": live.label, "shadow": shadow.label}
    for name in sorted(set(a.scores) & set(b.scores)):
        d = np.abs(a.scores[name] - b.scores[name])
        out[name] = {"mean_abs_delta": float(d.mean()), "p99_abs_delta": float(np.quantile(d, 0.99)),
                     "max_abs_delta": float(d.max()),
                     "correlation": float(np.corrcoef(a.scores[name], b.scores[name])[0, 1]) if d.any() else 1.0}
    if a.ml_segments is not None and b.ml_segments is not None:
        out["clusters"] = {"adjusted_rand_index": float(adjusted_rand_score(a.ml_segments, b.ml_segments)),
                           "same_label": float(np.mean(a.ml_segments == b.ml_segments))}
    if a.next_interest is not None and b.next_interest is not None:
        out["next_interest"] = {"top1_agreement": float(np.mean(np.array(a.next_interest) ==
                                                                np.array(b.next_interest)))}
    return out


def compare_main(args) -> int:
    from shiftstream.models.dataset import build
    from shiftstream.models.scorer import ModelSet
    from shiftstream.transforms.config import load_config
    from shiftstream.transforms.decisions import Row
    from shiftstream.transforms.features import feature_names

    from .errors import usage

    if not args.events.is_file():
        raise usage(f"--events {args.events}: no such file")
    cfg = load_config(args.config)

    def pointer(name: str, given: str | None) -> str:
        if given:
            return given
        try:
            return (args.models / name).read_text().strip()
        except OSError:
            raise usage(f"no --{name.lower()} and no {name} pointer in {args.models}") from None

    live_v, shadow_v = pointer("LIVE", args.live), pointer("SHADOW", args.shadow)
    names = feature_names(cfg)
    live = ModelSet.load(args.models / live_v, names)
    shadow = ModelSet.load(args.models / shadow_v, names)
    ds = build(_records(args.events, cfg), cfg, tuple(live.vocabulary or shadow.vocabulary), max_rows=args.rows)
    voc = ds.vocabulary
    rows = []
    for i in range(min(len(ds.X), len(ds.seq))):
        recent = [voc[j - 1] for j in ds.seq[i] if j > 0]
        rows.append(Row(key="", event_time=0, values=tuple(float(x) for x in ds.X[i]), top=[], shift=None,
                        shift_score=0.0, recent=recent, actions=[], settled_through=None, provisional=0,
                        decided_at=0))
    print(json.dumps(compare(live, shadow, rows), indent=1))
    return 0
