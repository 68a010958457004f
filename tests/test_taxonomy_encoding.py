import json
import math

import pytest
import torch

from modeling_genser import code_similarity, pairwise_code_cosine, sinusoidal_taxonomy_encoding
from training.arguments import MAIN_JOB_CONFIG
from training.model_construction import parse_config_overrides


def test_codes_are_distinct_deterministic_and_bounded():
    codes = sinusoidal_taxonomy_encoding(7, 64)
    assert codes.shape == (7, 64)
    assert torch.equal(codes, sinusoidal_taxonomy_encoding(7, 64))
    assert torch.cdist(codes, codes)[~torch.eye(7, dtype=torch.bool)].min() > 1.0
    assert codes.abs().max() <= 1.0
    torch.testing.assert_close(codes.norm(dim=-1), torch.full((7,), math.sqrt(32)))


def test_formula_matches_transformer_position_encoding():
    codes = sinusoidal_taxonomy_encoding(3, 8, index_scale=10.0, base=100.0)
    position, i = 2 * 10.0, 1
    assert codes[2, 2 * i].item() == pytest.approx(math.sin(position / 100.0 ** (2 * i / 8)), abs=1e-6)
    assert codes[2, 2 * i + 1].item() == pytest.approx(math.cos(position / 100.0 ** (2 * i / 8)), abs=1e-6)


def test_index_scale_spreads_codes_towards_a_simplex():
    off_diagonal = ~torch.eye(7, dtype=torch.bool)
    textbook = pairwise_code_cosine(sinusoidal_taxonomy_encoding(7, 256, index_scale=1.0))[off_diagonal]
    spread = pairwise_code_cosine(sinusoidal_taxonomy_encoding(7, 256, index_scale=100.0))[off_diagonal]
    assert textbook.max() > 0.8  # neighbouring classes nearly collinear, as measured in ../shared/README.md
    assert spread.max() < 0.1


def test_the_release_codes_read_a_mixture_of_codes_as_its_largest_weight():
    """The denoiser regresses the expected code under its belief, a mixture of codes; read by similarity, unequal
    pairwise cosines tilt that mixture towards the classes near many others. The release model's 9 labels at its index
    scale (training/configs/main_job.json) keep every mixture whose top weight leads by 0.05; at 100 some flip."""
    release = json.loads(MAIN_JOB_CONFIG.read_text())
    release_scale = parse_config_overrides(release["config_overrides"])["taxonomy_index_scale"]
    torch.manual_seed(0)
    weights = torch.distributions.Dirichlet(torch.full((9,), 0.5)).sample((5000,))
    top_two = weights.topk(2, dim=-1).values
    clear = weights[top_two[:, 0] - top_two[:, 1] > 0.05]

    def flipped(index_scale):
        codes = sinusoidal_taxonomy_encoding(9, 256, index_scale=index_scale).float()
        return (code_similarity(clear @ codes, codes).argmax(-1) != clear.argmax(-1)).sum().item()

    assert flipped(release_scale) == 0
    assert flipped(100.0) > 0


def test_code_similarity_is_cosine():
    codes = sinusoidal_taxonomy_encoding(4, 16)
    similarity = code_similarity(3.0 * codes, codes)
    torch.testing.assert_close(similarity.diagonal(), torch.ones(4))
    assert similarity.argmax(dim=-1).tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("num_classes, dim", [(1, 8), (4, 7), (4, 0)])
def test_invalid_arguments_are_explained(num_classes, dim):
    with pytest.raises(ValueError, match="classes|dimension"):
        sinusoidal_taxonomy_encoding(num_classes, dim)
