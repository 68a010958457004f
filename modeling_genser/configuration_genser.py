# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Gen-SER model configuration."""

import dataclasses
import difflib
from typing import Literal

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec


class GenSERConfig(PreTrainedConfig):
    r"""
    Configuration of [`GenSERForAudioClassification`]: a transformers speech encoder followed by Gen-SER's generative
    head, which transports an initial distribution to the terminal distribution of class codes.

    encoder_config (`dict` or `PreTrainedConfig`, *optional*):
        Config of the speech encoder (wav2vec2, HuBERT, WavLM, data2vec-audio, Whisper, ...). Encoder-decoder
        models contribute their encoder only. Defaults to a wav2vec2-base config.
    encoder_name_or_path (`str`, *optional*):
        Where the encoder's pretrained weights came from, recorded by [`GenSERForAudioClassification.from_encoder`]
        for provenance; loading a saved Gen-SER model never reads it.
    freeze_encoder (`bool`, *optional*, defaults to `True`):
        Keep the encoder's weights fixed and run it without gradients; only the head trains.
    trainable_encoder_layers (`int`, *optional*, defaults to 0):
        With `freeze_encoder=True`, the encoder's top N transformer layers (and Whisper's final layer norm, whose
        output is the last hidden state) still train with the head; 0 keeps the whole encoder frozen. The frozen
        lower layers' frames can then be cached once (`training/feature_cache.py`) and only the top layers run
        per epoch.
    trim_padding (`bool`, *optional*, defaults to `True`):
        Never run the encoder on padding (by `attention_mask`): a wav2vec2-style batch is cut to its longest clip,
        and Whisper, whose feature extractor pads every clip to 30 s and whose encoder attends to that padding,
        encodes each clip at its own length (far faster on short clips: `BENCHMARKS.md`); it changes Whisper's
        features, so a model must be used with the setting it was trained with.
    pooling (`"mean"` or `"mean_std"`, *optional*, defaults to `"mean"`):
        How each encoder layer's frames become one vector (padding frames excluded): their mean, or their mean
        and standard deviation concatenated.
    layer_aggregation (`"weighted_sum"` or `"concat"`, *optional*, defaults to `"weighted_sum"`):
        How the pooled layers become the condition: a learnable softmax-weighted sum (one layer's width), or all
        layers concatenated (layers x width).
    condition_dropout (`float`, *optional*, defaults to 0.0):
        Dropout on the standardised condition during training; a regulariser against speaker-specific features.
    domain_normalization (`bool`, *optional*, defaults to `False`):
        Standardise the pooled features with the statistics (per layer and feature mean and standard deviation) of
        the domain the clip comes from, before the condition: recording conditions, language and speakers shift
        pooled encoder features far more than emotions do. Training standardises each corpus with its own
        statistics; at inference, statistics of the collection being classified are passed as
        `domain_statistics`, and a lone clip uses the training pool's, stored in the model.
    statistics_prior_windows (`float`, *optional*, defaults to 8.0):
        With `domain_normalization`, how much a collection's own statistics (`collection_statistics`, `genser-annotate
        --adapt`) are trusted: its pooled features' moments are pooled with this many windows of a prior's (the
        training pool's for a collection, the collection's for a folder of it), `domain_normalization.shrunk_moments`.
        A collection of `n` windows gets its own mean with weight `n / (n + statistics_prior_windows)`. The default is
        measured by leaving corpora and speakers out (`benchmarks/evaluate_statistics_shrinkage.py`).
    pool_statistics_probability (`float`, *optional*, defaults to 0.0):
        With `domain_normalization`, the probability that a training clip is standardised with the training pool's
        statistics instead of its domain's, so that the head also learns the lone clip's case (a clip classified
        without its collection's statistics).
    domain_names (`list[str]`, *optional*):
        Domains (e.g. the training corpora) that get their own residual weights on the initial distribution's map of
        the condition (the prior, or the `"condition"` start's projection; `GenSERDomainLinear`): a clip given as one
        of them (`domain_ids`) starts from the shared weights plus its domain's, any other clip from the shared
        weights alone. The denoiser's condition path stays shared. The training scripts set them from the data with
        `--domain_residuals`. None: shared weights only.
    domain_residual_dropout (`float`, *optional*, defaults to 0.5):
        With `domain_names`, the probability that a training clip is read with the shared weights alone, as a clip of
        a new corpus is: without it the shared weights never learn to classify alone (`BENCHMARKS.md`).
    encoding_dim (`int`, *optional*, defaults to 256):
        Dimension of the sinusoidal taxonomy encoding, i.e. of the generated vectors.
    taxonomy_index_scale (`float`, *optional*, defaults to 100.0):
        Factor applied to the class index before the sin/cos code; spreads the codes apart (see
        `taxonomy_encoding.py`).
    taxonomy_base (`float`, *optional*, defaults to 10000.0):
        Wavelength base of the sin/cos code, as in the transformer position encoding.
    initial_distribution (`"gaussian"`, `"condition"` or `"prior"`, *optional*, defaults to `"prior"`):
        The initial distribution: `"gaussian"` draws `x_0 ~ N(0, initial_noise_scale**2 I)`; `"condition"` starts
        from a learned linear projection of the speech condition plus that noise; `"prior"` from the expected code
        `softmax(W c) @ codes` of a linear prior on the condition, trained with its own cross-entropy, plus that
        noise. The prior keeps what a linear classifier on the condition keeps; the bridge then refines it. The
        default follows the nested speaker-independent selection in `BENCHMARKS.md` (prior start, MSE, 4 steps,
        no sampling noise), which also had the smallest seed spread.
    prior_loss_weight (`float`, *optional*, defaults to 1.0):
        Weight of the prior's cross-entropy in the loss (`initial_distribution="prior"` only).
    initial_noise_scale (`float`, *optional*, defaults to 0.3):
        Standard deviation of the initial noise (around the prior's expected code, by default; use 1.0 with the
        `"gaussian"` start, the paper's standard normal).
    scheduler_config (`dict`, *optional*):
        Keyword arguments of [`GenSERScheduler`] (mean schedule steepness, bridge sigma, sampling noise scale).
        `sampling_noise_scale` defaults to 0 here (the scheduler's own default is 1): steps then move to the
        bridge's posterior mean, so extra steps refine the start instead of wandering from it.
    num_inference_steps (`int`, *optional*, defaults to 4):
        Default number of sampling steps at inference.
    sampling_seed (`int`, *optional*, defaults to 0):
        Seed of the initial sample at inference when no generator is given, so that predictions are reproducible.
    similarity_temperature (`float`, *optional*, defaults to 0.1):
        Logits are the cosine similarities to the class codes divided by this temperature.
    target_loss (`"mse"` or `"cosine"`, *optional*, defaults to `"mse"`):
        How the denoiser's prediction is matched to the class code: the paper's mean squared error, or
        `1 - cos(prediction, code)`, which scores the prediction the way the class is read off.
    similarity_loss_weight (`float`, *optional*, defaults to 0.0):
        Weight of an optional cross-entropy term on the prediction's similarities to the class codes, added to the
        target-matching MSE; 0 keeps the pure target-matching loss.
    label_sets (`dict[str, list[str]]`, *optional*):
        Several tasks through one generative head, e.g. `{"emotion": [...], "gender": ["female", "male"]}`: the task
        names and their label names, the first task being the one `id2label` holds (the pipeline's default output).
        The bridge generates one terminal sample per clip that carries every task's label, and each task is decided
        by similarity on its own codes. None: one task, the labels of `id2label`.
    multi_task_codes (`"concat"` or `"tuple"`, *optional*, defaults to `"concat"`):
        With `label_sets`, how a clip's labels make one terminal code: `"concat"` concatenates one code per task
        (each task gets `encoding_dim / num_tasks` dimensions and is read off its own slice); `"tuple"` gives every
        combination of labels its own code, and a task's probabilities are the tuple probabilities summed over the
        other tasks' labels. `BENCHMARKS.md` compares them.
    value_range (`list[float]`, *optional*, defaults to `[0.0, 1.0]`):
        Dimensional targets (`problem_type="regression"`, one output per entry of `id2label`, e.g. `{0: "arousal"}`):
        the range of the values. Each value is encoded like a position (`continuous_encoding`: the bottom of the
        range like class 0, the top like position `taxonomy_index_scale`), the dimensions' codes concatenated, and the
        bridge generates that code; each dimension is read back as the nearest of `value_grid_size` values evenly
        spaced over the range. The training scripts train it from numeric columns (`--value_columns`);
        `BENCHMARKS.md` measures it on real arousal levels.
    value_grid_size (`int`, *optional*, defaults to 201):
        Number of grid values a dimensional target is read back on.
    multi_task_prior (`"per_task"` or `"joint"`, *optional*, defaults to `"per_task"`):
        With `label_sets` and the prior start, the linear prior's form: one softmax per task, each trained with its
        own cross-entropy, the tasks taken as independent given the condition (`"per_task"`), or one softmax over
        every combination of labels (`"joint"`); `BENCHMARKS.md` measures what each costs the first task.
    head_hidden_size (`int`, *optional*, defaults to 256):
        Width of the denoiser network.
    head_num_layers (`int`, *optional*, defaults to 2):
        Number of residual blocks in the denoiser network.
    head_dropout (`float`, *optional*, defaults to 0.1):
        Dropout inside the denoiser network.

    Example:

    ```python
    >>> from transformers import WhisperConfig
    >>> from modeling_genser import GenSERConfig, GenSERForAudioClassification

    >>> config = GenSERConfig(encoder_config=WhisperConfig(), id2label={0: "angry", 1: "happy", 2: "sad"})
    >>> model = GenSERForAudioClassification(config)
    ```"""

    model_type = "genser"
    # The Trainer keeps only the logits as predictions.
    keys_to_ignore_at_inference = ["generated", "trajectory", "sample_logits", "task_logits"]
    sub_configs_defaults = {"encoder_config": SubConfigSpec(config_class=AutoConfig, model_type="wav2vec2")}

    encoder_config: dict | PreTrainedConfig | None = None
    encoder_name_or_path: str | None = None
    freeze_encoder: bool = True
    trainable_encoder_layers: int = 0
    trim_padding: bool = True
    pooling: Literal["mean", "mean_std"] = "mean"
    layer_aggregation: Literal["weighted_sum", "concat"] = "weighted_sum"
    condition_dropout: float = 0.0
    domain_normalization: bool = False
    statistics_prior_windows: float = 8.0
    pool_statistics_probability: float = 0.0
    domain_names: list[str] | None = None
    domain_residual_dropout: float = 0.5
    encoding_dim: int = 256
    taxonomy_index_scale: float = 100.0
    taxonomy_base: float = 10000.0
    initial_distribution: Literal["gaussian", "condition", "prior"] = "prior"
    initial_noise_scale: float = 0.3
    prior_loss_weight: float = 1.0
    scheduler_config: dict | None = None
    num_inference_steps: int = 4
    sampling_seed: int = 0
    similarity_temperature: float = 0.1
    target_loss: Literal["mse", "cosine"] = "mse"
    similarity_loss_weight: float = 0.0
    label_sets: dict[str, list[str]] | None = None
    multi_task_codes: Literal["concat", "tuple"] = "concat"
    multi_task_prior: Literal["per_task", "joint"] = "per_task"
    value_range: list[float] | None = None
    value_grid_size: int = 201
    head_hidden_size: int = 256
    head_num_layers: int = 2
    head_dropout: float = 0.1

    def __post_init__(self, **kwargs):
        self._refuse_misspelt_fields(kwargs)
        super().__post_init__(**kwargs)
        self.scheduler_config = {"sampling_noise_scale": 0.0, **(self.scheduler_config or {})}
        # Checked here rather than by huggingface_hub's `@strict`, transformers 5's mechanism: it raises
        # `StrictDataclassError`, not the `ValueError` that callers catch, and refuses the ints that configs saved
        # before and `--config_overrides` give for float fields.
        if self.pooling not in ("mean", "mean_std"):
            raise ValueError(f'pooling must be "mean" or "mean_std", got {self.pooling!r}.')
        if self.layer_aggregation not in ("weighted_sum", "concat"):
            raise ValueError(f'layer_aggregation must be "weighted_sum" or "concat", got {self.layer_aggregation!r}.')
        if self.initial_distribution not in ("gaussian", "condition", "prior"):
            raise ValueError(
                f'initial_distribution must be "gaussian", "condition" or "prior", got {self.initial_distribution!r}.'
            )
        if not isinstance(self.trainable_encoder_layers, int) or self.trainable_encoder_layers < 0:
            raise ValueError(f"trainable_encoder_layers must be an integer >= 0, got {self.trainable_encoder_layers!r}.")
        if self.trainable_encoder_layers and not self.freeze_encoder:
            raise ValueError(
                "trainable_encoder_layers selects the layers that train in an otherwise frozen encoder: set "
                "freeze_encoder=True with it, or freeze_encoder=False alone to train every layer."
            )
        if not 0.0 <= self.domain_residual_dropout <= 1.0:
            raise ValueError(f"domain_residual_dropout must be in [0, 1], got {self.domain_residual_dropout}.")
        if self.domain_names is not None and len(set(self.domain_names)) != len(self.domain_names):
            raise ValueError(f"domain_names must be distinct, got {self.domain_names!r}.")
        if self.domain_names and self.initial_distribution == "gaussian":
            raise ValueError(
                "domain_names give the initial distribution's map of the condition per-domain weights; the Gaussian "
                'start has none: use initial_distribution="prior" (the default) or "condition".'
            )
        if not self.statistics_prior_windows >= 0:
            raise ValueError(f"statistics_prior_windows must be >= 0, got {self.statistics_prior_windows}.")
        if not 0.0 <= self.pool_statistics_probability <= 1.0:
            raise ValueError(f"pool_statistics_probability must be in [0, 1], got {self.pool_statistics_probability}.")
        if self.target_loss not in ("mse", "cosine"):
            raise ValueError(f'target_loss must be "mse" or "cosine", got {self.target_loss!r}.')
        if self.similarity_temperature <= 0:
            raise ValueError(f"similarity_temperature must be > 0, got {self.similarity_temperature}.")
        if isinstance(self.label_sets, list):  # as `to_dict` writes them: [task, labels] pairs, in task order
            self.label_sets = {task: list(labels) for task, labels in self.label_sets}
        if self.label_sets and list(self.id2label.values()) == [f"LABEL_{i}" for i in range(len(self.id2label))]:
            # id2label not given: the first task's labels, which the pipeline's default output reads.
            first_labels = next(iter(self.label_sets.values()))
            self.id2label = dict(enumerate(first_labels))
            self.label2id = {label: index for index, label in self.id2label.items()}
        if self.label_sets is not None:
            self._check_label_sets()
        if self.problem_type == "regression":
            self.value_range = list(self.value_range or [0.0, 1.0])
            self._check_dimensional_targets()
        if not isinstance(self.num_inference_steps, int) or self.num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be a positive integer, got {self.num_inference_steps!r}.")

    @classmethod
    def from_dict(cls, config_dict: dict, **kwargs):
        # Overrides (`from_pretrained(path, key=value)`) that are no field are otherwise dropped without a word.
        cls._refuse_misspelt_fields(kwargs)
        return super().from_dict(config_dict, **kwargs)

    @classmethod
    def _refuse_misspelt_fields(cls, keys) -> None:
        """A key that is not a field but nearly spells one (`domain_normalisation`) is an error: a config takes any
        key and keeps it as an attribute, so a misspelt setting would otherwise be silently ignored. Keys unlike every
        field (`auto_map`, `custom_pipelines`, ...) are the ecosystem's and pass."""
        fields = [field.name for field in dataclasses.fields(cls)]
        misspelt = {key: difflib.get_close_matches(key, fields, n=1, cutoff=0.85) for key in keys if key not in fields}
        misspelt = {key: nearest[0] for key, nearest in misspelt.items() if nearest}
        if misspelt:
            named = ", ".join(f"{key!r} (did you mean {nearest!r}?)" for key, nearest in misspelt.items())
            raise ValueError(f"{cls.__name__} has no field {named}: correct the key, in the config or its overrides.")

    def _check_label_sets(self):
        if self.multi_task_codes not in ("concat", "tuple"):
            raise ValueError(f'multi_task_codes must be "concat" or "tuple", got {self.multi_task_codes!r}.')
        if self.multi_task_prior not in ("joint", "per_task"):
            raise ValueError(f'multi_task_prior must be "joint" or "per_task", got {self.multi_task_prior!r}.')
        if not self.label_sets or any(len(labels) < 2 for labels in self.label_sets.values()):
            raise ValueError(f"label_sets needs tasks of at least 2 labels each, got {self.label_sets!r}.")
        first_task, first_labels = next(iter(self.label_sets.items()))
        if list(first_labels) != [self.id2label[i] for i in range(len(self.id2label))]:
            raise ValueError(
                f"The first task of label_sets ({first_task!r}: {list(first_labels)}) must have the labels of id2label "
                f"({list(self.id2label.values())}), in order: the pipeline's default output is that task."
            )

    def _check_dimensional_targets(self):
        if len(self.value_range) != 2 or not self.value_range[0] < self.value_range[1]:
            raise ValueError(f"value_range must be [low, high] with low < high, got {self.value_range!r}.")
        if self.label_sets or self.similarity_loss_weight or self.value_grid_size < 2:
            raise ValueError(
                "Dimensional targets (problem_type='regression') take neither label_sets nor a similarity loss, and "
                f"need value_grid_size >= 2 (got {self.value_grid_size})."
            )
        if self.encoding_dim % (2 * self.num_labels):
            raise ValueError(
                f"The {self.num_labels} dimensions split encoding_dim={self.encoding_dim} evenly, each an even number "
                f"of dimensions: pass an encoding_dim divisible by {2 * self.num_labels}."
            )

    def to_dict(self) -> dict:
        output = super().to_dict()
        # Configs are written as JSON with sorted keys, which would reorder the tasks of a dict: their order makes the
        # first task the pipeline's default and numbers the label tuples, the codes and the prior's outputs. So
        # `label_sets` is written as [task, labels] pairs (a config saved as a dict reads back in its sorted order).
        if output.get("label_sets"):
            output["label_sets"] = [[task, list(labels)] for task, labels in output["label_sets"].items()]
        return output

    @property
    def pooled_features_shape(self) -> tuple[int, int]:
        """`(num_layers, width)` of a clip's pooled encoder features: every layer's output and the embedding output,
        each `hidden_size` wide (twice that with `"mean_std"` pooling)."""
        width = self.encoder_config.hidden_size * (2 if self.pooling == "mean_std" else 1)
        return self.encoder_config.num_hidden_layers + 1, width

    @property
    def tasks(self) -> dict[str, list[str]]:
        """Every task's labels: `label_sets`, or `{"label": [...id2label...]}` for a single-task model."""
        return self.label_sets or {"label": [self.id2label[i] for i in range(self.num_labels)]}


__all__ = ["GenSERConfig"]
