"""The frozen-encoder feature cache: keyed by the encoder and the audio, never by the other columns."""

import pytest
import torch
from datasets import Audio, Dataset, concatenate_datasets
from transformers import Wav2Vec2FeatureExtractor

from conftest import tiny_wav2vec2_config, tone
from modeling_genser import GenSERConfig, GenSERForAudioClassification
from pipelines.audio_input import speech_encoder_inputs
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


def stores(cache) -> list:
    return sorted(path for path in cache.iterdir() if path.is_dir())


def test_second_run_reads_the_cache_and_only_a_rewritten_clip_is_encoded_again(tmp_path):
    model, extractor = make_model(), Wav2Vec2FeatureExtractor()
    calls = counting_encoder_calls(model)
    dataset = clips_dataset(tmp_path, [200.0, 400.0, 600.0, 800.0, 1000.0])

    first = add_encoder_features(dataset, model, extractor, "audio", tmp_path / "cache", batch_size=2)
    assert sum(calls) == 5
    assert first.column_names == ["label", POOLED_FEATURES_COLUMN] and list(first["label"]) == list(dataset["label"])
    [store] = stores(tmp_path / "cache")
    assert len(list(store.glob("part-*.arrow"))) == 1  # one Arrow file of clips, not one file per clip
    second = add_encoder_features(dataset, model, extractor, "audio", tmp_path / "cache", batch_size=2)
    assert sum(calls) == 5  # read, not encoded
    cached = features_of(first)
    assert torch.equal(cached, features_of(second))
    with torch.no_grad():
        direct = model.pooled_layer_features(speech_encoder_inputs(extractor, [tone(200.0, seconds=0.5)])["input_values"])
    torch.testing.assert_close(cached[0], direct[0], atol=1e-4, rtol=1e-4)

    write_wav(tmp_path / "clip3.wav", tone(999.0, seconds=0.9))  # same path, new content
    calls.clear()
    changed = add_encoder_features(dataset, model, extractor, "audio", tmp_path / "cache")
    assert sum(calls) == 1  # the changed clip alone
    changed_features = features_of(changed)
    assert torch.equal(changed_features[[0, 1, 2, 4]], cached[[0, 1, 2, 4]])
    assert (changed_features[3] - cached[3]).abs().max() > 1e-2
    with torch.no_grad():
        rewritten = model.pooled_layer_features(speech_encoder_inputs(extractor, [tone(999.0, seconds=0.9)])["input_values"])
    torch.testing.assert_close(changed_features[3], rewritten[0], atol=1e-4, rtol=1e-4)


def test_new_labels_tasks_orders_and_mixes_of_known_clips_encode_nothing(tmp_path):
    model, extractor = make_model(), Wav2Vec2FeatureExtractor()
    dataset = clips_dataset(tmp_path, [200.0, 400.0, 600.0, 800.0])
    reference = features_of(add_encoder_features(dataset, model, extractor, "audio", tmp_path / "cache"))
    calls = counting_encoder_calls(model)

    relabelled = dataset.map(lambda row: {"label": {"a": "calm", "b": "angry"}[row["label"]]})  # a new label mapping
    with_task = relabelled.add_column("arousal", ["low", "high", "low", "high"])  # a new task's column
    mixed = concatenate_datasets([with_task.select([3, 1]), with_task.select([0, 2, 3])])  # reordered, repeated
    features = add_encoder_features(mixed, model, extractor, "audio", tmp_path / "cache")
    assert calls == []
    assert features.column_names == ["label", "arousal", POOLED_FEATURES_COLUMN]
    assert features["label"] == ["angry", "angry", "calm", "calm", "angry"] and features["arousal"] == mixed["arousal"]
    assert torch.equal(features_of(features), reference[[3, 1, 0, 2, 3]])

    # Known clips and a new corpus: only the new corpus is encoded, into a part of its own.
    more = tmp_path / "more"
    more.mkdir()
    extended = concatenate_datasets([dataset, clips_dataset(more, [300.0, 500.0])])
    features = add_encoder_features(extended, model, extractor, "audio", tmp_path / "cache")
    assert sum(calls) == 2
    assert torch.equal(features_of(features)[:4], reference)
    assert len(list(stores(tmp_path / "cache")[0].glob("part-*.arrow"))) == 2


def test_a_cache_of_the_earlier_layout_is_not_read(tmp_path):
    """The earlier cache was one Arrow file per dataset, `pooled-<fingerprint>.arrow` in the cache folder, keyed by
    the dataset's fingerprint (so by its label columns too): none of its files is a store of this layout."""
    model, extractor = make_model(), Wav2Vec2FeatureExtractor()
    dataset = clips_dataset(tmp_path, [200.0, 400.0])
    cache = tmp_path / "cache"
    cache.mkdir()
    stale = Dataset.from_dict({"label": ["a", "b"], POOLED_FEATURES_COLUMN: torch.zeros(2, 3, 4).tolist()})
    stale.to_parquet(cache / "pooled-0123456789abcdef01234567.arrow")  # a stray file where the old cache wrote
    calls = counting_encoder_calls(model)
    features = add_encoder_features(dataset, model, extractor, "audio", cache)
    assert sum(calls) == 2 and features_of(features).abs().sum() > 0


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
    assert len(stores(cache)) == 4


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


def test_the_bfloat16_encoder_is_a_store_of_its_own_with_features_close_to_float32s(tmp_path):
    model, extractor = make_model(), Wav2Vec2FeatureExtractor()
    dataset = clips_dataset(tmp_path, [200.0, 400.0, 600.0])
    cache = tmp_path / "cache"
    full = features_of(add_encoder_features(dataset, model, extractor, "audio", cache))
    calls = counting_encoder_calls(model)
    fast = features_of(add_encoder_features(dataset, model, extractor, "audio", cache, encoder_precision="bfloat16"))
    assert sum(calls) == 3 and len(stores(cache)) == 2  # encoded again, into its own store
    assert not torch.equal(fast, full)
    cosine = torch.nn.functional.cosine_similarity(fast.flatten(1), full.flatten(1))
    assert cosine.min() > 0.99
    with pytest.raises(ValueError, match=r"encoder_precision must be one of \('float32', 'bfloat16'\), got 'int8'"):
        add_encoder_features(dataset, model, extractor, "audio", cache, encoder_precision="int8")


def test_an_encoder_precision_without_the_cache_or_of_another_name_is_refused():
    from training.arguments import DataTrainingArguments

    assert DataTrainingArguments(encoder_precision="bfloat16").encoder_precision == "bfloat16"
    with pytest.raises(ValueError, match="--encoder_precision sets how the feature cache is encoded"):
        DataTrainingArguments(encoder_precision="bfloat16", use_feature_cache=False)
    with pytest.raises(ValueError, match="--encoder_precision must be one of"):
        DataTrainingArguments(encoder_precision="bf16")
