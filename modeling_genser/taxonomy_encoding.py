# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Sinusoidal taxonomy encoding: the codes that form Gen-SER's terminal distribution.

Each class index ``k`` is placed at the "position" ``p = k * index_scale`` and encoded like a transformer position:

    code[k, 2i]     = sin(p / base ** (2i / dim))
    code[k, 2i + 1] = cos(p / base ** (2i / dim))        for i = 0 .. dim/2 - 1

Every code has the same norm, sqrt(dim / 2), and entries in [-1, 1]; no further normalisation is applied.

Why ``index_scale``: with the textbook ``index_scale = 1`` neighbouring class indices get almost the same code
(their angles differ by less than one radian in every frequency), so the codes lie near a low-dimensional curve
and the generative head confuses neighbouring classes. Multiplying the index spreads the angles so the codes
approach an equidistant simplex. ``pairwise_code_cosine`` measures this; the benchmark chooses the value.

Several tasks share one terminal code (``joint_taxonomy_codes``); a continuous label (e.g. arousal) is encoded at
the position of its value (``continuous_encoding``) and read back as the nearest value of a grid
(``nearest_grid_values``).

`GenSERCodeBookMixin` is the model's code book: its terminal codes from its config, how labels index them, and how
generated vectors are read back as each task's logits or values.
"""

import math

import torch
from transformers.utils import ModelOutput

# A task label a clip does not have (an arousal corpus has no emotion labels): PyTorch's and transformers' ignore index.
MISSING_LABEL = -100


def sinusoidal_encoding(positions: torch.Tensor, dim: int, base: float = 10000.0) -> torch.Tensor:
    """The transformer position code of every entry of `positions` (any shape): `(*positions.shape, dim)`, float32.
    Computed in float64, so that equal positions give bit-equal codes whatever their dtype."""
    if dim < 2 or dim % 2:
        raise ValueError(f"The taxonomy encoding dimension must be an even number >= 2, got dim={dim}.")
    frequencies = base ** (-torch.arange(0, dim, 2, dtype=torch.float64, device=positions.device) / dim)
    angles = positions.double()[..., None] * frequencies
    codes = torch.stack([torch.sin(angles), torch.cos(angles)], dim=-1)  # sin, cos interleaved
    return codes.flatten(-2).float()


def sinusoidal_taxonomy_encoding(
    num_classes: int, dim: int, index_scale: float = 100.0, base: float = 10000.0
) -> torch.Tensor:
    """Returns the taxonomy codes of classes ``0 .. num_classes - 1``.

    Returns:
        `torch.FloatTensor` of shape `(num_classes, dim)`.
    """
    if num_classes < 2:
        raise ValueError(f"Gen-SER needs at least 2 classes to encode, got num_classes={num_classes}.")
    return sinusoidal_encoding(torch.arange(num_classes, dtype=torch.float64) * index_scale, dim, base)


def continuous_encoding(
    values: torch.Tensor, dim: int, value_range: tuple[float, float], span: float = 100.0, base: float = 10000.0
) -> torch.Tensor:
    """A continuous label encoded like a position: the value's place in `value_range` times `span`, so the bottom of
    the range is encoded like class 0 and the top like class `span / index_scale`, values between them in between.

    Args:
        values (`torch.Tensor` of any shape)
    Returns:
        `torch.FloatTensor` of shape `(*values.shape, dim)`.
    """
    low, high = value_range
    return sinusoidal_encoding((values.double() - low) / (high - low) * span, dim, base)


def nearest_grid_values(vectors: torch.Tensor, grid: torch.Tensor, grid_codes: torch.Tensor) -> torch.Tensor:
    """Reads continuous values back: for each vector, the value of `grid` whose code (`grid_codes`, `(grid_size,
    dim)`) is most similar (cosine) to it. `vectors` `(..., dim)` -> `(...)`."""
    return grid[code_similarity(vectors, grid_codes).argmax(-1)]


def joint_taxonomy_codes(
    label_counts: list[int], dim: int, scheme: str = "concat", index_scale: float = 100.0, base: float = 10000.0
) -> torch.Tensor:
    """Terminal codes for several tasks at once: one code per tuple of labels (one label per task), the tuples in
    row-major order (the last task's label varies fastest, as `numpy.ravel_multi_index` numbers them).

    - `"concat"`: each task has its own sinusoidal codes of `dim // len(label_counts)` dimensions and a tuple's code
      concatenates its labels' codes, so every task can be read off its own slice;
    - `"tuple"`: every tuple is one class of a single sinusoidal encoding of `dim` dimensions.

    Returns:
        `torch.FloatTensor` of shape `(prod(label_counts), dim)`.
    """
    if scheme == "tuple":
        return sinusoidal_taxonomy_encoding(math.prod(label_counts), dim, index_scale, base)
    if scheme != "concat":
        raise ValueError(f'The multi-task code scheme must be "concat" or "tuple", got {scheme!r}.')
    if dim % (2 * len(label_counts)):
        raise ValueError(
            f"Concatenated codes split encoding_dim={dim} evenly between {len(label_counts)} tasks, each an even "
            f"number of dimensions: pass an encoding_dim divisible by {2 * len(label_counts)}."
        )
    task_codes = [sinusoidal_taxonomy_encoding(count, dim // len(label_counts), index_scale, base) for count in label_counts]
    tuples = label_tuples(label_counts)
    return torch.cat([codes[tuples[:, task]] for task, codes in enumerate(task_codes)], dim=-1)


def label_tuples(label_counts: list[int]) -> torch.Tensor:
    """Every tuple of labels, one label index per task, in the row-major order of `joint_taxonomy_codes`:
    `(prod(label_counts), num_tasks)`."""
    return torch.cartesian_prod(*[torch.arange(count) for count in label_counts]).reshape(-1, len(label_counts))


def pairwise_code_cosine(codes: torch.Tensor, centred: bool = True) -> torch.Tensor:
    """Cosine similarity between every pair of codes, optionally after removing their mean.

    The centred cosine shows the geometry the head has to separate (a regular simplex gives -1/(C-1) everywhere);
    the mean code is shared by all classes and carries no class information.

    Args:
        codes (`torch.Tensor` of shape `(num_classes, dim)`)
    Returns:
        `torch.Tensor` of shape `(num_classes, num_classes)`.
    """
    if centred:
        codes = codes - codes.mean(dim=0, keepdim=True)
    return code_similarity(codes, codes)


def code_similarity(vectors: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """Cosine similarity between generated vectors and class codes, the quantity Gen-SER classifies by.

    Args:
        vectors (`torch.Tensor` of shape `(..., dim)`)
        codes (`torch.Tensor` of shape `(num_classes, dim)`)
    Returns:
        `torch.Tensor` of shape `(..., num_classes)`.
    """
    vectors = torch.nn.functional.normalize(vectors, dim=-1)
    codes = torch.nn.functional.normalize(codes, dim=-1)
    return vectors @ codes.T


class GenSERCodeBookMixin:
    """The taxonomy codes of a Gen-SER model (`config` and the `class_codes` buffer of `terminal_codes`) and their
    reading: label indices to codes, generated vectors to each task's logits (or to dimensional values)."""

    @property
    def is_dimensional(self) -> bool:
        """Whether the targets are continuous values (`problem_type="regression"`, e.g. arousal) rather than classes."""
        return self.config.problem_type == "regression"

    @property
    def label_counts(self) -> list[int]:
        """How many labels each task has (one task unless `config.label_sets`)."""
        return [len(labels) for labels in self.config.tasks.values()]

    @property
    def per_task_prior(self) -> bool:
        """Whether the prior is one softmax per task (`multi_task_prior="per_task"` with several tasks)."""
        return bool(self.config.label_sets) and self.config.multi_task_prior == "per_task"

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
        return self.read_values(generated) if self.is_dimensional else self.task_logits(generated)[0]

    def task_logits(self, generated: torch.Tensor) -> ModelOutput:
        """Every task's `(batch_size, num_task_labels)` logits from generated vectors `(batch_size, encoding_dim)`,
        keyed by task name in `config.tasks` order (a `ModelOutput`: also indexable by position, `[0]` the first task).

        One task: the similarities to its codes. Concatenated codes: each task's similarities on its own slice of the
        vector, to its own codes. Tuple codes: each task's log-probabilities, the tuples' softmax summed over the
        other tasks' labels.
        """
        tasks, counts = list(self.config.tasks), self.label_counts
        if len(tasks) == 1:
            return ModelOutput({tasks[0]: self.similarity_logits(generated)})
        if self.config.multi_task_codes == "tuple":
            joint = self.similarity_logits(generated).log_softmax(-1).reshape(-1, *counts)
            axes = range(1, len(counts) + 1)
            return ModelOutput(
                {task: joint.logsumexp(dim=[a for a in axes if a != t + 1]) for t, task in enumerate(tasks)}
            )
        logits = {}
        for t, task in enumerate(tasks):
            columns, task_codes = self.task_code_slice(t)
            logits[task] = code_similarity(generated[:, columns], task_codes) / self.config.similarity_temperature
        return ModelOutput(logits)
