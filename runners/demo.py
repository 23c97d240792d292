"""`shiftstream demo` / `make demo`: simulate events, run the job into a local Redis, print a summary, then serve
the decisions over HTTP until Ctrl-C (`--no-serve`: stop after the summary)."""
from __future__ import annotations

import json
import time
from contextlib import ExitStack
from pathlib import Path

from .local import LocalRedis
from .simulate import write_outputs
from .simulator import SimConfig, simulate


def run_arguments(argv: list[str]):
    """`shiftstream run`'s arguments parsed from a command line, with its defaults."""
    import argparse

    from . import run

    p = argparse.ArgumentParser(prog="shiftstream run")
    run.add_arguments(p)
    return p.parse_args(argv)


def main(args) -> int:
    from . import run
    from .lookup import lookup
    from shiftstream.transforms.pseudonyms import Pseudonymiser, key_from_settings

    work = Path(args.workdir)
    with ExitStack() as stack:
        url = args.redis_url
        if not url:
            url = stack.enter_context(LocalRedis()).url
            print(f"demo: started redis-server at {url}")
        t0 = time.perf_counter()
        cfg = SimConfig(users=args.users, events=args.events, seed=args.seed)
        sim = simulate(cfg)
        paths = write_outputs(sim, work / "events.frames", cfg.seed)
        c = sim.truth["counts"]
        print(f"demo: simulated {c['events']:,} events for {c['users']:,} users in {time.perf_counter() - t0:.1f}s "
              f"({c['shifts']} preference shifts, {c['late']} too-late, {c['duplicates']} duplicates, "
              f"{c['malformed']} malformed, {c['privacy']} privacy requests) -> {paths['events']}")
        models = work / "models"
        if not (models / "LIVE").exists():
            from shiftstream.models.train import train_all
            from shiftstream.transforms.config import load_config

            t1 = time.perf_counter()
            history = simulate(SimConfig(users=args.users, events=args.events // 2, seed=args.seed + 1000))
            print(f"demo: training models on a separate simulated log ({len(history.events):,} events)")
            train_all(history.events, load_config(), history.truth["categories"], models,
                      log=lambda m: print("demo: " + m))
            print(f"demo: models trained in {time.perf_counter() - t1:.1f}s -> {models}")
        argv = ["--runner", args.runner, "--input", str(paths["events"]), "--privacy", str(paths["privacy"]),
                "--redis-url", url, "--out-dir", str(work), "--models", str(models)]
        rc = run.main(run_arguments(argv))
        if rc:
            return rc
        settings = run.settings(run_arguments(["--redis-url", url]))
        key = key_from_settings(settings.privacy.key_env, settings.privacy.key_file, False)
        ps = Pseudonymiser(key)
        shown = 0
        wanted = [s["user_id"] for s in sim.truth["shifts"][:1]] + sorted(sim.truth["users"])[:2]
        for uid in wanted:
            d = lookup(url, settings.redis.key_prefix, ps(uid))
            if d is None:
                continue
            brief = {k: d[k] for k in ("segment", "ml_segment", "shift", "top_categories", "next_interest", "scores",
                                       "model_version", "event_time")}
            brief["scores"] = {k: round(v, 3) for k, v in brief["scores"].items()}
            brief["features"] = {k: round(d["features"][k], 2) for k in
                                 ("session_duration_s", "session_page_views", "sessions_total", "affinity_top")}
            print(f"demo: decision for {uid} ({sim.truth['users'][uid]['type']}):")
            print("  " + json.dumps(brief))
            shown += 1
        if not shown:
            from .errors import UserError

            raise UserError(f"no decision of the users looked up was found in {url}: the run wrote none for them")
        if args.no_serve:
            print(f"demo: look users up with `shiftstream lookup {wanted[-1]} --redis-url {url}`"
                  + ("" if args.redis_url else " (this demo's redis-server stops now; --redis-url keeps your own)"))
            return 0
        from .serve import bind, serve_forever

        sock = bind("127.0.0.1", 0)
        port = sock.getsockname()[1]
        print(f"demo: the decision API is up: http://127.0.0.1:{port}/v1/decisions/USER_ID; try")
        print(f"  curl -s http://127.0.0.1:{port}/v1/decisions/{wanted[-1]}")
        print(f"  curl -s http://127.0.0.1:{port}/metrics")
        print(f"demo: the dashboard (the run's figures): http://127.0.0.1:{port}/dashboard")
        print("demo: Ctrl-C stops the API" + ("" if args.redis_url else " and this demo's redis-server"), flush=True)
        serve_forever(settings, key, "127.0.0.1", port, sock=sock, banner=False)
    return 0
