"""The hand-packed Redis sink against a real redis-server: errors, reconnects, idempotence."""
import pytest
import redis

from shiftstream.jobs.redis_sink import RedisSink, RedisWriteError, decision_from_hash

DECISION = {"user_key": "k1", "segment": "general", "ml_segment": None,
            "shift": {"detected": False, "from_category": None, "to_category": None, "score": 0.0, "at": None},
            "top_categories": ["a"], "features": {"x": 1.5}, "scores": {}, "next_interest": None,
            "chosen_content": None, "experiment_arm": None, "model_version": None, "actions": [], "event_time": 7, "settled_through": None, "provisional": 0, "updated_at": 9}


def test_a_refused_batch_raises_once_and_does_not_poison_the_sink(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.set("ss:d:bad", "a string, not a hash")  # HSET on it fails with WRONGTYPE
    sink = RedisSink(redis_url, in_flight=0)
    with pytest.raises(RedisWriteError) as exc:
        sink.write([dict(DECISION, user_key="bad")])
    assert "WRONGTYPE" in str(exc.value)
    sink.write([DECISION])  # the sink goes on working
    sink.flush()
    assert decision_from_hash("k1", client.hgetall("ss:d:k1"))["features"] == {"x": 1.5}


def test_a_dropped_connection_is_reopened_and_the_batch_in_flight_resent(redis_url):
    client = redis.Redis.from_url(redis_url)
    sink = RedisSink(redis_url, in_flight=1)
    sink.write([DECISION])
    sink.flush()
    client.client_kill_filter(_type="normal", skipme=True)  # cut the sink's connection
    sink.write([dict(DECISION, user_key="k2")])
    sink.write([dict(DECISION, user_key="k3")])
    sink.flush()
    assert {k.decode() for k in client.keys("ss:d:*")} == {"ss:d:k1", "ss:d:k2", "ss:d:k3"}


def test_settled_marks_update_written_decisions_and_never_leave_half_a_hash(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.delete("ss:d:m1", "ss:d:m2")
    sink = RedisSink(redis_url, in_flight=1)
    sink.write([dict(DECISION, user_key="m1", settled_through=None, provisional=3)])
    sink.flush()
    sink.mark([("m1", 1_700_000_000_123, 0), ("m2", 5, 1)])  # m2 has no decision (expired, erased): left alone
    sink.flush()
    d = decision_from_hash("m1", client.hgetall("ss:d:m1"))
    assert d["settled_through"] == 1_700_000_000_123 and d["provisional"] == 0 and d["features"] == {"x": 1.5}
    assert not client.exists("ss:d:m2") and sink.marked == 2
    sink.mark([("m1", None, 2)])
    sink.flush()
    d = decision_from_hash("m1", client.hgetall("ss:d:m1"))
    assert d["settled_through"] is None and d["provisional"] == 2
