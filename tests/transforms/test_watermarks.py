from shiftstream.transforms.watermarks import NO_WATERMARK, Watermarks


def test_the_watermark_is_the_slowest_partition_minus_lateness_and_never_goes_back():
    w = Watermarks(allowed_lateness_ms=1000, idleness_ms=5000, tolerance=0)
    assert w.observe(10_000, 0, now=0.0) == 9_000
    assert w.observe(50_000, 1, now=0.1) == 9_000  # partition 0 holds it back
    assert w.observe(5_000, 0, now=0.2) == 9_000  # an old event never moves it back
    assert w.observe(20_000, 0, now=0.3) == 19_000


def test_an_idle_partition_stops_holding_the_watermark_back():
    w = Watermarks(allowed_lateness_ms=1000, idleness_ms=5000, tolerance=0)
    w.observe(10_000, 0, now=0.0)
    for i in range(1, 60):  # partition 1 keeps going, partition 0 falls silent
        w.observe(10_000 + i * 1000, 1, now=float(i) / 20)  # under 3 s: partition 0 still counts
    assert w.current == 9_000
    assert w.idle_check(now=6.0) == 68_000  # 5 s of silence: partition 0 no longer counts
    assert w.high() == 69_000


def test_the_reference_runner_releases_an_idle_partition():
    from shiftstream.jobs.reference import ReferenceJob
    from shiftstream.jobs.testing import MemorySink
    from shiftstream.runners.simulator import SimConfig, simulate
    from shiftstream.transforms.config import load_config
    from shiftstream.transforms.pseudonyms import DEV_KEY, Pseudonymiser

    sim = simulate(SimConfig(users=20, events=2000, seed=4, out_of_order=0, too_late=0, duplicates=0, malformed=0))
    clock = [1000.0]
    job = ReferenceJob(load_config(), MemorySink(), Pseudonymiser(DEV_KEY), monotonic=lambda: clock[0])
    job.on_record(sim.events[0], partition=0)
    for i, rec in enumerate(sim.events[1:]):  # all the rest on partition 1, while partition 0 stays silent
        clock[0] += 0.01
        job.on_record(rec, partition=1)
    job.flush()
    # written at once, but provisional: the silent partition holds the watermark back, so nothing is settled
    assert len(job.sink.decisions) == 20
    assert all(d["settled_through"] is None and d["provisional"] > 0 for d in job.sink.decisions.values())
    clock[0] += 60
    job.idle()
    assert sum(d["settled_through"] is not None for d in job.sink.decisions.values()) >= 15
    assert NO_WATERMARK < job.watermarks.current


def test_a_few_events_far_ahead_cannot_move_the_watermark():
    w = Watermarks(allowed_lateness_ms=1000, tolerance=3, window=16)
    for t in range(1, 11):
        w.observe(t * 1000)
    assert w.current == 7000 - 1000  # the 4th-latest of 1..10 s
    for _ in range(3):  # three outliers a day ahead, among good events
        w.observe(86_400_000)
        w.observe(w.current + 5000)
    assert w.current < 60_000
    assert w.high() == 86_400_000


def test_a_genuine_jump_moves_the_watermark_after_tolerance_plus_one_events():
    w = Watermarks(allowed_lateness_ms=0, tolerance=2, window=8)
    for t in (1, 2, 3):
        w.observe(t)
    assert w.current == 1
    w.observe(1000)
    w.observe(1001)
    assert w.current == 3
    w.observe(1002)
    assert w.current == 1000


def test_outliers_age_out_of_the_window():
    w = Watermarks(allowed_lateness_ms=0, tolerance=1, window=4)
    for t in (1, 2, 10**9, 3):
        w.observe(t)
    assert w.current == 3  # one outlier tolerated
    for t in (4, 5, 6, 7):  # the outlier leaves the window: the next one is tolerated again
        w.observe(t)
    w.observe(2 * 10**9)
    w.observe(8)
    assert w.current == 8


def test_a_partition_starts_with_tolerance_plus_one_events_so_a_first_outlier_sets_nothing():
    w = Watermarks(allowed_lateness_ms=0, tolerance=3)
    w.observe(10**12)
    for t in (1, 2):
        assert w.observe(t) == NO_WATERMARK
    assert w.observe(3) == 1


def test_the_window_must_exceed_the_tolerance():
    import pytest

    with pytest.raises(ValueError):
        Watermarks(0, tolerance=4, window=4)


def test_a_restored_tracker_continues_under_new_settings():
    old = Watermarks(0, tolerance=1, window=8)
    for t in range(1, 9):
        old.observe(t * 10)
    new = Watermarks(0, tolerance=0, window=4)  # the config changed between the checkpoint and the restart
    new.adopt(old, now=5.0)
    assert new.current == old.current == 70
    assert new.observe(100) == 100  # the new rule (the latest event time) applies from here


def _ingest():
    from shiftstream.schemas import MemoryRegistry, WireCodec
    from shiftstream.transforms.config import load_config
    from shiftstream.transforms.ingest import Ingest
    from shiftstream.transforms.pseudonyms import DEV_KEY, Pseudonymiser

    wire = WireCodec(MemoryRegistry(), "interaction")
    cfg = load_config().replace(**{"event_time.outlier_tolerance": 0, "event_time.allowed_lateness": 0})
    return Ingest(cfg, Pseudonymiser(DEV_KEY), wire.decode, lambda: 2_000_000.0, lambda: 0.0), wire


def _event(ts, **kw):
    return {"event_id": f"e{ts}", "user_id": "u1", "event_type": "click", "ts": ts, **kw}


def test_a_dead_letter_with_a_readable_envelope_still_moves_its_partitions_frontier():
    """transforms/envelope.py: the watermark is the source's, so a message invalid past its envelope (id, user,
    type, ts) counts, as the Java front that reads only the envelope counts it."""
    from shiftstream.transforms.ingest import Arrival, DeadLetter

    ing, wire = _ingest()
    assert type(ing.message(wire.encode(_event(1_000_000)))) is Arrival
    bad = wire.encode(_event(1_500_000, scroll_depth=7.0))  # scroll depth beyond 0..1: a dead letter
    assert type(ing.message(bad)) is DeadLetter and ing.watermarks.own(0) == 1_500_000
    cut = wire.encode(_event(1_600_000, page_url="x" * 50))[:-20]  # cut past the envelope: not decodable
    assert type(ing.message(cut)) is DeadLetter and ing.watermarks.own(0) == 1_600_000
    # an envelope that is not plausible counts for nothing: ts beyond the clock's skew, an empty id, a bad magic
    for msg in (wire.encode(_event(4_000_000_000, scroll_depth=7.0)), wire.encode({**_event(1_700_000), "user_id": ""}),
                b"\x01" + wire.encode(_event(1_800_000))[1:]):
        assert type(ing.message(msg)) is DeadLetter
    assert ing.watermarks.own(0) == 1_600_000


def test_the_envelope_reader_agrees_with_the_decoder_on_every_prefix_of_a_message():
    from shiftstream.transforms.envelope import envelope_ts

    _, wire = _ingest()
    msg = wire.encode(_event(1_234_567, category="shoes"))
    full = envelope_ts(msg, 2_000_000_000, 128, 1 << 20)
    assert full == 1_234_567
    for n in range(len(msg)):  # a cut inside the envelope reads nothing; after it, the ts
        got = envelope_ts(msg[:n], 2_000_000_000, 128, 1 << 20)
        assert got in (None, full)
    assert envelope_ts(msg, 1_000_000, 128, 1 << 20) is None       # later than the latest plausible time
    assert envelope_ts(msg, 2_000_000_000, 128, len(msg) - 1) is None  # over the size limit
    assert envelope_ts(wire.encode({**_event(5), "user_id": "ü" * 128}), 2_000_000_000, 128, 1 << 20) == 5
    assert envelope_ts(wire.encode({**_event(5), "user_id": "ü" * 129}), 2_000_000_000, 128, 1 << 20) is None
