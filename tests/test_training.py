import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import transformers.trainer
from datasets import Audio, Dataset
from huggingface_hub import ModelCard

from training.data import encode_labels, group_train_test_split, label_names
from training.evaluate_genser import main as evaluate_main
from training.model_construction import format_config_overrides, parse_config_overrides
from training.run_genser import main
from training.synthetic_corpus import EMOTIONS, generate_corpus


def test_synthetic_corpus_is_deterministic_and_labelled(tmp_path):
    first = generate_corpus(tmp_path / "a", num_speakers=2, num_sentences=2, seed=3)
    second = generate_corpus(tmp_path / "b", num_speakers=2, num_sentences=2, seed=3)
    wavs = sorted(p.name for p in first.glob("*.wav"))
    assert len(wavs) == 2 * 2 * len(EMOTIONS)
    assert all((first / name).read_bytes() == (second / name).read_bytes() for name in wavs)
    assert (first / "metadata.csv").read_text() == (second / "metadata.csv").read_text()


def test_group_split_keeps_every_speaker_on_one_side():
    dataset = Dataset.from_dict({"speaker": [f"s{i % 5}" for i in range(50)], "label": ["a", "b"] * 25})
    train, test = group_train_test_split(dataset, "speaker", 0.4, seed=0)
    assert len(train) + len(test) == 50
    assert not set(train["speaker"]) & set(test["speaker"])
    assert len(set(test["speaker"])) == 2
    with pytest.raises(ValueError, match="Column 'nope' not found"):
        group_train_test_split(dataset, "nope", 0.4, seed=0)


def test_labels_outside_the_model_label_set_are_refused():
    dataset = Dataset.from_dict({"label": ["anger", "joy"]})
    assert label_names(dataset, "label") == ["anger", "joy"]
    with pytest.raises(ValueError, match=r"\['joy'\] are not in the model's label set"):
        encode_labels(dataset, "label", {"anger": 0})
    with pytest.raises(ValueError, match="Column 'emotion' not found"):
        label_names(dataset, "emotion")


def test_config_overrides_are_parsed_and_checked():
    assert parse_config_overrides("encoding_dim=64,pooling=mean_std") == {"encoding_dim": 64, "pooling": "mean_std"}
    assert parse_config_overrides('scheduler_config={"bridge_sigma":0.5,"mean_schedule_steepness":0},encoding_dim=8') == {
        "scheduler_config": {"bridge_sigma": 0.5, "mean_schedule_steepness": 0},
        "encoding_dim": 8,
    }
    with pytest.raises(ValueError, match="Unknown GenSERConfig fields"):
        parse_config_overrides("encoding_size=64")


def test_config_overrides_declared_as_a_dict_read_back_as_the_same_dict():
    declared = {"pooling": "mean_std", "head_dropout": 0.3, "scheduler_config": {"sampling_noise_scale": 0.0, "b": [1, 2]}}
    assert parse_config_overrides(format_config_overrides(declared)) == declared


def test_main_job_trains_evaluates_and_saves_a_pipeline_ready_model(tmp_path):
    corpus = generate_corpus(tmp_path / "corpus", num_speakers=3, num_sentences=2, seed=0)
    output = tmp_path / "model"
    metrics = main(
        [
            "--dataset_name", str(corpus),
            "--output_dir", str(output),
            "--num_train_epochs", "2",
            "--learning_rate", "1e-3",
            "--per_device_train_batch_size", "8",
            "--eval_fraction", "0.34",
            "--report_to", "none",
            "--config_overrides", "encoding_dim=64,num_inference_steps=2",
        ]
    )
    for key in ("eval_accuracy", "eval_unweighted_accuracy", "eval_macro_f1", "eval_weighted_f1"):
        assert 0.0 <= metrics[key] <= 1.0
    for name in ("config.json", "model.safetensors", "preprocessor_config.json", "modeling_genser.py"):
        assert (output / name).exists(), name
    preprocessor = json.loads((output / "preprocessor_config.json").read_text())
    assert preprocessor["feature_extractor_type"] == "Wav2Vec2FeatureExtractor"
    assert preprocessor["return_attention_mask"] is True
    config = json.loads((output / "config.json").read_text())
    assert config["encoding_dim"] == 64 and sorted(config["label2id"]) == sorted(EMOTIONS)
    assert (output / "confusion_eval.png").exists()
    confusion = json.loads((output / "confusion_eval.json").read_text())
    assert sum(map(sum, confusion["matrix"])) == 10  # the held-out speaker's clips

    card = ModelCard.load(output / "README.md")
    assert card.data.pipeline_tag == "audio-classification" and card.data.library_name == "transformers"
    measured = {result.metric_type: result.metric_value for result in card.data.eval_results}
    assert measured["unweighted_accuracy"] == pytest.approx(metrics["eval_unweighted_accuracy"], abs=1e-4)
    assert measured["accuracy"] == pytest.approx(metrics["eval_accuracy"], abs=1e-4)
    assert "{{" not in card.text and "anger" in card.text
    assert card.data.datasets == ["corpus"]  # a local folder by its name


def test_the_main_job_checks_each_clip_in_the_encoding_that_decodes_it_once(tmp_path, monkeypatch):
    corpus = generate_corpus(tmp_path / "corpus", num_speakers=3, num_sentences=2, seed=0)
    clips = sorted(corpus.glob("**/*.wav"))
    broken = [next(clip for clip in clips if clip.name.startswith(speaker)) for speaker in ("spk00", "spk01", "spk02")]
    for clip in broken:
        clip.write_bytes(b"this is not audio")
    decodes = []
    decode_example = Audio.decode_example
    monkeypatch.setattr(Audio, "decode_example", lambda self, *a, **k: decodes.append(1) or decode_example(self, *a, **k))
    args = [
        "--dataset_name", str(corpus), "--output_dir", str(tmp_path / "model"), "--num_train_epochs", "1",
        "--eval_fraction", "0.34", "--report_to", "none", "--num_example_predictions", "0",
        "--config_overrides", "encoding_dim=64",
    ]
    with pytest.raises(ValueError, match=r"unreadable audio file\(s\):\n  \S+_sent00_anger\.wav: "):
        main(args)  # stops at the training split's broken clips
    main(args + ["--unreadable_audio", "skip"])  # the training split's errors are read from its cache
    assert len(decodes) == len(clips)  # each clip decoded once, its check included
    confusion = json.loads((tmp_path / "model" / "confusion_eval.json").read_text())
    assert sum(map(sum, confusion["matrix"])) == 9  # the held-out speaker's clips but its broken one


def test_model_card_of_the_main_job_is_hub_ready(tmp_path):
    """The README's main job (synthetic corpus, embedded encoder; one epoch here) writes a Hub-ready card."""
    output = tmp_path / "genser-synthetic"
    metrics = main(
        ["--output_dir", str(output), "--num_train_epochs", "1", "--report_to", "none", "--seed", "0",
         "--hub_model_id", "acme/genser-synthetic"]
    )  # fmt: skip
    card = ModelCard.load(output / "README.md")
    # The usage names the model's own Hub id and what its remote code needs.
    assert 'model="acme/genser-synthetic", trust_remote_code=True' in card.text and "`diffusers`" in card.text
    data = card.data
    assert (data.library_name, data.pipeline_tag, data.license) == ("transformers", "audio-classification", "apache-2.0")
    assert {"audio-classification", "speech-emotion-recognition", "custom_code"} <= set(data.tags)
    assert data.datasets == ["gen-ser-synthetic"] and data.metrics == ["accuracy", "f1"]
    assert data.model_name == "genser-synthetic"
    # model-index, as the Hub parses it: one result per measured metric, on the card's dataset.
    measured = {result.metric_type: result for result in data.eval_results}
    assert sorted(measured) == ["accuracy", "macro_f1", "unweighted_accuracy"]
    for key, result in measured.items():
        assert result.task_type == "audio-classification" and result.dataset_name == "gen-ser-synthetic"
        assert result.metric_value == pytest.approx(metrics[f"eval_{key}"], abs=1e-4)
    # The body renders the same figures, and says what a reader needs before using the model.
    ua = metrics["eval_unweighted_accuracy"]
    assert f"| Unweighted accuracy (UA) | {ua:.4f} |" in card.text
    for section in ("## How to use", "## Intended use", "## Training data", "## Evaluation", "## Limitations"):
        assert section in card.text, section
    for fact in ("trust_remote_code=True", 'pipeline("audio-classification"', "not speech", "Acted speech", "Languages"):
        assert fact in card.text, fact
    assert "{{" not in card.text and "{#" not in card.text


def test_push_to_hub_uploads_the_gen_ser_card_with_the_model(tmp_path, monkeypatch):
    """With --push_to_hub the final upload carries the metrics and the Gen-SER card (Trainer's own card is not used).
    The Hub is replaced by a recorder of what would be uploaded."""
    uploads = []

    class FakeHub:
        def create_repo(self, repo_id, **kwargs):
            return SimpleNamespace(repo_id=f"org/{repo_id}")

        def upload_folder(self, repo_id, folder_path, **kwargs):
            files = sorted(path.name for path in Path(folder_path).iterdir())
            uploads.append((repo_id, files, (Path(folder_path) / "README.md").read_text()))

    monkeypatch.setattr(transformers.trainer, "hf_api", FakeHub)
    corpus = generate_corpus(tmp_path / "corpus", num_speakers=2, num_sentences=1, seed=1)
    output = tmp_path / "pushed"
    main(["--dataset_name", str(corpus), "--output_dir", str(output), "--num_train_epochs", "1", "--eval_fraction", "0.5",
          "--report_to", "none", "--save_strategy", "no", "--push_to_hub", "--config_overrides", "encoding_dim=32"])
    repo_id, files, card = uploads[-1]
    assert repo_id == "org/pushed"
    assert {"model.safetensors", "config.json", "eval_results.json", "README.md", "audio_classification_genser.py"} <= set(files)
    assert "## Limitations" in card and "model-index" in card


def test_evaluate_a_saved_model(tmp_path):
    corpus = generate_corpus(tmp_path / "corpus", num_speakers=2, num_sentences=1, seed=1)
    model_dir = tmp_path / "model"
    main(["--dataset_name", str(corpus), "--output_dir", str(model_dir), "--num_train_epochs", "1",
          "--eval_fraction", "0.5", "--report_to", "none", "--config_overrides", "encoding_dim=32"])
    scores = evaluate_main(["--model_name_or_path", str(model_dir), "--dataset_name", str(corpus),
                            "--output_dir", str(tmp_path / "evaluation"), "--num_inference_steps", "2"])
    assert sum(map(sum, scores["confusion_matrix"])) == 10
    assert json.loads((tmp_path / "evaluation" / "metrics.json").read_text())["accuracy"] == scores["accuracy"]
    assert (tmp_path / "evaluation" / "confusion.png").exists()
