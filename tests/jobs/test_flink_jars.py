"""The Kafka connector jars: extracted by set-up, checked against pinned hashes."""
import pytest

from shiftstream.jobs.flink.jars import JarError, check, ensure


def test_setup_put_the_pinned_jars_in_place():
    jars = check(__import__("pathlib").Path(".jars"))
    assert sorted(j.name for j in jars) == ["flink-connector-kafka.jar", "kafka-clients.jar"]


def test_a_tampered_jar_is_refused(tmp_path):
    import shutil

    for j in check(__import__("pathlib").Path(".jars")):
        shutil.copy(j, tmp_path / j.name)
    with open(tmp_path / "kafka-clients.jar", "ab") as fo:
        fo.write(b"x")
    with pytest.raises(JarError) as exc:
        check(tmp_path)
    assert "kafka-clients.jar" in str(exc.value) and "does not match" in str(exc.value)
    assert len(ensure(tmp_path)) == 2  # ensure() replaces it with the pinned one
