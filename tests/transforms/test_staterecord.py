"""The compact state record (transforms/staterecord.py): the same dict back, smaller than a pickled dict, the
current version's names exactly, and a plain pickle (what the Flink job stored before) still read."""
import pickle

import pytest

from shiftstream.jobs.reference import ReferenceJob
from shiftstream.jobs.testing import MemorySink
from shiftstream.runners.simulator import SimConfig, simulate
from shiftstream.schemas import MemoryRegistry, WireCodec
from shiftstream.transforms import staterecord
from shiftstream.transforms.config import load_config
from shiftstream.transforms.core import Core
from shiftstream.transforms.pseudonyms import DEV_KEY, Pseudonymiser
from shiftstream.transforms.state import STATE_VERSION


def _states():
    sim = simulate(SimConfig(users=300, events=3000, seed=8, privacy_rate=0, malformed=0, days=1.0))
    wire = WireCodec(MemoryRegistry(), "interaction")
    job = ReferenceJob(load_config(), MemorySink(), Pseudonymiser(DEV_KEY))
    for i, e in enumerate(sim.events):
        job.on_message(wire.encode(e), 0, i)
    return [st for st in job.states.values() if st is not None and not st.is_empty()]


def test_the_record_gives_the_same_state_back_and_is_smaller_than_a_pickled_dict():
    states = _states()
    assert len(states) > 250
    packed = plain = 0
    for st in states:
        for pending in (False, True):
            d = st.to_dict(pending=pending)
            b = staterecord.pack(d)
            assert b[0] == staterecord.MAGIC and staterecord.unpack(b) == d
            packed += len(b)
            plain += len(pickle.dumps(d, protocol=pickle.HIGHEST_PROTOCOL))
    assert packed < 0.8 * plain


def test_the_versions_names_are_the_states_so_a_new_field_needs_a_new_version():
    d = Core(load_config()).new_state().to_dict(pending=False)
    assert tuple(sorted(d)) == staterecord.FIELDS[STATE_VERSION], \
        "UserState.to_dict changed its names: bump STATE_VERSION and add its FIELDS (keep the old ones)"


def test_a_plain_pickle_and_a_dict_of_another_shape_still_go_through():
    d = Core(load_config()).new_state().to_dict(pending=False)
    assert staterecord.unpack(pickle.dumps(d)) == d  # what the Flink job stored before the record
    odd = {**d, "extra": 1}
    assert staterecord.unpack(staterecord.pack(odd)) == odd
    with pytest.raises(ValueError, match="upgrade"):
        staterecord.unpack(bytes((staterecord.MAGIC, 99)) + pickle.dumps(()))
