"""Inference for real recordings: bad input, long audio, batching, uncertainty, label masking, padding trim."""

import numpy as np
import pytest
import torch
from transformers import WhisperFeatureExtractor

from conftest import (
    LABELS,
    SAMPLING_RATE,
    assert_valid_scores,
    genser_classifier,
    save_genser,
    tiny_whisper_config,
    tone,
)
from modeling_genser import GenSERConfig, GenSERForAudioClassification
from modeling_genser.speech_encoder import whisper_hidden_states
from pipelines.audio_input import speech_encoder_inputs
from training.synthetic_corpus import write_wav


@pytest.fixture(scope="module")
def whisper_classifier(tmp_path_factory):
    torch.manual_seed(0)
    config = GenSERConfig(
        encoder_config=tiny_whisper_config(), id2label=LABELS, label2id={v: k for k, v in LABELS.items()}
    )
    directory = save_genser(
        tmp_path_factory.mktemp("genser-whisper"),
        model=GenSERForAudioClassification(config),
        feature_extractor=WhisperFeatureExtractor(feature_size=80, return_attention_mask=True),
    )
    return genser_classifier(str(directory))


def scores_by_label(result) -> dict[str, float]:
    return {item["label"]: item["score"] for item in result}


def assert_distribution(result):
    assert_valid_scores(result, len(LABELS))
    assert sum(item["score"] for item in result) == pytest.approx(1.0, abs=1e-5)


# --- bad input ---------------------------------------------------------------------------------------------------


def corrupted_wav(directory):
    path = directory / "corrupted.wav"
    write_wav(path, tone(300.0))
    payload = bytearray(path.read_bytes())
    payload[:64] = np.random.default_rng(0).integers(0, 256, 64, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(payload[:200]))
    return str(path)


def text_file(directory):
    path = directory / "notes.wav"
    path.write_text("this is not audio\n" * 50)
    return str(path)


BAD_INPUTS = {
    "empty array": (lambda _: np.zeros(0, dtype=np.float32), ValueError, "empty"),
    "empty dict audio": (lambda _: {"array": np.zeros(0), "sampling_rate": 8000}, ValueError, "empty"),
    "NaN samples": (lambda _: np.where(np.arange(16000) == 5, np.nan, tone(300.0)), ValueError, "NaN or infinite"),
    "Inf samples": (lambda _: np.where(np.arange(16000) == 5, np.inf, tone(300.0)), ValueError, "NaN or infinite"),
    "missing file": (lambda d: str(d / "nowhere.wav"), FileNotFoundError, "Audio file not found"),
    "corrupted file": (corrupted_wav, ValueError, "Could not decode any audio"),
    "non-audio file": (text_file, ValueError, "Could not decode any audio"),
    "non-audio bytes": (lambda _: b"this is not audio\n" * 50, ValueError, "Could not decode any audio from the given bytes"),
    "3-D array": (lambda _: np.zeros((2, 2, 16000), dtype=np.float32), ValueError, "1-D waveform"),
    "no channel axis": (lambda _: np.zeros((100, 200), dtype=np.float32), ValueError, "channel count"),
    "dict without rate": (lambda _: {"array": tone(300.0)}, ValueError, "sampling_rate"),
    "negative rate": (lambda _: {"array": tone(300.0), "sampling_rate": -1}, ValueError, "positive integer"),
    "string samples": (lambda _: np.array(["a", "b"]), TypeError, "dtype"),
    "a list": (lambda _: [0.0, 0.1], TypeError, "numpy array or torch tensor"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_raises_a_clear_error(classifier, tmp_path, case):
    make_input, error, message = BAD_INPUTS[case]
    with pytest.raises(error, match=message):
        classifier(make_input(tmp_path))


def test_silence_and_very_short_clips_give_scores(classifier):
    assert_distribution(classifier(np.zeros(SAMPLING_RATE, dtype=np.float32), top_k=None))
    assert_distribution(classifier(tone(300.0, seconds=0.1), top_k=None))
    # Shorter than the encoder's receptive field: padded with silence to 0.1 s.
    short = tone(300.0, seconds=0.01)
    padded = np.pad(short, (0, int(0.1 * SAMPLING_RATE) - len(short)))
    assert classifier(short, top_k=None) == classifier(padded, top_k=None)


def test_multichannel_audio_is_averaged_in_either_layout(classifier):
    left, right = tone(300.0), tone(450.0, seed=1)
    mono = classifier((left + right) / 2, top_k=None)
    for stereo in (np.stack([left, right]), np.stack([left, right], axis=1), torch.from_numpy(np.stack([left, right]))):
        result = classifier({"array": stereo, "sampling_rate": SAMPLING_RATE}, top_k=None)
        assert scores_by_label(result) == pytest.approx(scores_by_label(mono), abs=1e-5)


def test_int16_samples_are_scaled(classifier):
    audio = tone(300.0)
    pcm = np.round(audio * 32767).astype(np.int16)
    assert scores_by_label(classifier(pcm, top_k=None)) == pytest.approx(
        scores_by_label(classifier(pcm / 32768.0, top_k=None)), abs=1e-5
    )


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_any_sampling_rate_is_resampled(classifier, rate):
    seconds = 1.0
    time = np.arange(int(seconds * rate)) / rate
    audio = (0.3 * np.sin(2 * np.pi * 300.0 * time)).astype(np.float32)
    native = (0.3 * np.sin(2 * np.pi * 300.0 * np.arange(SAMPLING_RATE) / SAMPLING_RATE)).astype(np.float32)
    result = classifier({"array": audio, "sampling_rate": rate}, top_k=None)
    assert_distribution(result)
    assert scores_by_label(result) == pytest.approx(scores_by_label(classifier(native, top_k=None)), abs=0.02)


# --- long audio ----------------------------------------------------------------------------------------------------


def test_segments_are_classified_alone_and_averaged_by_duration(classifier):
    audio = np.concatenate([tone(300.0, seconds=2.0), tone(700.0, seconds=2.0, seed=1), tone(300.0, seconds=1.0)])
    result = classifier(audio, top_k=None, segment_length_s=2.0, return_segments=True)
    assert [(s["start"], s["end"]) for s in result["segments"]] == [(0.0, 2.0), (2.0, 4.0), (4.0, 5.0)]
    expected = {label: 0.0 for label in LABELS.values()}
    for segment in result["segments"]:
        start, end = (int(t * SAMPLING_RATE) for t in (segment["start"], segment["end"]))
        alone = scores_by_label(classifier(audio[start:end], top_k=None))
        assert scores_by_label(segment["scores"]) == pytest.approx(alone, abs=1e-6)
        for label, score in alone.items():
            expected[label] += score * (segment["end"] - segment["start"]) / 5.0
    assert scores_by_label(result["scores"]) == pytest.approx(expected, abs=1e-6)
    assert_distribution(result["scores"])
    # The default output is the aggregate alone, as the stock pipeline returns it.
    assert classifier(audio, top_k=None, segment_length_s=2.0) == result["scores"]


def test_a_tail_shorter_than_the_encoder_needs_is_padded(classifier):
    audio = tone(300.0, seconds=2.01)  # the last window holds 0.01 s, under a pretrained wav2vec2's 400 samples
    seen = []
    hook = classifier.model.encoder.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape[-1]))
    try:
        result = classifier(audio, segment_length_s=1.0, return_segments=True, top_k=None)
    finally:
        hook.remove()
    assert seen == [SAMPLING_RATE, SAMPLING_RATE, SAMPLING_RATE // 10]  # the tail padded with silence to 0.1 s
    times = [time for segment in result["segments"] for time in (segment["start"], segment["end"])]
    assert times == pytest.approx([0.0, 1.0, 1.0, 2.0, 2.0, 2.01], abs=1e-3)
    assert_distribution(result["scores"])


def test_overlapping_segments(classifier):
    result = classifier(tone(300.0, seconds=3.0), segment_length_s=2.0, segment_hop_s=0.5, return_segments=True)
    assert [(s["start"], s["end"]) for s in result["segments"]] == [(0.0, 2.0), (0.5, 2.5), (1.0, 3.0)]


def test_ten_minute_recording_runs_in_bounded_windows(classifier):
    seen = []
    hook = classifier.model.encoder.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape[-1]))
    try:
        audio = np.tile(tone(300.0, seconds=10.0), 60)  # 10 minutes
        result = classifier(audio, top_k=None, return_segments=True)
    finally:
        hook.remove()
    assert len(result["segments"]) == 20
    assert result["segments"][-1]["end"] == pytest.approx(600.0)
    assert max(seen) == 30 * SAMPLING_RATE  # never more than one 30 s window at a time
    assert_distribution(result["scores"])


def test_hop_longer_than_the_window_is_refused(classifier):
    with pytest.raises(ValueError, match="hop no longer than the window"):
        classifier(tone(300.0, seconds=3.0), segment_length_s=1.0, segment_hop_s=2.0)


def test_segment_length_beyond_whisper_window_is_refused(whisper_classifier):
    with pytest.raises(ValueError, match="shorter segment_length_s"):
        whisper_classifier(tone(300.0), segment_length_s=45.0)


# --- batching ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["wav2vec2", "whisper"])
def test_batched_inference_matches_one_by_one(classifier, whisper_classifier, family):
    pipe = classifier if family == "wav2vec2" else whisper_classifier
    clips = [tone(300.0 + 50 * i, seconds=0.5 + 0.4 * i, seed=i) for i in range(5)]
    batched = pipe(clips, batch_size=3, top_k=None)
    for clip, result in zip(clips, batched):
        assert scores_by_label(result) == pytest.approx(scores_by_label(pipe(clip, top_k=None)), abs=1e-5)


def test_whisper_encodes_real_frames_only_and_keeps_30s_results():
    torch.manual_seed(0)
    config = GenSERConfig(encoder_config=tiny_whisper_config(), id2label=LABELS, label2id={v: k for k, v in LABELS.items()})
    model = GenSERForAudioClassification(config).eval()
    extractor = WhisperFeatureExtractor(feature_size=80, return_attention_mask=True)
    seen = []
    model.encoder.conv1.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape[-1]))
    full = extractor([tone(300.0, seconds=30.0)], sampling_rate=SAMPLING_RATE, return_tensors="pt")
    with torch.no_grad():
        # At 30 s the encoder's own modules, run as Gen-SER runs them, give the encoder's own hidden states.
        reference = model.encoder(full.input_features, output_hidden_states=True).hidden_states
        for ours, theirs in zip(whisper_hidden_states(model.encoder, full.input_features), reference, strict=True):
            torch.testing.assert_close(ours, theirs)
        trimmed = model.pooled_layer_features(full.input_features, full.attention_mask)
        model.config.trim_padding = False
        untrimmed = model.pooled_layer_features(full.input_features, full.attention_mask)
        assert torch.allclose(trimmed, untrimmed, atol=1e-6)  # nothing to trim: identical

        model.config.trim_padding = True
        seen.clear()
        short = extractor([tone(300.0, seconds=1.0)], sampling_rate=SAMPLING_RATE, return_tensors="pt")
        model.pooled_layer_features(short.input_features, short.attention_mask)
        assert seen == [100]  # 1 s = 100 mel frames instead of 3000


def test_whisper_clips_of_any_lengths_batch_together_with_their_30s_features():
    """`speech_encoder_inputs` pads a batch to its longest clip (not 30 s) and Whisper masks each shorter clip's
    padding: one encoder call, and every clip's features as it has them alone in its 30 s window."""
    torch.manual_seed(0)
    config = GenSERConfig(encoder_config=tiny_whisper_config(), id2label=LABELS, label2id={v: k for k, v in LABELS.items()})
    model = GenSERForAudioClassification(config).eval()
    extractor = WhisperFeatureExtractor(feature_size=80)
    clips = [tone(300.0 + 70 * i, seconds=seconds, seed=i) for i, seconds in enumerate([0.73, 1.9, 1.2, 0.31])]
    seen = []
    model.encoder.conv1.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape)))
    with torch.no_grad():
        inputs = speech_encoder_inputs(extractor, clips)
        assert inputs.input_features.shape == (4, 80, 194)  # the longest clip's 190 frames and a margin, not 3000
        batched = model.pooled_layer_features(inputs.input_features, inputs.attention_mask)
        assert seen == [(4, 80, 190)]  # one call, cut to the longest clip
        for clip, features in zip(clips, batched):
            window = speech_encoder_inputs(extractor, [clip], whole_window=True)
            assert window.input_features.shape[-1] == 3000
            alone = model.pooled_layer_features(window.input_features, window.attention_mask)
            torch.testing.assert_close(features, alone[0], atol=1e-5, rtol=1e-5)


def test_clips_encoded_beforehand_in_batches_classify_as_their_audio(whisper_classifier):
    """`encode_windows` runs every window of several clips through the encoder in length-sorted batches; the pipeline
    then classifies them with the head alone, as it classifies the audio."""
    clips = [tone(300.0 + 90 * i, seconds=seconds, seed=i) for i, seconds in enumerate([2.5, 0.4, 1.3])]
    options = {"segment_length_s": 1.0, "segment_hop_s": 0.75, "top_k": None, "return_segments": True}
    calls = []
    hook = whisper_classifier.model.encoder.conv1.register_forward_pre_hook(lambda module, args: calls.append(1))
    try:
        encoded = whisper_classifier.encode_windows(clips, 1.0, 0.75, batch_size=4)
        assert len(calls) == 2  # 3 + 1 + 2 windows, 4 at a time
        assert [len(clip["starts"]) for clip in encoded] == [3, 1, 2]
        assert encoded[0]["starts"] == [0.0, 0.75, 1.5] and encoded[0]["ends"] == [1.0, 1.75, 2.5]
        calls.clear()
        from_features = whisper_classifier(encoded, batch_size=2, **options)
        assert calls == []  # the head alone
    finally:
        hook.remove()
    from_audio = whisper_classifier(clips, batch_size=2, **options)
    for ours, theirs in zip(from_features, from_audio, strict=True):
        assert scores_by_label(ours["scores"]) == pytest.approx(scores_by_label(theirs["scores"]), abs=1e-5)
        assert [(s["start"], s["end"]) for s in ours["segments"]] == [(s["start"], s["end"]) for s in theirs["segments"]]
    width = encoded[0]["pooled_layer_features"].shape[-1]
    with pytest.raises(ValueError, match=rf"this Gen-SER model's pooled features, \(num_windows, 3, {width}\)"):
        whisper_classifier({"pooled_layer_features": torch.zeros(1, 2, width), "starts": [0.0], "ends": [1.0]})
    with pytest.raises(ValueError, match="need their `starts` and `ends`"):
        whisper_classifier({"pooled_layer_features": encoded[0]["pooled_layer_features"], "starts": [0.0]})


def test_the_encoder_runs_in_bfloat16_when_asked_and_the_scores_stay_close(whisper_classifier):
    clips = [tone(300.0 + 90 * i, seconds=seconds, seed=i) for i, seconds in enumerate([2.5, 0.4])]
    full = whisper_classifier(clips, top_k=None, segment_length_s=1.0, batch_size=2)
    fast = whisper_classifier(clips, top_k=None, segment_length_s=1.0, batch_size=2, encoder_precision="bfloat16")
    assert fast != full
    for ours, theirs in zip(fast, full):
        assert scores_by_label(ours) == pytest.approx(scores_by_label(theirs), abs=0.05)
    encoded = whisper_classifier.encode_windows(clips, 1.0, encoder_precision="bfloat16")
    from_features = whisper_classifier(encoded, top_k=None)
    for ours, theirs in zip(from_features, fast):  # other batches, other bfloat16 roundings: close, not equal
        assert scores_by_label(ours) == pytest.approx(scores_by_label(theirs), abs=2e-3)
    with pytest.raises(ValueError, match="encoder_precision must be one of"):
        whisper_classifier(clips[0], encoder_precision="float16")


# --- uncertainty ---------------------------------------------------------------------------------------------------


def test_several_samples_report_agreement_and_are_reproducible(classifier):
    audio = tone(300.0)
    result = classifier(audio, top_k=None, num_samples=8)
    assert_distribution(result)
    assert all(0.0 <= item["agreement"] <= 1.0 for item in result)
    assert sum(item["agreement"] for item in result) == pytest.approx(1.0)
    assert classifier(audio, top_k=None, num_samples=8, seed=3) == classifier(audio, top_k=None, num_samples=8, seed=3)
    assert classifier(audio, top_k=None, num_samples=8, seed=3) != result
    assert "agreement" not in classifier(audio, top_k=None)[0]
    with pytest.raises(ValueError, match="num_samples must be a positive integer"):
        classifier(audio, num_samples=0)


def test_sample_logits_average_into_logits(classifier):
    model = classifier.model
    inputs = classifier.feature_extractor(tone(300.0), sampling_rate=SAMPLING_RATE, return_tensors="pt")
    with torch.no_grad():
        output = model(**inputs, num_samples=4)
        single = model(**inputs)
    assert output.sample_logits.shape == (1, 4, len(LABELS))
    assert torch.allclose(output.logits.softmax(-1), output.sample_logits.softmax(-1).mean(1), atol=1e-6)
    # The first sample is the default single-sample prediction.
    assert torch.allclose(output.sample_logits[:, 0], single.logits)


def test_trajectory_ends_at_the_similarities_that_give_the_scores(classifier):
    temperature = classifier.model.config.similarity_temperature
    result = classifier(tone(300.0), top_k=None, num_inference_steps=3, return_trajectory=True)
    trajectory = result["trajectory"]
    assert trajectory["times"] == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0])
    assert sorted(trajectory["similarities"]) == sorted(LABELS.values())
    final = torch.tensor([trajectory["similarities"][label][-1] for label in LABELS.values()])
    assert all(len(values) == 4 for values in trajectory["similarities"].values())
    expected = dict(zip(LABELS.values(), (final / temperature).softmax(-1).tolist()))
    assert scores_by_label(result["scores"]) == pytest.approx(expected, abs=1e-5)


def test_trajectory_of_segments_batches_and_label_subsets(classifier):
    audio = np.concatenate([tone(300.0, seconds=2.0), tone(600.0, seconds=1.0, seed=1)])
    result = classifier(audio, segment_length_s=2.0, return_segments=True, return_trajectory=True)
    first, second = (segment["trajectory"]["similarities"] for segment in result["segments"])
    for label, values in result["trajectory"]["similarities"].items():  # weighted by the windows' durations
        assert values == pytest.approx([(2 * a + b) / 3 for a, b in zip(first[label], second[label])], abs=1e-6)

    clips = [tone(300.0 + 50 * i, seconds=0.5 + 0.4 * i, seed=i) for i in range(3)]
    batched = classifier(clips, batch_size=3, return_trajectory=True)
    for clip, result in zip(clips, batched):
        alone = classifier(clip, return_trajectory=True)["trajectory"]
        assert result["trajectory"]["times"] == alone["times"]
        for label, values in alone["similarities"].items():
            assert result["trajectory"]["similarities"][label] == pytest.approx(values, abs=1e-5)

    subset = classifier(clips[0], return_trajectory=True, candidate_labels=["anger", "sadness"])
    assert sorted(subset["trajectory"]["similarities"]) == ["anger", "sadness"]


# --- label-set masking -----------------------------------------------------------------------------------------------


def test_candidate_labels_restrict_the_prediction(classifier):
    audio = tone(300.0)
    full = scores_by_label(classifier(audio, top_k=None))
    restricted = classifier(audio, candidate_labels=["sadness", "anger"])
    assert {item["label"] for item in restricted} == {"sadness", "anger"}
    assert sum(item["score"] for item in restricted) == pytest.approx(1.0, abs=1e-5)
    total = full["sadness"] + full["anger"]
    assert scores_by_label(restricted) == pytest.approx({"sadness": full["sadness"] / total, "anger": full["anger"] / total}, abs=1e-5)
    assert len(classifier(audio, candidate_labels=["sadness", "anger", "neutral"], top_k=1)) == 1
    with pytest.raises(ValueError, match=r"subset of the model's labels .*unknown: \['boredom'\]"):
        classifier(audio, candidate_labels=["sadness", "boredom"])
