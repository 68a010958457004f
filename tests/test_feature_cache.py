"""The frozen-encoder feature cache: a `datasets` map whose fingerprint follows the encoder and the clips."""

import pytest
import torch
from datasets import Audio, Dataset
from transformers import Wav2Vec2FeatureExtractor

from conftest import tiny_wav2vec2_config, tone
from modeling_genser import GenSERConfig, GenSERForAudioClassification
from training.data import extract_features
from training.feature_cache import POOLED_FEATURES_COLUMN, add_encoder_features
from training.synthetic_corpus import write_wav


def make_model(seed=0, **kwargs):
    torch.manual_seed(seed)
    config = GenSERConfig(encoder_config=tiny_wav2vec2_config(), id2label={0: "a", 1: "b"}, **kwargs)
    return GenSERForAudioClassification(config).eval()


def counting_encoder_calls(model) -> list[int]:
    """Records the batch size of every encoder call."""
    calls = []
    model.encoder.register_forward_hook(lambda module, args, output: calls.append(args[0].shape[0]))
    return calls


def features_of(dataset) -> torch.Tensor:
    return dataset.with_format("torch")[:][POOLED_FEATURES_COLUMN]


def clips_dataset(folder, frequencies):
    paths = []
    for i, frequency in enumerate(frequencies):
        paths.append(str(folder / f"clip{i}.wav"))
        write_wav(paths[-1], tone(frequency, seconds=0.5 + 0.1 * i))
    dataset = Dataset.from_dict({"audio": paths, "label": ["a", "b"] * (len(paths) // 2) + ["a"] * (len(paths) % 2)})
    return dataset.cast_column("audio", Audio(sampling_rate=16000))


def test_second_run_reads_the_cache_and_a_rewritten_clip_is_encoded_again(tmp_path):
    model, extractor = make_model(), Wav2Vec2FeatureExtractor()
    calls = counting_encoder_calls(model)
    dataset = clips_dataset(tmp_path, [200.0, 400.0, 600.0, 800.0, 1000.0])

    first = add_encoder_features(dataset, model, extractor, "audio", tmp_path / "cache", batch_size=2)
    assert sum(calls) == 5
    assert first.column_names == ["label", POOLED_FEATURES_COLUMN] and list(first["label"]) == list(dataset["label"])
    assert len(list((tmp_path / "cache").glob("*.arrow"))) == 1  # one Arrow file, not one file per clip
    second = add_encoder_features(dataset, model, extractor, "audio", tmp_path / "cache", batch_size=2)
    assert sum(calls) == 5  # read, not encoded
    cached = features_of(first)
    assert torch.equal(cached, features_of(second))
    with torch.no_grad():
        direct = model.pooled_layer_features(extract_features(extractor, [tone(200.0, seconds=0.5)])["input_values"])
    torch.testing.assert_close(cached[0], direct[0], atol=1e-4, rtol=1e-4)

    write_wav(tmp_path / "clip3.wav", tone(999.0, seconds=0.9))  # same path, new content
    calls.clear()
    changed = add_encoder_features(dataset, model, extractor, "audio", tmp_path / "cache")
    assert sum(calls) == 5  # a new cache entry for the changed corpus
    changed_features = features_of(changed)
    torch.testing.assert_close(changed_features[0], cached[0], atol=1e-4, rtol=1e-4)  # batched differently
    assert (changed_features[3] - cached[3]).abs().max() > 1e-2


def test_a_different_encoder_pooling_or_crop_gets_its_own_entry(tmp_path):
    extractor = Wav2Vec2FeatureExtractor()
    dataset = clips_dataset(tmp_path, [300.0, 500.0])
    cache = tmp_path / "cache"
    reference = add_encoder_features(dataset, make_model(), extractor, "audio", cache)
    other_weights = make_model(seed=1)
    calls = counting_encoder_calls(other_weights)
    retrained = add_encoder_features(dataset, other_weights, extractor, "audio", cache)
    assert sum(calls) == 2
    assert not torch.equal(features_of(reference), features_of(retrained))
    mean_std = add_encoder_features(dataset, make_model(pooling="mean_std"), extractor, "audio", cache)
    assert len(mean_std[0][POOLED_FEATURES_COLUMN][0]) == 2 * tiny_wav2vec2_config().hidden_size
    add_encoder_features(dataset, make_model(), extractor, "audio", cache, max_length_seconds=0.2)
    assert len(list(cache.glob("*.arrow"))) == 4


def test_a_trainable_encoder_cannot_be_cached(tmp_path):
    with pytest.raises(ValueError, match="frozen encoder"):
        add_encoder_features(
            clips_dataset(tmp_path, [300.0]), make_model(freeze_encoder=False), Wav2Vec2FeatureExtractor(), "audio", tmp_path
        )


def test_unreadable_clips_are_found_by_the_encoding_itself_each_clip_decoded_once(tmp_path, monkeypatch):
    model, extractor = make_model(), Wav2Vec2FeatureExtractor()
    dataset = clips_dataset(tmp_path, [200.0, 400.0, 600.0, 800.0])
    (tmp_path / "clip1.wav").write_bytes(b"this is not audio")
    (tmp_path / "clip2.wav").write_bytes(b"")
    decodes = []
    decode_example = Audio.decode_example
    monkeypatch.setattr(Audio, "decode_example", lambda self, *a, **k: decodes.append(1) or decode_example(self, *a, **k))

    with pytest.raises(ValueError, match=r"2 unreadable audio file\(s\):\n.*clip1\.wav: .*\n.*clip2\.wav: .*\nFix or"):
        add_encoder_features(dataset, model, extractor, "audio", tmp_path / "cache", batch_size=2)
    assert len(decodes) == 4  # the check is the encoding's own decoding, not a pass of its own
    clips, features = add_encoder_features(
        dataset, model, extractor, "audio", tmp_path / "cache", batch_size=2, unreadable_audio="skip", return_clips=True
    )
    assert len(decodes) == 4  # read from the cache, errors included
    assert [value["path"] for value in clips.cast_column("audio", Audio(decode=False))["audio"]] == [
        str(tmp_path / "clip0.wav"), str(tmp_path / "clip3.wav")
    ]
    assert features["label"] == clips["label"] == ["a", "b"] and POOLED_FEATURES_COLUMN in features.column_names
    readable_alone = add_encoder_features(dataset.select([0, 3]), model, extractor, "audio", tmp_path / "alone")
    torch.testing.assert_close(features_of(features), features_of(readable_alone), atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match='on_error must be "raise" or "skip"'):
        add_encoder_features(dataset, model, extractor, "audio", tmp_path / "cache", unreadable_audio="ignore")
    with pytest.raises(ValueError, match="not audio: cast it with training.data.cast_audio"):
        add_encoder_features(Dataset.from_dict({"audio": [str(tmp_path / "clip0.wav")]}), model, extractor, "audio")
