"""Label-shift corrections of a collection's scores (`training/label_shift.py`) and per-speaker statistics shrunk
towards their corpus's (`feature_cache.shrunk_domain_statistics`)."""

import numpy as np
import pytest
import torch
from datasets import Array2D, Dataset, Features, Value

from modeling_genser.domain_normalization import domain_statistics
from training.feature_cache import POOLED_FEATURES_COLUMN, shrunk_domain_statistics
from training.label_shift import adjust_to_priors, balancing_offsets, estimate_class_priors, softmax

MEANS = np.array([-2.0, 0.0, 2.0])


def gaussian_logits(priors, num_clips, seed=0):
    """Clips of three classes drawn with `priors`, each a 1-D Gaussian of unit variance around its class mean, and
    their exact log-posteriors under uniform priors (up to a constant): what a calibrated model trained on balanced
    classes gives."""
    rng = np.random.default_rng(seed)
    classes = rng.choice(3, size=num_clips, p=priors)
    x = rng.normal(MEANS[classes], 1.0)
    return -0.5 * (x[:, None] - MEANS[None]) ** 2, classes


@pytest.mark.parametrize("priors", [(0.6, 0.3, 0.1), (0.1, 0.1, 0.8), (0.2, 0.5, 0.3)])
def test_em_recovers_known_class_priors_from_posteriors(priors):
    logits, _ = gaussian_logits(priors, 20000)
    naive = softmax(logits).mean(0)  # the mean posterior alone is pulled towards uniform
    estimated = estimate_class_priors(logits)
    np.testing.assert_allclose(estimated, priors, atol=0.02)
    assert np.abs(estimated - priors).max() < np.abs(naive - priors).max()


def test_the_estimated_priors_correct_the_decisions_on_a_shifted_collection():
    logits, classes = gaussian_logits((0.8, 0.15, 0.05), 20000, seed=1)
    accuracy = lambda scores: float((scores.argmax(-1) == classes).mean())  # noqa: E731
    assert accuracy(adjust_to_priors(logits, estimate_class_priors(logits))) > accuracy(logits) + 0.02


def test_a_balanced_collection_keeps_uniform_priors_and_its_scores():
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(50, 4)) * 3
    # Every row with its classes rotated: the mean posterior is exactly uniform, whatever the rows.
    logits = np.concatenate([np.roll(rows, shift, axis=1) for shift in range(4)])
    priors = estimate_class_priors(logits)
    np.testing.assert_allclose(priors, np.full(4, 0.25), atol=1e-12)
    np.testing.assert_allclose(adjust_to_priors(logits, priors), logits, atol=1e-12)
    np.testing.assert_allclose(balancing_offsets(logits), 0, atol=1e-12)


def test_balancing_makes_the_mean_posterior_equal_the_shares():
    logits, _ = gaussian_logits((0.7, 0.2, 0.1), 5000)
    for shares in (None, np.array([0.5, 0.3, 0.2])):
        balanced = softmax(logits + balancing_offsets(logits, shares)).mean(0)
        np.testing.assert_allclose(balanced, np.full(3, 1 / 3) if shares is None else shares, atol=1e-6)


def test_a_class_given_prior_zero_is_never_chosen():
    logits, _ = gaussian_logits((0.5, 0.5, 0.0), 100)
    assert (adjust_to_priors(logits, np.array([0.5, 0.5, 0.0])).argmax(-1) != 2).all()


def test_speaker_statistics_move_from_the_corpus_towards_their_own_as_their_clips_grow():
    rng = np.random.default_rng(0)
    sizes = {"a/many": 400, "a/few": 2, "b/one": 300}
    speakers = np.concatenate([[name] * size for name, size in sizes.items()])
    corpora = np.asarray([name.split("/")[0] for name in speakers])
    offsets = {"a/many": 0.0, "a/few": 5.0, "b/one": -3.0}
    pooled = np.stack([rng.normal(offsets[name], 1.0, size=(2, 3)) for name in speakers]).astype(np.float32)
    features = Dataset.from_dict(
        {POOLED_FEATURES_COLUMN: pooled, "speaker": speakers.tolist()},
        features=Features({POOLED_FEATURES_COLUMN: Array2D((2, 3), "float32"), "speaker": Value("string")}),
    )
    rows, table = shrunk_domain_statistics(features, speakers, corpora, prior_windows=8)
    names = sorted(sizes)
    assert table.shape == (3, 2, 2, 3) and [names[k] for k in rows[[0, 400, 402]]] == ["a/many", "a/few", "b/one"]
    own = {name: domain_statistics(torch.as_tensor(pooled[speakers == name])) for name in names}
    corpus_a = domain_statistics(torch.as_tensor(pooled[corpora == "a"]))
    few, many = table[names.index("a/few")], table[names.index("a/many")]
    # Two clips weigh 2 / (2 + 8) against the corpus's mean; 400 clips weigh 400 / 408.
    torch.testing.assert_close(few[0], 0.2 * own["a/few"][0] + 0.8 * corpus_a[0], atol=1e-4, rtol=0)
    torch.testing.assert_close(many[0], (400 * own["a/many"][0] + 8 * corpus_a[0]) / 408, atol=1e-4, rtol=0)
    # A speaker alone in its corpus shrinks towards itself: its own statistics.
    torch.testing.assert_close(table[names.index("b/one")], own["b/one"], atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="several parents"):
        shrunk_domain_statistics(features, np.asarray(["x"] * len(speakers)), corpora, prior_windows=8)
