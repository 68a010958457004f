import json

import numpy as np
import pytest

from training.cross_validate import main
from training.folds import group_folds
from benchmarks.nested_selection import main as nested_main
from benchmarks.nested_selection import GRIDS, candidate_task, nested_folds
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
    # One speaker leaves nothing to train on in its fold: said plainly, not as an error of torch's sampler.
    with pytest.raises(ValueError, match="at least 2 speakers.*has 1"):
        group_folds(np.array(["a", "a", "a"]), 0)


def small_run(tmp_path, config_overrides: str, *options: str) -> list[str]:
    """Cross-validation of the synthetic corpus (3 speakers, 2 sentences) with a small head and budget."""
    corpus = generate_corpus(tmp_path / "corpus", num_speakers=3, num_sentences=2, seed=0)
    return [
        "--dataset_name", str(corpus),
        "--output_dir", str(tmp_path / "cv"),
        "--feature_cache_dir", str(tmp_path / "cache"),
        "--num_train_epochs", "2",
        "--learning_rate", "1e-3",
        "--per_device_train_batch_size", "8",
        "--config_overrides", f"encoding_dim=32,head_hidden_size=32{config_overrides}",
        *options,
    ]  # fmt: skip


@pytest.mark.parametrize("head", ["genser", "linear", "mlp"])
def test_cross_validation_reports_per_fold_and_pooled_figures(tmp_path, head):
    results = main(small_run(tmp_path, "", "--head", head, "--inference_steps", "1,3"))
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


def test_nested_folds_keep_the_outer_test_speaker_out_of_every_inner_split():
    groups = np.array([f"s{i % 6}" for i in range(60)])
    nested = nested_folds(groups, inner_folds=3)
    assert len(nested) == 6
    for outer_test, inner in nested:
        assert len(set(groups[outer_test])) == 1 and len(inner) == 3
        covered = np.zeros(len(groups), dtype=int)
        for train, validation in inner:
            assert not (train & outer_test).any() and not (validation & outer_test).any()
            assert not set(groups[train]) & set(groups[validation]) and not set(groups[train]) & set(groups[outer_test])
            covered += validation
        assert (covered[~outer_test] == 1).all() and (covered[outer_test] == 0).all()


def test_nested_selection_chooses_inside_each_outer_fold_and_reports_the_default_beside_it(tmp_path):
    corpus = generate_corpus(tmp_path / "corpus", num_speakers=3, num_sentences=2, seed=0)
    results = nested_main(
        [
            "--dataset_name", str(corpus),
            "--output_dir", str(tmp_path / "nested"),
            "--feature_cache_dir", str(tmp_path / "cache"),
            "--inner_folds", "2",
            "--num_train_epochs", "1",
            "--per_device_train_batch_size", "8",
            "--report_to", "none",
        ]
    )
    assert sorted(results["pooled"]) == ["default", "nested"]
    assert len(results["per_fold"]) == 3
    for fold in results["per_fold"]:
        assert fold["choice"] in fold["inner_ua"] and len(fold["inner_ua"]) == 4 * 2  # candidates x step counts
        assert fold["choice"] == max(fold["inner_ua"], key=fold["inner_ua"].get)
    assert sum(results["choices"].values()) == 3
    assert json.loads((tmp_path / "nested" / "nested_selection.json").read_text())["default"] == "prior-mse@4"


def test_nested_grid_candidates_set_the_head_and_the_epochs_and_a_wrong_default_is_a_clear_error(tmp_path):
    from transformers import TrainingArguments

    from training.arguments import ModelArguments

    training_args = TrainingArguments(output_dir=str(tmp_path), num_train_epochs=10)
    new_head, args = candidate_task(ModelArguments(), training_args, GRIDS["prior-dim-epochs"]["prior-cosine-d64-e0.5"], ["a", "b"])
    config = new_head().config
    assert (config.encoding_dim, config.target_loss, config.initial_distribution) == (64, "cosine", "prior")
    assert args.num_train_epochs == 5 and training_args.num_train_epochs == 10
    with pytest.raises(ValueError, match="candidate of the 'prior-dim-epochs' grid"):
        nested_main(["--output_dir", str(tmp_path), "--grid", "prior-dim-epochs", "--default", "prior-mse@4"])


def test_cross_validation_of_a_multi_task_head_reports_every_task(tmp_path):
    arguments = small_run(tmp_path, ",multi_task_codes=tuple", "--task_columns", "sentence", "--inference_steps", "1")
    results = main(arguments)
    assert list(results["tasks"]) == ["label", "sentence"]
    assert results["tasks"]["sentence"]["labels"] == ["sent00", "sent01"]
    for task, clips_per_label in (("label", 3 * 2), ("sentence", 3 * 5)):
        pooled = results["tasks"][task]["pooled"]["steps_1"]
        assert np.sum(pooled["confusion_matrix"]) == 30
        assert np.sum(pooled["confusion_matrix"], axis=1).tolist() == [clips_per_label] * len(pooled["confusion_matrix"])
    assert results["pooled"] == results["tasks"]["label"]["pooled"]  # the first task, as for one task
    assert (tmp_path / "cv" / "confusion_steps_1_sentence.png").exists()
    with pytest.raises(ValueError, match="predicts one task"):
        main(arguments + ["--head", "linear", "--output_dir", str(tmp_path / "linear")])
