# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""`torch.export` and ONNX export of Gen-SER's whole inference path: encoder (once), pooling, condition, bridge
sampling at a fixed step count, similarities to the class codes.

A `torch.Generator` cannot be traced, so the exported program takes the sampling draws as a second input;
`GenSERInference.default_noise()` gives the draws `GenSERForAudioClassification` uses by default, which makes the
exported program and the PyTorch model agree. The program is traced for one input shape and without an attention
mask: give it one clip's features (Whisper: its real mel frames, not the 30 s padding), or a batch of clips of that
exact length.

    program = export_genser(model, example_inputs)
    logits = program.module()(inputs, GenSERInference(model).default_noise())

    export_onnx(model, example_inputs, "gen-ser.onnx")  # inputs "inputs" and "noise", output "logits"
"""

from pathlib import Path

import torch
from torch import nn

from .modeling_genser import GenSERForAudioClassification


class GenSERInference(nn.Module):
    """`GenSERForAudioClassification`'s inference at a fixed step count, with the sampling draws as an input.

    Args:
        model ([`GenSERForAudioClassification`]): the model (put in eval mode).
        num_inference_steps (`int`, *optional*): sampling steps; defaults to `config.num_inference_steps`.
    """

    def __init__(self, model: GenSERForAudioClassification, num_inference_steps: int | None = None):
        super().__init__()
        self.model = model.eval()
        self.num_inference_steps = (
            model.config.num_inference_steps if num_inference_steps is None else num_inference_steps
        )

    def default_noise(self) -> torch.Tensor:
        """The draws the model samples with by default: `(num_inference_steps + 1, encoding_dim)`."""
        return self.model.sampling_noise(self.num_inference_steps)

    def forward(self, inputs: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """
        Args:
            inputs (`torch.Tensor`): the encoder's main input, `(batch_size, num_samples)` waveforms or
                `(batch_size, num_mel_bins, num_frames)` features, all real (no padding).
            noise (`torch.Tensor` of shape `(num_inference_steps + 1, encoding_dim)`): the sampling draws.
        Returns:
            `torch.Tensor` of shape `(batch_size, num_labels)`: the logits.
        """
        condition = self.model.conditioner(self.model.pooled_layer_features(inputs))
        trajectory = self.model.generate_codes(condition, self.num_inference_steps, noise=noise)
        return self.model.logits_of(trajectory[:, -1])


def export_genser(
    model: GenSERForAudioClassification, example_inputs: torch.Tensor, num_inference_steps: int | None = None
) -> torch.export.ExportedProgram:
    """Exports the full inference path for inputs shaped like `example_inputs` (see the module docstring)."""
    module = GenSERInference(model, num_inference_steps)
    with torch.no_grad():
        return torch.export.export(module, (example_inputs, module.default_noise()), strict=False)


def export_onnx(
    model: GenSERForAudioClassification,
    example_inputs: torch.Tensor,
    path: str | Path,
    num_inference_steps: int | None = None,
) -> torch.onnx.ONNXProgram:
    """Exports the same inference path as [`export_genser`] to an ONNX file at `path` with
    `torch.onnx.export(..., dynamo=True)` (needs `onnx` and `onnxscript`), for inputs shaped like `example_inputs`.

    The graph's inputs are `inputs` (the encoder's main input) and `noise` (`GenSERInference.default_noise()` for
    the model's own draws); its output is `logits`, `(batch_size, num_labels)`. Run it with onnxruntime:
    `InferenceSession(path).run(None, {"inputs": ..., "noise": ...})`.
    """
    module = GenSERInference(model, num_inference_steps)
    with torch.no_grad():
        program = torch.onnx.export(
            module,
            (example_inputs, module.default_noise()),
            dynamo=True,
            input_names=["inputs", "noise"],
            output_names=["logits"],
        )
    program.save(str(path))
    return program
