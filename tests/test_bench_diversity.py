"""bench.diversity runs end to end (small): the cap makes pages diverse, and costs clicks on this simulator."""
from bench import diversity


def test_a_category_cap_buys_diversity_for_clicks():
    free = diversity.run(0, 4000, 200, seed=3)
    capped = diversity.run(1, 4000, 200, seed=3)
    assert capped["ild"] == 1.0 and free["ild"] < 0.5  # one category per slot with the cap; a bubble without
    assert capped["outside"] > free["outside"] + 0.3
    assert capped["ctr"] < free["ctr"]  # each type's favourite is worth most: the cap costs clicks here
