"""Domain normalisation: each clip's pooled features standardised with its collection's statistics (the training
pool's for a lone clip), in the model, the classification heads and the pipeline."""

import numpy as np
import pytest
import torch
from datasets import Array2D, Dataset, Features, Value
from transformers import TrainingArguments, Wav2Vec2FeatureExtractor

import modeling_genser.modeling_genser as modeling_genser_module
from conftest import domain_model, genser_classifier, save_domain_model, tiny_wav2vec2_config, tone
from modeling_genser import GenSERConfig, GenSERForAudioClassification
from modeling_genser.domain_normalization import (
    domain_moments,
    domain_statistics,
    domain_statistics_from_moments,
    shrunk_moments,
    standardise_by_domain,
    with_pool_statistics,
)
from modeling_genser.modeling_genser import GenSERConditioner
from pipelines import GenSERAudioClassificationPipeline
from training.feature_cache import POOLED_FEATURES_COLUMN, with_domains
from training.folds import train_head
from training.heads import PooledFeatureClassifier

LABELS = {0: "angry", 1: "happy", 2: "sad"}


def test_domain_statistics_standardise_a_domain_and_their_moments_add_up_over_parts():
    pooled = 4.0 + 3.0 * torch.randn(40, 3, 5, generator=torch.Generator().manual_seed(0))
    statistics = domain_statistics(pooled)
    standardised = standardise_by_domain(pooled, statistics)
    torch.testing.assert_close(standardised.mean(0), torch.zeros(3, 5), atol=1e-5, rtol=0)
    torch.testing.assert_close(standardised.std(0, unbiased=False), torch.ones(3, 5), atol=1e-5, rtol=0)
    parts = [domain_moments(pooled[:13]), domain_moments(pooled[13:])]
    summed = [sum(part[i] for part in parts) for i in range(3)]
    torch.testing.assert_close(domain_statistics_from_moments(*summed), statistics)
    # Per-clip statistics: each clip with its own domain's.
    other = torch.stack([torch.zeros(3, 5), torch.full((3, 5), 2.0)])
    per_clip = torch.stack([statistics, other])
    expected = torch.stack([standardised[0], pooled[1] / 2])
    torch.testing.assert_close(standardise_by_domain(pooled[:2], per_clip), expected)
    with pytest.raises(ValueError, match="at least 2 clips"):
        domain_statistics(pooled[:1])


def test_shrunk_moments_pool_a_domain_with_pseudo_windows_of_the_prior():
    generator = torch.Generator().manual_seed(0)
    pooled = 4.0 + 3.0 * torch.randn(6, 3, 5, generator=generator)
    prior = torch.stack([torch.randn(3, 5, generator=generator), 0.5 + torch.rand(3, 5, generator=generator)])
    own = domain_moments(pooled)
    torch.testing.assert_close(domain_statistics_from_moments(*shrunk_moments(*own, prior, 0.0)), domain_statistics(pooled))
    nothing = (0, torch.zeros(3, 5, dtype=torch.float64), torch.zeros(3, 5, dtype=torch.float64))
    torch.testing.assert_close(domain_statistics_from_moments(*shrunk_moments(*nothing, prior, 4.0)), prior)
    # k pseudo-windows of the prior are k clips with its mean and spread: for k = 2, mean - std and mean + std.
    mean, std = prior
    pseudo = torch.cat([pooled, torch.stack([mean - std, mean + std])])
    torch.testing.assert_close(domain_statistics_from_moments(*shrunk_moments(*own, prior, 2.0)), domain_statistics(pseudo))
    shrunk_mean = domain_statistics_from_moments(*shrunk_moments(*own, prior, 10.0))[0]
    torch.testing.assert_close(shrunk_mean, (6 * pooled.mean(0) + 10 * mean) / 16)  # own weight n / (n + k)
    # One clip has no spread of its own: shrunk, its statistics are the prior's, moved by its count.
    lone = domain_statistics_from_moments(*shrunk_moments(*domain_moments(pooled[:1]), prior, 16.0))
    assert torch.isfinite(lone).all() and standardise_by_domain(pooled[:1], lone).abs().max() < standardise_by_domain(
        pooled[:1], prior
    ).abs().max()


def test_model_uses_given_statistics_else_its_training_pools_and_saves_them(tmp_path):
    model = domain_model()
    pooled = 1.0 + 0.5 * torch.randn(6, 3, 32, generator=torch.Generator().manual_seed(1))
    pool = domain_statistics(5.0 + torch.randn(20, 3, 32, generator=torch.Generator().manual_seed(2)))
    model.conditioner.set_domain_statistics(pool)
    own = domain_statistics(pooled)
    with torch.no_grad():
        lone = model(pooled_layer_features=pooled).logits
        adapted = model(pooled_layer_features=pooled, domain_statistics=own).logits
        # Standardising the features beforehand and handing the model the identity gives the same answer.
        identity = torch.stack([torch.zeros(3, 32), torch.ones(3, 32)])
        standardised = standardise_by_domain(pooled, own)
        torch.testing.assert_close(model(pooled_layer_features=standardised, domain_statistics=identity).logits, adapted)
        torch.testing.assert_close(model(pooled_layer_features=pooled, domain_statistics=pool).logits, lone)
    assert not torch.allclose(lone, adapted)
    model.save_pretrained(tmp_path)
    reloaded = GenSERForAudioClassification.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(reloaded.conditioner.domain_statistics, pool)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(pooled_layer_features=pooled).logits, lone)


def test_heads_share_the_domain_normalisation_and_models_without_it_refuse_statistics():
    model = domain_model()
    head = PooledFeatureClassifier(model.config).eval()
    pooled = torch.randn(4, 3, 32)
    statistics = domain_statistics(torch.randn(10, 3, 32))
    with torch.no_grad():
        by_head = head(pooled_layer_features=pooled, domain_statistics=statistics).logits
        identity = torch.stack([torch.zeros(3, 32), torch.ones(3, 32)])
        standardised = standardise_by_domain(pooled, statistics)
        torch.testing.assert_close(head(pooled_layer_features=standardised, domain_statistics=identity).logits, by_head)
    plain = GenSERForAudioClassification(GenSERConfig(encoder_config=tiny_wav2vec2_config(), id2label=LABELS)).eval()
    with pytest.raises(ValueError, match="without domain normalisation"):
        plain(pooled_layer_features=pooled, domain_statistics=statistics)
    with pytest.raises(ValueError, match="domain_normalization=True"):
        plain.conditioner.set_domain_statistics(statistics)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    return genser_classifier(str(save_domain_model(tmp_path_factory.mktemp("domain-model"))))


def test_pipeline_computes_a_collections_statistics_and_classifies_with_them(classifier):
    clips = [tone(frequency, 1.0, seed) for seed, frequency in enumerate((150, 300, 600, 900))]
    statistics = classifier.collection_statistics(clips)
    model, extractor = classifier.model, classifier.feature_extractor
    with torch.no_grad():
        inputs = [extractor(clip, sampling_rate=16000, return_tensors="pt") for clip in clips]
        pooled = torch.cat([model.pooled_layer_features(x["input_values"], x["attention_mask"]) for x in inputs])
    # Four clips' own statistics, shrunk towards the training pool's by their count.
    pool, prior_windows = model.conditioner.domain_statistics, model.config.statistics_prior_windows
    expected = domain_statistics_from_moments(*shrunk_moments(*domain_moments(pooled), pool, prior_windows))
    torch.testing.assert_close(statistics, expected, atol=1e-5, rtol=1e-4)
    adapted = classifier(clips[0], domain_statistics=statistics, top_k=3)
    lone = classifier(clips[0], top_k=3)
    with torch.no_grad():
        inputs = extractor(clips[0], sampling_rate=16000, return_tensors="pt")
        expected = model(**inputs, domain_statistics=statistics).logits.softmax(-1)[0]
    assert {item["label"]: item["score"] for item in adapted} == pytest.approx(
        {LABELS[i]: score for i, score in enumerate(expected.tolist())}, abs=1e-5
    )
    assert adapted != lone
    # A numpy array of statistics is accepted as well; and the same statistics give the same answer.
    assert classifier(clips[0], domain_statistics=statistics.numpy(), top_k=3) == adapted


def test_pipeline_says_what_is_wrong_with_domain_options(classifier, tmp_path):
    clip = tone(200)
    with pytest.raises(ValueError, match=r"of shape \(2, 3, 32\)"):
        classifier(clip, domain_statistics=torch.zeros(2, 3))
    with pytest.raises(ValueError, match="finite"):
        classifier(clip, domain_statistics=torch.full((2, 3, 32), float("nan")))
    with pytest.raises(ValueError, match="several clips"):
        classifier.collection_statistics(clip)
    plain = GenSERForAudioClassification(GenSERConfig(encoder_config=tiny_wav2vec2_config(), id2label=LABELS))
    GenSERAudioClassificationPipeline(
        model=plain, feature_extractor=Wav2Vec2FeatureExtractor(return_attention_mask=True)
    ).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="trained with domain normalisation"):
        genser_classifier(str(tmp_path))(clip, domain_statistics=np.zeros((2, 3, 32)))


def test_heads_train_on_each_clips_domain_statistics_whatever_the_trainers_column_pruning(monkeypatch, tmp_path):
    """`folds.train_head` standardises every training clip with its own domain's statistics; the Trainer's default
    `remove_unused_columns` (on, as in a script's plain `TrainingArguments`) must not drop the `domain` column."""
    pooled = torch.randn(16, 3, 32, generator=torch.Generator().manual_seed(0)).numpy()
    schema = Features({POOLED_FEATURES_COLUMN: Array2D((3, 32), "float32"), "labels": Value("int64")})
    features = Dataset.from_dict({POOLED_FEATURES_COLUMN: pooled, "labels": [0, 1, 2, 0] * 4}, schema)
    features, table, _ = with_domains(features, np.array(["a"] * 8 + ["b"] * 8))
    given = []
    conditioner_forward = GenSERConditioner.forward

    def recording_forward(self, pooled_layer_features, domain_statistics=None):
        given.append(domain_statistics is not None)
        return conditioner_forward(self, pooled_layer_features, domain_statistics)

    monkeypatch.setattr(GenSERConditioner, "forward", recording_forward)
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=3, per_device_train_batch_size=4, report_to="none")
    assert args.remove_unused_columns
    train_head(domain_model().train(), features, args, table)
    assert given and all(given)


def test_training_gives_some_clips_the_pools_statistics_with_pool_statistics_probability(monkeypatch):
    own, pool = torch.zeros(2, 3, 4), torch.ones(2, 3, 4)
    chosen = torch.tensor([True, False, True])
    mixed = with_pool_statistics(own, pool, chosen)  # one domain's statistics for the batch
    assert mixed.shape == (3, 2, 3, 4) and mixed[chosen].eq(1).all() and mixed[~chosen].eq(0).all()
    per_clip = torch.stack([own, 2 * pool, own])
    torch.testing.assert_close(with_pool_statistics(per_clip, pool, chosen), torch.stack([pool, 2 * pool, pool]))

    # In the model: about that share of the clips in training, none in evaluation.
    used = []
    record = lambda pooled, statistics: used.append(statistics) or standardise_by_domain(pooled, statistics)  # noqa: E731
    monkeypatch.setattr(modeling_genser_module, "standardise_by_domain", record)
    pooled = 3.0 + torch.randn(400, 3, 32, generator=torch.Generator().manual_seed(0))
    given, pool = domain_statistics(pooled), domain_statistics(torch.randn(20, 3, 32))
    for probability, low, high in ((0.0, 0.0, 0.0), (0.5, 0.4, 0.6), (1.0, 1.0, 1.0)):
        conditioner = domain_model(pool_statistics_probability=probability).conditioner
        conditioner.set_domain_statistics(pool)
        conditioner.train()(pooled, given)
        conditioner.eval()(pooled, given)
        training, evaluation = (statistics.expand(len(pooled), *pool.shape) for statistics in used[-2:])
        share = training.eq(pool).flatten(1).all(1).float().mean().item()
        assert low <= share <= high, (probability, share)
        assert evaluation.eq(given).all()
    with pytest.raises(ValueError, match="pool_statistics_probability"):
        GenSERConfig(pool_statistics_probability=1.5)
