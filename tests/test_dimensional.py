"""Dimensional targets (arousal): the continuous encoding, its read-back, the CCC metric, and a head that learns."""

import evaluate
import numpy as np
import pytest
import torch
from transformers import AutoModelForAudioClassification, Wav2Vec2FeatureExtractor

from conftest import genser_classifier, tiny_wav2vec2_config, tone
from modeling_genser import GenSERConfig, GenSERForAudioClassification
from modeling_genser.taxonomy_encoding import continuous_encoding, nearest_grid_values, sinusoidal_taxonomy_encoding
from training.reports import DIMENSIONAL_METRICS_PATH


def test_the_continuous_encoding_reads_known_values_back():
    grid = torch.linspace(-1, 1, 201)  # steps of 0.01
    grid_codes = continuous_encoding(grid, 64, (-1.0, 1.0))
    on_grid = torch.tensor([-1.0, -0.37, 0.0, 0.5, 1.0])
    read = nearest_grid_values(continuous_encoding(on_grid, 64, (-1.0, 1.0)), grid, grid_codes)
    torch.testing.assert_close(read, on_grid)  # exactly the grid's values (linspace's 0 is 2e-8)
    between = torch.tensor([-0.372, 0.126, 0.994])  # nearest grid values -0.37, 0.13, 0.99
    read = nearest_grid_values(continuous_encoding(between, 64, (-1.0, 1.0)), grid, grid_codes)
    torch.testing.assert_close(read, torch.tensor([-0.37, 0.13, 0.99]))
    # The ends of the range are encoded like classes 0 and 1 of the taxonomy encoding.
    ends = continuous_encoding(torch.tensor([-1.0, 1.0]), 64, (-1.0, 1.0), span=100.0)
    torch.testing.assert_close(ends, sinusoidal_taxonomy_encoding(2, 64, index_scale=100.0))


def test_ccc_pearson_and_mae_match_hand_computed_values():
    metric = evaluate.load(DIMENSIONAL_METRICS_PATH)
    assert metric.compute(predictions=[1, 2, 3], references=[1, 2, 3])["ccc"] == pytest.approx(1.0)
    # Shifted by 1: cov 2/3, variances 2/3, squared mean gap 1 -> 2 * (2/3) / (2/3 + 2/3 + 1) = 4/7.
    assert metric.compute(predictions=[2, 3, 4], references=[1, 2, 3])["ccc"] == pytest.approx(4 / 7)
    # x = 1 2 3 4, y = 2 1 4 3: means 2.5, variances 1.25, covariance 0.75 -> 1.5 / 2.5 = 0.6.
    assert metric.compute(predictions=[1, 2, 3, 4], references=[2, 1, 4, 3])["ccc"] == pytest.approx(0.6)
    assert metric.compute(predictions=[4, 3, 2, 1], references=[1, 2, 3, 4])["ccc"] == pytest.approx(-1.0)
    # Pearson ignores the shift that CCC punishes; the MAE is in the values' units.
    shifted = metric.compute(predictions=[2, 3, 4], references=[1, 2, 3])
    assert shifted["pearson"] == pytest.approx(1.0) and shifted["mae"] == pytest.approx(1.0)
    # 0.75 / sqrt(1.25 * 1.25) = 0.6; every prediction is 1 away.
    swapped = metric.compute(predictions=[1, 2, 3, 4], references=[2, 1, 4, 3])
    assert swapped["pearson"] == pytest.approx(0.6) and swapped["mae"] == pytest.approx(1.0)
    assert metric.compute(predictions=[2, 2, 2], references=[1, 2, 3])["pearson"] == 0.0  # constant: no correlation


def make_model(**kwargs) -> GenSERForAudioClassification:
    torch.manual_seed(0)
    config = GenSERConfig(
        encoder_config=tiny_wav2vec2_config(), id2label={0: "arousal"}, problem_type="regression", **kwargs
    )
    return GenSERForAudioClassification(config).eval()


def test_a_dimensional_head_learns_the_declared_arousal_of_the_synthetic_corpus(tmp_path):
    from training.data import load_audio_dataset
    from training.synthetic_corpus import AROUSAL, generate_corpus

    corpus = load_audio_dataset(str(generate_corpus(tmp_path / "corpus", num_speakers=2, num_sentences=3)))["train"]
    assert sorted(set(corpus["arousal"])) == sorted(AROUSAL.values())
    model = make_model(value_range=[0.0, 1.0])
    extractor = Wav2Vec2FeatureExtractor(return_attention_mask=True)
    arrays = [np.asarray(example["audio"].get_all_samples().data[0]) for example in corpus]
    with torch.no_grad():
        inputs = extractor(arrays, sampling_rate=16000, return_tensors="pt", padding=True)
        pooled = model.pooled_layer_features(inputs["input_values"], inputs["attention_mask"])
    targets = torch.tensor(corpus["arousal"], dtype=torch.float32)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    model.train()
    for _ in range(300):
        loss = model(pooled_layer_features=pooled, labels=targets).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        predicted = model(pooled_layer_features=pooled).logits[:, 0]
    ccc = evaluate.load(DIMENSIONAL_METRICS_PATH).compute(predictions=predicted.tolist(), references=targets.tolist())["ccc"]
    assert ccc > 0.9, ccc
    assert set(predicted.tolist()) <= set(model.value_grid.tolist())  # read back on the grid


def test_dimensional_model_saves_loads_and_runs_in_the_pipeline(tmp_path):
    model = make_model(value_range=[-1.0, 1.0], value_grid_size=101)
    model.save_pretrained(tmp_path)
    Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(tmp_path)
    reloaded = AutoModelForAudioClassification.from_pretrained(tmp_path).eval()
    assert reloaded.config.value_range == [-1.0, 1.0] and torch.equal(reloaded.value_grid, torch.linspace(-1, 1, 101))
    inputs = torch.tensor(tone(300.0))[None]
    with torch.no_grad():
        assert torch.equal(model(input_values=inputs).logits, reloaded(input_values=inputs).logits)
    (result,) = genser_classifier(str(tmp_path))(tone(300.0))
    assert result["label"] == "arousal" and -1.0 <= result["score"] <= 1.0  # the value itself, no softmax
    with pytest.raises(ValueError, match="return_trajectory is available for classification models with one code per"):
        genser_classifier(str(tmp_path))(tone(300.0), return_trajectory=True)


def test_dimensional_settings_are_checked():
    with pytest.raises(ValueError, match="low < high"):
        GenSERConfig(id2label={0: "arousal"}, problem_type="regression", value_range=[1.0, 0.0])
    with pytest.raises(ValueError, match="divisible by 6"):
        GenSERConfig(id2label={0: "a", 1: "v", 2: "d"}, problem_type="regression", encoding_dim=256)
