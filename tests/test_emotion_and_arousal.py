"""One model of emotions and arousal: arousal corpora beside emotion corpora, derived levels, missing labels."""

import csv

import numpy as np
import pytest
from datasets import Dataset
from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2Model

import training.sources as sources
from conftest import save_genser, table, tiny_wav2vec2_config
from modeling_genser.taxonomy_encoding import MISSING_LABEL
from training.data import encode_labels, label_names, load_corpora, with_arousal
from training.folds import group_folds
from training.sources import AROUSAL_LEVELS, EMODB_VOCABULARY, EMOTION_AROUSAL, EMOTION_VOCABULARY, CorpusSource
from training.synthetic_corpus import generate_corpus

SYNTHETIC_VOCABULARY = tuple(
    (name, EMODB_VOCABULARY[name]) for name in ("anger", "fear", "happiness", "neutral", "sadness")
)
BAVED_LEVELS = (("low", "low"), ("neutral", "medium"), ("high", "high"))


def test_every_emotion_of_the_vocabulary_has_a_derived_arousal_level():
    assert set(EMOTION_AROUSAL) == set(EMOTION_VOCABULARY) and set(EMOTION_AROUSAL.values()) == set(AROUSAL_LEVELS)


def test_arousal_is_derived_for_emotion_corpora_and_read_from_arousal_corpora():
    dataset = Dataset.from_dict(
        {"emotion": ["angry", "sad", "neutral", "high", "low"], "corpus": ["a", "a", "b", "baved", "baved"]}
    )
    both = with_arousal(dataset, {"baved"})
    assert both["emotion"] == ["angry", "sad", "neutral", None, None]
    assert [AROUSAL_LEVELS[level] for level in both["arousal"]] == ["high", "low", "medium", "high", "low"]
    assert both["arousal_derived"] == [True, True, True, False, False]
    assert label_names(both, "emotion") == ["angry", "neutral", "sad"]
    assert label_names(both, "arousal") == list(AROUSAL_LEVELS)  # in the levels' order, not sorted by name

    tasks = {"emotion": ["angry", "neutral", "sad"], "arousal": list(AROUSAL_LEVELS)}
    encoded = encode_labels(both, "emotion", {}, tasks)
    assert encoded["labels"] == [[0, 2], [2, 0], [1, 1], [MISSING_LABEL, 2], [MISSING_LABEL, 0]]
    with pytest.raises(ValueError, match="1 row\\(s\\) have no label in column 'emotion' \\(rows \\[1\\]\\)"):
        encode_labels(both.select([0, 3]), "emotion", {"angry": 0})
    unlabelled = Dataset.from_dict({"label": ["angry", None], "arousal": ["high", None]})
    with pytest.raises(ValueError, match="1 row\\(s\\) have no label in any of the columns \\['label', 'arousal'\\]"):
        encode_labels(unlabelled, "label", {}, {"label": ["angry"], "arousal": ["high"]})
    with pytest.raises(ValueError, match="'joy' of corpus 'a' has no derived arousal level"):
        with_arousal(Dataset.from_dict({"emotion": ["joy"], "corpus": ["a"]}), set())


def test_in_corpus_folds_of_the_emotion_corpora_are_those_of_a_run_without_arousal_corpora():
    from benchmarks.evaluate_across_corpora import speaker_folds

    speakers = np.array(["a/1", "a/2", "baved/1", "b/1", "baved/2", "b/2", "baved/3", "a/3"])
    scored = np.array([not speaker.startswith("baved") for speaker in speakers])
    folds = speaker_folds(speakers, scored, 2)
    for mask, alone in zip(folds, group_folds(speakers[scored], 2)):
        assert np.array_equal(mask[scored], alone)
    assert all(np.logical_or.reduce(folds)) and not (folds[0] & folds[1]).any()
    assert {speaker for mask in folds for speaker in speakers[mask & ~scored]} == {"baved/1", "baved/2", "baved/3"}


@pytest.fixture(scope="module")
def emotion_and_arousal_corpora(tmp_path_factory):
    """Two synthetic emotion corpora and one arousal corpus, whose labels are BAVED's level names."""
    root = tmp_path_factory.mktemp("corpora")
    big = generate_corpus(root / "big", num_speakers=2, num_sentences=2, seed=0)
    small = generate_corpus(root / "small", num_speakers=2, num_sentences=1, seed=1)
    levels = generate_corpus(root / "levels", num_speakers=3, num_sentences=1, seed=2)
    with open(levels / "metadata.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        value = float(row["arousal"])
        row["label"] = "high" if value >= 0.7 else "low" if value <= 0.1 else "neutral"
    with open(levels / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return {
        "big": CorpusSource(str(big), "label", "speaker", "big", "", "English", "test", SYNTHETIC_VOCABULARY),
        "small": CorpusSource(str(small), "label", "speaker", "small", "", "German", "test", SYNTHETIC_VOCABULARY),
        "levels": CorpusSource(
            str(levels), "label", "speaker", "levels", "", "Arabic", "test", BAVED_LEVELS, target="arousal"
        ),
    }


def test_arousal_corpora_join_emotion_corpora_only_as_the_arousal_task(emotion_and_arousal_corpora, monkeypatch):
    corpora = {name: (source,) for name, source in emotion_and_arousal_corpora.items()}
    monkeypatch.setattr(sources, "CORPORA", {**corpora, "levels2": corpora["levels"]})
    with pytest.raises(ValueError, match="'levels' holds arousal levels, not emotions.*--task_columns arousal"):
        sources.resolve_corpora(["big", "levels"])
    with pytest.raises(ValueError, match="None of the corpora .* has emotion labels"):
        sources.resolve_corpora(["levels", "levels2"], arousal=True)
    resolved = sources.resolve_corpora(["big", "levels"], arousal=True)
    dataset = load_corpora(resolved, arousal=True)
    levels = [row for row in dataset.select_columns(["corpus", "emotion", "arousal"]) if row["corpus"] == "levels"]
    assert len(levels) == 15 and all(row["emotion"] is None for row in levels)
    assert {AROUSAL_LEVELS[row["arousal"]] for row in levels} == set(AROUSAL_LEVELS)


def test_the_benchmark_scores_the_emotion_and_arousal_head_on_emotions_like_the_emotion_only_one(
    emotion_and_arousal_corpora, monkeypatch, tmp_path
):
    from benchmarks import evaluate_across_corpora
    from training import training_data

    monkeypatch.setattr(sources, "CORPORA", {name: (source,) for name, source in emotion_and_arousal_corpora.items()})
    monkeypatch.setattr(training_data, "CORPORA", sources.CORPORA)
    encoder = tmp_path / "encoder"
    Wav2Vec2Model(tiny_wav2vec2_config()).save_pretrained(encoder)
    Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(encoder)
    results = evaluate_across_corpora.main(
        [
            "--output_dir", str(tmp_path / "out"), "--dataset_name", "big,small", "--arousal_corpora", "levels",
            "--encoders", str(encoder), "--in_corpus_encoders", str(encoder),
            "--heads", "genser-arousal,genser,genser-prior,genser-detached",
            "--seeds", "0", "--max_steps", "5", "--in_corpus_folds", "2", "--parallel_folds", "1",
            "--single_corpus", "false", "--config_overrides", "encoding_dim=32,head_hidden_size=32",
        ]
    )  # fmt: skip
    (entry,) = results.values()
    assert entry["corpora"] == ["big", "small"]
    for kind in ("genser-arousal", "genser", "genser-prior", "genser-detached"):
        (loco,) = entry["leave_one_corpus_out"][kind]
        assert set(loco) == {"big", "small"}  # the arousal corpus is never held out
        assert set(loco["big"]["core"]) == {  # each adaptation to the held-out corpus, and none
            statistics + correction for statistics in ("none", "corpus", "speaker")
            for correction in ("", " + EM priors", " + balanced")
        }
        (in_corpus,) = entry["in_corpus"][kind]
        assert {"multi-corpus", "multi-corpus, all labels"} <= set(in_corpus["big"])
    (joint,) = entry["in_corpus"]["genser-arousal"]
    assert set(joint["arousal"]) == {"big", "levels", "small"}
    assert all(0 <= ua <= 1 for ua in joint["arousal"].values())


def test_the_pipeline_and_the_annotator_give_emotions_and_arousal_together(tmp_path):
    import torch

    from conftest import genser_classifier, tone
    from modeling_genser import GenSERConfig, GenSERForAudioClassification
    from pipelines.bulk_annotator import AnnotationArguments, annotate
    from training.synthetic_corpus import write_wav

    emotions = ["angry", "happy", "neutral", "sad"]
    torch.manual_seed(0)
    config = GenSERConfig(
        encoder_config=tiny_wav2vec2_config(), label_sets={"label": emotions, "arousal": list(AROUSAL_LEVELS)}
    )
    model_dir = save_genser(tmp_path / "model", model=GenSERForAudioClassification(config))
    folder = tmp_path / "recordings"
    folder.mkdir()
    for index in range(4):
        write_wav(folder / f"clip{index}.wav", tone(150.0 * (1 + index), seconds=0.5 + 0.8 * index, seed=index))

    classifier = genser_classifier(str(model_dir))
    expected = {}
    for path in sorted(folder.glob("*.wav")):
        both = classifier(str(path), top_k=None, return_tasks=True, segment_length_s=1.0)
        assert list(both) == ["label", "arousal"] and [len(both[task]) for task in both] == [4, 3]
        expected[path.name] = both

    output_dir = tmp_path / "labels"
    annotate(AnnotationArguments(model=str(model_dir), output_dir=str(output_dir), folder=str(folder), segment_length_s=1.0))
    # Read from the Parquet files: `load_dataset` caches a local folder by its name, and other tests write "labels".
    files, windows = table(output_dir, "files"), table(output_dir, "windows")
    assert {"label", "score", "scores", "arousal_label", "arousal_score", "arousal_scores"} <= set(files[0])
    assert len(windows) == 1 + 2 + 3 + 3  # windows of 1 s over 0.5, 1.3, 2.1 and 2.9 s
    for row in files:
        both = expected[row["source"]]
        assert row["label"] == both["label"][0]["label"] and row["arousal_label"] == both["arousal"][0]["label"]
        for task, prefix in (("label", ""), ("arousal", "arousal_")):
            scores = {entry["label"]: entry["score"] for entry in both[task]}
            assert row[f"{prefix}scores"] == pytest.approx(scores, abs=1e-5)
            assert row[f"{prefix}score"] == pytest.approx(max(scores.values()), abs=1e-5)
    assert all(set(row["arousal_scores"]) == set(AROUSAL_LEVELS) for row in windows)


def test_run_genser_trains_one_model_of_emotions_and_arousal_from_emotion_and_arousal_corpora(
    emotion_and_arousal_corpora, monkeypatch, tmp_path
):
    from huggingface_hub import ModelCard

    from conftest import genser_classifier, tone
    from training import run_genser

    monkeypatch.setattr(sources, "CORPORA", {name: (source,) for name, source in emotion_and_arousal_corpora.items()})
    arguments = [
        "--dataset_name", "big,small,levels", "--task_columns", "arousal",
        "--evaluation_protocol", "leave_one_speaker_out", "--num_folds", "2", "--domain_normalization", "true",
        "--feature_cache_dir", str(tmp_path / "cache"), "--num_example_predictions", "2",
        "--output_dir", str(tmp_path / "model"), "--max_steps", "5", "--per_device_train_batch_size", "8",
        "--eval_strategy", "no", "--save_strategy", "no", "--report_to", "none",
        "--config_overrides", "encoding_dim=32,head_hidden_size=32",
    ]  # fmt: skip
    metrics = run_genser.main([*arguments, "--leave_one_corpus_out", "true"])
    assert 0 <= metrics["loso_unweighted_accuracy"] <= 1 and 0 <= metrics["loso_arousal_unweighted_accuracy"] <= 1

    card = ModelCard.load(tmp_path / "model" / "README.md")
    splits = {result.dataset_name: set() for result in card.data.eval_results}
    for result in card.data.eval_results:
        splits[result.dataset_name].add(result.dataset_split.split(", ")[-1])
    assert splits["levels"] == {"arousal (rated)"}  # no emotion figures: it has no emotion labels, nor is it held out
    assert {"its labels", "all labels", "arousal (derived)", "own statistics"} <= splits["big"]
    assert "arousal levels (rated): low, medium, high" in card.text and "derived from their emotions" in card.text
    assert 'every task (emotion, arousal): `classifier("speech.wav", return_tasks=True)`' in card.text
    assert "Labels: emotion: angry, fearful, happy, neutral, sad; arousal: low, medium, high." in card.text
    for result in card.data.eval_results:  # read back from model-index: each entry names its own task
        arousal = result.dataset_split.split(", ")[-1].startswith("arousal")
        assert result.task_name == ("arousal classification" if arousal else "Speech emotion recognition"), result

    classifier = genser_classifier(str(tmp_path / "model"))
    assert classifier.model.config.label_sets == {
        "emotion": ["angry", "fearful", "happy", "neutral", "sad"], "arousal": list(AROUSAL_LEVELS)
    }
    both = classifier(tone(200.0), top_k=None, return_tasks=True)
    assert sorted(entry["label"] for entry in both["arousal"]) == sorted(AROUSAL_LEVELS)

    with pytest.raises(ValueError, match="'levels' holds arousal levels, not emotions"):
        run_genser.main([*arguments[:2], *arguments[4:]])


def test_cross_validate_scores_each_task_on_the_clips_that_have_its_label(emotion_and_arousal_corpora, monkeypatch, tmp_path):
    from training.cross_validate import main as cross_validate

    monkeypatch.setattr(sources, "CORPORA", {name: (source,) for name, source in emotion_and_arousal_corpora.items()})
    arguments = [
        "--dataset_name", "big,small,levels", "--task_columns", "arousal", "--num_folds", "2",
        "--output_dir", str(tmp_path / "cv"), "--feature_cache_dir", str(tmp_path / "cache"), "--max_steps", "3",
        "--per_device_train_batch_size", "8", "--report_to", "none", "--config_overrides", "encoding_dim=32,head_hidden_size=32",
    ]  # fmt: skip
    results = cross_validate([*arguments, "--inference_steps", "1"])
    assert np.sum(results["tasks"]["emotion"]["pooled"]["steps_1"]["confusion_matrix"]) == 30  # the emotion corpora's clips
    assert np.sum(results["tasks"]["arousal"]["pooled"]["steps_1"]["confusion_matrix"]) == 45  # every clip
    with pytest.raises(ValueError, match="Folds of whole corpora score a single-task head"):
        cross_validate([*arguments, "--group_column_name", "corpus"])


def test_the_shrinkage_benchmark_measures_each_prior_weight_on_held_out_corpora(
    emotion_and_arousal_corpora, monkeypatch, tmp_path
):
    import json

    from benchmarks import evaluate_statistics_shrinkage

    monkeypatch.setattr(sources, "CORPORA", {name: (source,) for name, source in emotion_and_arousal_corpora.items()})
    encoder = tmp_path / "encoder"
    Wav2Vec2Model(tiny_wav2vec2_config()).save_pretrained(encoder)
    Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(encoder)
    job = {
        "dataset_name": "big,small,levels", "task_columns": "arousal", "encoder_name_or_path": str(encoder),
        "domain_normalization": True, "domain_residuals": True, "config_overrides": "encoding_dim=32,head_hidden_size=32",
        "feature_cache_dir": str(tmp_path / "cache"), "max_steps": 3, "per_device_train_batch_size": 8,
        "learning_rate": 1e-3, "weight_decay": 0.0, "seed": 0, "output_dir": str(tmp_path / "unused"),
    }  # fmt: skip
    (tmp_path / "job.json").write_text(json.dumps(job))
    results = evaluate_statistics_shrinkage.main(
        ["--output_dir", str(tmp_path / "out"), "--job_config", str(tmp_path / "job.json"), "--seeds", "0",
         "--prior_windows", "0,4,inf", "--collection_sizes", "1,4", "--speaker_sizes", "1,2", "--clips_per_size", "4"]
    )  # fmt: skip
    assert set(results) == {"big", "small"}  # the arousal corpus is never held out
    for corpus in results.values():
        assert set(corpus["collection"]) == {1, 4} and set(corpus["speaker"]) == {1, 2}
        assert all(set(by_k) == {0.0, 4.0, float("inf")} for by_n in corpus.values() for by_k in by_n.values())
        assert all(0 <= ua <= 1 for by_n in corpus.values() for by_k in by_n.values() for ua in by_k.values())
