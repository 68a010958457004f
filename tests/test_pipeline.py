import json

import numpy as np
import pytest
import torch
from datasets import Audio, Dataset
from transformers import (
    AudioClassificationPipeline,
    AutoConfig,
    AutoFeatureExtractor,
    AutoModelForAudioClassification,
    Wav2Vec2Config,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2ForSequenceClassification,
    pipeline,
)
from transformers.dynamic_module_utils import get_class_from_dynamic_module

from conftest import (
    LABELS,
    WHISPER_TINY_EN,
    assert_valid_scores,
    classify_from_offline_hub_cache,
    genser_classifier,
    save_genser,
    tiny_wav2vec2_config,
    tone,
)
from modeling_genser import GenSERConfig, GenSERForAudioClassification
from pipelines import GenSERAudioClassificationPipeline
from training.synthetic_corpus import write_wav

def test_auto_classes_resolve_a_saved_model(model_dir):
    assert isinstance(AutoConfig.from_pretrained(model_dir), GenSERConfig)
    assert isinstance(AutoModelForAudioClassification.from_pretrained(model_dir), GenSERForAudioClassification)
    assert isinstance(AutoFeatureExtractor.from_pretrained(model_dir), Wav2Vec2FeatureExtractor)
    config = json.loads((model_dir / "config.json").read_text())
    assert config["auto_map"]["AutoModelForAudioClassification"] == "modeling_genser.GenSERForAudioClassification"


def test_scores_are_sorted_and_sum_to_one_over_all_labels(classifier):
    assert isinstance(classifier, GenSERAudioClassificationPipeline)
    result = classifier(tone(300.0), top_k=None)
    assert_valid_scores(result, len(LABELS))
    assert sum(item["score"] for item in result) == pytest.approx(1.0, abs=1e-5)
    assert_valid_scores(classifier(tone(300.0), top_k=2), 2)
    assert result[:2] == classifier(tone(300.0), top_k=2)


def test_accepts_paths_arrays_at_any_rate_and_datasets_audio(classifier, tmp_path):
    audio = tone(440.0, seconds=1.2)
    path = tmp_path / "clip.wav"
    write_wav(path, audio)
    from_array = classifier(audio, top_k=None)
    from_path = classifier(str(path), top_k=None)
    assert [r["label"] for r in from_path] == [r["label"] for r in from_array]
    assert [r["score"] for r in from_path] == pytest.approx([r["score"] for r in from_array], abs=1e-3)

    at_8k = audio[::2].copy()
    assert_valid_scores(classifier({"raw": at_8k, "sampling_rate": 8000}, top_k=None), len(LABELS))
    assert_valid_scores(classifier({"array": at_8k, "sampling_rate": 8000}, top_k=3), 3)

    dataset = Dataset.from_dict({"audio": [str(path)]}).cast_column("audio", Audio(sampling_rate=16000))
    from_dataset = classifier(dataset[0]["audio"], top_k=None)
    assert [r["score"] for r in from_dataset] == pytest.approx([r["score"] for r in from_array], abs=1e-3)


def test_sampling_controls(classifier):
    audio = tone(300.0)
    default = classifier(audio, top_k=None)
    assert classifier(audio, top_k=None) == default  # reproducible without a seed
    assert classifier(audio, top_k=None, seed=7) == classifier(audio, top_k=None, seed=7)
    assert classifier(audio, top_k=None, seed=7) != default
    assert_valid_scores(classifier(audio, top_k=None, num_inference_steps=4), len(LABELS))
    assert classifier(audio, top_k=None, seed=np.int64(7)) == classifier(audio, top_k=None, seed=7)


@pytest.mark.parametrize(
    "option, message",
    [
        ({"num_inference_steps": 0}, "num_inference_steps must be a positive integer"),  # not the model's default
        ({"num_inference_steps": 2.5}, "num_inference_steps must be a positive integer"),
        ({"seed": 3.0}, "seed must be a non-negative integer"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"num_samples": 0}, "num_samples must be a positive integer"),
        ({"top_k": -1}, "top_k must be a positive integer"),
        ({"segment_length_s": 1e-5}, "segment_length_s must be a number of seconds >= 0.1"),
        ({"segment_hop_s": 0.0}, "segment_hop_s must be a number of seconds >= 0.1"),
    ],
)
def test_bad_options_are_clear_errors(classifier, option, message):
    with pytest.raises(ValueError, match=message):
        classifier(tone(300.0), **option)


def test_sampling_controls_are_refused_for_other_models():
    config = Wav2Vec2Config(**tiny_wav2vec2_config().to_diff_dict(), id2label=LABELS, label2id={v: k for k, v in LABELS.items()})
    model = Wav2Vec2ForSequenceClassification(config)
    other = genser_classifier(model, feature_extractor=Wav2Vec2FeatureExtractor())
    assert_valid_scores(other(tone(300.0), top_k=1), 1)
    with pytest.raises(ValueError, match="only apply to Gen-SER"):
        other(tone(300.0), seed=1)


def test_trust_remote_code_from_an_offline_hub_cache_gives_the_genser_pipeline(model_dir, classifier, tmp_path):
    """`pipeline(..., model="org/gen-ser", trust_remote_code=True)` with HF_HUB_OFFLINE=1 and the package not
    importable: the pipeline shipped with the model, its windows, int scaling and sampling options."""
    remote = classify_from_offline_hub_cache(model_dir, tmp_path)
    assert remote["model_module"].startswith("transformers_modules."), remote["model_module"]
    assert remote["pipeline_module"].startswith("transformers_modules."), remote["pipeline_module"]
    assert remote["pipeline_class"] == "GenSERAudioClassificationPipeline"
    assert remote["windows"] == [[0.0, 30.0], [30.0, 40.0]]  # 40 s in windows, nothing dropped past 30 s
    clip = np.sin(np.arange(16000) / 5).astype("float32")
    local = classifier(clip, top_k=None)
    for ours, theirs in ((remote["scores"], local), (remote["int16_scores"], local)):  # int16 scaled like float
        assert [item["label"] for item in ours] == [item["label"] for item in theirs]
        assert [item["score"] for item in ours] == pytest.approx([item["score"] for item in theirs], abs=1e-4)


def test_a_model_loaded_and_saved_again_ships_the_pipeline_its_config_names(model_dir, classifier, tmp_path, caplog):
    """As a user re-saves the release: loaded with trust_remote_code where this package cannot be imported (its remote
    code class), or with this package's class, then `save_pretrained`; each copy carries the pipeline's files."""
    import os
    import shutil
    import subprocess
    import sys

    remote_copy = tmp_path / "remote-copy"
    script = (
        "import sys\n"
        "sys.modules.update(modeling_genser=None, pipelines=None, training=None)\n"
        "from transformers import AutoModelForAudioClassification, AutoFeatureExtractor\n"
        f"model = AutoModelForAudioClassification.from_pretrained({str(model_dir)!r}, trust_remote_code=True)\n"
        "assert type(model).__module__.startswith('transformers_modules.'), type(model).__module__\n"
        f"model.save_pretrained({str(remote_copy)!r})\n"
        f"AutoFeatureExtractor.from_pretrained({str(model_dir)!r}).save_pretrained({str(remote_copy)!r})\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"))
    completed = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr[-3000:]
    local_copy = tmp_path / "local-copy"
    GenSERForAudioClassification.from_pretrained(model_dir).save_pretrained(local_copy)
    for copy in (remote_copy, local_copy):
        assert {"audio_classification_genser.py", "audio_input.py"} <= {file.name for file in copy.iterdir()}
    remote = classify_from_offline_hub_cache(remote_copy, tmp_path / "hub-check")
    assert remote["pipeline_class"] == "GenSERAudioClassificationPipeline"
    local = classifier(np.sin(np.arange(16000) / 5).astype("float32"), top_k=None)
    assert [item["score"] for item in remote["scores"]] == pytest.approx([item["score"] for item in local], abs=1e-4)

    # Where the pipeline's code cannot be found any more, the copy names no pipeline instead of a missing file.
    source = tmp_path / "moved"
    shutil.copytree(model_dir, source)
    moved = GenSERForAudioClassification.from_pretrained(source)
    shutil.rmtree(source)
    with caplog.at_level("WARNING"):
        moved.save_pretrained(tmp_path / "orphan")
    assert "names no pipeline for that task" in caplog.text
    assert "custom_pipelines" not in json.loads((tmp_path / "orphan" / "config.json").read_text())
    assert GenSERForAudioClassification.from_pretrained(tmp_path / "orphan").config.id2label == LABELS


def test_importing_the_package_leaves_other_models_the_stock_pipeline(tmp_path):
    config = Wav2Vec2Config(**tiny_wav2vec2_config().to_dict(), num_labels=2)
    Wav2Vec2ForSequenceClassification(config).save_pretrained(tmp_path)
    Wav2Vec2FeatureExtractor().save_pretrained(tmp_path)
    import pipelines  # noqa: F401

    assert type(pipeline("audio-classification", model=str(tmp_path), device="cpu")) is AudioClassificationPipeline


def test_a_genser_model_of_the_remote_module_gets_the_genser_options(model_dir, tmp_path):
    """A model class loaded as remote code is not this package's class: the pipeline goes by `model_type`."""
    remote_class = get_class_from_dynamic_module("modeling_genser.GenSERForAudioClassification", str(model_dir))
    model = remote_class.from_pretrained(model_dir)
    assert remote_class is not GenSERForAudioClassification and remote_class.__module__.startswith("transformers_modules")
    remote_model = genser_classifier(model, feature_extractor=Wav2Vec2FeatureExtractor(return_attention_mask=True))
    result = remote_model(tone(300.0), top_k=None, num_samples=3, seed=1, num_inference_steps=2)
    assert all("agreement" in item for item in result)


def test_real_whisper_tiny_en_encoder(requires_shared, tmp_path):
    model = GenSERForAudioClassification.from_encoder(str(WHISPER_TINY_EN), LABELS)
    assert model.config.encoder_config.model_type == "whisper"
    feature_extractor = AutoFeatureExtractor.from_pretrained(WHISPER_TINY_EN)
    feature_extractor.return_attention_mask = True
    save_genser(tmp_path, feature_extractor=feature_extractor, model=model)
    classifier = genser_classifier(str(tmp_path))
    clip = next((requires_shared / "data" / "emodb").glob("*.wav"))
    result = classifier(str(clip), top_k=None)
    assert_valid_scores(result, len(LABELS))
    assert sum(item["score"] for item in result) == pytest.approx(1.0, abs=1e-5)
    # The pretrained weights were loaded, not a random init.
    from transformers import WhisperModel

    reference = WhisperModel.from_pretrained(WHISPER_TINY_EN).encoder.conv1.weight
    loaded = AutoModelForAudioClassification.from_pretrained(tmp_path).encoder.conv1.weight
    assert torch.equal(reference, loaded)


def test_a_misspelt_option_is_an_error_naming_the_nearest_valid_one(classifier, model_dir):
    clip = tone(300.0)
    with pytest.raises(TypeError, match="'domain_statistcs' \\(did you mean 'domain_statistics'\\?\\), 'domian' "
                       "\\(did you mean 'domain'\\?\\)"):
        classifier(clip, domian="emodb", domain_statistcs=None)
    with pytest.raises(TypeError, match="'segment_lenght_s' \\(did you mean 'segment_length_s'"):
        genser_classifier(str(model_dir), segment_lenght_s=5.0)
    with pytest.raises(TypeError, match="'colour'.*Its options are"):
        classifier(clip, colour="red")
    assert classifier(clip, top_k=2, batch_size=2) == classifier(clip, top_k=2)  # the stock call options still work
