import json
import subprocess
import sys
from collections import Counter, defaultdict

import fastavro

from shiftstream.runners.simulator import BEHAVIOURS, SimConfig, simulate
from shiftstream.schemas import MemoryRegistry, WireCodec, read_frames
from shiftstream.schemas.errors import DecodeError


def test_same_seed_same_events_other_seed_other_events():
    a = simulate(SimConfig(users=50, events=3000, seed=1))
    b = simulate(SimConfig(users=50, events=3000, seed=1))
    c = simulate(SimConfig(users=50, events=3000, seed=2))
    assert a.events == b.events and a.truth == b.truth
    assert a.events != c.events


def test_event_count_is_exact_and_ids_unique(small_sim):
    ids = [e["event_id"] for e in small_sim.events]
    assert len(set(ids)) == small_sim.truth["counts"]["events"] == 12_000
    dups = [i for i, n in Counter(ids).items() if n > 1]
    assert sorted(dups) == sorted(small_sim.truth["duplicate_event_ids"])


def test_behaviour_types_drive_sessions(small_sim):
    types = {u: d["type"] for u, d in small_sim.truth["users"].items()}
    per_type = defaultdict(list)
    for s in small_sim.truth["sessions"]:
        per_type[types[s["user_id"]]].append(s)
    mean_len = {t: sum(s["events"] for s in ss) / len(ss) for t, ss in per_type.items()}
    mean_dur = {t: sum(s["end"] - s["start"] for s in ss) / len(ss) / 1000 for t, ss in per_type.items()}
    assert mean_len["engaged_browser"] > 3 * mean_len["quick_visitor"]
    assert mean_dur["engaged_browser"] > 180 > 60 > mean_dur["quick_visitor"]
    assert set(types.values()) == {b.name for b in BEHAVIOURS}


def test_shifts_move_interest_to_the_new_category(small_sim):
    by_user = defaultdict(list)
    for e in small_sim.events:
        if e["category"] and e["event_type"] == "page_view":
            by_user[e["user_id"]].append((e["ts"], e["category"]))
    assert small_sim.truth["shifts"]
    moved = 0
    for s in small_sim.truth["shifts"]:
        evs = sorted(by_user[s["user_id"]])
        before = Counter(c for t, c in evs if t < s["ts"])
        after = Counter(c for t, c in evs if t >= s["ts"])
        moved += after[s["to"]] / max(1, sum(after.values())) > before[s["to"]] / max(1, sum(before.values())) + 0.2
    assert moved >= 0.8 * len(small_sim.truth["shifts"])


def test_imperfections_are_present_and_flagged(small_sim):
    arrival_ts = [e["ts"] for e in small_sim.events]
    inversions = sum(1 for a, b in zip(arrival_ts, arrival_ts[1:]) if b < a)
    assert inversions > 100
    assert small_sim.truth["late_event_ids"]
    quiet = simulate(SimConfig(users=30, events=2000, seed=5, out_of_order=0, too_late=0, duplicates=0, malformed=0))
    ts = [e["ts"] for e in quiet.events]
    assert ts == sorted(ts) and not quiet.malformed and len(quiet.events) == 2000


def test_malformed_messages_all_fail_to_decode(small_sim):
    wire = WireCodec(MemoryRegistry(), "interaction")
    reasons = Counter()
    for _, msg in small_sim.malformed:
        try:
            wire.decode(msg)
        except DecodeError as exc:
            reasons[exc.reason] += 1
    assert sum(reasons.values()) == len(small_sim.malformed) > 0
    assert {"truncated", "bad_magic_byte", "unknown_schema_id", "unknown_enum_symbol"} <= set(reasons)


def test_cli_writes_files_fastavro_reads_with_the_published_schema(tmp_path):
    out = tmp_path / "events.avro"
    r = subprocess.run([sys.executable, "-m", "shiftstream.runners.cli", "simulate", "--users", "40", "--events", "3000",
                        "--seed", "9", "--out", str(out), "--quiet"], capture_output=True, text=True, check=True)
    assert "simulated 3,000 events" in r.stdout
    schema = fastavro.schema.load_schema("schemas/interaction.avsc")
    with open(out, "rb") as fo:
        recs = list(fastavro.reader(fo, reader_schema=schema))
    truth = json.loads((tmp_path / "events.truth.json").read_text())
    assert len(recs) == truth["counts"]["deliveries"]
    assert set(truth) >= {"users", "shifts", "sessions", "privacy", "counts"}
    bad = list(read_frames(tmp_path / "events.bad.frames"))
    assert len(bad) == truth["counts"]["malformed"]
    with open(tmp_path / "events.privacy.avro", "rb") as fo:
        assert len(list(fastavro.reader(fo))) == truth["counts"]["privacy"]


def test_frames_output_holds_good_and_bad_messages_in_arrival_order(tmp_path):
    from shiftstream.runners.simulate import write_outputs

    sim = simulate(SimConfig(users=30, events=2000, seed=4, malformed=0.01))
    write_outputs(sim, tmp_path / "e.frames", 4)
    wire = WireCodec(MemoryRegistry(), "interaction")
    good, bad = [], 0
    for m in read_frames(tmp_path / "e.frames"):
        try:
            good.append(wire.decode(m)["event_id"])
        except DecodeError:
            bad += 1
    assert good == [e["event_id"] for e in sim.events] and bad == len(sim.malformed) == 20
