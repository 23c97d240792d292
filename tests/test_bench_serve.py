"""bench.serve runs end to end (small): a real Redis, the API as a process, requests at a fixed rate."""
from bench import serve


def test_the_serving_benchmark_runs_and_answers_every_request(capsys):
    assert serve.main(["--seconds", "0.5", "--rates", "200", "--users", "500", "--no-events", "--no-writer"]) == 0
    out = capsys.readouterr().out
    rows = [line.split("|") for line in out.splitlines() if line.startswith("| 200 ") or line.startswith("| flat")]
    assert len(rows) == 2
    for r in rows:
        assert int(r[6]) == 0  # no errors
        assert float(r[2].replace(",", "")) > 0
