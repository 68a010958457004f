# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""The Gen-SER bridge: a diffusers scheduler that carries the initial distribution to the terminal one.

Time runs from ``t = 0`` (initial sample ``x_0``) to ``t = 1`` (terminal sample ``x_1``, a taxonomy code).
The marginal of the bridge is

    x_t = (1 - m(t)) * x_0 + m(t) * x_1 + sqrt(v(t)) * noise,      noise ~ N(0, I)

with the **logistic mean schedule** ``m`` (0 at t=0, 1 at t=1) and the **bridge variance schedule**
``v(t) = sigma**2 * m(t) * (1 - m(t))`` (0 at both ends). This is a Brownian bridge run on the clock ``m(t)``,
so it is Markov and its posterior between two times needs only the current sample and the terminal point:

    x_s | x_t, x_1  ~  N(x_t + r * (x_1 - x_t),  sigma**2 * (m(s) - m(t)) * (1 - m(s)) / (1 - m(t))),
    r = (m(s) - m(t)) / (1 - m(t)).

The network is trained by *target matching*: it predicts ``x_1`` itself from ``(x_t, t, condition)``, so its
regression target is the class code, never a noise sample. ``step`` plugs that prediction into the posterior.
The last step lands on ``s = 1`` where the posterior collapses onto the prediction, so a single step from
``t = 0`` returns the network's prediction from the initial sample, and more steps refine it.
"""

import math
import numbers
from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor


def logistic_mean_schedule(t: float | torch.Tensor, steepness: float) -> float | torch.Tensor:
    """Logistic curve centred at t = 1/2, rescaled to run exactly from m(0) = 0 to m(1) = 1.

    ``steepness -> 0`` gives the linear schedule ``m(t) = t``; larger values keep ``x_t`` near the initial
    sample for longer and move it to the terminal code around the middle of the trajectory. Works on tensors
    (training) and on Python floats (the sampler's step coefficients, which must not depend on tensor values so
    that `torch.export` can trace the sampling loop).
    """
    if steepness <= 0:
        return t
    if isinstance(t, torch.Tensor):
        # The bounds in t's own precision, so that m(0) and m(1) come out exactly 0 and 1.
        low, high = torch.sigmoid(t.new_tensor([-steepness / 2, steepness / 2]))
        return (torch.sigmoid(steepness * (t - 0.5)) - low) / (high - low)
    low, high = 1 / (1 + math.exp(steepness / 2)), 1 / (1 + math.exp(-steepness / 2))
    return (1 / (1 + math.exp(-steepness * (t - 0.5))) - low) / (high - low)


def bridge_variance_schedule(mean: torch.Tensor, sigma: float) -> torch.Tensor:
    """Brownian-bridge variance on the clock of the mean schedule: ``sigma**2 * m * (1 - m)``, zero at both ends."""
    return sigma**2 * mean * (1 - mean)


@dataclass
class GenSERSchedulerOutput(BaseOutput):
    """
    Args:
        prev_sample (`torch.Tensor` of shape `(batch_size, dim)`):
            The sample at the next time of the schedule (diffusers' name; here time moves towards the terminal code).
        pred_original_sample (`torch.Tensor` of shape `(batch_size, dim)`):
            The network's prediction of the terminal sample ``x_1``.
    """

    prev_sample: torch.Tensor
    pred_original_sample: torch.Tensor


class GenSERScheduler(SchedulerMixin, ConfigMixin):
    """Bridge sampler for Gen-SER (see the module docstring for the maths).

    Stateless: `step` reads its arguments and the config only and changes nothing, so sampling loops in several
    threads can share one scheduler. `set_timesteps` makes the schedule a diffusers-style loop iterates over
    (`for t in scheduler.timesteps: sample = scheduler.step(prediction, t, sample).prev_sample`); a loop that holds its
    own grid (`time_grid_for`) passes each step's `next_timestep` instead.

    Args:
        mean_schedule_steepness (`float`, defaults to 8.0):
            Steepness of the logistic mean schedule; 0 gives a linear schedule.
        bridge_sigma (`float`, defaults to 1.0):
            Scale of the bridge variance, ``v(t) = bridge_sigma**2 * m(t) * (1 - m(t))``; 0 makes the bridge
            deterministic.
        sampling_noise_scale (`float`, defaults to 1.0):
            Multiplies the posterior noise that `step` adds (like DDIM's ``eta``); training (`add_noise`) is
            unaffected. 1 samples the bridge; 0 follows its posterior mean, so extra steps refine the prediction
            instead of moving the sample by fresh noise, which can carry it away from a good initial sample.
        num_train_timesteps (`int`, defaults to 1000):
            The scale of the network's time input: the model's denoiser embeds time ``t`` in [0, 1] as
            ``t * num_train_timesteps``, the range of integer diffusion steps diffusers' sinusoidal `Timesteps`
            embedding is designed for (as `FlowMatchEulerDiscreteScheduler` scales its sigmas).
    """

    order = 1
    # diffusers' pipelines scale their initial noise by this. Gen-SER's initial sample is drawn by the model (its
    # `initial_noise_scale` around the initial distribution's mean), so the bridge takes it as given.
    init_noise_sigma = 1.0

    @register_to_config
    def __init__(
        self,
        mean_schedule_steepness: float = 8.0,
        bridge_sigma: float = 1.0,
        sampling_noise_scale: float = 1.0,
        num_train_timesteps: int = 1000,
    ):
        if mean_schedule_steepness < 0 or bridge_sigma < 0 or sampling_noise_scale < 0:
            raise ValueError(
                "GenSERScheduler needs mean_schedule_steepness, bridge_sigma and sampling_noise_scale >= 0, got "
                f"{mean_schedule_steepness}, {bridge_sigma} and {sampling_noise_scale}."
            )
        if num_train_timesteps <= 0:
            raise ValueError(f"GenSERScheduler needs num_train_timesteps > 0, got {num_train_timesteps}.")
        self.set_timesteps(1)

    def mean(self, timesteps: float | torch.Tensor) -> float | torch.Tensor:
        return logistic_mean_schedule(timesteps, self.config.mean_schedule_steepness)

    def variance(self, timesteps: float | torch.Tensor) -> float | torch.Tensor:
        return bridge_variance_schedule(self.mean(timesteps), self.config.bridge_sigma)

    @staticmethod
    def time_grid_for(num_inference_steps: int, device: str | torch.device | None = None) -> torch.Tensor:
        """The ``num_inference_steps + 1`` boundaries of ``num_inference_steps`` equal steps over [0, 1].

        Times are continuous, not quantised; the network is evaluated at every boundary but the terminal time 1. A
        pure function of its arguments, so a sampling loop can hold its own grid rather than the scheduler's.
        """
        if isinstance(num_inference_steps, bool) or not isinstance(num_inference_steps, numbers.Integral):
            raise ValueError(f"num_inference_steps must be a positive integer, got {num_inference_steps!r}.")
        if num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be a positive integer, got {num_inference_steps!r}.")
        return torch.linspace(0.0, 1.0, int(num_inference_steps) + 1, device=device)

    def set_timesteps(self, num_inference_steps: int, device: str | torch.device | None = None):
        """Splits [0, 1] into ``num_inference_steps`` equal steps (`time_grid_for`): ``time_grid`` holds the step
        boundaries and ``timesteps`` the ones the network is evaluated at."""
        self.time_grid = self.time_grid_for(num_inference_steps, device)
        self.num_inference_steps = int(num_inference_steps)
        self.timesteps = self.time_grid[:-1]

    def __len__(self) -> int:
        """The steps of the current schedule: time is continuous, so there is no grid of training timesteps."""
        return self.num_inference_steps

    def add_noise(
        self,
        original_samples: torch.Tensor,
        noise: torch.Tensor,
        timesteps: torch.Tensor,
        initial_samples: torch.Tensor,
    ) -> torch.Tensor:
        """Samples the bridge marginal ``x_t`` between ``initial_samples`` (t=0) and ``original_samples`` (t=1).

        Args:
            original_samples (`torch.Tensor` of shape `(batch_size, dim)`): terminal samples ``x_1`` (class codes).
            noise (`torch.Tensor` of shape `(batch_size, dim)`): standard Gaussian noise.
            timesteps (`torch.Tensor` of shape `(batch_size,)`): times in [0, 1].
            initial_samples (`torch.Tensor` of shape `(batch_size, dim)`): initial samples ``x_0``.
        """
        t = timesteps.to(original_samples.dtype).reshape(-1, *([1] * (original_samples.ndim - 1)))
        m = self.mean(t)
        return (1 - m) * initial_samples + m * original_samples + self.variance(t).sqrt() * noise

    def step_times(self, timestep: float | torch.Tensor) -> tuple[float, float]:
        """The schedule's time `timestep` and the next one, as exact fractions of `set_timesteps`'s step count."""
        steps = self.num_inference_steps
        index = round(float(timestep) * steps)
        if not 0 <= index < steps or abs(index / steps - float(timestep)) > 1e-6:
            raise ValueError(
                f"Timestep {float(timestep)} is not in the schedule {self.timesteps.tolist()}: pass one of "
                "`scheduler.timesteps`, or the step's `next_timestep`."
            )
        return index / steps, (index + 1) / steps

    def step(
        self,
        model_output: torch.Tensor,
        timestep: float | torch.Tensor,
        sample: torch.Tensor,
        generator: torch.Generator | None = None,
        variance_noise: torch.Tensor | None = None,
        return_dict: bool = True,
        next_timestep: float | None = None,
    ) -> GenSERSchedulerOutput | tuple:
        """Moves ``sample`` from time ``timestep`` to ``next_timestep`` along the posterior of the bridge.

        Args:
            model_output (`torch.Tensor` of shape `(batch_size, dim)`): the network's prediction of ``x_1``.
            timestep (`float` or `torch.Tensor`): the current time ``t``.
            sample (`torch.Tensor` of shape `(batch_size, dim)`): the current ``x_t``.
            generator (`torch.Generator`, *optional*): draws the posterior noise when ``variance_noise`` is None.
            variance_noise (`torch.Tensor`, *optional*): the posterior noise itself, broadcastable to ``sample``.
            next_timestep (`float`, *optional*): the time ``s > t`` to move to; by default the time after
                ``timestep`` in ``self.timesteps``. Python floats keep the step's coefficients free of tensor values,
                so that `torch.export` can trace a sampling loop.
        """
        if next_timestep is None:
            timestep, next_timestep = self.step_times(timestep)
        m_t, m_s = self.mean(float(timestep)), self.mean(float(next_timestep))
        prev_sample = sample + (m_s - m_t) / (1 - m_t) * (model_output - sample)
        # The posterior variance (see the module docstring) from the same two means, times the sampling noise scale.
        sigma, scale = self.config.bridge_sigma, self.config.sampling_noise_scale
        variance = sigma**2 * (m_s - m_t) * (1 - m_s) / (1 - m_t) * scale**2
        if variance > 0:
            if variance_noise is None:
                variance_noise = randn_tensor(
                    sample.shape, generator=generator, device=sample.device, dtype=sample.dtype
                )
            prev_sample = prev_sample + math.sqrt(variance) * variance_noise
        if not return_dict:
            return (prev_sample, model_output)
        return GenSERSchedulerOutput(prev_sample=prev_sample, pred_original_sample=model_output)
