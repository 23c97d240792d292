"""`shiftstream experiments report`: each configured experiment's arms from a run's outcomes file.

The outcomes (one JSON line per exposure whose attribution window closed: `outcomes.jsonl` in a run's --out-dir)
are replayed in event-time order, with the always-valid p-value updated after every one, as a live stream would
be monitored; the report prints lift with a 95% interval, that p-value, the sample-ratio check and the
guardrails."""
from __future__ import annotations

import json
from pathlib import Path

from shiftstream.transforms.config import load_config
from shiftstream.transforms.experiments import reports as experiment_reports

from .errors import UserError, usage


def add_arguments(p) -> None:
    p.add_argument("--outcomes", type=Path, required=True, help="a run's outcomes.jsonl (in its --out-dir)")
    p.add_argument("--config", help="the YAML config the run used (default: the embedded one)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    p.add_argument("--json", action="store_true", help="print the reports as JSON (what the dashboard reads)")


def reports(cfg, lines, alpha: float = 0.05) -> list[dict]:
    """Reports for every experiment, from outcome records (dicts) in any order (transforms.experiments)."""
    return experiment_reports(cfg.content.experiments, lines, alpha)


def _read(path: Path) -> list[dict]:
    if not path.is_file():
        raise usage(f"--outcomes {path}: no such file (a run with content slots writes outcomes.jsonl "
                    "in its --out-dir)")
    lines = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            try:
                lines.append(json.loads(line))
            except ValueError:
                raise UserError(f"--outcomes {path}: line {n} is not JSON") from None
    return lines


def add_replay_arguments(p) -> None:
    p.add_argument("--outcomes", type=Path, required=True, help="a run's outcomes.jsonl over uniformly random "
                   "impressions (any engine's)")
    p.add_argument("--config", help="the YAML config whose slots' policies to judge (default: the embedded one)")
    p.add_argument("--json", action="store_true", help="print the estimates as JSON")


def replay_main(args) -> int:
    from shiftstream.transforms.replay import outcome_from_dict, replay

    cfg = load_config(args.config)
    if not cfg.content.slots:
        raise UserError("no content slots configured (content.slots); give the config with --config")
    try:
        outcomes = [outcome_from_dict(d) for d in _read(args.outcomes)]
    except (KeyError, TypeError) as exc:
        raise UserError(f"--outcomes {args.outcomes}: not an outcomes file (missing {exc})") from None
    out = replay(cfg.content, outcomes, cfg.content.delay(cfg.event_time.allowed_lateness))
    if not out:
        raise UserError(f"--outcomes {args.outcomes}: no outcome of a configured slot (is it this config's run?)")
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"  {'slot':<16} {'policy':<15} {'logged':>7} {'matched':>7} {'logged CTR':>10} {'replay CTR':>10} "
          f"{'95% CI':>17} {'lift':>7}  uniform logging")
    for name, r in out.items():
        ci = r["ctr_ci95"]
        ctr = "" if r["replay_ctr"] is None else f"{r['replay_ctr']:.2%}"
        ci_s = "" if ci is None else f"[{ci[0]:.3f}, {ci[1]:.3f}]"
        lift = "" if r["lift_over_logged"] is None else f"{r['lift_over_logged']:+.0%}"
        uni = "ok" if r["uniform_logging_p"] >= 0.001 else f"NO (p {r['uniform_logging_p']:.1g}: estimates biased)"
        print(f"  {name:<16} {r['policy']:<15} {r['logged']:>7,} {r['matched']:>7,} {r['logged_ctr']:>10.2%} "
              f"{ctr:>10} {ci_s:>17} {lift:>7}  {uni}")
    return 0


def main(args) -> int:
    cfg = load_config(args.config)
    if not cfg.content.experiments:
        raise UserError("no experiments configured (content.experiments); give the run's config with --config")
    if not 0 < args.alpha < 1:
        raise usage(f"--alpha {args.alpha}: must be between 0 and 1")
    lines = _read(args.outcomes)
    out = reports(cfg, lines, args.alpha)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    for r in out:
        s = r["srm"]
        print(f"experiment {r['experiment']} (slot {r['slot']}): sample ratio {s['level']} "
              f"(chi2 {s['chi2']:.2f}, p {s['p']:.3g})")
        print(f"  {'arm':<12} {'users':>7} {'exposures':>9} {'rate':>7} {'lift':>8} {'diff 95% CI':>20} "
              f"{'p (always valid)':>17}")
        for a in r["arms"]:
            ci, lift, p = a.get("diff_ci95"), a.get("lift"), a.get("p_always_valid")
            lift_s = "" if lift is None else f"{lift:+.1%}"
            ci_s = "" if ci is None else f"[{ci[0]:+.3f}, {ci[1]:+.3f}]"
            p_s = "" if p is None else f"{p:.3g}" + (" *" if a["significant"] else "")
            print(f"  {a['arm']:<12} {a['users']:>7,} {a['exposures']:>9,} {a['rate']:>7.2%} {lift_s:>8} {ci_s:>20} "
                  f"{p_s:>17}")
        for a in r["arms"]:
            for g in a.get("guardrails", ()):
                if g["status"] == "no_data":
                    print(f"  guardrail {g['metric']} ({a['arm']}): no data yet")
                    continue
                print(f"  guardrail {g['metric']} ({a['arm']} vs control): {g['arm']:.4f} vs {g['control']:.4f}, "
                      f"diff 95% CI [{g['diff_ci95'][0]:+.4f}, {g['diff_ci95'][1]:+.4f}], may not fall below "
                      f"{g['tolerance']:+.4f}: {g['status']}")
    return 0
