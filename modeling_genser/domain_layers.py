# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Per-domain weights: the initial distribution's map of the condition, read with a training domain's residual
weights on top of the shared ones (`GenSERDomainLinear`), and the domain ids that choose them.

`domain_normalization.py` holds the other half of the domain handling: standardising pooled features by a domain's
statistics before they become the condition.
"""

import torch
from torch import nn


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
        self.weight = zeros_inserted(self.weight.data, 0, position, count)
        self.bias = zeros_inserted(self.bias.data, 0, position, count)
        if hasattr(self, "domain_weight"):
            self.domain_weight = zeros_inserted(self.domain_weight.data, 1, position, count)
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


def zeros_inserted(tensor: torch.Tensor, dim: int, position: int, count: int) -> nn.Parameter:
    """`tensor` with `count` zero slices inserted along `dim` before index `position`, as a parameter."""
    shape = list(tensor.shape)
    shape[dim] = count
    before, after = tensor.split([position, tensor.shape[dim] - position], dim=dim)
    return nn.Parameter(torch.cat([before, tensor.new_zeros(shape), after], dim=dim))


def checked_domain_ids(domain_ids: torch.Tensor | None, domain_names: list[str] | None) -> torch.Tensor | None:
    """`domain_ids` `(batch_size,)` checked against the model's `domain_names`: None for a model without them."""
    if domain_ids is None or not domain_names:
        return None
    if domain_ids.dtype not in (torch.int32, torch.int64) or domain_ids.ndim != 1:
        raise ValueError(
            f"domain_ids must be a 1-D integer tensor, one per clip; got {domain_ids.dtype} {tuple(domain_ids.shape)}."
        )
    if (domain_ids >= len(domain_names)).any() or (domain_ids < -1).any():
        raise ValueError(
            f"domain_ids index config.domain_names ({len(domain_names)} domains) or are -1 for none; "
            f"got {sorted(set(domain_ids.tolist()))}."
        )
    return domain_ids


def dropped_domain_ids(domain_ids: torch.Tensor | None, probability: float) -> torch.Tensor | None:
    """Training's `domain_ids` with each set to -1 (no domain) with `probability`
    (`config.domain_residual_dropout`), so that the shared weights also learn to read clips alone, as they will
    read every clip of a new corpus."""
    if domain_ids is None or probability <= 0:
        return domain_ids
    dropped = torch.rand(domain_ids.shape, device=domain_ids.device) < probability
    return domain_ids.masked_fill(dropped, -1)
