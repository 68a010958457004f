# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""The speech encoder under Gen-SER: any transformers speech model's encoder, with what each kind needs to give
every layer's frames of a clip's real input and pool them.

Whisper's attention has no padding mask and its `forward` takes 30 s of input only, so it is run layer by layer
at the clip's own length (`whisper_hidden_states`); wav2vec2-style encoders take an attention mask. The top
layers can also run alone on cached lower-layer frames (`pooled_features_from_frames`), which is how the top
layers train on a frame cache. The model (`modeling_genser.py`) and the baseline heads both use these functions;
`GenSERSpeechEncoderMixin` is how the model runs its encoder with them.
"""

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedConfig, PreTrainedModel
from transformers.models.whisper.modeling_whisper import WhisperEncoder


def whisper_input_stride(encoder: WhisperEncoder) -> int:
    """Mel frames per encoder frame (2 for every Whisper size)."""
    return encoder.conv1.stride[0] * encoder.conv2.stride[0]


def whisper_hidden_states(
    encoder: WhisperEncoder, input_features: torch.Tensor, attention_mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, ...]:
    """`WhisperEncoder`'s hidden states for `(batch_size, num_mel_bins, num_frames)` features of any length up to its
    3000 frames (30 s): the embedding output, then every layer's output, the last through the final layer norm.

    `WhisperEncoder.forward` refuses anything but 3000 frames and masks nothing, so padding would enter the real
    frames' context. This runs the encoder's own modules, as its `forward` does, with the first `num_frames // 2`
    position embeddings: nothing of the encoder is changed for the call, so other threads can use it at the same time.
    With `attention_mask` (`(batch_size, num_frames)`, 1 for a clip's mel frames), each clip's frames past its
    `trimmed_lengths` are zeroed (the convolutions' own padding at that length) and masked out of attention, so a clip
    of a padded batch gets the hidden states it has alone at its own length: clips of any lengths batch together.
    """
    num_positions = input_features.shape[-1] // whisper_input_stride(encoder)
    if num_positions > encoder.embed_positions.num_embeddings:
        raise ValueError(
            f"Whisper input of {input_features.shape[-1]} mel frames is longer than the encoder's "
            f"{encoder.embed_positions.num_embeddings * whisper_input_stride(encoder)}; classify longer audio in windows."
        )
    key_mask = None
    if attention_mask is not None:
        lengths = trimmed_lengths(encoder, attention_mask)
        positions = torch.arange(input_features.shape[-1], device=input_features.device)
        input_features = input_features * (positions[None] < lengths[:, None])[:, None].to(input_features.dtype)
        frame_lengths = lengths // whisper_input_stride(encoder)
        padding = torch.arange(num_positions, device=lengths.device)[None] >= frame_lengths[:, None]
        # An additive mask, (batch, 1, 1, keys): a padding key's weight is exactly zero after the softmax.
        key_mask = torch.zeros(padding.shape, dtype=input_features.dtype, device=padding.device)
        key_mask = key_mask.masked_fill(padding, torch.finfo(input_features.dtype).min)[:, None, None]
    embeddings = nn.functional.gelu(encoder.conv2(nn.functional.gelu(encoder.conv1(input_features)))).permute(0, 2, 1)
    hidden = embeddings + encoder.embed_positions.weight[:num_positions]
    hidden = nn.functional.dropout(hidden, p=encoder.dropout, training=encoder.training)
    hidden_states = [hidden]
    for layer in encoder.layers:
        # Layer drop, as in the encoder's forward; a dropped layer passes its input on, so every layer has a state.
        if not (encoder.training and encoder.layerdrop > 0 and torch.rand([]) < encoder.layerdrop):
            hidden = layer(hidden, key_mask)
        hidden_states.append(hidden)
    hidden_states[-1] = encoder.layer_norm(hidden_states[-1])
    return tuple(hidden_states)


def strided_frame_mask(attention_mask: torch.Tensor, num_frames: int) -> torch.Tensor:
    """`(batch_size, num_frames)` booleans marking the frames of real input, for frames evenly strided over the
    `(batch_size, input_length)` `attention_mask` (1 for real input)."""
    frame_lengths = torch.ceil(attention_mask.sum(-1) * num_frames / attention_mask.shape[-1])
    return torch.arange(num_frames, device=attention_mask.device)[None] < frame_lengths[:, None]


def pool_frames(hidden_states: tuple | list, frame_mask: torch.Tensor | None, pooling: str) -> torch.Tensor:
    """Each layer's frames pooled over the real ones (`frame_mask`, `(batch_size, num_frames)`; None: all frames).

    Args:
        hidden_states: one `(batch_size, num_frames, hidden_size)` tensor per layer.
        pooling: `"mean"`, or `"mean_std"` (mean and standard deviation concatenated).
    Returns:
        `torch.Tensor` of shape `(batch_size, num_layers, hidden_size)` (twice `hidden_size` for `"mean_std"`).
    """
    if frame_mask is None:
        # Every frame is real: a plain mean, without building weights (a fixed cost on every single-clip call).
        def average(frames):
            return frames.mean(dim=1)

    else:
        # Pooling weights, (batch, 1, frames): a matmul per layer pools without copying the hidden states.
        weights = frame_mask[:, None, :].to(hidden_states[0].dtype)
        weights = weights / weights.sum(-1, keepdim=True).clamp(min=1)

        def average(frames):
            return (weights @ frames).squeeze(1)

    means = [average(layer) for layer in hidden_states]
    pooled = torch.stack(means, dim=1)
    if pooling == "mean":
        return pooled
    variances = [average((layer - mean[:, None]) ** 2) for layer, mean in zip(hidden_states, means)]
    return torch.cat([pooled, torch.stack(variances, dim=1).clamp(min=1e-8).sqrt()], dim=-1)


def encoder_layers(encoder: PreTrainedModel) -> tuple[nn.ModuleList, nn.Module | None]:
    """A speech encoder's transformer layers, and the norm that its last hidden state passes through after them
    (Whisper's `layer_norm`; wav2vec2-style encoders report the last layer's raw output as that hidden state)."""
    if isinstance(encoder, WhisperEncoder):
        return encoder.layers, encoder.layer_norm
    layers = getattr(getattr(encoder, "encoder", None), "layers", None)
    if not isinstance(layers, nn.ModuleList):
        raise ValueError(
            f"trainable_encoder_layers needs the encoder's transformer layers, which {type(encoder).__name__} does not "
            "keep where Whisper and wav2vec2-style encoders do (`layers` or `encoder.layers`); use freeze_encoder "
            "alone with this encoder."
        )
    return layers, None


def top_encoder_layers(encoder: PreTrainedModel, count: int) -> tuple[nn.ModuleList, nn.Module | None]:
    """The top `count` transformer layers of a speech encoder, and the norm after them (see `encoder_layers`)."""
    layers, final_norm = encoder_layers(encoder)
    if count > len(layers):
        raise ValueError(f"trainable_encoder_layers is {count}, but the encoder has only {len(layers)} layers.")
    return layers[len(layers) - count :], final_norm


def pooled_features_from_frames(
    layers,
    final_norm: nn.Module | None,
    frames: torch.Tensor,
    frame_mask: torch.Tensor,
    lower_pooled_layer_features: torch.Tensor,
    pooling: str,
) -> torch.Tensor:
    """Runs the top encoder `layers` on cached lower-layer frames and completes the pooled layers below them:
    `(batch_size, num_layers, width)`, as `pooled_layer_features` gives on the audio.

    One clip at a time over its real frames only, as the encoder ran the clip (Whisper's layers take no padding
    mask); on CPU a clip's layer is far heavier than a call, so the loop costs little.

    Args:
        frames (`torch.Tensor` of shape `(batch_size, num_frames, hidden_size)`): each clip's frames first, then padding.
        frame_mask (`torch.Tensor` of shape `(batch_size, num_frames)`): 1 for real frames.
        lower_pooled_layer_features (`torch.Tensor` of shape `(batch_size, num_layers - len(layers), width)`)
    """
    pooled = []
    for clip, length in zip(frames, frame_mask.sum(-1).tolist()):
        hidden, outputs = clip[None, : int(length)], []
        for layer in layers:
            hidden = layer(hidden, None)
            if isinstance(hidden, tuple):
                raise ValueError(
                    f"{type(layer).__name__} returns more than hidden states (WavLM's layers share a position bias "
                    "from the first layer), so its top layers cannot run on cached frames: train with "
                    "--use_feature_cache false instead."
                )
            outputs.append(hidden)
        if final_norm is not None:
            outputs[-1] = final_norm(outputs[-1])
        pooled.append(pool_frames(outputs, None, pooling))
    return torch.cat([lower_pooled_layer_features, torch.cat(pooled)], dim=1)


def build_speech_encoder(encoder_config) -> PreTrainedModel:
    """The encoder part of any transformers speech model, randomly initialised from its config."""
    model = AutoModel.from_config(encoder_config)
    return model.get_encoder() if encoder_config.is_encoder_decoder else model


def load_speech_encoder(name_or_path: str) -> tuple[PreTrainedModel, PreTrainedConfig]:
    """The encoder part of a pretrained transformers speech model (Hub id or local directory), and the model's
    config with the local directory it was read from left out (a saved Gen-SER config names no path of this machine).
    """
    try:
        config = AutoConfig.from_pretrained(name_or_path)
        model = AutoModel.from_pretrained(name_or_path)
    except (OSError, ValueError) as error:
        raise OSError(
            f"Could not load the speech encoder {str(name_or_path)!r}: it is neither a local directory holding a "
            "transformers model (config.json and weights) nor a Hub model id that can be reached (e.g. "
            f"'openai/whisper-tiny.en'). Check the path or id, or run online once to fill the Hub cache. ({error})"
        ) from None
    config._name_or_path = ""
    return (model.get_encoder() if config.is_encoder_decoder else model), config


def real_frame_mask(encoder: PreTrainedModel, attention_mask: torch.Tensor | None, num_frames: int) -> torch.Tensor | None:
    """Which of `encoder`'s frames come from real audio rather than padding: `(batch_size, num_frames)` booleans,
    for the `(batch_size, input_length)` `attention_mask` of its input (None: every frame is real)."""
    if attention_mask is None:
        return None
    if hasattr(encoder, "_get_feature_vector_attention_mask"):  # wav2vec2-style convolutional front ends
        return encoder._get_feature_vector_attention_mask(num_frames, attention_mask).bool()
    return strided_frame_mask(attention_mask, num_frames)  # e.g. Whisper


def input_mask(inputs: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """`attention_mask` over the input's last axis: Whisper's feature extractor masks samples, not mel frames,
    unless `return_attention_mask=True` is passed at call time (setting it on the extractor is not enough)."""
    if attention_mask is None or attention_mask.shape[-1] == inputs.shape[-1]:
        return attention_mask
    return strided_frame_mask(attention_mask, inputs.shape[-1]).to(attention_mask.dtype)


def trimmed_lengths(encoder: PreTrainedModel, attention_mask: torch.Tensor) -> torch.Tensor:
    """Each clip's real input length, rounded up to `encoder`'s input stride: `(batch_size,)`."""
    stride = whisper_input_stride(encoder) if isinstance(encoder, WhisperEncoder) else 1
    lengths = (attention_mask.sum(-1) + stride - 1) // stride * stride
    return lengths.clamp(min=stride, max=attention_mask.shape[-1])


def encoder_hidden_states(
    encoder: PreTrainedModel, inputs: torch.Tensor, attention_mask: torch.Tensor | None
) -> tuple[torch.Tensor, ...]:
    """`encoder`'s hidden states of every layer for its main input `inputs`, `(batch_size, num_frames, hidden_size)`
    each (Whisper's at the input's own length, see `whisper_hidden_states`)."""
    if isinstance(encoder, WhisperEncoder):
        return whisper_hidden_states(encoder, inputs, attention_mask)
    return encoder(inputs, attention_mask=attention_mask, output_hidden_states=True).hidden_states


class GenSERSpeechEncoderMixin:
    """How a Gen-SER model (`self.encoder`, `self.config`) runs its speech encoder: once per clip, every layer pooled
    over the clip's real frames, with the encoder frozen or its top layers trainable (also from cached frames)."""

    def train(self, mode: bool = True):
        # A frozen encoder also keeps its dropout, layer drop and SpecAugment off, so its features stay fixed; its
        # trainable top layers train with their dropout, as in fine-tuning.
        super().train(mode)
        if self.config.freeze_encoder:
            self.encoder.eval()
            for module in self.trainable_encoder_modules():
                module.train(mode)
        return self

    @property
    def encoder_trains(self) -> bool:
        """Whether any encoder weight trains (so the encoder must run with gradients in training)."""
        return not self.config.freeze_encoder or self.config.trainable_encoder_layers > 0

    def trainable_encoder_modules(self) -> list[nn.Module]:
        """The encoder's top `config.trainable_encoder_layers` layers, and Whisper's final layer norm with them:
        what trains in an otherwise frozen encoder."""
        if self.config.trainable_encoder_layers == 0:
            return []
        layers, final_norm = top_encoder_layers(self.encoder, self.config.trainable_encoder_layers)
        return [*layers, *([final_norm] if final_norm is not None else [])]

    def pooled_layer_features(
        self, inputs: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Runs the speech encoder once and pools every layer over its real frames.

        With `config.trim_padding` the encoder never runs on padding: a batch is cut to its longest clip, and its
        attention masks each shorter clip's padding (Whisper's too, see `whisper_hidden_states`), so a clip's
        features do not depend on its batch. Without it, Whisper encodes its 30 s window, padding included, as it
        was trained to.

        Args:
            inputs (`torch.Tensor`): the encoder's main input, `(batch_size, sequence_length)` waveforms or
                `(batch_size, num_mel_bins, num_frames)` features.
            attention_mask (`torch.Tensor` of shape `(batch_size, input_length)`, *optional*): 1 for real input.
        Returns:
            `torch.Tensor` of shape `(batch_size, num_layers, hidden_size)` (twice `hidden_size` for `"mean_std"`).
            Pooling and the weighted layer sum commute, so these features can be cached and fed back as
            `pooled_layer_features`.
        """
        attention_mask = input_mask(inputs, attention_mask)
        if not self.config.trim_padding and isinstance(self.encoder, WhisperEncoder) and attention_mask is not None:
            hidden_states, _ = self._encode(inputs, None)
            frame_mask = real_frame_mask(self.encoder, attention_mask, hidden_states[0].shape[1])
            return pool_frames(hidden_states, frame_mask, self.config.pooling)
        if not self.config.trim_padding or attention_mask is None:
            return self._encode_and_pool(inputs, attention_mask)
        lengths = trimmed_lengths(self.encoder, attention_mask)
        length = int(lengths.max())
        # Clips of one length, cut to it, are all real input: they need no mask (nor the cost of building one).
        if int(lengths.min()) == length:
            return self._encode_and_pool(inputs[..., :length], None)
        return self._encode_and_pool(inputs[..., :length], attention_mask[:, :length])

    def _encode(self, inputs: torch.Tensor, attention_mask: torch.Tensor | None) -> tuple[tuple, torch.Tensor | None]:
        """The encoder's hidden states of every layer, `(batch_size, num_frames, hidden_size)` each, and the
        `(batch_size, num_frames)` mask of real frames (None without `attention_mask`)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.encoder_trains):
            hidden_states = encoder_hidden_states(self.encoder, inputs, attention_mask)
        return hidden_states, real_frame_mask(self.encoder, attention_mask, hidden_states[0].shape[1])

    def _encode_and_pool(self, inputs: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """The encoder's hidden states of every layer, pooled over the real frames: `(batch_size, num_layers, hidden)`."""
        return pool_frames(*self._encode(inputs, attention_mask), self.config.pooling)

    def lower_layer_features(
        self, inputs: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """What the frozen lower layers of a partly trainable encoder (`trainable_encoder_layers` = N > 0) give,
        for the frame cache: each clip's hidden states entering the first trainable layer over its real frames,
        and the pooled layers below it. [`~GenSERForAudioClassification.top_layer_features`] completes them.

        Clips are encoded one at a time at their own length, so no clip's frames depend on its batch.

        Args: as [`~GenSERForAudioClassification.pooled_layer_features`].
        Returns:
            A list of `(num_frames, hidden_size)` tensors, one per clip, and `(batch_size, num_layers - N, width)`.
        """
        count = self.config.trainable_encoder_layers
        if count == 0:
            raise ValueError("lower_layer_features is for trainable_encoder_layers > 0; use pooled_layer_features.")
        if isinstance(self.encoder, WhisperEncoder) and not self.config.trim_padding:
            raise ValueError(
                "Cached frames hold each clip's real frames only, while Whisper without trim_padding attends to its "
                "30 s of padding too: set trim_padding=True to train Whisper's top layers on cached frames."
            )
        attention_mask = input_mask(inputs, attention_mask)
        lengths = [inputs.shape[-1]] * inputs.shape[0] if attention_mask is None else trimmed_lengths(self.encoder, attention_mask).tolist()
        frames, lower = [], []
        for row, length in enumerate(lengths):
            mask = None if attention_mask is None else attention_mask[row : row + 1, :length]
            hidden_states, frame_mask = self._encode(inputs[row : row + 1, ..., :length], mask)
            split = len(hidden_states) - count
            lower.append(pool_frames(hidden_states[:split], frame_mask, self.config.pooling))
            clip = hidden_states[split - 1][0]
            frames.append(clip if frame_mask is None else clip[frame_mask[0]])
        return frames, torch.cat(lower)

    def top_layer_features(
        self, lower_layer_frames: torch.Tensor, frame_mask: torch.Tensor, lower_pooled_layer_features: torch.Tensor
    ) -> torch.Tensor:
        """Runs the trainable top layers on cached lower-layer frames and completes the pooled layers: the same
        `(batch_size, num_layers, width)` as [`~GenSERForAudioClassification.pooled_layer_features`] on the audio.

        Args:
            lower_layer_frames (`torch.Tensor` of shape `(batch_size, num_frames, hidden_size)`): padded frames.
            frame_mask (`torch.Tensor` of shape `(batch_size, num_frames)`): 1 for real frames (each clip's first).
            lower_pooled_layer_features (`torch.Tensor` of shape `(batch_size, num_layers - N, width)`)
        """
        layers, final_norm = top_encoder_layers(self.encoder, self.config.trainable_encoder_layers)
        return pooled_features_from_frames(
            layers, final_norm, lower_layer_frames, frame_mask, lower_pooled_layer_features, self.config.pooling
        )
