"""The main job: named sources with fallbacks, leave-one-speaker-out evaluation, the release model, the feature cache."""

import dataclasses
import json
import logging

import huggingface_hub.constants
import numpy as np
import pytest
from datasets import Audio, ClassLabel, Dataset, Features, Value
from huggingface_hub import ModelCard
from transformers import WhisperFeatureExtractor, WhisperModel

import training.arguments as arguments
import training.run_genser as run_genser
from conftest import classify_from_offline_hub_cache, genser_classifier, tiny_whisper_config, tone
from modeling_genser import GenSERForAudioClassification
from training.data import speaker_groups
from training.sources import CORPORA, ENCODERS, is_available
from training.synthetic_corpus import generate_corpus, write_wav

EMOTIONS = ["anger", "boredom", "disgust", "fear", "happiness", "neutral", "sadness"]
# renumics/emodb has no speaker column; (gender, age) tells its speakers apart. Here: three speakers, two of
# them of one gender and two of one age, so neither column alone would do.
SPEAKERS = [("female", 25), ("male", 25), ("female", 31)]


@pytest.fixture
def offline_hub(monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.fixture(scope="module")
def hub_schema_corpus(tmp_path_factory):
    """A dataset repository with renumics/emodb's schema (Parquet under data/): audio, emotion (ClassLabel), gender,
    age, and no speaker column."""
    root = tmp_path_factory.mktemp("renumics_emodb")
    rows = {"audio": [], "emotion": [], "gender": [], "age": []}
    for s, (gender, age) in enumerate(SPEAKERS):
        for e in range(len(EMOTIONS)):
            path = root / "wav" / f"{s}_{e}.wav"
            path.parent.mkdir(exist_ok=True)
            write_wav(path, tone(150.0 * (e + 1) + 7 * s, seconds=0.6, seed=s))
            rows["audio"].append(str(path))
            rows["emotion"].append(e)
            rows["gender"].append(gender)
            rows["age"].append(age)
    features = Features(
        {"audio": Audio(), "emotion": ClassLabel(names=EMOTIONS), "gender": Value("string"), "age": Value("int32")}
    )
    (root / "data").mkdir()
    Dataset.from_dict(rows, features=features).to_parquet(str(root / "data" / "train-00000-of-00001.parquet"))
    return root


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory):
    """A randomly initialised tiny Whisper saved like a Hub checkpoint, standing in for whisper-tiny.en."""
    directory = tmp_path_factory.mktemp("tiny_whisper")
    WhisperModel(tiny_whisper_config()).save_pretrained(directory)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(directory)
    return directory


def named_sources(monkeypatch, corpus_sources, encoder_locations):
    monkeypatch.setitem(CORPORA, "emodb", tuple(corpus_sources))
    monkeypatch.setitem(ENCODERS, "whisper-tiny.en", tuple(encoder_locations))


def test_speaker_ids_from_several_columns(hub_schema_corpus):
    dataset = Dataset.from_dict({"gender": ["f", "m", "f", "f"], "age": [25, 25, 31, 25]})
    assert list(speaker_groups(dataset, "gender+age")) == ["f+25", "m+25", "f+31", "f+25"]
    with pytest.raises(ValueError, match="Column 'speaker' not found"):
        speaker_groups(dataset, "gender+speaker")


def test_unavailable_sources_are_skipped_and_the_job_falls_back_to_the_synthetic_corpus(
    offline_hub, monkeypatch, tmp_path, caplog
):
    assert not is_available(str(tmp_path / "missing"), "dataset")
    assert not is_available("renumics/emodb", "dataset")  # offline and not in the local Hub cache
    assert is_available(str(tmp_path), "dataset")
    missing_local = dataclasses.replace(CORPORA["emodb"][0], dataset_name=str(tmp_path / "missing"))
    named_sources(monkeypatch, [missing_local, CORPORA["emodb"][1]], [str(tmp_path / "missing"), "openai/whisper-tiny.en"])
    model_args = arguments.ModelArguments(encoder_name_or_path="whisper-tiny.en")
    data_args = arguments.DataTrainingArguments(dataset_name="emodb", label_column_name="x", group_column_name="y")
    with pytest.raises(OSError, match="Corpus 'emodb' is not available here.*--offline_fallback"):
        arguments.resolve_sources(model_args, data_args)  # no silent fallback outside the main job's offline mode
    data_args.dataset_name = None
    with pytest.raises(OSError, match="Encoder 'whisper-tiny.en' is not available here"):
        arguments.resolve_sources(model_args, data_args)
    data_args.dataset_name, data_args.offline_fallback = "emodb", True
    given = dataclasses.replace(data_args)
    with caplog.at_level(logging.WARNING):
        model_args, data_args, corpus, encoder_hub_id = arguments.resolve_sources(model_args, data_args)
    assert given.dataset_name == "emodb"  # the parsed arguments are left as given
    assert corpus is None and encoder_hub_id is None
    assert (data_args.dataset_name, data_args.label_column_name, data_args.group_column_name) == (None, "label", "speaker")
    assert model_args.encoder_name_or_path is None  # the embedded encoder
    assert "renumics/emodb" in caplog.text and "synthetic corpus" in caplog.text and "openai/whisper-tiny.en" in caplog.text


def test_the_first_available_source_is_used_with_its_own_columns(
    offline_hub, monkeypatch, hub_schema_corpus, tiny_whisper, tmp_path
):
    hub_copy = dataclasses.replace(CORPORA["emodb"][1], dataset_name=str(hub_schema_corpus))
    missing_local = dataclasses.replace(CORPORA["emodb"][0], dataset_name=str(tmp_path / "no_shared"))
    named_sources(monkeypatch, [missing_local, hub_copy], [str(tiny_whisper), "openai/whisper-tiny.en"])
    data_args = arguments.DataTrainingArguments(dataset_name="emodb")
    model_args = arguments.ModelArguments(encoder_name_or_path="whisper-tiny.en")
    model_args, data_args, corpus, encoder_hub_id = arguments.resolve_sources(model_args, data_args)
    assert corpus == hub_copy and encoder_hub_id == "openai/whisper-tiny.en"
    assert (data_args.label_column_name, data_args.group_column_name) == ("emotion", "gender+age")
    assert model_args.encoder_name_or_path == str(tiny_whisper)


def main_job_arguments(output_dir, cache_dir, epochs=2, examples=3):
    return [
        "--dataset_name", "emodb",
        "--encoder_name_or_path", "whisper-tiny.en",
        "--evaluation_protocol", "leave_one_speaker_out",
        "--parallel_folds", "2",
        "--feature_cache_dir", str(cache_dir),
        "--num_example_predictions", str(examples),
        "--output_dir", str(output_dir),
        "--num_train_epochs", str(epochs),
        "--per_device_train_batch_size", "8",
        "--learning_rate", "1e-3",
        "--eval_strategy", "no",
        "--save_strategy", "no",
        "--report_to", "none",
        "--config_overrides", "layer_aggregation=concat,encoding_dim=32,head_hidden_size=32,num_inference_steps=2",
    ]


def test_main_job_cross_validates_by_speaker_then_ships_a_release_model_from_the_cache(
    offline_hub, monkeypatch, hub_schema_corpus, tiny_whisper, tmp_path, capsys
):
    """The main job on the Hub copy's schema: leave-one-speaker-out over the (gender, age) speakers, a release model
    on every clip that loads with pipeline(...) and with trust_remote_code from a Hub cache, a model card holding
    the cross-validated figures; a second run reads the feature cache instead of encoding."""
    hub_copy = dataclasses.replace(CORPORA["emodb"][1], dataset_name=str(hub_schema_corpus))
    missing_local = dataclasses.replace(CORPORA["emodb"][0], dataset_name=str(tmp_path / "no_shared"))
    named_sources(monkeypatch, [missing_local, hub_copy], [str(tiny_whisper), "openai/whisper-tiny.en"])
    encoded = []
    encode_and_pool = GenSERForAudioClassification._encode_and_pool

    def counting_encode_and_pool(self, inputs, attention_mask):
        encoded.append(inputs.shape[0])
        return encode_and_pool(self, inputs, attention_mask)

    monkeypatch.setattr(GenSERForAudioClassification, "_encode_and_pool", counting_encode_and_pool)
    release = tmp_path / "release"
    metrics = run_genser.main(main_job_arguments(release, tmp_path / "cache"))
    num_clips = len(SPEAKERS) * len(EMOTIONS)
    assert sum(encoded) == num_clips + 3  # every clip once into the cache, then 3 example clips through the pipeline

    printed = capsys.readouterr().out
    assert "leave-one-speaker-out cross-validation, 3 folds: UA" in printed and "wall time" in printed
    assert printed.count("held-out fold predicted") == 3
    results = json.loads((release / "loso_results.json").read_text())
    assert results == pytest.approx(metrics)
    assert sum(map(sum, json.loads((release / "confusion_eval.json").read_text())["matrix"])) == num_clips

    card = ModelCard.load(release / "README.md")
    measured = {result.metric_type: result for result in card.data.eval_results}
    assert measured["unweighted_accuracy"].metric_value == pytest.approx(metrics["loso_unweighted_accuracy"], abs=1e-4)
    for result in measured.values():
        assert result.dataset_split == "leave-one-speaker-out cross-validation, 3 folds"
        assert "leave-one-speaker-out" in result.metric_name
    assert card.data.base_model == "openai/whisper-tiny.en"
    for fact in ("21 clips from 3 speakers", "acted German speech", "not made for natural conversation", "3 folds"):
        assert fact in card.text, fact

    assert str(tmp_path) not in (release / "config.json").read_text()  # no path of this machine in the saved config
    classifier = genser_classifier(str(release))
    scores = classifier({"array": tone(300.0), "sampling_rate": 16000}, top_k=None)
    assert sorted(item["label"] for item in scores) == EMOTIONS
    remote = classify_from_offline_hub_cache(release, tmp_path)
    assert remote["pipeline_class"] == "GenSERAudioClassificationPipeline" and len(remote["scores"]) == len(EMOTIONS)
    assert remote["model_module"].startswith("transformers_modules.")

    encoded.clear()
    run_genser.main(main_job_arguments(tmp_path / "again", tmp_path / "cache", epochs=1))
    assert sum(encoded) == 3  # the cache was read: only the 3 example clips went through the encoder


def test_leave_one_speaker_out_refuses_what_it_cannot_do(tmp_path):
    base = ["--output_dir", str(tmp_path), "--evaluation_protocol", "leave_one_speaker_out"]
    with pytest.raises(ValueError, match="--eval_strategy no"):
        run_genser.main(base + ["--eval_strategy", "epoch"])
    with pytest.raises(ValueError, match="needs --freeze_encoder true"):
        run_genser.main(base + ["--eval_strategy", "no", "--freeze_encoder", "false"])
    with pytest.raises(ValueError, match="no --eval_split_name"):
        run_genser.main(base + ["--eval_strategy", "no", "--eval_split_name", "test"])
    with pytest.raises(ValueError, match="evaluation_protocol must be one of"):
        run_genser.main(["--output_dir", str(tmp_path), "--evaluation_protocol", "kfold"])
    one_speaker = generate_corpus(tmp_path / "one-speaker", num_speakers=1, num_sentences=1, seed=0)
    with pytest.raises(ValueError, match="at least 2 speakers"):
        run_genser.main(base + ["--eval_strategy", "no", "--dataset_name", str(one_speaker), "--report_to", "none"])


def test_the_real_main_job_on_real_corpora_and_a_real_encoder(requires_shared, tmp_path, capsys):
    """`training/configs/main_job.json` as `make main` runs it, on two of its corpora (EmoDB and CASIA, to keep the
    encoding short) and a few optimiser steps per head: real speech, the real encoder, every stage of the job."""
    config = json.loads(arguments.MAIN_JOB_CONFIG.read_text())
    assert config["dataset_name"] == "emodb,cremad,ravdess,casia,nemo,ased,baved" and config["domain_normalization"]
    assert config["task_columns"] == "arousal"  # emotions and arousal in one model: derived here, without BAVED
    config.update(output_dir=str(tmp_path / "gen-ser"), dataset_name="emodb,casia", max_steps=10)
    argv = [item for key, value in config.items() for item in (f"--{key}", str(value))]
    metrics = run_genser.main(argv)
    assert 0 <= metrics["loso_unweighted_accuracy"] <= 1
    printed = capsys.readouterr().out
    assert "speaker-independent cross-validation, 10 folds (emotion): UA" in printed
    assert "speaker-independent cross-validation, 10 folds (arousal): UA" in printed
    assert "| emodb | core: angry, happy, neutral, sad |" in printed  # EmoDB scored zero-shot, trained on CASIA
    card = ModelCard.load(tmp_path / "gen-ser" / "README.md")
    assert card.data.base_model == ENCODERS[config["encoder_name_or_path"]][-1]
    assert card.data.datasets == ["emodb", "casia"]
    assert "| emodb | German | 535 | 10 |" in card.text and "| casia | Mandarin | 1200 | 4 |" in card.text
    assert "collection_statistics" in card.text  # the card says how to adapt to a collection
    assert 'domain="casia"' in card.text and "(casia, emodb)" in card.text  # and how to read a training corpus's clips
    classifier = genser_classifier(str(tmp_path / "gen-ser"))
    clips = sorted((requires_shared / "data" / "casia").rglob("*.opus"))[:4]
    assert len(clips) == 4, "CASIA's clips are Opus files in ../shared/data/casia"
    statistics = classifier.collection_statistics([str(clip) for clip in clips])
    vocabulary = {"angry", "boredom", "disgust", "fearful", "happy", "neutral", "sad", "surprised"}
    for options in ({}, {"domain_statistics": statistics}, {"domain_statistics": statistics, "domain": "casia"}):
        scores = classifier(str(clips[0]), top_k=None, **options)
        assert {item["label"] for item in scores} == vocabulary
        assert np.isclose(sum(item["score"] for item in scores), 1.0, atol=1e-5)
        both = classifier(str(clips[0]), top_k=None, return_tasks=True, **options)
        assert both["emotion"] == scores
        assert {item["label"] for item in both["arousal"]} == {"low", "medium", "high"}
