"""Named random streams give every formula the committed run was made with, and the typed pair."""
import numpy as np
import pytest

from prefalign_lite.core import pairs, streams
from prefalign_lite.core.pairs import Pair


@pytest.mark.parametrize("name, seed, index, formula", [
    ("pair samples", 3, 2, 3 * 100 + 2), ("coin", 3, 50, 3 * 7_919 + 50), ("selection coin", 3, 2, 3 * 7_919 + 100 + 2),
    ("lora init", 3, 7, 3 * 1_000 + 7), ("training", 3, 7, 3 + 7), ("batch order", 10, 1, 10 * 1000 + 1),
    ("evaluation answers", 3, 12345, 3 * 1_000_003 + 12345), ("bootstrap", 3, 0, 3), ("labels", 3, 1, 4),
    ("quality instruction answers", 3, 0, 4), ("kl sample", 3, 0, 5), ("judge pairs", 3, 0, 6),
])
def test_each_stream_keeps_the_formula_of_the_committed_run(name, seed, index, formula):
    assert streams.stream_seed(name, seed, index) == formula


def test_an_unknown_stream_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown random stream 'coins'"):
        streams.stream_seed("coins", 0)
    assert streams.label_index("SFT") == streams.label_index("SFT") != streams.label_index("SPA round 0")


def test_a_pair_reads_like_a_row_and_swaps():
    p = Pair("q", "good", "bad")
    assert p["chosen"] == "good" and dict(p) == {"prompt": "q", "chosen": "good", "rejected": "bad"}
    assert p.swapped() == Pair("q", "bad", "good") and p.swapped().swapped() == p
    assert dict(p, id=3)["id"] == 3 and p.get("wrong") is None and not p.identical() and Pair("q", "a", "a").identical()
    assert Pair.of({"prompt": "q", "chosen": "good", "rejected": "bad", "id": 1}) == p
    with pytest.raises(KeyError):
        p["id"]
    assert pairs.ordered([p, p], [True, False]) == [p, p.swapped()]
    with pytest.raises(ValueError, match="1 verdicts for 2 pairs"):
        pairs.ordered([p, p], [True])


def test_label_quality_excludes_ties_and_counts_them():
    q = pairs.label_quality(np.array([0.5, -0.2, 0.0, 0.3]))
    assert q == {"label_accuracy": pytest.approx(2 / 3), "tie_share": 0.25}
    assert np.isnan(pairs.label_quality([0.0, 0.0])["label_accuracy"])
    with pytest.raises(ValueError, match="zero pairs"):
        pairs.label_quality([])
