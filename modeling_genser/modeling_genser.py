# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Gen-SER: speech emotion recognition as distribution transport (Wang et al., ICASSP 2026, arXiv 2601.20573).

Data flows one way:

    audio -> feature extractor -> speech encoder (once per clip) -> per-layer masked pooling
          -> weighted layer sum or concatenation, standardised (the *condition*) -> generative head (bridge sampling from the initial
          to the terminal distribution) -> cosine similarities to the taxonomy codes (``logits``) -> labels.

Training is *target matching*: the denoiser sees a bridge sample ``x_t`` between an initial sample and the class
code, and regresses the class code itself, with a mean squared error or ``1 - cos`` (`target_loss`).

This file defines the model's modules and how they connect. Each concern has a file of its own: running the speech
encoder (`speech_encoder.py`), the domain normalisation's maths (`domain_normalization.py`) and per-domain weights
(`domain_layers.py`), the codes and their reading (`taxonomy_encoding.py`), the losses (`target_matching.py`), the
bridge (`scheduling_genser.py`) and sampling it (`generation_genser.py`).
"""

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.utils import ModelOutput
from transformers.utils.generic import can_return_tuple

from .configuration_genser import GenSERConfig
from .domain_layers import GenSERDomainLinear, checked_domain_ids, dropped_domain_ids
from .domain_normalization import (
    domain_moments,
    domain_statistics_from_moments,
    shrunk_moments,
    standardise_by_domain,
    with_pool_statistics,
)
from .generation_genser import GenSERSamplingMixin
from .scheduling_genser import GenSERScheduler
from .shipped_code import ship_named_pipelines
from .speech_encoder import (
    GenSERSpeechEncoderMixin,
    build_speech_encoder,
    load_speech_encoder,
)
from .target_matching import observed_label_nll, target_matching_error
from .taxonomy_encoding import GenSERCodeBookMixin


@dataclass
class GenSEROutput(SequenceClassifierOutput):
    """
    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*): target-matching loss, returned when `labels` are given.
        logits (`torch.FloatTensor` of shape `(batch_size, num_labels)`):
            Cosine similarities of the generated vectors to every class code, divided by `similarity_temperature`.
            With several samples per clip, the log of their mean softmax, so a softmax of `logits` gives the
            samples' averaged class probabilities.
        generated (`torch.FloatTensor` of shape `(batch_size, encoding_dim)`):
            The terminal samples produced by the bridge (from the first initial sample).
        trajectory (`torch.FloatTensor` of shape `(batch_size, num_inference_steps + 1, encoding_dim)`, *optional*):
            The bridge samples at every time of the schedule, initial sample first; with `output_trajectory=True`.
        sample_logits (`torch.FloatTensor` of shape `(batch_size, num_samples, num_labels)`, *optional*):
            The logits of every initial sample, when `num_samples > 1`; their spread is the model's uncertainty.
        task_logits (`ModelOutput` of `torch.FloatTensor`, *optional*):
            Multi-task models (`config.label_sets`): every task's logits, `(batch_size, num_task_labels)`, keyed by
            task name in task order (`task_logits["arousal"]`, or by position); `logits` is the first task's.
    """

    generated: torch.FloatTensor | None = None
    trajectory: torch.FloatTensor | None = None
    sample_logits: torch.FloatTensor | None = None
    task_logits: ModelOutput | None = None


class GenSERResidualBlock(nn.Module):
    def __init__(self, hidden_size: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(hidden_size)
        self.fc1 = nn.Linear(hidden_size, 2 * hidden_size)
        self.act = nn.GELU()
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(2 * hidden_size, hidden_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden + self.fc2(self.dropout(self.act(self.fc1(self.norm(hidden)))))


class GenSERConditionNorm(nn.BatchNorm1d):
    """Per-feature standardisation of the condition, with statistics learned over the training data.

    Pooled encoder features differ between classes by far less than their shared offset (frozen Whisper features
    vary by ~1e-3 around it), which a per-vector LayerNorm does not undo: it centres and scales each vector by its own
    mean and spread, which the shared offset dominates, so the classes stay as close as they were. A training batch
    of one clip has no batch statistics, so it is normalised with the running ones.
    """

    def forward(self, condition: torch.Tensor) -> torch.Tensor:
        if self.training and condition.shape[0] == 1:
            return nn.functional.batch_norm(
                condition, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
            )
        return super().forward(condition)


class GenSERConditioner(nn.Module):
    """Turns per-layer pooled encoder features into the condition of the generative head.

    With `config.domain_normalization` the pooled features are first standardised with their domain's statistics
    (`standardise_by_domain`): those given with the clips, else the training pool's (the `domain_statistics` buffer,
    saved with the model); in training, with `config.pool_statistics_probability`, some clips get the pool's instead
    (`with_pool_statistics`). The layers are combined by a learnable softmax-weighted sum (`(batch, layers, hidden)` ->
    `(batch, hidden)`) or concatenated (-> `(batch, layers * hidden)`), then standardised per feature (and dropped
    out in training).
    """

    def __init__(self, config: GenSERConfig):
        super().__init__()
        self.aggregation = config.layer_aggregation
        num_layers, width = config.pooled_features_shape
        if self.aggregation == "concat":
            self.condition_dim = width * num_layers
        else:
            self.condition_dim = width
            self.layer_weights = nn.Parameter(torch.zeros(num_layers))
        self.norm = GenSERConditionNorm(self.condition_dim)
        self.dropout = nn.Dropout(config.condition_dropout)
        self.domain_normalization = config.domain_normalization
        self.pool_statistics_probability = config.pool_statistics_probability
        if self.domain_normalization:
            identity = torch.stack([torch.zeros(num_layers, width), torch.ones(num_layers, width)])
            self.register_buffer("domain_statistics", identity)

    def set_domain_statistics(self, statistics: torch.Tensor) -> None:
        """Stores the training pool's `(2, num_layers, width)` statistics, used for clips that come without their
        domain's."""
        if not self.domain_normalization:
            raise ValueError("set_domain_statistics needs a model with config.domain_normalization=True.")
        self.domain_statistics.copy_(statistics)

    def forward(
        self, pooled_layer_features: torch.Tensor, domain_statistics: torch.Tensor | None = None
    ) -> torch.Tensor:
        if self.domain_normalization:
            statistics = self.domain_statistics if domain_statistics is None else domain_statistics
            if self.training and domain_statistics is not None and self.pool_statistics_probability > 0:
                chosen = torch.rand(len(pooled_layer_features), device=statistics.device) < self.pool_statistics_probability
                statistics = with_pool_statistics(statistics, self.domain_statistics, chosen)
            pooled_layer_features = standardise_by_domain(pooled_layer_features, statistics)
        elif domain_statistics is not None:
            raise ValueError(
                "domain_statistics were given, but this model was trained without domain normalisation "
                "(config.domain_normalization=False): drop them."
            )
        if self.aggregation == "concat":
            combined = pooled_layer_features.flatten(start_dim=1)
        else:
            weights = self.layer_weights.softmax(dim=0).to(pooled_layer_features.dtype)
            combined = torch.einsum("l,blh->bh", weights, pooled_layer_features)
        return self.dropout(self.norm(combined))


class GenSERDenoiser(nn.Module):
    """The target-matching network: predicts the terminal sample ``x_1`` from ``(x_t, t, condition)``."""

    def __init__(self, config: GenSERConfig, condition_dim: int, num_train_timesteps: int):
        super().__init__()
        hidden = config.head_hidden_size
        self.num_train_timesteps = num_train_timesteps
        self.sample_proj = nn.Linear(config.encoding_dim, hidden)
        self.condition_proj = nn.Linear(condition_dim, hidden)
        self.time_proj = Timesteps(hidden, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(hidden, hidden)
        self.blocks = nn.ModuleList(GenSERResidualBlock(hidden, config.head_dropout) for _ in range(config.head_num_layers))
        self.out_norm = nn.LayerNorm(hidden)
        self.out_proj = nn.Linear(hidden, config.encoding_dim)

    def forward(self, sample: torch.Tensor, timesteps: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """
        Args:
            sample (`torch.Tensor` of shape `(batch_size, encoding_dim)`): the bridge sample ``x_t``.
            timesteps (`torch.Tensor` of shape `(batch_size,)`): times in [0, 1].
            condition (`torch.Tensor` of shape `(batch_size, condition_dim)`): the pooled speech condition.
        Returns:
            `torch.Tensor` of shape `(batch_size, encoding_dim)`: the predicted terminal sample.
        """
        return self.denoise(sample, self.condition_proj(condition) + self.embed_time(timesteps))

    def embed_time(self, timesteps: torch.Tensor) -> torch.Tensor:
        """`(num_times,)` times in [0, 1] -> `(num_times, hidden)` time embeddings."""
        # The sinusoidal time features are designed for integer diffusion steps: the scheduler's
        # `num_train_timesteps` spreads [0, 1] over them.
        return self.time_embedding(self.time_proj(timesteps * self.num_train_timesteps).to(timesteps.dtype))

    def denoise(self, sample: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """The prediction from `sample` and the summed condition and time embedding, both `(batch_size, hidden)`.
        Sampling embeds the condition and the schedule's times once per call and runs only this per step."""
        hidden = self.sample_proj(sample) + embedding
        for block in self.blocks:
            hidden = block(hidden)
        return self.out_proj(self.out_norm(hidden))


class GenSERPreTrainedModel(PreTrainedModel):
    config_class = GenSERConfig
    base_model_prefix = "genser"
    main_input_name = "input_values"
    supports_gradient_checkpointing = False

    def save_pretrained(self, save_directory, *args, **kwargs):
        """`PreTrainedModel.save_pretrained` (and so `push_to_hub`), which also ships the pipeline module the config
        names (`shipped_code.ship_named_pipelines`), from where this model was loaded."""
        super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):
            ship_named_pipelines(self.config, self.name_or_path, save_directory)

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, GenSERConditioner) and module.aggregation == "weighted_sum":
            init.zeros_(module.layer_weights)
        if isinstance(module, GenSERDomainLinear) and hasattr(module, "domain_weight"):
            init.zeros_(module.domain_weight)
        if isinstance(module, GenSERForAudioClassification):
            # Non-persistent buffers are not in the checkpoint: from_pretrained rebuilds them here.
            init.copy_(module.class_codes, module.terminal_codes())
            if module.is_dimensional:
                init.copy_(module.value_grid, module.grid_values())


class GenSERForAudioClassification(
    GenSERCodeBookMixin, GenSERSpeechEncoderMixin, GenSERSamplingMixin, GenSERPreTrainedModel
):
    """Gen-SER: a speech encoder plus a generative head that transports noise to the taxonomy code of the emotion."""

    def __init__(self, config: GenSERConfig):
        super().__init__(config)
        self.encoder = build_speech_encoder(config.encoder_config)
        self.main_input_name = self.encoder.main_input_name
        self.conditioner = GenSERConditioner(config)
        self.scheduler = GenSERScheduler(**config.scheduler_config)
        num_train_timesteps = self.scheduler.config.num_train_timesteps
        self.denoiser = GenSERDenoiser(config, self.conditioner.condition_dim, num_train_timesteps)
        num_domains = len(config.domain_names or ())
        if config.initial_distribution == "condition":
            self.initial_proj = GenSERDomainLinear(self.conditioner.condition_dim, config.encoding_dim, num_domains)
        elif config.initial_distribution == "prior":
            if self.is_dimensional:
                prior_outputs = config.num_labels
            elif self.per_task_prior:
                prior_outputs = sum(self.label_counts)
            else:
                prior_outputs = math.prod(self.label_counts)
            self.prior = GenSERDomainLinear(self.conditioner.condition_dim, prior_outputs, num_domains)
        self.register_buffer("class_codes", self.terminal_codes(), persistent=False)
        if self.is_dimensional:
            self.register_buffer("value_grid", self.grid_values(), persistent=False)
        self._time_embedding_cache = (None, None)  # see schedule_time_embeddings
        if config.freeze_encoder:
            self.encoder.requires_grad_(False)
            for module in self.trainable_encoder_modules():
                module.requires_grad_(True)
        self.post_init()

    # The domain normalisation's maths, reachable from the model for code that has no import of this module (the
    # pipeline shipped with a saved model).
    domain_moments = staticmethod(domain_moments)

    def collection_statistics_from_moments(
        self, count: int, total: torch.Tensor, squares: torch.Tensor, prior: torch.Tensor | None = None
    ) -> torch.Tensor:
        """A collection's (or a folder's, a speaker's) `(2, num_layers, width)` statistics from its `domain_moments`
        (`(num_layers, width)` each): shrunk towards `prior` (default: the training pool's, stored in the model) by
        `config.statistics_prior_windows` pseudo-windows (`shrunk_moments`), so that a handful of windows counts for
        a handful and a corpus for a corpus."""
        prior = self.conditioner.domain_statistics if prior is None else prior
        shrunk = shrunk_moments(count, total, squares, prior, self.config.statistics_prior_windows)
        return domain_statistics_from_moments(*shrunk)

    @classmethod
    def from_encoder(cls, encoder_name_or_path: str, id2label: dict[int, str], **config_kwargs):
        """Builds a Gen-SER model around a pretrained speech encoder, with a freshly initialised head.

        Example: ``GenSERForAudioClassification.from_encoder("openai/whisper-tiny.en", {0: "angry", 1: "sad"})``.
        """
        encoder, encoder_config = load_speech_encoder(encoder_name_or_path)
        name = str(encoder_name_or_path)
        config = GenSERConfig(
            encoder_config=encoder_config,
            # A local directory is named by its folder only: the saved config names no path of this machine.
            encoder_name_or_path=Path(name).name if os.path.isdir(name) else name,
            id2label=dict(id2label),
            label2id={label: index for index, label in id2label.items()},
            **config_kwargs,
        )
        model = cls(config)
        model.encoder.load_state_dict(encoder.state_dict())
        return model

    def add_domains(self, names: list[str]) -> None:
        """Gives each of `names` that is not yet one of `config.domain_names` residual weights of its own (e.g. a new
        corpus that a saved model goes on training on), after the existing domains' and starting at zero: until it
        trains, a new domain's clips read as any new speech, with the shared weights."""
        known = list(self.config.domain_names or [])
        new = [name for name in names if name not in known]
        if not new:
            return
        if self.config.initial_distribution == "gaussian":
            raise ValueError(
                "Domain residuals weigh the initial distribution's map of the condition; the \"gaussian\" start has none."
            )
        layer = self.prior if self.config.initial_distribution == "prior" else self.initial_proj
        layer.add_domains(len(new))
        self.config.domain_names = known + new

    def add_labels(self, names: list[str]) -> None:
        """New classes of the first task (e.g. a user's "contempt"), after its labels: each gets the taxonomy code of
        the next class index, so every existing class keeps its code (with several tasks, every existing label tuple
        keeps its code and its index, the first task's label varying slowest), and the prior an output of its own, zero
        until it trains (the existing classes' logits unchanged). Names the model has already are refused."""
        labels = list(self.config.id2label.values())
        if known := sorted(set(names) & set(labels)):
            raise ValueError(f"{known} are labels of this model already: only labels it lacks can be added.")
        if len(set(names)) != len(names):
            raise ValueError(f"New labels must be distinct, got {names}.")
        if self.is_dimensional:
            raise ValueError("A dimensional model (problem_type='regression') predicts values: it has no labels to add.")
        if not names:
            return
        if self.config.initial_distribution == "prior":
            # The prior's outputs: one per class (label tuple, new ones last), or per task with the first task's first.
            if self.per_task_prior:
                self.prior.add_outputs(len(labels), len(names))
            else:
                tuples_per_label = math.prod(self.label_counts[1:])
                self.prior.add_outputs(self.prior.out_features, len(names) * tuples_per_label)
        labels += list(names)
        self.config.id2label = dict(enumerate(labels))
        self.config.label2id = {label: index for index, label in enumerate(labels)}
        if self.config.label_sets:
            first = next(iter(self.config.label_sets))
            self.config.label_sets = {**self.config.label_sets, first: labels}
        self.class_codes = self.terminal_codes().to(self.class_codes.device)

    def initial_sample(
        self,
        condition: torch.Tensor,
        noise: torch.Tensor,
        prior_logits: torch.Tensor | None = None,
        domain_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """A draw from the initial distribution, given standard Gaussian `noise` broadcastable to the output
        (`prior_logits`, the prior's output on `condition`, saves computing them twice in training)."""
        noise = self.config.initial_noise_scale * noise
        if self.config.initial_distribution == "condition":
            return self.initial_proj(condition, domain_ids) + noise
        if self.config.initial_distribution == "prior":
            if prior_logits is None:
                prior_logits = self.prior(condition, domain_ids)
            return self.prior_mean(prior_logits) + noise
        return noise.expand(condition.shape[0], -1)

    def prior_mean(self, prior_logits: torch.Tensor) -> torch.Tensor:
        """The prior's expected code, `softmax(prior_logits) @ class_codes`: `(batch_size, encoding_dim)`; for
        dimensional targets the code of the prior's predicted values.

        Detached: the prior learns from its own loss only, so the target-matching loss cannot trade its class
        information for a start that is easy to denoise.
        """
        if self.is_dimensional:
            return self.encode_values(prior_logits).detach()
        return (self.prior_log_probabilities(prior_logits).exp() @ self.class_codes).detach()

    def split_prior_logits(self, prior_logits: torch.Tensor) -> list[torch.Tensor]:
        """A per-task prior's logits, one `(batch_size, num_task_labels)` block per task."""
        return list(prior_logits.split(self.label_counts, dim=-1))

    def prior_log_probabilities(self, prior_logits: torch.Tensor) -> torch.Tensor:
        """The prior's `(batch_size, num_classes)` log-probabilities: a softmax over the classes (label tuples with
        several tasks), or with `multi_task_prior="per_task"` the sum of each task's log-softmax over the tuple's
        labels (the tasks independent given the condition)."""
        if not self.per_task_prior:
            return prior_logits.log_softmax(-1)
        joint = 0
        for task, logits in enumerate(self.split_prior_logits(prior_logits)):
            shape = [logits.shape[0]] + [-1 if other == task else 1 for other in range(len(self.label_counts))]
            joint = joint + logits.log_softmax(-1).reshape(shape)
        return joint.flatten(1)

    def target_matching_loss(
        self, condition: torch.Tensor, labels: torch.Tensor, domain_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The denoiser's loss against the class code itself from a random bridge sample (`config.target_loss`),
        plus the prior's cross-entropy for the `"prior"` initial distribution and, if `similarity_loss_weight` > 0,
        a cross-entropy on the prediction's similarities to the codes. Dimensional targets: the code of the values,
        and the prior's squared error.

        With several tasks, a clip may lack some task's label (`MISSING_LABEL`, concatenated codes only): that task's
        slice of the terminal sample is the initial sample's (the bridge does not move it) and is left out of the
        target matching, and the cross-entropies marginalise the missing label (`observed_label_nll`)."""
        observed = None
        if self.is_dimensional:
            labels = labels.reshape(labels.shape[0], self.config.num_labels).to(self.class_codes.dtype)
            terminal = self.encode_values(labels)
        else:
            task_labels, observed = labels, self.observed_columns(labels)
            labels = self.class_indices(labels.clamp(min=0))  # a missing label's slice is replaced below
            terminal = self.class_codes[labels]
        prior_logits = self.prior(condition, domain_ids) if self.config.initial_distribution == "prior" else None
        initial = self.initial_sample(condition, torch.randn_like(terminal), prior_logits, domain_ids)
        if observed is not None:
            terminal = torch.where(observed, terminal, initial.detach())
        timesteps = torch.rand(terminal.shape[0], device=terminal.device, dtype=terminal.dtype)
        sample = self.scheduler.add_noise(terminal, torch.randn_like(terminal), timesteps, initial)
        prediction = self.denoiser(sample, timesteps, condition)
        loss = target_matching_error(prediction, terminal, self.config.target_loss, observed)
        multi_task = not self.is_dimensional and task_labels.ndim == 2
        if prior_logits is not None and self.is_dimensional:
            loss = loss + self.config.prior_loss_weight * nn.functional.mse_loss(prior_logits, labels)
        elif prior_logits is not None and multi_task:
            prior_log_probabilities = self.prior_log_probabilities(prior_logits)
            prior_loss = observed_label_nll(prior_log_probabilities, task_labels, self.label_counts)
            loss = loss + self.config.prior_loss_weight * prior_loss
        elif prior_logits is not None:
            loss = loss + self.config.prior_loss_weight * nn.functional.cross_entropy(prior_logits, labels)
        if self.config.similarity_loss_weight > 0:
            logits = self.similarity_logits(prediction)
            if multi_task:
                similarity_loss = observed_label_nll(logits.log_softmax(-1), task_labels, self.label_counts)
            else:
                similarity_loss = nn.functional.cross_entropy(logits, labels)
            loss = loss + self.config.similarity_loss_weight * similarity_loss
        return loss

    @can_return_tuple
    def forward(
        self,
        input_values: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        pooled_layer_features: torch.Tensor | None = None,
        lower_layer_frames: torch.Tensor | None = None,
        frame_mask: torch.Tensor | None = None,
        lower_pooled_layer_features: torch.Tensor | None = None,
        domain_statistics: torch.Tensor | None = None,
        domain_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        num_inference_steps: int | None = None,
        generator: torch.Generator | None = None,
        num_samples: int = 1,
        output_trajectory: bool = False,
    ) -> GenSEROutput:
        r"""
        input_values (`torch.FloatTensor` of shape `(batch_size, sequence_length)`, *optional*):
            Waveforms, for wav2vec2-style encoders.
        input_features (`torch.FloatTensor` of shape `(batch_size, num_mel_bins, num_frames)`, *optional*):
            Log-mel features, for Whisper-style encoders.
        attention_mask (`torch.LongTensor` of shape `(batch_size, input_length)`, *optional*):
            1 for real input, 0 for padding; padding frames are left out of the pooling.
        pooled_layer_features (`torch.FloatTensor` of shape `(batch_size, num_layers, hidden_size)`, *optional*):
            Output of [`~GenSERForAudioClassification.pooled_layer_features`]; skips the encoder (feature caching).
        lower_layer_frames, frame_mask, lower_pooled_layer_features (`torch.Tensor`, *optional*):
            Cached output of the frozen lower layers ([`~GenSERForAudioClassification.lower_layer_features`],
            frames padded to `(batch_size, num_frames, hidden_size)` with their `(batch_size, num_frames)` mask); only
            the trainable top layers run (`trainable_encoder_layers` > 0).
        domain_statistics (`torch.FloatTensor` of shape `(2, num_layers, width)` or `(batch_size, 2, num_layers, width)`, *optional*):
            With `config.domain_normalization`: the mean and standard deviation of the pooled features of the
            collection (domain) the clips come from, e.g. `domain_statistics(pooled)` over it, or each clip's own
            domain's; the training pool's (stored in the model) when absent.
        domain_ids (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            With `config.domain_names`: each clip's index into them, -1 for a clip of no training domain, which is
            also how absent ids read. The initial distribution (the prior) reads a known domain's clips with that
            domain's residual weights on top of the shared ones (`GenSERDomainLinear`); in training,
            `config.domain_residual_dropout` of the clips are read with the shared weights alone. Ignored by a model
            without domains.
        labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Class indices; when given, the target-matching loss is returned (in training mode, the loss only).
        num_inference_steps (`int`, *optional*):
            Sampling steps; defaults to `config.num_inference_steps`.
        generator (`torch.Generator`, *optional*):
            Source of the initial sample and step noise; defaults to one seeded with `config.sampling_seed`.
        num_samples (`int`, *optional*, defaults to 1):
            Initial samples drawn per clip (one after the other from `generator`). With more than one, `logits` is
            the log of their mean softmax and `sample_logits` holds each sample's logits: how far the samples agree
            is the model's uncertainty. Only the head runs again per sample, never the encoder.
        output_trajectory (`bool`, *optional*, defaults to `False`):
            Also return every bridge sample of the schedule.
        """
        if pooled_layer_features is None:
            pooled_layer_features = self.features_of_inputs(
                input_values, input_features, attention_mask, lower_layer_frames, frame_mask, lower_pooled_layer_features
            )
        condition = self.conditioner(pooled_layer_features, domain_statistics)
        domain_ids = checked_domain_ids(domain_ids, self.config.domain_names)
        if self.training:
            domain_ids = dropped_domain_ids(domain_ids, self.config.domain_residual_dropout)

        loss = None if labels is None else self.target_matching_loss(condition, labels, domain_ids)
        if loss is not None and self.training:
            # Training needs only the loss; sampling is for inference and evaluation.
            return GenSEROutput(loss=loss)

        trajectories = self.sample_trajectories(condition, num_inference_steps, generator, num_samples, domain_ids)
        logits, task_logits, sample_logits = self.logits_of_samples([trajectory[:, -1] for trajectory in trajectories])
        return GenSEROutput(
            loss=loss,
            logits=logits,
            generated=trajectories[0][:, -1],
            trajectory=trajectories[0] if output_trajectory else None,
            sample_logits=sample_logits,
            task_logits=task_logits,
        )

    def features_of_inputs(
        self,
        input_values: torch.Tensor | None,
        input_features: torch.Tensor | None,
        attention_mask: torch.Tensor | None,
        lower_layer_frames: torch.Tensor | None,
        frame_mask: torch.Tensor | None,
        lower_pooled_layer_features: torch.Tensor | None,
    ) -> torch.Tensor:
        """`forward`'s `pooled_layer_features` from whichever input it was given: cached lower-layer frames (only the
        trainable top layers run) or audio (the whole encoder runs)."""
        if lower_layer_frames is not None:
            return self.top_layer_features(lower_layer_frames, frame_mask, lower_pooled_layer_features)
        inputs = input_values if input_values is not None else input_features
        if inputs is None:
            raise ValueError(
                "GenSERForAudioClassification needs audio: pass `input_values` (waveform encoders such as "
                "wav2vec2) or `input_features` (Whisper), as produced by the model's feature extractor, or "
                "cached `pooled_layer_features`."
            )
        return self.pooled_layer_features(inputs, attention_mask)


__all__ = ["GenSERForAudioClassification", "GenSERPreTrainedModel", "GenSEROutput"]
