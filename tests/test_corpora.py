"""Several corpora as one: the label vocabulary, namespaced speakers, balanced draws, leave-one-corpus-out folds."""

import csv
import json
from collections import Counter

import numpy as np
import pytest
import torch
from datasets import Array2D, Dataset, Features
from transformers import TrainingArguments

import training.sources as sources
from modeling_genser.domain_normalization import standardise_by_domain
from training.cross_validate import main as cross_validate
from training.data import BalancedTrainer, balanced_sample_weights, load_corpora
from training.feature_cache import POOLED_FEATURES_COLUMN, collate_cached_features, with_domains
from training.folds import classes_within, corpus_label_subsets, group_folds
from training.sources import (
    AROUSAL_LEVELS,
    CORPORA,
    EMOTION_VOCABULARY,
    EMODB_VOCABULARY,
    CorpusSource,
    map_labels,
    parse_label_mapping,
    resolve_corpora,
)
from conftest import SYNTHETIC_VOCABULARY
from training.synthetic_corpus import generate_corpus

def test_labels_map_onto_the_vocabulary_and_an_unmapped_label_is_an_error():
    assert map_labels(["anger", "fear", "sadness"], EMODB_VOCABULARY) == ["angry", "fearful", "sad"]
    assert set(EMODB_VOCABULARY.values()) <= set(EMOTION_VOCABULARY)
    assert map_labels(["angry"], None) == ["angry"]
    with pytest.raises(ValueError, match=r"\['joy'\] have no entry"):
        map_labels(["anger", "joy"], EMODB_VOCABULARY)
    assert parse_label_mapping("joy=happy, rage=angry") == {"joy": "happy", "rage": "angry"}
    with pytest.raises(ValueError, match="name=vocabulary_name"):
        parse_label_mapping("joy")


def test_every_shared_corpus_maps_onto_the_vocabulary(requires_shared):
    for name, (source, *_) in CORPORA.items():
        with open(source.dataset_name + "/metadata.csv", newline="") as handle:
            labels = {row[source.label_column_name] for row in csv.DictReader(handle)}
        mapped = set(map_labels(sorted(labels), source.label_mapping))
        if source.target == "emotion":
            assert mapped <= set(EMOTION_VOCABULARY), (name, mapped)
        else:
            assert name == "baved" and mapped == set(AROUSAL_LEVELS)
        assert source.language and source.licence and source.description


def test_nemo_and_ased_are_emotion_corpora_with_their_speakers(requires_shared):
    expected = {
        "nemo": ("Polish", {"angry", "fearful", "happy", "neutral", "sad", "surprised"}, 9),
        "ased": ("Amharic", {"angry", "fearful", "happy", "neutral", "sad"}, 65),
    }
    for name, (language, labels, speakers) in expected.items():
        (source,) = CORPORA[name]
        with open(source.dataset_name + "/metadata.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert source.target == "emotion" and source.language == language
        assert set(map_labels([row[source.label_column_name] for row in rows], source.label_mapping)) == labels
        assert len({row[source.group_column_name] for row in rows}) == speakers


@pytest.fixture(scope="module")
def two_corpora(tmp_path_factory):
    """Two synthetic corpora whose speakers are both called spk00 and spk01: 30 clips of 5 emotions, and 8 clips of
    4 (no fear)."""
    root = tmp_path_factory.mktemp("corpora")
    big = generate_corpus(root / "big", num_speakers=2, num_sentences=3, seed=0)
    small = generate_corpus(
        root / "small", num_speakers=2, num_sentences=1, emotions=("anger", "happiness", "neutral", "sadness"), seed=1
    )
    return {
        "big": CorpusSource(str(big), "label", "speaker", "big", "", "English", "test", SYNTHETIC_VOCABULARY),
        "small": CorpusSource(str(small), "label", "speaker", "small", "", "German", "test", SYNTHETIC_VOCABULARY),
    }


def test_corpora_load_as_one_with_a_corpus_column_namespaced_speakers_and_mapped_labels(two_corpora):
    dataset = load_corpora(two_corpora)
    assert Counter(dataset["corpus"]) == {"big": 30, "small": 8}
    assert set(dataset["speaker"]) == {"big/spk00", "big/spk01", "small/spk00", "small/spk01"}
    assert set(dataset["emotion"]) == {"angry", "fearful", "happy", "neutral", "sad"}
    assert dataset.column_names == ["audio", "emotion", "speaker", "corpus"]


def test_with_domains_gives_each_clip_its_own_domains_statistics():
    rng = np.random.default_rng(0)
    pooled = rng.normal(size=(12, 2, 3)).astype(np.float32)
    pooled[6:] = 5 + 3 * pooled[6:]  # another recording condition: shifted and scaled
    groups = np.array(["b"] * 6 + ["a"] * 6)
    schema = Features({POOLED_FEATURES_COLUMN: Array2D((2, 3), "float32")})
    cached, table, _ = with_domains(Dataset.from_dict({POOLED_FEATURES_COLUMN: pooled}, schema), groups)
    assert cached["domain"] == [1] * 6 + [0] * 6 and table.shape == (2, 2, 2, 3)  # domains in sorted order
    batch = collate_cached_features(list(cached.with_format("numpy")), domain_statistics=table)
    standardised = standardise_by_domain(batch[POOLED_FEATURES_COLUMN], batch["domain_statistics"])
    for rows in (slice(0, 6), slice(6, 12)):
        torch.testing.assert_close(standardised[rows].mean(0), torch.zeros(2, 3), atol=1e-5, rtol=0)
        torch.testing.assert_close(standardised[rows].std(0, unbiased=False), torch.ones(2, 3), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="table of domain statistics"):
        collate_cached_features(list(cached.with_format("numpy")))


def test_balanced_weights_give_each_corpus_and_each_of_its_classes_an_equal_share():
    corpora = ["big"] * 90 + ["small"] * 10
    labels = ["a"] * 60 + ["b"] * 30 + ["a"] * 9 + ["c"]
    weights = balanced_sample_weights(corpora, labels)
    share = lambda mask: weights[np.array(mask)].sum()  # noqa: E731
    assert weights.sum() == pytest.approx(1.0)
    assert share([c == "big" for c in corpora]) == pytest.approx(0.5)
    for corpus, label in [("big", "a"), ("big", "b"), ("small", "a"), ("small", "c")]:
        assert share([c == corpus and l == label for c, l in zip(corpora, labels)]) == pytest.approx(0.25)

    # The Trainer draws with them: a small corpus's rare class comes up about as often as a big corpus's common one.
    trainer = BalancedTrainer(
        model=torch.nn.Linear(1, 1),
        args=TrainingArguments(output_dir="unused", report_to="none", seed=0),
        train_dataset=[{"x": i} for i in range(100)],
        sample_weights=weights,
    )
    sampler = trainer._get_train_sampler()
    draws = Counter((corpora[i], labels[i]) for _ in range(40) for i in sampler)  # 40 epochs of 100 draws
    for pair in [("big", "a"), ("big", "b"), ("small", "a"), ("small", "c")]:
        assert 0.2 < draws[pair] / 4000 < 0.3, draws


def test_leave_one_corpus_out_never_trains_on_the_held_out_corpus(two_corpora, monkeypatch, tmp_path):
    monkeypatch.setattr(sources, "CORPORA", {name: (source,) for name, source in two_corpora.items()})
    corpus = np.array(load_corpora(two_corpora)["corpus"])
    for held_out in group_folds(corpus, 0):
        assert len(set(corpus[held_out])) == 1 and set(corpus[held_out]).isdisjoint(corpus[~held_out])

    with pytest.raises(ValueError, match="not a named corpus"):
        resolve_corpora(["big", "elsewhere"])
    results = cross_validate(
        [
            "--dataset_name", "big,small", "--group_column_name", "corpus",
            "--output_dir", str(tmp_path / "loco"), "--feature_cache_dir", str(tmp_path / "cache"),
            "--num_train_epochs", "1", "--per_device_train_batch_size", "8", "--report_to", "none",
            "--config_overrides", "encoding_dim=32,head_hidden_size=32", "--inference_steps", "4",
        ]
    )  # fmt: skip
    assert [fold["groups"] for fold in results["per_fold"]] == [["big"], ["small"]]
    # Each held-out corpus is scored on the labels it shares with the other, predictions made within them.
    held_out = results["held_out_corpora"]
    four = ["angry", "happy", "neutral", "sad"]
    assert held_out["big"]["shared"]["labels"] == four and held_out["big"]["shared"]["clips"] == 24  # no fear
    assert held_out["small"]["shared"]["labels"] == four and held_out["small"]["core"]["clips"] == 8
    for scores in held_out.values():
        assert 0 <= scores["core"]["steps_4"]["unweighted_accuracy"] <= 1
    # Each corpus standardised with its own statistics (the held-out one too: adaptation, no labels used).
    adapted = cross_validate(
        [
            "--dataset_name", "big,small", "--group_column_name", "corpus", "--domain_normalization", "true",
            "--output_dir", str(tmp_path / "adapted"), "--feature_cache_dir", str(tmp_path / "cache"),
            "--num_train_epochs", "1", "--per_device_train_batch_size", "8", "--report_to", "none",
            "--config_overrides", "encoding_dim=32,head_hidden_size=32", "--inference_steps", "4", "--head", "linear",
        ]
    )  # fmt: skip
    assert set(adapted["held_out_corpora"]) == {"big", "small"}
    for scores in adapted["held_out_corpora"].values():  # with its own statistics, and with the training pool's
        assert {"classifier", "classifier_unadapted"} <= set(scores["core"])
    assert json.loads((tmp_path / "loco" / "cross_validation.json").read_text())["labels"] == sorted(
        {"angry", "fearful", "happy", "neutral", "sad"}
    )


def test_each_corpus_is_predicted_in_corpus_within_its_own_labels(two_corpora):
    dataset = load_corpora(two_corpora)
    labels = sorted(set(dataset["emotion"]))
    targets = np.array([labels.index(label) for label in dataset["emotion"]])
    subsets = corpus_label_subsets(np.array(dataset["corpus"]), targets)
    assert {name: [labels[i] for i in ids] for name, ids in subsets.items()} == {
        "big": ["angry", "fearful", "happy", "neutral", "sad"],
        "small": ["angry", "happy", "neutral", "sad"],  # no fear: a small clip is never predicted fearful
    }
    logits = np.zeros((1, len(labels)))
    logits[0, labels.index("fearful")], logits[0, labels.index("sad")] = 2.0, 1.0
    assert labels[classes_within(logits, subsets["small"])[0]] == "sad"
    assert labels[classes_within(logits, subsets["big"])[0]] == "fearful"


def test_run_genser_trains_one_model_on_several_corpora_with_each_corpus_in_its_card(
    two_corpora, monkeypatch, tmp_path
):
    from huggingface_hub import ModelCard

    from modeling_genser import GenSERForAudioClassification
    from modeling_genser.domain_normalization import domain_statistics
    from training.feature_cache import pooled_features
    from training.run_genser import main as run_genser

    monkeypatch.setattr(sources, "CORPORA", {name: (source,) for name, source in two_corpora.items()})
    output_dir = tmp_path / "general"
    run_genser(
        [
            "--dataset_name", "big,small", "--evaluation_protocol", "leave_one_speaker_out", "--num_folds", "2",
            "--domain_normalization", "true", "--domain_residuals", "true", "--leave_one_corpus_out", "true",
            "--output_dir", str(output_dir), "--feature_cache_dir", str(tmp_path / "cache"), "--max_steps", "4",
            "--per_device_train_batch_size", "8",
            "--report_to", "none", "--eval_strategy", "no", "--save_strategy", "no", "--num_example_predictions", "1",
            "--config_overrides", "encoding_dim=32,head_hidden_size=32",
        ]
    )  # fmt: skip
    card = ModelCard.load(output_dir / "README.md")
    assert card.data.datasets == ["big", "small"]
    by_corpus = {(result.dataset_name, result.dataset_split) for result in card.data.eval_results}
    # In corpus, each corpus predicted within its own labels (as with candidate_labels) and among all of them.
    assert ("big", "speaker-independent cross-validation, 2 folds, its labels") in by_corpus
    assert ("small", "speaker-independent cross-validation, 2 folds, all labels") in by_corpus
    assert ("small", "leave-one-corpus-out, core labels, training pool's statistics") in by_corpus
    assert "| big | English | 30 | 2 |" in card.text and "| small | German | 8 | 2 |" in card.text
    # The saved model keeps the statistics of its training pool (both corpora, raw features) for lone clips.
    model = GenSERForAudioClassification.from_pretrained(output_dir)
    assert model.config.domain_normalization and model.config.domain_names == ["big", "small"]
    assert model.prior.domain_weight.flatten(1).abs().sum(1).gt(0).all()  # both corpora's residuals trained
    cached = [path for path in (tmp_path / "cache").glob("pooled-*/rows-*.arrow")]  # the training rows
    (path,) = cached
    from datasets import Dataset

    pool = domain_statistics(pooled_features(Dataset.from_file(str(path))))
    torch.testing.assert_close(model.conditioner.domain_statistics, pool)


def test_label_mapping_renames_a_datasets_labels_and_refuses_an_unnamed_one(two_corpora, tmp_path):
    from modeling_genser import GenSERForAudioClassification
    from training.run_genser import main as run_genser

    arguments = [
        "--dataset_name", two_corpora["big"].dataset_name, "--output_dir", str(tmp_path / "mapped"),
        "--max_steps", "2", "--per_device_train_batch_size", "8", "--report_to", "none", "--save_strategy", "no",
        "--eval_strategy", "no", "--num_example_predictions", "0", "--config_overrides", "encoding_dim=32,head_hidden_size=32",
    ]  # fmt: skip
    mapping = ",".join(f"{name}={target}" for name, target in SYNTHETIC_VOCABULARY)
    run_genser([*arguments, "--label_mapping", mapping])
    model = GenSERForAudioClassification.from_pretrained(tmp_path / "mapped")
    assert list(model.config.id2label.values()) == ["angry", "fearful", "happy", "neutral", "sad"]
    with pytest.raises(ValueError, match=r"\['sadness'\] have no entry"):
        run_genser([*arguments, "--label_mapping", mapping.replace("sadness=sad", "")])


def test_a_saved_model_goes_on_training_with_what_it_carries(two_corpora, monkeypatch, tmp_path):
    """`run_genser --model_name_or_path` on a new dataset: the saved model's domain normalisation, residual weights and
    tasks are inherited without repeating a flag, and the new dataset becomes a domain of its own (its clips are never
    read with a saved domain's residual weights)."""
    from modeling_genser import GenSERForAudioClassification
    from training.run_genser import main as run_genser

    monkeypatch.setattr(sources, "CORPORA", {name: (source,) for name, source in two_corpora.items()})
    common = [
        "--evaluation_protocol", "leave_one_speaker_out", "--num_folds", "2", "--feature_cache_dir",
        str(tmp_path / "cache"), "--max_steps", "4", "--per_device_train_batch_size", "8", "--learning_rate", "1e-2",
        "--report_to", "none", "--eval_strategy", "no", "--save_strategy", "no", "--num_example_predictions", "0",
    ]  # fmt: skip
    general_dir = tmp_path / "general"
    run_genser(
        ["--dataset_name", "big,small", "--task_columns", "arousal", "--domain_normalization", "true",
         "--domain_residuals", "true", "--output_dir", str(general_dir), *common,
         "--config_overrides", "encoding_dim=32,head_hidden_size=32"]
    )  # fmt: skip
    general = GenSERForAudioClassification.from_pretrained(general_dir)
    assert general.config.domain_names == ["big", "small"] and list(general.config.label_sets) == ["emotion", "arousal"]

    new = generate_corpus(tmp_path / "newcorpus", num_speakers=2, num_sentences=1, seed=2)
    mapping = ",".join(f"{name}={target}" for name, target in SYNTHETIC_VOCABULARY)
    going_on = ["--model_name_or_path", str(general_dir), "--dataset_name", str(new), "--label_mapping", mapping]
    metrics = run_genser([*going_on, "--output_dir", str(tmp_path / "continued"), *common])
    assert "loso_unweighted_accuracy" in metrics and "loso_arousal_unweighted_accuracy" not in metrics  # no labels, no figure
    continued = GenSERForAudioClassification.from_pretrained(tmp_path / "continued")
    assert continued.config.domain_normalization and continued.config.label_sets == general.config.label_sets
    assert continued.config.domain_names == ["big", "small", "newcorpus"]
    saved_residuals, residuals = general.prior.domain_weight, continued.prior.domain_weight
    torch.testing.assert_close(residuals[:2], saved_residuals)  # no clip of the new dataset read with big's or small's
    assert residuals[2].abs().sum() > 0  # the new domain's own residuals trained
    assert not torch.equal(continued.conditioner.domain_statistics, torch.stack([torch.zeros(3, 64), torch.ones(3, 64)]))

    # Overrides apply, or say why they cannot.
    run_genser([*going_on, "--output_dir", str(tmp_path / "shared-only"), "--domain_residuals", "false", *common])
    assert GenSERForAudioClassification.from_pretrained(tmp_path / "shared-only").config.domain_names is None
    with pytest.raises(ValueError, match="residual weights per domain.*--domain_residuals false too"):
        run_genser([*going_on, "--output_dir", str(tmp_path / "x"), "--domain_normalization", "false", *common])
    with pytest.raises(ValueError, match="--domain_normalization \\(inherited from .*\\).*leave_one_speaker_out"):
        run_genser([*going_on, "--output_dir", str(tmp_path / "x"), "--report_to", "none"])  # held-out speakers
    with pytest.raises(ValueError, match="cannot set domain_names"):
        run_genser([*going_on, "--output_dir", str(tmp_path / "x"), "--config_overrides", 'domain_names=["a"]', *common])
    with pytest.raises(ValueError, match=r"labels \['anger', 'fear', .*are not among the labels of .*--label_mapping"):
        run_genser([*going_on[:4], "--output_dir", str(tmp_path / "x"), *common])
