"""Domain residual weights (`config.domain_names`, `--domain_residuals`): the initial distribution's map of the
condition (the prior; a baseline head's first layer) has shared weights plus one residual per training domain; clips
of a known domain are read with both, other clips with the shared weights alone, and a domain no training clip came
from keeps zero residuals."""

import numpy as np
import pytest
import torch
from datasets import Array2D, Dataset, Features, Value
from torch import nn
from transformers import TrainingArguments, Wav2Vec2FeatureExtractor

from conftest import domain_model, genser_classifier, tone
from modeling_genser import GenSERConfig, GenSERForAudioClassification
from modeling_genser.domain_layers import GenSERDomainLinear
from pipelines import GenSERAudioClassificationPipeline
from training.arguments import ModelArguments
from training.feature_cache import POOLED_FEATURES_COLUMN, collate_cached_features, with_domains
from training.folds import train_head
from training.heads import PooledFeatureClassifier

LABELS = {0: "angry", 1: "happy", 2: "sad"}


def residual_model(**overrides) -> GenSERForAudioClassification:
    return domain_model(**{"domain_names": ["a", "b", "c"], **overrides})


def test_a_known_domains_clip_is_read_with_its_residual_and_any_other_with_the_shared_weights():
    torch.manual_seed(0)
    layer = GenSERDomainLinear(5, 3, num_domains=2)
    plain = nn.Linear(5, 3)
    plain.load_state_dict({"weight": layer.weight, "bias": layer.bias})
    hidden = torch.randn(4, 5)
    ids = torch.tensor([1, -1, 0, 1])
    torch.testing.assert_close(layer(hidden, ids), plain(hidden))  # residuals start at zero
    with torch.no_grad():
        layer.domain_weight.normal_()
    weights = [layer.weight + (layer.domain_weight[d] if d >= 0 else 0) for d in ids.tolist()]
    expected = torch.stack([hidden[i] @ weight.T + layer.bias for i, weight in enumerate(weights)])
    torch.testing.assert_close(layer(hidden, ids), expected)
    torch.testing.assert_close(layer(hidden), plain(hidden))
    # Without domains it is nn.Linear, checkpoint keys included.
    assert set(GenSERDomainLinear(5, 3).state_dict()) == {"weight", "bias"}


def test_the_model_checks_domain_ids_saves_its_residuals_and_drops_them_in_training(tmp_path):
    model = residual_model()
    pooled = torch.randn(6, 3, 32)
    ids = torch.tensor([0, 1, 2, -1, 0, 1])
    with torch.no_grad():
        model.prior.domain_weight.normal_()
        shared = model(pooled_layer_features=pooled).logits
        own = model(pooled_layer_features=pooled, domain_ids=ids).logits
    torch.testing.assert_close(own[3], shared[3])  # -1: the shared weights alone
    assert not torch.allclose(own[[0, 1, 2, 4, 5]], shared[[0, 1, 2, 4, 5]])
    model.save_pretrained(tmp_path)
    reloaded = GenSERForAudioClassification.from_pretrained(tmp_path).eval()
    assert reloaded.config.domain_names == ["a", "b", "c"]
    with torch.no_grad():
        torch.testing.assert_close(reloaded(pooled_layer_features=pooled, domain_ids=ids).logits, own)
    for bad in (torch.tensor([3, 0, 0, 0, 0, 0]), torch.tensor([-2, 0, 0, 0, 0, 0]), ids.float()):
        with pytest.raises(ValueError, match="domain_ids"):
            model(pooled_layer_features=pooled, domain_ids=bad)
    # A model without domains ignores them: its weights are all shared.
    plain = residual_model(domain_names=None)
    with torch.no_grad():
        torch.testing.assert_close(
            plain(pooled_layer_features=pooled, domain_ids=ids).logits, plain(pooled_layer_features=pooled).logits
        )
    # Dropout 1: every training clip is read as a new domain's, so no residual learns anything.
    dropped = residual_model(domain_residual_dropout=1.0).train()
    dropped(pooled_layer_features=pooled, domain_ids=ids, labels=torch.tensor([0, 1, 2, 0, 1, 2])).loss.backward()
    assert dropped.prior.domain_weight.grad is None or dropped.prior.domain_weight.grad.eq(0).all()
    with pytest.raises(ValueError, match="domain_residual_dropout"):
        GenSERConfig(domain_residual_dropout=-0.1)
    with pytest.raises(ValueError, match="distinct"):
        GenSERConfig(domain_names=["a", "a"])
    with pytest.raises(ValueError, match="Gaussian start"):
        GenSERConfig(domain_names=["a", "b"], initial_distribution="gaussian")
    # The "condition" start's projection has them too.
    start = residual_model(initial_distribution="condition")
    assert start.initial_proj.domain_weight.shape == (3, 32, start.conditioner.condition_dim)


@pytest.mark.parametrize("kind", ["genser", "linear", "mlp"])
def test_training_moves_the_residuals_of_its_domains_only(kind, tmp_path):
    """A head trained on domains a and b (as in a leave-one-corpus-out fold holding c out) learns their residuals and
    leaves c's at zero, so c's clips are read with the shared weights, as any new corpus's."""
    pooled = torch.randn(24, 3, 32, generator=torch.Generator().manual_seed(0)).numpy()
    schema = Features({POOLED_FEATURES_COLUMN: Array2D((3, 32), "float32"), "labels": Value("int64")})
    features = Dataset.from_dict({POOLED_FEATURES_COLUMN: pooled, "labels": [0, 1, 2] * 8}, schema)
    features, table, names = with_domains(features, np.array(["a"] * 8 + ["b"] * 8 + ["c"] * 8))
    assert names == ["a", "b", "c"]
    batch = collate_cached_features([features[i] for i in (0, 9, 17)], table)
    assert batch["domain_ids"].tolist() == [0, 1, 2]
    model = residual_model()
    head = model if kind == "genser" else PooledFeatureClassifier(model.config, 16 if kind == "mlp" else None)
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=5, per_device_train_batch_size=8, report_to="none")
    train_head(head.train(), features.select(range(16)), args, table)
    layer = head.prior if kind == "genser" else head.condition_map
    moved = layer.domain_weight.detach().flatten(1).abs().sum(1)
    assert moved[0] > 0 and moved[1] > 0 and moved[2] == 0, moved


def test_domain_residuals_need_domain_normalisation():
    with pytest.raises(ValueError, match="--domain_normalization"):
        ModelArguments(domain_residuals=True)


def test_the_pipeline_reads_a_clip_as_a_named_training_domains_or_with_the_shared_weights(tmp_path):
    model = residual_model()
    with torch.no_grad():
        model.prior.domain_weight.normal_()
    extractor = Wav2Vec2FeatureExtractor(return_attention_mask=True)
    GenSERAudioClassificationPipeline(model=model, feature_extractor=extractor).save_pretrained(tmp_path)
    classifier = genser_classifier(str(tmp_path))
    clip = tone(300, 1.0)
    inputs = extractor(clip, sampling_rate=16000, return_tensors="pt")
    for domain, ids in (("b", torch.tensor([1])), (None, None)):
        with torch.no_grad():
            expected = classifier.model(**inputs, domain_ids=ids).logits.softmax(-1)[0]
        scores = classifier(clip, top_k=3, **({} if domain is None else {"domain": domain}))
        assert {item["label"]: item["score"] for item in scores} == pytest.approx(
            {LABELS[i]: score for i, score in enumerate(expected.tolist())}, abs=1e-5
        )
    assert classifier(clip, top_k=3, domain="b") != classifier(clip, top_k=3)
    with pytest.raises(ValueError, match=r"not a training domain of this model.*\['a', 'b', 'c'\]"):
        classifier(clip, domain="emodb")
    plain = residual_model(domain_names=None)
    GenSERAudioClassificationPipeline(model=plain, feature_extractor=extractor).save_pretrained(tmp_path / "plain")
    with pytest.raises(ValueError, match="--domain_residuals"):
        genser_classifier(str(tmp_path / "plain"))(clip, domain="a")
