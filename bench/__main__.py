"""`make bench`: every benchmark in one go (figures as ratios within one run; these machines are noisy)."""
from __future__ import annotations

import sys

from . import (bandits, beam, diversity, faults, flink, flink_cluster, flink_front, flink_state, live, lookup, recovery,
               scoring, segments, serve, shifts, soak, state_size, throughput)


def main() -> int:
    for name, mod in (("throughput", throughput), ("scoring", scoring), ("state size", state_size), ("lookup latency", lookup), ("beam vs reference", beam),
                      ("pyflink vs reference", flink),
                      ("pyflink: the Java front against a Python front, one keyed Python hop", flink_front),
                      ("pyflink on a standalone cluster: one single-slot TaskManager per subtask", flink_cluster),
                      ("pyflink: state per user, checkpoints for 100,000 users", flink_state),
                      ("live-time latency: wall-clock events through Kafka to Redis", live), ("pyflink crash and recovery", recovery),
                      ("shift detection", shifts), ("segments", segments), ("faults: the reliability table", faults),
                      ("soak: memory with users coming and going", soak),
                      ("bandits: regret per policy, side by side with MABWiser and River", bandits),
                      ("diversity: a category cap's diversity and its cost in clicks", diversity),
                      ("serving: GET /v1/decisions at fixed rates while the job writes", serve)):
        print(f"\n## {name}\n", flush=True)
        mod.main([])
    return 0


if __name__ == "__main__":
    sys.exit(main())
