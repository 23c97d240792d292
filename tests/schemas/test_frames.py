import io

import pytest

from shiftstream.schemas import read_frames, write_frames
from shiftstream.schemas.errors import Truncated


def test_frames_round_trip_including_empty_messages():
    buf = io.BytesIO()
    msgs = [b"", b"a", bytes(range(256)) * 3]
    assert write_frames(buf, msgs) == 3
    assert list(read_frames(io.BytesIO(buf.getvalue()))) == msgs


def test_a_cut_frames_file_is_a_typed_error():
    buf = io.BytesIO()
    write_frames(buf, [b"hello world"])
    with pytest.raises(Truncated):
        list(read_frames(io.BytesIO(buf.getvalue()[:-2])))
