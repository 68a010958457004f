# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""The losses of target matching: the denoiser regresses the terminal sample (a class code) itself from a bridge
sample, and the prior and similarity cross-entropies read each clip's observed labels only.

The model (`GenSERForAudioClassification.target_matching_loss`) draws the bridge sample and combines these.
"""

import math

import torch
from torch import nn

from .taxonomy_encoding import MISSING_LABEL, label_tuples


def cosine_target_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean of ``1 - cos(prediction, target)`` over the batch: target matching in the geometry the class is read
    off by (cosine similarity to the codes), blind to the prediction's norm.

    Args:
        prediction, target (`torch.Tensor` of shape `(batch_size, encoding_dim)`)
    """
    return (1 - nn.functional.cosine_similarity(prediction, target, dim=-1)).mean()


def target_matching_error(
    prediction: torch.Tensor, terminal: torch.Tensor, target_loss: str, observed: torch.Tensor | None = None
) -> torch.Tensor:
    """The denoiser's error against the terminal sample (`target_loss`: `"mse"` or `"cosine"`), over the `observed`
    columns only when given (a clip's code slices of the tasks it has a label for).

    Args:
        prediction, terminal (`torch.Tensor` of shape `(batch_size, encoding_dim)`)
        observed (`torch.BoolTensor` of shape `(batch_size, encoding_dim)`, *optional*)
    """
    if observed is not None:
        prediction, terminal = prediction * observed, terminal * observed
    if target_loss == "cosine":
        return cosine_target_loss(prediction, terminal)
    if observed is None:
        return nn.functional.mse_loss(prediction, terminal)
    return (prediction - terminal).square().sum() / observed.sum()


def observed_label_nll(log_probabilities: torch.Tensor, labels: torch.Tensor, label_counts: list[int]) -> torch.Tensor:
    """Mean negative log-likelihood of every clip's observed labels, a missing one (`MISSING_LABEL`) marginalised out:
    with every label, the cross-entropy of the clip's label tuple; without task t's, of the tuples that agree with it
    on the other tasks, their probabilities summed (for tasks independent given the condition, task t drops out).

    Args:
        log_probabilities (`torch.Tensor` of shape `(batch_size, prod(label_counts))`): over label tuples, in the
            order of `label_tuples`.
        labels (`torch.LongTensor` of shape `(batch_size, num_tasks)`): one label index per task, or `MISSING_LABEL`.
    """
    tuples = label_tuples(label_counts).to(labels.device)
    agrees = ((labels[:, None] == tuples[None]) | (labels[:, None] == MISSING_LABEL)).all(-1)  # (batch, tuples)
    return -log_probabilities.masked_fill(~agrees, -math.inf).logsumexp(-1).mean()
