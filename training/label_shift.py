# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Label shift: a collection's class shares differ from the training data's, and a model's scores can be corrected
for it without labels. Pure functions on `(num_clips, num_classes)` logits of one task (a held-out corpus's, restricted
to the labels it is scored on), measured as adaptation options by `benchmarks/evaluate_across_corpora.py`.

- `estimate_class_priors`: the collection's class priors by EM on the model's posteriors (Saerens, Latinne and
  Decaestecker, Neural Computation 14, 2002), the classic label-shift correction; `adjust_to_priors` applies them.
- `balancing_offsets`: per-class offsets that make the collection's mean posterior equal given shares (Sinkhorn
  balancing: the priors are asserted, not estimated).

The heads are trained on draws balanced over class (`training.data.corpus_balancing_weights`), so their training
priors are uniform over the classes scored.
"""

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of `(num_clips, num_classes)` logits, in float64."""
    shifted = np.asarray(logits, dtype=np.float64) - np.max(logits, axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(-1, keepdims=True)


def estimate_class_priors(logits: np.ndarray, max_iterations: int = 1000, tolerance: float = 1e-8) -> np.ndarray:
    """The collection's `(num_classes,)` class priors by EM (Saerens et al. 2002), for logits of a model trained on
    uniform priors: each step reweights every clip's posterior by the current priors and takes the mean of the
    reweighted posteriors as the next priors. A collection whose mean posterior is uniform keeps uniform priors."""
    probabilities = softmax(logits)
    priors = np.full(probabilities.shape[1], 1 / probabilities.shape[1])
    for _ in range(max_iterations):
        reweighted = probabilities * priors
        updated = (reweighted / reweighted.sum(-1, keepdims=True)).mean(0)
        converged = np.abs(updated - priors).max() < tolerance
        priors = updated
        if converged:
            break
    return priors


def adjust_to_priors(logits: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """`(num_clips, num_classes)` logits whose softmax is the posterior under `priors` instead of uniform ones (Bayes'
    rule: add the log prior ratio). A class with prior 0 gets -inf."""
    with np.errstate(divide="ignore"):
        return np.asarray(logits, dtype=np.float64) + np.log(priors * len(priors))


def balancing_offsets(logits: np.ndarray, shares: np.ndarray | None = None, iterations: int = 200) -> np.ndarray:
    """`(num_classes,)` offsets that, added to the logits, make the collection's mean posterior equal `shares`
    (default: equal shares), by Sinkhorn's alternate scaling."""
    probabilities = softmax(logits)
    shares = np.full(probabilities.shape[1], 1 / probabilities.shape[1]) if shares is None else np.asarray(shares)
    scale = np.ones(probabilities.shape[1])
    for _ in range(iterations):
        scaled = probabilities * scale
        scale *= shares / (scaled / scaled.sum(-1, keepdims=True)).mean(0)
    return np.log(scale)
