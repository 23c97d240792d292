from shiftstream.transforms.watermarks import NO_WATERMARK, Watermarks


def test_the_watermark_is_the_slowest_partition_minus_lateness_and_never_goes_back():
    w = Watermarks(allowed_lateness_ms=1000, idleness_ms=5000)
    assert w.observe(10_000, 0, now=0.0) == 9_000
    assert w.observe(50_000, 1, now=0.1) == 9_000  # partition 0 holds it back
    assert w.observe(5_000, 0, now=0.2) == 9_000  # an old event never moves it back
    assert w.observe(20_000, 0, now=0.3) == 19_000


def test_an_idle_partition_stops_holding_the_watermark_back():
    w = Watermarks(allowed_lateness_ms=1000, idleness_ms=5000)
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
    assert job.sink.decisions == {} or len(job.sink.decisions) < 3  # held back by the silent partition
    clock[0] += 60
    job.idle()
    assert len(job.sink.decisions) >= 15
    assert NO_WATERMARK < job.watermarks.current
