"""The long-running jobs' collector setting: objects alive are frozen every interval, and given back on close."""
import gc

from shiftstream.jobs.collector import Freezer


def test_objects_alive_are_frozen_every_interval_and_unfrozen_on_close():
    gc.unfreeze()
    now = [100.0]
    f = Freezer(1000, clock=lambda: now[0])
    try:
        frozen = gc.get_freeze_count()
        assert frozen > 0 and not gc.isenabled()  # start-up's objects; the job collects on its ticks
        keep = [[i] for i in range(1000)]  # tracked objects made after the first freeze
        f.tick()
        assert gc.get_freeze_count() == frozen  # not yet: under the interval
        now[0] += 1.0
        f.tick()
        assert gc.get_freeze_count() >= frozen + len(keep)
    finally:
        f.close()
    assert gc.get_freeze_count() == 0 and gc.isenabled()


def test_zero_leaves_the_collector_alone():
    gc.unfreeze()
    f = Freezer(0)
    f.tick()
    assert gc.isenabled()
    f.close()
    assert gc.get_freeze_count() == 0 and gc.isenabled()
