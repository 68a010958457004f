"""Dimensional targets from a numeric column (`--value_columns`): reading and checking the values, their range, the
per-dimension metrics with the levels' confusion matrix, and training with run_genser and cross_validate."""

import json

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset
from huggingface_hub import ModelCard

from conftest import genser_classifier, tone
from training import cross_validate, run_genser
from training.data import dimension_values, dimensional_value_range, encode_values
from training.heads import PooledFeatureClassifier
from training.reports import dimension_scores, nearest_levels, ordinal_levels
from training.synthetic_corpus import AROUSAL, generate_corpus

OPTIONS = [
    "--num_train_epochs", "2",
    "--per_device_train_batch_size", "8",
    "--learning_rate", "1e-3",
    "--report_to", "none",
    "--config_overrides", "encoding_dim=32,head_hidden_size=32",
]  # fmt: skip


def test_value_columns_are_read_as_floats_and_bad_values_are_refused():
    data = Dataset.from_dict({"arousal": [0, 1, 2], "valence": [0.5, -0.5, 0.0], "word": ["a", "b", "c"]})
    np.testing.assert_array_equal(dimension_values(data, ["arousal", "valence"]), [[0, 0.5], [1, -0.5], [2, 0]])
    assert encode_values(data, ["arousal"])["labels"] == [[0.0], [1.0], [2.0]]
    with pytest.raises(ValueError, match="numeric columns, but 'word'"):
        dimension_values(data, ["word"])
    with pytest.raises(ValueError, match="Column 'mood' not found.*--value_columns"):
        dimension_values(data, ["mood"])
    levels = data.cast_column("arousal", ClassLabel(names=["low", "neutral", "high"]))
    with pytest.raises(ValueError, match="'arousal' holds class labels"):
        dimension_values(levels, ["arousal"])
    gaps = Dataset.from_dict({"arousal": [0.0, None, 2.0]})
    with pytest.raises(ValueError, match=r"1 row\(s\) have no numeric value in column 'arousal' \(rows \[1\]\)"):
        dimension_values(gaps, ["arousal"])


def test_the_value_range_is_the_datas_or_the_given_one_which_must_hold_every_value():
    values = np.array([[0.0], [1.0], [2.0]])
    assert dimensional_value_range(values) == [0.0, 2.0]
    assert dimensional_value_range(values, "-1,3") == [-1.0, 3.0]
    with pytest.raises(ValueError, match="1 value\\(s\\) lie outside --value_range '0,1'"):
        dimensional_value_range(values, "0,1")
    with pytest.raises(ValueError, match="'low,high'"):
        dimensional_value_range(values, "0..2")


def test_dimension_scores_read_few_values_as_levels_with_a_confusion_matrix():
    references = np.array([0, 1, 2, 2, 1, 0], dtype=float)
    predictions = np.array([0.2, 1.4, 1.6, 1.2, 0.6, 0.1])  # nearest levels 0 1 2 1 1 0
    scores = dimension_scores(predictions, references, ["arousal"])["arousal"]
    x, y = predictions, references
    ccc = 2 * np.cov(x, y, bias=True)[0, 1] / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)
    assert scores["ccc"] == pytest.approx(ccc)
    assert scores["pearson"] == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert scores["mae"] == pytest.approx(np.abs(x - y).mean())
    assert scores["levels"] == [0.0, 1.0, 2.0]
    assert scores["confusion_matrix"] == [[2, 0, 0], [0, 2, 0], [0, 1, 1]]
    assert scores["level_unweighted_accuracy"] == pytest.approx((1 + 1 + 0.5) / 3)
    # Continuous references (more than a few distinct values) are not levels; two dimensions are scored apart.
    continuous = np.linspace(0, 1, 20)
    both = dimension_scores(np.stack([continuous, continuous[::-1]], 1), np.stack([continuous] * 2, 1), ["a", "v"])
    assert "levels" not in both["a"] and both["a"]["ccc"] == pytest.approx(1.0) and both["v"]["ccc"] < 0
    assert ordinal_levels(continuous) is None
    np.testing.assert_array_equal(nearest_levels([0.49, 0.51, 7.0], [0.0, 1.0]), [0, 1, 1])


def test_the_regression_baseline_trains_with_the_squared_error():
    from modeling_genser import GenSERConfig

    from conftest import tiny_wav2vec2_config

    config = GenSERConfig(
        encoder_config=tiny_wav2vec2_config(), id2label={0: "arousal"}, problem_type="regression", value_range=[0.0, 2.0]
    )
    regressor = PooledFeatureClassifier(config)
    pooled = torch.randn(4, config.encoder_config.num_hidden_layers + 1, config.encoder_config.hidden_size)
    targets = torch.tensor([[0.0], [1.0], [2.0], [1.0]])
    output = regressor(pooled_layer_features=pooled, labels=targets)
    assert output.logits.shape == (4, 1)
    torch.testing.assert_close(output.loss, torch.nn.functional.mse_loss(output.logits, targets))


@pytest.mark.parametrize("protocol", ["leave_one_speaker_out", "held_out_speakers"])
def test_run_genser_trains_a_dimensional_head_from_a_value_column(protocol, tmp_path, capsys):
    corpus = generate_corpus(tmp_path / "corpus", num_speakers=3, num_sentences=2, seed=0)
    metrics = run_genser.main(
        [
            "--dataset_name", str(corpus),
            "--value_columns", "arousal",
            "--evaluation_protocol", protocol,
            "--eval_fraction", "0.34",
            "--eval_strategy", "no",
            "--feature_cache_dir", str(tmp_path / "cache"),
            "--num_example_predictions", "2",
            "--output_dir", str(tmp_path / "model"),
            *OPTIONS,
        ]
    )  # fmt: skip
    prefix = "loso" if protocol == "leave_one_speaker_out" else "eval"
    assert {f"{prefix}_ccc", f"{prefix}_pearson", f"{prefix}_mae", f"{prefix}_level_unweighted_accuracy"} <= set(metrics)
    assert -1 <= metrics[f"{prefix}_ccc"] <= 1 and metrics[f"{prefix}_mae"] >= 0
    output = capsys.readouterr().out
    assert "(arousal): CCC " in output and "true arousal 0.10" in output

    model_dir = tmp_path / "model"
    card = ModelCard.load(model_dir / "README.md")
    by_metric = {result.metric_type: result for result in card.data.eval_results}
    assert set(by_metric) == {"ccc", "pearson", "mae", "level_unweighted_accuracy"}
    assert by_metric["ccc"].task_name == "arousal regression"
    assert by_metric["ccc"].metric_value == pytest.approx(metrics[f"{prefix}_ccc"], abs=1e-4)
    assert "Dimensions: arousal, each a value from 0.1 to 0.9" in card.text and "values of arousal" in card.text
    confusion = json.loads((model_dir / "confusion_eval.json").read_text())
    assert confusion["labels"] == ["0.1", "0.3", "0.7", "0.8", "0.9"]

    classifier = genser_classifier(str(model_dir))
    assert classifier.model.config.problem_type == "regression"
    assert classifier.model.config.value_range == [min(AROUSAL.values()), max(AROUSAL.values())]
    (scored,) = classifier(tone(220.0), top_k=None)
    assert scored["label"] == "arousal" and 0.1 <= scored["score"] <= 0.9


@pytest.mark.parametrize("head", ["genser", "linear", "mlp"])
def test_cross_validate_scores_every_head_on_a_value_column(head, tmp_path):
    corpus = generate_corpus(tmp_path / "corpus", num_speakers=3, num_sentences=2, seed=0)
    results = cross_validate.main(
        [
            "--dataset_name", str(corpus),
            "--value_columns", "arousal",
            "--value_range", "0,1",
            "--head", head,
            "--output_dir", str(tmp_path / "cv"),
            "--feature_cache_dir", str(tmp_path / "cache"),
            *OPTIONS,
        ]
    )  # fmt: skip
    assert results["labels"] == ["arousal"] and results["value_range"] == [0.0, 1.0]
    (pooled,) = results["pooled"].values()
    assert set(pooled) >= {"ccc", "pearson", "mae", "confusion_matrix", "level_unweighted_accuracy"}
    assert np.sum(pooled["confusion_matrix"]) == 3 * 2 * 5  # every clip, each held out once
    assert len(results["per_fold"]) == 3


def test_value_columns_are_refused_where_they_cannot_apply(tmp_path):
    for options, message in [
        (["--task_columns", "sentence"], "--task_columns and --label_mapping are for class labels"),
        (["--dataset_name", "emodb,cremad"], "--value_columns trains on one dataset"),
        (["--use_feature_cache", "false"], "--value_columns .* cached features"),
    ]:
        with pytest.raises(ValueError, match=message):
            run_genser.main(["--output_dir", str(tmp_path), "--value_columns", "arousal", *options])
