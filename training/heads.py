# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Every head trained on cached features, made by one factory (`new_head`): Gen-SER, two variants of it that
benchmarks measure, and the classification-head baselines Gen-SER is measured against (`--head linear` / `--head
mlp`), and for dimensional targets the same heads as regressors.

They read the same cached per-layer pooled features and build the same condition as Gen-SER (same layer
aggregation, same domain normalisation and per-feature standardisation), then apply a cross-entropy classifier (a
squared-error regressor) instead of the generative head, so a comparison changes one thing only. With
`trainable_encoder_layers` > 0 they also train a copy of the encoder's top layers on the cached lower-layer frames,
exactly as Gen-SER does.
"""

import copy

import torch
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

from modeling_genser import GenSERConfig, GenSERForAudioClassification
from modeling_genser.domain_layers import GenSERDomainLinear, checked_domain_ids, dropped_domain_ids
from modeling_genser.modeling_genser import GenSERConditioner, GenSEROutput
from modeling_genser.speech_encoder import pooled_features_from_frames, top_encoder_layers


class PooledFeatureClassifier(nn.Module):
    """Linear (`hidden_size=None`) or one-hidden-layer MLP classifier on pooled encoder features; for dimensional
    targets (`config.problem_type="regression"`) a regressor of their values, trained with the squared error.

    Args:
        config: the Gen-SER config whose condition (pooling, layer aggregation) the baseline shares.
        hidden_size: width of the MLP's hidden layer; None for a linear classifier.
        encoder: the pretrained encoder whose top `config.trainable_encoder_layers` layers (copied) train with the
            classifier; needed only when that is > 0.
    """

    def __init__(self, config: GenSERConfig, hidden_size: int | None = None, dropout: float = 0.2, encoder=None):
        super().__init__()
        self.pooling = config.pooling
        if config.trainable_encoder_layers:
            if encoder is None:
                raise ValueError("A classifier with trainable_encoder_layers > 0 needs the pretrained `encoder`.")
            layers, final_norm = top_encoder_layers(encoder, config.trainable_encoder_layers)
            self.top_layers = copy.deepcopy(layers).requires_grad_(True)
            self.final_norm = None if final_norm is None else copy.deepcopy(final_norm).requires_grad_(True)
        self.config = config
        self.conditioner = GenSERConditioner(config)
        width = self.conditioner.condition_dim
        num_domains = len(config.domain_names or ())  # the condition's map has per-domain residuals, as Gen-SER's
        if hidden_size is None:
            self.condition_map, self.classifier = GenSERDomainLinear(width, config.num_labels, num_domains), None
        else:
            self.condition_map = GenSERDomainLinear(width, hidden_size, num_domains)
            self.classifier = nn.Sequential(nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden_size, config.num_labels))

    def forward(
        self,
        pooled_layer_features: torch.Tensor | None = None,
        lower_layer_frames: torch.Tensor | None = None,
        frame_mask: torch.Tensor | None = None,
        lower_pooled_layer_features: torch.Tensor | None = None,
        domain_statistics: torch.Tensor | None = None,
        domain_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ):
        """`pooled_layer_features` `(batch, layers, hidden)`, or the cached lower-layer features, the
        `domain_statistics` and `domain_ids`, as for `GenSERForAudioClassification.forward` -> logits
        `(batch, num_labels)` (a regressor's values)."""
        if pooled_layer_features is None:
            pooled_layer_features = pooled_features_from_frames(
                self.top_layers, self.final_norm, lower_layer_frames, frame_mask, lower_pooled_layer_features,
                self.pooling,
            )
        domain_ids = checked_domain_ids(domain_ids, self.config.domain_names)
        if self.training:
            domain_ids = dropped_domain_ids(domain_ids, self.config.domain_residual_dropout)
        logits = self.condition_map(self.conditioner(pooled_layer_features, domain_statistics), domain_ids)
        if self.classifier is not None:
            logits = self.classifier(logits)
        if labels is None:
            loss = None
        elif self.config.problem_type == "regression":  # a regressor of the dimensions' values
            loss = nn.functional.mse_loss(logits, labels.reshape(logits.shape).to(logits.dtype))
        else:
            loss = nn.functional.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


class GenSERPriorReadout(GenSERForAudioClassification):
    """Gen-SER trained exactly as `genser` is (same seed, same weights), but scored by its initial distribution's
    prior alone, the linear map of the condition that starts the bridge: where the generative step gains or loses
    against it."""

    def forward(
        self, pooled_layer_features, domain_statistics=None, domain_ids=None, labels=None, num_inference_steps=None
    ):
        if self.training:
            return super().forward(
                pooled_layer_features=pooled_layer_features, domain_statistics=domain_statistics,
                domain_ids=domain_ids, labels=labels,
            )  # fmt: skip
        condition = self.conditioner(pooled_layer_features, domain_statistics)
        return GenSEROutput(logits=self.prior(condition, checked_domain_ids(domain_ids, self.config.domain_names)))


class GenSERDetachedDenoiserCondition(GenSERForAudioClassification):
    """Gen-SER whose denoiser reads the condition detached: the target-matching and similarity losses no longer train
    the condition's shared per-feature norm, which the prior's cross-entropy alone then shapes, as a linear head's
    own loss shapes its norm. Whether those losses pulling the shared condition cost the prior what a linear head
    keeps."""

    def __init__(self, config):
        super().__init__(config)
        denoise = self.denoiser.forward
        self.denoiser.forward = lambda sample, timesteps, condition: denoise(sample, timesteps, condition.detach())


# The Gen-SER heads by kind; `genser-arousal` (of emotions and arousal) and `genser-levels` (of arousal levels as
# classes) are Gen-SER itself, named apart by the benchmarks that train it on other data.
GENSER_HEADS = {
    "genser": GenSERForAudioClassification,
    "genser-arousal": GenSERForAudioClassification,
    "genser-levels": GenSERForAudioClassification,
    "genser-prior": GenSERPriorReadout,
    "genser-detached": GenSERDetachedDenoiserCondition,
}
HEAD_KINDS = (*GENSER_HEADS, "linear", "mlp")


def new_head(kind: str, config: GenSERConfig, mlp_hidden_size: int = 256, mlp_dropout: float = 0.2, encoder=None):
    """A freshly initialised head of `kind` (`HEAD_KINDS`) on the condition `config` describes: a Gen-SER head
    (`GENSER_HEADS`; multi-task with `config.label_sets`, dimensional with `problem_type="regression"`), or a linear
    / MLP classifier (regressor) whose `encoder`'s top layers train with it when `config.trainable_encoder_layers` >
    0."""
    if kind == "genser-prior" and config.initial_distribution != "prior":
        raise ValueError("The genser-prior head needs initial_distribution=prior in --config_overrides.")
    if kind in GENSER_HEADS:
        return GENSER_HEADS[kind](config)
    if kind not in HEAD_KINDS:
        raise ValueError(f"Unknown head {kind!r}: choose among {', '.join(HEAD_KINDS)}.")
    if config.label_sets:
        raise ValueError(f"--task_columns trains one multi-task Gen-SER head; the {kind} baseline predicts one task.")
    return PooledFeatureClassifier(config, mlp_hidden_size if kind == "mlp" else None, mlp_dropout, encoder)
