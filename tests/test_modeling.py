import json

import pytest
import torch
from transformers import AutoConfig, AutoModelForAudioClassification, WhisperModel

from conftest import tiny_whisper_config, tone
from modeling_genser import GenSERConfig, GenSERForAudioClassification, GenSERScheduler
from modeling_genser.target_matching import cosine_target_loss
from modeling_genser.speech_encoder import encoder_layers

LABELS = {0: "low", 1: "mid", 2: "high"}
FREQUENCIES = {0: 150.0, 1: 600.0, 2: 2400.0}


def make_model(encoder_config, **kwargs) -> GenSERForAudioClassification:
    torch.manual_seed(0)
    config = GenSERConfig(encoder_config=encoder_config, id2label=LABELS, label2id={v: k for k, v in LABELS.items()}, **kwargs)
    return GenSERForAudioClassification(config).eval()


def features(feature_extractor, arrays):
    padding = {} if type(feature_extractor).__name__.startswith("Whisper") else {"padding": True}
    return feature_extractor(arrays, sampling_rate=16000, return_tensors="pt", return_attention_mask=True, **padding)


def test_save_pretrained_then_from_pretrained_gives_identical_logits(encoder_family, tmp_path):
    _, encoder_config, feature_extractor = encoder_family
    model = make_model(encoder_config, num_inference_steps=3, pooling="mean_std")
    with torch.no_grad():
        model.conditioner.layer_weights.normal_()  # make sure trained values, not the init, are what round-trips
    inputs = features(feature_extractor, [tone(300.0), tone(900.0, seconds=0.5)])
    model.save_pretrained(tmp_path)
    # One source of truth for the bridge's settings: config.json's scheduler_config, no scheduler_config.json.
    assert not (tmp_path / "scheduler_config.json").exists()
    reloaded = AutoModelForAudioClassification.from_pretrained(tmp_path).eval()
    assert isinstance(reloaded, GenSERForAudioClassification)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), GenSERConfig)
    scheduler = GenSERScheduler.from_config(AutoConfig.from_pretrained(tmp_path).scheduler_config)
    assert scheduler.config == model.scheduler.config
    with torch.no_grad():
        expected, actual = model(**inputs).logits, reloaded(**inputs).logits
    assert expected.shape == (2, 3)
    assert torch.equal(expected, actual)


def test_outputs_are_reproducible_batch_independent_and_seedable(encoder_family):
    _, encoder_config, feature_extractor = encoder_family
    model = make_model(encoder_config, num_inference_steps=2)
    clips = [tone(300.0), tone(900.0)]
    with torch.no_grad():
        batch = model(**features(feature_extractor, clips), output_trajectory=True)
        again = model(**features(feature_extractor, clips))
        alone = model(**features(feature_extractor, clips[:1]))
        other_seed = model(**features(feature_extractor, clips), generator=torch.Generator().manual_seed(123))
    assert torch.equal(batch.logits, again.logits)
    torch.testing.assert_close(batch.logits[:1], alone.logits, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(batch.logits, other_seed.logits)
    assert batch.trajectory.shape == (2, 3, model.config.encoding_dim)
    assert torch.equal(batch.trajectory[:, -1], batch.generated)


def test_encoder_runs_once_whatever_the_step_count(encoder_family):
    _, encoder_config, feature_extractor = encoder_family
    model = make_model(encoder_config)
    calls = []
    encoder_layers(model.encoder)[0][0].register_forward_hook(lambda *args: calls.append(1))
    with torch.no_grad():
        model(**features(feature_extractor, [tone(300.0)]), num_inference_steps=8)
    assert len(calls) == 1


def test_cached_time_embeddings_follow_the_weights_and_step_count(encoder_family):
    _, encoder_config, feature_extractor = encoder_family
    model = make_model(encoder_config)
    inputs = features(feature_extractor, [tone(300.0)])
    with torch.enable_grad():  # autograd on: no cache, the reference
        reference = model(**inputs, num_inference_steps=3).logits.detach()
    with torch.inference_mode():
        first = model(**inputs, num_inference_steps=3).logits
        assert model(**inputs, num_inference_steps=2).logits.shape == first.shape  # another step count, another key
        cached = model(**inputs, num_inference_steps=3).logits
    torch.testing.assert_close(first, reference)
    assert torch.equal(cached, first)
    with torch.no_grad():
        model.denoiser.time_embedding.linear_1.weight.mul_(3.0)  # an in-place update, as an optimiser makes
        changed = model(**inputs, num_inference_steps=3).logits
    with torch.enable_grad():
        expected = model(**inputs, num_inference_steps=3).logits.detach()
    torch.testing.assert_close(changed, expected)
    assert not torch.allclose(changed, first)


def test_padding_frames_are_left_out_of_the_pooling():
    from conftest import tiny_wav2vec2_config
    from transformers import Wav2Vec2FeatureExtractor

    model = make_model(tiny_wav2vec2_config())
    extractor = Wav2Vec2FeatureExtractor(return_attention_mask=True)
    short = tone(500.0, seconds=0.5)
    with torch.no_grad():
        padded = model.pooled_layer_features(**_as_inputs(features(extractor, [short, tone(500.0, seconds=1.0)])))
        alone = model.pooled_layer_features(**_as_inputs(features(extractor, [short])))
        unmasked = model.pooled_layer_features(
            features(extractor, [short, tone(500.0, seconds=1.0)])["input_values"], attention_mask=None
        )
    torch.testing.assert_close(padded[0], alone[0], atol=2e-3, rtol=1e-3)
    assert not torch.allclose(unmasked[0], alone[0], atol=2e-3, rtol=1e-3)


def _as_inputs(batch):
    return {"inputs": batch["input_values"], "attention_mask": batch["attention_mask"]}


def test_frozen_encoder_gets_no_gradient_and_stays_in_eval_mode():
    from conftest import tiny_wav2vec2_config

    model = make_model(tiny_wav2vec2_config()).train()
    assert not model.encoder.training and model.denoiser.training
    output = model(input_values=torch.randn(2, 8000), labels=torch.tensor([0, 2]))
    output.loss.backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert model.denoiser.out_proj.weight.grad is not None and model.conditioner.layer_weights.grad is not None
    assert output.logits is None  # training mode computes the loss only
    assert model(input_values=torch.randn(1, 8000), labels=torch.tensor([1])).loss.isfinite()  # a batch of one
    unfrozen = make_model(tiny_wav2vec2_config(), freeze_encoder=False).train()
    unfrozen(input_values=torch.randn(2, 8000), labels=torch.tensor([0, 2])).loss.backward()
    assert any(p.grad is not None for p in unfrozen.encoder.parameters())


@pytest.mark.parametrize("initial_distribution", ["gaussian", "condition", "prior"])
def test_training_on_a_toy_task_lowers_the_loss_and_beats_chance(encoder_family, initial_distribution):
    """Three tone classes through a frozen random encoder: the head must learn them from cached features."""
    _, encoder_config, feature_extractor = encoder_family
    model = make_model(encoder_config, initial_distribution=initial_distribution, head_dropout=0.0)
    labels = torch.tensor([c for c in FREQUENCIES for _ in range(8)])
    held_out = torch.tensor([c for c in FREQUENCIES for _ in range(4)])
    with torch.no_grad():
        train_features = model.pooled_layer_features(
            **_encoder_inputs(features(feature_extractor, [tone(FREQUENCIES[int(c)], 0.5, seed=i) for i, c in enumerate(labels)]))
        )
        test_features = model.pooled_layer_features(
            **_encoder_inputs(features(feature_extractor, [tone(FREQUENCIES[int(c)], 0.5, seed=100 + i) for i, c in enumerate(held_out)]))
        )
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    torch.manual_seed(0)
    model.train()
    losses = []
    for _ in range(150):
        loss = model(pooled_layer_features=train_features, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        accuracy = (model(pooled_layer_features=test_features).logits.argmax(-1) == held_out).float().mean().item()
    assert sum(losses[-10:]) / 10 < 0.5 * sum(losses[:10]) / 10
    assert accuracy >= 0.6, f"held-out accuracy {accuracy:.2f} (chance 0.33)"


def _encoder_inputs(batch):
    name = "input_values" if "input_values" in batch else "input_features"
    return {"inputs": batch[name], "attention_mask": batch["attention_mask"]}


def test_missing_inputs_and_bad_config_are_explained():
    from conftest import tiny_wav2vec2_config

    model = make_model(tiny_wav2vec2_config())
    with pytest.raises(ValueError, match="input_values"):
        model()
    with pytest.raises(ValueError, match="pooling"):
        GenSERConfig(pooling="max")
    with pytest.raises(ValueError, match="initial_distribution"):
        GenSERConfig(initial_distribution="uniform")
    with pytest.raises(ValueError, match="target_loss"):
        GenSERConfig(target_loss="l1")


def test_a_misspelt_config_field_is_an_error_and_the_ecosystems_own_keys_pass(tmp_path):
    with pytest.raises(ValueError, match="no field 'domain_normalisation' \\(did you mean 'domain_normalization'\\?\\)"):
        GenSERConfig(domain_normalisation=True)
    config = GenSERConfig(custom_pipelines={}, auto_map={}, id2label=LABELS, label2id={v: k for k, v in LABELS.items()})
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**saved, "initial_distributon": "prior"}))
    with pytest.raises(ValueError, match="'initial_distributon' \\(did you mean 'initial_distribution'"):
        AutoConfig.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(saved))
    assert AutoConfig.from_pretrained(tmp_path).custom_pipelines == {}
    with pytest.raises(ValueError, match="did you mean 'label_sets'"):
        GenSERConfig.from_pretrained(tmp_path, label_set={"a": ["x", "y"]})


def test_similarity_loss_term_adds_a_cross_entropy_on_the_code_similarities():
    from conftest import tiny_wav2vec2_config

    features, labels = torch.randn(4, 3, 32), torch.tensor([0, 1, 2, 1])
    losses = {}
    for weight in (0.0, 1.0):
        model = make_model(tiny_wav2vec2_config(), similarity_loss_weight=weight, head_dropout=0.0).train()
        torch.manual_seed(1)  # the same bridge draws for both
        losses[weight] = model(pooled_layer_features=features, labels=labels).loss.item()
    assert losses[1.0] > losses[0.0] + 0.1  # cross-entropy over 3 classes of an untrained head is about ln 3


def test_cosine_target_loss_value_and_gradient_on_hand_made_vectors():
    prediction = torch.tensor([[1.0, 1.0], [0.0, 3.0]], requires_grad=True)
    target = torch.tensor([[1.0, 0.0], [2.0, 0.0]])
    loss = cosine_target_loss(prediction, target)
    # Row 1: 1 - cos 45° = 1 - 1/sqrt(2); row 2: orthogonal, 1 - 0 = 1; the batch mean of both.
    torch.testing.assert_close(loss, torch.tensor((1 - 2**-0.5 + 1) / 2))
    loss.backward()
    # d(1 - p.t / (|p||t|)) / dp = -(t / (|p||t|) - (p.t) p / (|p|^3 |t|)), halved by the batch mean.
    root2 = 2**0.5
    expected = torch.tensor([[-1 / (2 * root2), 1 / (2 * root2)], [-1 / 3, 0.0]]) / 2
    torch.testing.assert_close(prediction.grad, expected)
    # Blind to the prediction's norm, as the cosine decision is.
    torch.testing.assert_close(cosine_target_loss(5 * prediction.detach(), target), loss.detach())


def test_cosine_target_loss_is_what_the_model_trains_with():
    from conftest import tiny_wav2vec2_config

    # Gaussian start: the loss is then the cosine alone, without the prior's cross-entropy.
    model = make_model(tiny_wav2vec2_config(), target_loss="cosine", initial_distribution="gaussian")  # eval mode
    condition, labels = model.conditioner(torch.randn(4, 3, 32)), torch.tensor([0, 1, 2, 1])
    torch.manual_seed(1)
    loss = model.target_matching_loss(condition, labels)
    torch.manual_seed(1)  # the same draws, by hand
    terminal = model.class_codes[labels]
    initial = model.initial_sample(condition, torch.randn_like(terminal))
    timesteps = torch.rand(4)
    sample = model.scheduler.add_noise(terminal, torch.randn_like(terminal), timesteps, initial)
    torch.testing.assert_close(loss, cosine_target_loss(model.denoiser(sample, timesteps, condition), terminal))


def test_prior_start_is_the_expected_code_and_learns_from_its_own_cross_entropy_only():
    from conftest import tiny_wav2vec2_config

    features, labels = torch.randn(6, 3, 32), torch.tensor([0, 1, 2, 1, 0, 2])
    model = make_model(tiny_wav2vec2_config(), initial_distribution="prior", initial_noise_scale=0.0)
    condition = model.conditioner(features)
    with torch.no_grad():
        expected = model.prior(condition).softmax(-1) @ model.class_codes
    torch.testing.assert_close(model.initial_sample(condition, torch.randn(1, model.config.encoding_dim)), expected)

    grads = {}
    for weight in (0.0, 1.0):
        model = make_model(tiny_wav2vec2_config(), initial_distribution="prior", prior_loss_weight=weight).train()
        model(pooled_layer_features=features, labels=labels).loss.backward()
        grads[weight] = model.prior.weight.grad
    assert grads[0.0] is None or not grads[0.0].any()  # the target-matching loss never reaches the prior
    assert grads[1.0].abs().sum() > 0


def test_an_encoder_that_cannot_be_found_is_a_clear_error_and_a_saved_config_names_no_local_path(tmp_path):
    with pytest.raises(OSError, match="Could not load the speech encoder .*neither a local directory"):
        GenSERForAudioClassification.from_encoder(str(tmp_path / "no-such-encoder"), {0: "a", 1: "b"})
    encoder_dir = tmp_path / "my-encoder"
    WhisperModel(tiny_whisper_config()).save_pretrained(encoder_dir)
    model = GenSERForAudioClassification.from_encoder(str(encoder_dir), {0: "a", 1: "b"})
    model.save_pretrained(tmp_path / "saved")
    saved = (tmp_path / "saved" / "config.json").read_text()
    assert str(tmp_path) not in saved and json.loads(saved)["encoder_name_or_path"] == "my-encoder"


def test_a_saved_model_carries_no_text_generation_config(tmp_path):
    """Sampling lives in a mixin, but the model is no transformers text generator: no `generate`, no
    `generation_config.json` beside its weights."""
    model = GenSERForAudioClassification(GenSERConfig(encoder_config=tiny_whisper_config(), id2label={0: "a", 1: "b"}))
    assert not model.can_generate()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "config.json").exists() and not (tmp_path / "generation_config.json").exists()
