# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Domain normalisation: each domain's (corpus, collection, speaker) pooled encoder features standardised with that
domain's own statistics, so recording conditions shift the condition less. Pure functions on
`(num_clips, num_layers, width)` pooled features; the conditioner applies them (`modeling_genser.py`).
"""

import torch


# Floor of a domain's per-feature standard deviation.
DOMAIN_STD_FLOOR = 1e-6


def domain_moments(pooled: torch.Tensor) -> tuple[int, torch.Tensor, torch.Tensor]:
    """What the statistics of a domain are computed from, for `(num_clips, num_layers, width)` pooled features: the
    clip count and the float64 sum and sum of squares, `(num_layers, width)` each. Moments of several batches (or
    annotation shards) add up, so a collection's statistics need one pass and no stored features."""
    pooled = pooled.detach().double()
    return pooled.shape[0], pooled.sum(0), pooled.square().sum(0)


def domain_statistics_from_moments(count: float, total: torch.Tensor, squares: torch.Tensor) -> torch.Tensor:
    """The mean and (population) standard deviation of a domain's pooled features, `(2, num_layers, width)` float32,
    from its `domain_moments` (summed over batches; or `shrunk_moments`, whose count need not be whole)."""
    if count < 2:
        raise ValueError(
            f"Domain statistics need at least 2 clips, got {count}: classify a lone clip without domain statistics "
            "(the model then uses its training pool's), or gather more clips of its collection."
        )
    mean = total / count
    std = (squares / count - mean.square()).clamp_min(0).sqrt()
    return torch.stack([mean, std]).float()


def shrunk_moments(
    count: int, total: torch.Tensor, squares: torch.Tensor, prior: torch.Tensor, prior_windows: float
) -> tuple[float, torch.Tensor, torch.Tensor]:
    """A domain's moments pooled with `prior_windows` pseudo-windows of the `(2, num_layers, width)` `prior`
    statistics (its collection's, or the training pool's): their statistics (`domain_statistics_from_moments`) move
    from the prior's to the domain's own as its window count `n` grows, the own mean's weight being
    `n / (n + prior_windows)`, and the variance is the pooled one (it widens where the domain's mean lies far from the
    prior's). A handful of windows then no longer standardise every feature to about +-1, a condition no training
    clip had; a corpus's thousands of windows keep their own statistics."""
    mean, std = prior.to(total.device, torch.float64).unbind(0)  # the moments' device: the annotator sums on the CPU
    return count + prior_windows, total + prior_windows * mean, squares + prior_windows * (std.square() + mean.square())


def domain_statistics(pooled: torch.Tensor) -> torch.Tensor:
    """The `(2, num_layers, width)` mean and standard deviation of `(num_clips, num_layers, width)` pooled features."""
    return domain_statistics_from_moments(*domain_moments(pooled))


def standardise_by_domain(pooled: torch.Tensor, statistics: torch.Tensor) -> torch.Tensor:
    """`(batch, num_layers, width)` pooled features standardised with their domain's `(2, num_layers, width)`
    statistics, or each clip with its own, `(batch, 2, num_layers, width)`."""
    mean, std = statistics.to(pooled.dtype).unbind(-3)
    # A feature constant over a domain (e.g. one padded channel) keeps a finite value.
    return (pooled - mean) / std.clamp_min(DOMAIN_STD_FLOOR)


def with_pool_statistics(statistics: torch.Tensor, pool: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """Per-clip `(batch, 2, num_layers, width)` statistics: the training pool's `(2, num_layers, width)` for the
    clips where the `(batch,)` mask `chosen` is set, else their domain's (`statistics`, one domain's or per clip)."""
    per_clip = statistics.expand(len(chosen), *pool.shape) if statistics.dim() == pool.dim() else statistics
    return torch.where(chosen[:, None, None, None], pool.to(per_clip.dtype), per_clip)
