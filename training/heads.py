# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""The classification-head baselines Gen-SER is measured against (`--head linear` / `--head mlp`).

They read the same cached per-layer pooled features and build the same condition as Gen-SER (same layer
aggregation, same per-feature standardisation), then apply a cross-entropy classifier instead of the generative head,
so a comparison changes one thing only.
"""

import torch
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

from modeling_genser import GenSERConfig
from modeling_genser.modeling_genser import GenSERConditioner


class PooledFeatureClassifier(nn.Module):
    """Linear (`hidden_size=None`) or one-hidden-layer MLP classifier on pooled encoder features.

    Args:
        config: the Gen-SER config whose condition (pooling, layer aggregation) the baseline shares.
        hidden_size: width of the MLP's hidden layer; None for a linear classifier.
    """

    def __init__(self, config: GenSERConfig, hidden_size: int | None = None, dropout: float = 0.2):
        super().__init__()
        self.conditioner = GenSERConditioner(config)
        width = self.conditioner.condition_dim
        if hidden_size is None:
            self.classifier = nn.Linear(width, config.num_labels)
        else:
            self.classifier = nn.Sequential(
                nn.Linear(width, hidden_size), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden_size, config.num_labels)
            )

    def forward(self, pooled_layer_features: torch.Tensor, labels: torch.Tensor | None = None, **kwargs):
        """`pooled_layer_features`: `(batch, layers, hidden)` -> logits `(batch, num_labels)`."""
        logits = self.classifier(self.conditioner(pooled_layer_features))
        loss = None if labels is None else nn.functional.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)
