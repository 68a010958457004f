# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Sampling Gen-SER: the bridge run from the initial distribution to the terminal one, given the condition, and the
logits read off its terminal samples (averaged over several initial samples when asked).

Kept apart from the model's definition as transformers keeps Whisper's generation (`generation_whisper.py`).
"""

import math

import torch
from diffusers.utils.torch_utils import randn_tensor
from transformers.utils import ModelOutput


class GenSERSamplingMixin:
    """Sampling for `GenSERForAudioClassification`: uses its `scheduler`, `denoiser`, `initial_sample` and code book.

    Not named `...GenerationMixin`: transformers' `can_generate` looks for that name among a model's bases and would
    then give the model a text-generation config it has no use for."""

    def sampling_generator(self) -> torch.Generator:
        """The default source of inference draws: a generator seeded with `config.sampling_seed`.

        A CPU generator, whatever the model's device: the draws are a few vectors per clip, and CUDA's generator
        gives other numbers for the same seed, so one seed gives the same predictions on every device."""
        return torch.Generator().manual_seed(self.config.sampling_seed)

    def sampling_noise(
        self,
        num_inference_steps: int,
        generator: torch.Generator | None = None,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """The draws of one sampling run, `(num_inference_steps + 1, encoding_dim)`, from `generator` (default:
        [`~GenSERForAudioClassification.sampling_generator`])."""
        device = device if device is not None else self.device
        generator = generator if generator is not None else self.sampling_generator()
        shape = (num_inference_steps + 1, self.config.encoding_dim)
        return randn_tensor(shape, generator=generator, device=device, dtype=dtype or self.dtype)

    def generate_codes(
        self,
        condition: torch.Tensor,
        num_inference_steps: int | None = None,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
        domain_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Runs the bridge from the initial distribution to the terminal one.

        Every draw (initial sample, step noise) is one vector shared by the whole batch, so a clip's prediction
        does not depend on what it is batched with. Without `noise` or a `generator`, draws come from
        [`~GenSERForAudioClassification.sampling_generator`], so inference is reproducible.

        Args:
            condition (`torch.Tensor` of shape `(batch_size, condition_dim)`)
            noise (`torch.Tensor` of shape `(num_inference_steps + 1, encoding_dim)`, *optional*):
                The draws themselves, standard Gaussian: the initial sample's, then each step's posterior noise.
            domain_ids (`torch.LongTensor` of shape `(batch_size,)`, *optional*): see `forward`.
        Returns:
            `torch.Tensor` of shape `(batch_size, num_inference_steps + 1, encoding_dim)`: the trajectory, whose
            last entry is the generated vector.
        """
        if num_inference_steps is None:
            num_inference_steps = self.config.num_inference_steps
        # The grid and embeddings of the schedule are local to this call (the scheduler has no state to set), so one
        # model can sample in several threads at once.
        times = self.scheduler.time_grid_for(num_inference_steps, condition.device)[:-1].to(condition.dtype)
        num_inference_steps = times.shape[0]
        if noise is None:
            noise = self.sampling_noise(num_inference_steps, generator, condition.device, condition.dtype)
        elif noise.shape != (num_inference_steps + 1, self.config.encoding_dim):
            raise ValueError(
                f"noise must have shape (num_inference_steps + 1, encoding_dim) = "
                f"{(num_inference_steps + 1, self.config.encoding_dim)}, got {tuple(noise.shape)}."
            )
        sample = self.initial_sample(condition, noise[:1], domain_ids=domain_ids)
        trajectory = [sample]
        # Condition and time embeddings do not change between steps: (batch, steps, hidden), computed once.
        embeddings = self.denoiser.condition_proj(condition)[:, None] + self.schedule_time_embeddings(times)[None]
        for index in range(num_inference_steps):
            prediction = self.denoiser.denoise(sample, embeddings[:, index])
            # The step's times as Python floats (exact fractions), so that its coefficients trace as constants.
            sample = self.scheduler.step(
                prediction, index / num_inference_steps, sample, variance_noise=noise[index + 1 : index + 2],
                next_timestep=(index + 1) / num_inference_steps,
            ).prev_sample  # fmt: skip
            trajectory.append(sample)
        return torch.stack(trajectory, dim=1)

    def schedule_time_embeddings(self, times: torch.Tensor) -> torch.Tensor:
        """The denoiser's embeddings of a schedule's `(num_inference_steps,)` times: `(num_inference_steps, hidden)`.

        They depend on the time-embedding weights and the step count only, so at inference they are computed once
        and reused until a weight changes (a new tensor or an in-place update moves the key): on a single short clip
        they are a large share of the head's time. With autograd on, or while tracing for export, they are
        recomputed. The cache is one (key, embeddings) tuple, read and replaced whole, so threads never see a key with
        another key's embeddings.
        """
        if torch.is_grad_enabled() or torch.compiler.is_compiling() or torch.compiler.is_exporting():
            return self.denoiser.embed_time(times)
        weights = self.denoiser.time_embedding.parameters()
        key = (times.shape[0], times.device, times.dtype, *((weight.data_ptr(), weight._version) for weight in weights))
        cached_key, embeddings = self._time_embedding_cache
        if cached_key != key:
            embeddings = self.denoiser.embed_time(times)
            self._time_embedding_cache = (key, embeddings)
        return embeddings

    def sample_trajectories(
        self,
        condition: torch.Tensor,
        num_inference_steps: int | None,
        generator: torch.Generator | None,
        num_samples: int,
        domain_ids: torch.Tensor | None,
    ) -> list[torch.Tensor]:
        """`num_samples` bridge runs from `condition`, their initial samples drawn one after the other from
        `generator` (default: [`~GenSERForAudioClassification.sampling_generator`]): a list of
        `(batch_size, num_inference_steps + 1, encoding_dim)` trajectories."""
        if not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}.")
        generator = generator if generator is not None else self.sampling_generator()
        return [
            self.generate_codes(condition, num_inference_steps, generator, domain_ids=domain_ids)
            for _ in range(num_samples)
        ]

    def logits_of_samples(
        self, generated: list[torch.Tensor]
    ) -> tuple[torch.Tensor, ModelOutput | None, torch.Tensor | None]:
        """`forward`'s `logits`, `task_logits` and `sample_logits` from each sample's generated vectors
        (`(batch_size, encoding_dim)` each): dimensional values averaged over the samples; else each task's log of
        the samples' mean softmax (the logits themselves for one sample), and the first task's logits per sample."""
        if self.is_dimensional:
            return torch.stack([self.read_values(vectors) for vectors in generated]).mean(0), None, None
        per_sample = [self.task_logits(vectors) for vectors in generated]
        task_logits, sample_logits = {}, None
        for index, task in enumerate(per_sample[0]):
            stacked = torch.stack([logits[task] for logits in per_sample], dim=1)  # (batch, samples, labels)
            if len(generated) == 1:
                task_logits[task] = stacked[:, 0]
            else:
                task_logits[task] = stacked.log_softmax(-1).logsumexp(dim=1) - math.log(len(generated))
                if index == 0:  # `logits` and `sample_logits` are the first task's
                    sample_logits = stacked
        logits = next(iter(task_logits.values()))
        return logits, (ModelOutput(task_logits) if self.config.label_sets else None), sample_logits
