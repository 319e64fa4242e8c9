"""Heads on backbone features: the NumPy forward pass equals scikit-learn's, files round-trip, bad files refused."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import WeightsError
from pipeline.models.head import Head


def _data(n=200, f=12, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, f)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] ** 2 > 0.3).astype(int)
    return x, y


def test_mlp_head_matches_sklearn_decision_function():
    from sklearn.neural_network import MLPClassifier

    x, y = _data()
    mean, scale = x.mean(0), x.std(0)
    model = MLPClassifier(hidden_layer_sizes=(16, 8), max_iter=300, random_state=0).fit((x - mean) / scale, y)
    head = Head.from_sklearn(mean, scale, model)
    p_sklearn = model.predict_proba((x - mean) / scale)[:, 1]
    p_ours = 1.0 / (1.0 + np.exp(-head.logit(x)))
    np.testing.assert_allclose(p_ours, p_sklearn, atol=1e-5)


def test_logistic_head_matches_sklearn():
    from sklearn.linear_model import LogisticRegression

    x, y = _data()
    mean, scale = x.mean(0), x.std(0)
    model = LogisticRegression().fit((x - mean) / scale, y)
    head = Head.from_sklearn(mean, scale, model)
    np.testing.assert_allclose(head.logit(x), model.decision_function((x - mean) / scale), atol=1e-4)


def test_head_file_round_trips(tmp_path):
    rng = np.random.default_rng(1)
    head = Head(
        np.zeros(4, np.float32),
        np.ones(4, np.float32),
        (rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(3, 1)).astype(np.float32)),
        (np.zeros(3, np.float32), np.ones(1, np.float32)),
    )
    head.save(tmp_path / "h.npz")
    again = Head.load(tmp_path / "h.npz")
    x = rng.normal(size=(5, 4))
    np.testing.assert_array_equal(again.logit(x), head.logit(x))
    assert again.n_features == 4


def test_head_refuses_shapes_that_do_not_chain():
    with pytest.raises(ValueError, match="one output"):
        Head(
            np.zeros(2, np.float32), np.ones(2, np.float32), (np.zeros((2, 3), np.float32),), (np.zeros(3, np.float32),)
        )
    with pytest.raises(ValueError, match="do not follow"):
        Head(
            np.zeros(2, np.float32), np.ones(2, np.float32), (np.zeros((3, 1), np.float32),), (np.zeros(1, np.float32),)
        )


def test_not_a_head_file_is_a_weights_error(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, something=np.zeros(3))
    with pytest.raises(WeightsError, match="not a head file"):
        Head.load(bad)
