import pytest
import torch

from conftest import tiny_wav2vec2_config, tone
from modeling_genser import GenSERConfig, GenSERForAudioClassification
from training.data import extract_features
from training.feature_cache import cached_pooled_features
from transformers import Wav2Vec2FeatureExtractor


def make_model(**kwargs):
    torch.manual_seed(0)
    config = GenSERConfig(encoder_config=tiny_wav2vec2_config(), id2label={0: "a", 1: "b"}, **kwargs)
    return GenSERForAudioClassification(config).eval()


def test_second_run_reads_the_cache_and_changed_clips_are_recomputed(tmp_path):
    model, extractor = make_model(), Wav2Vec2FeatureExtractor()
    encoded = []
    model.encoder.register_forward_hook(lambda module, args, output: encoded.append(args[0].shape[0]))
    clips = [tone(200.0 * (i + 1), seconds=0.5 + 0.1 * i) for i in range(5)]

    first = cached_pooled_features(model, extractor, clips, tmp_path, batch_size=2)
    assert sum(encoded) == 5
    second = cached_pooled_features(model, extractor, clips, tmp_path, batch_size=2)
    assert sum(encoded) == 5  # nothing re-encoded
    assert torch.equal(first, second)
    with torch.no_grad():
        direct = model.pooled_layer_features(extract_features(extractor, clips[:1])["input_values"])
    torch.testing.assert_close(first[0], direct[0], atol=1e-5, rtol=1e-4)

    encoded.clear()
    clips[3] = tone(999.0)
    cached_pooled_features(model, extractor, clips, tmp_path, batch_size=2)
    assert encoded == [1]  # only the changed clip


def test_a_different_encoder_or_pooling_gets_its_own_entries(tmp_path):
    extractor = Wav2Vec2FeatureExtractor()
    clips = [tone(300.0)]
    cached_pooled_features(make_model(), extractor, clips, tmp_path)
    mean_std = cached_pooled_features(make_model(pooling="mean_std"), extractor, clips, tmp_path)
    assert mean_std.shape[-1] == 2 * tiny_wav2vec2_config().hidden_size
    assert len(list(tmp_path.iterdir())) == 2


def test_a_trainable_encoder_cannot_be_cached(tmp_path):
    with pytest.raises(ValueError, match="frozen encoder"):
        cached_pooled_features(make_model(freeze_encoder=False), Wav2Vec2FeatureExtractor(), [tone(300.0)], tmp_path)
