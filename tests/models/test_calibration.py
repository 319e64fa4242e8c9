"""Temperature scaling recovers a known temperature; ECE and reliability bins on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.models.calibration import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    logit,
    reliability_bins,
    sigmoid,
)


@pytest.mark.parametrize("true_t", [0.5, 1.0, 2.5, 4.0])
def test_fit_recovers_a_known_temperature(true_t):
    # labels drawn from calibrated probabilities sigmoid(z); the model reports sigmoid(z * T),
    # i.e. over-confident by T; the fit must find T back
    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 1.5, 40_000)
    y = rng.random(z.shape) < sigmoid(z)
    reported = sigmoid(z * true_t)
    fitted = fit_temperature(reported, y)
    assert fitted == pytest.approx(true_t, rel=0.05)
    assert expected_calibration_error(apply_temperature(reported, fitted), y) < 0.01


def test_temperature_one_is_bit_identical_and_ranking_is_kept():
    p = np.array([0.0, 1e-9, 0.2, 0.5, 0.9, 1.0])
    assert apply_temperature(p, 1.0) is not None
    assert np.array_equal(apply_temperature(p, 1.0), p)
    hot = apply_temperature(p, 3.0)
    assert np.all(np.diff(hot) >= 0)  # monotone: ROC AUC unchanged
    assert hot[3] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="temperature"):
        apply_temperature(p, 0.0)


def test_fit_needs_both_classes():
    with pytest.raises(ValueError, match="both"):
        fit_temperature([0.2, 0.9], [1, 1])
    with pytest.raises(ValueError, match="non-empty"):
        fit_temperature([], [])


def test_ece_by_hand():
    # two bins used: [0.1]*4 with 1 fake (observed 0.25, |0.25-0.1| = 0.15),
    # [0.9]*4 with 4 fakes (observed 1.0, |1.0-0.9| = 0.1); ECE = (4*0.15 + 4*0.1) / 8 = 0.125
    p = [0.1] * 4 + [0.9] * 4
    y = [1, 0, 0, 0] + [1, 1, 1, 1]
    assert expected_calibration_error(p, y) == pytest.approx(0.125)
    bins = reliability_bins(p, y, n_bins=10)
    assert sum(bins.counts) == 8 and bins.counts[1] == 4 and bins.counts[9] == 4
    assert bins.fraction_fake[9] == 1.0 and np.isnan(bins.mean_p_fake[5])


def test_p_one_falls_in_the_last_bin_and_logit_is_finite():
    assert reliability_bins([1.0, 0.0], [1, 0], n_bins=4).counts == (1, 0, 0, 1)
    assert np.all(np.isfinite(logit([0.0, 1.0])))
