"""Temperature scaling, calibration error and the suggested threshold, on known answers."""

from __future__ import annotations

import numpy as np

from fmnist_edge.train import confidence


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _sampled(temperature: float, n: int = 20000) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities over-confident by ``temperature``: labels drawn from the true ones."""
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2.0, (n, 10))
    true = _softmax(logits)
    labels = np.array([rng.choice(10, p=p) for p in true])
    return _softmax(logits * temperature), labels


def test_fit_recovers_the_temperature_and_lowers_ece() -> None:
    probs, labels = _sampled(2.0)
    t = confidence.fit_temperature(probs, labels)
    assert 1.8 < t < 2.2
    calibrated = confidence.apply_temperature(probs, t)
    assert confidence.ece(calibrated, labels) < 0.02 < confidence.ece(probs, labels)
    assert (calibrated.argmax(axis=1) == probs.argmax(axis=1)).all()
    assert np.allclose(calibrated.sum(axis=1), 1.0, atol=1e-5)


def test_calibrated_data_keeps_temperature_one() -> None:
    probs, labels = _sampled(1.0)
    assert 0.9 < confidence.fit_temperature(probs, labels) < 1.1


def test_threshold_leaves_at_most_ten_percent_of_correct_answers_below() -> None:
    probs, labels = _sampled(1.0)
    threshold = confidence.suggest_threshold(probs, labels)
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    below = np.mean(conf[correct] < threshold)
    assert 0.09 <= below <= 0.10
    assert confidence.suggest_threshold(probs, labels, 0.0) <= conf[correct].min()


def test_zero_probabilities_stay_zero() -> None:
    probs = np.array([[0.0, 0.75, 0.25]])
    out = confidence.apply_temperature(probs, 0.5)
    assert out[0, 0] == 0.0 and np.isclose(out[0, 1], 0.9)


def test_calibrate_reports_every_figure() -> None:
    probs, labels = _sampled(1.5, 3000)
    out = confidence.calibrate(probs, labels, probs[:1000], labels[:1000])
    assert set(out) == {"temperature", "min_confidence", "ece_val_before", "ece_val_after",
                        "ece_photo_val_before", "ece_photo_val_after", "unsure_correct_share"}
    assert out["unsure_correct_share"] <= confidence.MAX_UNSURE_CORRECT
    assert out["ece_val_after"] < out["ece_val_before"]
