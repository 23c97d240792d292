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


def test_a_cycle_frozen_while_alive_is_freed_by_the_full_collection():
    import weakref

    from shiftstream.jobs import collector

    class Node:
        pass

    gc.unfreeze()
    now = [0.0]
    f = Freezer(100, clock=lambda: now[0])
    try:
        n = Node()
        n.me = n  # a reference cycle
        ref = weakref.ref(n)
        now[0] += 0.1
        f.tick()  # frozen while alive
        del n
        for _ in range(5):
            now[0] += 0.1
            f.tick()
        assert ref() is not None  # young collections never look at the frozen generation
        now[0] += collector.FULL_EVERY
        f.tick()
        assert ref() is None
    finally:
        f.close()
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_the_collector_is_handed_back_when_the_last_freezer_closes():
    gc.unfreeze()
    a, b = Freezer(100), Freezer(100)
    a.close()
    assert not gc.isenabled()  # b still runs it
    b.close()
    assert gc.isenabled()
