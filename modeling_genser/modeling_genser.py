# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Gen-SER: speech emotion recognition as distribution transport (Wang et al., ICASSP 2026, arXiv 2601.20573).

Data flows one way:

    audio -> feature extractor -> speech encoder (once per clip) -> per-layer masked pooling
          -> weighted layer sum or concatenation, standardised (the *condition*) -> generative head (bridge sampling from the initial
          to the terminal distribution) -> cosine similarities to the taxonomy codes (``logits``) -> labels.

Training is *target matching*: the denoiser sees a bridge sample ``x_t`` between an initial sample and the class
code, and regresses the class code itself, with a mean squared error or ``1 - cos`` (`target_loss`).

The speech encoder's input handling lives in `speech_encoder.py`, the domain normalisation's maths in
`domain_normalization.py`, the codes in `taxonomy_encoding.py` and the bridge in `scheduling_genser.py`.
"""

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.utils.torch_utils import randn_tensor
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.utils.generic import can_return_tuple
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from .configuration_genser import GenSERConfig
from .domain_normalization import (
    domain_moments,
    domain_statistics_from_moments,
    shrunk_moments,
    standardise_by_domain,
    with_pool_statistics,
)
from .scheduling_genser import GenSERScheduler
from .shipped_code import ship_named_pipelines
from .speech_encoder import (
    build_speech_encoder,
    encoder_hidden_states,
    input_mask,
    load_speech_encoder,
    pool_frames,
    pooled_features_from_frames,
    real_frame_mask,
    top_encoder_layers,
    trimmed_lengths,
)
from .taxonomy_encoding import (
    code_similarity,
    continuous_encoding,
    joint_taxonomy_codes,
    label_tuples,
    nearest_grid_values,
    sinusoidal_taxonomy_encoding,
)


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
        task_logits (`dict[str, torch.FloatTensor]`, *optional*):
            Multi-task models (`config.label_sets`): every task's logits, `(batch_size, num_task_labels)`, in task
            order; `logits` is the first task's.
    """

    generated: torch.FloatTensor | None = None
    trajectory: torch.FloatTensor | None = None
    sample_logits: torch.FloatTensor | None = None
    task_logits: dict[str, torch.FloatTensor] | None = None


def cosine_target_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean of ``1 - cos(prediction, target)`` over the batch: target matching in the geometry the class is read
    off by (cosine similarity to the codes), blind to the prediction's norm.

    Args:
        prediction, target (`torch.Tensor` of shape `(batch_size, encoding_dim)`)
    """
    return (1 - nn.functional.cosine_similarity(prediction, target, dim=-1)).mean()


# A task label a clip does not have (an arousal corpus has no emotion labels): PyTorch's and transformers' ignore index.
MISSING_LABEL = -100


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


class GenSERDomainLinear(nn.Linear):
    """A linear map of the condition (the initial distribution's: the prior) with, per training domain, a residual
    weight added to the shared one.

    Daume III's feature augmentation ("Frustratingly easy domain adaptation", ACL 2007) as weights: a clip of a known
    domain (`domain_ids` >= 0, e.g. a training corpus) is read with ``W + R_domain``, any other clip (a new corpus, a
    lone clip: -1) with ``W`` alone. The residuals start at zero, so a domain with no training clip reads as a new one;
    the shared weights see every clip and keep what the domains have in common. Without domains (`num_domains=0`)
    this is `nn.Linear`, with its checkpoint keys.
    """

    def __init__(self, in_features: int, out_features: int, num_domains: int = 0):
        super().__init__(in_features, out_features)
        if num_domains:
            self.domain_weight = nn.Parameter(torch.zeros(num_domains, out_features, in_features))

    def add_domains(self, count: int) -> None:
        """Residual weights for `count` more domains, after the existing ones: zero, so each reads as a new domain
        until it trains."""
        new = self.weight.new_zeros(count, self.out_features, self.in_features)
        if hasattr(self, "domain_weight"):
            new = torch.cat([self.domain_weight.data, new])
        self.domain_weight = nn.Parameter(new)

    def add_outputs(self, position: int, count: int) -> None:
        """`count` more outputs inserted before output `position` (a new class's logit), their shared and residual
        weights and bias zero: every existing output keeps its value."""

        def inserted(tensor: torch.Tensor, dim: int) -> nn.Parameter:
            shape = list(tensor.shape)
            shape[dim] = count
            before, after = tensor.split([position, tensor.shape[dim] - position], dim=dim)
            return nn.Parameter(torch.cat([before, tensor.new_zeros(shape), after], dim=dim))

        self.weight, self.bias = inserted(self.weight.data, 0), inserted(self.bias.data, 0)
        if hasattr(self, "domain_weight"):
            self.domain_weight = inserted(self.domain_weight.data, 1)
        self.out_features += count

    def forward(self, hidden: torch.Tensor, domain_ids: torch.Tensor | None = None) -> torch.Tensor:
        """`(batch_size, in_features)` -> `(batch_size, out_features)`; `domain_ids` `(batch_size,)`, -1 for none."""
        output = super().forward(hidden)
        if domain_ids is None or not hasattr(self, "domain_weight"):
            return output
        for domain in domain_ids[domain_ids >= 0].unique().tolist():
            rows = (domain_ids == domain).nonzero().squeeze(1)
            output = output.index_add(0, rows, hidden[rows] @ self.domain_weight[domain].T)
        return output


def read_domain_ids(domain_ids: torch.Tensor | None, config: GenSERConfig, training: bool) -> torch.Tensor | None:
    """`domain_ids` `(batch_size,)` checked against `config.domain_names` (None for a model without them); in training,
    `config.domain_residual_dropout` of them set to -1, so that the shared weights also learn to read clips alone, as
    they will read every clip of a new corpus."""
    if domain_ids is None or not config.domain_names:
        return None
    if domain_ids.dtype not in (torch.int32, torch.int64) or domain_ids.ndim != 1:
        raise ValueError(
            f"domain_ids must be a 1-D integer tensor, one per clip; got {domain_ids.dtype} {tuple(domain_ids.shape)}."
        )
    if (domain_ids >= len(config.domain_names)).any() or (domain_ids < -1).any():
        raise ValueError(
            f"domain_ids index config.domain_names ({len(config.domain_names)} domains) or are -1 for none; "
            f"got {sorted(set(domain_ids.tolist()))}."
        )
    if training and config.domain_residual_dropout > 0:
        dropped = torch.rand(domain_ids.shape, device=domain_ids.device) < config.domain_residual_dropout
        domain_ids = domain_ids.masked_fill(dropped, -1)
    return domain_ids


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

    def __init__(self, config: GenSERConfig, condition_dim: int):
        super().__init__()
        hidden = config.head_hidden_size
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
        # The sinusoidal time features are designed for integer diffusion steps; 1000 spreads [0, 1] over them.
        return self.time_embedding(self.time_proj(timesteps * 1000).to(timesteps.dtype))

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


class GenSERForAudioClassification(GenSERPreTrainedModel):
    """Gen-SER: a speech encoder plus a generative head that transports noise to the taxonomy code of the emotion."""

    def __init__(self, config: GenSERConfig):
        super().__init__(config)
        self.encoder = build_speech_encoder(config.encoder_config)
        self.main_input_name = self.encoder.main_input_name
        self.conditioner = GenSERConditioner(config)
        self.denoiser = GenSERDenoiser(config, self.conditioner.condition_dim)
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
        self.scheduler = GenSERScheduler(**config.scheduler_config)
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

    @property
    def is_dimensional(self) -> bool:
        """Whether the targets are continuous values (`problem_type="regression"`, e.g. arousal) rather than classes."""
        return self.config.problem_type == "regression"

    def grid_values(self) -> torch.Tensor:
        """The `(value_grid_size,)` values a dimensional target is read back on, evenly spaced over `value_range`."""
        return torch.linspace(*self.config.value_range, self.config.value_grid_size)

    def value_codes(self, values: torch.Tensor) -> torch.Tensor:
        """The continuous encoding of dimensional values, each on one dimension's share of the code:
        `(...)` -> `(..., encoding_dim // num_dimensions)`."""
        config = self.config
        width = config.encoding_dim // config.num_labels
        return continuous_encoding(values, width, config.value_range, config.taxonomy_index_scale, config.taxonomy_base)

    def encode_values(self, values: torch.Tensor) -> torch.Tensor:
        """Dimensional targets' terminal codes: `(batch_size, num_dimensions)` (or `(batch_size,)`) values ->
        `(batch_size, encoding_dim)`, the dimensions' codes concatenated."""
        values = values.reshape(values.shape[0], self.config.num_labels)
        return self.value_codes(values).flatten(1).to(self.class_codes.dtype)

    def read_values(self, generated: torch.Tensor) -> torch.Tensor:
        """Dimensional targets read back from generated vectors: each dimension's nearest grid value on its share of
        the code, `(batch_size, encoding_dim)` -> `(batch_size, num_dimensions)`."""
        slices = generated.reshape(generated.shape[0], self.config.num_labels, -1)
        return nearest_grid_values(slices, self.value_grid, self.class_codes)

    @property
    def label_counts(self) -> list[int]:
        """How many labels each task has (one task unless `config.label_sets`)."""
        return [len(labels) for labels in self.config.tasks.values()]

    @property
    def per_task_prior(self) -> bool:
        """Whether the prior is one softmax per task (`multi_task_prior="per_task"` with several tasks)."""
        return bool(self.config.label_sets) and self.config.multi_task_prior == "per_task"

    def terminal_codes(self) -> torch.Tensor:
        """The taxonomy code of every class, `(num_classes, encoding_dim)`: the terminal distribution's support. With
        several tasks a class is a tuple of labels, one per task (`joint_taxonomy_codes`)."""
        config = self.config
        if self.is_dimensional:  # the codes of the grid values, for one dimension's share of the code
            return self.value_codes(self.grid_values())
        if config.label_sets:
            return joint_taxonomy_codes(
                self.label_counts, config.encoding_dim, config.multi_task_codes, config.taxonomy_index_scale,
                config.taxonomy_base,
            )  # fmt: skip
        return sinusoidal_taxonomy_encoding(
            config.num_labels, config.encoding_dim, config.taxonomy_index_scale, config.taxonomy_base
        )

    def class_indices(self, labels: torch.Tensor) -> torch.Tensor:
        """`(batch_size,)` class indices from `labels`: the same for one task, and for several tasks the index of each
        row's label tuple, `(batch_size, num_tasks)` -> `(batch_size,)` (row-major, as `terminal_codes` orders them)."""
        if labels.ndim == 1:
            return labels
        counts = self.label_counts
        if labels.shape[-1] != len(counts):
            raise ValueError(
                f"labels has {labels.shape[-1]} columns but the model has {len(counts)} tasks "
                f"({list(self.config.tasks)}): pass one label index per task."
            )
        strides = [math.prod(counts[task + 1 :]) for task in range(len(counts))]
        return (labels * labels.new_tensor(strides)).sum(-1)  # not a matmul: CUDA has none for integers

    def observed_columns(self, labels: torch.Tensor) -> torch.Tensor | None:
        """Which columns of its terminal code each clip has a label for, `(batch_size, encoding_dim)`, when some of
        the `(batch_size, num_tasks)` labels are missing (`MISSING_LABEL`: e.g. arousal-only clips in an emotion and
        arousal model); None when every label is there. A missing task's slice of the concatenated code is then
        neither generated towards nor scored."""
        missing = labels == MISSING_LABEL
        if not missing.any():
            return None
        unlabelled = missing if labels.ndim == 1 else missing.all(-1)
        if unlabelled.any():
            raise ValueError(
                f"{int(unlabelled.sum())} clip(s) have no label for any task ({MISSING_LABEL}): drop them from the "
                "training data."
            )
        if self.config.multi_task_codes != "concat":
            raise ValueError(
                f"Clips missing a task's label ({MISSING_LABEL}) need multi_task_codes='concat', whose codes have one "
                "slice per task: a tuple code needs every task's label."
            )
        return (~missing).repeat_interleave(self.config.encoding_dim // len(self.label_counts), dim=1)

    def train(self, mode: bool = True):
        # A frozen encoder also keeps its dropout, layer drop and SpecAugment off, so its features stay fixed; its
        # trainable top layers train with their dropout, as in fine-tuning.
        super().train(mode)
        if self.config.freeze_encoder:
            self.encoder.eval()
            for module in self.trainable_encoder_modules():
                module.train(mode)
        return self

    def pooled_layer_features(
        self, inputs: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Runs the speech encoder once and pools every layer over its real frames.

        With `config.trim_padding` the encoder never runs on padding: a batch is cut to its longest clip, and its
        attention masks each shorter clip's padding (Whisper's too, see `whisper_hidden_states`), so a clip's
        features do not depend on its batch. Without it, Whisper encodes its 30 s window, padding included, as it
        was trained to.

        Args:
            inputs (`torch.Tensor`): the encoder's main input, `(batch_size, num_samples)` waveforms or
                `(batch_size, num_mel_bins, num_frames)` features.
            attention_mask (`torch.Tensor` of shape `(batch_size, input_length)`, *optional*): 1 for real input.
        Returns:
            `torch.Tensor` of shape `(batch_size, num_layers, hidden_size)` (twice `hidden_size` for `"mean_std"`).
            Pooling and the weighted layer sum commute, so these features can be cached and fed back as
            `pooled_layer_features`.
        """
        attention_mask = input_mask(inputs, attention_mask)
        if not self.config.trim_padding and isinstance(self.encoder, WhisperEncoder) and attention_mask is not None:
            hidden_states, _ = self._encode(inputs, None)
            frame_mask = real_frame_mask(self.encoder, attention_mask, hidden_states[0].shape[1])
            return pool_frames(hidden_states, frame_mask, self.config.pooling)
        if not self.config.trim_padding or attention_mask is None:
            return self._encode_and_pool(inputs, attention_mask)
        lengths = trimmed_lengths(self.encoder, attention_mask)
        length = int(lengths.max())
        # Clips of one length, cut to it, are all real input: they need no mask (nor the cost of building one).
        if int(lengths.min()) == length:
            return self._encode_and_pool(inputs[..., :length], None)
        return self._encode_and_pool(inputs[..., :length], attention_mask[:, :length])

    @property
    def encoder_trains(self) -> bool:
        """Whether any encoder weight trains (so the encoder must run with gradients in training)."""
        return not self.config.freeze_encoder or self.config.trainable_encoder_layers > 0

    def _encode(self, inputs: torch.Tensor, attention_mask: torch.Tensor | None) -> tuple[tuple, torch.Tensor | None]:
        """The encoder's hidden states of every layer, `(batch_size, num_frames, hidden_size)` each, and the
        `(batch_size, num_frames)` mask of real frames (None without `attention_mask`)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.encoder_trains):
            hidden_states = encoder_hidden_states(self.encoder, inputs, attention_mask)
        return hidden_states, real_frame_mask(self.encoder, attention_mask, hidden_states[0].shape[1])

    def _encode_and_pool(self, inputs: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """The encoder's hidden states of every layer, pooled over the real frames: `(batch_size, num_layers, hidden)`."""
        return pool_frames(*self._encode(inputs, attention_mask), self.config.pooling)

    def trainable_encoder_modules(self) -> list[nn.Module]:
        """The encoder's top `config.trainable_encoder_layers` layers, and Whisper's final layer norm with them:
        what trains in an otherwise frozen encoder."""
        if self.config.trainable_encoder_layers == 0:
            return []
        layers, final_norm = top_encoder_layers(self.encoder, self.config.trainable_encoder_layers)
        return [*layers, *([final_norm] if final_norm is not None else [])]

    def lower_layer_features(
        self, inputs: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """What the frozen lower layers of a partly trainable encoder (`trainable_encoder_layers` = N > 0) give,
        for the frame cache: each clip's hidden states entering the first trainable layer over its real frames,
        and the pooled layers below it. [`~GenSERForAudioClassification.top_layer_features`] completes them.

        Clips are encoded one at a time at their own length, so no clip's frames depend on its batch.

        Args: as [`~GenSERForAudioClassification.pooled_layer_features`].
        Returns:
            A list of `(num_frames, hidden_size)` tensors, one per clip, and `(batch_size, num_layers - N, width)`.
        """
        count = self.config.trainable_encoder_layers
        if count == 0:
            raise ValueError("lower_layer_features is for trainable_encoder_layers > 0; use pooled_layer_features.")
        if isinstance(self.encoder, WhisperEncoder) and not self.config.trim_padding:
            raise ValueError(
                "Cached frames hold each clip's real frames only, while Whisper without trim_padding attends to its "
                "30 s of padding too: set trim_padding=True to train Whisper's top layers on cached frames."
            )
        attention_mask = input_mask(inputs, attention_mask)
        lengths = [inputs.shape[-1]] * inputs.shape[0] if attention_mask is None else trimmed_lengths(self.encoder, attention_mask).tolist()
        frames, lower = [], []
        for row, length in enumerate(lengths):
            mask = None if attention_mask is None else attention_mask[row : row + 1, :length]
            hidden_states, frame_mask = self._encode(inputs[row : row + 1, ..., :length], mask)
            split = len(hidden_states) - count
            lower.append(pool_frames(hidden_states[:split], frame_mask, self.config.pooling))
            clip = hidden_states[split - 1][0]
            frames.append(clip if frame_mask is None else clip[frame_mask[0]])
        return frames, torch.cat(lower)

    def top_layer_features(
        self, lower_layer_frames: torch.Tensor, frame_mask: torch.Tensor, lower_pooled_layer_features: torch.Tensor
    ) -> torch.Tensor:
        """Runs the trainable top layers on cached lower-layer frames and completes the pooled layers: the same
        `(batch_size, num_layers, width)` as [`~GenSERForAudioClassification.pooled_layer_features`] on the audio.

        Args:
            lower_layer_frames (`torch.Tensor` of shape `(batch_size, num_frames, hidden_size)`): padded frames.
            frame_mask (`torch.Tensor` of shape `(batch_size, num_frames)`): 1 for real frames (each clip's first).
            lower_pooled_layer_features (`torch.Tensor` of shape `(batch_size, num_layers - N, width)`)
        """
        layers, final_norm = top_encoder_layers(self.encoder, self.config.trainable_encoder_layers)
        return pooled_features_from_frames(
            layers, final_norm, lower_layer_frames, frame_mask, lower_pooled_layer_features, self.config.pooling
        )

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

    def sampling_generator(self) -> torch.Generator:
        """The default source of inference draws: a generator seeded with `config.sampling_seed`.

        A CPU generator, whatever the model's device: the draws are a few vectors per clip, and CUDA's generator
        gives other numbers for the same seed, so one seed gives the same predictions on every device."""
        return torch.Generator().manual_seed(self.config.sampling_seed)

    def sampling_noise(
        self,
        num_inference_steps: int,
        generator: torch.Generator | None = None,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """The draws of one sampling run, `(num_inference_steps + 1, encoding_dim)`, from `generator` (default:
        [`~GenSERForAudioClassification.sampling_generator`])."""
        device = device if device is not None else self.device
        generator = generator if generator is not None else self.sampling_generator()
        shape = (num_inference_steps + 1, self.config.encoding_dim)
        return randn_tensor(shape, generator=generator, device=device, dtype=dtype or self.dtype)

    def generate_codes(
        self,
        condition: torch.Tensor,
        num_inference_steps: int | None = None,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
        domain_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Runs the bridge from the initial distribution to the terminal one.

        Every draw (initial sample, step noise) is one vector shared by the whole batch, so a clip's prediction
        does not depend on what it is batched with. Without `noise` or a `generator`, draws come from
        [`~GenSERForAudioClassification.sampling_generator`], so inference is reproducible.

        Args:
            condition (`torch.Tensor` of shape `(batch_size, condition_dim)`)
            noise (`torch.Tensor` of shape `(num_inference_steps + 1, encoding_dim)`, *optional*):
                The draws themselves, standard Gaussian: the initial sample's, then each step's posterior noise.
            domain_ids (`torch.LongTensor` of shape `(batch_size,)`, *optional*): see `forward`.
        Returns:
            `torch.Tensor` of shape `(batch_size, num_inference_steps + 1, encoding_dim)`: the trajectory, whose
            last entry is the generated vector.
        """
        if num_inference_steps is None:
            num_inference_steps = self.config.num_inference_steps
        # The grid, coefficients and embeddings of the schedule are local to this call (the scheduler's state is
        # never set), so one model can sample in several threads at once.
        times = self.scheduler.time_grid_for(num_inference_steps, condition.device)[:-1].to(condition.dtype)
        num_inference_steps = times.shape[0]
        if noise is None:
            noise = self.sampling_noise(num_inference_steps, generator, condition.device, condition.dtype)
        elif noise.shape != (num_inference_steps + 1, self.config.encoding_dim):
            raise ValueError(
                f"noise must have shape (num_inference_steps + 1, encoding_dim) = "
                f"{(num_inference_steps + 1, self.config.encoding_dim)}, got {tuple(noise.shape)}."
            )
        sample = self.initial_sample(condition, noise[:1], domain_ids=domain_ids)
        trajectory = [sample]
        # Condition and time embeddings do not change between steps: (batch, steps, hidden), computed once.
        embeddings = self.denoiser.condition_proj(condition)[:, None] + self.schedule_time_embeddings(times)[None]
        for index in range(num_inference_steps):
            prediction = self.denoiser.denoise(sample, embeddings[:, index])
            step_noise = noise[index + 1 : index + 2]
            sample = self.scheduler.posterior_step(prediction, sample, index, num_inference_steps, step_noise)
            trajectory.append(sample)
        return torch.stack(trajectory, dim=1)

    def schedule_time_embeddings(self, times: torch.Tensor) -> torch.Tensor:
        """The denoiser's embeddings of a schedule's `(num_inference_steps,)` times: `(num_inference_steps, hidden)`.

        They depend on the time-embedding weights and the step count only, so at inference they are computed once
        and reused until a weight changes (a new tensor or an in-place update moves the key): on a single short clip
        they were a tenth of the head's time. With autograd on, or while tracing for export, they are recomputed.
        The cache is one (key, embeddings) tuple, read and replaced whole, so threads never see a key with another
        key's embeddings.
        """
        if torch.is_grad_enabled() or torch.compiler.is_compiling() or torch.compiler.is_exporting():
            return self.denoiser.embed_time(times)
        weights = self.denoiser.time_embedding.parameters()
        key = (times.shape[0], times.device, times.dtype, *((weight.data_ptr(), weight._version) for weight in weights))
        cached_key, embeddings = self._time_embedding_cache
        if cached_key != key:
            embeddings = self.denoiser.embed_time(times)
            self._time_embedding_cache = (key, embeddings)
        return embeddings

    def code_similarities(self, vectors: torch.Tensor) -> torch.Tensor:
        """Cosine similarities of `(..., encoding_dim)` vectors (e.g. a trajectory) to every class code:
        `(..., num_classes)`."""
        return code_similarity(vectors, self.class_codes)

    def task_code_slice(self, task: int) -> tuple[slice, torch.Tensor]:
        """Concatenated multi-task codes: the columns of task number `task` and its labels' codes on them,
        `(num_task_labels, encoding_dim // num_tasks)` (each label with every other task at label 0)."""
        counts = self.label_counts
        width = self.config.encoding_dim // len(counts)
        others_at_zero = tuple(slice(None) if other == task else 0 for other in range(len(counts)))
        codes = self.class_codes.reshape(*counts, -1)[others_at_zero]
        columns = slice(task * width, (task + 1) * width)
        return columns, codes[:, columns]

    def first_task_similarities(self, vectors: torch.Tensor) -> torch.Tensor:
        """Cosine similarities of `(..., encoding_dim)` vectors (e.g. a trajectory) to the first task's codes,
        `(..., num_labels)`: every class code for one task, the first task's slice for concatenated multi-task codes."""
        if not self.config.label_sets:
            return self.code_similarities(vectors)
        columns, codes = self.task_code_slice(0)
        return code_similarity(vectors[..., columns], codes)

    def similarity_logits(self, generated: torch.Tensor) -> torch.Tensor:
        """`(batch_size, num_classes)` cosine similarities of generated vectors to the class codes, over the temperature."""
        return self.code_similarities(generated) / self.config.similarity_temperature

    def logits_of(self, generated: torch.Tensor) -> torch.Tensor:
        """What `logits` holds for one sample: the values of dimensional targets, else the first task's logits."""
        return self.read_values(generated) if self.is_dimensional else next(iter(self.task_logits(generated).values()))

    def task_logits(self, generated: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every task's `(batch_size, num_task_labels)` logits from generated vectors `(batch_size, encoding_dim)`.

        One task: the similarities to its codes. Concatenated codes: each task's similarities on its own slice of the
        vector, to its own codes. Tuple codes: each task's log-probabilities, the tuples' softmax summed over the
        other tasks' labels.
        """
        tasks, counts = list(self.config.tasks), self.label_counts
        if len(tasks) == 1:
            return {tasks[0]: self.similarity_logits(generated)}
        if self.config.multi_task_codes == "tuple":
            joint = self.similarity_logits(generated).log_softmax(-1).reshape(-1, *counts)
            axes = range(1, len(counts) + 1)
            return {task: joint.logsumexp(dim=[a for a in axes if a != t + 1]) for t, task in enumerate(tasks)}
        logits = {}
        for t, task in enumerate(tasks):
            columns, task_codes = self.task_code_slice(t)
            logits[task] = code_similarity(generated[:, columns], task_codes) / self.config.similarity_temperature
        return logits

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
        input_values (`torch.FloatTensor` of shape `(batch_size, num_samples)`, *optional*):
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
        if pooled_layer_features is None and lower_layer_frames is not None:
            pooled_layer_features = self.top_layer_features(lower_layer_frames, frame_mask, lower_pooled_layer_features)
        elif pooled_layer_features is None:
            inputs = input_values if input_values is not None else input_features
            if inputs is None:
                raise ValueError(
                    "GenSERForAudioClassification needs audio: pass `input_values` (waveform encoders such as "
                    "wav2vec2) or `input_features` (Whisper), as produced by the model's feature extractor, or "
                    "cached `pooled_layer_features`."
                )
            pooled_layer_features = self.pooled_layer_features(inputs, attention_mask)
        condition = self.conditioner(pooled_layer_features, domain_statistics)
        domain_ids = read_domain_ids(domain_ids, self.config, self.training)

        loss = None if labels is None else self.target_matching_loss(condition, labels, domain_ids)
        if loss is not None and self.training:
            # Training needs only the loss; sampling is for inference and evaluation.
            return GenSEROutput(loss=loss)

        if not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}.")
        generator = generator if generator is not None else self.sampling_generator()
        trajectories = [
            self.generate_codes(condition, num_inference_steps, generator, domain_ids=domain_ids)
            for _ in range(num_samples)
        ]
        task_logits, sample_logits = {}, None
        if self.is_dimensional:  # the values read back, averaged over the samples
            logits = torch.stack([self.read_values(trajectory[:, -1]) for trajectory in trajectories]).mean(0)
        else:
            per_sample = [self.task_logits(trajectory[:, -1]) for trajectory in trajectories]
            for index, task in enumerate(per_sample[0]):
                stacked = torch.stack([logits[task] for logits in per_sample], dim=1)  # (batch, samples, labels)
                if num_samples == 1:
                    task_logits[task] = stacked[:, 0]
                else:
                    task_logits[task] = stacked.log_softmax(-1).logsumexp(dim=1) - math.log(num_samples)
                    if index == 0:  # `logits` and `sample_logits` are the first task's
                        sample_logits = stacked
            logits = next(iter(task_logits.values()))

        return GenSEROutput(
            loss=loss,
            logits=logits,
            generated=trajectories[0][:, -1],
            trajectory=trajectories[0] if output_trajectory else None,
            sample_logits=sample_logits,
            task_logits=task_logits if self.config.label_sets else None,
        )


__all__ = ["GenSERForAudioClassification", "GenSERPreTrainedModel", "GenSEROutput"]
