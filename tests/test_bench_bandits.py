"""bench.bandits runs end to end (small): its closed loop rewards a learning policy over uniform random."""
from bench import bandits


def test_the_bandit_benchmark_runs_and_learning_beats_uniform(tmp_path, capsys):
    plot = tmp_path / "regret.png"
    assert bandits.main(["--rounds", "6000", "--ope-rounds", "5000", "--no-libraries", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    rows = {}
    for line in out.splitlines():
        if line.startswith("| stationary |"):
            _, _, name, regret, _, _ = line.split("|")
            rows[name.strip()] = float(regret.replace(",", ""))
    assert rows["shiftstream thompson"] < 0.7 * rows["uniform random"]
    assert "off-policy" in out and plot.stat().st_size > 10_000
