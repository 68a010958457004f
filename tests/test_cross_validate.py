import json

import numpy as np
import pytest

from training.cross_validate import main
from training.folds import group_folds
from training.synthetic_corpus import generate_corpus


def test_leave_one_group_out_and_group_k_fold_never_split_a_group():
    groups = np.array(["a", "b", "c", "d", "e"] * 4)
    for num_folds, expected in [(0, 5), (2, 2), (3, 3)]:
        folds = group_folds(groups, num_folds)
        assert len(folds) == expected
        assert (np.sum(folds, axis=0) == 1).all()  # every clip held out exactly once
        for held_out in folds:
            assert not set(groups[held_out]) & set(groups[~held_out])
    with pytest.raises(ValueError, match="num_folds"):
        group_folds(groups, 6)


@pytest.mark.parametrize("head", ["genser", "linear", "mlp"])
def test_cross_validation_reports_per_fold_and_pooled_figures(tmp_path, head):
    corpus = generate_corpus(tmp_path / "corpus", num_speakers=3, num_sentences=2, seed=0)
    results = main(
        [
            "--dataset_name", str(corpus),
            "--output_dir", str(tmp_path / "cv"),
            "--feature_cache_dir", str(tmp_path / "cache"),
            "--head", head,
            "--inference_steps", "1,3",
            "--num_train_epochs", "2",
            "--learning_rate", "1e-3",
            "--per_device_train_batch_size", "8",
            "--config_overrides", "encoding_dim=32,head_hidden_size=32",
        ]
    )
    assert len(results["per_fold"]) == 3
    assert [fold["groups"] for fold in results["per_fold"]] == [["spk00"], ["spk01"], ["spk02"]]
    names = ["steps_1", "steps_3"] if head == "genser" else ["classifier"]
    assert sorted(results["pooled"]) == names
    for name in names:
        pooled = results["pooled"][name]
        assert np.sum(pooled["confusion_matrix"]) == 3 * 2 * 5
        assert 0 <= pooled["unweighted_accuracy"] <= 1
        assert (tmp_path / "cv" / f"confusion_{name}.png").exists()
        saved = json.loads((tmp_path / "cv" / f"confusion_{name}.json").read_text())
        assert saved["matrix"] == pooled["confusion_matrix"]
    assert json.loads((tmp_path / "cv" / "cross_validation.json").read_text())["head"] == head
