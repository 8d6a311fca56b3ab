"""Markov-chain DNA LM baseline: counts against a brute-force oracle, smoothing, order
selection without looking at the test stretch, and bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from titans_ts.baselines.markov import MarkovDNALM, select_markov_order


def _brute_nats(train: np.ndarray, test: np.ndarray, order: int, alpha: float) -> np.ndarray:
    """The textbook estimate, one next base at a time, by scanning the training bases."""
    out = []
    for i in range(1, len(test)):
        c = min(order, i)
        ctx = test[i - c : i].tolist()
        total = hits = 0
        for j in range(c, len(train)):
            if train[j - c : j].tolist() == ctx:
                total += 1
                hits += int(train[j] == test[i])
        out.append(-math.log((hits + alpha) / (total + 5 * alpha)))
    return np.array(out)


@pytest.mark.parametrize("order", [0, 1, 3])
@pytest.mark.parametrize("alpha", [0.5, 2.0])
def test_matches_a_brute_force_count(order, alpha):
    rng = np.random.default_rng(order)
    train = rng.integers(0, 4, 600)
    train[::37] = 4  # some N
    test = rng.integers(0, 5, 40)  # contexts never seen in training included
    model = MarkovDNALM(order, alpha).fit(train)
    np.testing.assert_allclose(model.nats(test), _brute_nats(train, test, order, alpha),
                               rtol=1e-12)
    assert model.bits_per_base(test) == pytest.approx(
        _brute_nats(train, test, order, alpha).mean() / math.log(2))


def test_learns_a_repeat_and_probabilities_sum_to_one():
    train = np.tile([0, 1, 2, 2, 3, 1, 0], 300)  # period 7: order 2 pins every next base
    model = MarkovDNALM(2).fit(train)
    assert model.bits_per_base(train[:500]) < 0.05
    assert MarkovDNALM(0).fit(train).bits_per_base(train[:500]) > 1.8
    for ctx in ([0, 1], [4, 4], [3, 3]):  # a seen and two unseen contexts
        probs = [math.exp(-model.nats(np.array([*ctx, b]))[-1]) for b in range(5)]
        assert sum(probs) == pytest.approx(1.0, abs=1e-12)


def test_the_largest_order_keeps_ids_in_int64():
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 5, 3000)
    model = MarkovDNALM(26).fit(codes)
    for at in (100, 2000):  # seen contexts, including ones led by G/T/N (large ids)
        ctx = codes[at - 26 : at]
        probs = [math.exp(-model.nats(np.array([*ctx, b]))[-1]) for b in range(5)]
        assert sum(probs) == pytest.approx(1.0, abs=1e-12)
        # a 26-base context seen once: its continuation gets (1 + 0.5) / (1 + 5 * 0.5)
        assert probs[codes[at]] == pytest.approx(1.5 / 3.5, abs=1e-12)


def test_order_is_chosen_on_the_training_tail_only():
    rng = np.random.default_rng(0)
    # an order-2 source: the next base is a noisy function of the two before it
    codes = [0, 1]
    table = rng.integers(0, 4, (4, 4))
    for _ in range(20_000):
        nxt = table[codes[-2], codes[-1]] if rng.random() < 0.8 else rng.integers(0, 4)
        codes.append(int(nxt))
    codes = np.array(codes)
    model, scores = select_markov_order(codes, [0, 1, 2, 3, 8])
    assert model.order == 2 and set(scores) == {0, 1, 2, 3, 8}
    assert scores[2] < scores[1] < scores[0] and scores[2] < scores[8]
    assert model.n_bases_ == len(codes)  # refitted on everything it was given
    with pytest.raises(ValueError, match="validation_fraction"):
        select_markov_order(codes, [1], validation_fraction=1.0)
    with pytest.raises(ValueError, match="at least one"):
        select_markov_order(codes, [])


def test_bad_inputs_say_what_is_wrong():
    with pytest.raises(ValueError, match=r"order must be in \[0, 26\]"):
        MarkovDNALM(27)
    with pytest.raises(TypeError, match="order must be an int"):
        MarkovDNALM(2.0)
    with pytest.raises(ValueError, match="alpha"):
        MarkovDNALM(2, alpha=0)
    with pytest.raises(ValueError, match="codes 0..4"):
        MarkovDNALM(1).fit(np.array([0, 1, 7]))
    with pytest.raises(TypeError, match="1-D integer array"):
        MarkovDNALM(1).fit(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="more than order=3"):
        MarkovDNALM(3).fit(np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="not fitted"):
        MarkovDNALM(1).nats(np.array([0, 1]))
    with pytest.raises(ValueError, match="at least 2 bases"):
        MarkovDNALM(1).fit(np.array([0, 1, 2])).bits_per_base(np.array([1]))
