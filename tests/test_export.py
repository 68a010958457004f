"""`torch.export` and the ONNX export of the full inference path agree with the PyTorch model."""

import numpy as np
import onnxruntime
import pytest
import torch

from conftest import SAMPLING_RATE, tone
from modeling_genser import GenSERConfig, GenSERForAudioClassification
from modeling_genser.export_genser import GenSERInference, export_genser, export_onnx

LABELS = {0: "anger", 1: "happiness", 2: "neutral"}


def real_inputs(name, extractor, clips):
    batch = extractor(clips, sampling_rate=SAMPLING_RATE, return_tensors="pt")
    inputs = batch["input_values" if name == "wav2vec2" else "input_features"]
    # Whisper's extractor pads to 30 s: keep the real mel frames only (100 per second).
    return inputs if name == "wav2vec2" else inputs[..., : int(len(clips[0]) / SAMPLING_RATE * 100)]


@pytest.mark.parametrize("num_inference_steps", [1, 3])
def test_exported_program_matches_the_model(encoder_family, num_inference_steps):
    name, encoder_config, extractor = encoder_family
    torch.manual_seed(0)
    config = GenSERConfig(
        encoder_config=encoder_config, id2label=LABELS, label2id={v: k for k, v in LABELS.items()},
        num_inference_steps=num_inference_steps,
    )
    model = GenSERForAudioClassification(config).eval()
    example = real_inputs(name, extractor, [tone(300.0, seconds=1.0)])
    program = export_genser(model, example)
    noise = GenSERInference(model).default_noise()

    for clip in (tone(300.0, seconds=1.0), tone(650.0, seconds=1.0, seed=3)):
        inputs = real_inputs(name, extractor, [clip])
        with torch.no_grad():
            expected = model(**{model.main_input_name: inputs}).logits
        assert torch.allclose(program.module()(inputs, noise), expected, atol=1e-5)
    other_noise = torch.randn_like(noise)
    with torch.no_grad():
        expected = GenSERInference(model)(inputs, other_noise)
    assert torch.allclose(program.module()(inputs, other_noise), expected, atol=1e-5)


@pytest.mark.parametrize("num_inference_steps", [1, 4])
def test_onnx_export_matches_the_model_under_onnxruntime(encoder_family, num_inference_steps, tmp_path):
    name, encoder_config, extractor = encoder_family
    torch.manual_seed(0)
    config = GenSERConfig(encoder_config=encoder_config, id2label=LABELS, label2id={v: k for k, v in LABELS.items()})
    model = GenSERForAudioClassification(config).eval()
    export_onnx(model, real_inputs(name, extractor, [tone(300.0, seconds=1.0)]), tmp_path / "gen-ser.onnx", num_inference_steps)
    session = onnxruntime.InferenceSession(str(tmp_path / "gen-ser.onnx"))
    assert [i.name for i in session.get_inputs()] == ["inputs", "noise"]

    noise = GenSERInference(model, num_inference_steps).default_noise()
    for clip in (tone(300.0, seconds=1.0), tone(650.0, seconds=1.0, seed=3)):
        inputs = real_inputs(name, extractor, [clip])
        with torch.no_grad():
            expected = model(**{model.main_input_name: inputs}, num_inference_steps=num_inference_steps).logits.numpy()
        (logits,) = session.run(None, {"inputs": inputs.numpy(), "noise": noise.numpy()})
        np.testing.assert_allclose(logits, expected, atol=1e-4)
