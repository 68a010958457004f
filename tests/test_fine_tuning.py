"""Training the encoder's top N layers with the head (`trainable_encoder_layers`), from audio or from cached frames."""

import pytest
import torch
from datasets import Audio, Dataset
from transformers import TrainerCallback

from conftest import genser_classifier, tone
from modeling_genser import GenSERConfig, GenSERForAudioClassification
from modeling_genser.speech_encoder import encoder_layers
from training.cross_validate import main as cross_validate
from pipelines.audio_input import speech_encoder_inputs
from training.feature_cache import FRAMES_COLUMN, LOWER_POOLED_COLUMN, add_encoder_features, collate_cached_features
from training.heads import PooledFeatureClassifier
from training.run_genser import main as run_genser
from training.synthetic_corpus import generate_corpus, write_wav


def make_model(encoder_config, seed=0, **kwargs):
    torch.manual_seed(seed)
    config = GenSERConfig(encoder_config=encoder_config, id2label={0: "a", 1: "b"}, encoding_dim=16, **kwargs)
    return GenSERForAudioClassification(config)


def audio_inputs(extractor, model, seconds=(0.6, 1.0)):
    inputs = speech_encoder_inputs(extractor, [tone(300.0 * (i + 1), seconds=s) for i, s in enumerate(seconds)])
    return {model.main_input_name: inputs[model.main_input_name], "attention_mask": inputs["attention_mask"]}


def encoder_parameters_with_gradients(model) -> set[str]:
    return {name for name, parameter in model.encoder.named_parameters() if parameter.grad is not None}


def top_layer_parameters(model, count: int) -> set[str]:
    layers, final_norm = encoder_layers(model.encoder)
    modules = [*layers[len(layers) - count :], *([final_norm] if final_norm is not None else [])]
    ids = {id(parameter) for module in modules for parameter in module.parameters()}
    return {name for name, parameter in model.encoder.named_parameters() if id(parameter) in ids}


def cached_batch(model, inputs) -> dict:
    """The frame cache's entries for `inputs`, batched as the training scripts batch them."""
    with torch.no_grad():
        frames, lower = model.lower_layer_features(*inputs.values())
    examples = [{FRAMES_COLUMN: clip, LOWER_POOLED_COLUMN: pooled} for clip, pooled in zip(frames, lower)]
    return collate_cached_features(examples)


@pytest.mark.parametrize("count", [1, 2])
def test_only_the_top_layers_of_the_encoder_get_gradients(encoder_family, count):
    _, encoder_config, extractor = encoder_family
    model = make_model(encoder_config, trainable_encoder_layers=count).train()
    expected = top_layer_parameters(model, count)
    assert expected and {n for n, p in model.encoder.named_parameters() if p.requires_grad} == expected
    labels = torch.tensor([0, 1])

    model(**audio_inputs(extractor, model), labels=labels).loss.backward()  # from audio
    assert encoder_parameters_with_gradients(model) == expected
    model.zero_grad(set_to_none=True)
    model(**cached_batch(model, audio_inputs(extractor, model)), labels=labels).loss.backward()  # from cached frames
    assert encoder_parameters_with_gradients(model) == expected
    # The frozen lower layers stay in eval mode (no dropout), the trainable ones train.
    layers, _ = encoder_layers(model.encoder)
    assert [layer.training for layer in layers] == [False] * (len(layers) - count) + [True] * count


def test_top_layers_on_cached_frames_reproduce_the_encoder_on_audio(encoder_family):
    _, encoder_config, extractor = encoder_family
    model = make_model(encoder_config, trainable_encoder_layers=1, pooling="mean_std").eval()
    inputs = audio_inputs(extractor, model, seconds=(0.5, 1.2, 0.8))
    with torch.no_grad():
        from_audio = model.pooled_layer_features(*inputs.values())
        batch = cached_batch(model, inputs)
        from_frames = model.top_layer_features(batch[FRAMES_COLUMN], batch["frame_mask"], batch[LOWER_POOLED_COLUMN])
        assert batch["frame_mask"].sum(-1).unique().numel() == 3  # each clip cached at its own length
        torch.testing.assert_close(from_frames, from_audio, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(
            model(**batch).logits, model(**inputs).logits, atol=1e-3, rtol=1e-3
        )


def test_the_frame_cache_is_read_on_a_second_run(tmp_path, encoder_family):
    _, encoder_config, extractor = encoder_family
    model = make_model(encoder_config, trainable_encoder_layers=1).eval()
    calls = []
    # The first layer runs once per encoded batch, in every encoder family (Whisper's forward is not called).
    encoder_layers(model.encoder)[0][0].register_forward_hook(lambda module, args, output: calls.append(args[0].shape[0]))
    paths = []
    for i, seconds in enumerate((0.4, 0.7, 1.0)):
        paths.append(str(tmp_path / f"clip{i}.wav"))
        write_wav(paths[-1], tone(200.0 * (i + 1), seconds=seconds))
    dataset = Dataset.from_dict({"audio": paths, "labels": [0, 1, 0]}).cast_column("audio", Audio(sampling_rate=16000))

    first = add_encoder_features(dataset, model, extractor, "audio", tmp_path / "cache")
    assert sum(calls) == 3 and first.column_names == ["labels", FRAMES_COLUMN, LOWER_POOLED_COLUMN]
    assert [path.name.split("-")[0] for path in (tmp_path / "cache").iterdir()] == ["frames"]
    second = add_encoder_features(dataset, model, extractor, "audio", tmp_path / "cache")
    assert sum(calls) == 3  # read, not encoded
    lengths = [len(clip) for clip in second.with_format("torch")[:][FRAMES_COLUMN]]
    assert lengths[0] < lengths[1] < lengths[2]
    # Another number of trainable layers is another cache entry.
    add_encoder_features(dataset, make_model(encoder_config, trainable_encoder_layers=2).eval(), extractor, "audio", tmp_path / "cache")
    assert len(list((tmp_path / "cache").iterdir())) == 2  # stores


def test_classification_baselines_train_a_copy_of_the_same_top_layers(encoder_family):
    _, encoder_config, extractor = encoder_family
    model = make_model(encoder_config, trainable_encoder_layers=1).eval()
    classifier = PooledFeatureClassifier(model.config, encoder=model.encoder).train()
    batch = cached_batch(model, audio_inputs(extractor, model))
    classifier(**batch, labels=torch.tensor([0, 1])).loss.backward()
    assert all(parameter.grad is not None for parameter in classifier.top_layers.parameters())
    assert all(parameter.grad is None for parameter in model.encoder.parameters())  # the model's own stay untouched
    with pytest.raises(ValueError, match="needs the pretrained `encoder`"):
        PooledFeatureClassifier(model.config)


def test_invalid_trainable_layer_counts_are_clear_errors(encoder_family):
    _, encoder_config, _ = encoder_family
    with pytest.raises(ValueError, match="freeze_encoder=True"):
        GenSERConfig(encoder_config=encoder_config, freeze_encoder=False, trainable_encoder_layers=1)
    with pytest.raises(ValueError, match=">= 0"):
        GenSERConfig(encoder_config=encoder_config, trainable_encoder_layers=-1)
    with pytest.raises(ValueError, match="has only 2 layers"):
        make_model(encoder_config, trainable_encoder_layers=3)
    with pytest.raises(ValueError, match="trainable_encoder_layers > 0"):
        make_model(encoder_config).lower_layer_features(torch.zeros(1, 16000))


@pytest.mark.parametrize("head", ["genser", "linear"])
def test_cross_validation_trains_the_top_layer_on_cached_frames(tmp_path, head):
    corpus = generate_corpus(tmp_path / "corpus", num_speakers=2, num_sentences=2, seed=0)
    argv = [
        "--dataset_name", str(corpus),
        "--output_dir", str(tmp_path / "cv"),
        "--feature_cache_dir", str(tmp_path / "cache"),
        "--head", head,
        "--trainable_encoder_layers", "1",
        "--num_train_epochs", "1",
        "--per_device_train_batch_size", "8",
        "--config_overrides", "encoding_dim=32,head_hidden_size=32",
    ]
    results = cross_validate(argv)
    assert len(results["per_fold"]) == 2
    assert [path.name.split("-")[0] for path in (tmp_path / "cache").iterdir()] == ["frames"]


class EncoderSnapshot(TrainerCallback):
    """Keeps the encoder's weights as training starts."""

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        # On the CPU, where the saved model is loaded, whatever device training runs on.
        self.before = {name: tensor.cpu().clone() for name, tensor in model.encoder.state_dict().items()}


def test_a_model_trained_on_cached_frames_saves_its_trained_top_layer_and_classifies_audio(tmp_path):
    corpus = generate_corpus(tmp_path / "corpus", num_speakers=3, num_sentences=2, seed=0)
    output, snapshot = tmp_path / "model", EncoderSnapshot()
    run_genser(
        [
            "--dataset_name", str(corpus),
            "--output_dir", str(output),
            "--feature_cache_dir", str(tmp_path / "cache"),
            "--trainable_encoder_layers", "1",
            "--num_train_epochs", "2",
            "--learning_rate", "1e-2",
            "--eval_fraction", "0.34",
            "--num_example_predictions", "0",
            "--report_to", "none",
            "--config_overrides", "encoding_dim=32,head_hidden_size=32",
        ],
        callbacks=[snapshot],
    )
    # One store of frames holds both splits' clips.
    assert [path.name.split("-")[0] for path in (tmp_path / "cache").iterdir()] == ["frames"]
    saved = GenSERForAudioClassification.from_pretrained(output)
    assert saved.config.trainable_encoder_layers == 1
    top = set(top_layer_parameters(saved, 1))
    changed = {name for name, tensor in saved.encoder.state_dict().items() if not torch.equal(tensor, snapshot.before[name])}
    assert changed and changed <= top  # only the top layer trained, and it did
    classifier = genser_classifier(str(output))
    scores = classifier({"array": tone(300.0, seconds=1.0), "sampling_rate": 16000})
    assert len(scores) == len(saved.config.id2label)
