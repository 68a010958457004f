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
"""

import math

import torch


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
