import pytest
import torch

from conftest import tiny_wav2vec2_config
from modeling_genser import GenSERConfig, GenSERForAudioClassification, GenSERScheduler
from modeling_genser.scheduling_genser import bridge_variance_schedule, logistic_mean_schedule


@pytest.mark.parametrize("steepness", [0.0, 1.0, 8.0, 20.0])
def test_mean_schedule_runs_from_zero_to_one_monotonically(steepness):
    t = torch.linspace(0, 1, 101)
    mean = logistic_mean_schedule(t, steepness)
    assert mean[0].item() == pytest.approx(0.0, abs=1e-6)
    assert mean[-1].item() == pytest.approx(1.0, abs=1e-6)
    assert (mean.diff() > 0).all()


@pytest.mark.parametrize("steepness", [0.0, 8.0])
def test_mean_schedule_on_floats_matches_tensors(steepness):
    times = [0.0, 0.25, 0.5, 0.9, 1.0]
    floats = [logistic_mean_schedule(t, steepness) for t in times]
    assert floats[0] == 0.0 and floats[-1] == 1.0
    assert floats == pytest.approx(logistic_mean_schedule(torch.tensor(times, dtype=torch.float64), steepness).tolist())


def test_bridge_variance_is_zero_at_both_ends():
    scheduler = GenSERScheduler(bridge_sigma=0.7)
    variance = scheduler.variance(torch.tensor([0.0, 0.5, 1.0]))
    assert variance[0].item() == pytest.approx(0.0, abs=1e-7)
    assert variance[2].item() == pytest.approx(0.0, abs=1e-7)
    assert variance[1].item() == pytest.approx(0.7**2 * 0.25)
    assert bridge_variance_schedule(torch.tensor(0.5), 0.0).item() == 0.0


def test_add_noise_matches_the_bridge_marginal():
    scheduler = GenSERScheduler(mean_schedule_steepness=8.0, bridge_sigma=0.8)
    n, dim = 200_000, 2
    generator = torch.Generator().manual_seed(0)
    initial = torch.randn(n, dim, generator=generator)
    terminal = torch.tensor([[2.0, -1.0]]).expand(n, dim)
    t = torch.full((n,), 0.4)
    sample = scheduler.add_noise(terminal, torch.randn(n, dim, generator=generator), t, initial)
    m = scheduler.mean(torch.tensor(0.4))
    expected_var = (1 - m) ** 2 * 1.0 + scheduler.variance(torch.tensor(0.4))
    torch.testing.assert_close(sample.mean(0), m * terminal[0], atol=0.01, rtol=0)
    torch.testing.assert_close(sample.var(0), expected_var.expand(dim), atol=0.01, rtol=0)
    # At the ends the bridge is pinned.
    torch.testing.assert_close(scheduler.add_noise(terminal[:3], torch.randn(3, dim), torch.zeros(3), initial[:3]), initial[:3])
    torch.testing.assert_close(scheduler.add_noise(terminal[:3], torch.randn(3, dim), torch.ones(3), initial[:3]), terminal[:3])


def _sample(scheduler, steps, seed, start, target):
    scheduler.set_timesteps(steps)
    generator = torch.Generator().manual_seed(seed)
    sample = start
    for t in scheduler.timesteps:
        sample = scheduler.step(target, t, sample, generator=generator).prev_sample
    return sample


def test_step_is_deterministic_for_a_seeded_generator_and_lands_on_the_prediction():
    scheduler = GenSERScheduler(bridge_sigma=1.0)
    start, target = torch.randn(4, 8), torch.randn(4, 8)
    first = _sample(scheduler, 5, seed=1, start=start, target=target)
    assert torch.equal(first, _sample(scheduler, 5, seed=1, start=start, target=target))
    torch.testing.assert_close(first, target)  # the last step reaches t = 1, where the variance is zero
    # Intermediate samples carry the bridge noise, so they depend on the seed.
    intermediate = []
    for seed in (1, 1, 2):
        scheduler.set_timesteps(5)
        step = scheduler.step(target, 0.0, start, generator=torch.Generator().manual_seed(seed))
        intermediate.append(step.prev_sample)
    assert torch.equal(intermediate[0], intermediate[1])
    assert not torch.equal(intermediate[0], intermediate[2])


def test_without_sampling_noise_a_step_is_the_posterior_mean():
    noisy, quiet = GenSERScheduler(bridge_sigma=1.0), GenSERScheduler(bridge_sigma=1.0, sampling_noise_scale=0.0)
    start, target, noise = torch.randn(3, 8), torch.randn(3, 8), torch.randn(3, 8)
    for scheduler in (noisy, quiet):
        scheduler.set_timesteps(4)
    moved = noisy.step(target, 0.0, start, variance_noise=noise).prev_sample
    mean = quiet.step(target, 0.0, start, variance_noise=noise).prev_sample
    ratio = quiet.mean(0.25)  # (m(1/4) - m(0)) / (1 - m(0))
    torch.testing.assert_close(mean, start + ratio * (target - start))
    assert not torch.allclose(moved, mean)
    # Training draws the bridge marginal as before: the noise scale is for sampling only.
    t = torch.full((3,), 0.5)
    assert torch.equal(quiet.add_noise(target, noise, t, start), noisy.add_noise(target, noise, t, start))


def test_single_step_returns_the_prediction():
    scheduler = GenSERScheduler()
    scheduler.set_timesteps(1)
    start, target = torch.randn(2, 4), torch.randn(2, 4)
    output = scheduler.step(target, scheduler.timesteps[0], start)
    torch.testing.assert_close(output.prev_sample, target)
    assert torch.equal(output.pred_original_sample, target)


def test_save_and_load_round_trip(tmp_path):
    scheduler = GenSERScheduler(mean_schedule_steepness=3.5, bridge_sigma=0.25)
    scheduler.save_pretrained(tmp_path)
    assert (tmp_path / "scheduler_config.json").exists()
    loaded = GenSERScheduler.from_pretrained(tmp_path)
    assert loaded.config.mean_schedule_steepness == 3.5
    assert loaded.config.bridge_sigma == 0.25


def test_invalid_settings_are_explained():
    with pytest.raises(ValueError, match="bridge_sigma"):
        GenSERScheduler(bridge_sigma=-1.0)
    with pytest.raises(ValueError, match="sampling_noise_scale"):
        GenSERScheduler(sampling_noise_scale=-0.5)
    with pytest.raises(ValueError, match="positive integer"):
        GenSERScheduler().set_timesteps(0)
    scheduler = GenSERScheduler()
    scheduler.set_timesteps(2)
    with pytest.raises(ValueError, match="not in the schedule"):
        scheduler.step(torch.zeros(1, 2), 0.3, torch.zeros(1, 2))


def test_step_with_its_next_timestep_is_the_schedule_step_without_state():
    """The stateless step that sampling uses (threads share one scheduler, each loop holding its own grid) moves a
    sample exactly as the `set_timesteps` loop does, and leaves the scheduler's schedule as it was."""
    scheduler = GenSERScheduler(sampling_noise_scale=0.5)
    scheduler.set_timesteps(3)
    start, target, noise = torch.randn(2, 4), torch.randn(2, 4), torch.randn(3, 4)
    stepped, stateless = start, start
    for index, timestep in enumerate(scheduler.timesteps):
        stepped = scheduler.step(target, timestep, stepped, variance_noise=noise[index]).prev_sample
    scheduler.set_timesteps(5)
    for index in range(3):
        next_time = (index + 1) / 3
        output = scheduler.step(target, index / 3, stateless, variance_noise=noise[index], next_timestep=next_time)
        stateless = output.prev_sample
    assert torch.equal(stateless, stepped)
    assert scheduler.num_inference_steps == 5 and len(scheduler.timesteps) == 5
    torch.testing.assert_close(GenSERScheduler.time_grid_for(3), torch.tensor([0.0, 1 / 3, 2 / 3, 1.0]))


def test_the_denoiser_embeds_time_on_the_scale_of_the_schedulers_num_train_timesteps():
    times = torch.tensor([0.0, 0.25, 1.0])
    for scale in (1000, 10):
        labels, scheduler_config = {0: "a", 1: "b"}, {"num_train_timesteps": scale}
        config = GenSERConfig(encoder_config=tiny_wav2vec2_config(), id2label=labels, scheduler_config=scheduler_config)
        denoiser = GenSERForAudioClassification(config).denoiser
        expected = denoiser.time_embedding(denoiser.time_proj(times * scale))
        torch.testing.assert_close(denoiser.embed_time(times), expected, rtol=0, atol=0)
    with pytest.raises(ValueError, match="num_train_timesteps"):
        GenSERScheduler(num_train_timesteps=0)


def test_a_diffusers_style_loop_scales_its_start_by_init_noise_sigma_and_runs_len_steps():
    """The members diffusers' pipelines read: the loop over `len(scheduler)` steps of a noise start scaled by
    `init_noise_sigma` lands on the prediction, as the model's own sampling does."""
    scheduler = GenSERScheduler(sampling_noise_scale=0.0)
    prediction = torch.randn(2, 8)
    for steps in (1, 3, 8):
        scheduler.set_timesteps(steps)
        assert len(scheduler) == steps == len(scheduler.timesteps)
        sample = torch.randn(2, 8, generator=torch.Generator().manual_seed(steps)) * scheduler.init_noise_sigma
        for index in range(len(scheduler)):
            sample = scheduler.step(prediction, scheduler.timesteps[index], sample).prev_sample
        torch.testing.assert_close(sample, prediction)
